"""Scoring thresholds from (weighted) confusion counts, for ThresholdTunerCV.

One :class:`LabelMetric` knows how to score decisions: per label, and averaged
over the labels as ``average`` says. Everything here is counting; no model is
fitted or called. ``weights`` are one per sample, ``(n,)``, or one per entry,
``(n, k)``: a multi-label ``y`` with unknown entries scores each label on its
known entries only, which carry their sample's weight while the unknown ones
carry 0.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from .._compat import is_scorer


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (scikit-learn's ``zero_division=0``)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def _balanced_accuracy(tp, fp, fn, tn, beta):
    tpr, tnr = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    has_pos, has_neg = tp + fn > 0, tn + fp > 0
    # balanced_accuracy_score averages the recall of the classes present in
    # y_true only: a label without positives scores its TNR, not (TNR + 0) / 2.
    return np.where(has_pos & has_neg, (tpr + tnr) / 2, np.where(has_pos, tpr, tnr))


# Each metric from the confusion counts of p >= t, exactly as the matching
# sklearn.metrics function with zero_division=0 would score the predictions
# (with sample_weight, from the weighted counts).
COUNT_METRICS = {
    "f1": lambda tp, fp, fn, tn, beta: _ratio(2 * tp, 2 * tp + fp + fn),
    "fbeta": lambda tp, fp, fn, tn, beta: _ratio(
        (1 + beta**2) * tp, (1 + beta**2) * tp + beta**2 * fn + fp
    ),
    "precision": lambda tp, fp, fn, tn, beta: _ratio(tp, tp + fp),
    "recall": lambda tp, fp, fn, tn, beta: _ratio(tp, tp + fn),
    "jaccard": lambda tp, fp, fn, tn, beta: _ratio(tp, tp + fp + fn),
    "accuracy": lambda tp, fp, fn, tn, beta: _ratio(tp + tn, tp + fp + fn + tn),
    "balanced_accuracy": _balanced_accuracy,
}
AVERAGES = ("macro", "micro", "samples")


def confusion_counts(Y: np.ndarray, P: np.ndarray, thresholds, weights) -> np.ndarray:
    """Weighted TP, FP, FN, TN of ``P >= t`` per threshold and label, ``(4, T, k)``.

    Sorting each label's scores once and summing weights below each threshold
    with ``searchsorted`` is exact and costs O(n log n) per label, instead of
    materialising a ``(T, n, k)`` boolean array that grows with the candidates.
    """
    counts = np.empty((4, len(thresholds), Y.shape[1]))
    for j in range(Y.shape[1]):
        w = weights[:, j] if weights.ndim == 2 else weights
        for row, mask in ((0, Y[:, j]), (1, ~Y[:, j])):
            order = np.argsort(P[mask, j], kind="stable")
            p, below = P[mask, j][order], np.cumsum(w[mask][order])
            below = np.concatenate([[0.0], below])
            # side="left" counts the scores strictly below t: the rest are p >= t.
            positive = below[-1] - below[np.searchsorted(p, thresholds, side="left")]
            counts[row, :, j] = positive  # TP for positives, FP for negatives
            counts[row + 2, :, j] = below[-1] - positive  # FN, TN
    return counts


def decision_counts(Y: np.ndarray, D: np.ndarray, weights) -> np.ndarray:
    """Weighted TP, FP, FN, TN of the decisions ``D``, per label: ``(4, k)``."""
    w = weights if weights.ndim == 2 else weights[:, None]
    return np.stack(
        [(w * (Y & D)).sum(0), (w * (~Y & D)).sum(0)]
        + [(w * (Y & ~D)).sum(0), (w * (~Y & ~D)).sum(0)]
    )


@dataclass(frozen=True)
class LabelMetric:
    """A binary metric applied per label, and its average over the labels.

    ``metric`` is a name of :data:`COUNT_METRICS` or a callable
    ``metric(y_true, y_pred[, sample_weight=...])``; ``average`` is what a
    threshold vector is judged by: the mean of the labels' scores
    (``"macro"``), the score of the pooled counts (``"micro"``), or the mean of
    each sample's score over its labels (``"samples"``).
    """

    metric: object
    beta: float
    average: str

    def table(self, Y, P, weights, thresholds):
        """Scores when every label uses each candidate: ``(T, k)`` and ``(T,)``."""
        if callable(self.metric):
            per_label = np.array(
                [self.per_label(Y, P >= t, weights) for t in thresholds]
            ).reshape(len(thresholds), Y.shape[1])
            overall = np.array([self.overall(Y, P >= t, weights) for t in thresholds])
            return per_label, overall
        counts = confusion_counts(Y, P, thresholds, weights)
        score = COUNT_METRICS[self.metric]
        per_label = score(*counts, self.beta)
        if self.average == "macro":
            overall = per_label.mean(axis=1)
        elif self.average == "micro":
            overall = score(*counts.sum(axis=2), self.beta)
        else:
            overall = np.array([self.overall(Y, P >= t, weights) for t in thresholds])
        return per_label, overall

    def per_label(self, Y, D, weights) -> np.ndarray:
        """Each label's score of the decisions ``D``: ``(k,)``."""
        if callable(self.metric):
            return np.array(
                [
                    self._call(Y[:, j], D[:, j], _column(weights, j))
                    for j in range(Y.shape[1])
                ]
            )
        return COUNT_METRICS[self.metric](*decision_counts(Y, D, weights), self.beta)

    def overall(self, Y, D, weights) -> float:
        """The averaged score of the decisions ``D`` (``(n, k)`` bool)."""
        if self.average == "macro" or Y.shape[1] == 1:
            return float(self.per_label(Y, D, weights).mean())
        if self.average == "micro":
            if callable(self.metric):
                k = Y.shape[1]
                flat = weights.ravel() if weights.ndim == 2 else np.repeat(weights, k)
                return self._call(Y.ravel(), D.ravel(), flat)
            counts = decision_counts(Y, D, weights).sum(axis=1)
            return float(COUNT_METRICS[self.metric](*counts, self.beta))
        # "samples": each row's labels are one binary problem, rows averaged
        # (over a row's known labels, weighted by the row's weight).
        known = weights > 0 if weights.ndim == 2 else np.ones(Y.shape, dtype=bool)
        row_weight = weights.max(axis=1) if weights.ndim == 2 else weights
        rows = np.stack(
            [(Y & D & known).sum(1), (~Y & D & known).sum(1), (Y & ~D & known).sum(1)]
        )
        rows = np.vstack([rows, [known.sum(1) - rows.sum(0)]])
        scores = COUNT_METRICS[self.metric](*rows, self.beta)
        return float(np.average(scores, weights=row_weight))

    def _call(self, y_true, y_pred, weights) -> float:
        # Entries of weight 0 (unknown, or weighted out) are dropped first, so
        # that a metric without sample_weight never sees them.
        counted = weights > 0
        y_true, y_pred = y_true[counted].astype(int), y_pred[counted].astype(int)
        weights = weights[counted]
        if np.all(weights == 1):
            return float(self.metric(y_true, y_pred))
        return float(self.metric(y_true, y_pred, sample_weight=weights))


def _column(weights: np.ndarray, j: int) -> np.ndarray:
    return weights[:, j] if weights.ndim == 2 else weights


def takes_sample_weight(metric) -> bool:
    """Whether a callable metric accepts ``sample_weight`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(metric).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: try it
        return True
    return any(p.name == "sample_weight" or p.kind is p.VAR_KEYWORD for p in params)


def looks_like_scorer(scoring) -> bool:
    """A scikit-learn scorer (``make_scorer``, ``get_scorer``): ``f(estimator, X, y)``.

    Scorers are callable too, so a parameter check cannot tell them from a
    metric; their first parameter, or scikit-learn's scorer internals
    (``_compat.is_scorer``), can.
    """
    if is_scorer(scoring):
        return True
    try:
        params = list(inspect.signature(scoring).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] in ("estimator", "clf", "model")


# What an untuned classifier decides with: CNNClassifier's default threshold,
# and the argmax of a two-class ``predict_proba``.
DEFAULT_THRESHOLD = 0.5


def argmax_subject_to(scores, constraint_scores, min_value, thresholds):
    """Best row per column, among rows whose constraint is ``>= min_value``.

    A column with no feasible row falls back to its highest constraint score and
    is flagged in the returned mask. Ties go to the threshold closest to
    ``DEFAULT_THRESHOLD``, see :func:`argmax_near_default`.
    """
    if constraint_scores is None:
        best = argmax_near_default(scores, thresholds)
        return best, np.zeros(scores.shape[1], dtype=bool)
    feasible = constraint_scores >= min_value
    best = argmax_near_default(np.where(feasible, scores, -np.inf), thresholds)
    unmet = ~feasible.any(axis=0)
    best[unmet] = argmax_near_default(constraint_scores[:, unmet], thresholds)
    return best, unmet


def argmax_near_default(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per column, the row of the highest score; ties go nearest the default.

    Among tied rows the threshold closest to ``DEFAULT_THRESHOLD`` wins, and of
    two equally close the lower. Equal out-of-fold evidence is no reason to
    move away from the default: a plain argmax would drift to the grid's edge
    whenever a range of candidates separates the folds equally well.
    """
    # Scores equal in exact arithmetic may differ in the last bit once rounded
    # (balanced accuracy adds two ratios), so a tie allows for rounding.
    tied = np.isclose(scores, scores.max(axis=0), rtol=1e-12, atol=1e-12)
    # Rounded too: 0.45 and 0.55 from linspace are not exactly as far from 0.5.
    distance = np.round(np.abs(thresholds - DEFAULT_THRESHOLD), 12)
    preference = np.empty(len(thresholds), dtype=np.intp)
    preference[np.lexsort((thresholds, distance))] = np.arange(len(thresholds))
    return np.where(tied, preference[:, None], len(thresholds)).argmin(axis=0)
