"""Bad input gets a ValueError / TypeError that says what was expected."""

import numpy as np
import pytest
from conftest import FAST
from sklearn.exceptions import NotFittedError

from sk_mlc import CNNClassifier

ONE_EPOCH = {**FAST, "max_epochs": 1}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_in_X(multilabel_data, bad):
    X, Y = multilabel_data
    X = X.copy()
    X[3, 2, 1] = bad
    with pytest.raises(ValueError, match="Input X contains"):
        CNNClassifier(**ONE_EPOCH).fit(X, Y)


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        CNNClassifier(**ONE_EPOCH).fit(np.zeros((0, 8, 8)), np.zeros(0))
    with pytest.raises(ValueError, match="0 feature"):
        CNNClassifier(**ONE_EPOCH).fit(np.zeros((5, 0)), np.arange(5) % 2)


def test_mismatched_lengths(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNClassifier(**ONE_EPOCH).fit(X[:10], Y[:9])


def test_non_binary_2d_y(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="multi-hot indicator matrix of 0/1 values"):
        CNNClassifier(**ONE_EPOCH).fit(X, Y * 2 + Y[:, ::-1])


def test_continuous_y(multilabel_data):
    X, _ = multilabel_data
    y = np.linspace(0, 1, len(X))
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        CNNClassifier(**ONE_EPOCH).fit(X, y)


def test_single_class_and_too_few_samples(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="only one class"):
        CNNClassifier(**ONE_EPOCH).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="at least 2 training samples"):
        CNNClassifier(**ONE_EPOCH).fit(X[:1], Y[:1])


def test_wrong_image_shape_or_channels_at_predict(fitted_multilabel, multilabel_data):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match=r"\(C, H, W\) = \(1, 7, 7\).*\(1, 8, 8\)"):
        fitted_multilabel.predict(X[:, :7, :7])
    rgb = np.repeat(X[..., None], 3, axis=3)
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        fitted_multilabel.predict(rgb)
    with pytest.raises(ValueError, match="features"):
        fitted_multilabel.predict(X.reshape(len(X), -1)[:, :10])


def test_image_shape_mismatch(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="image_shape must be"):
        CNNClassifier(image_shape=(7, 7), **ONE_EPOCH).fit(X.reshape(len(X), -1), Y)


def test_too_many_dimensions(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match=r"expects images as \(n, H, W\)"):
        CNNClassifier(**ONE_EPOCH).fit(X[:, None, None], Y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"layout": "HWC"}, "layout"),
        ({"augment": "rotate"}, "augment"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"class_weight": "auto"}, "class_weight"),
    ],
)
def test_bad_parameters(multilabel_data, params, match):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match=match):
        CNNClassifier(**{**ONE_EPOCH, **params}).fit(X, Y)


def test_bad_class_weight_labels(binary_data):
    X, y = binary_data
    with pytest.raises(ValueError, match="not in y's classes"):
        CNNClassifier(class_weight={"cat": 2.0}, **ONE_EPOCH).fit(X, y)


def test_predict_before_fit(multilabel_data):
    X, _ = multilabel_data
    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(CNNClassifier(), method)(X)
    with pytest.raises(NotFittedError):
        _ = CNNClassifier().criterion_


def test_y_none(multilabel_data):
    X, _ = multilabel_data
    with pytest.raises(ValueError, match="requires y to be passed"):
        CNNClassifier(**ONE_EPOCH).fit(X, None)


def test_sparse_X_is_refused(multilabel_data):
    import scipy.sparse as sp

    X, Y = multilabel_data
    with pytest.raises(TypeError, match="dense data is required"):
        CNNClassifier(**ONE_EPOCH).fit(sp.csr_matrix(X.reshape(len(X), -1)), Y)
