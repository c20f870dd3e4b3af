"""``to_onnx``: onnxruntime on the exported graph answers as the estimator does."""

import contextlib
import copy
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import FAST
from PIL import Image
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

import sk_mlc
from sk_mlc import CNNClassifier, ImageLoader, ThresholdTunerCV, to_onnx
from sk_mlc.io._onnx import _check_against, _float32_at_least
from sk_mlc.io._serving import ServingInput

_REASON = 'to_onnx needs the extra onnx: pip install "sk_mlc[onnx]"'
for _package in ("onnx", "onnxruntime", "onnxscript"):
    pytest.importorskip(_package, reason=f"{_package} is missing; {_REASON}")
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

# The guide page whose ONNX example is run below (it was the README's).
GUIDE = Path(__file__).resolve().parent.parent / "docs" / "save-load-onnx.md"
BATCHES = (1, 37)


def export(estimator, tmp_path, name="model.onnx"):
    """Export ``estimator``; the onnxruntime session of the written file.

    An export costs 1-3 s (torch's exporter): tests share them where they can.
    """
    path = tmp_path / name
    to_onnx(estimator, path)
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_same_answers(session, estimator, X):
    """The graph's outputs against predict_proba and predict, batch by batch."""
    for n in BATCHES:
        proba, label = session.run(["probabilities", "label"], {"images": X[:n]})
        expected_proba = estimator.predict_proba(X[:n])
        expected = estimator.predict(X[:n])
        if sp.issparse(expected):
            expected = expected.toarray()  # the graph's matrix is always dense
        assert proba.shape == expected_proba.shape
        assert np.abs(proba - expected_proba).max() <= 1e-5
        assert label.shape == expected.shape
        assert label.dtype == expected.dtype or label.dtype == object
        assert label.tolist() == expected.tolist()


def uint8_rgb(X):
    """The quadrant images as uint8 NHWC RGB: a channel-last, integer input."""
    grey = np.clip((X + 0.5) * 160, 0, 255).astype(np.uint8)
    return np.stack([grey, grey[:, ::-1], 255 - grey], axis=-1)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def sessions(tmp):
    """The graphs of the shared fitted models, exported on first use."""
    cache = {}

    def session(name, estimator):
        if name not in cache:
            cache[name] = export(estimator, tmp, f"{name}.onnx")
        return cache[name]

    return session


KINDS = ["fitted_binary", "fitted_multiclass", "fitted_multilabel"]


@pytest.mark.parametrize("fixture", KINDS)
def test_graph_reproduces_predict_proba_and_predict(
    fixture, request, multilabel_data, sessions
):
    clf = request.getfixturevalue(fixture)
    X, _ = multilabel_data
    assert_same_answers(sessions(fixture, clf), clf, X)


def test_binary_labels_are_the_string_classes(fitted_binary, multilabel_data, sessions):
    X, _ = multilabel_data
    session = sessions("fitted_binary", fitted_binary)
    label = session.run(["label"], {"images": X[:37]})[0]
    assert set(label) <= {"blob", "empty"} and len(set(label)) == 2
    (graph_input,) = session.get_inputs()
    assert graph_input.type == "tensor(float)"
    assert graph_input.shape[1:] == [8, 8] and isinstance(graph_input.shape[0], str)


def test_per_label_thresholds_are_baked_in(
    fitted_multilabel, multilabel_data, tmp, sessions
):
    X, _ = multilabel_data
    clf = copy.deepcopy(fitted_multilabel).set_params(threshold=[0.3, 0.5, 0.7, 0.1])
    session = export(clf, tmp, "per_label.onnx")
    assert_same_answers(session, clf, X)
    default = sessions("fitted_multilabel", fitted_multilabel)
    changed = session.run(["label"], {"images": X})[0]
    assert (changed != default.run(["label"], {"images": X})[0]).any()


def test_threshold_comparison_is_exact_at_the_float32_boundary(
    fitted_multilabel, multilabel_data, tmp, sessions
):
    # Thresholds a hair above probabilities the graph computes: float32(t)
    # would round down onto p and call it positive; predict (float64) says
    # negative. Thresholds exactly at p are positive for both.
    X, _ = multilabel_data
    base = sessions("fitted_multilabel", fitted_multilabel)
    P = base.run(["probabilities"], {"images": X[:1]})[0][0].astype(np.float64)
    thresholds = P + np.array([1e-12, 1e-12, 0.0, 0.0])
    clf = copy.deepcopy(fitted_multilabel).set_params(threshold=thresholds)
    label = export(clf, tmp, "boundary.onnx").run(["label"], {"images": X[:1]})[0]
    assert label.tolist() == [[0, 0, 1, 1]]


@pytest.mark.parametrize("t", [0.3, 0.5, 1 / 3, 0.1, 0.0, 1.0, 0.7 + 1e-12])
def test_float32_thresholds_round_up(t):
    t32 = _float32_at_least(np.array([t]))[0]
    assert float(t32) >= t
    assert float(np.nextafter(t32, np.float32(-np.inf))) < t


def test_sparse_y_model_predicts_a_dense_matrix_on_uint8_nhwc(multilabel_data, tmp):
    X, Y = multilabel_data
    X8 = uint8_rgb(X)
    clf = CNNClassifier(**FAST).fit(X8, sp.csr_matrix(Y))
    assert sp.issparse(clf.predict(X8[:2]))
    session = export(clf, tmp, "sparse.onnx")
    (graph_input,) = session.get_inputs()
    assert graph_input.type == "tensor(uint8)" and graph_input.shape[1:] == [8, 8, 3]
    assert_same_answers(session, clf, X8)


# float (n, H, W) and uint8 NHWC are tested above; an export costs 1-3 s, so
# the rarer forms run with -m slow.
@pytest.mark.parametrize(
    "form",
    [
        "float NCHW",
        pytest.param("flat rows", marks=pytest.mark.slow),
        pytest.param("uint16 resized", marks=pytest.mark.slow),
    ],
)
def test_input_forms(form, binary_data, tmp):
    X, y = binary_data
    params = dict(FAST, max_epochs=2)
    if form == "float NCHW":
        X = uint8_rgb(X).transpose(0, 3, 1, 2).astype(np.float64) / 255
    elif form == "flat rows":
        X = uint8_rgb(X).reshape(len(X), -1)
        params["image_shape"] = (8, 8, 3)
    else:  # the graph takes images at the fitted size
        X = (np.clip(X + 0.5, 0, 1) * 65535).astype(np.uint16)
        params["image_size"] = (6, 6)
    clf = CNNClassifier(**params).fit(X, y)
    if form == "uint16 resized":
        X = (np.random.RandomState(0).rand(40, 6, 6) * 65535).astype(np.uint16)
    session = export(clf, tmp, f"{form}.onnx")
    (graph_input,) = session.get_inputs()
    assert graph_input.shape[1:] == list(X.shape[1:])
    assert_same_answers(session, clf, X)
    # A model saved and loaded exports the same input (its layout included).
    sk_mlc.save(clf, tmp / f"{form}.safetensors")
    loaded = sk_mlc.load(tmp / f"{form}.safetensors")
    assert ServingInput.from_estimator(loaded) == ServingInput.from_estimator(clf)


@pytest.mark.parametrize("mode", ["RGB", pytest.param("L", marks=pytest.mark.slow)])
def test_model_fitted_on_files_takes_the_decoded_arrays(
    mode, binary_data, tmp, tmp_path
):
    # What the guide tells users: decode with ImageLoader at the fitted size
    # and mode, and feed its (n, H, W, C) uint8 array.
    X, y = binary_data
    paths = []
    for i, image in enumerate(uint8_rgb(X[:64])):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).convert(mode).save(paths[-1])
    clf = CNNClassifier(**dict(FAST, max_epochs=2), image_mode=mode).fit(paths, y[:64])
    session = export(clf, tmp, f"files_{mode}.onnx")
    decoded = ImageLoader(size=clf.input_shape_[1:], mode=mode).fit_transform(paths)
    assert session.get_inputs()[0].shape[1:] == list(decoded.shape[1:])
    for n in BATCHES:
        proba, label = session.run(None, {"images": decoded[:n]})
        assert np.abs(proba - clf.predict_proba(paths[:n])).max() <= 1e-5
        assert label.tolist() == clf.predict(paths[:n]).tolist()


def test_threshold_tuner_exports_its_tuned_thresholds(multilabel_data, tmp):
    X, Y = multilabel_data
    tuner = ThresholdTunerCV(
        CNNClassifier(**dict(FAST, max_epochs=4)), thresholds=[0.1, 0.3, 0.7], cv=2
    ).fit(X, Y)
    # Else the graph could decide with the classifier's own 0.5 and pass.
    assert (tuner.predict(X) != tuner.estimator_.predict(X)).any()
    assert_same_answers(export(tuner, tmp, "tuner.onnx"), tuner, X)


@pytest.mark.slow
def test_threshold_tuner_around_a_frozen_classifier(fitted_binary, binary_data, tmp):
    X, y = binary_data
    tuner = ThresholdTunerCV(
        FrozenEstimator(fitted_binary), cv=5, refit=False, thresholds=[0.05, 0.95]
    ).fit(X, y)
    assert_same_answers(export(tuner, tmp, "frozen.onnx"), tuner, X)


def test_what_cannot_be_exported_is_refused_by_name(fitted_binary, binary_data, tmp):
    X, y = binary_data
    with pytest.raises(TypeError, match="to_onnx exports a fitted CNNClassifier.*"):
        to_onnx(LogisticRegression(), tmp / "x.onnx")
    with pytest.raises(NotFittedError, match="to_onnx: this CNNClassifier is not"):
        to_onnx(CNNClassifier(), tmp / "x.onnx")
    flat = X.reshape(len(X), -1)
    tuner = ThresholdTunerCV(
        FrozenEstimator(LogisticRegression().fit(flat, y)), cv=2, refit=False
    ).fit(flat, y)
    with pytest.raises(ValueError, match="estimator_ is a LogisticRegression"):
        to_onnx(tuner, tmp / "x.onnx")
    with pytest.raises(TypeError, match="to_onnx: opset must be an int"):
        to_onnx(fitted_binary, tmp / "x.onnx", opset="18")
    assert not (tmp / "x.onnx").exists()


def test_test_time_flips_are_in_the_graph(fitted_multilabel, multilabel_data, tmp):
    # tta is a prediction-time setting: the graph must average over the
    # mirror images as predict_proba does, or it would answer otherwise.
    X, _ = multilabel_data
    flipped = copy.deepcopy(fitted_multilabel).set_params(tta="flip")
    plain = copy.deepcopy(fitted_multilabel).set_params(tta=None)
    assert np.abs(flipped.predict_proba(X) - plain.predict_proba(X)).max() > 1e-3
    assert_same_answers(export(flipped, tmp, "flip.onnx"), flipped, X)
    assert_same_answers(export(plain, tmp, "plain.onnx"), plain, X)


@pytest.mark.slow
def test_opset_is_the_graphs(fitted_multiclass, multiclass_data, tmp_path):
    X, _ = multiclass_data
    model = to_onnx(fitted_multiclass, tmp_path / "opset17.onnx", opset=17)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    session = onnxruntime.InferenceSession(
        str(tmp_path / "opset17.onnx"), providers=["CPUExecutionProvider"]
    )
    assert_same_answers(session, fitted_multiclass, X)


def test_a_graph_that_computes_otherwise_is_refused(
    fitted_binary, fitted_multilabel, sessions, tmp
):
    # What to_onnx runs before writing: the graph against predict_proba.
    sessions("fitted_binary", fitted_binary)
    model = onnx.load(tmp / "fitted_binary.onnx")
    inputs = ServingInput.from_estimator(fitted_binary)
    _check_against(model, fitted_binary, inputs, onnxruntime)  # its own: passes
    other = copy.deepcopy(fitted_binary)
    with torch.no_grad():
        other.net_.module_[-1].bias += 1.0
    with pytest.raises(ValueError, match="does not reproduce CNNClassifier"):
        _check_against(model, other, inputs, onnxruntime)
    with pytest.raises(ValueError, match=r"shapes \(3, 2\) and \(3, 4\)"):
        _check_against(model, fitted_multilabel, inputs, onnxruntime)


def test_missing_extra_names_the_install_command(fitted_binary, tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=re.escape('pip install "sk_mlc[onnx]"')):
        to_onnx(fitted_binary, tmp / "x.onnx")


def test_guide_onnx_example_prints_what_it_claims(tmp_path, monkeypatch):
    text = GUIDE.read_text()
    section = text[text.index("## Export to ONNX") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    expected, after_print = [], False
    for line in block.splitlines():
        if line.startswith("# ") and after_print:
            expected.append(line[2:])
        else:
            after_print = line.startswith("print(")
    assert expected  # the example shows its output
    monkeypatch.chdir(tmp_path)  # it writes its .onnx file in the working folder
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(GUIDE), "exec"), {})
    assert out.getvalue().splitlines() == expected
