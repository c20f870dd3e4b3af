"""One input path: ``image_size`` and ``image_mode`` apply to arrays and files alike."""

import numpy as np
import pytest
from conftest import FAST
from PIL import Image
from skorch.callbacks import Callback

from sk_mlc import CNNClassifier

ONE_EPOCH = {**FAST, "max_epochs": 1}


@pytest.fixture(scope="module")
def grey(multilabel_data):
    X, Y = multilabel_data
    return X, Y


def test_image_size_resizes_arrays_at_fit_and_predict(grey):
    X, Y = grey
    clf = CNNClassifier(image_size=4, **ONE_EPOCH).fit(X, Y)
    assert clf.input_shape_ == (1, 4, 4)
    assert clf.n_features_in_ == 64  # what X had, before resizing
    assert clf.predict_proba(X).shape == (len(X), 4)
    # The fitted size applies at predict, even after set_params.
    clf.set_params(image_size=None)
    assert clf.predict_proba(X).shape == (len(X), 4)


def test_grey_arrays_converted_to_rgb_equal_their_rgb_copies(grey):
    X, Y = grey
    clf = CNNClassifier(image_mode="RGB", **ONE_EPOCH).fit(X, Y)
    assert clf.input_shape_ == (3, 8, 8)
    rgb = np.repeat(X[..., None], 3, axis=3)
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(rgb))


def test_rgb_arrays_converted_to_grey_use_pillow_luma(grey):
    X, Y = grey
    rng = np.random.RandomState(0)
    rgb = rng.rand(len(X), 8, 8, 3).astype(np.float32)
    clf = CNNClassifier(image_mode="L", **ONE_EPOCH).fit(rgb, Y)
    assert clf.input_shape_ == (1, 8, 8)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(
        clf.predict_proba(rgb), clf.predict_proba(luma), atol=1e-5
    )


def test_files_follow_image_mode_and_image_size(grey, tmp_path):
    X, Y = grey
    paths = []
    for i, image in enumerate((X.clip(0, 1) * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    clf = CNNClassifier(image_mode="L", image_size=(6, 4), **ONE_EPOCH).fit(paths, Y)
    assert clf.input_shape_ == (1, 6, 4)
    default = CNNClassifier(**ONE_EPOCH).fit(paths, Y)
    assert default.input_shape_ == (3, 8, 8)  # files decode as RGB by default


def test_unknown_image_mode_is_rejected_before_training(grey):
    X, Y = grey
    with pytest.raises(
        ValueError, match="image_mode.*CNNClassifier|CNNClassifier.*image_mode"
    ):
        CNNClassifier(image_mode="XYZ", **ONE_EPOCH).fit(X, Y)


def test_file_only_modes_on_arrays_say_so(grey):
    X, Y = grey
    with pytest.raises(ValueError, match="CNNClassifier: image_mode='CMYK' converts"):
        CNNClassifier(image_mode="CMYK", **ONE_EPOCH).fit(X, Y)


def test_bad_image_size_names_the_estimator(grey):
    X, Y = grey
    with pytest.raises(ValueError, match="CNNClassifier: image_size must be"):
        CNNClassifier(image_size=(4, 0), **ONE_EPOCH).fit(X, Y)


class _Trainings(Callback):
    def __init__(self):
        self.started = 0

    def on_train_begin(self, net, **kwargs):
        self.started += 1


def test_array_class_weight_for_labels_fails_before_training(binary_data):
    X, y = binary_data
    count = _Trainings()
    clf = CNNClassifier(class_weight=[1.0, 2.0], callbacks=[count], **ONE_EPOCH)
    with pytest.raises(ValueError, match="CNNClassifier: class_weight for a 1-D y"):
        clf.fit(X, y)
    assert count.started == 0


@pytest.mark.parametrize("values", [(0, 2), (-1, 1)])
def test_two_d_y_must_hold_zeros_and_ones(grey, values):
    X, Y = grey
    with pytest.raises(ValueError, match="0/1 values"):
        CNNClassifier(**ONE_EPOCH).fit(X, np.where(Y == 1, values[1], values[0]))


def test_a_list_of_lists_y_is_a_multilabel_target(grey):
    X, Y = grey
    clf = CNNClassifier(**ONE_EPOCH).fit(X, Y.tolist())
    assert clf.target_type_ == "multilabel-indicator"
    assert clf.predict(X).shape == Y.shape


@pytest.mark.parametrize("n_features", [2, 4, 9])
def test_tabular_rows_are_one_channel_images(n_features):
    # A row of 2 or 4 values must not be read as one pixel of 2 or 4 channels.
    X = np.random.RandomState(0).rand(20, n_features).astype(np.float32)
    clf = CNNClassifier(**ONE_EPOCH).fit(X, np.arange(20) % 2)
    assert clf.input_shape_ == (1, 1, n_features)
