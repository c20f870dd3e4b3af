"""Behaviour of ThresholdTunerCV: what it fits, what it chooses, where it plugs in."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    jaccard_score,
    precision_score,
    recall_score,
)
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
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
    per_label = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    shared = ThresholdTunerCV(ProbaFromX(), cv=3, per_label=False).fit(P, Y)

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
    P, Y = shifted_scores()
    tuner = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    np.testing.assert_allclose(tuner.thresholds_, np.arange(1, 20) / 20)
    assert np.isin(tuner.best_thresholds_, tuner.thresholds_).all()
    assert tuner.scores_.shape == (19, 2) and tuner.scores_global_.shape == (19,)
    assert tuner.best_label_scores_ == pytest.approx(tuner.scores_.max(axis=0))


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
    tuner = ThresholdTunerCV(ovr(), scoring=scoring, beta=2, thresholds=5, cv=cv)
    tuner.fit(X, Y)
    P = cross_val_predict(ovr(), X, Y, cv=cv, method="predict_proba")
    kwargs = {"zero_division": 0} if scoring in METRICS else {}
    for i, t in enumerate(tuner.thresholds_):
        for j in range(Y.shape[1]):
            expected = metric(Y[:, j], (P[:, j] >= t).astype(int), **kwargs)
            assert tuner.scores_[i, j] == pytest.approx(expected)
        flat = metric(Y.ravel(), (P >= t).astype(int).ravel(), **kwargs)
        assert tuner.scores_global_[i] == pytest.approx(flat)
    y_pred = (P >= tuner.best_thresholds_).astype(int)
    assert tuner.best_score_ == pytest.approx(
        metric(Y.ravel(), y_pred.ravel(), **kwargs)
    )


def test_fbeta_with_beta_2_favours_recall_with_lower_thresholds():
    P, Y = shifted_scores()
    f1 = ThresholdTunerCV(ProbaFromX(), cv=3).fit(P, Y)
    f2 = ThresholdTunerCV(ProbaFromX(), cv=3, scoring="fbeta", beta=2).fit(P, Y)
    assert (f2.best_thresholds_ <= f1.best_thresholds_).all()
    assert (f2.best_thresholds_ < f1.best_thresholds_).any()


def test_recall_alone_keeps_the_highest_candidate_that_finds_every_positive():
    P, Y = shifted_scores()
    recall = ThresholdTunerCV(ProbaFromX(), scoring="recall", cv=3).fit(P, Y)
    precision = ThresholdTunerCV(ProbaFromX(), scoring="precision", cv=3).fit(P, Y)
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
        (0.1, 0.9, 19, 0.5),  # 0.15 ... 0.85 tie: keep the default
        (0.07, 0.37, 19, 0.35),  # 0.10 ... 0.35 tie: the one nearest 0.5
        (0.62, 0.97, 19, 0.65),  # 0.65 ... 0.95 tie: likewise from above
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
    per_label = ThresholdTunerCV(ProbaFromX(), cv=4).fit(X, Y)
    np.testing.assert_allclose(per_label.best_thresholds_, [0.5, 0.35])
    # Shared: only 0.15 ... 0.35 separate both labels; 0.35 is nearest 0.5.
    shared = ThresholdTunerCV(ProbaFromX(), cv=4, per_label=False).fit(X, Y)
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
        ProbaFromX(), scoring="precision", constraint=("recall", 0.9), cv=3
    ).fit(P, Y)
    for j, t in enumerate(tuner.best_thresholds_):
        feasible = tuner.constraint_scores_[:, j] >= 0.9
        chosen = tuner.thresholds_ == t
        assert feasible[chosen].all()
        assert tuner.scores_[chosen, j] == tuner.scores_[feasible, j].max()


def test_unreachable_constraint_warns_and_falls_back_to_the_best_constraint():
    P, Y = shifted_scores()
    tuner = ThresholdTunerCV(
        ProbaFromX(), scoring="precision", constraint=["recall", 1.01], cv=3
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
    assert tuner.scores_.shape == (19, 3)


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
    y_pred = ThresholdTunerCV(forest, cv=3).fit(X, Y).predict(X)
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
