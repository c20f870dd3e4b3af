"""Behaviour of CNNClassifier: what it decides from y, and what it returns."""

import io

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import FAST
from sklearn.base import clone
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, log_loss
from skorch.callbacks import Callback

from sk_mlc import CNNClassifier
from sk_mlc.losses import AsymmetricLoss

# -- the target table ----------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, target_type, activation, criterion, n_outputs, proba_cols",
    [
        ("fitted_binary", "binary", "sigmoid", torch.nn.BCEWithLogitsLoss, 1, 2),
        ("fitted_multiclass", "multiclass", "softmax", torch.nn.CrossEntropyLoss, 3, 3),
        (
            "fitted_multilabel",
            "multilabel-indicator",
            "sigmoid",
            AsymmetricLoss,  # the multi-label default (bench_partial_labels)
            4,
            4,
        ),
    ],
)
def test_target_table(
    request,
    fixture,
    target_type,
    activation,
    criterion,
    n_outputs,
    proba_cols,
    multilabel_data,
):
    clf = request.getfixturevalue(fixture)
    X, _ = multilabel_data
    assert clf.target_type_ == target_type
    assert clf.out_activation_ == activation
    assert isinstance(clf.criterion_, criterion)
    assert clf.n_outputs_ == n_outputs
    assert clf.net_.module_[-1].out_features == n_outputs
    proba = clf.predict_proba(X[:10])
    assert proba.shape == (10, proba_cols)
    assert np.all((proba >= 0) & (proba <= 1))
    if target_type != "multilabel-indicator":
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_binary_predicts_string_labels_by_threshold(fitted_binary, binary_data):
    X, y = binary_data
    assert list(fitted_binary.classes_) == ["blob", "empty"]
    proba = fitted_binary.predict_proba(X)
    pred = fitted_binary.predict(X)
    assert set(pred) <= {"blob", "empty"}
    np.testing.assert_array_equal(
        pred, fitted_binary.classes_[(proba[:, 1] >= 0.5) * 1]
    )
    assert accuracy_score(y, pred) > 0.9


def test_multiclass_predicts_argmax_and_ignores_threshold(
    fitted_multiclass, multiclass_data
):
    X, y = multiclass_data
    clf = clone(fitted_multiclass)
    clf.__dict__.update(fitted_multiclass.__dict__)
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    clf.set_params(threshold=[0.1, 0.2])  # no effect on multiclass, even malformed
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    assert accuracy_score(y, clf.predict(X)) > 0.8


def test_multilabel_predict_is_thresholded_indicator(
    fitted_multilabel, multilabel_data
):
    X, Y = multilabel_data
    proba = fitted_multilabel.predict_proba(X)
    pred = fitted_multilabel.predict(X)
    assert pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(Y.dtype))
    assert f1_score(Y, pred, average="micro") > 0.9


def test_per_label_threshold_and_ge_rule(fitted_multilabel, multilabel_data):
    X, _ = multilabel_data
    clf = clone(fitted_multilabel)
    clf.__dict__.update(fitted_multilabel.__dict__)
    proba = clf.predict_proba(X)
    thresholds = np.array([0.0, 1.0, 0.3, 0.7])
    clf.set_params(threshold=thresholds)
    pred = clf.predict(X)
    assert pred[:, 0].all()  # p >= 0 always holds: the rule is >=, not >
    np.testing.assert_array_equal(pred, (proba >= thresholds).astype(int))
    # The probability of the very batch predicted: a batch of one can differ
    # from a batch of 160 in the last bit.
    exact = clf.predict_proba(X[:1])[0, 2]
    clf.set_params(threshold=[0.5, 0.5, float(exact), 0.5])
    assert clf.predict(X[:1])[0, 2] == 1


def test_threshold_validated_at_predict(
    fitted_multilabel, fitted_binary, multilabel_data
):
    X, _ = multilabel_data
    for fitted in (fitted_multilabel, fitted_binary):
        clf = clone(fitted)
        clf.__dict__.update(fitted.__dict__)
        clf.set_params(threshold=1.5)
        with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\]"):
            clf.predict(X)
        clf.set_params(threshold=[0.5, 0.5, 0.5])
        with pytest.raises(ValueError, match="per-label threshold must have shape"):
            clf.predict(X)


def test_threshold_validated_at_fit(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="threshold"):
        CNNClassifier(threshold=-0.1, **FAST).fit(X, Y)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        CNNClassifier(threshold=[0.5, 0.5], **FAST).fit(X, Y)


def test_sparse_multilabel_y_gives_sparse_predictions(multilabel_data):
    X, Y = multilabel_data
    dense = CNNClassifier(**FAST).fit(X, Y)
    sparse = CNNClassifier(**FAST).fit(X, sp.csr_matrix(Y))
    assert sparse.target_type_ == "multilabel-indicator"
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X))
    pred = sparse.predict(X)
    assert sp.issparse(pred)
    np.testing.assert_array_equal(pred.toarray(), dense.predict(X))


def test_bool_multilabel_y_keeps_dtype(multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, Y.astype(bool))
    assert clf.predict(X[:5]).dtype == bool


def test_column_vector_y_is_raveled_with_warning(binary_data):
    from sklearn.exceptions import DataConversionWarning

    X, y = binary_data
    with pytest.warns(DataConversionWarning):
        clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y.reshape(-1, 1))
    assert clf.target_type_ == "binary"


# -- reproducibility and side effects -----------------------------------------


def test_same_seed_same_probabilities_and_global_rng_untouched(multilabel_data):
    X, Y = multilabel_data
    torch.manual_seed(123)
    state = torch.get_rng_state()
    p1 = CNNClassifier(**FAST).fit(X, Y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    p2 = CNNClassifier(**FAST).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    p3 = CNNClassifier(**{**FAST, "random_state": 1}).fit(X, Y).predict_proba(X)
    assert not np.allclose(p1, p3)


def test_inputs_are_not_mutated(multilabel_data):
    X, Y = multilabel_data
    X8 = (np.clip(X, 0, 1) * 255).astype(np.uint8)
    X_copy, Y_copy = X8.copy(), Y.copy()
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    weights = module[0].weight.detach().clone()
    callback_list = []
    clf = CNNClassifier(module=module, callbacks=callback_list, **FAST).fit(X8, Y)
    clf.predict_proba(X8)
    np.testing.assert_array_equal(X8, X_copy)
    np.testing.assert_array_equal(Y, Y_copy)
    assert torch.equal(module[0].weight, weights)
    assert callback_list == []


def test_verbose(multilabel_data, capsys):
    X, Y = multilabel_data
    CNNClassifier(**{**FAST, "max_epochs": 2}).fit(X, Y)
    assert capsys.readouterr().out == ""
    CNNClassifier(verbose=1, **{**FAST, "max_epochs": 2}).fit(X, Y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "epoch" in out


def test_predict_runs_in_batches_without_grad(fitted_multilabel, multilabel_data):
    X, _ = multilabel_data
    seen = []
    hook = fitted_multilabel.net_.module_.register_forward_hook(
        lambda m, i, o: seen.append((len(i[0]), torch.is_grad_enabled(), m.training))
    )
    try:
        fitted_multilabel.predict_proba(X)
    finally:
        hook.remove()
    assert [n for n, _, _ in seen] == [32, 32, 32, 32, 32]
    assert not any(grad or training for _, grad, training in seen)
    # batch_size set after fit applies to prediction
    clf = clone(fitted_multilabel).set_params(batch_size=64)
    clf.__dict__.update(
        {k: v for k, v in fitted_multilabel.__dict__.items() if k.endswith("_")}
    )
    expected = fitted_multilabel.predict_proba(X)
    seen.clear()
    hook = clf.net_.module_.register_forward_hook(
        lambda m, i, o: seen.append((len(i[0]), None, None))
    )
    try:
        np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5)
    finally:
        hook.remove()
    assert [n for n, _, _ in seen] == [64, 64, 32]


# -- image layouts -------------------------------------------------------------


def test_layouts_are_equivalent(multilabel_data):
    X, Y = multilabel_data
    X = X[:64]
    Y = Y[:64]
    params = {**FAST, "max_epochs": 2}
    rgb = np.repeat(X[:, :, :, None], 3, axis=3)  # NHWC
    nhwc = CNNClassifier(**params).fit(rgb, Y)
    nchw = CNNClassifier(**params).fit(rgb.transpose(0, 3, 1, 2), Y)
    flat = CNNClassifier(image_shape=(8, 8, 3), **params).fit(rgb.reshape(64, -1), Y)
    assert nhwc.input_shape_ == nchw.input_shape_ == flat.input_shape_ == (3, 8, 8)
    p = nhwc.predict_proba(rgb)
    np.testing.assert_array_equal(p, nchw.predict_proba(rgb.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(p, flat.predict_proba(rgb.reshape(64, -1)))
    # the fitted model accepts the other layout at predict time too
    np.testing.assert_array_equal(p, nhwc.predict_proba(rgb.transpose(0, 3, 1, 2)))


def test_layout_override_and_ambiguous_shape(multilabel_data):
    X, Y = multilabel_data
    images = np.zeros((len(X), 6, 6, 6), dtype=np.float32)
    images[..., :] = X[:, :6, :6, None]
    with pytest.raises(ValueError, match="layout='NHWC' or layout='NCHW'"):
        CNNClassifier(**FAST).fit(images, Y)
    clf = CNNClassifier(layout="NHWC", **{**FAST, "max_epochs": 1}).fit(images, Y)
    assert clf.input_shape_ == (6, 6, 6)
    clf = CNNClassifier(layout="NCHW", **{**FAST, "max_epochs": 1}).fit(
        images[:, :2], Y
    )
    assert clf.input_shape_ == (2, 6, 6)


def test_flat_rows_are_one_by_d_images(multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X.reshape(len(X), -1), Y)
    assert clf.input_shape_ == (1, 1, 64)
    assert clf.n_features_in_ == 64


def test_uint8_is_scaled_by_dtype_not_by_data(multilabel_data):
    X, Y = multilabel_data
    X8 = (np.clip(X, 0, 1) * 255).round().astype(np.uint8)
    clf = CNNClassifier(**FAST).fit(X8, Y)
    # A dark uint8 batch means pixels / 255, not pixels stretched to its range.
    dark = (X8[:10] // 4).astype(np.uint8)
    scaled = torch.from_numpy(dark.astype(np.float32)[:, None] / 255)
    with torch.no_grad():
        expected = torch.sigmoid(clf.net_.module_.eval()(scaled)).numpy()
    np.testing.assert_allclose(clf.predict_proba(dark), expected, rtol=1e-5, atol=1e-6)
    mean = clf.net_.module_[0].mean.ravel().item()
    assert 0 < mean < 1  # statistics learned on [0, 1] pixels


# -- architecture, module, callbacks, class weights ---------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (33, 20)])
def test_builtin_cnn_handles_any_image_size(shape):
    rng = np.random.RandomState(0)
    X = rng.rand(12, *shape).astype(np.float32)
    y = np.arange(12) % 2
    clf = CNNClassifier(**{**FAST, "max_epochs": 1, "depth": 3}).fit(X, y)
    assert clf.predict_proba(X).shape == (12, 2)


class _QuadrantFeatures(torch.nn.Module):
    """A backbone returning (n, F) features that keep the 2 x 2 layout."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x))).flatten(1)


@pytest.mark.parametrize(
    "module",
    [
        _QuadrantFeatures(),
        _QuadrantFeatures,
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5)),
    ],
)
def test_user_module_gets_the_head(module, multilabel_data):
    X, Y = multilabel_data
    clf = CNNClassifier(module=module, **{**FAST, "max_epochs": 25}).fit(X, Y)
    assert clf.net_.module_[-1].out_features == 4
    # It learned: each label's probabilities rank its positives first.
    assert average_precision_score(Y, clf.predict_proba(X)) > 0.9


def test_feature_map_backbone_gets_global_pooling(multilabel_data):
    X, Y = multilabel_data
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.ReLU())
    clf = CNNClassifier(module=backbone, **{**FAST, "max_epochs": 1}).fit(X, Y)
    kinds = [type(layer).__name__ for layer in clf.net_.module_]
    assert kinds == [
        "Standardize",
        "Sequential",
        "AdaptiveAvgPool2d",
        "Flatten",
        "Dropout",
        "Linear",
    ]
    assert clf.net_.module_[-1].in_features == 6
    assert clf.predict_proba(X).shape == Y.shape


def test_user_module_errors(multilabel_data):
    X, Y = multilabel_data
    wrong_channels = torch.nn.Conv2d(3, 4, 3)
    with pytest.raises(
        ValueError,
        match=r"CNNClassifier: The module failed on a batch of images of shape "
        r"\(n, C, H, W\) = \(n, 1, 8, 8\)",
    ):
        CNNClassifier(module=wrong_channels, **FAST).fit(X, Y)
    with pytest.raises(TypeError, match="CNNClassifier: module must be.*returned int"):
        CNNClassifier(module=lambda: 3, **FAST).fit(X, Y)


def test_callbacks_pass_through(multilabel_data):
    class CountEpochs(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    X, Y = multilabel_data
    callback = CountEpochs()
    clf = CNNClassifier(callbacks=[("count", callback)], **FAST).fit(X, Y)
    assert dict(clf.net_.callbacks_)["count"].epochs == FAST["max_epochs"]
    assert callback.epochs == 0  # the caller's callback was copied, not used


class KeepValidationBatches(Callback):
    """Keep the validation batches of the first epoch: the held-out rows."""

    def initialize(self):
        self.batches = []
        return super().initialize()

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not training and len(net.history) == 1:
            self.batches.append(batch)


def test_early_stopping_stops_and_restores_the_best_weights(multilabel_data):
    X, Y = multilabel_data
    # One label entry in ten flipped: the network fits the noise after a few
    # epochs, so the validation loss turns up and early stopping must act.
    Y = Y ^ (np.random.RandomState(1).rand(*Y.shape) < 0.1)
    max_epochs, patience = 30, 3
    clf = CNNClassifier(
        loss="bce",  # the validation loss is then log_loss, computed below
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=patience,
        callbacks=[("keep", KeepValidationBatches())],
        **{**FAST, "max_epochs": max_epochs},
    ).fit(X, Y)
    losses = np.array(clf.net_.history[:, "valid_loss"])
    best = int(np.argmin(losses))
    # Training stopped early: after exactly n_iter_no_change epochs that did
    # not improve on the best one.
    assert clf.n_iter_ == len(losses) == best + 1 + patience < max_epochs
    assert (losses[best + 1 :] > losses[best]).all()
    # The returned model is the best epoch's, not the last one's: its loss on
    # the held-out rows (as skorch saw them) is the best validation loss.
    batches = dict(clf.net_.callbacks_)["keep"].batches
    X_valid = np.concatenate([X_batch.numpy() for X_batch, _ in batches])
    Y_valid = np.concatenate([y_batch.numpy() for _, y_batch in batches])
    assert len(X_valid) == 40  # ceil(0.25 * 160)
    proba = clf.predict_proba(X_valid)
    loss = np.mean(
        [log_loss(Y_valid[:, k], proba[:, k], labels=[0, 1]) for k in range(4)]
    )
    assert loss == pytest.approx(losses[best], abs=1e-5)
    assert losses[-1] - losses[best] > 1e-3  # far from the last epoch's


def test_early_stopping_on_a_multiclass_target(multiclass_data):
    X, y = multiclass_data
    clf = CNNClassifier(early_stopping=True, **{**FAST, "max_epochs": 2}).fit(X, y)
    assert "valid_loss" in clf.net_.history[-1]


def test_class_weight(binary_data, multiclass_data, multilabel_data):
    X, y = binary_data
    one = {**FAST, "max_epochs": 1}
    clf = CNNClassifier(class_weight="balanced", **one).fit(X, y)
    n_pos = (y == "empty").sum()
    expected = (len(y) - n_pos) / n_pos
    assert clf.criterion_.pos_weight.item() == pytest.approx(expected, rel=1e-5)
    clf = CNNClassifier(class_weight={"blob": 1000.0, "empty": 1e-4}, **FAST).fit(X, y)
    assert (clf.predict(X) == "blob").mean() > 0.9

    X, y = multiclass_data
    clf = CNNClassifier(class_weight="balanced", **one).fit(X, y)
    counts = np.bincount(y)
    np.testing.assert_allclose(
        clf.criterion_.weight.numpy(), len(y) / (3 * counts), rtol=1e-5
    )

    X, Y = multilabel_data
    clf = CNNClassifier(class_weight="balanced", **one).fit(X, Y)
    pos = Y.sum(0)
    np.testing.assert_allclose(
        clf.criterion_.pos_weight.numpy(), (len(Y) - pos) / pos, rtol=1e-5
    )
    clf = CNNClassifier(class_weight=[1, 2, 3, 4], **one).fit(X, Y)
    np.testing.assert_allclose(clf.criterion_.pos_weight.numpy(), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="4 positive per-label weights"):
        CNNClassifier(class_weight=[1, 2], **one).fit(X, Y)


def test_augment_is_train_only_and_reproducible(multilabel_data):
    X, Y = multilabel_data
    params = {**FAST, "augment": "flip+shift"}
    a = CNNClassifier(**params).fit(X, Y)
    b = CNNClassifier(**params).fit(X, Y)
    plain = CNNClassifier(**FAST).fit(X, Y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), plain.predict_proba(X))

    calls = []

    def custom(x, generator):
        calls.append(x.shape[0])
        return x + 0.01 * torch.randn(x.shape, generator=generator)

    clf = CNNClassifier(augment=custom, **{**FAST, "max_epochs": 1}).fit(X, Y)
    assert sum(calls) == len(X)
    clf.predict_proba(X)
    assert sum(calls) == len(X)  # nothing at predict time


def test_pickle_round_trip(fitted_multilabel, multilabel_data):
    import pickle

    import joblib

    X, _ = multilabel_data
    expected = fitted_multilabel.predict_proba(X)
    restored = pickle.loads(pickle.dumps(fitted_multilabel))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    buffer = io.BytesIO()
    joblib.dump(fitted_multilabel, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    assert restored.out_activation_ == "sigmoid"
    assert type(restored.criterion_) is type(fitted_multilabel.criterion_)
    assert restored.criterion_.gamma_neg == fitted_multilabel.criterion_.gamma_neg
    # Training-only state (optimizer moments, the scheduler) is not carried:
    # the restored net gets a fresh optimizer, the live one keeps its state.
    assert not restored.net_.optimizer_.state
    assert fitted_multilabel.net_.optimizer_.state
    assert len(restored.net_.history) == FAST["max_epochs"]
    weights = sum(p.numel() * 4 for p in fitted_multilabel.net_.module_.parameters())
    assert len(pickle.dumps(fitted_multilabel)) < 1.5 * weights + 100_000


def test_fitted_network_can_continue_training(multilabel_data):
    X, Y = multilabel_data
    # The one-cycle schedule ends with max_epochs; a constant one goes on.
    params = {**FAST, "max_epochs": 2, "lr_schedule": "constant"}
    clf = CNNClassifier(**params).fit(X, Y)
    before = clf.predict_proba(X)
    # The live net kept its optimizer and scheduler state: skorch trains on.
    X_t = torch.from_numpy(X[:, None])  # (n, C, H, W), as the network takes it
    Y_t = torch.from_numpy(Y.astype(np.float32))
    clf.net_.partial_fit(X_t, Y_t, epochs=1)
    assert len(clf.net_.history) == 3
    assert not np.allclose(clf.predict_proba(X), before)
    # So does a pickled copy, with a fresh optimizer.
    import pickle

    restored = pickle.loads(pickle.dumps(clf))
    restored.net_.partial_fit(X_t, Y_t, epochs=1)
    assert len(restored.net_.history) == 4


def _stages(clf) -> int:
    return sum(isinstance(m, torch.nn.Conv2d) for m in clf.net_.module_.modules())


@pytest.mark.parametrize(
    "size, stages, small",
    [((8, 8), 2, 2), ((28, 28), 4, 3), ((56, 56), 5, 4), ((1, 20), 4, 3)],
)
def test_auto_depth_follows_image_size_and_training_set_size(size, stages, small):
    X = np.random.RandomState(0).rand(12, *size).astype(np.float32)
    y = np.arange(12) % 2
    params = {**FAST, "depth": "auto", "max_epochs": 1}
    # partial_fit does not know how many images will come: the full rule.
    clf = CNNClassifier(**params).partial_fit(X, y, classes=[0, 1])
    assert _stages(clf) == stages
    # fit on fewer than 200 images: one stage fewer (down to 8 px).
    assert _stages(CNNClassifier(**params).fit(X, y)) == small


def test_auto_augmentation_waits_for_two_hundred_images():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 16, 16).astype(np.float32)
    y = np.arange(200) % 2
    params = {**FAST, "depth": 2, "max_epochs": 1, "batch_size": 50}
    assert CNNClassifier(**params).fit(X[:199], y[:199]).augment_ is None
    assert CNNClassifier(**params).fit(X[:199], y[:199]).tta_ is None
    large = CNNClassifier(**params).fit(X, y)
    assert large.augment_ == "flip" and large.tta_ == "flip"
    # An augmentation that is asked for is used on any number of images.
    shifted = CNNClassifier(**params, augment="shift").fit(X[:20], y[:20])
    assert shifted.augment_ == "shift"
