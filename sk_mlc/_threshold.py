"""Tune one decision threshold per label by cross-validation.

:class:`ThresholdTunerCV` generalises scikit-learn's
:class:`~sklearn.model_selection.TunedThresholdClassifierCV` from binary to
multi-label targets. The costly part, fitting the classifier, happens once per
CV split whatever the number of candidate thresholds: every candidate is scored
on the pooled out-of-fold probabilities, which only needs counting.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable, validate_data

from ._compat import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    _fit_context,
)
from ._inputs import named_errors
from ._out_of_fold import out_of_fold_proba
from ._targets import positive_proba, resolve_target
from ._threshold_scores import (
    COUNT_METRICS,
    argmax_subject_to,
    confusion_counts,
    score_table,
)


def _estimator_has(attr: str):
    """For ``available_if``: the fitted (else the unfitted) estimator has ``attr``."""

    def check(self):
        getattr(getattr(self, "estimator_", self.estimator), attr)
        return True

    return check


class ThresholdTunerCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Classifier whose decision thresholds, one per label, are tuned by CV.

    ``fit`` fits a clone of ``estimator`` once per CV split, pools the
    out-of-fold positive-class probabilities into one ``(n_samples, n_labels)``
    matrix, scores every candidate threshold on it with a binary metric, keeps
    the best threshold per label (or one shared threshold), then refits a clone
    on all the data. That is ``n_splits + 1`` fits however many candidates are
    tried. ``predict`` decides ``p >= threshold``.

    When several candidates tie for the best out-of-fold score (per label, or
    for the shared threshold), the one closest to 0.5, the untuned default, is
    kept; of two equally close, the lower. Equal out-of-fold evidence is no
    reason to move away from the default: where the folds separate a label
    cleanly, the tuned classifier then decides as the untuned one would. The
    same rule breaks ties in a ``constraint``'s fallback.

    Parameters
    ----------
    estimator : estimator instance
        A classifier with ``predict_proba``, fitted on a binary or a multi-label
        indicator ``y``. A :class:`~sklearn.frozen.FrozenEstimator` (or
        ``cv="prefit"``) is used as is: no fit, thresholds scored on the data
        passed to ``fit``, which should not be the data it was trained on.

    scoring : {"f1", "fbeta", "precision", "recall", "jaccard", \
            "balanced_accuracy", "accuracy"} or callable, default="f1"
        The binary metric to maximise, per label. A callable
        ``metric(y_true, y_pred) -> float`` (higher is better) receives 0/1
        integer arrays and is called once per label and candidate.

    beta : float, default=1.0
        The ``beta`` of ``scoring="fbeta"``; > 1 weighs recall more.

    constraint : tuple (str, float) or None, default=None
        ``(metric_name, min_value)``, a metric named as in ``scoring``: maximise
        ``scoring`` among the thresholds where this metric is ``>= min_value``.
        When no candidate satisfies it for a label, the candidate with the
        highest constraint metric is chosen and a ``UserWarning`` names the label.

    thresholds : int or array-like of shape (n_thresholds,), default=19
        The candidates. An int ``n`` gives ``n`` evenly spaced values strictly
        inside (0, 1) (19 gives 0.05, 0.10, ..., 0.95); an array gives values in
        [0, 1], used sorted and without duplicates.

    cv : int, float, cross-validation generator, iterable or "prefit", default=5
        The splits. An int or splitter goes through
        :func:`~sklearn.model_selection.check_cv` (stratified K-fold for a binary
        ``y``, K-fold for a multi-label one); a float in (0, 1) is the validation
        fraction of one shuffled split; ``"prefit"`` scores the fitted
        ``estimator`` on the data given to ``fit`` and needs ``refit=False``.

    per_label : bool, default=True
        Choose one threshold per label. If False, choose one threshold for all
        labels, the one maximising the metric micro-averaged over the labels.

    refit : bool, default=True
        Refit a clone on all the data. ``False`` is only allowed with a single
        split, whose fitted clone then becomes ``estimator_``.

    n_jobs : int, default=None
        Number of CV splits fitted in parallel. ``None`` means 1.

    random_state : int, RandomState instance or None, default=None
        Seeds the shuffled split of a float ``cv``; unused otherwise.

    verbose : int, default=0
        Progress of the fits over the CV splits, as joblib's ``Parallel``
        reports it (as ``GridSearchCV``'s ``verbose``); 0 is silent. The
        estimator's own ``verbose`` shows the progress inside each fit.

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted classifier used by ``predict`` and ``predict_proba``.

    best_thresholds_ : ndarray of shape (n_labels,)
        The chosen threshold of each label; shape ``(1,)`` for a binary ``y``.
        Of tied candidates, the one closest to 0.5.

    best_score_ : float
        The metric micro-averaged over all labels (computed on the flattened
        indicator matrices) of the out-of-fold predictions made with
        ``best_thresholds_``, comparable between ``per_label=True`` and False.

    best_label_scores_ : ndarray of shape (n_labels,)
        Each label's metric at its chosen threshold.

    thresholds_ : ndarray of shape (n_thresholds,)
        The candidate thresholds, ascending.

    scores_ : ndarray of shape (n_thresholds, n_labels)
        Each label's metric at each candidate, e.g. to plot F1 against threshold.

    scores_global_ : ndarray of shape (n_thresholds,)
        The micro-averaged metric when all labels share each candidate.

    constraint_scores_ : ndarray of shape (n_thresholds, n_labels) or None
        Each label's constraint metric at each candidate; None without constraint.

    classes_ : ndarray
        The two class labels of a binary ``y`` (the positive class is
        ``classes_[1]``), or ``arange(n_labels)`` for a multi-label ``y``.

    target_type_ : {"binary", "multilabel-indicator"}
        The kind of ``y`` seen in ``fit``; it fixes the format of ``predict``.

    n_features_in_ : int
        Number of features seen during ``fit``, if ``estimator_`` exposes it.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, if ``estimator_`` exposes them.

    See Also
    --------
    sklearn.model_selection.TunedThresholdClassifierCV : The binary-only original.
    sk_mlc.CNNClassifier : Its ``threshold`` takes ``best_thresholds_`` as is.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from sk_mlc import ThresholdTunerCV
    >>> X, Y = make_multilabel_classification(
    ...     n_samples=200, n_classes=3, n_labels=1, random_state=0
    ... )
    >>> tuner = ThresholdTunerCV(
    ...     OneVsRestClassifier(LogisticRegression(max_iter=500)), cv=3
    ... ).fit(X, Y)
    >>> tuner.best_thresholds_.round(2)  # one per label, from 0.05, 0.10, ..., 0.95
    array([0.4 , 0.15, 0.4 ])
    >>> tuner.scores_.shape  # out-of-fold F1 of 19 candidates for 3 labels
    (19, 3)
    >>> default = tuner.scores_global_[9]  # all labels at 0.5
    >>> print(f"micro F1 at 0.5: {default:.3f}, tuned: {tuner.best_score_:.3f}")
    micro F1 at 0.5: 0.732, tuned: 0.756
    >>> tuner.predict(X[:2])
    array([[0, 0, 0],
           [0, 0, 1]])
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "scoring": [StrOptions(set(COUNT_METRICS)), callable],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "constraint": [tuple, list, None],
        "thresholds": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": [
            "cv_object",
            StrOptions({"prefit"}),
            Interval(RealNotInt, 0.0, 1.0, closed="neither"),
        ],
        "per_label": ["boolean"],
        "refit": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        *,
        scoring="f1",
        beta=1.0,
        constraint=None,
        thresholds=19,
        cv=5,
        per_label=True,
        refit=True,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.scoring = scoring
        self.beta = beta
        self.constraint = constraint
        self.thresholds = thresholds
        self.cv = cv
        self.per_label = per_label
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # The inner estimator is validated by its own fit, not skipped.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit per split, tune the thresholds out of fold, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, in any format ``estimator`` accepts.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Binary class labels, or a multi-label indicator matrix (dense or sparse).

        **fit_params : dict
            Passed to ``estimator.fit`` (sliced per split when sample-aligned);
            unused for a prefit estimator.

        Returns
        -------
        self : object
            The fitted tuner.
        """
        # Only y is validated here: X goes to the estimator as given (images,
        # paths...). The target is resolved from y, so y must already be the
        # matrix a list of lists encodes, and an empty or missing y is refused
        # before any fit.
        with named_errors(type(self).__name__):
            y = validate_data(self, y=y, multi_output=True)
            X, y = indexable(X, y)
        # The wording matches scikit-learn's own binary-only classifiers, so
        # its estimator checks recognise the refusal.
        target = resolve_target(
            y,
            type(self).__name__,
            kinds=("binary", "multilabel-indicator"),
            supported=(
                "only binary classification, per label: a binary y (1-D, 2 "
                "classes) or a multi-label indicator matrix of 0/1 values. Only "
                "binary classification is supported; a multiclass y has no "
                "per-label threshold to tune"
            ),
        )
        # The same table as CNNClassifier's decides how y is encoded and how
        # probabilities become predictions.
        Y = target.fit_encode(y).astype(bool)
        self._target = target
        self.classes_ = target.classes_
        self.target_type_ = target.target_type
        self.thresholds_ = self._check_thresholds()
        constraint = self._check_constraint()

        oof = out_of_fold_proba(
            self.estimator,
            X,
            y,
            cv=self.cv,
            refit=self.refit,
            n_labels=Y.shape[1],
            fit_params=fit_params,
            # A multi-label y has no single class to stratify on.
            stratify=self.target_type_ == "binary",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        self.estimator_ = oof.estimator
        self._tune(Y[oof.indices], oof.proba, constraint)

        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, attr):
                setattr(self, attr, getattr(self.estimator_, attr))
        return self

    def _check_thresholds(self) -> np.ndarray:
        if isinstance(self.thresholds, Integral):
            return np.linspace(0, 1, self.thresholds + 2)[1:-1]
        values = np.asarray(self.thresholds, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                "ThresholdTunerCV: thresholds must be an int or a non-empty 1-D "
                f"array of candidates; got an array of shape {values.shape}."
            )
        if not np.all((values >= 0) & (values <= 1)):  # also rejects NaN
            raise ValueError(
                "ThresholdTunerCV: thresholds must lie in [0, 1]; got values from "
                f"{values.min()} to {values.max()}."
            )
        return np.unique(values)

    def _check_constraint(self):
        if self.constraint is None:
            return None
        constraint = tuple(self.constraint)
        if (
            len(constraint) != 2
            or constraint[0] not in COUNT_METRICS
            or not isinstance(constraint[1], Real)
        ):
            raise ValueError(
                "ThresholdTunerCV: constraint must be None or (metric_name, "
                f"min_value) with metric_name in {sorted(COUNT_METRICS)}; got "
                f"{self.constraint!r}."
            )
        return constraint

    def _tune(self, Y: np.ndarray, P: np.ndarray, constraint) -> None:
        """Score every candidate on the out-of-fold ``P`` and keep the best."""
        counts = confusion_counts(Y, P, self.thresholds_)
        self.scores_, self.scores_global_ = score_table(
            Y, P, counts, self.scoring, self.thresholds_, self.beta
        )
        self.constraint_scores_ = None
        cons = cons_global = min_value = None
        if constraint is not None:
            name, min_value = constraint
            cons, cons_global = score_table(
                Y, P, counts, name, self.thresholds_, self.beta
            )
            self.constraint_scores_ = cons

        n_labels = Y.shape[1]
        if self.per_label:
            best, unmet = argmax_subject_to(
                self.scores_, cons, min_value, self.thresholds_
            )
            names = self.classes_[-1:] if n_labels == 1 else np.arange(n_labels)
            where = f"label(s) {names[unmet].tolist()!r}"
        else:
            shared = None if cons is None else cons_global[:, None]
            best, unmet = argmax_subject_to(
                self.scores_global_[:, None], shared, min_value, self.thresholds_
            )
            best = np.repeat(best, n_labels)
            where = "the shared threshold of all labels"
        if unmet.any():
            warnings.warn(
                f"ThresholdTunerCV: no candidate threshold reaches {constraint[0]} >= "
                f"{min_value} for {where}; chose the threshold with the highest "
                f"{constraint[0]} there instead.",
                UserWarning,
                stacklevel=4,
            )

        self.best_thresholds_ = self.thresholds_[best]
        self.best_label_scores_ = self.scores_[best, np.arange(n_labels)]
        if callable(self.scoring):
            y_pred = (P >= self.best_thresholds_).astype(int).ravel()
            self.best_score_ = float(self.scoring(Y.astype(int).ravel(), y_pred))
        else:
            chosen = counts[:, best, np.arange(n_labels)].sum(axis=1)
            self.best_score_ = float(COUNT_METRICS[self.scoring](*chosen, self.beta))

    def predict(self, X):
        """Predict with the tuned thresholds: positive where ``p >= threshold``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples, as accepted by ``estimator.predict_proba``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            For a binary ``y``, labels from ``classes_``. For a multi-label
            ``y``, a 0/1 indicator matrix of ``y``'s dtype, a CSR sparse matrix
            when ``y`` was sparse.
        """
        check_is_fitted(self, "best_thresholds_")
        proba = self.estimator_.predict_proba(X)
        # One way: the positive columns, (n_samples, n_labels), are what the
        # thresholds apply to, and the target decides from them directly.
        P = positive_proba(proba, len(self.best_thresholds_), self.estimator_)
        return self._target.decide(P, self.best_thresholds_)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """The fitted estimator's ``predict_proba``, unchanged.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples, as accepted by ``estimator.predict_proba``.

        Returns
        -------
        proba : ndarray or list of ndarray
            ``(n_samples, 2)`` for a binary ``y``; for a multi-label ``y``,
            whatever ``estimator_`` returns (``(n_samples, n_labels)`` or a list
            of ``(n_samples, 2)`` arrays).
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        # Multi-label y is passed through to the estimator, which must take it.
        tags.classifier_tags.multi_label = get_tags(
            self.estimator
        ).classifier_tags.multi_label
        tags.input_tags.sparse = get_tags(self.estimator).input_tags.sparse
        return tags
