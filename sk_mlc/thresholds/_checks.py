"""The checks of ThresholdTunerCV's parameters and inputs, and its metadata routing.

Every check that needs only the parameters (and the number of samples) runs
before any estimator is fitted, so that a misspelt metric or a bad weight
fails at once, not after the folds.
"""

from __future__ import annotations

import warnings
from inspect import signature
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.utils import Bunch
from sklearn.utils.metadata_routing import process_routing

from .._compat import check_sample_weight as sklearn_check_sample_weight
from ._scores import COUNT_METRICS, looks_like_scorer, takes_sample_weight

NAME = "ThresholdTunerCV"


def route(tuner, sample_weight, fit_params) -> Bunch:
    """Where ``sample_weight`` and the fit parameters go, as scikit-learn routes.

    With routing enabled, ``process_routing`` sends each to whoever
    requested it. Without, everything goes to ``estimator.fit`` as before,
    ``sample_weight`` only if that ``fit`` takes it: the same rule as
    :class:`~sklearn.calibration.CalibratedClassifierCV`.
    """
    if get_config()["enable_metadata_routing"]:
        return process_routing(tuner, "fit", sample_weight=sample_weight, **fit_params)
    fit_kwargs = dict(fit_params)
    if sample_weight is not None:
        if "sample_weight" in signature(tuner.estimator.fit).parameters:
            fit_kwargs["sample_weight"] = sample_weight
        else:
            warnings.warn(
                f"{NAME}: {type(tuner.estimator).__name__}.fit does not take "
                "sample_weight, so the weights only weigh the threshold "
                "scores, not its training. Enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) to pass "
                "them to an estimator that accepts them through **params.",
                UserWarning,
                stacklevel=3,
            )
    return Bunch(estimator=Bunch(fit=fit_kwargs), splitter=Bunch(split={}))


def check_sample_weight(sample_weight, n: int) -> np.ndarray:
    """Weights of the scores: scikit-learn's check, with the tuner's terms."""
    if sample_weight is None:
        return np.ones(n)
    try:
        return sklearn_check_sample_weight(
            sample_weight, np.empty((n, 0)), ensure_non_negative=True
        ).astype(np.float64)
    except ValueError as exc:
        # scikit-learn says what is wrong; say what is expected too.
        raise ValueError(
            f"{NAME}: sample_weight must hold {n} finite numbers, one per "
            "sample, non-negative and at least one non-zero (the scores "
            f"need some weight); got: {exc}"
        ) from None


def check_scoring(scoring, average: str, weighted: bool) -> None:
    """Refuse a scorer, a callable with ``average="samples"``, unweighted callables."""
    if not callable(scoring):
        return
    if looks_like_scorer(scoring):
        raise TypeError(
            f"{NAME}: scoring must be a binary metric applied per label, one of "
            f"{sorted(COUNT_METRICS)} or a callable metric(y_true, y_pred); got "
            f"the scikit-learn scorer {scoring!r}, which scores an "
            "estimator on (X, y). Pass the metric itself (e.g. scoring='f1' or "
            "scoring=f1_score) and say how labels combine with average='macro', "
            "'micro' or 'samples'."
        )
    if average == "samples":
        raise ValueError(
            f"{NAME}: average='samples' needs a named scoring (one of "
            f"{sorted(COUNT_METRICS)}); got the callable {scoring!r}, which "
            "would be called once per sample and candidate. Use a named "
            "metric, or average='macro' or 'micro'."
        )
    if weighted and not takes_sample_weight(scoring):
        raise ValueError(
            f"{NAME}: fit got sample_weight, but the scoring callable "
            f"{scoring!r} takes no sample_weight argument; give it one "
            "(metric(y_true, y_pred, sample_weight=None)) or use a named metric."
        )


def check_candidates(thresholds):
    """``thresholds`` checked: an int (a grid to come), or the sorted candidates."""
    if isinstance(thresholds, Integral):
        return int(thresholds)
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"{NAME}: thresholds must be an int or a non-empty 1-D "
            f"array of candidates; got an array of shape {values.shape}."
        )
    if not np.all((values >= 0) & (values <= 1)):  # also rejects NaN
        raise ValueError(
            f"{NAME}: thresholds must lie in [0, 1]; got values from "
            f"{values.min()} to {values.max()}."
        )
    return np.unique(values)


def candidate_grid(candidates, P: np.ndarray) -> np.ndarray:
    """The candidate thresholds for probabilities ``P``, ascending.

    An int ``n`` is scikit-learn's rule (``TunedThresholdClassifierCV``): ``n``
    evenly spaced values from the lowest to the highest probability in ``P``,
    where every optimum lies; a fixed grid such as 0.05, 0.10, ... would miss
    one between its points (recall-weighted metrics put theirs well below
    0.5). An array is used as given.
    """
    if isinstance(candidates, np.ndarray):
        return candidates
    return np.unique(np.linspace(P.min(), P.max(), num=candidates))


def constant_labels(P: np.ndarray) -> np.ndarray:
    """Labels whose probabilities ``P`` do not vary: no threshold to tune, ``(k,)``."""
    return np.isclose(P.min(axis=0), P.max(axis=0), rtol=0, atol=1e-12)


def check_constraint(constraint):
    """``constraint`` as a ``(metric_name, min_value)`` tuple, or None."""
    if constraint is None:
        return None
    pair = tuple(constraint)
    if len(pair) != 2 or pair[0] not in COUNT_METRICS or not isinstance(pair[1], Real):
        raise ValueError(
            f"{NAME}: constraint must be None or (metric_name, "
            f"min_value) with metric_name in {sorted(COUNT_METRICS)}; got "
            f"{constraint!r}."
        )
    return pair
