"""Out-of-fold positive-class probabilities, for ThresholdTunerCV.

The one costly step of threshold tuning: fit a clone of the classifier once
per CV split and predict the split's validation samples. Everything after it
(scoring every candidate threshold) only counts, so it lives elsewhere.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, check_cv
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._compat import _check_method_params, _safe_indexing
from ._targets import positive_proba


class OutOfFold(NamedTuple):
    """What :func:`out_of_fold_proba` returns.

    Attributes
    ----------
    estimator : estimator instance
        The fitted classifier that serves predictions.
    indices : ndarray of shape (n_validation,)
        The sample of each row of ``proba``, pooled over the validation folds.
    proba : ndarray of shape (n_validation, n_labels)
        Positive-class probabilities, each from a model that did not train on it.
    """

    estimator: object
    indices: np.ndarray
    proba: np.ndarray


def out_of_fold_proba(
    estimator,
    X,
    y,
    *,
    cv,
    refit: bool,
    n_labels: int,
    fit_params: dict,
    stratify: bool,
    random_state=None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> OutOfFold:
    """Fit ``estimator`` per CV split and pool its validation probabilities.

    ``cv`` is anything :class:`~sk_mlc.ThresholdTunerCV` accepts: an int,
    splitter or iterable, a float validation fraction (one shuffled split,
    stratified if ``stratify``), or ``"prefit"``. A prefit or frozen estimator
    is scored as is on all of ``X``. With ``refit`` a clone is fitted on all
    the data; without it, the single split's fitted clone is kept.
    """
    cv_prefit = isinstance(cv, str) and cv == "prefit"
    if cv_prefit and refit:
        raise ValueError(
            "ThresholdTunerCV: when cv='prefit', refit cannot be True: a prefit "
            "estimator is used as is. Pass refit=False."
        )
    if cv_prefit or isinstance(estimator, FrozenEstimator):
        # A FrozenEstimator ignores fit, so K folds would score K copies of
        # the same model: score it once on all the data instead.
        return _score_prefit(estimator, X, n_labels)

    splitter = _check_cv(cv, y, stratify, random_state)
    if not refit and splitter.get_n_splits(X, y) > 1:
        raise ValueError(
            "ThresholdTunerCV: when cv has several folds, refit cannot be False: "
            f"got cv={cv!r} with {splitter.get_n_splits(X, y)} folds. Pass "
            "refit=True, or a single split such as cv=0.2."
        )
    splits = list(splitter.split(X, y))
    folds = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_fit_predict_fold)(
            clone(estimator), X, y, train, val, fit_params, n_labels, keep=not refit
        )
        for train, val in splits
    )
    if refit:
        fitted = clone(estimator).fit(X, y, **fit_params)
    else:  # a single split: its fitted clone saves one more fit
        fitted = folds[0][0]
    # Pooled rather than averaged per fold: every sample counts once, and a
    # small fold cannot swing the choice with a noisy per-fold optimum.
    indices = np.concatenate([val for _, val in splits])
    return OutOfFold(fitted, indices, np.vstack([proba for _, proba in folds]))


def _score_prefit(estimator, X, n_labels: int) -> OutOfFold:
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise NotFittedError(
            "ThresholdTunerCV: with cv='prefit' or a FrozenEstimator, `estimator` "
            f"must be fitted; got an unfitted {type(estimator).__name__}. Fit it "
            "first, or pass a cv such as cv=5 to fit it per split."
        ) from exc
    proba = positive_proba(estimator.predict_proba(X), n_labels, estimator)
    return OutOfFold(estimator, np.arange(proba.shape[0]), proba)


def _check_cv(cv, y, stratify: bool, random_state):
    if isinstance(cv, Real) and not isinstance(cv, Integral):
        splitter = StratifiedShuffleSplit if stratify else ShuffleSplit
        return splitter(n_splits=1, test_size=cv, random_state=random_state)
    return check_cv(cv, y, classifier=True)


def _fit_predict_fold(
    estimator, X, y, train, val, fit_params: dict, n_labels: int, keep: bool
):
    """Fit ``estimator`` on ``train``; return it (if ``keep``) and its proba on ``val``.

    Not keeping it spares memory and, with process-based ``n_jobs``, shipping
    every fold's fitted model (a whole network, say) back to the parent.
    """
    fit_params = _check_method_params(X, fit_params, indices=train)
    estimator.fit(_safe_indexing(X, train), _safe_indexing(y, train), **fit_params)
    proba = estimator.predict_proba(_safe_indexing(X, val))
    return (estimator if keep else None), positive_proba(proba, n_labels, estimator)
