"""The sigmoid losses: each against a hand computation on a tiny batch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FAST
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import sk_mlc
from sk_mlc import CNNClassifier
from sk_mlc.losses import (
    BCE,
    Asymmetric,
    AsymmetricLoss,
    Focal,
    FocalLoss,
    MaskedBCEWithLogitsLoss,
)

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 1.5, -2.0]])
TARGET = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
POS_WEIGHT = torch.tensor([2.0, 1.0, 0.5])


def by_hand(term):
    """The mean over the entries of ``term(x, t, w)``, in plain Python."""
    values = [
        term(float(x), float(t), float(w))
        for row_x, row_t in zip(LOGITS, TARGET, strict=True)
        for x, t, w in zip(row_x, row_t, POS_WEIGHT, strict=True)
    ]
    return sum(values) / len(values)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_focal_loss_is_its_formula():
    def term(x, t, w, gamma=2.0):
        p = sigmoid(x)
        return -(w * t * (1 - p) ** gamma * np.log(p)) - (
            (1 - t) * p**gamma * np.log(1 - p)
        )

    loss = FocalLoss(gamma=2.0, pos_weight=POS_WEIGHT)(LOGITS, TARGET)
    assert float(loss) == pytest.approx(by_hand(term), rel=1e-6)


def test_focal_loss_with_gamma_zero_is_binary_cross_entropy():
    expected = F.binary_cross_entropy_with_logits(LOGITS, TARGET, pos_weight=POS_WEIGHT)
    loss = FocalLoss(gamma=0.0, pos_weight=POS_WEIGHT)(LOGITS, TARGET)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_asymmetric_loss_is_its_formula():
    def term(x, t, w, gamma_neg=4.0, gamma_pos=0.0, clip=0.05):
        p = sigmoid(x)
        q = max(p - clip, 0.0)
        negative = q**gamma_neg * np.log(1 - q) if q > 0 else 0.0
        return -(w * t * (1 - p) ** gamma_pos * np.log(p)) - (1 - t) * negative

    loss = AsymmetricLoss(pos_weight=POS_WEIGHT)(LOGITS, TARGET)
    assert float(loss) == pytest.approx(by_hand(term), rel=1e-6)
    # An easy negative below the clip adds nothing at all.
    easy = AsymmetricLoss(reduction="none")(torch.tensor([[-5.0]]), torch.zeros(1, 1))
    assert float(easy) == 0.0


@pytest.mark.parametrize(
    "loss", [MaskedBCEWithLogitsLoss(), FocalLoss(), AsymmetricLoss()]
)
def test_unknown_entries_are_left_out_and_smoothing_applies(loss):
    target = TARGET.clone()
    target[0, 1] = target[1, 2] = float("nan")
    known = ~torch.isnan(target)
    entries = type(loss)(reduction="none")(LOGITS, target)
    assert (entries[~known] == 0).all()
    # The mean over the known entries, by hand from the unmasked entries.
    full = type(loss)(reduction="none")(LOGITS, torch.nan_to_num(target))
    assert float(loss(LOGITS, target)) == pytest.approx(
        float(full[known].mean()), rel=1e-6
    )
    smoothed = type(loss)(label_smoothing=0.2, reduction="none")(LOGITS, target)
    moved = type(loss)(reduction="none")(LOGITS, torch.nan_to_num(target) * 0.8 + 0.1)
    torch.testing.assert_close(smoothed[known], moved[known])


def test_a_loss_spec_builds_its_module_with_the_fits_weights():
    assert type(BCE().module(None, 0.0, unknowns=False)) is torch.nn.BCEWithLogitsLoss
    assert type(BCE().module(None, 0.0, unknowns=True)) is MaskedBCEWithLogitsLoss
    focal = Focal(gamma=3).module(POS_WEIGHT, 0.1, unknowns=False)
    assert focal.gamma == 3.0 and focal.label_smoothing == 0.1
    torch.testing.assert_close(focal.pos_weight, POS_WEIGHT)
    assert clone(Asymmetric(gamma_neg=2)).get_params()["gamma_neg"] == 2


@pytest.fixture(scope="module")
def imbalanced(multilabel_data):
    X, Y = multilabel_data
    Y = Y.copy()
    Y[:, 3] = (np.arange(len(Y)) % 10 == 0).astype(int)  # a rare label
    return X, Y


@pytest.mark.parametrize(
    "loss, module",
    [("focal", FocalLoss), ("asl", AsymmetricLoss), (Focal(gamma=1.0), FocalLoss)],
)
def test_the_classifier_trains_with_the_loss_it_is_given(imbalanced, loss, module):
    X, Y = imbalanced
    clf = CNNClassifier(**FAST, loss=loss, class_weight="balanced").fit(X, Y)
    assert type(clf.criterion_) is module
    assert clf.criterion_.pos_weight is not None  # class weights compose
    assert clf.predict_proba(X).shape == Y.shape
    if isinstance(loss, Focal):
        assert clf.criterion_.gamma == 1.0


def test_a_sigmoid_loss_on_a_multiclass_target_is_an_error(multiclass_data):
    X, y = multiclass_data
    with pytest.raises(ValueError, match="loss='focal'.*this y is multiclass"):
        CNNClassifier(**FAST, loss="focal").fit(X, y)


def test_grid_search_tunes_a_loss_parameter(binary_data):
    X, y = binary_data
    search = GridSearchCV(
        CNNClassifier(**{**FAST, "max_epochs": 2}, loss=Focal()),
        {"loss__gamma": [0.0, 2.0]},
        cv=2,
    ).fit(X, y)
    assert search.best_estimator_.criterion_.gamma in (0.0, 2.0)


def test_the_loss_is_saved_and_in_the_memory_key(binary_data, tmp_path):
    X, y = binary_data
    params = {**FAST, "max_epochs": 1, "memory": str(tmp_path / "cache")}
    focal = CNNClassifier(**params, loss=Focal(gamma=1.5)).fit(X, y)
    plain = CNNClassifier(**params).fit(X, y)
    assert type(plain.criterion_) is torch.nn.BCEWithLogitsLoss  # not a cache hit
    path = tmp_path / "focal.safetensors"
    sk_mlc.save(focal, path)
    loaded = sk_mlc.load(path)
    assert type(loaded.loss) is Focal and loaded.loss.get_params() == {"gamma": 1.5}
    assert type(loaded.criterion_) is FocalLoss and loaded.criterion_.gamma == 1.5
    np.testing.assert_array_equal(loaded.predict_proba(X), focal.predict_proba(X))
