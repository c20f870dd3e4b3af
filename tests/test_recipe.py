"""The training recipe: label smoothing, test-time flips, residual blocks."""

import copy

import numpy as np
import pytest
import torch
from conftest import FAST, quadrant_images
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import check_is_fitted

from sk_mlc import CNNClassifier
from sk_mlc.targets import SmoothedBCEWithLogitsLoss
from sk_mlc.training import ResidualBlock

SMALL = {**FAST, "max_epochs": 4}


def _confidence(clf, X):
    """Mean probability of the predicted class (or of each label's decision)."""
    proba = clf.predict_proba(X)
    if clf.target_type_ == "multilabel-indicator":
        return np.maximum(proba, 1 - proba).mean()
    return proba.max(1).mean()


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_label_smoothing_makes_the_network_less_confident(
    kind, binary_data, multiclass_data, multilabel_data
):
    X, y = {"binary": binary_data, "multiclass": multiclass_data}.get(
        kind, multilabel_data
    )
    sharp = CNNClassifier(**FAST).fit(X, y)
    smooth = CNNClassifier(**FAST, label_smoothing=0.4).fit(X, y)
    assert smooth.criterion_.label_smoothing == 0.4
    assert _confidence(smooth, X) < _confidence(sharp, X) - 0.02
    # Still a classifier that learned the task: its probabilities rank the
    # right class (label) first, whatever threshold the loss favours.
    proba = smooth.predict_proba(X)
    if kind == "binary":
        proba = proba[:, 1]
    assert roc_auc_score(y, proba, multi_class="ovr") > 0.8


def test_smoothed_bce_is_bce_towards_targets_pulled_to_one_half():
    rng = np.random.RandomState(0)
    logits = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    y = torch.as_tensor(rng.rand(6, 3) < 0.5, dtype=torch.float32)
    pos_weight = torch.tensor([1.0, 2.0, 0.5])
    smoothed = SmoothedBCEWithLogitsLoss(pos_weight=pos_weight, label_smoothing=0.2)
    plain = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    torch.testing.assert_close(smoothed(logits, y), plain(logits, y * 0.8 + 0.1))
    smoothed.reduction = "none"  # sample weights need each sample's loss
    assert smoothed(logits, y).shape == (6, 3)


def test_label_smoothing_zero_keeps_the_plain_losses(binary_data, multiclass_data):
    assert type(CNNClassifier(**SMALL).fit(*binary_data).criterion_) is (
        torch.nn.BCEWithLogitsLoss
    )
    assert CNNClassifier(**SMALL).fit(*multiclass_data).criterion_.label_smoothing == 0


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1"])
def test_label_smoothing_out_of_range_is_refused(value, binary_data):
    with pytest.raises(ValueError, match="label_smoothing.*CNNClassifier"):
        CNNClassifier(label_smoothing=value).fit(*binary_data)


@pytest.fixture(scope="module")
def fitted_16px():
    """16x16 images trained with flips, so tta="auto" flips too."""
    X, Y = quadrant_images(n_samples=96, size=16)
    return CNNClassifier(**SMALL, augment="flip").fit(X, Y), X


def test_auto_augmentation_flips_images_of_16_pixels_and_more(
    fitted_16px, fitted_multilabel
):
    clf, _ = fitted_16px
    assert clf.tta_ == "flip"
    assert fitted_multilabel.tta_ is None  # 8x8: no flips in training, none here
    # "auto" flips 16x16 images given enough of them (test_classifier.py
    # checks the count).
    X, Y = quadrant_images(n_samples=200, size=16)
    params = {**SMALL, "max_epochs": 1, "batch_size": 100}
    assert CNNClassifier(**params).fit(X, Y).augment_ == "flip"
    small = quadrant_images(n_samples=200, size=8)
    assert CNNClassifier(**params).fit(*small).augment_ is None


def test_tta_flip_averages_the_image_and_its_mirror(fitted_16px):
    clf, X = fitted_16px
    clf = copy.deepcopy(clf)
    flipped = clf.predict_proba(X)
    clf.set_params(tta=None)
    plain = clf.predict_proba(X)
    mirrored = clf.predict_proba(np.ascontiguousarray(X[:, :, ::-1]))
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, atol=1e-6)
    assert np.abs(flipped - plain).max() > 1e-3
    np.testing.assert_array_equal(clf.set_params(tta="flip").predict(X) >= 0, True)


def test_tta_changes_on_a_fitted_model_without_training(fitted_16px):
    clf, X = fitted_16px
    clf = copy.deepcopy(clf)
    weights = [p.detach().clone() for p in clf.net_.module_.parameters()]
    clf.set_params(tta=None)
    assert clf.tta_ is None
    clf.predict_proba(X)
    for before, after in zip(weights, clf.net_.module_.parameters(), strict=True):
        torch.testing.assert_close(before, after)


def test_tta_flip_on_unflipped_training_is_the_users_choice(fitted_multilabel):
    X, _ = quadrant_images(n_samples=20)
    clf = copy.deepcopy(fitted_multilabel).set_params(tta="flip")
    assert clf.tta_ == "flip"
    assert clf.predict_proba(X).shape == (20, 4)


def test_tta_is_refused_when_unknown(fitted_multilabel):
    X, _ = quadrant_images(n_samples=8)
    clf = copy.deepcopy(fitted_multilabel).set_params(tta="rotate")
    with pytest.raises(ValueError, match="tta.*CNNClassifier"):
        clf.fit(X, _)


@pytest.mark.parametrize("size", [(8, 8), (1, 64)])
def test_auto_augmentation_leaves_small_images_and_rows_alone(size):
    rng = np.random.RandomState(0)
    X = rng.rand(40, *size).astype(np.float32)
    y = (X.reshape(40, -1)[:, :4].mean(1) > 0.5).astype(int)
    clf = CNNClassifier(**SMALL).fit(X, y)
    assert clf.tta_ is None
    assert clf.net_.augmenter is None


def test_residual_blocks_train_and_start_as_the_identity(multiclass_data):
    X, y = multiclass_data
    clf = CNNClassifier(**{**SMALL, "depth": 3}, residual=True).fit(X, y)
    blocks = [m for m in clf.net_.module_.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 2  # one after each of the two poolings
    assert clf.score(X, y) > 0.6
    fresh = ResidualBlock(4).eval()
    x = torch.rand(2, 4, 5, 5)  # non-negative, like the ReLU outputs it follows
    torch.testing.assert_close(fresh(x), x)


def test_warm_start_keeps_the_recipe(multiclass_data):
    X, y = multiclass_data
    clf = CNNClassifier(
        **SMALL, residual=True, label_smoothing=0.1, augment="flip", warm_start=True
    ).fit(X, y)
    first = clf.score(X, y)
    clf.set_params(max_epochs=2).fit(X, y)
    check_is_fitted(clf)
    assert clf.n_iter_ == 2 and clf.tta_ == "flip"
    assert clf.criterion_.label_smoothing == 0.1
    assert clf.score(X, y) >= first - 0.1
