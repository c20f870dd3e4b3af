"""What the shape of ``y`` decides.

Every decision that follows from the target lives here, in one table keyed by
:func:`sklearn.utils.multiclass.type_of_target`: the number of network outputs,
the loss, the output nonlinearity, how ``y`` is encoded for the loss and how
probabilities are decoded into predictions. The estimator never branches on
``y.ndim`` itself.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d

_SUPPORTED = (
    "'binary', 'multiclass' or 'multilabel-indicator' targets: 1-D class labels "
    "or a 2-D multi-hot indicator matrix"
)


def sigmoid(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits)


def softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


class _Target:
    """Base of the three target kinds; subclasses fill in the table's columns."""

    target_type: str
    out_activation: str
    uses_threshold: bool

    classes_: np.ndarray

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    @property
    def n_labels(self) -> int:
        """Number of thresholds a per-label ``threshold`` must provide."""
        return 1

    def fit_encode(self, y) -> np.ndarray:
        """Learn the labels of ``y`` and return ``y`` encoded for the loss."""
        raise NotImplementedError

    def criterion(self, class_weight, y_encoded: np.ndarray) -> torch.nn.Module:
        raise NotImplementedError

    # A plain function, not a bound method: the trained net keeps a reference
    # to it, and must not drag this object (or its classes_) along.
    activation: staticmethod

    def proba(self, activated: np.ndarray) -> np.ndarray:
        """Turn the network's activated output into ``predict_proba``'s format."""
        return activated

    def decide(self, proba: np.ndarray, threshold: np.ndarray):
        raise NotImplementedError


class _BinaryTarget(_Target):
    """Two classes, any label type: one logit, sigmoid, ``p >= threshold``."""

    target_type = "binary"
    out_activation = "sigmoid"
    uses_threshold = True

    @property
    def n_outputs(self) -> int:
        return 1

    def fit_encode(self, y):
        y = column_or_1d(y, warn=True)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        _require_two_classes(self.classes_)
        return encoder.transform(y).astype(np.float32)[:, None]

    def criterion(self, class_weight, y_encoded):
        pos_weight = None
        if class_weight is not None:
            # BCE weighs positives by w1 and negatives by w0; only the ratio
            # w1 / w0 changes the optimum, and that is exactly ``pos_weight``.
            w0, w1 = _class_weights(class_weight, self.classes_, y_encoded.ravel())
            pos_weight = torch.tensor([w1 / w0], dtype=torch.float32)
        return torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    activation = staticmethod(sigmoid)

    def proba(self, activated):
        p = activated.reshape(-1, 1)
        return np.hstack([1.0 - p, p])

    def decide(self, proba, threshold):
        return self.classes_[(proba[:, 1] >= threshold[0]).astype(np.intp)]


class _MulticlassTarget(_Target):
    """Three or more classes: k logits, softmax, argmax (threshold unused)."""

    target_type = "multiclass"
    out_activation = "softmax"
    uses_threshold = False

    @property
    def n_outputs(self) -> int:
        return len(self.classes_)

    def fit_encode(self, y):
        y = column_or_1d(y, warn=True)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        return encoder.transform(y).astype(np.int64)

    def criterion(self, class_weight, y_encoded):
        weight = None
        if class_weight is not None:
            weights = _class_weights(class_weight, self.classes_, y_encoded)
            weight = torch.as_tensor(weights, dtype=torch.float32)
        return torch.nn.CrossEntropyLoss(weight=weight)

    activation = staticmethod(softmax)

    def decide(self, proba, threshold):
        return self.classes_[proba.argmax(axis=1)]


class _MultilabelTarget(_Target):
    """A multi-hot indicator matrix: k logits, sigmoid, ``p >= threshold`` per label."""

    target_type = "multilabel-indicator"
    out_activation = "sigmoid"
    uses_threshold = True

    @property
    def n_outputs(self) -> int:
        return len(self.classes_)

    @property
    def n_labels(self) -> int:
        return len(self.classes_)

    def fit_encode(self, y):
        self.sparse_ = sp.issparse(y)
        self.dtype_ = y.dtype
        self.classes_ = np.arange(y.shape[1])
        dense = y.toarray() if self.sparse_ else np.asarray(y)
        return dense.astype(np.float32)

    def criterion(self, class_weight, y_encoded):
        pos_weight = None
        if isinstance(class_weight, str):  # "balanced"
            n_pos = y_encoded.sum(axis=0)
            n_neg = len(y_encoded) - n_pos
            # A label that is never (or always) present has no ratio to balance.
            ratio = np.where(
                (n_pos > 0) & (n_neg > 0), n_neg / np.maximum(n_pos, 1), 1.0
            )
            pos_weight = torch.as_tensor(ratio, dtype=torch.float32)
        elif class_weight is not None:
            pos_weight = torch.as_tensor(
                _per_label_weights(class_weight, self.n_labels), dtype=torch.float32
            )
        return torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    activation = staticmethod(sigmoid)

    def decide(self, proba, threshold):
        y_pred = (proba >= threshold).astype(self.dtype_)
        return sp.csr_matrix(y_pred) if self.sparse_ else y_pred


_TARGETS: dict[str, type[_Target]] = {
    "binary": _BinaryTarget,
    "multiclass": _MulticlassTarget,
    "multilabel-indicator": _MultilabelTarget,
}


def resolve_target(
    y, estimator_name: str, *, kinds=tuple(_TARGETS), supported: str = _SUPPORTED
) -> _Target:
    """Pick the target spec for ``y``; a type outside ``kinds`` is an error.

    ``supported`` says, in the error message, what the estimator accepts.
    """
    target_type = type_of_target(y, input_name="y")
    if target_type not in kinds:
        hint = ""
        if target_type == "multiclass-multioutput":
            values = np.unique(y.data if sp.issparse(y) else np.asarray(y))
            hint = (
                " A 2-D y must be a multi-hot indicator matrix of 0/1 values; got "
                f"values {values[:10]}."
            )
        elif target_type.startswith("continuous"):
            hint = (
                " Maybe you are trying to fit a classifier, which expects discrete "
                "classes, on a regression target with continuous values."
            )
        raise ValueError(
            f"Unknown label type: {target_type!r}. {estimator_name} supports "
            f"{supported}.{hint}"
        )
    return _TARGETS[target_type]()


def positive_proba(proba, n_labels: int, estimator) -> np.ndarray:
    """The positive-class probabilities as one ``(n_samples, n_labels)`` array.

    Accepts the three ``predict_proba`` layouts of scikit-learn classifiers:
    ``(n, 2)`` for binary, ``(n, n_labels)`` for multi-label (MLPClassifier,
    OneVsRestClassifier), and a list of ``n_labels`` ``(n, 2)`` arrays
    (RandomForestClassifier, MultiOutputClassifier).
    """
    if isinstance(proba, list):
        if len(proba) != n_labels:
            raise ValueError(
                f"ThresholdTunerCV expected predict_proba to return {n_labels} "
                f"arrays, one per label; got a list of {len(proba)}."
            )
        columns = []
        for j, p in enumerate(proba):
            p = np.asarray(p, dtype=np.float64)
            if p.shape[1] == 1:
                # A label constant in a training fold leaves a one-column proba;
                # the estimator's classes_ says which class that column is.
                classes = getattr(estimator, "classes_", None)
                only_class = 0 if classes is None else np.ravel(classes[j])[0]
                p = np.hstack([1 - p, p]) if only_class == 1 else np.hstack([p, 1 - p])
            columns.append(p[:, 1])
        return np.column_stack(columns)
    proba = np.asarray(proba, dtype=np.float64)
    if n_labels == 1 and proba.ndim == 2 and proba.shape[1] == 2:
        return proba[:, 1:]
    if proba.ndim == 2 and proba.shape[1] == n_labels:
        return proba
    expected = "(n_samples, 2)" if n_labels == 1 else f"(n_samples, {n_labels})"
    raise ValueError(
        f"ThresholdTunerCV expected predict_proba to return shape {expected}; got "
        f"{proba.shape}. Is the estimator fitted on the same kind of target?"
    )


def check_threshold(threshold, n_labels: int, estimator_name: str) -> np.ndarray:
    """Return ``threshold`` as a float array of shape ``(n_labels,)``, or raise."""
    if isinstance(threshold, Real) and not isinstance(threshold, bool):
        values = np.full(n_labels, float(threshold))
    else:
        try:
            values = np.asarray(threshold, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{estimator_name}: threshold must be a float in [0, 1] or an array "
                f"of one float per label; got {threshold!r}."
            ) from exc
        if values.ndim != 1 or len(values) != n_labels:
            raise ValueError(
                f"{estimator_name}: a per-label threshold must have shape "
                f"({n_labels},), one value per label; got shape {values.shape}."
            )
    if not np.all((values >= 0) & (values <= 1)):  # also rejects NaN
        raise ValueError(
            f"{estimator_name}: threshold must lie in [0, 1]; got {threshold!r}."
        )
    return values


def _require_two_classes(classes: np.ndarray) -> None:
    if len(classes) < 2:
        raise ValueError(
            "Classifier can't train when only one class is present: y contains "
            f"only the class {classes[0]!r}. Provide samples of at least 2 classes."
        )


def _class_weights(class_weight, classes: np.ndarray, y_encoded: np.ndarray):
    """Per-class weights for 1-D targets, in the order of ``classes``."""
    present = np.arange(len(classes))
    if isinstance(class_weight, str):  # "balanced"
        return compute_class_weight(
            "balanced", classes=present, y=y_encoded.astype(int)
        )
    if not isinstance(class_weight, dict):
        raise ValueError(
            "class_weight for a 1-D y must be None, 'balanced' or a dict "
            f"{{class label: weight}}; got {type(class_weight).__name__}."
        )
    unknown = [label for label in class_weight if label not in set(classes.tolist())]
    if unknown:
        raise ValueError(
            f"class_weight names labels {unknown} that are not in y's classes "
            f"{classes.tolist()}."
        )
    return np.array([float(class_weight.get(label, 1.0)) for label in classes])


def _per_label_weights(class_weight, n_labels: int) -> np.ndarray:
    """Positive-class weights for a multi-label target (one per label)."""
    if isinstance(class_weight, dict):
        weights = np.ones(n_labels)
        for label, weight in class_weight.items():
            if not (isinstance(label, (int, np.integer)) and 0 <= label < n_labels):
                raise ValueError(
                    "class_weight for a multi-label y maps label indices "
                    f"0..{n_labels - 1} to positive-class weights; got key {label!r}."
                )
            weights[label] = weight
        return weights
    weights = np.asarray(class_weight, dtype=np.float64)
    if weights.shape != (n_labels,) or np.any(weights <= 0):
        raise ValueError(
            "class_weight for a multi-label y must be 'balanced', a dict or an "
            f"array of {n_labels} positive per-label weights; got {class_weight!r}."
        )
    return weights
