"""CNNClassifier inside scikit-learn's tools: pipelines, searches, scorers."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import FAST
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import f1_score, get_scorer, make_scorer
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    TunedThresholdClassifierCV,
    cross_val_predict,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sk_mlc import CNNClassifier


@pytest.mark.parametrize("scaler", [StandardScaler(), MinMaxScaler()])
def test_pipeline_with_scaler_and_image_shape(scaler, multilabel_data):
    X, Y = multilabel_data
    flat = X.reshape(len(X), -1)
    pipe = make_pipeline(scaler, CNNClassifier(image_shape=(8, 8), **FAST)).fit(flat, Y)
    clf = pipe[-1]
    assert clf.input_shape_ == (1, 8, 8)
    assert pipe.predict_proba(flat).shape == Y.shape
    assert pipe.score(flat, Y) > 0.6  # subset accuracy


def test_grid_search_over_threshold_and_lr(multilabel_data):
    X, Y = multilabel_data
    search = GridSearchCV(
        CNNClassifier(**FAST),
        # ASL, the multi-label default, favours recall: its best thresholds
        # lie above 0.5.
        {"threshold": [0.5, 0.7], "lr": [1e-3, 3e-3]},
        scoring="f1_micro",
        cv=2,
    ).fit(X, Y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["threshold"] in (0.5, 0.7)
    assert search.best_estimator_.threshold == search.best_params_["threshold"]
    assert search.best_score_ > 0.8


def test_cross_val_predict_proba_multilabel(multilabel_data):
    X, Y = multilabel_data
    proba = cross_val_predict(
        CNNClassifier(**FAST), X, Y, cv=KFold(3), method="predict_proba"
    )
    assert proba.shape == Y.shape
    assert np.all((proba >= 0) & (proba <= 1))


@pytest.mark.parametrize(
    "scoring, minimum",
    [("roc_auc", 0.9), ("average_precision", 0.9), ("f1_samples", 0.8)],
)
def test_multilabel_scorers(fitted_multilabel, multilabel_data, scoring, minimum):
    X, Y = multilabel_data
    assert get_scorer(scoring)(fitted_multilabel, X, Y) > minimum


def test_sparse_y_through_grid_search(multilabel_data):
    X, Y = multilabel_data
    search = GridSearchCV(
        CNNClassifier(**FAST),
        {"threshold": [0.4, 0.6]},
        scoring=make_scorer(f1_score, average="samples", zero_division=0),
        cv=2,
    ).fit(X, sp.csr_matrix(Y))
    assert sp.issparse(search.predict(X))


def test_tuned_threshold_classifier_cv_on_binary(binary_data):
    X, y = binary_data
    tuned = TunedThresholdClassifierCV(
        CNNClassifier(**FAST), scoring="balanced_accuracy", cv=2, thresholds=5
    ).fit(X, y)
    assert 0 <= tuned.best_threshold_ <= 1
    assert set(tuned.predict(X)) <= {"blob", "empty"}
    assert tuned.best_score_ > 0.8


def test_calibrated_classifier_cv_on_multiclass(multiclass_data):
    X, y = multiclass_data
    calibrated = CalibratedClassifierCV(CNNClassifier(**FAST), cv=2).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)


def test_clone_is_unfitted_with_same_params(fitted_multilabel):
    copy = clone(fitted_multilabel)
    assert copy.get_params() == fitted_multilabel.get_params()
    assert not hasattr(copy, "net_")


def test_threshold_tuner_with_cnn_classifier(multilabel_data):
    from sk_mlc import ThresholdTunerCV

    X, Y = multilabel_data
    tuner = ThresholdTunerCV(CNNClassifier(**FAST), thresholds=9, cv=2).fit(X, Y)
    assert tuner.best_thresholds_.shape == (4,)
    assert np.isin(tuner.best_thresholds_, tuner.thresholds_).all()
    # The tuned thresholds are CNNClassifier's own threshold parameter.
    clf = tuner.estimator_
    clf.set_params(threshold=tuner.best_thresholds_)
    np.testing.assert_array_equal(tuner.predict(X), clf.predict(X))
    assert tuner.best_score_ > 0.8
