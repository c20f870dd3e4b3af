"""Out-of-fold positive-class probabilities, for ThresholdTunerCV.

:func:`positive_proba` reads the positive-class columns out of any
scikit-learn classifier's ``predict_proba``; :func:`out_of_fold_proba` pools
them over the CV splits.

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
from sklearn.model_selection import StratifiedShuffleSplit, check_cv
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from .._compat import NO_CALLBACKS, check_method_params, safe_indexing
from ..model_selection import IterativeStratifiedKFold, multilabel_train_test_split


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
    folds : ndarray of shape (n_validation,)
        The CV split that predicted each row (all 0 for a single split).
    """

    estimator: object
    indices: np.ndarray
    proba: np.ndarray
    folds: np.ndarray


def out_of_fold_proba(
    estimator,
    X,
    y,
    *,
    cv,
    refit: bool,
    n_labels: int,
    fit_params: dict,
    split_params: dict | None = None,
    Y: np.ndarray | None = None,
    random_state=None,
    n_jobs: int | None = None,
    verbose: int = 0,
    tasks=None,
) -> OutOfFold:
    """Fit ``estimator`` per CV split and pool its validation probabilities.

    ``cv`` is anything :class:`~sk_mlc.ThresholdTunerCV` accepts: an int,
    splitter or iterable, a float validation fraction (one shuffled split), or
    ``"prefit"``. An int or a float splits stratified: by class for a binary
    ``y``, by iterative stratification of ``Y`` (the multi-label indicator
    matrix, None for a binary ``y``) otherwise. A prefit or frozen estimator
    is scored as is on all of ``X``. With ``refit`` a clone is fitted on all
    the data; without it, the single split's fitted clone is kept.

    ``tasks`` is ``(context, caller)``: the tuner's ``sklearn.callback``
    context and the tuner, whose callbacks see every fold's fit and the
    refit as subtasks (into which the estimator's own tasks nest), or None.
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

    splitter = _check_cv(cv, y, Y, random_state)
    if not refit and splitter.get_n_splits(X, y) > 1:
        raise ValueError(
            "ThresholdTunerCV: when cv has several folds, refit cannot be False: "
            f"got cv={cv!r} with {splitter.get_n_splits(X, y)} folds. Pass "
            "refit=True, or a single split such as cv=0.2."
        )
    # The stratified multi-label splitters read the dense indicator matrix,
    # which a sparse or list-of-lists y only spells.
    split_y = y if Y is None or not isinstance(splitter, _MULTILABEL) else Y
    splits = list(splitter.split(X, split_y, **(split_params or {})))
    context, caller = tasks or (NO_CALLBACKS, None)
    # Created here, not in the workers: a context must not change while it is
    # pickled for one (as scikit-learn's GridSearchCV does it).
    contexts = [context.subcontext(task_name="fold") for _ in splits]
    folds = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_fit_predict_fold)(
            clone(estimator),
            X,
            y,
            train,
            val,
            fit_params,
            n_labels,
            keep=not refit,
            task=(fold_context, caller),
        )
        for (train, val), fold_context in zip(splits, contexts, strict=True)
    )
    if refit:
        fitted = _fit_as_task(
            clone(estimator),
            X,
            y,
            fit_params,
            (context.subcontext(task_name="refit"), caller),
        )
    else:  # a single split: its fitted clone saves one more fit
        fitted = folds[0][0]
    # Pooled rather than averaged per fold: every sample counts once, and a
    # small fold cannot swing the choice with a noisy per-fold optimum.
    indices = np.concatenate([val for _, val in splits])
    fold_of_row = np.repeat(np.arange(len(splits)), [len(val) for _, val in splits])
    proba = np.vstack([proba for _, proba in folds])
    return OutOfFold(fitted, indices, proba, fold_of_row)


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
    n = proba.shape[0]
    return OutOfFold(estimator, np.arange(n), proba, np.zeros(n, dtype=int))


class _MultilabelSplit:
    """One stratified split of a multi-label y, as a one-split CV splitter."""

    def __init__(self, test_size: float, random_state):
        self.test_size = test_size
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1

    def split(self, X, y, groups=None):
        yield multilabel_train_test_split(
            np.arange(len(y)), y, self.test_size, self.random_state
        )


_MULTILABEL = (IterativeStratifiedKFold, _MultilabelSplit)


def _check_cv(cv, y, Y, random_state):
    """The splitter: stratified by class (binary) or iteratively (multi-label).

    scikit-learn's ``check_cv`` turns an int into ``KFold`` for a multi-label
    y, which can leave a rare label without a positive in some fold; an int
    here gives iterative stratification instead, unshuffled (deterministic, as
    ``check_cv``'s folds are), so repeated fits share a ``memory`` cache.
    """
    float_cv = isinstance(cv, Real) and not isinstance(cv, Integral)
    if Y is not None and float_cv:
        return _MultilabelSplit(cv, random_state)
    if float_cv:
        return StratifiedShuffleSplit(
            n_splits=1, test_size=cv, random_state=random_state
        )
    if Y is not None and (cv is None or isinstance(cv, Integral)):
        return IterativeStratifiedKFold(5 if cv is None else cv)
    return check_cv(cv, y, classifier=True)


def _fit_predict_fold(
    estimator, X, y, train, val, fit_params: dict, n_labels: int, keep: bool, task
):
    """Fit ``estimator`` on ``train``; return it (if ``keep``) and its proba on ``val``.

    Not keeping it spares memory and, with process-based ``n_jobs``, shipping
    every fold's fitted model (a whole network, say) back to the parent.
    """
    fit_params = check_method_params(X, fit_params, indices=train)
    X_train, y_train = safe_indexing(X, train), safe_indexing(y, train)
    _fit_as_task(estimator, X_train, y_train, fit_params, task)
    proba = estimator.predict_proba(safe_indexing(X, val))
    return (estimator if keep else None), positive_proba(proba, n_labels, estimator)


def _fit_as_task(estimator, X, y, fit_params: dict, task):
    """``estimator.fit(X, y)`` as a task of the tuner's callbacks, ``task = (context,
    caller)``: the estimator's own task tree (its epochs) nests under it."""
    context, caller = task
    metadata = (
        {"sample_weight": fit_params["sample_weight"]}
        if ("sample_weight" in fit_params)
        else None
    )
    with context.propagate_callback_context(estimator):
        context.call_on_fit_task_begin(estimator=caller, X=X, y=y, metadata=metadata)
        estimator.fit(X, y, **fit_params)
        context.call_on_fit_task_end(estimator=caller, X=X, y=y, metadata=metadata)
    return estimator
