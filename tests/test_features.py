"""``ImageFeatures``: a backbone's features as a scikit-learn transformer.

It builds its backbone as ``CNNClassifier`` does, so the features of a
backbone with given weights and statistics are the ones a classifier's head
reads; it takes every ``X`` the classifier takes; it works in pipelines,
searches and ``clone``; ``sk_mlc.save`` and ``to_onnx`` handle it.
scikit-learn's estimator checks run on it in ``test_common.py``.
"""

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

import sk_mlc
from sk_mlc import CNNClassifier, ImageFeatures

BACKBONE = {"width": 8, "depth": 2}


@pytest.fixture(scope="module")
def source(multilabel_data):
    X, Y = multilabel_data
    return CNNClassifier(**FAST).fit(X, Y)


@pytest.fixture(scope="module")
def state(source):
    return {k: v.clone() for k, v in source.net_.module_[1].state_dict().items()}


@pytest.fixture(scope="module")
def fitted(multilabel_data, state):
    X, _ = multilabel_data
    return ImageFeatures(**BACKBONE, weights=state).fit(X)


def test_features_are_what_the_classifiers_head_reads(source, multilabel_data):
    X, _ = multilabel_data
    features = ImageFeatures(**BACKBONE, weights=source).fit(X).transform(X[:10])
    module = source.net_.module_.eval()
    with torch.no_grad():
        expected = module.features()(torch.from_numpy(X[:10]).unsqueeze(1)).numpy()
    assert features.dtype == np.float32 and features.shape == expected.shape
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_normalize_auto_learns_the_statistics_of_fit(multilabel_data, state):
    X, _ = multilabel_data
    features = ImageFeatures(**BACKBONE, weights=state).fit(X)
    mean = features.module_[0].mean.flatten().item()
    assert mean == pytest.approx(float(X.mean()), rel=1e-4)
    given = ImageFeatures(**BACKBONE, weights=state, normalize=([0.5], [2.0])).fit(X)
    assert given.module_[0].std.flatten().item() == 2.0


def test_feature_names_and_shape(fitted, multilabel_data):
    X, _ = multilabel_data
    names = fitted.get_feature_names_out()
    assert len(names) == fitted.transform(X[:2]).shape[1] == 64 * 4
    assert (
        names[0] == "imagefeatures0" and names[-1] == f"imagefeatures{len(names) - 1}"
    )


def test_every_input_the_classifier_takes(fitted, multilabel_data, tmp_path):
    X, _ = multilabel_data
    expected = fitted.transform(X[:4])
    np.testing.assert_array_equal(fitted.transform(torch.from_numpy(X[:4])), expected)
    # Image files, as paths, a pandas Series of paths, and PIL images.
    pixels = (np.clip(X[:4], 0, 1) * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    on_files = ImageFeatures(**BACKBONE, image_mode="L").fit(paths)
    from_paths = on_files.transform(paths)
    assert from_paths.shape == (4, 64 * 4)
    np.testing.assert_array_equal(on_files.transform(pd.Series(paths)), from_paths)
    images = [Image.open(path) for path in paths]
    np.testing.assert_allclose(on_files.transform(images), from_paths, atol=1e-6)
    np.testing.assert_allclose(on_files.transform(pixels), from_paths, atol=1e-5)


def test_pooling_of_feature_maps(multilabel_data):
    X, _ = multilabel_data

    class Maps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(x)

    torch.manual_seed(0)
    backbone = Maps()
    avg = ImageFeatures(backbone, normalize=([0.0], [1.0])).fit(X)
    top = ImageFeatures(backbone, normalize=([0.0], [1.0]), pooling="max").fit(X)
    with torch.no_grad():
        maps = backbone(torch.from_numpy(X[:5]).unsqueeze(1))
    np.testing.assert_allclose(avg.transform(X[:5]), maps.mean((2, 3)), atol=1e-5)
    np.testing.assert_allclose(top.transform(X[:5]), maps.amax((2, 3)), atol=1e-5)


def test_pipelines_searches_and_clone(multilabel_data, state):
    X, Y = multilabel_data
    y = Y[:, 0]
    model = make_pipeline(
        ImageFeatures(**BACKBONE, weights=state), LogisticRegression(max_iter=1000)
    )
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.mean() > 0.9  # the backbone learned the quadrants
    search = GridSearchCV(
        model, {"logisticregression__C": [0.1, 1.0]}, cv=2, error_score="raise"
    ).fit(X, y)
    assert search.best_score_ > 0.9
    clone(model)  # the weights parameter survives clone as it is
    # The transformer is stateless besides the statistics: a pipeline refit
    # on the same data gives the same features.
    features = clone(model).fit(X, y)[0].transform(X[:3])
    np.testing.assert_array_equal(features, model.fit(X, y)[0].transform(X[:3]))


def test_save_and_load(fitted, multilabel_data, tmp_path):
    X, _ = multilabel_data
    path = tmp_path / "features.safetensors"
    sk_mlc.save(fitted, path)
    loaded = sk_mlc.load(path)
    assert type(loaded) is ImageFeatures
    np.testing.assert_array_equal(loaded.transform(X[:5]), fitted.transform(X[:5]))
    np.testing.assert_array_equal(
        loaded.get_feature_names_out(), fitted.get_feature_names_out()
    )


def test_save_and_load_a_users_backbone(multilabel_data, tmp_path):
    X, _ = multilabel_data
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    fitted = ImageFeatures(backbone, random_state=0).fit(X)
    path = tmp_path / "features.safetensors"
    with pytest.warns(UserWarning, match="recorded by name only"):
        sk_mlc.save(fitted, path)
    with pytest.raises(sk_mlc.exceptions.MissingParameterError, match="module"):
        sk_mlc.load(path)
    loaded = sk_mlc.load(path, module=backbone)
    np.testing.assert_array_equal(loaded.transform(X[:5]), fitted.transform(X[:5]))


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript")),
    reason='the onnx extra is missing: pip install "sk_mlc[onnx]"',
)
def test_onnx_export_computes_transform(multilabel_data, state, tmp_path):
    import onnxruntime

    X, _ = multilabel_data
    X8 = (np.clip(X, 0, 1) * 255).astype(np.uint8)
    fitted = ImageFeatures(**BACKBONE, weights=state).fit(X8)
    path = tmp_path / "features.onnx"
    sk_mlc.to_onnx(fitted, path)
    session = onnxruntime.InferenceSession(str(path))
    assert [output.name for output in session.get_outputs()] == ["features"]
    (got,) = session.run(None, {"images": X8[:7]})
    np.testing.assert_allclose(got, fitted.transform(X8[:7]), rtol=1e-4, atol=1e-4)


def test_errors_name_the_estimator(fitted, multilabel_data):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match="pooling.*ImageFeatures"):
        ImageFeatures(pooling="mean").fit(X)
    with pytest.raises(ValueError, match="ImageFeatures"):
        fitted.transform(X[:, :4, :4])
    with pytest.raises(ValueError, match="ImageFeatures"):
        ImageFeatures(weights={"nothing": torch.zeros(1)}, **BACKBONE).fit(X)
