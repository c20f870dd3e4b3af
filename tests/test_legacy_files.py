"""Files written before the package was laid out in subpackages still load.

``tests/fixtures/`` holds models saved by the flat layout (commit 39c1371, by
``tests/fixtures/make_legacy.py``) and what they predicted then. They name
classes by their old import paths (``sk_mlc._threshold:ThresholdTunerCV``) and
fitted state by its old names; loading them must give the same predictions,
and a fit with the same seed must give the same probabilities.

Probabilities are compared to float32 rounding (``atol=1e-6``), decisions
exactly: the fixtures were written with one torch thread, and a reduction
split over more threads adds in another order (a last-bit difference).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import quadrant_images

import sk_mlc
from sk_mlc import CNNClassifier

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURES / "legacy_expected.npz")


def test_a_classifier_saved_by_the_flat_layout_predicts_as_it_did(expected):
    clf = sk_mlc.load(FIXTURES / "legacy_classifier.safetensors")
    X = expected["X"]
    assert clf.tta_ == "flip"
    np.testing.assert_allclose(
        clf.predict_proba(X), expected["classifier_proba"], rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(clf.predict(X), expected["classifier_predict"])


def test_a_tuner_saved_by_the_flat_layout_predicts_as_it_did(expected):
    tuner = sk_mlc.load(FIXTURES / "legacy_tuner.safetensors")
    X = expected["X"]
    np.testing.assert_array_equal(tuner.best_thresholds_, expected["tuner_thresholds"])
    np.testing.assert_allclose(
        tuner.predict_proba(X), expected["tuner_proba"], rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(tuner.predict(X).toarray(), expected["tuner_predict"])


def test_the_same_seed_gives_the_same_probabilities_as_before(expected):
    X, Y = quadrant_images(n_samples=48, size=16)
    y = np.minimum(Y.sum(1), 2)
    clf = CNNClassifier(
        width=4,
        depth=2,
        max_epochs=2,
        batch_size=16,
        random_state=0,
        residual=True,
        label_smoothing=0.1,
        augment="flip+shift",
    ).fit(X, y)
    np.testing.assert_allclose(
        clf.predict_proba(X[:12]), expected["seeded_proba"], rtol=0, atol=1e-6
    )
