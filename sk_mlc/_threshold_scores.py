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


def score_table(Y: np.ndarray, P: np.ndarray, counts, metric, thresholds, beta):
    """``metric`` per candidate: ``(T, k)`` per label, ``(T,)`` micro-averaged.

    A named metric comes from ``counts``; a callable is called on the 0/1
    predictions of every candidate, per label and on the flattened matrices.
    """
    if not callable(metric):
        score = COUNT_METRICS[metric]
        return score(*counts, beta), score(*counts.sum(axis=2), beta)
    y_true = Y.astype(int)
    per_label = np.empty((len(thresholds), Y.shape[1]))
    micro = np.empty(len(thresholds))
    for i, t in enumerate(thresholds):
        y_pred = (P >= t).astype(int)
        for j in range(Y.shape[1]):
            per_label[i, j] = metric(y_true[:, j], y_pred[:, j])
        micro[i] = metric(y_true.ravel(), y_pred.ravel())
    return per_label, micro


# What an untuned classifier decides with: CNNClassifier's default threshold,
# and the argmax of a two-class ``predict_proba``.
DEFAULT_THRESHOLD = 0.5


def argmax_subject_to(scores, constraint_scores, min_value, thresholds):
    """Best row per column, among rows whose constraint is ``>= min_value``.

    A column with no feasible row falls back to its highest constraint score and
    is flagged in the returned mask. Ties go to the threshold closest to
    ``DEFAULT_THRESHOLD``, see :func:`_argmax_near_default`.
    """
    if constraint_scores is None:
        best = _argmax_near_default(scores, thresholds)
        return best, np.zeros(scores.shape[1], dtype=bool)
    feasible = constraint_scores >= min_value
    best = _argmax_near_default(np.where(feasible, scores, -np.inf), thresholds)
    unmet = ~feasible.any(axis=0)
    best[unmet] = _argmax_near_default(constraint_scores[:, unmet], thresholds)
    return best, unmet


def _argmax_near_default(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
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
