"""No silent wrong answers, no torch tracebacks, skorch callbacks that work.

Each test pins one finding of the adversarial review (issue 15).
"""

import threading

import numpy as np
import pytest
import torch
from _counting import TrainCounter, trainings
from conftest import FAST
from skorch.callbacks import Callback, Checkpoint, EpochScoring, LRScheduler

from sk_mlc import CNNClassifier

ONE_EPOCH = {**FAST, "max_epochs": 1}


# -- Ctrl-C -------------------------------------------------------------------


class InterruptOnce(Callback):
    """Raises KeyboardInterrupt in the second epoch, once per ``flag`` file."""

    def __init__(self, flag):
        self.flag = flag

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2 and not self.flag.exists():
            self.flag.write_text("interrupted")
            raise KeyboardInterrupt


def test_ctrl_c_leaves_fit_and_caches_nothing(multilabel_data, tmp_path):
    X, Y = multilabel_data
    log = str(tmp_path / "log")
    callbacks = [InterruptOnce(tmp_path / "flag"), TrainCounter(log)]
    clf = CNNClassifier(memory=str(tmp_path / "cache"), callbacks=callbacks, **FAST)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 2 epoch"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")
    # The same fit again: it must train, not load a half-trained network.
    clf.fit(X, Y)
    assert trainings(log) == 2
    assert clf.n_iter_ == FAST["max_epochs"]


# -- predict-time inputs --------------------------------------------------------


def test_flat_rows_of_fitted_images_get_a_clear_error(fitted_multilabel):
    # 64 values per row, as 8x8 images have, but not laid out as images.
    X = np.random.RandomState(0).rand(5, 64).astype(np.float32)
    with pytest.raises(ValueError, match=r"\(1, 1, 64\).*fitted on.*\(1, 8, 8\)"):
        fitted_multilabel.predict(X)


def test_flat_rows_after_multichannel_one_pixel_images(multilabel_data):
    _, Y = multilabel_data
    pixels = np.random.RandomState(0).rand(len(Y), 1, 1, 3).astype(np.float32)
    clf = CNNClassifier(**ONE_EPOCH).fit(pixels, Y)  # 1x1 images of 3 channels
    assert clf.input_shape_ == (3, 1, 1)
    # The same values as rows are one-channel 1x3 images: refused, not broadcast.
    with pytest.raises(ValueError, match=r"\(1, 1, 3\)"):
        clf.predict(pixels.reshape(len(pixels), 3))


def test_pixels_of_another_dtype_at_predict_are_refused(multilabel_data):
    X, Y = multilabel_data
    pixels = (X.clip(0, 1) * 255).astype(np.uint8)
    clf = CNNClassifier(**ONE_EPOCH).fit(pixels, Y)
    for other in (pixels.astype(np.float64), pixels.astype(np.uint16)):
        with pytest.raises(ValueError, match=r"fitted on uint8 pixels.*/ 255"):
            clf.predict(other)
    # Same scaling rule: fine.
    floats = CNNClassifier(**ONE_EPOCH).fit(X, Y)
    np.testing.assert_allclose(
        floats.predict_proba(X.astype(np.float64)), floats.predict_proba(X), atol=1e-6
    )


def test_torch_tensors_are_accepted_as_arrays(fitted_multilabel, multilabel_data):
    X, _ = multilabel_data
    np.testing.assert_array_equal(
        fitted_multilabel.predict_proba(torch.from_numpy(X)),
        fitted_multilabel.predict_proba(X),
    )


def test_a_pandas_series_of_paths_is_image_files(tmp_path):
    pd = pytest.importorskip("pandas")
    from PIL import Image

    rng = np.random.RandomState(0)
    paths = []
    for i in range(16):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray((rng.rand(6, 6) * 255).astype(np.uint8)).save(paths[-1])
    y = np.arange(16) % 2
    clf = CNNClassifier(**ONE_EPOCH).fit(pd.Series(paths), y)
    assert clf.input_shape_ == (3, 6, 6)
    np.testing.assert_array_equal(
        clf.predict_proba(pd.Series(paths)), clf.predict_proba(paths)
    )


def test_ragged_images_get_an_error_about_images():
    X = [np.zeros((8, 8)), np.zeros((6, 6))] * 4
    with pytest.raises(ValueError, match="CNNClassifier expects images of one shape"):
        CNNClassifier(**ONE_EPOCH).fit(X, np.arange(8) % 2)


def test_negative_image_shape_is_our_error(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="CNNClassifier: image_shape must be"):
        CNNClassifier(image_shape=(-8, -8), **ONE_EPOCH).fit(X.reshape(len(X), -1), Y)


def test_batch_size_one_explains_itself(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="CNNClassifier: batch_size=1 cannot train"):
        CNNClassifier(**{**ONE_EPOCH, "batch_size": 1}).fit(X, Y)


# -- skorch callbacks ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data, scoring",
    [
        ("multilabel_data", "f1_micro"),
        ("binary_data", "accuracy"),
        ("multiclass_data", "accuracy"),
    ],
)
def test_epoch_scoring_by_scorer_name(data, scoring, request):
    X, y = request.getfixturevalue(data)
    score = EpochScoring(scoring, lower_is_better=False, on_train=True, name="score")
    clf = CNNClassifier(callbacks=[score], **FAST).fit(X, y)
    scores = clf.net_.history[:, "score"]
    assert len(scores) == FAST["max_epochs"]
    assert 0.0 <= min(scores) and max(scores) <= 1.0
    assert scores[-1] > 0.7  # the data is easy: the score measures decisions


def test_validation_split_without_early_stopping(multilabel_data, tmp_path):
    X, Y = multilabel_data
    checkpoint = Checkpoint(dirname=str(tmp_path / "ckpt"), monitor="valid_loss_best")
    clf = CNNClassifier(validation_fraction=0.25, callbacks=[checkpoint], **FAST).fit(
        X, Y
    )
    assert clf.n_iter_ == FAST["max_epochs"]  # no early stopping
    assert all("valid_loss" in row for row in clf.net_.history)
    assert (tmp_path / "ckpt" / "params.pt").exists()


class Locked(Callback):
    """Holds a lock, which cannot be deep-copied (as TensorBoard's writer)."""

    def __init__(self, lock):
        self.lock = lock

    def on_epoch_end(self, net, **kwargs):
        with self.lock:
            pass


def test_callbacks_that_cannot_be_deep_copied_still_run(multilabel_data):
    X, Y = multilabel_data
    lock = threading.Lock()
    clf = CNNClassifier(callbacks=[("locked", Locked(lock))], **ONE_EPOCH).fit(X, Y)
    assert dict(clf.net_.callbacks_)["locked"].lock is lock


def test_a_user_lr_scheduler_does_not_stack_with_one_cycle(multilabel_data):
    X, Y = multilabel_data
    step = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1)
    with pytest.raises(ValueError, match="lr_schedule='constant'"):
        CNNClassifier(callbacks=[step], **ONE_EPOCH).fit(X, Y)
    clf = CNNClassifier(callbacks=[step], lr_schedule="constant", **ONE_EPOCH)
    clf.fit(X, Y)


# -- progress ---------------------------------------------------------------------


def test_progress_shows_at_verbose_1_only(multilabel_data, capsys):
    X, Y = multilabel_data
    CNNClassifier(**ONE_EPOCH).fit(X, Y)
    quiet = capsys.readouterr()
    assert quiet.out == quiet.err == ""
    CNNClassifier(verbose=1, **ONE_EPOCH).fit(X, Y)
    shown = capsys.readouterr()
    assert "train_loss" in shown.out  # skorch's epoch table
    assert "it/s" in shown.err or "%" in shown.err  # tqdm's bar


def test_threshold_tuner_reports_progress_over_folds(capsys):
    from sklearn.datasets import make_multilabel_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from sk_mlc import ThresholdTunerCV

    X, Y = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    estimator = OneVsRestClassifier(LogisticRegression())
    ThresholdTunerCV(estimator, cv=3).fit(X, Y)
    quiet = capsys.readouterr()
    assert quiet.out == quiet.err == ""
    ThresholdTunerCV(estimator, cv=3, verbose=10).fit(X, Y)
    shown = capsys.readouterr()
    assert "Done" in shown.out + shown.err  # joblib's progress lines


@pytest.mark.parametrize(
    "y, match",
    [
        # NaN marks unknown entries of a 2-D y only (test_unknown_labels.py).
        (np.array([0, 1, np.nan]), "ThresholdTunerCV: y holds 1 NaN value"),
        (np.array([[0, 1], [1, 0]]), "ThresholdTunerCV: Found input variables"),
    ],
)
def test_threshold_tuner_errors_about_y_name_it(y, match):
    from sklearn.linear_model import LogisticRegression

    from sk_mlc import ThresholdTunerCV

    with pytest.raises(ValueError, match=match):
        ThresholdTunerCV(LogisticRegression()).fit(np.zeros((3, 2)), y)
