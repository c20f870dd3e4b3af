"""The frozen phase as a linear probe fitted to convergence.

With ``freeze_epochs``, ``CNNClassifier`` runs its backbone over the training
images once (twice with flips), fits the output layer on those features with
L-BFGS to scikit-learn's ``LogisticRegression(C=1)`` objective, and records
it as one epoch of the history; the fine-tune that follows starts from it.
"""

import numpy as np
import pytest
import torch
from conftest import FAST
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from sk_mlc import CNNClassifier, ImageFeatures

BACKBONE = {"width": 8, "depth": 2}
STATISTICS = ([0.1], [0.6])
PROBE = {
    **BACKBONE,
    "normalize": STATISTICS,
    "freeze_epochs": 10,
    "max_epochs": 10,
    "augment": None,
    "tta": None,
    "dropout": 0.0,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def state(multilabel_data):
    X, Y = multilabel_data
    source = CNNClassifier(**FAST).fit(X, Y)
    return {k: v.clone() for k, v in source.net_.module_[1].state_dict().items()}


def logistic_regression(state, X, y, **fit_params):
    features = ImageFeatures(**BACKBONE, weights=state, normalize=STATISTICS)
    model = make_pipeline(features, LogisticRegression(tol=1e-10, max_iter=10_000))
    return model.fit(X, y, **fit_params)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_the_probe_is_logistic_regression_on_the_same_features(
    kind, state, multilabel_data
):
    X, Y = multilabel_data
    y = Y[:, 0] if kind == "binary" else np.minimum(Y.sum(1), 2)
    X_train, y_train, X_test = X[:60], y[:60], X[60:]
    probe = CNNClassifier(**PROBE, weights=state).fit(X_train, y_train)
    reference = logistic_regression(state, X_train, y_train)
    np.testing.assert_allclose(
        probe.predict_proba(X_test), reference.predict_proba(X_test), atol=5e-3
    )
    np.testing.assert_array_equal(probe.predict(X_test), reference.predict(X_test))
    # One epoch stands for the ten frozen ones.
    assert probe.n_iter_ == 1 and probe.net_.history[0, "head_fit"]
    assert probe.net_.history[0, "head_iterations"] > 1


def test_sample_weights_are_logistic_regressions_sample_weights(state, multilabel_data):
    X, Y = multilabel_data
    y = Y[:60, 0]
    weight = np.random.RandomState(0).uniform(0.2, 3.0, size=60)
    probe = CNNClassifier(**PROBE, weights=state).fit(X[:60], y, sample_weight=weight)
    # CNNClassifier divides the weights by their mean (their scale does not
    # matter); LogisticRegression's penalty weighs against their sum.
    reference = logistic_regression(
        state, X[:60], y, logisticregression__sample_weight=weight / weight.mean()
    )
    np.testing.assert_allclose(
        probe.predict_proba(X[60:]), reference.predict_proba(X[60:]), atol=5e-3
    )


class Counted(torch.nn.Module):
    """A backbone that counts the images it sees (a class attribute: the
    estimator deep-copies the module it is given)."""

    images = 0

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        Counted.images += len(x)
        return self.conv(x)


@pytest.mark.parametrize("augment, passes", [(None, 1), ("flip", 2)])
def test_the_backbone_sees_each_image_once_per_view(augment, passes, multilabel_data):
    X, Y = multilabel_data
    params = {**PROBE, "augment": augment, "max_epochs": 10, "freeze_epochs": 10}
    Counted.images = 0
    CNNClassifier(Counted(), **params).fit(X, Y[:, 0])
    dry_run = 2  # the head is sized by one batch of two zero images
    assert Counted.images == dry_run + passes * len(X)


def test_a_fine_tune_trains_on_after_the_fitted_head(state, multilabel_data):
    X, Y = multilabel_data
    epochs = []

    class Recorder(Callback):
        def on_epoch_begin(self, net, **kwargs):
            epochs.append(net.module_.frozen)

    clf = CNNClassifier(
        **{**PROBE, "max_epochs": 4, "freeze_epochs": 2},
        weights=state,
        validation_fraction=0.25,
        callbacks=[Recorder()],
    ).fit(X, Y[:, 0])
    # The head's epoch is frozen, the two after it train everything.
    assert epochs == [True, False, False]
    history = clf.net_.history
    assert [row.get("head_fit", False) for row in history] == [True, False, False]
    for row in history:
        assert np.isfinite(row["train_loss"]) and np.isfinite(row["valid_loss"])
    backbone = clf.net_.module_[1].state_dict()
    assert not torch.equal(backbone["features.0.weight"], state["features.0.weight"])


def test_losses_weights_and_unknown_entries_go_through_the_head_fit(
    state, multilabel_data
):
    X, Y = multilabel_data
    Y = Y.astype(float)
    Y[::7, 1] = np.nan  # entries nobody annotated
    clf = CNNClassifier(
        **PROBE, weights=state, loss="focal", class_weight="balanced"
    ).fit(X, Y)
    assert type(clf.criterion_).__name__ == "FocalLoss"
    assert np.isfinite(clf.net_.history[0, "train_loss"])
    assert clf.score(X, Y) > 0.5


def test_partial_fit_trains_frozen_epochs_one_by_one(state, multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(**{**PROBE, "freeze_epochs": 2}, weights=state)
    clf.partial_fit(X, Y[:, 0], classes=[0, 1])
    assert not clf.net_.history[0].get("head_fit", False)
