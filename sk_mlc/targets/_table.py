"""What the shape of ``y`` decides.

Every decision that follows from the target lives here, in one table keyed by
:func:`sklearn.utils.multiclass.type_of_target`: the number of network outputs,
the loss, the output nonlinearity, how ``y`` is encoded for the loss and how
probabilities are decoded into predictions. The estimator never branches on
``y.ndim`` itself.

Prediction flows one way: the network returns logits;
:meth:`Target.proba_tensor` applies the activation and builds
``predict_proba``'s format; :meth:`Target.positive` takes the
``(n, n_labels)`` matrix of positive-class probabilities out of it, and
:meth:`Target.decide` decides from that matrix. The class weights
(``_class_weights.py``), the losses (``_losses.py``) and the checks of the
prediction-time settings (``_decisions.py``) live beside it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d

from ._class_weights import check_class_weight_1d, class_weights, per_label_weights
from ._decisions import apply_cardinality
from ._losses import Asymmetric, LossSpec, resolve_loss

_SUPPORTED = (
    "'binary', 'multiclass' or 'multilabel-indicator' targets: 1-D class labels "
    "or a 2-D multi-hot indicator matrix"
)


def sigmoid(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits)


def softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


def at_one_half(proba: np.ndarray) -> np.ndarray:
    """Encoded sigmoid decisions ``p >= 0.5``, in the dtype of the encoded target."""
    return (proba >= 0.5).astype(np.float32)


def argmax(proba: np.ndarray) -> np.ndarray:
    """Encoded softmax decisions: the index of the most probable class."""
    return proba.argmax(axis=1)


class Target:
    """Base of the three target kinds; subclasses fill in the table's columns."""

    target_type: str
    out_activation: str
    uses_threshold: bool
    # A 2-D indicator target (with or without unknown entries).
    multilabel: bool = False
    # Entries of y may be NaN: not annotated, left out of the loss and scores.
    has_unknowns: bool = False

    classes_: np.ndarray

    def __eq__(self, other) -> bool:
        """The same kind with the same learned state (a saved and a loaded one)."""
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = vars(self), vars(other)
        return mine.keys() == theirs.keys() and all(
            np.array_equal(mine[key], theirs[key])
            if isinstance(mine[key], np.ndarray)
            else mine[key] == theirs[key]
            for key in mine
        )

    __hash__ = None  # equal targets must hash alike, and their state is mutable

    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    @property
    def n_labels(self) -> int:
        """Number of thresholds a per-label ``threshold`` must provide."""
        return 1

    def check_y(self, y, name: str) -> None:
        """Raise a ``ValueError`` naming ``name`` if this kind cannot learn ``y``."""

    def fit_encode(self, y, classes=None) -> np.ndarray:
        """Learn the labels of a checked ``y`` (or ``classes``); encode ``y``."""
        y = column_or_1d(y, warn=True)
        self.classes_ = LabelEncoder().fit(y if classes is None else classes).classes_
        return self.encode(y, "")

    def encode(self, y, name: str) -> np.ndarray:
        """``y`` encoded for the loss with the learned labels (``partial_fit``)."""
        y = column_or_1d(y, warn=True)
        unknown = [label for label in np.unique(y) if label not in set(self.classes_)]
        if unknown:
            raise ValueError(
                f"{name}: y holds label(s) {unknown[:10]} outside the classes "
                f"{self.classes_.tolist()} given to the first partial_fit call."
            )
        return self._encoded(np.searchsorted(self.classes_, y))

    def _encoded(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_class_weight(self, class_weight, name: str) -> None:
        """Raise a ``ValueError`` naming ``name`` if ``class_weight`` cannot apply."""
        check_class_weight_1d(class_weight, self.classes_, name)

    def check_loss(self, loss, name: str) -> LossSpec | None:
        """``loss`` as a spec for this kind (None: cross-entropy), or raise."""
        return resolve_loss(loss)

    def criterion(
        self,
        class_weight,
        y_encoded: np.ndarray,
        label_smoothing: float = 0.0,
        loss: LossSpec | None = None,
    ) -> torch.nn.Module:
        """The loss; ``class_weight`` and ``loss`` were checked by this kind.

        ``label_smoothing`` moves the targets towards the uniform distribution
        (cross-entropy's own ``label_smoothing``) or towards 1/2 (the sigmoid
        losses, ``_losses.py``). ``loss`` is a sigmoid target's loss spec.
        """
        raise NotImplementedError

    # Plain functions, not bound methods: the trained net keeps references to
    # them (for ``net_.predict_proba`` and ``net_.predict``, which skorch's
    # scoring callbacks call during training), and must not drag this object
    # along. ``encoded_decision`` maps activated outputs to the encoded target.
    activation: staticmethod
    encoded_decision: staticmethod

    def proba_tensor(self, logits: torch.Tensor) -> torch.Tensor:
        """``predict_proba``'s layout from the network's logits ``(n, n_outputs)``.

        ``predict_proba`` computes with it, and ``to_onnx`` traces it
        (``_onnx.py``), so that an exported graph cannot drift from
        ``predict_proba``'s format.
        """
        return self.activation(logits)

    def positive(self, proba: np.ndarray) -> np.ndarray:
        """The positive-class probabilities ``(n, n_labels)`` of ``proba``.

        For multiclass targets, every class's probability ``(n, n_classes)``.
        """
        return proba

    def decide(self, positive: np.ndarray, threshold, min_labels=0, max_labels=None):
        """Predictions from the ``(n, n_labels)`` matrix of :meth:`positive`.

        ``min_labels`` and ``max_labels`` (checked by
        ``_decisions.check_cardinality``) bound a multi-label row's count.
        """
        raise NotImplementedError


class _BinaryTarget(Target):
    """Two classes, any label type: one logit, sigmoid, ``p >= threshold``."""

    target_type = "binary"
    out_activation = "sigmoid"
    uses_threshold = True

    @property
    def n_outputs(self) -> int:
        return 1

    def check_y(self, y, name):
        # type_of_target calls a y of one class "binary" too.
        classes = np.unique(_dense(y))
        if len(classes) < 2:
            raise ValueError(
                f"{name} can't train when only one class is present: y contains "
                f"only the class {classes[0]!r}. Provide samples of at least 2 "
                "classes."
            )

    def _encoded(self, indices):
        return indices.astype(np.float32)[:, None]

    def criterion(self, class_weight, y_encoded, label_smoothing=0.0, loss=None):
        pos_weight = None
        if class_weight is not None:
            # BCE weighs positives by w1 and negatives by w0; only the ratio
            # w1 / w0 changes the optimum, and that is exactly ``pos_weight``.
            w0, w1 = class_weights(class_weight, self.classes_, y_encoded.ravel())
            pos_weight = torch.tensor([w1 / w0], dtype=torch.float32)
        return resolve_loss(loss).module(pos_weight, label_smoothing, unknowns=False)

    activation = staticmethod(sigmoid)
    encoded_decision = staticmethod(at_one_half)

    def proba_tensor(self, logits):
        p = self.activation(logits)
        return torch.cat([1.0 - p, p], dim=1)

    def positive(self, proba):
        return proba[:, 1:]

    def decide(self, positive, threshold, min_labels=0, max_labels=None):
        return self.classes_[(positive[:, 0] >= threshold[0]).astype(np.intp)]


class _MulticlassTarget(Target):
    """Three or more classes: k logits, softmax, argmax (threshold unused)."""

    target_type = "multiclass"
    out_activation = "softmax"
    uses_threshold = False

    @property
    def n_outputs(self) -> int:
        return len(self.classes_)

    def _encoded(self, indices):
        return indices.astype(np.int64)

    def check_loss(self, loss, name):
        if not (isinstance(loss, str) and loss == "auto"):
            raise ValueError(
                f"{name}: loss={loss!r} is a loss for sigmoid outputs (binary and "
                "multi-label targets); this y is multiclass, which trains a "
                "softmax with cross-entropy. Leave loss='auto'."
            )
        return None

    def criterion(self, class_weight, y_encoded, label_smoothing=0.0, loss=None):
        weight = None
        if class_weight is not None:
            weights = class_weights(class_weight, self.classes_, y_encoded)
            weight = torch.as_tensor(weights, dtype=torch.float32)
        return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    activation = staticmethod(softmax)
    encoded_decision = staticmethod(argmax)

    def decide(self, positive, threshold, min_labels=0, max_labels=None):
        return self.classes_[positive.argmax(axis=1)]


class _MultilabelTarget(Target):
    """A multi-hot indicator matrix: k logits, sigmoid, ``p >= threshold`` per label."""

    target_type = "multilabel-indicator"
    out_activation = "sigmoid"
    uses_threshold = True
    multilabel = True

    @property
    def n_outputs(self) -> int:
        return len(self.classes_)

    @property
    def n_labels(self) -> int:
        return len(self.classes_)

    def check_y(self, y, name):
        # type_of_target calls any 2-valued 2-D y an indicator matrix: {0, 2} or
        # {-1, 1} would train BCE towards targets outside [0, 1].
        values = np.unique(_dense(y))
        if not np.isin(values, (0, 1)).all():
            raise ValueError(
                f"{name}: a 2-D y must be a multi-hot indicator matrix of 0/1 "
                f"values; got values {values[:10].tolist()}. Encode each label as "
                "0 (absent) or 1 (present), e.g. with (y > 0).astype(int) or "
                "sklearn.preprocessing.MultiLabelBinarizer."
            )

    def fit_encode(self, y, classes=None):
        self.sparse_ = sp.issparse(y)
        dense = _dense(y)
        self.dtype_ = dense.dtype
        self.classes_ = np.arange(dense.shape[1])
        return dense.astype(np.float32)

    def encode(self, y, name):
        dense = _dense(y)
        if dense.ndim != 2 or dense.shape[1] != self.n_labels:
            raise ValueError(
                f"{name}: expected a multi-hot y with {self.n_labels} columns, as in "
                f"the first partial_fit call; got shape {dense.shape}."
            )
        self.check_y(dense, name)
        return dense.astype(np.float32)

    def criterion(self, class_weight, y_encoded, label_smoothing=0.0, loss=None):
        pos_weight = None
        if isinstance(class_weight, str):  # "balanced"
            # Known entries only: an unknown (NaN) entry is neither.
            n_pos = (y_encoded == 1).sum(axis=0)
            n_neg = (y_encoded == 0).sum(axis=0)
            # A label that is never (or always) present has no ratio to balance.
            ratio = np.where(
                (n_pos > 0) & (n_neg > 0), n_neg / np.maximum(n_pos, 1), 1.0
            )
            pos_weight = torch.as_tensor(ratio, dtype=torch.float32)
        elif class_weight is not None:
            pos_weight = torch.as_tensor(
                per_label_weights(class_weight, self.n_labels, "class_weight"),
                dtype=torch.float32,
            )
        spec = self.check_loss(loss, "criterion")
        return spec.module(pos_weight, label_smoothing, unknowns=self.has_unknowns)

    def check_loss(self, loss, name):
        # bench_partial_labels: on imbalanced and on even mosaics, ASL ranks
        # (mAP) and decides (F1, tuned and at 0.5) better than BCE.
        return resolve_loss(loss, auto=Asymmetric)

    activation = staticmethod(sigmoid)
    encoded_decision = staticmethod(at_one_half)

    def check_class_weight(self, class_weight, name):
        if class_weight is not None and not isinstance(class_weight, str):
            per_label_weights(class_weight, self.n_labels, name)

    def decide(self, positive, threshold, min_labels=0, max_labels=None):
        decisions = apply_cardinality(
            positive, positive >= threshold, min_labels, max_labels
        )
        y_pred = decisions.astype(self.dtype_)
        return sp.csr_matrix(y_pred) if self.sparse_ else y_pred


class _PartialMultilabelTarget(_MultilabelTarget):
    """A multi-hot matrix with unknown entries (NaN: not annotated).

    Trained as a multi-label target whose loss leaves the unknown entries out
    (the mean over the known ones); ``predict`` decides every entry.
    """

    target_type = "multilabel-indicator-with-unknowns"
    has_unknowns = True

    def check_y(self, y, name):
        if sp.issparse(y):
            raise ValueError(
                f"{name}: a sparse y cannot mark unknown labels: its NaN entries "
                "would be stored values, and its missing ones mean 0. Pass a dense "
                "y with NaN where a label is not annotated."
            )
        dense = np.asarray(y, dtype=np.float64)
        known = ~np.isnan(dense)
        values = np.unique(dense[known])
        if not np.isin(values, (0, 1)).all():
            raise ValueError(
                f"{name}: a 2-D y with unknown labels must hold 0, 1 or NaN; got "
                f"values {values[:10].tolist()}."
            )
        for axis, what in ((1, "row"), (0, "column")):
            empty = np.flatnonzero(~known.any(axis=axis))
            if empty.size:
                ones = "rows" if what == "row" else "labels (columns)"
                raise ValueError(
                    f"{name}: y has {empty.size} {what}(s) with no known entry "
                    f"({what} {empty[:10].tolist()}): nothing to learn from. "
                    f"Drop those {ones}, or annotate at least one entry."
                )

    def fit_encode(self, y, classes=None):
        dense = np.asarray(y, dtype=np.float64)
        self.sparse_ = False
        self.dtype_ = np.asarray(y).dtype
        self.classes_ = np.arange(dense.shape[1])
        return dense.astype(np.float32)

    def encode(self, y, name):
        dense = np.asarray(y, dtype=np.float64)
        if dense.ndim != 2 or dense.shape[1] != self.n_labels:
            raise ValueError(
                f"{name}: expected a multi-hot y with {self.n_labels} columns, as in "
                f"the first partial_fit call; got shape {dense.shape}."
            )
        self.check_y(dense, name)
        return dense.astype(np.float32)


TARGETS: dict[str, type[Target]] = {
    "binary": _BinaryTarget,
    "multiclass": _MulticlassTarget,
    "multilabel-indicator": _MultilabelTarget,
    "multilabel-indicator-with-unknowns": _PartialMultilabelTarget,
}


def resolve_target(
    y, estimator_name: str, *, kinds=tuple(TARGETS), supported: str = _SUPPORTED
) -> Target:
    """Pick the target spec for ``y``; a type outside ``kinds`` is an error.

    ``supported`` says, in the error message, what the estimator accepts.
    """
    target_type = _unknowns_type(y, estimator_name)
    if target_type is None:
        try:
            target_type = type_of_target(y, input_name="y")
        except ValueError as exc:  # "Mix of label input types", say: whose y?
            raise ValueError(f"{estimator_name}: {exc}") from None
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
    target = TARGETS[target_type]()
    # Checked here, where the estimator's name is known (the target object is
    # part of the training cache key, so it does not keep the name).
    target.check_y(y, estimator_name)
    return target


def _unknowns_type(y, name: str):
    """``"multilabel-indicator-with-unknowns"`` for a 2-D y with NaN, else None.

    type_of_target refuses NaN; here NaN marks an entry nobody annotated,
    which only a multi-label y can have: a 1-D y's NaN is an error.
    """
    data = y.data if sp.issparse(y) else np.asarray(y)
    if data.dtype.kind not in "fc" and data.dtype != object:
        return None
    try:
        missing = np.isnan(data.astype(np.float64))
    except (TypeError, ValueError):  # strings, None: labels, not numbers
        return None
    if not missing.any():
        return None
    if sp.issparse(y):
        return "multilabel-indicator-with-unknowns"  # check_y explains the error
    if data.ndim != 2:
        raise ValueError(
            f"{name}: y holds {int(missing.sum())} NaN value(s). NaN marks an "
            "unknown entry of a 2-D multi-label y (0, 1 or NaN per label); a 1-D "
            "y's labels must all be known: drop the rows without a label."
        )
    return "multilabel-indicator-with-unknowns"


def partial_fit_target(y, classes, estimator_name: str, fitted=None) -> Target:
    """The target of a ``partial_fit`` call: 1-D ``y`` needs ``classes`` at first.

    One batch may hold a single class, or two of ten: the kind (binary or
    multiclass) follows ``classes``, not the batch. A later call continues the
    ``fitted`` target; ``classes``, when given again, must be its classes.
    """
    if fitted is not None:
        if (
            classes is not None
            and not fitted.multilabel
            and not np.array_equal(np.unique(np.asarray(classes)), fitted.classes_)
        ):
            raise ValueError(
                f"{estimator_name}: classes={np.unique(classes).tolist()} is not the "
                f"classes_ {fitted.classes_.tolist()} of the fitted model. Call "
                "fit to start over with other classes."
            )
        return fitted
    if np.ndim(y) == 2 or sp.issparse(y):
        target = resolve_target(
            y,
            estimator_name,
            kinds=("multilabel-indicator", "multilabel-indicator-with-unknowns"),
        )
        n_labels = y.shape[1]
        if classes is not None and len(classes) != n_labels:
            raise ValueError(
                f"{estimator_name}: a multi-hot y names its labels by its {n_labels} "
                f"columns; classes has {len(classes)} entries. Leave classes=None."
            )
        target.fit_encode(y)
        return target
    if classes is None:
        raise ValueError(
            f"{estimator_name}: the first partial_fit call on a 1-D y needs "
            "classes=..., every class label the model will ever see (a batch may "
            "lack some)."
        )
    classes = np.unique(np.asarray(classes))
    if len(classes) < 2:
        raise ValueError(
            f"{estimator_name}: classes must name at least 2 classes; got "
            f"{classes.tolist()}."
        )
    target = _BinaryTarget() if len(classes) == 2 else _MulticlassTarget()
    target.classes_ = classes
    return target


def _dense(y) -> np.ndarray:
    return y.toarray() if sp.issparse(y) else np.asarray(y)
