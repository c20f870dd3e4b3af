"""``sk_mlc.save`` / ``sk_mlc.load``: exact round trips, and files that cannot run code.

Round trips are checked in a fresh Python process, which shares nothing with
the one that saved. The security tests build every kind of hostile file (each
member swapped for a pickle whose ``__reduce__`` creates a marker file, class
names pointing at dangerous callables, truncations) and prove both that
``load`` refuses it with a ``ValueError`` and that the marker never appears.
"""

import base64
import copy
import functools
import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _counting import TrainCounter
from conftest import FAST, quadrant_images
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

import sk_mlc
from sk_mlc import CNNClassifier, ThresholdTunerCV
from sk_mlc._sealed import checksum
from sk_mlc.io._codec import decode, encode

SMALL = {**FAST, "max_epochs": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def data():
    return quadrant_images(n_samples=48)


def _binary(X, Y):
    y = np.where(Y[:, 0] == 1, "blob", "empty")
    return CNNClassifier(**SMALL, threshold=0.4).fit(X, y)


def _multiclass(X, Y):
    # The recipe's settings: residual blocks, label smoothing, test-time flips.
    y = np.minimum(Y.sum(1), 2)
    clf = CNNClassifier(
        **SMALL,
        class_weight="balanced",
        residual=True,
        label_smoothing=0.1,
        augment="flip",
    )
    return clf.fit(X, y)


def _multilabel(X, Y):
    # Per-label thresholds, class weights from the data, a smoothed BCE and a
    # sparse y.
    clf = CNNClassifier(
        **SMALL,
        threshold=[0.3, 0.4, 0.5, 0.6],
        class_weight="balanced",
        label_smoothing=0.2,
    )
    return clf.fit(X, sp.csr_matrix(Y))


def _tuner(X, Y):
    tuner = ThresholdTunerCV(CNNClassifier(**SMALL), cv=2, thresholds=9)
    return tuner.fit(X, Y)


KINDS = {
    "binary": _binary,
    "multiclass": _multiclass,
    "multilabel": _multilabel,
    "tuner": _tuner,
}


@pytest.fixture(scope="module")
def models(data):
    X, Y = data
    return {name: make(X, Y) for name, make in KINDS.items()}


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    paths = {}
    for name, model in models.items():
        paths[name] = str(folder / f"{name}.safetensors")
        sk_mlc.save(model, paths[name])
    return paths


_PREDICT_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
import scipy.sparse as sp
import torch
torch.set_num_threads(1)
import sk_mlc
X = np.load(sys.argv[1])
out = {}
for pair in sys.argv[3:]:
    name, path = pair.split("=", 1)
    model = sk_mlc.load(path)
    out[name + ".proba"] = model.predict_proba(X)
    pred = model.predict(X)
    out[name + ".sparse"] = np.array(sp.issparse(pred))
    out[name + ".pred"] = pred.toarray() if sp.issparse(pred) else pred
    out[name + ".class"] = np.array(type(model).__name__)
np.savez(sys.argv[2], **out)
"""


@pytest.fixture(scope="module")
def fresh(saved, data, tmp_path_factory):
    """Predictions of every saved model, loaded in a new Python process."""
    folder = tmp_path_factory.mktemp("fresh")
    X = data[0][::3]
    np.save(folder / "X.npy", X)
    pairs = [f"{name}={path}" for name, path in saved.items()]
    script = [sys.executable, "-c", _PREDICT_IN_A_FRESH_PROCESS]
    script += [str(folder / "X.npy"), str(folder / "out.npz"), *pairs]
    env = {**os.environ, "PYTHONPATH": _package_root()}
    result = subprocess.run(script, capture_output=True, env=env)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    with np.load(folder / "out.npz", allow_pickle=False) as out:
        return X, dict(out)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(sk_mlc.__file__))


@pytest.mark.parametrize("name", KINDS)
def test_round_trip_in_a_fresh_process_predicts_identically(name, models, fresh):
    X, out = fresh
    model = models[name]
    np.testing.assert_array_equal(out[f"{name}.proba"], model.predict_proba(X))
    expected = model.predict(X)
    assert bool(out[f"{name}.sparse"]) == sp.issparse(expected)
    if sp.issparse(expected):
        expected = expected.toarray()
    np.testing.assert_array_equal(out[f"{name}.pred"], expected)
    assert out[f"{name}.pred"].dtype == expected.dtype  # "<U5" labels, int64 Y
    assert str(out[f"{name}.class"]) == type(model).__name__


@pytest.mark.parametrize("name", KINDS)
def test_loaded_model_has_the_parameters_and_fitted_state(name, models, saved):
    model = models[name]
    loaded = sk_mlc.load(saved[name])
    cnn, loaded_cnn = model, loaded
    if name == "tuner":
        cnn, loaded_cnn = model.estimator_, loaded.estimator_
        # Every fitted table (best_thresholds_, scores_, cv_results_, ...).
        fitted = [k for k in vars(model) if k.endswith("_") and k != "estimator_"]
        assert len(fitted) > 8
        for key in fitted:
            _assert_same(getattr(loaded, key), getattr(model, key))
        assert type(loaded.estimator) is CNNClassifier
        assert loaded.estimator.get_params() == model.estimator.get_params()
    for key, value in model.get_params(deep=False).items():
        if key != "estimator":
            np.testing.assert_equal(loaded.get_params(deep=False)[key], value)
    assert loaded_cnn.optimizer is torch.optim.AdamW
    for attr in ("classes_", "target_type_", "out_activation_", "n_outputs_"):
        np.testing.assert_array_equal(getattr(loaded_cnn, attr), getattr(cnn, attr))
    assert loaded_cnn.classes_.dtype == cnn.classes_.dtype
    assert loaded_cnn.input_shape_ == cnn.input_shape_
    assert loaded_cnn.n_iter_ == len(loaded_cnn.net_.history) == SMALL["max_epochs"]
    assert (
        loaded_cnn.net_.history[-1, "train_loss"] == cnn.net_.history[-1, "train_loss"]
    )
    assert type(loaded_cnn.criterion_) is type(cnn.criterion_)
    for key, tensor in cnn.criterion_.state_dict().items():  # class weights
        torch.testing.assert_close(loaded_cnn.criterion_.state_dict()[key], tensor)
    assert loaded_cnn.tta_ == cnn.tta_
    smoothing = getattr(cnn.criterion_, "label_smoothing", 0.0)
    assert getattr(loaded_cnn.criterion_, "label_smoothing", 0.0) == smoothing


def test_loaded_model_trains_on(models, saved, data):
    # A loaded model is an ordinary fitted estimator: partial_fit continues it.
    X, Y = data
    loaded = sk_mlc.load(saved["multiclass"])
    before = loaded.predict_proba(X)
    loaded.partial_fit(X, np.minimum(Y.sum(1), 2))
    assert loaded.n_iter_ == SMALL["max_epochs"] + 1
    assert not np.allclose(loaded.predict_proba(X), before)


def test_the_file_is_safetensors_with_readable_json(saved):
    with safe_open(saved["binary"], "pt") as file:
        metadata = file.metadata()
        names = list(file.keys())
    assert metadata["format"] == "sk_mlc.model"
    assert metadata["format_version"] == "1"
    document = json.loads(metadata["json"])
    assert document["versions"]["torch"] == torch.__version__
    node = document["estimator"]
    assert node["class"] == "sk_mlc._classifier:CNNClassifier"
    classes = node["attributes"]["classes_"]["__ndarray__"]
    assert classes["values"] == ["blob", "empty"]
    assert node["params"]["optimizer"] == {"__import__": "torch.optim.adamw:AdamW"}
    assert any(name.startswith("module.") for name in names)


VALUES = {
    "nested": {
        "thresholds": np.linspace(0, 1, 5),
        "scores": np.arange(3000, dtype=np.float32).reshape(1000, 3),  # a tensor
        "labels": np.array(["cat", "dog", "\u00e9l\u00e9phant"]),
        "objects": np.array(["a", 1, None, 2.5], dtype=object),
        "flags": np.array([[True, False]]),
        "empty": np.empty((0, 4), dtype=np.int16),
        "nan": np.array([np.nan, np.inf, -1.0]),
    },
    "int-keys": {1: "a", "1": "b", (2, "x"): [1, (2, 3)]},
    "scalars": (np.float32(0.1), np.int64(7), np.bool_(True), np.str_("s")),
    "dtype": np.dtype("<U7"),
    "tensor": torch.arange(6.0).reshape(2, 3),
    "partial": functools.partial(torch.optim.SGD, momentum=0.9),
}


@pytest.mark.parametrize("name", VALUES)
def test_values_round_trip_exactly_through_json(name):
    value = VALUES[name]
    tensors = {}
    text = json.dumps(encode(value, tensors, "array"))
    decoded = decode(json.loads(text), {k: t.clone() for k, t in tensors.items()})
    _assert_same(decoded, value)


def _assert_same(decoded, value):
    assert type(decoded) is type(value)
    if isinstance(value, dict):
        assert list(decoded) == list(value)
        for key in value:
            _assert_same(decoded[key], value[key])
    elif isinstance(value, (list, tuple)):
        assert len(decoded) == len(value)
        for a, b in zip(decoded, value, strict=True):
            _assert_same(a, b)
    elif isinstance(value, np.ndarray):
        assert decoded.dtype == value.dtype and decoded.shape == value.shape
        np.testing.assert_array_equal(decoded, value)
    elif isinstance(value, torch.Tensor):
        torch.testing.assert_close(decoded, value, rtol=0, atol=0)
    elif isinstance(value, functools.partial):
        assert (decoded.func, decoded.args, decoded.keywords) == (
            value.func,
            value.args,
            value.keywords,
        )
    else:
        assert decoded == value


# -- parameters that a file cannot hold ----------------------------------------------


class Backbone(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def user_model(data, tmp_path_factory):
    X, Y = data
    torch.manual_seed(0)
    callbacks = [("count", TrainCounter(str(tmp_path_factory.mktemp("log") / "l")))]
    clf = CNNClassifier(Backbone(), callbacks=callbacks, **SMALL).fit(X, Y)
    path = str(tmp_path_factory.mktemp("user") / "model.safetensors")
    with pytest.warns(UserWarning, match=r"module \(a Backbone instance\)"):
        sk_mlc.save(clf, path)
    return clf, path


def test_a_missing_parameter_is_asked_for_by_name(user_model):
    _, path = user_model
    with pytest.raises(ValueError) as error:
        sk_mlc.load(path)
    message = str(error.value)
    assert "module (a Backbone instance)" in message
    assert "callbacks (a TrainCounter instance)" in message
    assert "sk_mlc.load(path, module=..., callbacks=...)" in message
    with pytest.raises(ValueError, match="callbacks"):
        sk_mlc.load(path, module=Backbone())


def test_a_user_module_supplied_at_load(user_model, data):
    clf, path = user_model
    X, _ = data
    loaded = sk_mlc.load(path, module=Backbone(), callbacks=None)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert isinstance(loaded.module, Backbone)
    assert loaded.callbacks is None


def test_a_module_that_does_not_fit_the_weights(user_model):
    _, path = user_model
    with pytest.raises(ValueError, match=r"do not fit.*1\.conv\.weight") as error:
        sk_mlc.load(path, module=Backbone(width=8), callbacks=None)
    assert "module=a Backbone instance" in str(error.value)


def test_unknown_override(saved):
    with pytest.raises(ValueError, match=r"\['widht'\] name no parameter"):
        sk_mlc.load(saved["binary"], widht=3)


def test_overrides_replace_saved_values(saved, models, data):
    X, _ = data
    loaded = sk_mlc.load(saved["binary"], threshold=0.9, device="cpu")
    p = models["binary"].predict_proba(X)[:, 1]
    np.testing.assert_array_equal(loaded.predict(X), loaded.classes_[(p >= 0.9) * 1])


def test_a_tuner_takes_its_estimators_parameters_by_their_nested_name(
    saved, models, data
):
    X, _ = data
    loaded = sk_mlc.load(saved["tuner"], estimator__device="cpu", estimator__lr=0.1)
    assert loaded.estimator_.lr == loaded.estimator.lr == 0.1
    assert loaded.estimator_.device_ == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), models["tuner"].predict(X))
    with pytest.raises(ValueError, match=r"\['device'\] name no parameter"):
        sk_mlc.load(saved["tuner"], device="cpu")


def test_save_refuses_what_it_cannot_store(data, tmp_path):
    X, Y = data
    path = tmp_path / "m.safetensors"
    with pytest.raises(NotFittedError, match="sk_mlc.save: this CNNClassifier"):
        sk_mlc.save(CNNClassifier(), path)
    with pytest.raises(TypeError, match="got LogisticRegression"):
        sk_mlc.save(LogisticRegression().fit(X.reshape(len(X), -1), Y[:, 0]), path)
    tuner = ThresholdTunerCV(OneVsRestClassifier(LogisticRegression()), cv=2)
    tuner.fit(X.reshape(len(X), -1), Y)
    with pytest.raises(TypeError, match="this one's is a OneVsRestClassifier"):
        sk_mlc.save(tuner, path)
    assert not path.exists()


# -- versions and devices -------------------------------------------------------------


def _read(path):
    with safe_open(path, "pt") as file:
        metadata = file.metadata()
    return metadata, load_file(path)


def _write(path, metadata, tensors, reseal=True):
    metadata = dict(metadata)
    if reseal:  # an attacker can recompute a checksum: it is not a signature
        metadata["sha256"] = checksum(metadata, tensors)
    save_file(tensors, path, metadata=metadata)


def _edit_json(source, target, edit):
    metadata, tensors = _read(source)
    document = json.loads(metadata["json"])
    edit(document)
    metadata["json"] = json.dumps(document)
    _write(target, metadata, tensors)


def test_a_model_trained_on_cuda_loads_where_there_is_none(
    saved, models, data, tmp_path
):
    X, _ = data
    path = str(tmp_path / "cuda.safetensors")

    def on_cuda(document):
        node = document["estimator"]
        node["params"]["device"] = "cuda"
        node["attributes"]["device_"] = "cuda:0"

    _edit_json(saved["multilabel"], path, on_cuda)
    loaded = sk_mlc.load(path)
    assert loaded.device == "cuda"  # the parameter as saved, for a refit
    assert loaded.device_ == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert str(loaded.net_.device) == loaded.device_
    expected = models["multilabel"]
    np.testing.assert_allclose(loaded.predict_proba(X), expected.predict_proba(X))


def test_other_versions_load_with_a_warning(saved, models, data, tmp_path):
    X, _ = data
    path = str(tmp_path / "old.safetensors")
    _edit_json(
        saved["binary"],
        path,
        lambda d: d["versions"].update(torch="1.0", sk_mlc="0.0.1"),
    )
    with pytest.warns(UserWarning, match=r"saved with sk_mlc 0\.0\.1 .*torch 1\.0"):
        loaded = sk_mlc.load(path)
    np.testing.assert_array_equal(
        loaded.predict_proba(X), models["binary"].predict_proba(X)
    )


def test_a_newer_format_is_refused(saved, tmp_path):
    path = str(tmp_path / "new.safetensors")
    metadata, tensors = _read(saved["binary"])
    _write(path, {**metadata, "format_version": "2"}, tensors)
    with pytest.raises(ValueError, match="format version '2'.*upgrade sk_mlc"):
        sk_mlc.load(path)


def test_a_parameter_this_version_lacks_is_refused(saved, tmp_path):
    path = str(tmp_path / "future.safetensors")
    _edit_json(
        saved["binary"], path, lambda d: d["estimator"]["params"].update(future=1)
    )
    with pytest.raises(ValueError, match=r"parameter\(s\) \['future'\]"):
        sk_mlc.load(path)


# -- hostile files ------------------------------------------------------------------


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "the pickle payload ran"


@pytest.fixture
def payload(marker):
    return pickle.dumps(Payload(str(marker)))


def test_the_payload_runs_when_unpickled(payload, marker):
    # What every test below relies on: unpickling the payload leaves a marker.
    pickle.loads(payload).close()
    assert marker.exists()
    marker.unlink()


def _refused(path, match=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a version warning may precede the error
        with pytest.raises(ValueError, match=match):
            sk_mlc.load(path)


@pytest.mark.parametrize("reseal", [False, True], ids=["as-is", "resealed"])
@pytest.mark.parametrize("kind", ["binary", "tuner"])
def test_every_tensor_swapped_for_a_pickle_is_refused(
    kind, reseal, saved, payload, marker, tmp_path
):
    metadata, tensors = _read(saved[kind])
    path = str(tmp_path / "crafted.safetensors")
    evil = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    assert len(tensors) > 10
    for name in tensors:
        _write(path, metadata, {**tensors, name: evil.clone()}, reseal=reseal)
        _refused(path, None if reseal else "checksum")
    # And a file whose tensors were removed or added.
    for crafted in ({}, {**tensors, "module.evil": evil.clone()}):
        _write(path, metadata, crafted, reseal=reseal)
        _refused(path)


# The checksum itself can only be swapped as is: resealing would undo the swap.
METADATA = [(m, r) for m in ("json", "format", "format_version") for r in (0, 1)]


@pytest.mark.parametrize("member, reseal", [*METADATA, ("sha256", False)])
def test_the_metadata_swapped_for_a_pickle_is_refused(
    member, reseal, saved, payload, marker, tmp_path
):
    metadata, tensors = _read(saved["binary"])
    path = str(tmp_path / "crafted.safetensors")
    for text in (payload.decode("latin-1"), base64.b64encode(payload).decode()):
        _write(path, {**metadata, member: text}, tensors, reseal=reseal)
        _refused(path)


def _imports(node, trail=()):
    """Every place in a JSON document that names a class or a function."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("__import__", "class"):
                yield (*trail, key)
            yield from _imports(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _imports(value, (*trail, index))


DANGEROUS = [
    "builtins:eval",
    "builtins:exec",
    "os:system",
    "pickle:loads",
    "subprocess:Popen",
    "torch:load",
    "torch.serialization:load",
    "torch.hub:load",
    "sk_mlc.io._load:load",
    "sk_mlc.datasets:load_fashion_mnist",
    "joblib:load",
    "torch.optim:_functional",
    "torch.optim.adamw:AdamW.__init__.__globals__",
    "tests.test_persist:Payload",
    "sk_mlc",
    "",
]


def test_every_class_name_swapped_for_a_pickle_or_a_dangerous_name_is_refused(
    saved, payload, marker, tmp_path
):
    metadata, tensors = _read(saved["tuner"])
    document = json.loads(metadata["json"])
    trails = list(_imports(document))
    # The classes of the tuner and of its two CNNClassifiers, the optimizers.
    assert len(trails) >= 5
    path = str(tmp_path / "crafted.safetensors")
    values = [
        base64.b64encode(payload).decode(),
        payload.decode("latin-1"),
        {"__pickle__": base64.b64encode(payload).decode()},
        *DANGEROUS,
    ]
    for trail in trails:
        for value in values:
            crafted = copy.deepcopy(document)
            *parents, last = trail
            node = crafted
            for key in parents:
                node = node[key]
            node[last] = value
            metadata["json"] = json.dumps(crafted)
            _write(path, metadata, tensors)
            _refused(path, "sk_mlc.load: ")


def test_a_whole_file_swapped_for_a_pickle_or_a_torch_save_is_refused(
    saved, payload, marker, tmp_path
):
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(payload)
    _refused(path, "looks like a pickle")
    torch.save({"weight": torch.zeros(2)}, path)
    _refused(path, "torch.save")
    save_file({"weight": torch.zeros(2)}, path)
    _refused(path, "not a file written by sk_mlc")
    path.write_bytes(b"")
    _refused(path, "truncated")


def test_a_truncated_file_is_refused(saved, marker, tmp_path):
    data = open(saved["binary"], "rb").read()
    path = tmp_path / "truncated.safetensors"
    for size in (4, 12, 200, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        _refused(path, "truncated|corrupt")
    # A flipped byte in the tensors.
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    path.write_bytes(bytes(flipped))
    _refused(path, "checksum")


def test_a_weighted_fit_round_trips_with_its_loss_settings(data, tmp_path):
    # Weighted training leaves the loss reducing nothing (per-sample losses):
    # the loaded network's loss must be the one it trained with.
    X, Y = data
    weight = np.linspace(0.5, 2.0, len(X))
    clf = CNNClassifier(**SMALL).fit(X, Y[:, 0], sample_weight=weight)
    assert clf.criterion_.reduction == "none"
    path = tmp_path / "weighted.safetensors"
    sk_mlc.save(clf, path)
    loaded = sk_mlc.load(path)
    assert loaded.criterion_.reduction == "none"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_a_model_saved_before_the_recipe_loads_and_predicts_as_it_did(tmp_path):
    # Files written before depth="auto" went down to 4 pixels (28x28: 3
    # stages then, 4 now) and before test-time augmentation: the network is
    # rebuilt with the depth its weights have, and predicts without flips.
    X = np.random.RandomState(0).rand(40, 28, 28).astype(np.float32)
    y = (X[:, :14].mean((1, 2)) > X[:, 14:].mean((1, 2))).astype(int)
    old = CNNClassifier(**{**SMALL, "depth": 3}, augment=None).fit(X, y)
    del old._flips_
    path = tmp_path / "old.safetensors"
    sk_mlc.save(old, path)
    loaded = sk_mlc.load(path, depth="auto")  # what an old file says
    assert loaded.depth == "auto" and loaded.tta_ is None
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))
