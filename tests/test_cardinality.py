"""min_labels and max_labels: how many labels a multi-label row gets."""

import numpy as np
import pytest
from _counting import TrainCounter, trainings
from conftest import FAST
from sklearn.model_selection import GridSearchCV

import sk_mlc
from sk_mlc import CNNClassifier, ThresholdTunerCV
from sk_mlc.model_selection import IterativeStratifiedKFold
from sk_mlc.targets import apply_cardinality


def test_the_rule_by_hand():
    P = np.array(
        [
            [0.10, 0.30, 0.20, 0.05],  # none above 0.5: switch on 0.30, then 0.20
            [0.90, 0.80, 0.70, 0.60],  # all above: keep the top 3
            [0.40, 0.40, 0.90, 0.10],  # a tie at 0.40: the lower index first
        ]
    )
    decided = apply_cardinality(P, P >= 0.5, min_labels=2, max_labels=3)
    np.testing.assert_array_equal(
        decided,
        [
            [False, True, True, False],
            [True, True, True, False],
            [True, False, True, False],
        ],
    )
    # Per-label thresholds: a row's labels above their own thresholds stay on;
    # the switched-on ones are the most probable of the rest.
    thresholds = np.array([0.05, 0.9, 0.9, 0.9])
    decided = apply_cardinality(P, P >= thresholds, min_labels=2)
    assert decided[0].tolist() == [True, True, False, False]


@pytest.fixture(scope="module")
def fitted(multilabel_data):
    X, Y = multilabel_data
    return CNNClassifier(**FAST).fit(X, Y)


def test_predict_applies_the_rule_after_the_thresholds(fitted, multilabel_data):
    X, _ = multilabel_data
    proba = fitted.predict_proba(X)
    plain = fitted.predict(X)
    fitted.set_params(min_labels=1, max_labels=2)
    try:
        bounded = fitted.predict(X)
    finally:
        fitted.set_params(min_labels=0, max_labels=None)
    counts = bounded.sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 2
    expected = apply_cardinality(proba, plain.astype(bool), 1, 2)
    np.testing.assert_array_equal(bounded, expected.astype(plain.dtype))
    assert (plain.sum(axis=1) == 0).any()  # so min_labels had work to do


@pytest.mark.parametrize(
    "params, match",
    [
        ({"min_labels": 3, "max_labels": 2}, "min_labels=3 is more than max_labels=2"),
        ({"min_labels": 5}, "must not exceed the target's 4 labels"),
        ({"max_labels": 9}, "must not exceed the target's 4 labels"),
    ],
)
def test_meaningless_bounds_are_errors(multilabel_data, params, match):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match=f"CNNClassifier: .*{match}"):
        CNNClassifier(**{**FAST, "max_epochs": 1}, **params).fit(X, Y)


def test_a_multiclass_or_binary_target_refuses_the_bounds(multiclass_data, binary_data):
    for X, y in (multiclass_data, binary_data):
        with pytest.raises(ValueError, match="decide how many labels a row of"):
            CNNClassifier(**{**FAST, "max_epochs": 1}, min_labels=1).fit(X, y)


def test_grid_search_tunes_them_without_retraining(multilabel_data, tmp_path):
    X, Y = multilabel_data
    log = str(tmp_path / "trainings.log")
    clf = CNNClassifier(
        **{**FAST, "max_epochs": 2},
        memory=str(tmp_path / "cache"),
        callbacks=[TrainCounter(log)],
    )
    search = GridSearchCV(
        clf,
        {"min_labels": [0, 1], "max_labels": [None, 2]},
        cv=IterativeStratifiedKFold(2),
        scoring="f1_micro",
    ).fit(X, Y)
    assert trainings(log) == 2 + 1  # one per fold, and the refit
    assert search.best_params_["min_labels"] in (0, 1)


def test_the_tuner_scores_candidates_with_the_rule(multilabel_data):
    X, Y = multilabel_data
    tuner = ThresholdTunerCV(
        CNNClassifier(**{**FAST, "max_epochs": 3}), cv=0.3, refit=False, min_labels=1
    ).fit(X, Y)
    counts = tuner.predict(X).sum(axis=1)
    assert counts.min() >= 1
    # Every candidate's score is that of the decisions with the rule applied.
    loose = ThresholdTunerCV(
        CNNClassifier(**{**FAST, "max_epochs": 3}), cv=0.3, refit=False
    ).fit(X, Y)
    assert not np.allclose(tuner.scores_global_, loose.scores_global_)


def test_saved_models_and_onnx_keep_the_rule(fitted, multilabel_data, tmp_path):
    X, _ = multilabel_data
    fitted.set_params(min_labels=1, max_labels=2, threshold=[0.3, 0.5, 0.6, 0.9])
    try:
        path = tmp_path / "bounded.safetensors"
        sk_mlc.save(fitted, path)
        loaded = sk_mlc.load(path)
        assert (loaded.min_labels, loaded.max_labels) == (1, 2)
        np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
        onnxruntime = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
        sk_mlc.to_onnx(fitted, tmp_path / "bounded.onnx")
        session = onnxruntime.InferenceSession(str(tmp_path / "bounded.onnx"))
        _, label = session.run(None, {"images": X})
        np.testing.assert_array_equal(label, fitted.predict(X))
    finally:
        fitted.set_params(min_labels=0, max_labels=None, threshold=0.5)
