"""ThresholdTunerCV's choice: from out-of-fold probabilities to its fitted tables.

:func:`tune` scores every candidate (``_scores.py``), applies the
``per_label`` rule and the choice functions of ``_choice.py``, and returns
the tuner's fitted attributes; the warnings it gives name the labels.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from ..targets import apply_cardinality
from ._checks import NAME
from ._choice import Search, auto_rule, choose, evidence_groups, fold_results
from ._scores import LabelMetric, argmax_near_default


def tune(tuner, Y, P, weights, folds, constraint, constant) -> dict:
    """The fitted attributes of ``tuner``'s choice from the out-of-fold ``P``.

    ``tuner`` holds the parameters, ``classes_`` and ``thresholds_``.

    Labels in ``constant`` have out-of-fold probabilities that never vary:
    no threshold of theirs can be tuned, so they keep the candidate nearest
    0.5. With ``min_labels`` or ``max_labels``, every candidate is scored
    with the cardinality rule applied.
    """
    out: dict = {}
    metric = LabelMetric(tuner.scoring, tuner.beta, tuner.average)
    rule = None
    if tuner.min_labels or tuner.max_labels is not None:
        # Every candidate is scored with the cardinality rule applied.
        rule = partial(
            apply_cardinality,
            min_labels=tuner.min_labels,
            max_labels=tuner.max_labels,
        )
    cons, min_value = None, None
    if constraint is not None:
        name, min_value = constraint
        cons = LabelMetric(name, tuner.beta, tuner.average)
    search = Search(metric, tuner.thresholds_, cons, min_value, rule)
    out["scores_"], out["scores_global_"] = search.table(metric, Y, P, weights)
    out["constraint_scores_"] = None
    if constraint is not None:
        out["constraint_scores_"] = search.table(cons, Y, P, weights)[0]

    k = Y.shape[1]
    out["per_label_gain_"] = None
    if tuner.per_label == "auto" and k > 1:
        own = _auto(tuner, search, Y, P, weights, folds, out)
    else:
        # A single label's own threshold is the global one: no choice to make.
        own = np.full(k, tuner.per_label is True)
    if constant.any():
        warnings.warn(
            f"{NAME}: the estimator's out-of-fold probabilities of "
            f"{labels_named(tuner.classes_, constant)} are constant, so no "
            "threshold of theirs can be tuned; they keep the candidate nearest "
            "0.5, the untuned default.",
            UserWarning,
            stacklevel=4,
        )
        own = own & ~constant
    out["per_label_"] = own | constant

    choice = choose(search, Y, P, weights, own)
    _warn_unmet(tuner.classes_, choice, constraint)
    index = choice.index
    # Every candidate on one side of a constant probability decides alike:
    # the tie rule's choice is the default's (nearest 0.5).
    tie = np.zeros((len(tuner.thresholds_), 1))
    index[constant] = argmax_near_default(tie, tuner.thresholds_)[0]
    out["best_thresholds_"] = tuner.thresholds_[index]
    out["best_label_scores_"] = out["scores_"][index, np.arange(k)]
    out["best_score_"] = metric.overall(
        Y, search.decide(P, out["best_thresholds_"]), weights
    )

    per_label, overall, chosen = fold_results(search, Y, P, weights, folds, own)
    out["cv_results_"] = {
        "thresholds": tuner.thresholds_,
        "mean_test_score": overall.mean(axis=0),
        "std_test_score": overall.std(axis=0),
        "mean_test_score_per_label": per_label.mean(axis=0),
        "std_test_score_per_label": per_label.std(axis=0),
    }
    single = len(chosen) < 2
    out["threshold_std_"] = np.full(k, np.nan) if single else chosen.std(axis=0)
    return out


def _auto(tuner, search, Y, P, weights, folds, out: dict) -> np.ndarray:
    """``per_label="auto"``: the labels whose own threshold earns its keep."""
    positives = Y.sum(axis=0)
    few = positives < tuner.min_positives
    if few.any():
        warnings.warn(
            f"{NAME}: label(s) {_names(tuner.classes_, few)!r} have fewer than "
            f"min_positives={tuner.min_positives} out-of-fold positives "
            f"({positives[few].tolist()}); they use the global threshold.",
            UserWarning,
            stacklevel=4,
        )
    groups = evidence_groups(Y, folds)
    own, gain, se = auto_rule(search, Y, P, weights, groups)
    gain = np.column_stack([gain, se])
    gain[few] = np.nan
    out["per_label_gain_"] = gain
    return own & ~few


def _names(classes, mask) -> list:
    names = classes[-1:] if len(mask) == 1 else np.arange(len(mask))
    return names[mask].tolist()


def labels_named(classes, mask) -> str:
    """The labels of ``mask`` for a message: "label(s) [0, 3]" or "the class 1"."""
    if len(mask) == 1:
        return f"the positive class {classes[-1]!r}"
    return f"label(s) {_names(classes, mask)!r}"


def _warn_unmet(classes, choice, constraint) -> None:
    where = []
    if choice.unmet_labels.any():
        where.append(f"label(s) {_names(classes, choice.unmet_labels)!r}")
    if choice.unmet_global:
        where.append("the shared threshold of all labels")
    if where:
        name, min_value = constraint
        warnings.warn(
            f"{NAME}: no candidate threshold reaches {name} >= {min_value} for "
            f"{' and '.join(where)}; chose the threshold with the highest "
            f"{name} there instead.",
            UserWarning,
            stacklevel=5,
        )
