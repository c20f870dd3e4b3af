"""ThresholdDisplay: the curves, the chosen thresholds and their spread, drawn."""

import sys

import matplotlib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from sk_mlc import ThresholdDisplay, ThresholdTunerCV

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def scores_and_labels(n=300, seed=0):
    """Three labels whose best thresholds differ: label j is scored at 1/(j+1)."""
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n, 3) < 0.4).astype(int)
    P = np.clip(0.3 + 0.4 * Y + rng.normal(scale=0.15, size=Y.shape), 0, 1)
    return P / [1, 2, 3], Y


class ProbaFromX(ClassifierMixin, BaseEstimator):
    """The out-of-fold probabilities are X itself (see test_threshold_tuner)."""

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.arange(np.shape(y)[1])
        return self

    def predict_proba(self, X):
        return np.asarray(X)


@pytest.fixture(scope="module")
def tuner():
    P, Y = scores_and_labels()
    # 0.05, 0.10, ..., 0.95: a grid on which one label's choice never moves.
    grid = np.linspace(0, 1, 21)[1:-1]
    tuner = ThresholdTunerCV(ProbaFromX(), cv=3, per_label=True, thresholds=grid)
    return tuner.fit(P, Y)


def test_from_estimator_draws_each_label_at_its_chosen_threshold(tuner):
    display = ThresholdDisplay.from_estimator(tuner, label_names=["a", "b", "c"])
    assert display.figure_ is display.ax_.figure
    assert len(display.lines_) == 3 and len(display.markers_) == 3
    for j, (line, marker) in enumerate(
        zip(display.lines_, display.markers_, strict=True)
    ):
        np.testing.assert_array_equal(line.get_xdata(), tuner.thresholds_)
        np.testing.assert_array_equal(line.get_ydata(), tuner.scores_[:, j])
        x, y = marker.lines[0].get_data()
        assert x[0] == tuner.best_thresholds_[j]
        assert y[0] == tuner.best_label_scores_[j]
    np.testing.assert_array_equal(
        display.overall_line_.get_ydata(), tuner.scores_global_
    )
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend == ["a", "b", "c", "all labels (macro)"]


def test_fold_spread_is_a_bar_of_plus_minus_one_std(tuner):
    display = ThresholdDisplay.from_estimator(tuner)
    assert (tuner.threshold_std_ > 0).sum() == 2  # and one of 0: a bar of no width
    for j, marker in enumerate(display.markers_):
        std = tuner.threshold_std_[j]
        (bars,) = marker.lines[2]  # the horizontal error bar's segments
        (segment,) = bars.get_segments()
        chosen = tuner.best_thresholds_[j]
        np.testing.assert_allclose(segment[:, 0], [chosen - std, chosen + std])


def test_draws_on_the_given_axes_and_only_the_chosen_labels(tuner):
    fig, ax = plt.subplots()
    display = ThresholdDisplay.from_estimator(tuner, labels=[2], ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert len(display.lines_) == 1
    np.testing.assert_array_equal(display.lines_[0].get_ydata(), tuner.scores_[:, 2])


def test_from_predictions_scores_every_candidate_like_sklearn():
    P, Y = scores_and_labels(120)
    display = ThresholdDisplay.from_predictions(Y, P, thresholds=7)
    grid = np.linspace(P.min(), P.max(), 7)  # from the lowest to the highest
    for j, line in enumerate(display.lines_):
        expected = [f1_score(Y[:, j], P[:, j] >= t, zero_division=0) for t in grid]
        np.testing.assert_allclose(line.get_ydata(), expected)
        assert display.best_thresholds[j] == grid[np.argmax(expected)]
    # One label: a (n, 2) predict_proba is read by its positive column.
    one = ThresholdDisplay.from_predictions(
        Y[:, 0], np.column_stack([1 - P[:, 0], P[:, 0]])
    )
    assert len(one.lines_) == 1 and one.overall_line_ is None


def test_from_predictions_says_what_shapes_it_expected():
    with pytest.raises(ValueError, match=r"y_proba of shape \(4, 2\)"):
        ThresholdDisplay.from_predictions(np.ones((4, 2)), np.ones((4, 3)))


def test_from_estimator_needs_a_fitted_tuner():
    with pytest.raises(NotFittedError):
        ThresholdDisplay.from_estimator(ThresholdTunerCV(LogisticRegression()))
    with pytest.raises(TypeError, match="expects a fitted ThresholdTunerCV"):
        ThresholdDisplay.from_estimator(LogisticRegression())


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch, tuner):
    for module in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'sk_mlc\[plot\]'"):
        ThresholdDisplay.from_estimator(tuner)
