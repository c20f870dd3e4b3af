"""A multi-label y with unknown entries (NaN: nobody annotated them)."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import FAST
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV

import sk_mlc
from sk_mlc import CNNClassifier, ThresholdTunerCV
from sk_mlc.losses import AsymmetricLoss, MaskedBCEWithLogitsLoss
from sk_mlc.model_selection import IterativeStratifiedKFold


def hide(Y, fraction, seed=0):
    """``Y`` as float with a random ``fraction`` of entries unknown (NaN)."""
    rng = np.random.RandomState(seed)
    partial = Y.astype(float)
    partial[rng.rand(*Y.shape) < fraction] = np.nan
    partial[np.isnan(partial).all(axis=1), 0] = Y[np.isnan(partial).all(axis=1), 0]
    return partial


@pytest.fixture(scope="module")
def partial(multilabel_data):
    X, Y = multilabel_data
    return X, hide(Y, 0.3), Y


@pytest.fixture(scope="module")
def fitted(partial):
    # BCE, whose masked loss the tests compute by hand; the default (ASL)
    # masks through the same SigmoidLoss (test_losses).
    X, Y_partial, _ = partial
    return CNNClassifier(**FAST, loss="bce").fit(X, Y_partial)


def test_the_target_type_says_so_and_predict_decides_every_entry(fitted, partial):
    X, Y_partial, Y = partial
    assert fitted.target_type_ == "multilabel-indicator-with-unknowns"
    assert type(fitted.criterion_) is MaskedBCEWithLogitsLoss
    y_pred = fitted.predict(X)
    assert y_pred.shape == Y.shape and set(np.unique(y_pred)) <= {0.0, 1.0}
    assert not np.isnan(y_pred).any()
    assert f1_score(Y, y_pred, average="micro") > 0.8  # learned from known ones


def test_the_default_loss_of_a_target_with_unknowns_is_the_multilabel_one(partial):
    X, Y_partial, _ = partial
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, Y_partial)
    assert type(clf.criterion_) is AsymmetricLoss
    assert np.isfinite(clf.net_.history[:, "train_loss"]).all()


def test_the_loss_of_a_batch_is_the_mean_over_its_known_entries(fitted):
    criterion = fitted.criterion_
    logits = torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.0, 0.2, 2.0, -0.5]])
    target = torch.tensor([[1.0, np.nan, 0.0, 1.0], [np.nan, 1.0, np.nan, 0.0]])
    known = [(0, 0, 1), (0, 2, 0), (0, 3, 1), (1, 1, 1), (1, 3, 0)]
    by_hand = np.mean(
        [
            -np.log(1 / (1 + np.exp(-float(logits[i, j]))))
            if t
            else -np.log(1 - 1 / (1 + np.exp(-float(logits[i, j]))))
            for i, j, t in known
        ]
    )
    assert float(criterion(logits, target)) == pytest.approx(by_hand, rel=1e-6)
    # Weighted batches (sample_weight): the weighted sum over the known ones,
    # divided by their number (a weighted fit's criterion reduces nothing).
    net = copy.deepcopy(fitted.net_)
    net.criterion_.reduction = "none"
    weight = torch.tensor([2.0, 0.5])
    entries = net.criterion_(logits, target)
    terms = [float(weight[i]) * float(entries[i, j]) for i, j, _ in known]
    loss = net.get_loss(logits, (target, weight))
    assert float(loss) == pytest.approx(sum(terms) / len(known), rel=1e-6)


def test_balanced_class_weights_count_known_entries_only(partial):
    X, Y_partial, _ = partial
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}, class_weight="balanced")
    clf.fit(X, Y_partial)
    n_pos = (Y_partial == 1).sum(0)
    n_neg = (Y_partial == 0).sum(0)
    np.testing.assert_allclose(
        clf.criterion_.pos_weight.numpy(), n_neg / n_pos, rtol=1e-6
    )


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([[1.0, 0.0], [np.nan, np.nan], [0.0, 1.0], [1.0, 1.0]]), "row"),
        (
            np.array([[1.0, np.nan], [0.0, np.nan], [0.0, np.nan], [1.0, np.nan]]),
            "column",
        ),
        (np.array([1.0, 0.0, np.nan, 1.0]), "NaN marks an unknown entry of a 2-D"),
        (np.array([[1.0, 2.0], [np.nan, 0.0], [0.0, 1.0], [1.0, 0.0]]), "0, 1 or NaN"),
    ],
    ids=["empty-row", "empty-column", "1-D", "values"],
)
def test_impossible_unknowns_are_clear_errors(y, match):
    X = np.random.RandomState(0).rand(4, 8, 8).astype(np.float32)
    with pytest.raises(ValueError, match=f"CNNClassifier: .*{match}"):
        CNNClassifier(**FAST).fit(X, y)


def test_nan_in_a_sparse_y_is_an_error():
    X = np.random.RandomState(0).rand(4, 8, 8).astype(np.float32)
    y = sp.csr_matrix(np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="CNNClassifier: a sparse y cannot mark"):
        CNNClassifier(**FAST).fit(X, y)


def test_splits_stratify_on_known_positives(partial):
    _, Y_partial, _ = partial
    folds = list(IterativeStratifiedKFold(4).split(Y_partial, Y_partial))
    known_positives = (Y_partial == 1).sum(0)
    for _, test in folds:
        share = (Y_partial[test] == 1).sum(0) / known_positives
        assert np.all(np.abs(share - 0.25) < 0.1)


def test_the_validation_split_of_unknowns_trains(partial):
    X, Y_partial, _ = partial
    clf = CNNClassifier(**FAST, validation_fraction=0.2).fit(X, Y_partial)
    assert np.isfinite(clf.net_.history[-1, "valid_loss"])


def test_the_tuner_around_a_cnn_tunes_a_y_with_unknowns(partial):
    X, Y_partial, _ = partial
    tuner = ThresholdTunerCV(
        CNNClassifier(**{**FAST, "max_epochs": 4}), cv=0.3, refit=False, per_label=True
    ).fit(X, Y_partial)
    assert tuner.target_type_ == "multilabel-indicator-with-unknowns"
    assert not np.isnan(tuner.scores_).any()
    assert (tuner.best_label_scores_ > 0.5).all()
    y_pred = tuner.predict(X)
    assert y_pred.shape == Y_partial.shape and not np.isnan(y_pred).any()


def test_known_entry_scores_match_sklearn_on_the_known_rows():
    # A prefit estimator whose probabilities are X: the scores are computable.
    from test_threshold_tuner import ProbaFromX, shifted_scores

    P, Y = shifted_scores(200)
    Y_partial = hide(Y, 0.4, seed=3)
    tuner = ThresholdTunerCV(
        ProbaFromX().fit(P, Y), cv="prefit", refit=False, per_label=True
    ).fit(P, Y_partial)
    for j in range(2):
        known = ~np.isnan(Y_partial[:, j])
        expected = [
            f1_score(Y_partial[known, j], P[known, j] >= t, zero_division=0)
            for t in tuner.thresholds_
        ]
        np.testing.assert_allclose(tuner.scores_[:, j], expected)


def test_score_and_grid_search_leave_unknown_entries_out(fitted, partial):
    X, Y_partial, _ = partial
    y_pred = fitted.predict(X)
    known = ~np.isnan(Y_partial)
    right = ((y_pred == Y_partial) | ~known).all(axis=1).mean()
    assert fitted.score(X, Y_partial) == pytest.approx(right)
    # scikit-learn's default cv reads type_of_target(y), which refuses NaN:
    # the splitter of multi-label y with unknowns is iterative stratification.
    search = GridSearchCV(
        CNNClassifier(**{**FAST, "max_epochs": 2}),
        {"threshold": [0.3, 0.5]},
        cv=IterativeStratifiedKFold(2),
    ).fit(X, Y_partial)
    assert np.isfinite(search.best_score_)


def test_a_model_with_unknowns_saves_and_loads(fitted, partial, tmp_path):
    X, _, _ = partial
    path = tmp_path / "partial.safetensors"
    sk_mlc.save(fitted, path)
    loaded = sk_mlc.load(path)
    assert loaded.target_type_ == "multilabel-indicator-with-unknowns"
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


def test_partial_fit_takes_unknowns_too(partial):
    X, Y_partial, _ = partial
    clf = CNNClassifier(**FAST).partial_fit(X, Y_partial).partial_fit(X, Y_partial)
    assert clf.target_type_ == "multilabel-indicator-with-unknowns"
    assert clf.n_iter_ == 2
