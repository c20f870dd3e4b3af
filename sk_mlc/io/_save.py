"""``sk_mlc.save`` and ``sk_mlc.load``: a fitted model in one file, read without pickle.

The file is a sealed safetensors file (``sk_mlc/_sealed.py``): the network's weights
and the loss's class weights as tensors, everything else as one JSON document::

    {"versions": {"sk_mlc": ..., "torch": ..., "skorch": ..., "scikit-learn": ...},
     "estimator": {"class": "sk_mlc._classifier:CNNClassifier",
                   "params": {name: value, ...},        # _codec.py's encoding
                   "attributes": {name: value, ...},    # classes_, _target_, ...
                   "network": {"tensors": prefix, "history": [...], ...}}}

A :class:`~sk_mlc.ThresholdTunerCV` is the same node without ``network``; its
``estimator_`` attribute is a nested CNNClassifier node. An
:class:`~sk_mlc.ImageFeatures` node has ``extractor`` instead of ``network``:
the state dict of its ``module_``, whose layers ``load`` rebuilds from the
parameters. A parameter that has
no place in JSON (a user's module, callbacks, an augmentation function) is
stored as ``{"__missing__": "a Backbone instance"}``, and ``load`` asks for it
by name. ``memory`` and ``accelerator`` are never saved: a loaded model has
their defaults.
"""

from __future__ import annotations

import warnings

import numpy as np
import sklearn
import skorch
import torch
from sklearn.utils.validation import check_is_fitted

from .._classifier import CNNClassifier
from .._compat import METADATA_REQUEST_ATTRIBUTE
from .._features import ImageFeatures
from .._sealed import write_sealed
from .._version import __version__
from ..thresholds import ThresholdTunerCV
from ..training import snapshot
from ._codec import Unstorable, encode, import_path

MODEL = "sk_mlc.model"
ESTIMATORS = {
    import_path(cls): cls for cls in (CNNClassifier, ThresholdTunerCV, ImageFeatures)
}
# Where an ImageFeatures' module_ tensors go, after the node's prefix.
EXTRACTOR = "extractor."
# Where a model caches and what drives training hardware: never saved.
_NOT_SAVED = frozenset({"memory", "accelerator"})
# Fitted state that is not saved as an attribute: the network has its own
# node, and the identity of cached weights names a local cache folder.
_NOT_ATTRIBUTES = frozenset(
    {"net_", "module_", "_weights_id_", METADATA_REQUEST_ATTRIBUTE}
)


def save(estimator, path) -> None:
    """Save a fitted model to one file that :func:`load` reads without pickle.

    The file is a safetensors file: the weights as tensors, every parameter
    and fitted attribute as JSON in its metadata (class labels of any type,
    thresholds, the target, the input conversion and pixel scaling, the
    training history, the package versions), sealed by a SHA-256 checksum.

    Parameters
    ----------
    estimator : CNNClassifier, ThresholdTunerCV or ImageFeatures
        A fitted ``CNNClassifier``, a fitted ``ThresholdTunerCV`` around
        one, or a fitted ``ImageFeatures``. Parameters that are not plain
        data are stored by import path when they are torch or sk_mlc
        classes (the default optimizer, a ``functools.partial`` of one, a
        torch module class); anything else (a
        module instance, callbacks, an augmentation function, ``weights``
        other than a path) is recorded by name only, with a warning:
        :func:`load` then needs it passed in. ``memory`` is not saved.

    path : str or os.PathLike
        The file to write (replaced atomically if it exists). The suffix is
        up to you; ``.safetensors`` tells other tools what it is.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sk_mlc
    >>> X = np.random.RandomState(0).rand(20, 6, 6).astype(np.float32)
    >>> y = np.array(["cat", "dog"] * 10)
    >>> clf = sk_mlc.CNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> sk_mlc.save(clf, path)
    >>> loaded = sk_mlc.load(path)
    >>> loaded.classes_
    array(['cat', 'dog'], dtype='<U3')
    >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    who = "sk_mlc.save"
    _check_savable(estimator, who)
    tensors: dict = {}
    missing: dict = {}
    node = _encode_fitted(estimator, "", tensors, missing, who)
    if missing:
        names = ", ".join(f"{name} ({what})" for name, what in missing.items())
        warnings.warn(
            f"{who}: {len(missing)} parameter(s) of the {type(estimator).__name__} "
            f"cannot be stored as data and are recorded by name only: {names}. "
            f"sk_mlc.load will ask for them: sk_mlc.load(path, "
            f"{', '.join(f'{name}=...' for name in missing)}).",
            UserWarning,
            stacklevel=2,
        )
    write_sealed(path, MODEL, {"versions": versions(), "estimator": node}, tensors)


def versions() -> dict:
    """The versions of the packages a model's numbers depend on."""
    return {
        "sk_mlc": __version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def _check_savable(estimator, who: str) -> None:
    if type(estimator) not in ESTIMATORS.values():
        raise TypeError(
            f"{who} saves a fitted CNNClassifier, a ThresholdTunerCV around one or "
            f"an ImageFeatures; got {type(estimator).__name__}. Other estimators "
            "(and Pipelines) can be pickled with joblib.dump, for use where you "
            "trust the file."
        )
    check_is_fitted(
        estimator, msg=f"{who}: this {type(estimator).__name__} is not fitted yet."
    )
    inner = getattr(estimator, "estimator_", None)
    if isinstance(estimator, ThresholdTunerCV) and type(inner) is not CNNClassifier:
        raise TypeError(
            f"{who} saves a ThresholdTunerCV whose fitted estimator_ is a "
            f"CNNClassifier; this one's is a {type(inner).__name__}. Pickle it "
            "(joblib.dump) instead, for use where you trust the file."
        )


def _encode_fitted(estimator, prefix: str, tensors, missing, who) -> dict:
    node = {
        "class": import_path(type(estimator)),
        "params": _encode_params(estimator, prefix, tensors, missing),
        "attributes": {},
    }
    params = estimator.get_params(deep=False)
    for name, value in vars(estimator).items():
        if name in params or name in _NOT_ATTRIBUTES:
            continue
        if type(value) is CNNClassifier and name.endswith("_"):
            inner = prefix + name[:-1] + "__"
            node["attributes"][name] = {
                "__estimator__": _encode_fitted(value, inner, tensors, missing, who)
            }
            continue
        try:
            node["attributes"][name] = encode(value, tensors, f"{prefix}{name}")
        except Unstorable as exc:
            raise TypeError(
                f"{who}: cannot store the fitted attribute "
                f"{type(estimator).__name__}.{name} ({exc}): it is neither data "
                "nor an allowed class. Pickle the model instead, where you trust "
                "the file."
            ) from None
    if isinstance(estimator, CNNClassifier):
        network, facts = snapshot(estimator.net_, prefix)
        tensors.update(network)
        node["network"] = {**facts, "tensors": prefix}
    if isinstance(estimator, ImageFeatures):
        state = estimator.module_.state_dict()
        tensors.update(
            {
                f"{prefix}{EXTRACTOR}{name}": tensor.detach().cpu().contiguous()
                for name, tensor in state.items()
            }
        )
        node["extractor"] = {"tensors": prefix}
    return node


def _encode_params(estimator, prefix: str, tensors, missing, where=None) -> dict:
    """``estimator``'s parameters; ``prefix`` names them as ``set_params`` does.

    ``where`` prefixes the names of the tensors that large arrays go to: a
    template estimator (a tuner's ``estimator``) and its fitted clone
    (``estimator_``) share ``prefix`` but not ``where``.
    """
    where = prefix if where is None else where
    encoded = {}
    for name, value in estimator.get_params(deep=False).items():
        full = prefix + name
        if name in _NOT_SAVED:
            continue
        if type(value) in ESTIMATORS.values() and not _is_fitted(value):
            params = _encode_params(
                value, full + "__", tensors, missing, f"{where}params.{name}/"
            )
            encoded[name] = {
                "__estimator__": {"class": import_path(type(value)), "params": params}
            }
            continue
        try:
            encoded[name] = encode(value, tensors, f"{where}params.{name}")
        except Unstorable as exc:
            missing[full] = str(exc)
            encoded[name] = {"__missing__": str(exc)}
    return encoded


def _is_fitted(estimator) -> bool:
    return any(name.endswith("_") for name in vars(estimator))
