"""``CNNClassifier.fit(..., sample_weight=...)``: weighted losses, checked input."""

import numpy as np
import pytest
import sklearn
from conftest import FAST
from sklearn.model_selection import cross_validate

from sk_mlc import CNNClassifier


@pytest.fixture(scope="module")
def noisy(multilabel_data):
    """Binary labels with 40% of them flipped, and which ones were."""
    X, Y = multilabel_data
    y = Y[:, 0].copy()
    flipped = np.random.RandomState(1).rand(len(y)) < 0.4
    noisy_y = np.where(flipped, 1 - y, y)
    return X, y, noisy_y, flipped


def test_weights_decide_which_samples_are_learned(noisy):
    X, clean, noisy_y, flipped = noisy
    weight = np.where(flipped, 0.0, 1.0)
    kept = weight.copy()
    weighted = CNNClassifier(**FAST).fit(X, noisy_y, sample_weight=weight)
    unweighted = CNNClassifier(**FAST).fit(X, noisy_y)
    np.testing.assert_array_equal(weight, kept)  # not mutated
    assert weighted.score(X, clean) > 0.9
    assert weighted.score(X, clean) > unweighted.score(X, clean) + 0.05


@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_equal_weights_are_no_weights(multilabel_data, target):
    X, Y = multilabel_data
    y = Y[:, 0] if target == "binary" else Y
    plain = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    threes = CNNClassifier(**FAST).fit(X, y, sample_weight=np.full(len(X), 3.0))
    np.testing.assert_array_equal(threes.predict_proba(X), plain)


def test_weights_work_with_multiclass_and_early_stopping(multiclass_data):
    X, y = multiclass_data
    weight = np.linspace(0.5, 2.0, len(X))
    clf = CNNClassifier(early_stopping=True, **FAST).fit(X, y, sample_weight=weight)
    assert clf.score(X, y) > 0.6
    assert np.isfinite(clf.net_.history[:, "valid_loss"]).all()


@pytest.mark.parametrize(
    "weight, message",
    [
        (-np.ones(160), "(?i)negative"),
        (np.ones(3), r"\(3,\)"),
        (np.zeros(160), "non-zero"),
        (np.full(160, np.nan), "NaN"),
    ],
)
def test_bad_weights_are_refused_with_the_estimator_named(
    multilabel_data, weight, message
):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match=message) as info:
        CNNClassifier(**FAST).fit(X, Y, sample_weight=weight)
    assert "CNNClassifier" in str(info.value)


def test_memory_keys_on_the_weights(multilabel_data, tmp_path):
    X, Y = multilabel_data
    weight = np.where(Y[:, 0] == 1, 3.0, 1.0)
    clf = CNNClassifier(memory=str(tmp_path), **FAST)
    plain = clf.fit(X, Y).predict_proba(X)
    weighted = clf.fit(X, Y, sample_weight=weight).predict_proba(X)
    assert np.abs(weighted - plain).max() > 1e-3
    again = clf.fit(X, Y, sample_weight=weight).predict_proba(X)
    np.testing.assert_array_equal(again, weighted)


def test_weights_are_routed_through_metadata_routing(noisy):
    X, clean, noisy_y, flipped = noisy
    weight = np.where(flipped, 0.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = CNNClassifier(**FAST).set_fit_request(sample_weight=True)
        clf.set_score_request(sample_weight=False)
        result = cross_validate(
            clf,
            X,
            noisy_y,
            cv=2,
            params={"sample_weight": weight},
            return_estimator=True,
        )
    for estimator in result["estimator"]:
        assert estimator.score(X, clean) > 0.85
