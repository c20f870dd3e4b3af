"""Behaviour of ThresholdTunerCV: what it fits, what it chooses, where it plugs in."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import (
    load_breast_cancer,
    make_classification,
    make_multilabel_classification,
)
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    get_scorer,
    jaccard_score,
    make_scorer,
    precision_score,
    recall_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    TunedThresholdClassifierCV,
    cross_val_predict,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from sk_mlc import ThresholdTunerCV


class ProbaFromX(ClassifierMixin, BaseEstimator):
    """Returns X's columns as the positive-class probabilities; fit learns nothing.

    Out-of-fold probabilities are then exactly X, so the tuner's choices can be
    checked against a brute force on X. Every fit is counted on the class, which
    clones share (tests that count fits run with n_jobs=None, in-process).
    """

    fits = 0
    weight_sizes: list = []

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        if sample_weight is not None:
            type(self).weight_sizes.append(len(sample_weight))
        self.binary_ = len(y.shape) == 1
        self.classes_ = np.unique(y) if self.binary_ else np.arange(y.shape[1])
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        P = np.clip(np.asarray(X, dtype=float), 0, 1)
        return np.column_stack([1 - P[:, 0], P[:, 0]]) if self.binary_ else P


# The former default candidates, 0.05, 0.10, ..., 0.95: tests of the choice
# rules that name a candidate (0.35, the tie at 0.5) pass them explicitly.
GRID19 = np.linspace(0, 1, 21)[1:-1]


@pytest.fixture(autouse=True)
def _reset_counters():
    ProbaFromX.fits = 0
    ProbaFromX.weight_sizes = []


def shifted_scores(n=300, seed=0):
    """Two labels whose best thresholds differ: label 1's scores are ~0.3x label 0's."""
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, 2) < 0.4).astype(int)
    P = np.clip(0.3 + 0.4 * Y + rng.normal(scale=0.15, size=Y.shape), 0, 1)
    P[:, 1] *= 0.3
    return P, Y


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(
        n_samples=150, n_features=8, n_classes=3, n_labels=1, random_state=0
    )
    return X, Y


def ovr():
    return OneVsRestClassifier(LogisticRegression(max_iter=300))


# --- What it fits --------------------------------------------------------------


@pytest.mark.parametrize("thresholds", [3, 50, [0.1, 0.5, 0.9]])
def test_one_fit_per_split_plus_one_refit_whatever_the_thresholds(thresholds):
    P, Y = shifted_scores(60)
    ThresholdTunerCV(ProbaFromX(), thresholds=thresholds, cv=3).fit(P, Y)
    assert ProbaFromX.fits == 3 + 1


def test_single_split_without_refit_reuses_the_split_fit():
    P, Y = shifted_scores(60)
    tuner = ThresholdTunerCV(ProbaFromX(), cv=0.25, refit=False, random_state=0)
    tuner.fit(P, Y)
    assert ProbaFromX.fits == 1
    assert hasattr(tuner.estimator_, "classes_")


@pytest.mark.parametrize("frozen", [True, False])
def test_prefit_estimator_is_scored_as_is(frozen):
    P, Y = shifted_scores(60)
    fitted = ProbaFromX().fit(P, Y)
    ProbaFromX.fits = 0
    estimator, cv = (FrozenEstimator(fitted), 5) if frozen else (fitted, "prefit")
    tuner = ThresholdTunerCV(estimator, cv=cv, refit=False).fit(P, Y)
    assert ProbaFromX.fits == 0
    assert tuner.estimator_ is estimator
    # Scored on all of the given data: exactly the brute force on P itself.
    expected = [f1_score(Y[:, 0], P[:, 0] >= t) for t in tuner.thresholds_]
    np.testing.assert_allclose(tuner.scores_[:, 0], expected)


def test_prefit_and_refit_are_inconsistent_like_in_scikit_learn():
    P, Y = shifted_scores(60)
    with pytest.raises(ValueError, match="cv='prefit', refit cannot be True"):
        ThresholdTunerCV(ProbaFromX().fit(P, Y), cv="prefit").fit(P, Y)
    with pytest.raises(NotFittedError, match="must be fitted"):
        ThresholdTunerCV(ProbaFromX(), cv="prefit", refit=False).fit(P, Y)
    with pytest.raises(ValueError, match="several folds, refit cannot be False"):
        ThresholdTunerCV(ProbaFromX(), cv=3, refit=False).fit(P, Y)


def test_fit_params_are_sliced_per_split_and_passed_whole_to_the_refit():
    P, Y = shifted_scores(60)
    ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y, sample_weight=np.ones(60))
    assert ProbaFromX.weight_sizes == [40, 40, 40, 60]


# --- What it chooses -----------------------------------------------------------


def test_per_label_thresholds_follow_each_label_and_beat_a_shared_one():
    P, Y = shifted_scores()
    per_label = ThresholdTunerCV(
        ProbaFromX(), cv=3, per_label=True, thresholds=GRID19
    ).fit(P, Y)
    shared = ThresholdTunerCV(
        ProbaFromX(), cv=3, per_label=False, thresholds=GRID19
    ).fit(P, Y)

    low, high = per_label.best_thresholds_[1], per_label.best_thresholds_[0]
    assert low < 0.3 < high
    assert np.unique(shared.best_thresholds_).size == 1
    assert per_label.best_score_ > shared.best_score_
    # The shared threshold is the best of the grid, so at least as good as 0.5.
    at_half = shared.scores_global_[np.isclose(shared.thresholds_, 0.5)][0]
    assert shared.best_score_ >= at_half
    assert shared.best_score_ == pytest.approx(shared.scores_global_.max())

    # And on fresh data from the same process, the advantage holds.
    P_new, Y_new = shifted_scores(seed=1)
    f1_label = f1_score(Y_new, per_label.predict(P_new), average="micro")
    f1_shared = f1_score(Y_new, shared.predict(P_new), average="micro")
    assert f1_label > f1_shared


def test_default_grid_and_chosen_thresholds_are_members_of_it():
    # scikit-learn's rule: 100 points from the lowest to the highest
    # out-of-fold probability (ProbaFromX's probabilities are X itself).
    P, Y = shifted_scores()
    tuner = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    np.testing.assert_allclose(tuner.thresholds_, np.linspace(P.min(), P.max(), 100))
    assert np.isin(tuner.best_thresholds_, tuner.thresholds_).all()
    assert tuner.scores_.shape == (100, 2) and tuner.scores_global_.shape == (100,)
    assert tuner.best_label_scores_ == pytest.approx(tuner.scores_.max(axis=0))
    # An int asks for that many points over the same range.
    seven = ThresholdTunerCV(ProbaFromX(), cv=3, thresholds=7).fit(P, Y)
    np.testing.assert_allclose(seven.thresholds_, np.linspace(P.min(), P.max(), 7))


METRICS = {
    "f1": f1_score,
    "precision": precision_score,
    "recall": recall_score,
    "jaccard": jaccard_score,
}


@pytest.mark.parametrize(
    "scoring, metric",
    [
        *METRICS.items(),
        ("fbeta", lambda y, p: fbeta_score(y, p, beta=2, zero_division=0)),
        ("accuracy", accuracy_score),
        ("balanced_accuracy", balanced_accuracy_score),
    ],
)
def test_scores_match_sklearn_metrics_on_cross_val_predict(multilabel, scoring, metric):
    X, Y = multilabel
    cv = KFold(3)
    P = cross_val_predict(ovr(), X, Y, cv=cv, method="predict_proba")
    kwargs = {"zero_division": 0} if scoring in METRICS else {}

    def macro(y_true, y_pred):
        return np.mean(
            [metric(t, p, **kwargs) for t, p in zip(y_true.T, y_pred.T, strict=True)]
        )

    def micro(y_true, y_pred):  # the counts pooled over labels: flattened
        return metric(y_true.ravel(), y_pred.ravel(), **kwargs)

    for average, overall in [("macro", macro), ("micro", micro)]:
        tuner = ThresholdTunerCV(
            ovr(), scoring=scoring, average=average, beta=2, thresholds=5, cv=cv
        ).fit(X, Y)
        for i, t in enumerate(tuner.thresholds_):
            for j in range(Y.shape[1]):
                expected = metric(Y[:, j], (P[:, j] >= t).astype(int), **kwargs)
                assert tuner.scores_[i, j] == pytest.approx(expected)
            y_pred = (P >= t).astype(int)
            assert tuner.scores_global_[i] == pytest.approx(overall(Y, y_pred))
        y_pred = (P >= tuner.best_thresholds_).astype(int)
        assert tuner.best_score_ == pytest.approx(overall(Y, y_pred))


def test_fbeta_with_beta_2_favours_recall_with_lower_thresholds():
    P, Y = shifted_scores()
    f1 = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    f2 = ThresholdTunerCV(ProbaFromX(), cv=3, scoring="fbeta", beta=2).fit(P, Y)
    assert (f2.best_thresholds_ <= f1.best_thresholds_).all()
    assert (f2.best_thresholds_ < f1.best_thresholds_).any()


def test_recall_alone_keeps_the_highest_candidate_that_finds_every_positive():
    P, Y = shifted_scores()
    own = {"cv": 3, "per_label": True}
    recall = ThresholdTunerCV(ProbaFromX(), scoring="recall", **own).fit(P, Y)
    precision = ThresholdTunerCV(ProbaFromX(), scoring="precision", **own).fit(P, Y)
    for j, t in enumerate(recall.best_thresholds_):
        # Every candidate up to the first miss ties at recall 1; all lie below
        # 0.5, so the tie goes to the highest.
        assert t == recall.thresholds_[recall.scores_[:, j] == 1].max() < 0.5
    assert (precision.best_thresholds_ > recall.best_thresholds_).all()


def separated(negatives, positives, n=40):
    """A binary y that every threshold in (negatives, positives] scores perfectly."""
    y = np.arange(n) % 2
    return np.where(y == 1, positives, negatives).astype(float)[:, None], y


@pytest.mark.parametrize(
    "negatives, positives, thresholds, expected",
    [
        (0.1, 0.9, GRID19, 0.5),  # 0.15 ... 0.85 tie: keep the default
        (0.07, 0.37, GRID19, 0.35),  # 0.10 ... 0.35 tie: the one nearest 0.5
        (0.62, 0.97, GRID19, 0.65),  # 0.65 ... 0.95 tie: likewise from above
        (0.1, 0.9, [0.3, 0.4, 0.6, 0.7], 0.4),  # 0.4 and 0.6 equally near: lower
    ],
)
def test_tied_candidates_go_to_the_one_closest_to_one_half(
    negatives, positives, thresholds, expected
):
    X, y = separated(negatives, positives)
    tuner = ThresholdTunerCV(ProbaFromX(), thresholds=thresholds, cv=4).fit(X, y)
    assert tuner.best_label_scores_[0] == 1.0
    assert tuner.best_thresholds_[0] == pytest.approx(expected)


def test_ties_resolve_per_label_and_for_the_shared_threshold():
    (x0, y), (x1, _) = separated(0.1, 0.9), separated(0.07, 0.37)
    X, Y = np.hstack([x0, x1]), np.column_stack([y, y])
    per_label = ThresholdTunerCV(
        ProbaFromX(), cv=4, per_label=True, thresholds=GRID19
    ).fit(X, Y)
    np.testing.assert_allclose(per_label.best_thresholds_, [0.5, 0.35])
    # Shared: only 0.15 ... 0.35 separate both labels; 0.35 is nearest 0.5.
    shared = ThresholdTunerCV(
        ProbaFromX(), cv=4, per_label=False, thresholds=GRID19
    ).fit(X, Y)
    np.testing.assert_allclose(shared.best_thresholds_, [0.35, 0.35])
    assert shared.best_score_ == 1.0
    np.testing.assert_array_equal(shared.predict(X), Y)


def test_callable_scoring_matches_the_named_metric():
    P, Y = shifted_scores(120)
    named = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    custom = ThresholdTunerCV(
        ProbaFromX(), cv=3, scoring=lambda y, p: f1_score(y, p, zero_division=0)
    ).fit(P, Y)
    np.testing.assert_allclose(custom.scores_, named.scores_)
    np.testing.assert_allclose(custom.scores_global_, named.scores_global_)
    np.testing.assert_array_equal(custom.best_thresholds_, named.best_thresholds_)
    assert custom.best_score_ == pytest.approx(named.best_score_)


def test_constraint_maximises_scoring_among_thresholds_that_meet_it():
    P, Y = shifted_scores()
    tuner = ThresholdTunerCV(
        ProbaFromX(),
        scoring="precision",
        constraint=("recall", 0.9),
        cv=3,
        per_label=True,
    ).fit(P, Y)
    for j, t in enumerate(tuner.best_thresholds_):
        feasible = tuner.constraint_scores_[:, j] >= 0.9
        chosen = tuner.thresholds_ == t
        assert feasible[chosen].all()
        assert tuner.scores_[chosen, j] == tuner.scores_[feasible, j].max()


def test_unreachable_constraint_warns_and_falls_back_to_the_best_constraint():
    P, Y = shifted_scores()
    tuner = ThresholdTunerCV(
        ProbaFromX(),
        scoring="precision",
        constraint=["recall", 1.01],
        cv=3,
        per_label=True,
    )
    with pytest.warns(UserWarning, match=r"recall >= 1.01 for label\(s\) \[0, 1\]"):
        tuner.fit(P, Y)
    for j, t in enumerate(tuner.best_thresholds_):
        # The best recall is 1, reached up to some threshold below 0.5: the tie
        # between those goes to the one closest to 0.5.
        assert t == tuner.thresholds_[tuner.constraint_scores_[:, j] == 1].max()
    with pytest.warns(UserWarning, match="shared threshold"):
        tuner.set_params(per_label=False).fit(P, Y)


# --- Target formats and estimators ----------------------------------------------


def test_binary_string_labels():
    X, y = make_classification(n_samples=120, weights=[0.8], random_state=0)
    y = np.where(y == 1, "yes", "no")
    tuner = ThresholdTunerCV(LogisticRegression(), cv=3).fit(X, y)
    assert tuner.best_thresholds_.shape == (1,)
    np.testing.assert_array_equal(tuner.classes_, ["no", "yes"])
    yes = tuner.predict_proba(X)[:, 1] >= tuner.best_thresholds_[0]
    np.testing.assert_array_equal(tuner.predict(X), np.where(yes, "yes", "no"))
    assert tuner.score(X, y) == accuracy_score(y, tuner.predict(X))


def test_sparse_y_gives_the_same_thresholds_and_sparse_predictions():
    P, Y = shifted_scores(90)
    dense = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    sparse = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, sp.csr_matrix(Y))
    np.testing.assert_array_equal(sparse.best_thresholds_, dense.best_thresholds_)
    y_pred = sparse.predict(P)
    assert sp.issparse(y_pred)
    np.testing.assert_array_equal(y_pred.toarray(), dense.predict(P))


def test_list_of_lists_y_is_the_indicator_matrix_it_spells():
    P, Y = shifted_scores(90)
    array = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    lists = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y.tolist())
    np.testing.assert_array_equal(lists.best_thresholds_, array.best_thresholds_)
    y_pred = lists.predict(P)
    assert y_pred.dtype == array.predict(P).dtype
    np.testing.assert_array_equal(y_pred, array.predict(P))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_multilabel_predicts_a_dense_indicator(multilabel):
    X, Y = multilabel
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    tuner = ThresholdTunerCV(mlp, cv=3).fit(X, Y)
    y_pred = tuner.predict(X)
    assert y_pred.shape == Y.shape and y_pred.dtype == Y.dtype
    assert set(np.unique(y_pred)) <= {0, 1}
    assert tuner.n_features_in_ == X.shape[1]
    assert tuner.scores_.shape == (100, 3)  # the default 100 candidates


def test_list_of_per_label_probas_from_a_random_forest(multilabel):
    X, Y = multilabel
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    tuner = ThresholdTunerCV(forest, cv=3).fit(X, Y)
    positive = np.column_stack([p[:, 1] for p in tuner.predict_proba(X)])
    np.testing.assert_array_equal(
        tuner.predict(X), (positive >= tuner.best_thresholds_).astype(Y.dtype)
    )


def test_a_label_constant_in_training_reads_its_one_proba_column_from_classes():
    # A forest fitted on a constant label returns one (n, 1) proba column for
    # it; only the forest's classes_ say whether that column is "0" or "1".
    X = np.random.RandomState(0).rand(30, 2)
    Y = np.column_stack([np.arange(30) % 2, np.zeros(30, int), np.ones(30, int)])
    forest = RandomForestClassifier(n_estimators=3, random_state=0)
    y_pred = ThresholdTunerCV(forest, cv=3, min_positives=0).fit(X, Y).predict(X)
    assert (y_pred[:, 1] == 0).all() and (y_pred[:, 2] == 1).all()


def test_a_proba_layout_that_does_not_match_y_says_what_was_expected(multilabel):
    X, Y = multilabel
    binary = FrozenEstimator(LogisticRegression().fit(X, Y[:, 0]))
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\); got \(150, 2\)"):
        ThresholdTunerCV(binary).fit(X, Y)


# --- Where it plugs in ----------------------------------------------------------


def test_pipeline_last_step(multilabel):
    X, Y = multilabel
    pipe = make_pipeline(StandardScaler(), ThresholdTunerCV(ovr(), cv=3)).fit(X, Y)
    assert pipe.predict(X).shape == Y.shape
    assert pipe[-1].best_thresholds_.shape == (3,)


def test_grid_search_over_inner_and_own_parameters(multilabel):
    X, Y = multilabel
    grid = GridSearchCV(
        ThresholdTunerCV(ovr(), cv=2),
        {"estimator__estimator__C": [0.1, 1.0], "per_label": [True, False]},
        scoring="f1_micro",
        cv=2,
    ).fit(X, Y)
    assert set(grid.best_params_) == {"estimator__estimator__C", "per_label"}
    assert grid.best_estimator_.predict(X).shape == Y.shape


def test_clone_and_pickle(multilabel):
    X, Y = multilabel
    tuner = ThresholdTunerCV(ovr(), thresholds=5, cv=3, per_label=False)
    assert clone(tuner).get_params()["thresholds"] == 5
    fitted = tuner.fit(X, Y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


def test_tags_take_multi_label_support_from_the_estimator():
    # The tuner passes a multi-label y through, so it supports what its estimator does.
    assert get_tags(ThresholdTunerCV(MLPClassifier())).classifier_tags.multi_label
    tags = get_tags(ThresholdTunerCV(LogisticRegression())).classifier_tags
    assert not tags.multi_label and not tags.multi_class


# --- Errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "y, match",
    [
        (np.arange(60) % 3, "label type: 'multiclass'"),
        (np.linspace(0, 1, 60), "label type: 'continuous'"),
    ],
)
def test_unsupported_targets_say_what_is_supported(y, match):
    with pytest.raises(ValueError, match=match) as exc:
        ThresholdTunerCV(ProbaFromX()).fit(np.zeros((60, 1)), y)
    assert "Only binary" in str(exc.value) and "multi-label" in str(exc.value)


@pytest.mark.parametrize(
    "y, match",
    [(None, "requires y to be passed"), ([], "0 sample\\(s\\)")],
)
def test_missing_or_empty_y_is_refused_before_any_fit(y, match):
    X = np.zeros((0 if y is not None else 5, 2))
    with pytest.raises(ValueError, match=match):
        ThresholdTunerCV(ProbaFromX()).fit(X, y)
    assert ProbaFromX.fits == 0


def test_estimator_without_predict_proba_is_rejected():
    P, Y = shifted_scores(30)
    with pytest.raises(ValueError, match="predict_proba"):
        ThresholdTunerCV(Ridge()).fit(P, Y[:, 0])
    assert not hasattr(ThresholdTunerCV(Ridge()), "predict_proba")


@pytest.mark.parametrize(
    "thresholds, match",
    [
        ([0.2, 1.5], "must lie in \\[0, 1\\]"),
        ([], "non-empty 1-D"),
        ([[0.2, 0.3]], "non-empty 1-D"),
        (0, "thresholds"),
    ],
)
def test_bad_thresholds(thresholds, match):
    P, Y = shifted_scores(30)
    with pytest.raises(ValueError, match=match):
        ThresholdTunerCV(ProbaFromX(), thresholds=thresholds, cv=3).fit(P, Y)


@pytest.mark.parametrize(
    "constraint", [("nope", 0.5), ("recall",), ("recall", "high"), "recall"]
)
def test_bad_constraint(constraint):
    P, Y = shifted_scores(30)
    with pytest.raises(ValueError, match="constraint"):
        ThresholdTunerCV(ProbaFromX(), constraint=constraint, cv=3).fit(P, Y)


def test_predict_before_fit():
    tuner = ThresholdTunerCV(ProbaFromX())
    with pytest.raises(NotFittedError):
        tuner.predict(np.zeros((2, 2)))
    with pytest.raises(NotFittedError):
        tuner.predict_proba(np.zeros((2, 2)))


# --- Multi-label splits: iterative stratification --------------------------------


class RecordsY(ProbaFromX):
    """ProbaFromX that keeps the label counts of every y it is fitted on."""

    label_counts: list = []

    def fit(self, X, y, sample_weight=None):
        type(self).label_counts.append(np.asarray(y).sum(axis=0))
        return super().fit(X, y, sample_weight)


def test_default_folds_give_a_rare_label_a_positive_in_every_fold():
    P, Y = shifted_scores(100)
    Y[:, 1] = 0
    Y[:5, 1] = 1  # five positives, consecutive: KFold(5) would put all in one fold
    RecordsY.label_counts = []
    tuner = ThresholdTunerCV(RecordsY(), cv=5, min_positives=0).fit(P, Y)
    # Each of the 5 training folds (then the refit) saw 4 of the 5 positives,
    # so each validation fold held one.
    assert [counts[1] for counts in RecordsY.label_counts] == [4, 4, 4, 4, 4, 5]
    assert (tuner.cv_results_["std_test_score_per_label"] >= 0).all()


def test_a_float_cv_holds_out_a_stratified_fraction():
    P, Y = shifted_scores(100)
    Y[:, 1] = 0
    Y[:10, 1] = 1
    RecordsY.label_counts = []
    ThresholdTunerCV(RecordsY(), cv=0.2, random_state=0, min_positives=0).fit(P, Y)
    train_counts = RecordsY.label_counts[0]
    assert train_counts[1] == 8  # 2 of the 10 positives held out, as 20 %


# --- per_label="auto" and the rare-label fallback ---------------------------------


def exchangeable_scores(n, seed, k=4):
    """Labels drawn alike: any difference between their best thresholds is noise."""
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, k) < 0.3).astype(int)
    P = np.clip(0.35 + 0.3 * Y + rng.normal(scale=0.2, size=Y.shape), 0, 1)
    return P, Y


@pytest.mark.parametrize(
    "make",
    [
        lambda seed, n: shifted_scores(n, seed),
        lambda seed, n: exchangeable_scores(n, seed),
    ],
    ids=["thresholds-differ", "labels-alike"],
)
@pytest.mark.parametrize("average", ["macro", "micro"])
def test_auto_is_never_far_below_the_better_fixed_choice_on_new_data(make, average):
    P, Y = make(0, 600)
    P_new, Y_new = make(1, 4000)
    held_out = {}
    for per_label in (True, False, "auto"):
        tuner = ThresholdTunerCV(
            ProbaFromX(), per_label=per_label, average=average, cv=5
        ).fit(P, Y)
        y_pred = tuner.predict(P_new)
        held_out[per_label] = f1_score(Y_new, y_pred, average=average)
    assert held_out["auto"] >= max(held_out[True], held_out[False]) - 0.01


def test_auto_keeps_own_thresholds_where_they_differ_and_the_global_where_not():
    # Four labels alike and one scored at 0.3x: the global threshold, 0.15,
    # suits label 4 and fails the others, which earn their own.
    P, Y = exchangeable_scores(600, 0, k=5)
    P[:, 4] *= 0.3
    auto = ThresholdTunerCV(ProbaFromX(), cv=5, thresholds=GRID19).fit(P, Y)
    own = ThresholdTunerCV(ProbaFromX(), cv=5, per_label=True, thresholds=GRID19).fit(
        P, Y
    )
    shared = ThresholdTunerCV(
        ProbaFromX(), cv=5, per_label=False, thresholds=GRID19
    ).fit(P, Y)
    assert (auto.per_label_gain_[auto.per_label_, 0] > 0).all()
    assert (auto.per_label_gain_[~auto.per_label_, 0] <= 0).all()
    chosen = auto.best_thresholds_
    np.testing.assert_array_equal(
        chosen[auto.per_label_], own.best_thresholds_[auto.per_label_]
    )
    assert (chosen[~auto.per_label_] == shared.best_thresholds_[0]).all()
    assert shared.best_thresholds_[0] == pytest.approx(0.15)
    assert auto.per_label_[:4].all() and (chosen[:4] >= 0.45).all()

    # Labels alike: own thresholds would fit noise; most labels keep the global.
    kept = [
        ThresholdTunerCV(ProbaFromX(), cv=5).fit(*exchangeable_scores(600, seed))
        for seed in range(6)
    ]
    assert np.mean([tuner.per_label_ for tuner in kept]) < 0.5


def test_a_label_with_too_few_positives_falls_back_to_the_global_threshold():
    P, Y = shifted_scores(300)
    Y = np.column_stack([Y, np.zeros(300, int)])
    P = np.column_stack([P, np.linspace(0, 0.2, 300)])
    Y[[10, 20, 30], 2] = 1  # three positives, all scored low
    with pytest.warns(UserWarning, match=r"label\(s\) \[2\] have fewer than "):
        auto = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    assert not auto.per_label_[2]
    assert np.isnan(auto.per_label_gain_[2]).all()
    shared = ThresholdTunerCV(ProbaFromX(), cv=3, per_label=False).fit(P, Y)
    assert auto.best_thresholds_[2] == shared.best_thresholds_[0]
    # With the fallback off the label may pick its own, noisy, threshold.
    lenient = ThresholdTunerCV(ProbaFromX(), cv=3, min_positives=3).fit(P, Y)
    assert not np.isnan(lenient.per_label_gain_[2]).any()


@pytest.mark.parametrize("per_label", [True, False])
def test_fixed_choices_report_what_they_did(per_label):
    P, Y = shifted_scores(90)
    tuner = ThresholdTunerCV(ProbaFromX(), cv=3, per_label=per_label).fit(P, Y)
    assert tuner.per_label_.tolist() == [per_label] * 2
    assert tuner.per_label_gain_ is None


def test_a_binary_y_has_one_threshold_whatever_per_label_says():
    X, y = separated(0.2, 0.6)
    for per_label in (True, False, "auto"):
        tuner = ThresholdTunerCV(
            ProbaFromX(), cv=4, per_label=per_label, thresholds=GRID19
        ).fit(X, y)
        assert tuner.best_thresholds_.tolist() == [0.5]


# --- cv_results_ and the fold-to-fold spread --------------------------------------


def test_cv_results_are_the_fold_by_fold_scores():
    P, Y = shifted_scores(120)
    cv = KFold(3)
    # 0.125, 0.25, ..., 0.875: coarse enough for fold-by-fold choices to differ.
    grid = np.linspace(0, 1, 9)[1:-1]
    tuner = ThresholdTunerCV(ProbaFromX(), cv=cv, thresholds=grid, per_label=True)
    results = tuner.fit(P, Y).cv_results_
    T = tuner.thresholds_
    per_fold = np.array(
        [
            [[f1_score(Y[val, j], P[val, j] >= t) for j in range(2)] for t in T]
            for _, val in cv.split(P)
        ]
    )  # (folds, thresholds, labels)
    np.testing.assert_array_equal(results["thresholds"], T)
    np.testing.assert_allclose(results["mean_test_score_per_label"], per_fold.mean(0))
    np.testing.assert_allclose(results["std_test_score_per_label"], per_fold.std(0))
    macro = per_fold.mean(axis=2)
    np.testing.assert_allclose(results["mean_test_score"], macro.mean(0))
    np.testing.assert_allclose(results["std_test_score"], macro.std(0))
    # The spread of the threshold each fold alone would pick, label by label.
    alone = np.array(
        [[T[per_fold[f, :, j].argmax()] for j in range(2)] for f in range(3)]
    )
    ties = np.isclose(per_fold, per_fold.max(axis=1, keepdims=True)).sum(axis=1)
    assert (ties == 1).all()  # so argmax is the tie-breaking choice
    np.testing.assert_allclose(tuner.threshold_std_, alone.std(axis=0))
    assert (tuner.threshold_std_ > 0).any()


def test_a_single_split_has_no_fold_spread():
    P, Y = shifted_scores(90)
    tuner = ThresholdTunerCV(
        ProbaFromX(), cv=0.3, refit=False, random_state=0, per_label=True
    ).fit(P, Y)
    assert np.isnan(tuner.threshold_std_).all()
    assert (tuner.cv_results_["std_test_score"] == 0).all()


# --- average: what the global threshold and best_score_ maximise -----------------


def test_micro_average_tunes_per_label_thresholds_jointly():
    P, Y = shifted_scores(300)
    Y[:, 1] = (np.random.RandomState(3).rand(300) < 0.1) | (P[:, 1] > 0.2)
    micro = ThresholdTunerCV(ProbaFromX(), cv=3, average="micro", per_label=True)
    micro.fit(P, Y)
    T = micro.thresholds_

    def micro_f1(thresholds):
        return f1_score(Y, P >= thresholds, average="micro")

    assert micro.best_score_ == pytest.approx(micro_f1(micro.best_thresholds_))
    # A coordinate-wise optimum: no label alone can move to a better candidate.
    for j in range(2):
        for t in T:
            moved = micro.best_thresholds_.copy()
            moved[j] = t
            assert micro_f1(moved) <= micro.best_score_ + 1e-12
    # And at least as good, in micro-F1, as every label's own best F1.
    macro = ThresholdTunerCV(ProbaFromX(), cv=3, per_label=True).fit(P, Y)
    assert micro.best_score_ >= micro_f1(macro.best_thresholds_)
    assert micro.best_score_ >= micro.scores_global_.max()


def test_samples_average_matches_sklearn():
    P, Y = shifted_scores(120)
    tuner = ThresholdTunerCV(
        ProbaFromX(), cv=3, average="samples", thresholds=5, per_label=False
    ).fit(P, Y)
    for i, t in enumerate(tuner.thresholds_):
        expected = f1_score(Y, P >= t, average="samples", zero_division=0)
        assert tuner.scores_global_[i] == pytest.approx(expected)
    expected = f1_score(Y, tuner.predict(P), average="samples", zero_division=0)
    assert tuner.best_score_ == pytest.approx(expected)


def test_samples_average_needs_a_named_metric():
    P, Y = shifted_scores(60)
    tuner = ThresholdTunerCV(ProbaFromX(), average="samples", scoring=f1_score)
    with pytest.raises(ValueError, match="average='samples' needs a named scoring"):
        tuner.fit(P, Y)


@pytest.mark.parametrize(
    "scorer",
    [
        make_scorer(f1_score),
        get_scorer("f1_micro"),
        lambda estimator, X, y: 0.0,
    ],
)
def test_a_scorer_object_is_refused_with_what_to_pass_instead(scorer):
    P, Y = shifted_scores(60)
    with pytest.raises(TypeError, match="ThresholdTunerCV: scoring must be a binary"):
        ThresholdTunerCV(ProbaFromX(), scoring=scorer).fit(P, Y)
    assert ProbaFromX.fits == 0


# --- sample_weight ----------------------------------------------------------------


def prefit(P, Y):
    # per_label=True: "auto" cross-fits on groups of rows, which repeating rows
    # changes; each label's own choice depends on the weighted counts only.
    return ThresholdTunerCV(
        ProbaFromX().fit(P, Y), cv="prefit", refit=False, per_label=True
    )


@pytest.mark.parametrize("scoring", ["f1", "precision", "balanced_accuracy"])
def test_weighted_scores_match_sklearn_metrics_with_sample_weight(scoring):
    P, Y = shifted_scores(120)
    w = np.random.RandomState(0).rand(120) * 3
    tuner = prefit(P, Y).set_params(scoring=scoring, per_label=True).fit(P, Y, w)
    metric = {
        "f1": f1_score,
        "precision": precision_score,
        "balanced_accuracy": balanced_accuracy_score,
    }[scoring]
    for i, t in enumerate(tuner.thresholds_):
        for j in range(2):
            kwargs = {} if scoring == "balanced_accuracy" else {"zero_division": 0}
            expected = metric(Y[:, j], P[:, j] >= t, sample_weight=w, **kwargs)
            assert tuner.scores_[i, j] == pytest.approx(expected)


def test_integer_weights_score_like_repeated_samples_and_zero_like_dropped():
    P, Y = shifted_scores(90)
    w = np.tile([0, 1, 2], 30)
    weighted = prefit(P, Y).fit(P, Y, sample_weight=w)
    repeated = prefit(P, Y).fit(np.repeat(P, w, axis=0), np.repeat(Y, w, axis=0))
    np.testing.assert_allclose(weighted.scores_, repeated.scores_)
    np.testing.assert_allclose(weighted.scores_global_, repeated.scores_global_)
    np.testing.assert_array_equal(weighted.best_thresholds_, repeated.best_thresholds_)
    unweighted = prefit(P, Y).fit(P, Y)
    assert not np.allclose(weighted.scores_, unweighted.scores_)


def test_weights_reach_an_estimator_whose_fit_takes_them():
    P, Y = shifted_scores(60)
    ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y, sample_weight=np.ones(60))
    assert sorted(ProbaFromX.weight_sizes) == [40, 40, 40, 60]


def test_an_estimator_without_sample_weight_gets_none_and_a_warning(multilabel):
    X, Y = multilabel
    w = np.r_[np.ones(75), np.zeros(75)]
    with pytest.warns(UserWarning, match="does not take sample_weight"):
        tuner = ThresholdTunerCV(ovr(), cv=3, per_label=True).fit(X, Y, w)
    plain = ThresholdTunerCV(ovr(), cv=3, per_label=True).fit(X, Y)
    assert not np.allclose(tuner.scores_, plain.scores_)  # the scores are weighted


def test_metadata_routing_sends_weights_where_they_are_requested(multilabel):
    X, Y = multilabel
    w = np.r_[np.ones(100), np.zeros(50)]
    with config_context(enable_metadata_routing=True):
        lr = LogisticRegression(max_iter=500).set_fit_request(sample_weight=True)
        tuner = ThresholdTunerCV(OneVsRestClassifier(lr), cv=3, per_label=True)
        tuner.fit(X, Y, sample_weight=w)
        # The refit saw only the weighted samples: as a fit on the first 100.
        alone = OneVsRestClassifier(LogisticRegression(max_iter=500))
        alone.fit(X[:100], Y[:100])
        for fitted, expected in zip(
            tuner.estimator_.estimators_, alone.estimators_, strict=True
        ):
            np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=1e-4)

        # Not requested: the estimator trains unweighted, the scores still weigh.
        ProbaFromX.weight_sizes = []
        unrequested = ProbaFromX().set_fit_request(sample_weight=False)
        ThresholdTunerCV(unrequested, cv=3).fit(*shifted_scores(60), np.ones(60))
        assert ProbaFromX.weight_sizes == []

        # Left unset: scikit-learn's own error, before any fit.
        with pytest.raises(UnsetMetadataPassedError):
            ThresholdTunerCV(ProbaFromX(), cv=3).fit(*shifted_scores(60), np.ones(60))


def test_a_callable_metric_without_sample_weight_cannot_weigh():
    P, Y = shifted_scores(60)
    tuner = ThresholdTunerCV(ProbaFromX(), scoring=lambda y, p: f1_score(y, p))
    with pytest.raises(ValueError, match="takes no sample_weight"):
        tuner.fit(P, Y, sample_weight=np.ones(60))


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (np.ones(59), "60 finite numbers"),
        (np.full(60, -1.0), "non-negative"),
        (np.zeros(60), "at least one non-zero"),
    ],
)
def test_bad_sample_weight(sample_weight, match):
    P, Y = shifted_scores(60)
    with pytest.raises(ValueError, match=f"ThresholdTunerCV: sample_weight.*{match}"):
        ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y, sample_weight=sample_weight)


def test_verbose_reports_progress_over_the_folds(capsys):
    P, Y = shifted_scores(60)
    ThresholdTunerCV(ProbaFromX(), cv=3, verbose=10).fit(P, Y)
    assert "Done   3 out of   3" in capsys.readouterr().err


# --- The default grid: scikit-learn's, over the out-of-fold probabilities --------


def test_recall_weighted_metrics_find_their_lower_optimum():
    # On breast cancer, F2 weighs recall 4x precision: its optimum lies well
    # below F1's, between the points of a fixed 0.05 grid (which picked 0.5
    # for both). scikit-learn's tuner picks about 0.48 and 0.34.
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    f1 = ThresholdTunerCV(model, scoring="fbeta", beta=1).fit(X, y)
    f2 = ThresholdTunerCV(model, scoring="fbeta", beta=2).fit(X, y)
    assert f2.best_thresholds_[0] < f1.best_thresholds_[0] - 0.1
    reference = TunedThresholdClassifierCV(
        model, scoring=make_scorer(fbeta_score, beta=2)
    ).fit(X, y)
    assert f2.best_thresholds_[0] == pytest.approx(reference.best_threshold_, abs=0.02)
    # A fixed grid misses both optima.
    fixed = {"scoring": "fbeta", "thresholds": GRID19}
    assert (
        ThresholdTunerCV(model, beta=2, **fixed).fit(X, y).best_thresholds_[0]
        > f2.best_thresholds_[0] + 0.1
    )


class Constant(ClassifierMixin, BaseEstimator):
    """Predicts the same probabilities for every sample."""

    def fit(self, X, y):
        self.classes_ = np.arange(np.shape(y)[1]) if np.ndim(y) == 2 else np.unique(y)
        self.columns_ = np.ndim(y) == 2
        return self

    def predict_proba(self, X):
        n = len(X)
        if self.columns_:
            # Label 0 varies with X, labels 1 and 2 never do.
            return np.column_stack(
                [np.clip(np.asarray(X)[:, 0], 0, 1), np.full(n, 0.2), np.full(n, 0.7)]
            )
        return np.tile([0.3, 0.7], (n, 1))


def test_constant_predictions_leave_nothing_to_tune():
    P, Y = shifted_scores(60)
    with pytest.raises(ValueError, match="makes constant predictions"):
        ThresholdTunerCV(Constant(), cv=3).fit(P, Y[:, 0])
    dummy = DummyClassifier(strategy="constant", constant=1)
    with pytest.raises(ValueError, match="ThresholdTunerCV: The provided estimator"):
        ThresholdTunerCV(dummy, cv=3).fit(P, Y[:, 0])


def test_labels_with_constant_predictions_are_named_and_keep_the_default():
    P, Y = shifted_scores(90)
    Y3 = np.column_stack([Y[:, 0], Y])
    with pytest.warns(UserWarning, match=r"label\(s\) \[1, 2\] are constant"):
        tuner = ThresholdTunerCV(Constant(), cv=3, per_label=True).fit(P, Y3)
    # Their decisions are those of the default 0.5; label 0 is tuned.
    y_pred = tuner.predict(P)
    assert (y_pred[:, 1] == 0).all() and (y_pred[:, 2] == 1).all()
    near_half = tuner.thresholds_[np.abs(tuner.thresholds_ - 0.5).argmin()]
    np.testing.assert_array_equal(tuner.best_thresholds_[1:], near_half)
    # The candidates span the probabilities that vary: label 0's.
    assert tuner.thresholds_.min() == pytest.approx(P[:, 0].min())
    assert tuner.thresholds_.max() == pytest.approx(P[:, 0].max())
