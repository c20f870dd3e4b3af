"""The exceptions and warnings of sk_mlc that a caller may want to catch.

Each one subclasses the built-in type a caller would catch anyway
(``ValueError``, ``UserWarning``), as scikit-learn's ``NotFittedError``
subclasses ``ValueError``: code that catches ``ValueError`` keeps working,
and code that wants to tell a corrupt file from a bad parameter can.

Examples
--------
>>> import os, tempfile
>>> import sk_mlc
>>> from sk_mlc.exceptions import SealedFileError
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> with open(path, "wb") as file:
...     _ = file.write(b"not a model")
>>> try:
...     sk_mlc.load(path)
... except SealedFileError as exc:
...     print(type(exc).__name__, isinstance(exc, ValueError))
SealedFileError True
"""

from __future__ import annotations

__all__ = [
    "DisallowedContentError",
    "MissingParameterError",
    "SealedFileError",
    "VersionWarning",
    "WeightsMismatchError",
]


class SealedFileError(ValueError):
    """The file is not an intact sk_mlc file.

    Raised by :func:`sk_mlc.load` (and, as a warning's cause, by a ``memory``
    cache, which then trains the network again) for a file that is truncated,
    was edited after it was written (its SHA-256 checksum fails), is of
    another format (a pickle, a ``torch.save`` archive, a plain safetensors
    file) or was written by a newer sk_mlc. Nothing in the file was used.
    """


class DisallowedContentError(ValueError):
    """The file is intact, but names something sk_mlc will not load.

    Raised by :func:`sk_mlc.load` for a saved model that names a class or a
    function outside sk_mlc's allow-list, and by ``CNNClassifier(weights=...)``
    for a weights file that holds more than plain tensors (a pickled object,
    whose loading would run code). Nothing named in the file was imported or
    called.
    """


class MissingParameterError(ValueError):
    """A saved model needs parameters that a file cannot hold.

    :func:`sk_mlc.save` records by name only what is not plain data or an
    allowed class (a module instance, callbacks, an augmentation function);
    :func:`sk_mlc.load` then raises this until they are passed in, as in
    ``sk_mlc.load(path, module=MyBackbone())``.

    Attributes
    ----------
    missing : dict
        The missing parameters, by the name ``load`` takes them under, with a
        few words saying what each was (``{"module": "a MyBackbone instance"}``).
    """

    def __init__(self, message: str, missing: dict | None = None):
        super().__init__(message)
        self.missing = dict(missing or {})


class WeightsMismatchError(ValueError):
    """Weights that do not fit the network they are loaded into.

    Raised by ``CNNClassifier(weights=...)`` when the backbone's parameters
    and buffers are not all in the weights with their shapes, and by
    :func:`sk_mlc.load` when a saved network does not fit the module it is
    rebuilt with. The message lists the names that do not fit.
    """


class VersionWarning(UserWarning):
    """A saved model was written with other versions of sk_mlc, torch, skorch or
    scikit-learn: it loads, but its predictions may differ slightly."""
