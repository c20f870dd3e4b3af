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

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from .._classifier import CNNClassifier
from .._compat import TORCH_ONNX_REGISTRY_LOGGER
from .._features import ImageFeatures
from ._serving import NAME, ServingInput, ServingModule, ServingParts, serving_parts

_INSTALL = 'pip install "sk_mlc[onnx]"'
_INPUT, _PROBA, _LABEL = "images", "probabilities", "label"
_FEATURES = "features"
# The export is checked on this many random images; a larger gap than this
# between the graph and predict_proba is an export that went wrong.
_N_PROBE, _PROBE_TOLERANCE = 3, 1e-4


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
    estimator : CNNClassifier, ThresholdTunerCV or ImageFeatures
        A fitted :class:`~sk_mlc.CNNClassifier`, or a fitted
        :class:`~sk_mlc.ThresholdTunerCV` whose ``estimator_`` is one (its
        tuned ``best_thresholds_`` decide); or a fitted
        :class:`~sk_mlc.ImageFeatures`, whose graph has one output,
        ``features``, equal to ``transform``.
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
    if opset is not None and (
        not isinstance(opset, (int, np.integer)) or isinstance(opset, bool)
    ):
        raise TypeError(f"{NAME}: opset must be an int or None; got {opset!r}.")
    if isinstance(estimator, ImageFeatures):
        return _features_to_onnx(estimator, path, opset, onnx, onnxruntime)
    parts = serving_parts(estimator)
    classifier = parts.classifier
    inputs = ServingInput.from_estimator(classifier)
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


def _features_to_onnx(estimator: ImageFeatures, path, opset, onnx, ort):
    """An ``ImageFeatures``' graph: images -> ``features``, checked, written."""
    if not hasattr(estimator, "module_"):
        raise NotFittedError(
            f"{NAME}: this ImageFeatures is not fitted yet; call fit first."
        )
    inputs = ServingInput.from_estimator(estimator)
    network = copy.deepcopy(estimator.module_).cpu().eval()
    module = ServingModule(network, inputs, None).eval()
    model = _export(module, inputs, opset, output=_FEATURES)
    model.doc_string = (
        f"sk_mlc ImageFeatures: {_INPUT} {inputs.dtype} "
        f"(batch, {', '.join(map(str, inputs.sample_shape))}) -> {_FEATURES} "
        "(transform)"
    )
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    probe = inputs.probe(_N_PROBE, seed=1)
    got = session.run([_FEATURES], {_INPUT: probe})[0]
    expected = estimator.transform(probe)
    scale = max(1.0, float(np.abs(expected).max()))
    gap = np.abs(got - expected).max() if got.shape == expected.shape else np.inf
    if not gap <= _PROBE_TOLERANCE * scale:
        raise ValueError(
            f"{NAME}: the exported graph does not reproduce ImageFeatures.transform "
            f"(max |difference| {gap:.3g} on {_N_PROBE} random images, shapes "
            f"{got.shape} and {expected.shape}): torch's ONNX exporter translated "
            "part of the module differently. The file was not written."
        )
    onnx.save(model, os.fspath(path))
    return model


def _import_onnx():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError as exc:
        raise ImportError(
            f"{NAME} needs the optional packages onnx, onnxruntime and onnxscript "
            f"({exc}). Install them with: {_INSTALL}"
        ) from exc
    return onnx, onnxruntime


def _export(module: ServingModule, inputs: ServingInput, opset, output=_PROBA):
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
                output_names=[output],
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

    if target.multilabel:
        thresholds = constant("thresholds", _float32_at_least(parts.thresholds))
        positive = node("GreaterOrEqual", [_PROBA, thresholds], "positive")
        positive = _cardinality(graph, constant, positive, parts)
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


def _cardinality(graph, constant, positive: str, parts: ServingParts) -> str:
    """The decisions ``positive`` with ``min_labels`` and ``max_labels`` applied.

    The graph of ``targets/_decisions.apply_cardinality``: each label's rank
    among a row's candidates by descending probability comes from ``TopK``
    (which ranks equal values by lower index first, as the NumPy rule does)
    and ``ScatterElements``; a row short of ``min_labels`` switches on its
    best-ranked others, a row over ``max_labels`` keeps its best-ranked.
    """
    from onnx import TensorProto, helper

    if not parts.min_labels and parts.max_labels is None:
        return positive
    k = len(parts.target.classes_)

    def node(op: str, inputs: list[str], name: str, outputs=1, **attributes):
        names = [f"label.{name}"] + [f"label.{name}.{i}" for i in range(1, outputs)]
        graph.node.append(
            helper.make_node(op, inputs, names, f"label/{name}", **attributes)
        )
        return names[0] if outputs == 1 else names

    shape = node("Shape", [_PROBA], "shape")
    positions = node(
        "Expand",
        [constant("range", np.arange(k, dtype=np.int64)[None, :]), shape],
        "positions",
    )
    zeros = node("Mul", [positions, constant("zero", np.array(0, np.int64))], "zeros")
    below = constant("below", np.array(-2.0, dtype=np.float32))  # below any p
    size = constant("k", np.array([k], dtype=np.int64))

    def rank(among: str, tag: str) -> str:
        """Each label's rank among ``among`` by descending p (float32)."""
        scores = node("Where", [among, _PROBA, below], f"{tag}.scores")
        _, order = node(
            "TopK", [scores, size], f"{tag}.top", outputs=2, axis=1, largest=1
        )
        ranks = node(
            "ScatterElements", [zeros, order, positions], f"{tag}.rank", axis=1
        )
        return node("Cast", [ranks], f"{tag}.rank_float", to=TensorProto.FLOAT)

    if parts.min_labels:
        on = node("Cast", [positive], "min.on", to=TensorProto.FLOAT)
        ones = constant("ones", np.ones((k, 1), dtype=np.float32))
        count = node("MatMul", [on, ones], "min.count")
        wanted = constant("min_labels", np.array(parts.min_labels, np.float32))
        short = node("Sub", [wanted, count], "min.short")
        deficit = node(
            "Max", [short, constant("nil", np.array(0, np.float32))], "min.deficit"
        )
        off = node("Not", [positive], "min.off")
        switched = node("Less", [rank(off, "min"), deficit], "min.switched")
        turn_on = node("And", [off, switched], "min.turn_on")
        positive = node("Or", [positive, turn_on], "min.decided")
    if parts.max_labels is not None:
        limit = constant("max_labels", np.array(parts.max_labels, np.float32))
        kept = node("Less", [rank(positive, "max"), limit], "max.kept")
        positive = node("And", [positive, kept], "max.decided")
    return positive


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
            f"{NAME}: the exported graph does not reproduce "
            f"{type(classifier).__name__}.predict_proba (max |difference| {gap:.3g} "
            f"on {_N_PROBE} random images, shapes {proba.shape} and "
            f"{expected.shape}): torch's ONNX exporter translated part of the "
            "module differently. The file was not written."
        )
