"""Tune decision thresholds, per label or shared, by cross-validation.

:class:`ThresholdTunerCV` generalises scikit-learn's
:class:`~sklearn.model_selection.TunedThresholdClassifierCV` from binary to
multi-label targets. The costly part, fitting the classifier, happens once per
CV split whatever the number of candidate thresholds: every candidate is scored
on the pooled out-of-fold probabilities, which only needs counting.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.utils import check_array, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, indexable

from .._compat import (
    CallbackSupportMixin,
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    fit_context,
)
from .._docs import fill_docs
from .._messages import named_errors
from ..targets import (
    CARDINALITY_CONSTRAINTS,
    DECISION_DOCS,
    KnownScoreMixin,
    check_cardinality,
    resolve_target,
)
from ._checks import (
    NAME,
    candidate_grid,
    check_candidates,
    check_constraint,
    check_sample_weight,
    check_scoring,
    constant_labels,
    route,
)
from ._out_of_fold import out_of_fold_proba, positive_proba
from ._scores import (
    AVERAGES,
    COUNT_METRICS,
)
from ._tuning import labels_named, tune


def _estimator_has(attr: str):
    """For ``available_if``: the fitted (else the unfitted) estimator has ``attr``."""

    def check(self):
        getattr(getattr(self, "estimator_", self.estimator), attr)
        return True

    return check


@fill_docs(DECISION_DOCS)
class ThresholdTunerCV(
    CallbackSupportMixin,
    KnownScoreMixin,
    ClassifierMixin,
    MetaEstimatorMixin,
    BaseEstimator,
):
    """Classifier whose decision thresholds, per label or shared, are tuned by CV.

    ``fit`` fits a clone of ``estimator`` once per CV split, pools the
    out-of-fold positive-class probabilities into one ``(n_samples, n_labels)``
    matrix, scores every candidate threshold on it, chooses the thresholds,
    then refits a clone on all the data. That is ``n_splits + 1`` fits however
    many candidates are tried. ``predict`` decides ``p >= threshold``.

    By default (``per_label="auto"``) each label gets its own threshold only
    where the out-of-fold evidence says it beats the one global threshold on
    held-out data; the others, and every label with fewer than
    ``min_positives`` out-of-fold positives, share the global threshold.

    When several candidates tie for the best out-of-fold score, the one
    closest to 0.5, the untuned default, is kept; of two equally close, the
    lower. Equal evidence is no reason to move away from the default.

    Parameters
    ----------
    estimator : estimator instance
        A classifier with ``predict_proba``, fitted on a binary or a multi-label
        indicator ``y``. A :class:`~sklearn.frozen.FrozenEstimator` (or
        ``cv="prefit"``) is used as is: no fit, thresholds scored on the data
        passed to ``fit``, which should not be the data it was trained on.

    scoring : {"f1", "fbeta", "precision", "recall", "jaccard", \
            "balanced_accuracy", "accuracy"} or callable, default="f1"
        The binary metric applied to each label's 0/1 decisions (a callable
        ``metric(y_true, y_pred)``, higher is better, taking ``sample_weight``
        if ``fit`` gets weights), not a scikit-learn scorer: ``average`` says
        how the labels' scores combine. Which to look at: thresholds move F1,
        never the mean average precision (a ranking measure, for comparing
        models); macro-F1 weighs rare labels as much as common ones, micro-F1
        weighs every decision alike, samples-F1 each image's set of labels.

    average : {"macro", "micro", "samples"}, default="macro"
        What the global threshold and ``best_score_`` maximise: the mean of the
        labels' scores (``"macro"``), the score of the counts pooled over all
        labels (``"micro"``), or the mean over samples of each sample's score
        over its labels (``"samples"``, named metrics only), as in
        :func:`~sklearn.metrics.f1_score`. Per-label thresholds maximise each
        label's score under ``"macro"``; under ``"micro"`` and ``"samples"``,
        where one label's threshold moves the others' best, they are tuned
        jointly by coordinate search (Pillai, Fumera & Roli, 2013). A binary
        ``y`` has one label, which all three score alike.

    beta : float, default=1.0
        The ``beta`` of ``scoring="fbeta"``; > 1 weighs recall more.

    constraint : tuple (str, float) or None, default=None
        ``(metric_name, min_value)``, a metric named as in ``scoring``: maximise
        ``scoring`` among the thresholds where this metric is ``>= min_value``
        (per label for own thresholds, averaged as ``average`` for the global
        one). Where no candidate satisfies it, the candidate with the highest
        constraint metric is chosen and a ``UserWarning`` says where.

    thresholds : int or array-like of shape (n_thresholds,), default=100
        The candidates. An int ``n`` gives ``n`` evenly spaced values from the
        lowest to the highest out-of-fold probability (of all labels whose
        probabilities vary), as scikit-learn's ``TunedThresholdClassifierCV``
        does: the optimum always lies in that range, and a recall-weighted
        metric's often far below 0.5, between the points of a fixed grid. An
        array gives values in [0, 1], used sorted and without duplicates.

    cv : int, float, cross-validation generator, iterable or "prefit", default=5
        The splits. An int gives stratified K-fold: by class for a binary
        ``y``, by iterative stratification (Sechidis et al., 2011) for a
        multi-label one, so that every label with at least ``cv`` positives has
        one in every fold; the folds are deterministic. A float in (0, 1) is
        the validation fraction of one shuffled, stratified split. A splitter
        or iterable is used as given; ``"prefit"`` scores the fitted
        ``estimator`` on the data given to ``fit`` and needs ``refit=False``.

    per_label : "auto" or bool, default="auto"
        ``True``: one threshold per label. ``False``: one threshold shared by
        all labels. ``"auto"``: per label, its own threshold or the global one,
        whichever the cross-fitted out-of-fold evidence favours: both are chosen
        on all folds but one and scored on that one, and the label keeps its own
        threshold only if that gains (``per_label_gain_``), so that a threshold
        fitted to noise is not kept. Which labels kept their own: ``per_label_``.

    min_positives : int, default=5
        With ``per_label="auto"``, a label with fewer out-of-fold positives
        uses the global threshold, with a ``UserWarning`` naming it: a
        threshold chosen from a handful of positives is mostly noise (the
        SCut fallback of Fan & Lin, 2007).

    %(min_labels)s
        The tuner scores every candidate threshold with the rule applied,
        and tunes the labels' thresholds jointly (coordinate search), since
        the rule makes one label's decisions depend on the others'.

    %(max_labels)s

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

    best_score_ : float
        The ``average`` of the out-of-fold metric with ``best_thresholds_``,
        on the pooled out-of-fold predictions: comparable between the
        ``per_label`` settings.

    best_label_scores_ : ndarray of shape (n_labels,)
        Each label's out-of-fold metric at its chosen threshold.

    per_label_ : ndarray of bool of shape (n_labels,)
        Which labels use their own threshold (the others the global one). A
        label whose out-of-fold probabilities are constant has nothing to
        tune: it keeps the candidate nearest 0.5 (the untuned default, by
        the tie rule), with a warning, and counts as its own.

    per_label_gain_ : ndarray of shape (n_labels, 2) or None
        With ``per_label="auto"``: per label, the cross-fitted gain in the
        averaged objective from its own threshold over the global one, and the
        standard error of that gain across folds; NaN for labels below
        ``min_positives``. None otherwise.

    threshold_std_ : ndarray of shape (n_labels,)
        How much each chosen threshold moves from fold to fold: the standard
        deviation across CV splits of the threshold each split alone would
        choose, by the same rule. NaN with a single split.

    cv_results_ : dict of ndarrays
        Per candidate, across CV splits (pooled scores are in ``scores_``):
        ``"thresholds"`` ``(n_thresholds,)``; ``"mean_test_score"`` and
        ``"std_test_score"``, the ``average``-d metric when all labels share the
        candidate, ``(n_thresholds,)``; ``"mean_test_score_per_label"`` and
        ``"std_test_score_per_label"``, ``(n_thresholds, n_labels)``.

    thresholds_ : ndarray of shape (n_thresholds,)
        The candidate thresholds, ascending.

    scores_ : ndarray of shape (n_thresholds, n_labels)
        Each label's pooled out-of-fold metric at each candidate.

    scores_global_ : ndarray of shape (n_thresholds,)
        The ``average``-d pooled out-of-fold metric when all labels share each
        candidate.

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
    sk_mlc.ThresholdDisplay : Plots ``scores_`` with the chosen thresholds.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.multiclass import OneVsRestClassifier
    >>> from sk_mlc import ThresholdTunerCV
    >>> X, Y = make_multilabel_classification(
    ...     n_samples=300, n_classes=3, n_labels=1, random_state=0
    ... )
    >>> tuner = ThresholdTunerCV(
    ...     OneVsRestClassifier(LogisticRegression(max_iter=500)), cv=3
    ... ).fit(X, Y)
    >>> tuner.per_label_  # own threshold, or the global one?
    array([ True, False, False])
    >>> tuner.best_thresholds_.round(2)
    array([0.55, 0.56, 0.56])
    >>> tuner.threshold_std_.round(2)  # how much each moves from fold to fold
    array([0.12, 0.05, 0.05])
    >>> tuner.scores_.shape  # out-of-fold F1 of 100 candidates for 3 labels
    (100, 3)
    >>> half = abs(tuner.thresholds_ - 0.5).argmin()  # all labels at about 0.5
    >>> default = tuner.scores_global_[half]
    >>> print(f"macro F1 at 0.5: {default:.3f}, tuned: {tuner.best_score_:.3f}")
    macro F1 at 0.5: 0.752, tuned: 0.756
    >>> tuner.predict(X[:2])
    array([[0, 0, 0],
           [0, 0, 1]])
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "scoring": [StrOptions(set(COUNT_METRICS)), callable],
        "average": [StrOptions(set(AVERAGES))],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "constraint": [tuple, list, None],
        "thresholds": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": [
            "cv_object",
            StrOptions({"prefit"}),
            Interval(RealNotInt, 0.0, 1.0, closed="neither"),
        ],
        "per_label": [StrOptions({"auto"}), "boolean"],
        "min_positives": [Interval(Integral, 0, None, closed="left")],
        **CARDINALITY_CONSTRAINTS,
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
        average="macro",
        beta=1.0,
        constraint=None,
        thresholds=100,
        cv=5,
        per_label="auto",
        min_positives=5,
        min_labels=0,
        max_labels=None,
        refit=True,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.scoring = scoring
        self.average = average
        self.beta = beta
        self.constraint = constraint
        self.thresholds = thresholds
        self.cv = cv
        self.per_label = per_label
        self.min_positives = min_positives
        self.min_labels = min_labels
        self.max_labels = max_labels
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # The inner estimator is validated by its own fit, not skipped.
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit per split, tune the thresholds out of fold, then refit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, in any format ``estimator`` accepts.

        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Binary class labels, or a multi-label indicator matrix (dense or sparse).

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in every score (weighted confusion counts),
            and passed to ``estimator.fit`` (sliced per split): directly when
            its ``fit`` takes ``sample_weight`` (else with a warning that only
            the scores are weighted), or, with metadata routing enabled, where
            the estimator requests it (``set_fit_request``).

        **fit_params : dict
            Passed to ``estimator.fit`` (sliced per split when sample-aligned);
            with metadata routing enabled, routed to the estimator and the
            splitter as they request them. Unused for a prefit estimator.

        Returns
        -------
        self : object
            The fitted tuner.
        """
        # Only y is validated here: X goes to the estimator as given (images,
        # paths...). The target is resolved from y, so y must already be the
        # matrix a list of lists encodes, and an empty or missing y is refused
        # before any fit.
        with named_errors(NAME):
            if y is None:
                raise ValueError(
                    f"{NAME} requires y to be passed, but the target y is None."
                )
            # A multi-label y may mark unknown entries with NaN.
            y = check_array(
                y,
                accept_sparse="csr",
                ensure_2d=False,
                dtype=None,
                input_name="y",
                estimator=self,
                ensure_all_finite="allow-nan",
            )
            X, y = indexable(X, y)
        # The wording matches scikit-learn's own binary-only classifiers, so
        # its estimator checks recognise the refusal.
        target = resolve_target(
            y,
            NAME,
            kinds=(
                "binary",
                "multilabel-indicator",
                "multilabel-indicator-with-unknowns",
            ),
            supported=(
                "only binary classification, per label: a binary y (1-D, 2 "
                "classes) or a multi-label indicator matrix of 0/1 values. Only "
                "binary classification is supported; a multiclass y has no "
                "per-label threshold to tune"
            ),
        )
        # The same table as CNNClassifier's decides how y is encoded and how
        # probabilities become predictions.
        encoded = target.fit_encode(y)
        Y = encoded == 1
        weights = check_sample_weight(sample_weight, len(Y))
        check_cardinality(self.min_labels, self.max_labels, target, NAME)
        check_scoring(self.scoring, self.average, sample_weight is not None)
        self._target_ = target
        self.classes_ = target.classes_
        self.target_type_ = target.target_type
        candidates = check_candidates(self.thresholds)
        constraint = check_constraint(self.constraint)
        routed = route(self, sample_weight, fit_params)

        multilabel = target.multilabel
        # scikit-learn's callbacks (sklearn.callback): each CV split's fit and
        # the refit are subtasks, into which the estimator's own tasks nest.
        context = self._init_callback_context(max_subtasks=None)
        context.call_on_fit_task_begin(estimator=self, X=X, y=y)
        oof = out_of_fold_proba(
            self.estimator,
            X,
            y,
            cv=self.cv,
            refit=self.refit,
            n_labels=Y.shape[1],
            fit_params=routed.estimator.fit,
            split_params=routed.splitter.split,
            Y=Y if multilabel else None,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            tasks=(context, self),
        )
        self.estimator_ = oof.estimator
        # Rows of weight 0 are as good as dropped: they choose nothing.
        counted = oof.proba[weights[oof.indices] > 0]
        constant = constant_labels(counted)
        if constant.all():
            raise ValueError(
                f"{NAME}: The provided estimator makes constant predictions. "
                "Therefore, it is impossible to optimize the decision threshold "
                f"(every out-of-fold probability of "
                f"{labels_named(self.classes_, constant)} is {counted.flat[0]:.6g})."
            )
        self.thresholds_ = candidate_grid(candidates, counted[:, ~constant])
        scored = weights[oof.indices]
        if target.has_unknowns:
            # Each label is scored on its known entries: weight 0 elsewhere.
            scored = scored[:, None] * ~np.isnan(encoded[oof.indices])
        vars(self).update(
            tune(
                self, Y[oof.indices], oof.proba, scored, oof.folds, constraint, constant
            )
        )

        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, attr):
                setattr(self, attr, getattr(self.estimator_, attr))
        context.call_on_fit_task_end(
            estimator=self, X=X, y=y, reconstruction_attributes={}
        )
        return self

    def get_metadata_routing(self):
        """Get metadata routing of this object.

        ``fit`` consumes ``sample_weight`` itself (weighted scores) and routes
        it, with any other fit parameter, to ``estimator.fit`` and the
        splitter's ``split`` where they request it.

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter` encapsulating
            routing information.
        """
        return (
            MetadataRouter(owner=self)
            .add_self_request(self)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
            .add(
                splitter=self.cv,
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        )

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
        target = self._target_
        bounds = check_cardinality(self.min_labels, self.max_labels, target, NAME)
        return target.decide(P, self.best_thresholds_, *bounds)

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
