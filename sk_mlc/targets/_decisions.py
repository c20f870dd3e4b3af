"""The prediction-time settings of sigmoid targets, and the decisions they make.

``threshold`` decides each label: positive where ``p >= threshold``. For a
multi-label target, a cardinality rule may follow: a row with fewer than
``min_labels`` positives switches on its most probable other labels, and a
row with more than ``max_labels`` keeps its most probable ones
(:func:`apply_cardinality`; ties go to the lower label index, as ONNX's
``TopK`` breaks them, so an exported graph decides alike). None of these
settings changes training, so tuning them needs no retraining.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.metrics import accuracy_score

from .._compat import Interval

# The constraints and the docs of the cardinality rule's parameters, which
# CNNClassifier and ThresholdTunerCV share.
CARDINALITY_CONSTRAINTS: dict = {
    "min_labels": [Interval(Integral, 0, None, closed="left")],
    "max_labels": [Interval(Integral, 1, None, closed="left"), None],
}
DECISION_DOCS = {
    "min_labels": """\
min_labels : int, default=0
    For multi-label targets: after the thresholds, a row with fewer
    positive labels switches on its most probable others until it has
    ``min_labels`` (``min_labels=1``: never an empty prediction, the
    "at least one label" rule). A prediction-time setting like
    ``threshold``: no retraining to change or tune it.""",
    "max_labels": """\
max_labels : int or None, default=None
    For multi-label targets: a row with more positive labels keeps only its
    ``max_labels`` most probable (a top-k rule); None sets no bound. Ties
    go to the lower label index. A prediction-time setting.""",
}


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


def check_cardinality(min_labels, max_labels, target, estimator_name: str):
    """``(min_labels, max_labels)`` checked against ``target``; raise if meaningless.

    Both are for multi-label targets (a binary one has one label, a
    multiclass one decides by argmax); ``min_labels <= max_labels <=
    n_labels``.
    """
    if min_labels == 0 and max_labels is None:
        return 0, None
    name = estimator_name
    if not target.multilabel:
        raise ValueError(
            f"{name}: min_labels and max_labels decide how many labels a row of "
            f"a multi-label target gets; this target is {target.target_type} "
            f"(got min_labels={min_labels}, max_labels={max_labels}). Leave them "
            "at 0 and None."
        )
    k = target.n_labels
    if min_labels > k or (max_labels is not None and max_labels > k):
        raise ValueError(
            f"{name}: min_labels={min_labels} and max_labels={max_labels} must not "
            f"exceed the target's {k} labels."
        )
    if max_labels is not None and min_labels > max_labels:
        raise ValueError(
            f"{name}: min_labels={min_labels} is more than max_labels={max_labels}."
        )
    return int(min_labels), None if max_labels is None else int(max_labels)


def apply_cardinality(P, decisions, min_labels: int = 0, max_labels=None):
    """``decisions`` (``(n, k)`` bool) with each row's count brought within bounds.

    A row with fewer than ``min_labels`` positives switches on its most
    probable labels among the others (``P``, the positive probabilities)
    until it has ``min_labels``; a row with more than ``max_labels`` keeps
    its ``max_labels`` most probable. Of equal probabilities, the lower label
    index ranks first.
    """
    decisions = np.array(decisions, dtype=bool)
    if min_labels:
        deficit = np.maximum(min_labels - decisions.sum(axis=1), 0)
        if deficit.any():
            off = ~decisions
            decisions |= off & (_rank(P, off) < deficit[:, None])
    if max_labels is not None:
        decisions &= _rank(P, decisions) < max_labels
    return decisions


def _rank(P, among):
    """Each entry's rank among its row's ``among`` entries, by descending ``P``.

    Rank 0 is the most probable; of equal probabilities the lower index
    first; entries outside ``among`` rank after all of them.
    """
    scores = np.where(among, np.asarray(P, dtype=np.float64), -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    positions = np.broadcast_to(np.arange(order.shape[1]), order.shape)
    np.put_along_axis(rank, order, positions, axis=1)
    return rank


def known_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Subset accuracy, unknown entries (NaN in ``y_true``) left out.

    A row counts as right when every known entry matches; without unknowns
    it is scikit-learn's ``accuracy_score`` (subset accuracy for multi-label
    targets), which ``score`` and a search's default scoring then compute.
    """
    y_true = y_true.toarray() if hasattr(y_true, "toarray") else y_true
    y_pred = y_pred.toarray() if hasattr(y_pred, "toarray") else y_pred
    truth = np.asarray(y_true)
    if truth.dtype.kind != "f" or not np.isnan(truth).any():
        return float(accuracy_score(y_true, y_pred, sample_weight=sample_weight))
    known = ~np.isnan(truth)
    right = ((truth == np.asarray(y_pred)) | ~known).all(axis=1)
    return float(np.average(right, weights=sample_weight))


class KnownScoreMixin:
    """``score``: accuracy with unknown entries of ``y`` (NaN) left out."""

    def score(self, X, y, sample_weight=None):
        """Accuracy of ``predict(X)``: subset accuracy for a multi-label ``y``.

        As scikit-learn's ``ClassifierMixin.score``, except that unknown
        entries of ``y`` (NaN) are left out: a row counts as right when every
        known entry matches. It is what ``GridSearchCV`` scores by default.

        Parameters
        ----------
        X : array-like
            The samples, as ``predict`` takes them.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            True labels, NaN where unknown (multi-label ``y`` only).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
        """
        return known_accuracy(y, self.predict(X), sample_weight)
