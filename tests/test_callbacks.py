"""scikit-learn's callbacks (``sklearn.callback``): epochs and folds as fit tasks.

A ``CNNClassifier`` fit is a task whose subtasks are its epochs; a
``ThresholdTunerCV`` fit is a task whose subtasks are its CV splits' fits and
the refit, into which the estimator's own tasks nest; inside ``GridSearchCV``
both nest under its candidate-and-split tasks. Tested with a callback that
records what it is told, and with scikit-learn's ``ProgressBar``.
"""

import numpy as np
import pytest
from conftest import FAST, quadrant_images
from sklearn.model_selection import GridSearchCV

from sk_mlc import CNNClassifier, ThresholdTunerCV
from sk_mlc._compat import NO_CALLBACKS

callback = pytest.importorskip(
    "sklearn.callback", reason="scikit-learn < 1.9 has no callbacks API"
)

SMALL = {**FAST, "max_epochs": 3, "batch_size": 16}


class Recorder:
    """Records every hook call: (hook, estimator name, task name, task id)."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.sources = []
        self.predictions = []
        self.stop_after = stop_after

    def setup(self, estimator, context):
        self.calls.append(("setup", type(estimator).__name__, context.task_name))

    def on_fit_task_begin(self, estimator, context):
        self.calls.append(("begin", context.estimator_name, context.task_name))
        # A sub-estimator's fit and the meta-estimator's task that runs it are
        # one task: the meta-estimator's name and task name are its source.
        if context.source_task_name is not None:
            self.sources.append(
                (context.source_estimator_name, context.source_task_name)
            )

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("end", context.estimator_name, context.task_name))
        if context.task_name == "epoch" and fitted_estimator is not None:
            self.predictions.append(fitted_estimator.predict(self.X))
        return self.stop_after is not None and context.task_id + 1 >= self.stop_after

    def teardown(self, estimator, context):
        self.calls.append(("teardown", type(estimator).__name__, context.task_name))

    def count(self, hook, estimator_name, task_name):
        return self.calls.count((hook, estimator_name, task_name))


class PropagatedRecorder(Recorder):
    """The same, auto-propagated from a meta-estimator to its sub-estimators."""

    max_propagation_depth = None


@pytest.fixture(scope="module")
def data():
    return quadrant_images(n_samples=64)


def test_each_epoch_is_a_task_of_the_fit(data):
    X, Y = data
    recorder = Recorder()
    recorder.X = X[:5]
    clf = CNNClassifier(**SMALL).set_callbacks(recorder).fit(X, Y)
    assert recorder.calls[:2] == [
        ("setup", "CNNClassifier", "fit"),
        ("begin", "CNNClassifier", "fit"),
    ]
    assert recorder.calls[-2:] == [
        ("end", "CNNClassifier", "fit"),
        ("teardown", "CNNClassifier", "fit"),
    ]
    assert recorder.count("begin", "CNNClassifier", "epoch") == 3
    assert recorder.count("end", "CNNClassifier", "epoch") == 3
    # At each epoch's end, a fitted estimator predicts with the network so far;
    # the last is the fitted model's answer.
    assert len(recorder.predictions) == 3
    np.testing.assert_array_equal(recorder.predictions[-1], clf.predict(X[:5]))
    # Nothing of the callbacks stays in the fitted model: it pickles.
    import pickle

    assert pickle.loads(pickle.dumps(clf)).n_iter_ == 3


def test_a_callback_that_asks_to_stop_ends_training_after_that_epoch(data):
    X, Y = data
    recorder = Recorder(stop_after=2)
    recorder.X = X[:5]
    clf = CNNClassifier(**{**SMALL, "max_epochs": 6}).set_callbacks(recorder)
    clf.fit(X, Y)
    assert clf.n_iter_ == 2
    assert recorder.count("end", "CNNClassifier", "epoch") == 2
    assert recorder.calls[-1] == ("teardown", "CNNClassifier", "fit")


def test_the_tuners_folds_and_refit_nest_the_classifiers_epochs(data):
    X, Y = data
    recorder = PropagatedRecorder()
    recorder.X = X[:5]
    tuner = ThresholdTunerCV(CNNClassifier(**SMALL), cv=2).set_callbacks(recorder)
    tuner.fit(X, Y)
    assert recorder.sources == [("ThresholdTunerCV", "fold")] * 2 + [
        ("ThresholdTunerCV", "refit")
    ]
    # Two folds and the refit, three epochs each.
    assert recorder.count("end", "CNNClassifier", "epoch") == 9
    assert recorder.calls[0] == ("setup", "ThresholdTunerCV", "fit")
    assert recorder.calls[-1] == ("teardown", "ThresholdTunerCV", "fit")


def test_grid_search_sees_every_fit_and_its_epochs(data):
    X, Y = data
    recorder = PropagatedRecorder()
    recorder.X = X[:5]
    search = GridSearchCV(
        CNNClassifier(**SMALL), {"threshold": [0.3, 0.6]}, cv=2, scoring="f1_micro"
    ).set_callbacks(recorder)
    search.fit(X, Y)
    # 2 candidates x 2 splits, and the refit: 5 fits of 3 epochs.
    assert recorder.count("end", "CNNClassifier", "epoch") == 15
    assert recorder.count("end", "CNNClassifier", "fit") == 5
    assert {estimator for estimator, _ in recorder.sources} == {"GridSearchCV"}


def test_a_fit_served_by_memory_runs_no_epochs(data, tmp_path):
    X, Y = data
    params = {**SMALL, "memory": str(tmp_path)}
    CNNClassifier(**params).fit(X, Y)
    recorder = Recorder()
    recorder.X = X[:5]
    CNNClassifier(**params).set_callbacks(recorder).fit(X, Y)
    assert recorder.count("end", "CNNClassifier", "epoch") == 0
    assert recorder.count("end", "CNNClassifier", "fit") == 1


def test_progress_bars_over_folds_and_epochs(data, capsys):
    pytest.importorskip("rich", reason="scikit-learn's ProgressBar needs rich")
    X, Y = data
    tuner = ThresholdTunerCV(CNNClassifier(**SMALL), cv=2)
    tuner.set_callbacks(callback.ProgressBar(max_propagation_depth=None)).fit(X, Y)
    out = capsys.readouterr().out
    assert "ThresholdTunerCV" in out and "CNNClassifier" in out
    assert hasattr(tuner, "best_thresholds_")


def test_without_a_callbacks_api_fit_reports_to_no_one(data, monkeypatch):
    # What scikit-learn < 1.9 gets (_compat's shim): the same fit, no reports.
    X, Y = data
    expected = CNNClassifier(**SMALL).fit(X, Y).predict_proba(X)
    monkeypatch.setattr(
        CNNClassifier, "_init_callback_context", lambda self, **kw: NO_CALLBACKS
    )
    monkeypatch.setattr(
        ThresholdTunerCV, "_init_callback_context", lambda self, **kw: NO_CALLBACKS
    )
    np.testing.assert_array_equal(
        CNNClassifier(**SMALL).fit(X, Y).predict_proba(X), expected
    )
    ThresholdTunerCV(CNNClassifier(**SMALL), cv=2).fit(X, Y)
