"""``to_onnx``: the whole prediction as one ONNX graph, from pixels to labels.

Serving a network by hand means re-assembling what ``predict`` does around it
(the pixel scaling of the dtype, the layout, the input statistics, the
activation, ``predict_proba``'s columns, the thresholds, the class labels), and
forgetting one part gives answers that are wrong without an error. Here the
graph is assembled from the fitted estimator's own parts in two pieces:

* :class:`ServingModule`, one ``nn.Module`` from the images as the user passes
  them to ``predict_proba``'s output, exported by torch's exporter;
* the decision, ``predict``'s output, appended with ``onnx.helper``: string
  labels and thresholds are not tensors torch can carry.

The export is then checked against ``predict_proba`` on a few random images.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from torch import nn

from ._augment import tta_proba
from ._classifier import CNNClassifier
from ._compat import TORCH_ONNX_REGISTRY_LOGGER
from ._inputs import _DTYPE_SCALE, _channels_first
from ._targets import _Target, check_threshold
from ._threshold import ThresholdTunerCV

_NAME = "to_onnx"
_INSTALL = 'pip install "sk_mlc[onnx]"'
_INPUT, _PROBA, _LABEL = "images", "probabilities", "label"
# The export is checked on this many random images; a larger gap than this
# between the graph and predict_proba is an export that went wrong.
_N_PROBE, _PROBE_TOLERANCE = 3, 1e-4


@dataclass(frozen=True)
class ServingParts:
    """What ``predict`` uses: the classifier, the target that decides, the thresholds.

    ``thresholds`` is None for targets decided by argmax. A
    :class:`~sk_mlc.ThresholdTunerCV` contributes its ``estimator_`` and its
    tuned thresholds; a :class:`~sk_mlc.CNNClassifier` its own.
    """

    classifier: CNNClassifier
    target: _Target
    thresholds: np.ndarray | None


def serving_parts(estimator, caller: str = _NAME) -> ServingParts:
    """The :class:`ServingParts` of a fitted CNNClassifier or ThresholdTunerCV."""
    if isinstance(estimator, ThresholdTunerCV):
        if not hasattr(estimator, "best_thresholds_"):
            raise NotFittedError(
                f"{caller}: this ThresholdTunerCV is not fitted yet; call fit first."
            )
        inner = estimator.estimator_
        while isinstance(inner, FrozenEstimator):
            inner = inner.estimator
        if not isinstance(inner, CNNClassifier):
            raise ValueError(
                f"{caller} exports a ThresholdTunerCV around a CNNClassifier; this "
                f"one's estimator_ is a {type(inner).__name__}, which has no network "
                "to export. Keep it with pickle (or sk_mlc.save, where it allows)."
            )
        _check_fitted(inner, caller)
        # The tuner's own target decides (its y's dtype and sparsity).
        return ServingParts(
            inner, estimator._target, np.asarray(estimator.best_thresholds_)
        )
    if not isinstance(estimator, CNNClassifier):
        raise TypeError(
            f"{caller} exports a fitted CNNClassifier or ThresholdTunerCV; got "
            f"{type(estimator).__name__}."
        )
    _check_fitted(estimator, caller)
    target = estimator._target_
    thresholds = None
    if target.uses_threshold:
        thresholds = check_threshold(
            estimator.threshold, target.n_labels, type(estimator).__name__
        )
    return ServingParts(estimator, target, thresholds)


def _check_fitted(classifier: CNNClassifier, caller: str) -> None:
    if not hasattr(classifier, "net_"):
        raise NotFittedError(
            f"{caller}: this {type(classifier).__name__} is not fitted yet; call "
            "fit first."
        )


@dataclass(frozen=True)
class ServingInput:
    """The graph's input: one batch of images in the fitted layout and dtype.

    ``sample_shape`` is one image as the graph takes it: ``(d,)`` for flat
    rows, ``(H, W)`` for one-channel images, ``(H, W, C)`` or ``(C, H, W)``.
    ``image_shape`` is the ``(C, H, W)`` the network sees.
    """

    dtype: np.dtype
    sample_shape: tuple[int, ...]
    image_shape: tuple[int, int, int]
    channels_first: bool
    scale: float

    @classmethod
    def from_classifier(cls, classifier: CNNClassifier, caller: str = _NAME):
        """The input ``predict_proba`` reads exactly as it read the training images.

        Images at the fitted size and channel count: ``image_size`` and
        ``image_mode`` conversions are left out, as ``predict_proba`` itself
        skips them for images that already have the fitted shape.
        """
        spec = classifier._input_spec_
        image_shape = tuple(int(s) for s in classifier.input_shape_)
        channels, height, width = image_shape
        dtype = np.dtype(spec.pixel_dtype or np.float32)
        scale = _DTYPE_SCALE.get(dtype, 1.0)
        name = type(classifier).__name__
        if spec.image_shape is None and image_shape[:2] == (1, 1):
            # Tabular rows are 1 x d grey images, whatever the layout rule says.
            return cls(dtype, (width,), image_shape, True, scale)
        if spec.image_shape is not None:
            # Flat rows, each reshaped to image_shape, then the layout rule.
            row = spec.image_shape
            first = len(row) == 2 or _channels_first(row, spec.layout, name)
            shape = (1, *row) if len(row) == 2 else row
            resolved = shape if first else (shape[2], shape[0], shape[1])
            if tuple(resolved) != image_shape:
                raise ValueError(
                    f"{caller}: {name} reshapes flat rows to image_shape="
                    f"{spec.image_shape} and converts them to (C, H, W) = "
                    f"{image_shape} (image_size / image_mode); the graph takes rows "
                    "without that conversion only. Refit on images of shape "
                    f"{image_shape}, or convert rows before predicting."
                )
            return cls(dtype, (int(np.prod(row)),), image_shape, first, scale)
        first = spec.channels_first
        if first is None:  # fitted before the spec kept it: the layout rule's guess
            first = channels == 1 or _channels_first(
                (height, width, channels), spec.layout, name
            )
        if first and channels == 1 and spec.layout != "NCHW":
            # (n, H, W) was fitted, or (n, 1, H, W): the graph takes the plain one.
            return cls(dtype, (height, width), image_shape, True, scale)
        sample = image_shape if first else (height, width, channels)
        return cls(dtype, sample, image_shape, first, scale)

    def probe(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` random images of this input, pixels in the dtype's usual range."""
        rng = np.random.RandomState(seed)
        shape = (n, *self.sample_shape)
        if self.dtype.kind in "ui":
            high = 256 if self.scale == 1.0 else round(1 / self.scale) + 1
            return rng.randint(0, high, size=shape).astype(self.dtype)
        if self.dtype.kind == "b":
            return rng.rand(*shape) < 0.5
        return rng.rand(*shape).astype(self.dtype)


class ServingModule(nn.Module):
    """Images as passed to ``predict_proba`` -> ``predict_proba``'s output.

    ``pixels`` does what :func:`~sk_mlc._inputs.read_images` does to one batch
    (float32, the dtype's scaling, NCHW); the network standardises with its
    own statistics and returns logits; ``target.proba_tensor`` applies the
    activation and lays out ``predict_proba``'s columns.

    Test-time augmentation (``tta="flip"``) averages the probabilities of
    ``x`` and of ``x.flip(-1)``, as ``predict_proba`` does; every
    prediction-time setting of the classifier must be computed here, or the
    graph would answer otherwise than ``predict_proba`` without a word.
    """

    def __init__(
        self,
        network: nn.Module,
        inputs: ServingInput,
        target: _Target,
        tta: str | None = None,
    ):
        super().__init__()
        self.network = network
        self.inputs = inputs
        self.target = target
        self.tta = tta

    def proba(self, x: torch.Tensor) -> torch.Tensor:
        return self.target.proba_tensor(self.network(x))

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The float32 ``(n, C, H, W)`` batch the network reads."""
        x = images.to(torch.float32)
        if self.inputs.scale != 1.0:
            x = x * self.inputs.scale
        channels, height, width = self.inputs.image_shape
        if self.inputs.channels_first:
            return x.reshape(-1, channels, height, width)
        return x.reshape(-1, height, width, channels).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return tta_proba(self.proba, self.pixels(images), self.tta)


def to_onnx(estimator, path, *, opset=None):
    """Export a fitted classifier, decision included, as one ONNX graph.

    The graph takes a batch of decoded images as arrays, in the layout and
    dtype the model was fitted on (uint8 pixels for a model fitted on uint8),
    any number of them, and computes everything ``predict_proba`` and
    ``predict`` do: the dtype's scaling (``/ 255`` for uint8), the layout,
    the input standardisation, the network, the activation and the decision
    with the thresholds as they are set at export.

    Parameters
    ----------
    estimator : CNNClassifier or ThresholdTunerCV
        A fitted :class:`~sk_mlc.CNNClassifier`, or a fitted
        :class:`~sk_mlc.ThresholdTunerCV` whose ``estimator_`` is one (its
        tuned ``best_thresholds_`` decide).
    path : str or os.PathLike
        The ``.onnx`` file to write; the weights are inside.
    opset : int or None, default=None
        The ONNX opset of the standard domain; None takes torch's exporter's
        default.

    Returns
    -------
    model : onnx.ModelProto
        The graph written to ``path``. Input ``images``, of shape ``(batch,
        *sample)`` in the fitted dtype, ``sample`` being one image laid out as
        in fit: ``(H, W, C)`` where the channels were last (image files
        included), ``(C, H, W)`` where they were first, except ``(H, W)`` for
        one-channel images fitted as ``(n, H, W)`` or ``(n, 1, H, W)`` (unless
        ``layout="NCHW"``), and ``(d,)`` for flat rows (``image_shape``, or
        tabular data). Outputs ``probabilities``, equal to ``predict_proba``, and
        ``label``, equal to ``predict``: the class labels (strings included),
        or for a multi-label model the dense indicator matrix in the training
        ``y``'s dtype (dense even if that ``y`` was sparse).

    Raises
    ------
    ImportError
        If onnx, onnxruntime or onnxscript is missing: ``pip install
        "sk_mlc[onnx]"``.
    ValueError
        For a prediction-time setting the graph does not compute, or when the
        exported graph does not reproduce ``predict_proba`` on random images.

    Notes
    -----
    The graph takes images at the fitted size and channel count:
    ``image_size`` and ``image_mode`` conversions are not in it, so resize and
    convert images before feeding them. A model fitted on image files takes
    the decoded arrays, ``(batch, H, W, C)`` uint8 (``C = 1`` for grey), as
    ``ImageLoader(size=(H, W), mode=...)`` decodes them with Pillow.

    Test-time augmentation (``tta_ == "flip"``) is part of the graph: it
    averages the probabilities of each image and of its mirror image, as
    ``predict_proba`` does.

    Thresholds are compared in float32 exactly as ``predict`` compares them
    in float64: each is rounded up to the nearest float32, so that ``p >=
    threshold`` decides alike for every float32 probability.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime  # doctest: +SKIP
    >>> from sk_mlc import CNNClassifier, to_onnx
    >>> rng = np.random.RandomState(0)
    >>> X = (rng.rand(40, 8, 8) * 255).astype(np.uint8)
    >>> y = np.where(X[:, :4].mean((1, 2)) > 127, "bright", "dark")
    >>> clf = CNNClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> _ = to_onnx(clf, "model.onnx")  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession("model.onnx")  # doctest: +SKIP
    >>> proba, label = session.run(None, {"images": X[:3]})  # doctest: +SKIP
    >>> bool(np.abs(proba - clf.predict_proba(X[:3])).max() <= 1e-5)  # doctest: +SKIP
    True
    >>> bool((label == clf.predict(X[:3])).all())  # doctest: +SKIP
    True
    """
    onnx, onnxruntime = _import_onnx()
    parts = serving_parts(estimator)
    classifier = parts.classifier
    if opset is not None and (
        not isinstance(opset, (int, np.integer)) or isinstance(opset, bool)
    ):
        raise TypeError(f"{_NAME}: opset must be an int or None; got {opset!r}.")
    inputs = ServingInput.from_classifier(classifier)
    network = copy.deepcopy(classifier.net_.module_).cpu().eval()
    module = ServingModule(network, inputs, parts.target, classifier.tta_).eval()
    model = _export(module, inputs, opset)
    _append_decision(model, parts)
    model.doc_string = (
        f"sk_mlc {type(estimator).__name__}: {_INPUT} {inputs.dtype} "
        f"(batch, {', '.join(map(str, inputs.sample_shape))}) -> {_PROBA} "
        f"(predict_proba), {_LABEL} (predict)"
    )
    onnx.checker.check_model(model, full_check=True)
    _check_against(model, classifier, inputs, onnxruntime)
    onnx.save(model, os.fspath(path))
    return model


def _import_onnx():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"{_NAME} needs the optional packages onnx, onnxruntime and onnxscript "
            f"({exc}). Install them with: {_INSTALL}"
        ) from exc
    return onnx, onnxruntime


def _export(module: ServingModule, inputs: ServingInput, opset):
    """The module as an ONNX model with a dynamic batch axis (torch's exporter)."""
    # Two images: torch.export specialises a dimension of size 1 to a constant,
    # which would fix the batch axis however ``dynamic_shapes`` declares it.
    example = torch.from_numpy(inputs.probe(2))
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs a warning per torchvision operator it cannot register
    # when torchvision is missing: noise about operators no sk_mlc model uses.
    registry = logging.getLogger(TORCH_ONNX_REGISTRY_LOGGER)
    level = registry.level
    with warnings.catch_warnings():
        # The exporter's own internals warn about their own deprecations (torch
        # 2.13: "isinstance(treespec, LeafSpec) is deprecated"), nothing the
        # caller can act on; pytest's warnings-as-errors would fail on them.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        registry.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=[_INPUT],
                output_names=[_PROBA],
                opset_version=opset,
                verbose=False,
            )
        finally:
            registry.setLevel(level)
    return program.model_proto


def _float32_at_least(thresholds: np.ndarray) -> np.ndarray:
    """The smallest float32 ``>=`` each float64 threshold.

    ``predict`` compares float32 probabilities with float64 thresholds; a graph
    comparing in float32 against ``float32(0.3)``, which is below 0.3, would
    call a probability equal to it positive where ``predict`` says negative.
    Rounding up keeps ``p >= t`` the same for every float32 ``p``.
    """
    t64 = np.asarray(thresholds, dtype=np.float64)
    t32 = t64.astype(np.float32)
    up = np.nextafter(t32, np.float32(np.inf))
    return np.where(t32.astype(np.float64) < t64, up, t32).astype(np.float32)


def _append_decision(model, parts: ServingParts) -> None:
    """Add ``label``, ``predict``'s output, computed from ``probabilities``."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    batch = graph.output[0].type.tensor_type.shape.dim[0].dim_param or "batch"
    target = parts.target

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, f"label.{name}"))
        return f"label.{name}"

    def node(op: str, inputs: list[str], name: str, **attributes) -> str:
        graph.node.append(
            helper.make_node(
                op, inputs, [f"label.{name}"], f"label/{name}", **attributes
            )
        )
        return f"label.{name}"

    if target.target_type == "multilabel-indicator":
        thresholds = constant("thresholds", _float32_at_least(parts.thresholds))
        positive = node("GreaterOrEqual", [_PROBA, thresholds], "positive")
        dtype = np.dtype(target.dtype_)
        graph.node.append(
            helper.make_node(
                "Cast",
                [positive],
                [_LABEL],
                "label/cast",
                to=helper.np_dtype_to_tensor_dtype(dtype),
            )
        )
        shape = [batch, len(target.classes_)]
        graph.output.append(
            helper.make_tensor_value_info(
                _LABEL, helper.np_dtype_to_tensor_dtype(dtype), shape
            )
        )
        return
    if target.target_type == "binary":
        # predict_proba's column 1 is p; classes_[p >= threshold].
        column = node(
            "Slice",
            [
                _PROBA,
                constant("start", np.array([1], dtype=np.int64)),
                constant("end", np.array([2], dtype=np.int64)),
                constant("axis", np.array([1], dtype=np.int64)),
            ],
            "p",
        )
        thresholds = constant("threshold", _float32_at_least(parts.thresholds))
        positive = node("GreaterOrEqual", [column, thresholds], "positive")
        index = node("Cast", [positive], "index_2d", to=TensorProto.INT64)
        index = node(
            "Reshape",
            [index, constant("flat", np.array([-1], dtype=np.int64))],
            "index",
        )
    else:  # multiclass: the first most probable class, as NumPy's argmax
        index = node("ArgMax", [_PROBA], "index", axis=1, keepdims=0)
    classes = np.asarray(target.classes_)
    if classes.dtype.kind in "OUS":
        classes = np.array([str(c) for c in classes], dtype=object)
    graph.node.append(
        helper.make_node(
            "Gather", [constant("classes", classes), index], [_LABEL], "label/gather"
        )
    )
    graph.output.append(
        helper.make_tensor_value_info(
            _LABEL, helper.np_dtype_to_tensor_dtype(classes.dtype), [batch]
        )
    )


def _check_against(model, classifier: CNNClassifier, inputs: ServingInput, ort):
    """Run the graph on random images: it must give ``predict_proba``'s answer.

    Catches what no checker sees: an operation of a custom module that the
    exporter translates into something that computes otherwise.
    """
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    probe = inputs.probe(_N_PROBE, seed=1)
    proba = session.run([_PROBA], {_INPUT: probe})[0]
    expected = classifier.predict_proba(probe)
    gap = np.abs(proba - expected).max() if proba.shape == expected.shape else np.inf
    if not gap <= _PROBE_TOLERANCE:
        raise ValueError(
            f"{_NAME}: the exported graph does not reproduce "
            f"{type(classifier).__name__}.predict_proba (max |difference| {gap:.3g} "
            f"on {_N_PROBE} random images, shapes {proba.shape} and "
            f"{expected.shape}): torch's ONNX exporter translated part of the "
            "module differently. The file was not written."
        )
