"""``memory``: a trained network is reused exactly when nothing that shapes it changed.

Every test counts trainings, never time: ``TrainCounter`` (a skorch callback,
see ``_counting.py``) appends a line to a file when a network starts training,
which works in joblib's worker processes too. The callback is part of the cache
key, but its ``path`` is fixed per test, so clones share the key.
"""

import copy
import importlib
import os
import pickle
import shutil
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from _counting import TrainCounter, trainings
from conftest import FAST, quadrant_images
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from skorch.callbacks import GradientNormClipping

from sk_mlc import CNNClassifier

# Smaller than FAST: most tests here train several networks that only need to exist.
SMALL = {**FAST, "max_epochs": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def data():
    X, Y = quadrant_images(n_samples=48)
    return X, np.where(Y[:, 0] == 1, "blob", "empty")


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / "trainings.log")


def make(log, memory, extra_callbacks=(), **params):
    callbacks = [("count", TrainCounter(log)), *extra_callbacks]
    return CNNClassifier(memory=memory, callbacks=callbacks, **{**SMALL, **params})


# -- hits ---------------------------------------------------------------------


def test_hit_is_indistinguishable_from_the_trained_estimator(data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    trained = make(log, cache, class_weight="balanced").fit(X, y)
    assert trainings(log) == 1
    # threshold and verbose do not shape the network; clone keeps the key.
    loaded = clone(trained).set_params(threshold=0.3, verbose=1).fit(X, y)
    assert trainings(log) == 1

    np.testing.assert_array_equal(loaded.predict_proba(X), trained.predict_proba(X))
    for name in (
        "classes_",
        "target_type_",
        "out_activation_",
        "n_outputs_",
        "input_shape_",
        "n_features_in_",
        "n_iter_",
        "device_",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(trained, name))
    assert len(loaded.net_.history) == len(trained.net_.history) == SMALL["max_epochs"]
    assert type(loaded.criterion_) is type(trained.criterion_)
    torch.testing.assert_close(
        loaded.criterion_.pos_weight, trained.criterion_.pos_weight
    )
    # The threshold is this fit's, not the cached one's.
    positive = trained.predict_proba(X)[:, 1] >= 0.3
    np.testing.assert_array_equal(loaded.predict(X), loaded.classes_[positive * 1])

    restored = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(restored.predict_proba(X), trained.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), loaded.predict(X))


def test_hit_keeps_this_fits_runtime_options(data, log, tmp_path):
    # verbose is not in the key: a loaded network must carry this fit's value,
    # not that of the fit that trained it.
    X, y = data
    cache = str(tmp_path / "cache")
    make(log, cache).fit(X, y)
    loaded = make(log, cache, verbose=1, num_workers=2).fit(X, y)
    assert trainings(log) == 1
    assert loaded.net_.verbose == 1


@pytest.mark.parametrize(
    "memory",
    [lambda path: str(path), lambda path: joblib.Memory(path, verbose=0)],
    ids=["str", "joblib.Memory"],
)
def test_memory_as_path_or_joblib_memory(memory, data, log, tmp_path):
    X, y = data
    for _ in range(2):
        make(log, memory(tmp_path / "cache")).fit(X, y)
    assert trainings(log) == 1
    assert os.listdir(tmp_path / "cache")


def test_joblib_memory_without_a_location_caches_nothing(data, log, tmp_path):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            make(log, joblib.Memory(None, verbose=0)).fit(X, y)
    assert trainings(log) == 2


def test_same_module_instance_and_its_copy_hit(data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    make(log, cache, module=backbone).fit(X, y)
    make(log, cache, module=copy.deepcopy(backbone)).fit(X, y)
    clone(make(log, cache, module=backbone)).fit(X, y)
    assert trainings(log) == 1
    # Same architecture, other weights: another network.
    make(log, cache, module=torch.nn.Sequential(*backbone).apply(_reinit)).fit(X, y)
    assert trainings(log) == 2


def _reinit(layer):
    if isinstance(layer, torch.nn.Conv2d):
        torch.nn.init.constant_(layer.weight, 0.1)


# -- misses -------------------------------------------------------------------


def _backbone():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())


CHANGES = {
    "lr": {"lr": 1e-2},
    "max_epochs": {"max_epochs": 3},
    "width": {"width": 4},
    "depth": {"depth": 1},
    "dropout": {"dropout": 0.3},
    "batch_size": {"batch_size": 8},
    "class_weight": {"class_weight": "balanced"},
    "augment": {"augment": "flip"},
    "residual": {"residual": True},
    "label_smoothing": {"label_smoothing": 0.1},
    "weight_decay": {"weight_decay": 0.0},
    "early_stopping": {"early_stopping": True},
    "lr_schedule": {"lr_schedule": "constant"},
    "optimizer": {"optimizer": torch.optim.SGD},
    "module-instance": {"module": _backbone()},
    "module-callable": {"module": torch.nn.Identity},
    "callback-param": {
        "extra_callbacks": [("clip", GradientNormClipping(gradient_clip_value=0.5))]
    },
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_any_training_parameter_change_retrains(change, data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    clip = GradientNormClipping(gradient_clip_value=1.0)
    base = {"extra_callbacks": [("clip", clip)]}
    make(log, cache, **base).fit(X, y)
    make(log, cache, **{**base, **change}).fit(X, y)
    assert trainings(log) == 2
    # Both networks are now cached.
    make(log, cache, **base).fit(X, y)
    make(log, cache, **{**base, **change}).fit(X, y)
    assert trainings(log) == 2


def _one_pixel(X, y):
    X = X.copy()
    X[0, 0, 0] += 1e-3
    return X, y


def _one_label(X, y):
    y = y.copy()
    y[0] = "empty" if y[0] == "blob" else "blob"
    return X, y


DATA_CHANGES = {
    "one-pixel": (_one_pixel, {}),
    "one-label": (_one_label, {}),
    # The same bytes read as one 1 x 64 image per row, or as 4x4 images of 4
    # channels (channels last by the "auto" rule).
    "flat-rows": (lambda X, y: (X.reshape(len(X), -1), y), {}),
    "4-channels": (lambda X, y: (X.reshape(len(X), 4, 4, 4), y), {}),
    "seed": (lambda X, y: (X, y), {"random_state": 1}),
}


@pytest.mark.parametrize("change", DATA_CHANGES.values(), ids=DATA_CHANGES.keys())
def test_data_or_seed_change_retrains(change, data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    transform, params = change
    make(log, cache).fit(X, y)
    make(log, cache, **params).fit(*transform(X, y))
    assert trainings(log) == 2


def test_layout_of_the_same_bytes_retrains(data, log, tmp_path):
    X, y = data
    X4 = X.reshape(len(X), 4, 4, 4)  # both axes could hold the channels
    cache = str(tmp_path / "cache")
    nhwc = make(log, cache, layout="NHWC").fit(X4, y)
    nchw = make(log, cache, layout="NCHW").fit(X4, y)
    assert trainings(log) == 2
    assert nhwc.input_shape_ == nchw.input_shape_ == (4, 4, 4)
    assert not np.array_equal(nhwc.predict_proba(X4), nchw.predict_proba(X4))


def test_no_seed_retrains_every_fit(data, log, tmp_path):
    X, y = data
    cache = tmp_path / "cache"
    for _ in range(2):
        with pytest.warns(UserWarning, match="random_state=None"):
            make(log, str(cache), random_state=None).fit(X, y)
    assert trainings(log) == 2
    assert not cache.exists()  # nothing that could never be hit is written
    # A RandomState instance advances between fits: a new seed, a new network.
    rng = np.random.RandomState(0)
    for _ in range(2):
        make(log, str(cache), random_state=rng).fit(X, y)
    assert trainings(log) == 4


def test_unhashable_parameter_warns_and_trains(data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    clf = make(log, cache, augment=lambda X, generator: X)
    for _ in range(2):
        with pytest.warns(UserWarning, match="memory is ignored"):
            clf.fit(X, y)
    assert trainings(log) == 2
    assert clf.predict_proba(X).shape == (len(X), 2)


# -- searches -----------------------------------------------------------------


def _search(log, cache, grid, n_jobs=None, cv=3):
    clf = make(log, cache, **{**FAST, "random_state": 0})
    return GridSearchCV(clf, grid, cv=KFold(cv), n_jobs=n_jobs)


@pytest.mark.parametrize("n_thresholds", [1, 5])
def test_threshold_search_trains_once_per_fold(n_thresholds, data, log, tmp_path):
    X, y = data
    grid = {"threshold": list(np.linspace(0.1, 0.9, n_thresholds))}
    search = _search(log, str(tmp_path / "cache"), grid).fit(X, y)
    assert trainings(log) == 3 + 1
    assert len(search.cv_results_["params"]) == n_thresholds


def test_lr_and_threshold_search_trains_once_per_lr_and_fold(data, log, tmp_path):
    X, y = data
    grid = {"lr": [1e-3, 1e-2], "threshold": [0.3, 0.5, 0.7]}
    _search(log, str(tmp_path / "cache"), grid).fit(X, y)
    assert trainings(log) == 2 * 3 + 1


def test_parallel_search_shares_the_cache(data, tmp_path):
    X, y = data
    grid = {"threshold": [0.2, 0.4, 0.6, 0.8]}
    serial_log = str(tmp_path / "serial.log")
    serial = _search(serial_log, str(tmp_path / "serial"), grid).fit(X, y)
    assert trainings(serial_log) == 3 + 1

    log = str(tmp_path / "parallel.log")
    cache = str(tmp_path / "parallel")
    parallel = _search(log, cache, grid, n_jobs=2).fit(X, y)
    # Two workers that need the same fold's network wait for one training.
    assert trainings(log) == 3 + 1
    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    # Every entry the workers wrote loads cleanly in this process.
    count = trainings(log)
    for train, _ in KFold(3).split(X):
        clone(parallel.estimator).fit(X[train], y[train])
    parallel.best_estimator_.fit(X, y)
    assert trainings(log) == count


def entries(cache) -> list:
    """The networks stored in a cache folder (no lock or temporary files)."""
    return sorted((cache / "sk_mlc").glob("*.safetensors"))


def test_concurrent_fits_of_one_key_train_once(data, log, tmp_path):
    # Four fits of one key at once on two workers: one trains, the others
    # wait on the entry's lock and load what it stored.
    X, y = data
    cache = tmp_path / "cache"
    clf = make(log, str(cache))
    fitted = Parallel(n_jobs=2)(delayed(clone(clf).fit)(X, y) for _ in range(4))
    assert trainings(log) == 1
    expected = fitted[0].predict_proba(X)
    for other in fitted[1:]:
        np.testing.assert_array_equal(other.predict_proba(X), expected)
    # One network, and no temporary file left behind by a writer.
    assert len(entries(cache)) == 1
    assert sorted(p.suffix for p in (cache / "sk_mlc").iterdir()) == [
        ".lock",
        ".safetensors",
    ]
    clone(clf).fit(X, y)
    assert trainings(log) == 1


def test_predictions_are_cached_per_network_and_images(data, log, tmp_path):
    X, y = data
    first = make(log, str(tmp_path)).fit(X, y)
    expected = first.predict_proba(X)
    again = make(log, str(tmp_path)).set_params(threshold=0.3).fit(X, y)
    forwards = []
    again.net_.module_.register_forward_hook(lambda *args: forwards.append(1))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    assert forwards == []  # same network, same images: no forward pass
    np.testing.assert_array_equal(
        again.predict(X), again.classes_[(expected[:, 1] >= 0.3).astype(int)]
    )
    X_other = X.copy()
    X_other[0, 0, 0] += 1.0
    again.predict_proba(X_other)
    assert forwards  # one pixel changed: computed


def test_cached_outputs_follow_test_time_augmentation(data, log, tmp_path):
    # tta changes predict_proba without changing the network: the outputs
    # cached for one setting must never answer for the other.
    X, y = data
    clf = make(log, str(tmp_path)).fit(X, y)
    plain = clf.set_params(tta=None).predict_proba(X)
    flipped = clf.set_params(tta="flip").predict_proba(X)
    assert np.abs(flipped - plain).max() > 1e-4
    np.testing.assert_array_equal(clf.set_params(tta=None).predict_proba(X), plain)


# -- serving --------------------------------------------------------------------


def _files(folder):
    return sorted(
        (os.path.join(root, name), os.path.getmtime(os.path.join(root, name)))
        for root, _, names in os.walk(folder)
        for name in names
    )


def test_serving_never_writes_to_the_cache(data, log, tmp_path):
    X, y = data
    cache = tmp_path / "cache"
    clf = make(log, str(cache)).fit(X, y)
    before = _files(cache)
    rng = np.random.RandomState(0)
    for _ in range(30):
        X_new = rng.rand(3, *X.shape[1:]).astype(np.float32)
        clf.predict(X_new)
        clf.predict_proba(X_new)
        clf.score(X_new, y[:3])
    assert _files(cache) == before


def test_model_predicts_without_its_cache_folder(data, log, tmp_path):
    X, y = data
    cache = tmp_path / "cache"
    clf = make(log, str(cache)).fit(X, y)
    expected = clf.predict_proba(X)
    shutil.rmtree(cache)
    np.testing.assert_array_equal(clf.predict_proba(X[::-1]), expected[::-1])
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    assert not cache.exists()


# -- what the key covers ----------------------------------------------------------


class Scaled(torch.nn.Module):
    """A backbone whose forward reads a plain attribute."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.conv = torch.nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.conv(x * self.scale)


def test_plain_module_attributes_are_in_the_key(data, log, tmp_path):
    X, y = data
    cache = str(tmp_path / "cache")
    backbone = Scaled(1.0)
    make(log, cache, module=backbone).fit(X, y)
    make(log, cache, module=copy.deepcopy(backbone)).fit(X, y)
    assert trainings(log) == 1
    changed = copy.deepcopy(backbone)
    changed.scale = 10.0
    make(log, cache, module=changed).fit(X, y)
    assert trainings(log) == 2


_BACKBONE_SOURCE = """
import skorch
import torch

class Backbone(torch.nn.Sequential):
    def __init__(self):
        super().__init__(torch.nn.Conv2d(1, 4, 3), torch.nn.{activation}())

def backbone():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.{activation}())

class Hook(skorch.callbacks.Callback):
    def on_epoch_end(self, net, **kwargs):
        net.history.record("hook", "{activation}")
"""


@pytest.mark.parametrize(
    "name", ["Backbone", "backbone", "Hook"], ids=["class", "function", "callback"]
)
def test_the_code_of_a_module_callable_is_in_the_key(
    name, data, log, tmp_path, monkeypatch
):
    # A class or function edited between two fits trains another network.
    X, y = data
    cache = str(tmp_path / "cache")
    path = tmp_path / f"user_backbone_{name}.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    # No .pyc: "ReLU" and "Tanh" have one length, and a cached bytecode file
    # of the same size and second would be imported instead of the edit.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for activation, expected in [("ReLU", 1), ("ReLU", 1), ("Tanh", 2)]:
        path.write_text(_BACKBONE_SOURCE.format(activation=activation))
        sys.modules.pop(path.stem, None)
        code = getattr(importlib.import_module(path.stem), name)
        if name == "Hook":
            make(log, cache, extra_callbacks=[("hook", code())]).fit(X, y)
        else:
            make(log, cache, module=code).fit(X, y)
        assert trainings(log) == expected


_FIT_IN_A_COPY = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from _counting import TrainCounter
from sk_mlc import CNNClassifier
X = np.random.RandomState(0).rand(24, 6, 6).astype(np.float32)
count = [("count", TrainCounter(sys.argv[4]))]
clf = CNNClassifier(width=4, depth=1, max_epochs=1, random_state=0, batch_size=16)
clf.set_params(memory=sys.argv[3], callbacks=count).fit(X, np.arange(24) % 2)
"""


def test_the_training_code_is_in_the_key(log, tmp_path):
    # A cache folder outlives code changes: a network trained by other sk_mlc
    # code must not be served. An edited copy of the package, in a subprocess.
    import sk_mlc

    cache = str(tmp_path / "cache")
    X = np.random.RandomState(0).rand(24, 6, 6).astype(np.float32)
    params = {"width": 4, "depth": 1, "max_epochs": 1, "random_state": 0}
    clf = make(log, cache, **params)
    clf.fit(X, np.arange(24) % 2)
    assert trainings(log) == 1

    copy_root = tmp_path / "edited"
    shutil.copytree(os.path.dirname(sk_mlc.__file__), copy_root / "sk_mlc")
    training = copy_root / "sk_mlc" / "training" / "_fit.py"
    training.write_text(training.read_text() + "\n# an edit\n")
    tests = os.path.dirname(__file__)
    script = [sys.executable, "-c", _FIT_IN_A_COPY, str(copy_root), tests, cache, log]
    subprocess.run(script, check=True, capture_output=True)
    assert trainings(log) == 2  # the edited code did not reuse our network

    clone(clf).fit(X, np.arange(24) % 2)
    assert trainings(log) == 2  # ours is still there for our code


def test_outputs_follow_weights_that_trained_on(data, log, tmp_path):
    # The in-process outputs cache must not serve the outputs of the weights
    # a cached network had before it went on training.
    X, y = data
    clf = make(log, str(tmp_path), lr_schedule="constant").fit(X, y)
    before = clf.predict_proba(X)
    X_t = torch.from_numpy(X[:, None])
    clf.net_.partial_fit(X_t, torch.from_numpy((y == "blob")[:, None] * 1.0).float())
    after = clf.predict_proba(X)
    assert not np.allclose(after, before)
    with torch.no_grad():  # what the current weights say, computed by hand
        expected = torch.sigmoid(clf.net_.module_.eval()(X_t))[:, 0].numpy()
    np.testing.assert_allclose(after[:, 1], expected, atol=1e-6)


def test_in_process_outputs_stay_bounded(data, log, tmp_path):
    # 64 entries at most: after 64 other image sets, the first is computed again.
    X, y = data
    clf = make(log, str(tmp_path / "cache")).fit(X, y)
    forwards = []
    clf.net_.module_.register_forward_hook(lambda *args: forwards.append(1))
    clf.predict_proba(X[:2])
    clf.predict_proba(X[:2])
    assert len(forwards) == 1  # kept
    rng = np.random.RandomState(0)
    for _ in range(64):
        clf.predict_proba(rng.rand(2, *X.shape[1:]).astype(np.float32))
    assert len(forwards) == 65
    clf.predict_proba(X[:2])
    assert len(forwards) == 66  # the oldest entry went out


# -- a cache folder cannot run code --------------------------------------------------


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def _pickle_payload(entry, other, marker):
    entry.write_bytes(pickle.dumps(Payload(str(marker))))


def _truncated(entry, other, marker):
    entry.write_bytes(entry.read_bytes()[:-100])


def _another_keys_entry(entry, other, marker):
    shutil.copyfile(other, entry)


def _foreign_safetensors(entry, other, marker):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, entry)


CRAFTED = {
    "pickle": _pickle_payload,
    "truncated": _truncated,
    "another-key": _another_keys_entry,
    "foreign": _foreign_safetensors,
}


@pytest.mark.parametrize("craft", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_crafted_entry_is_ignored_and_trained_again(craft, data, log, tmp_path):
    X, y = data
    cache = tmp_path / "cache"
    marker = tmp_path / "payload-ran"
    make(log, str(cache), lr=1e-2).fit(X, y)  # another key's entry
    (other,) = entries(cache)
    expected = make(log, str(cache)).fit(X, y).predict_proba(X)
    (entry,) = set(entries(cache)) - {other}
    assert trainings(log) == 2
    craft(entry, other, marker)
    with pytest.warns(UserWarning, match="ignored the cache entry"):
        clf = make(log, str(cache)).fit(X, y)
    assert not marker.exists(), "the pickle payload ran"
    assert trainings(log) == 3
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    # Stored again, whole: the next fit hits it.
    make(log, str(cache)).fit(X, y)
    assert trainings(log) == 3


def test_pickles_anywhere_in_the_folder_are_never_read(data, log, tmp_path):
    # joblib's old layout, and names next to the entries: nothing reads them.
    X, y = data
    cache = tmp_path / "cache"
    marker = tmp_path / "payload-ran"
    make(log, str(cache)).fit(X, y)
    payload = pickle.dumps(Payload(str(marker)))
    for name in ("joblib/sk_mlc/_cache/_train_cached/0/output.pkl", "sk_mlc/x.pkl"):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(payload)
    (entries(cache)[0].with_suffix(".lock")).write_bytes(payload)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(log, str(cache)).fit(X, y)
    assert trainings(log) == 1
    assert not marker.exists()


# -- a search on a Dask cluster ------------------------------------------------------


# Slow: ~35 s on 2 busy cores, of which ~25 s start and stop the cluster (its
# worker processes import distributed and torch). The loky tests above cover
# the lock in every run.
@pytest.mark.slow
def test_dask_search_trains_each_network_once(data, tmp_path):
    # Two worker processes run the 9 x 3 fits of a threshold search; those
    # that need the same fold's network wait on its lock instead of training
    # it again: 3 folds + 1 refit, as with n_jobs=1.
    distributed = pytest.importorskip(
        "distributed",
        reason="dask.distributed is not installed (pip install 'sk_mlc[dask]')",
    )
    X, y = data
    grid = {"threshold": list(np.linspace(0.1, 0.9, 9))}
    serial_log = str(tmp_path / "serial.log")
    serial = GridSearchCV(
        make(serial_log, str(tmp_path / "serial")), grid, cv=3, n_jobs=1
    ).fit(X, y)
    assert trainings(serial_log) == 3 + 1

    log = str(tmp_path / "dask.log")
    cache = tmp_path / "dask"
    search = GridSearchCV(make(log, str(cache)), grid, cv=3)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        search.fit(X, y)
    assert trainings(log) == 3 + 1
    assert len(entries(cache)) == 3 + 1
    assert search.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
