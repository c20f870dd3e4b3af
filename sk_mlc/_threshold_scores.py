"""Scoring every candidate threshold from confusion counts, for ThresholdTunerCV."""

from __future__ import annotations

import numpy as np


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
# sklearn.metrics function with zero_division=0 would score the predictions.
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


def confusion_counts(Y: np.ndarray, P: np.ndarray, thresholds: np.ndarray):
    """TP, FP, FN, TN of ``P >= t`` for every threshold and label, each ``(T, k)``.

    Sorting each label's scores once and counting with ``searchsorted`` is exact
    and costs O(n log n) per label, instead of materialising a ``(T, n, k)``
    boolean array that grows with the number of candidates.
    """
    counts = np.empty((4, len(thresholds), Y.shape[1]), dtype=np.int64)
    for j in range(Y.shape[1]):
        pos, neg = np.sort(P[Y[:, j], j]), np.sort(P[~Y[:, j], j])
        # side="left" counts the scores strictly below t, so the rest are p >= t.
        tp = pos.size - np.searchsorted(pos, thresholds, side="left")
        fp = neg.size - np.searchsorted(neg, thresholds, side="left")
        counts[:, :, j] = tp, fp, pos.size - tp, neg.size - fp
    return counts


def argmax_subject_to(scores, constraint_scores, min_value):
    """Best row per column, among rows whose constraint is ``>= min_value``.

    Ties go to the lowest threshold. A column with no feasible row falls back to
    its highest constraint score and is flagged in the returned mask.
    """
    if constraint_scores is None:
        return scores.argmax(axis=0), np.zeros(scores.shape[1], dtype=bool)
    feasible = constraint_scores >= min_value
    best = np.where(feasible, scores, -np.inf).argmax(axis=0)
    unmet = ~feasible.any(axis=0)
    best[unmet] = constraint_scores[:, unmet].argmax(axis=0)
    return best, unmet
