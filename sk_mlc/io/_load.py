"""``sk_mlc.load``: a model written by ``sk_mlc.save``, rebuilt without pickle.

The format is described in ``_save.py``. Reading trusts nothing in the file:
the sealed container is checked first (``sk_mlc/_sealed.py``), then every
value is decoded by ``_codec.py``'s allow-list, every parameter validated,
and every tensor must find its place in the rebuilt network.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from dataclasses import replace
from numbers import Integral

import numpy as np
import torch

from .._classifier import CNNClassifier
from .._compat import validate_params
from .._features import ImageFeatures
from .._sealed import read_sealed
from ..exceptions import (
    DisallowedContentError,
    MissingParameterError,
    SealedFileError,
    VersionWarning,
)
from ..targets import Target
from ..thresholds import ThresholdTunerCV
from ..training import (
    CRITERION,
    MODULE,
    TrainingSpec,
    build_extractor,
    resolve_device,
    restore,
    saved_depth,
)
from ._codec import current_path, decode, set_attribute
from ._save import ESTIMATORS, EXTRACTOR, MODEL, versions

# Fitted state saved under another name by the flat layout (a tuner's target).
_FORMER_ATTRIBUTES = {"_target": "_target_"}
# from_estimator checks a validation split against the number of samples; a
# saved model has none, and its batch size is restored from the file.
_ANY_SIZE = 2**31 - 1
# Version differences that may change what a loaded model computes.
_CHECKED_VERSIONS = ("sk_mlc", "torch", "skorch", "scikit-learn")


def load(path, *, module=None, **overrides):
    """Load a model written by :func:`save`, without unpickling anything.

    ``load`` reads JSON and raw tensors only. It never unpickles, never calls
    ``torch.load``, and never imports or calls anything the file names except
    torch and sk_mlc classes on an allow-list (optimizers, torch module
    classes, sk_mlc's estimators and built-in augmentations, scikit-learn's
    CV splitters), looked up among the modules already imported. A truncated,
    edited or foreign file is refused with a ``ValueError`` before any of it
    is used.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    module : torch.nn.Module, callable or None, default=None
        The ``CNNClassifier``'s ``module`` parameter (for a saved
        ``ThresholdTunerCV``, its estimator's), needed when the model was
        trained with a module that could not be stored (an instance, or a
        class outside torch). Its weights must fit the saved ones, else a
        ``ValueError`` lists the names that do not.

    **overrides : dict
        Values of other parameters, by name as ``set_params`` spells them
        (``callbacks=...``; ``estimator__callbacks=...`` inside a
        ``ThresholdTunerCV``): the ones :func:`save` recorded by name only,
        or saved ones to replace. ``device="cpu"`` loads onto the CPU.

    Returns
    -------
    estimator : CNNClassifier or ThresholdTunerCV
        The fitted model, predicting exactly as the saved one did. It is on
        the device it was trained on when that device exists here, else on
        the CPU (a model trained on a GPU loads on a CPU-only machine).

    Raises
    ------
    ValueError
        If the file is not an intact file written by ``save`` (truncated,
        altered after writing, another format, written by a newer format),
        names a class or function outside the allow-list, lacks a parameter
        that must be passed in, or holds weights that do not fit the module.

    Warns
    -----
    UserWarning
        If the file was written with another version of sk_mlc, torch, skorch
        or scikit-learn (it loads, but may predict slightly differently).

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import torch
    >>> import sk_mlc
    >>> X = np.random.RandomState(0).rand(20, 6, 6).astype(np.float32)
    >>> y = np.arange(20) % 2
    >>> backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    >>> clf = sk_mlc.CNNClassifier(backbone, max_epochs=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     sk_mlc.save(clf, path)  # the module instance is recorded by name
    >>> sk_mlc.load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sk_mlc.exceptions.MissingParameterError: sk_mlc.load: the saved ... needs 1 ...
    >>> loaded = sk_mlc.load(path, module=backbone)
    >>> bool(np.array_equal(loaded.predict(X), clf.predict(X)))
    True
    """
    who = "sk_mlc.load"
    document, tensors, _ = read_sealed(path, MODEL, who)
    _warn_versions(document.get("versions"), os.fspath(path), who)
    top = _estimator_class(document.get("estimator"))
    if top is None:
        raise SealedFileError(f"{who}: {os.fspath(path)!r} holds no sk_mlc estimator.")
    if module is not None:
        overrides["estimator__module" if top is ThresholdTunerCV else "module"] = module
    loading = _Loading(tensors, overrides, who)
    try:
        estimator = loading.fitted(document["estimator"], "")
    except ValueError as exc:
        if str(exc).startswith(who):
            raise
        # The codec's refusals ("'os:system' is not on sk_mlc's allow-list", a
        # malformed value): say which call and which file, in the same kind.
        kind = (
            DisallowedContentError
            if isinstance(exc, DisallowedContentError)
            else SealedFileError
        )
        raise kind(f"{who}: refused {os.fspath(path)!r}: {exc}.") from None
    except Exception as exc:  # a malformed document: whatever broke, say where
        raise SealedFileError(
            f"{who}: cannot rebuild the model saved in {os.fspath(path)!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    loading.check_complete(top)
    return estimator


class _Loading:
    """One ``load``: the file's tensors, the caller's values, what is missing."""

    def __init__(self, tensors: dict, overrides: dict, who: str):
        self.tensors = _Tracked(tensors)
        self.overrides = overrides
        self.who = who
        self.missing: dict = {}
        self.known: set = set()

    def fitted(self, node, prefix: str):
        """The fitted estimator of ``node`` (its network only if nothing is missing)."""
        estimator = self._unfitted(node, prefix)
        cls = type(estimator)
        attributes = node.get("attributes")
        if not isinstance(attributes, dict):
            raise SealedFileError(f"{self.who}: the file holds no fitted attributes.")
        for name, data in attributes.items():
            if isinstance(data, dict) and set(data) == {"__estimator__"}:
                inner = prefix + str(name)[:-1] + "__"
                value = self.fitted(data["__estimator__"], inner)
            else:
                value = decode(data, self.tensors)
            set_attribute(estimator, _FORMER_ATTRIBUTES.get(name, name), value)
        if cls is CNNClassifier:
            if not isinstance(node.get("network"), dict):
                raise SealedFileError(f"{self.who}: the file holds no network.")
            if not self.missing:
                self._network(estimator, node["network"], prefix)
        if cls is ImageFeatures:
            if not isinstance(node.get("extractor"), dict):
                raise SealedFileError(f"{self.who}: the file holds no extractor.")
            if not self.missing:
                self._extractor(estimator, node["extractor"], prefix)
        return estimator

    def _unfitted(self, node, prefix: str):
        """The estimator of ``node`` with its parameters, checked; not fitted."""
        cls = _estimator_class(node)
        if cls is None:
            raise SealedFileError(
                f"{self.who}: the file names no sk_mlc estimator class."
            )
        encoded = node.get("params")
        if not isinstance(encoded, dict):
            raise SealedFileError(f"{self.who}: the file holds no parameters.")
        names = [n for n in inspect.signature(cls).parameters if n != "self"]
        unknown = [name for name in encoded if name not in names]
        if unknown:
            raise SealedFileError(
                f"{self.who}: the saved {cls.__name__} has parameter(s) {unknown} "
                f"that this sk_mlc's {cls.__name__} does not know; it was saved by "
                "another sk_mlc version."
            )
        params = {}
        for name in names:
            full = prefix + name
            self.known.add(full)
            data = encoded.get(name)
            if full in self.overrides:
                params[name] = self.overrides[full]
            elif name not in encoded:
                continue  # not saved (memory), or added since: the default
            elif isinstance(data, dict) and set(data) == {"__missing__"}:
                self.missing[full] = str(data["__missing__"])
            elif isinstance(data, dict) and set(data) == {"__estimator__"}:
                params[name] = self._unfitted(data["__estimator__"], full + "__")
            else:
                params[name] = decode(data, self.tensors)
        estimator = cls(**params)
        if not self.missing:
            try:
                validate_params(estimator)
            except ValueError as exc:
                raise ValueError(
                    f"{self.who}: the file holds invalid parameters: {exc}"
                ) from None
        return estimator

    def _shape_and_device(self, estimator, prefix: str) -> tuple:
        """The saved ``input_shape_``, checked, and the device to rebuild on.

        The device the model was fitted on where this machine has it, else
        the CPU; a ``device`` passed to ``load`` (``prefix`` names the
        estimator's parameters) decides instead.
        """
        shape = getattr(estimator, "input_shape_", None)
        if not _is_image_shape(shape):
            raise SealedFileError(
                f"{self.who}: the saved input_shape_ {shape!r} is invalid."
            )
        if f"{prefix}device" in self.overrides:
            return shape, resolve_device(estimator.device)
        return shape, _available(getattr(estimator, "device_", "cpu"))

    def _network(self, estimator: CNNClassifier, facts: dict, prefix: str) -> None:
        """Rebuild ``net_`` on the device it was trained on, or the CPU.

        ``prefix`` names the estimator's parameters (``estimator__`` inside a
        tuner): a ``device`` passed to ``load`` decides instead.
        """
        target = getattr(estimator, "_target_", None)
        if not isinstance(target, Target):
            raise SealedFileError(f"{self.who}: the file holds no fitted target.")
        shape, device = self._shape_and_device(estimator, prefix)
        # A copy with this machine's device, whose weights= is not read again:
        # the saved weights replace whatever training started from.
        resolved = copy.copy(estimator)
        resolved.set_params(weights=None, device=device, warm_start=False)
        if resolved.random_state is None:  # don't draw from the global RNG
            resolved.random_state = 0
        spec = TrainingSpec.from_estimator(
            resolved,
            target,
            _ANY_SIZE,
            image_shape=shape,
            incremental=bool(getattr(estimator, "_incremental_", False)),
        )
        where = str(facts.get("tensors"))
        depth = spec.depth
        if spec.module is None and depth == "auto":
            depth = saved_depth(self.tensors, where) or depth
        spec = replace(
            spec,
            batch_size=int(facts["batch_size"]),
            max_epochs=int(facts["max_epochs"]),
            depth=depth,
        )
        estimator.net_ = restore(
            spec, shape, self.tensors, facts, prefix=where, who=self.who
        )
        self.tensors.used.update(
            name
            for name in self.tensors
            if name.startswith((f"{where}{MODULE}", f"{where}{CRITERION}"))
        )
        estimator.device_ = spec.device
        estimator._weights_id_ = None

    def _extractor(self, estimator: ImageFeatures, facts: dict, prefix: str) -> None:
        """Rebuild ``module_`` from the parameters, then load the saved state.

        On the device it was fitted on, or the CPU (a ``device`` passed to
        ``load`` decides instead). Every tensor of the module must be in the
        file, with its shape, and every saved one must have its place.
        """
        shape, device = self._shape_and_device(estimator, prefix)
        module, n_features = build_extractor(estimator, shape, seed=0, device="cpu")
        where = f"{facts.get('tensors')}{EXTRACTOR}"
        state = {
            name[len(where) :]: self.tensors.get(name)
            for name in list(self.tensors)
            if name.startswith(where)
        }
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise SealedFileError(
                f"{self.who}: the saved extractor does not fit the backbone its "
                f"parameters build: {str(exc).splitlines()[0]}"
            ) from None
        estimator.module_ = module.to(device, memory_format=torch.channels_last)
        estimator.device_ = device

    def check_complete(self, top: type) -> None:
        """Raise for parameters the file lacks, overrides that name none, and
        tensors that nothing uses (a file is read whole, or not at all)."""
        unknown = [name for name in self.overrides if name not in self.known]
        if unknown:
            raise ValueError(
                f"{self.who}: {unknown} name no parameter of the saved "
                f"{top.__name__}; it has {sorted(self.known)}."
            )
        unused = sorted(set(self.tensors) - self.tensors.used)
        if unused and not self.missing:
            raise SealedFileError(
                f"{self.who}: the file holds tensors that no part of the model "
                f"uses: {unused[:5]}."
            )
        if self.missing:
            listed = ", ".join(f"{n} ({what})" for n, what in self.missing.items())
            passed = ", ".join(f"{name}=..." for name in self.missing)
            raise MissingParameterError(
                f"{self.who}: the saved {top.__name__} needs {len(self.missing)} "
                f"parameter(s) that a file cannot hold: {listed}. Pass the objects "
                f"it was trained with: sk_mlc.load(path, {passed}).",
                self.missing,
            )


class _Tracked(dict):
    """The file's tensors, noting which ones were looked up."""

    def __init__(self, tensors: dict):
        super().__init__(tensors)
        self.used: set = set()

    def get(self, name, default=None):
        self.used.add(name)
        return super().get(name, default)


def _estimator_class(node) -> type | None:
    """The estimator class a node names, if it is one of the two sk_mlc saves."""
    name = node.get("class") if isinstance(node, dict) else None
    return ESTIMATORS.get(current_path(name)) if isinstance(name, str) else None


def _is_image_shape(shape) -> bool:
    return (
        isinstance(shape, tuple)
        and len(shape) == 3
        and all(
            isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
        )
        # A sanity bound: the rebuild runs a dry batch of two such images.
        and int(np.prod(shape, dtype=np.int64)) <= 2**28
    )


def _available(recorded) -> str:
    """``recorded`` if this machine has that device, else the CPU."""
    try:
        device = torch.device(str(recorded))
    except RuntimeError:
        return "cpu"
    if device.type == "cuda" and torch.cuda.is_available():
        if (device.index or 0) < torch.cuda.device_count():
            return str(device)
    if device.type == "mps" and torch.backends.mps.is_available():
        return str(device)
    return "cpu"


def _warn_versions(saved, path: str, who: str) -> None:
    if not isinstance(saved, dict):
        raise SealedFileError(f"{who}: {path!r} does not record its package versions.")
    here = versions()
    changed = [
        f"{name} {saved.get(name)!s} (this is {here[name]})"
        for name in _CHECKED_VERSIONS
        if saved.get(name) != here[name]
    ]
    if changed:
        warnings.warn(
            f"{who}: {path!r} was saved with {', '.join(changed)}. It loads, but its "
            "predictions may differ slightly; check them, then save it again with "
            "these versions to silence this warning.",
            VersionWarning,
            stacklevel=3,
        )
