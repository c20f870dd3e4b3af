"""The training step never waits for the device, and trains what the old one did.

On a GPU, every ``.item()``, ``.cpu()``, ``.tolist()`` or truth test of a
tensor makes the host wait until the device has finished all queued work:
one per batch, and the device idles while Python prepares each step. On the
CPU those calls cost nothing, but they can be counted: these tests wrap the
tensor methods that read values back and count the calls made by sk_mlc's and
skorch's code while a network trains (torch's own optimizer code is not
counted: on CUDA its fused kernels keep their step counters on the device;
nor is the work before training starts, such as the input statistics'
pass over the host array). The count must not grow with the number of
batches.

The fits run through the data path of a CUDA fit (``DeviceImages``: the
array on the device, batches gathered there), here with ``device="cpu"``;
the CPU path reads its batches from host arrays, which waits for nothing.
"""

import pickle
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import skorch
import torch
from _counting import TrainCounter, trainings
from conftest import FAST
from skorch.callbacks import Callback

import sk_mlc
import sk_mlc.training._fit
from sk_mlc import CNNClassifier
from sk_mlc.data import DeviceImages

# Methods that copy a value to the host, waiting for the device.
READBACKS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
WATCHED = tuple(str(Path(package.__file__).parent) for package in (sk_mlc, skorch))


class TrainingWindow(Callback):
    """Marks the span of ``net.fit``'s loop, from its first to its last epoch.

    The flag is a class attribute: the estimator trains on deep copies of
    its callbacks, which share their class.
    """

    active = False

    def on_train_begin(self, net, **kwargs):
        TrainingWindow.active = True

    def on_train_end(self, net, **kwargs):
        TrainingWindow.active = False


@pytest.fixture
def readbacks(monkeypatch):
    """A Counter of read-back calls made from sk_mlc's or skorch's code.

    Training data takes the device path, as on CUDA.
    """
    monkeypatch.setattr(
        sk_mlc.training._fit,
        "training_images",
        lambda images, device: DeviceImages(images, "cpu"),
    )
    counts = Counter()

    def wrap(name):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if TrainingWindow.active and caller.startswith(WATCHED):
                counts[f"{name} ({Path(caller).name})"] += 1
            return original(self, *args, **kwargs)

        return counted

    for name in READBACKS:
        monkeypatch.setattr(torch.Tensor, name, wrap(name))
    return counts


def _data(n_samples, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_samples, 8, 8).astype(np.float32)
    y = (X[:, :4].mean((1, 2)) > X[:, 4:].mean((1, 2))).astype(int)
    return X, y


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"validation_fraction": 0.25, "early_stopping": True},
        {"augment": "flip+shift", "class_weight": "balanced"},
    ],
    ids=["defaults", "validation", "augmented"],
)
def test_reading_values_back_does_not_grow_with_the_batches(readbacks, params):
    X, y = _data(256)
    params = {**FAST, "max_epochs": 2, **params}
    counts = {}
    for batch_size in (64, 16):  # 4 and 16 batches per epoch
        readbacks.clear()
        CNNClassifier(
            **{**params, "batch_size": batch_size}, callbacks=[TrainingWindow()]
        ).fit(X, y)
        counts[batch_size] = dict(readbacks)
    assert counts[16] == counts[64], counts


def test_the_history_holds_floats_after_each_epoch():
    X, y = _data(64)
    seen = []

    class Reader(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(net.history[-1, "batches", 0, "train_loss"])

    clf = CNNClassifier(
        **{**FAST, "max_epochs": 2}, validation_fraction=0.25, callbacks=[Reader()]
    ).fit(X, y)
    assert seen and all(isinstance(value, float) for value in seen)
    for row in clf.net_.history:
        assert isinstance(row["train_loss"], float)
        assert isinstance(row["valid_loss"], float)
        assert all(
            isinstance(batch.get("train_loss", batch.get("valid_loss")), float)
            for batch in row["batches"]
        )
    # skorch's epoch loss is the size-weighted mean of its batches' losses.
    last = clf.net_.history[-1]
    train = [batch for batch in last["batches"] if "train_loss" in batch]
    sizes = [batch["train_batch_size"] for batch in train]
    losses = [batch["train_loss"] for batch in train]
    assert last["train_loss"] == pytest.approx(np.average(losses, weights=sizes))


def test_verbose_records_each_batch_loss_at_once(capsys):
    X, y = _data(64)
    seen = []

    class Reader(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                seen.append(net.history[-1, "batches", 0, "train_loss"])

    CNNClassifier(**{**FAST, "max_epochs": 1}, verbose=1, callbacks=[Reader()]).fit(
        X, y
    )
    capsys.readouterr()
    assert seen and all(isinstance(value, float) for value in seen)


def test_compile_trains_the_same_network_and_leaves_it_eager(tmp_path):
    # The "eager" backend traces the forward with dynamo, as compile does,
    # without the code generation that costs seconds per graph.
    X, y = _data(64)
    counter = tmp_path / "trainings.txt"
    params = {**FAST, "max_epochs": 2, "callbacks": [TrainCounter(counter)]}
    plain = CNNClassifier(**params, memory=str(tmp_path)).fit(X, y)
    compiled = CNNClassifier(**params, compile={"backend": "eager"}).fit(X, y)
    np.testing.assert_allclose(
        compiled.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    assert "forward" not in vars(compiled.net_.module_)  # eager again
    restored = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(restored.predict(X), compiled.predict(X))
    assert trainings(counter) == 2
    # compile is not in memory's key: a compiled fit reads the plain one's.
    cached = CNNClassifier(
        **params, memory=str(tmp_path), compile={"backend": "eager"}
    ).fit(X, y)
    assert trainings(counter) == 2
    np.testing.assert_array_equal(cached.predict_proba(X), plain.predict_proba(X))


def test_compile_options_are_checked():
    X, y = _data(16)
    with pytest.raises(ValueError, match="compile"):
        CNNClassifier(**FAST, compile="yes").fit(X, y)
