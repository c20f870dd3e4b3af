"""Image files streamed batch by batch through ``CNNClassifier``.

Streaming must change nothing but memory: every model fitted on files is
compared with the same model fitted on the decoded ``uint8`` array.
"""

import multiprocessing

import numpy as np
import pytest
from conftest import FAST
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from sk_mlc import CNNClassifier, ImageLoader, LazyImages, _training
from sk_mlc._inputs import ImageBatches

SIDE = 12
STREAM = {**FAST, "max_epochs": 4, "batch_size": 16}
# Float32 sums over a batch may differ in the last bits between code paths.
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _quadrant_pixels(Y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Dark noisy ``uint8`` RGB images, bright top-left / bottom-right per label."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 60, size=(len(Y), size, size, 3)).astype(np.uint8)
    half = size // 2
    X[Y[:, 0] == 1, :half, :half] += 150
    X[Y[:, 1] == 1, half:, half:] += 150
    return X


def _write(folder, pixels: np.ndarray) -> list:
    """Alternate PNG and JPEG files, so both decoders are exercised."""
    paths = []
    for index, array in enumerate(pixels):
        suffix = "png" if index % 2 == 0 else "jpg"
        path = folder / f"{index:03d}.{suffix}"
        Image.fromarray(array).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """48 files of 12x12 pixels and their two-label multi-hot target."""
    Y = (np.random.RandomState(1).rand(48, 2) < 0.5).astype(np.int64)
    folder = tmp_path_factory.mktemp("images")
    return _write(folder, _quadrant_pixels(Y, SIDE, seed=0)), Y


@pytest.fixture(scope="module")
def decoded(files):
    paths, _ = files
    return np.asarray(LazyImages(paths))


@pytest.fixture(scope="module")
def fitted_on_array(files, decoded):
    _, Y = files
    return CNNClassifier(**STREAM).fit(decoded, Y)


@pytest.fixture(scope="module")
def fitted_on_paths(files):
    paths, Y = files
    return CNNClassifier(**STREAM).fit(paths, Y)


@pytest.fixture
def bad_file(tmp_path, request):
    """A path that cannot be decoded: missing, truncated or not an image."""
    kind = request.param
    if kind == "missing":
        return tmp_path / "missing.png"
    if kind == "text":
        path = tmp_path / "notes.png"
        path.write_text("not an image")
        return path
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


BAD_KINDS = ["missing", "truncated", "text"]


class _DecodeSpy:
    """Record how many images each ``LazyImages.decode`` call decodes.

    Calls made while the input statistics are computed are tagged "stats",
    all others "batch". Only in-process decoding is seen (``num_workers=0``).
    """

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, int]] = []
        self._phase = "batch"
        decode, stats = LazyImages.decode, _training.channel_stats

        def spy_decode(images):
            self.calls.append((self._phase, len(images)))
            return decode(images)

        def spy_stats(*args, **kwargs):
            self._phase = "stats"
            try:
                return stats(*args, **kwargs)
            finally:
                self._phase = "batch"

        monkeypatch.setattr(LazyImages, "decode", spy_decode)
        monkeypatch.setattr(_training, "channel_stats", spy_stats)

    def sizes(self, phase: str) -> list[int]:
        return [n for tag, n in self.calls if tag == phase]


# -- same results as the decoded array --------------------------------------


def test_fit_on_paths_matches_fit_on_decoded_array(
    files, decoded, fitted_on_paths, fitted_on_array
):
    paths, _ = files
    assert fitted_on_paths.input_shape_ == fitted_on_array.input_shape_
    assert fitted_on_paths.input_shape_ == (3, SIDE, SIDE)
    expected = fitted_on_array.predict_proba(decoded)
    assert_allclose(fitted_on_paths.predict_proba(paths), expected, **TOL)
    assert_array_equal(fitted_on_paths.predict(paths), fitted_on_array.predict(decoded))
    # A model fitted on files predicts arrays, and the other way round.
    assert_allclose(fitted_on_paths.predict_proba(decoded), expected, **TOL)
    assert_allclose(fitted_on_array.predict_proba(paths), expected, **TOL)


def test_streaming_model_learns_the_quadrants(files, fitted_on_paths):
    paths, Y = files
    assert (fitted_on_paths.predict(paths) == Y).mean() > 0.9


def test_binary_target_on_paths_matches_array(files, decoded):
    paths, Y = files
    y = np.where(Y[:, 0] == 1, "bright", "dark")
    on_paths = CNNClassifier(**STREAM).fit(paths, y)
    on_array = CNNClassifier(**STREAM).fit(decoded, y)
    assert on_paths.target_type_ == "binary"
    assert on_paths.predict_proba(paths).shape == (len(paths), 2)
    assert_allclose(
        on_paths.predict_proba(paths), on_array.predict_proba(decoded), **TOL
    )
    assert_array_equal(on_paths.predict(paths), on_array.predict(decoded))


def test_pil_images_and_lazy_images_stream_like_paths(files, fitted_on_paths):
    paths, Y = files
    expected = fitted_on_paths.predict_proba(paths)
    pil = [Image.open(path) for path in paths]
    try:
        clf = CNNClassifier(**STREAM).fit(pil, Y)
        assert_allclose(clf.predict_proba(pil), expected, **TOL)
    finally:
        for image in pil:
            image.close()
    clf = CNNClassifier(**STREAM).fit(LazyImages(paths), Y)
    assert_allclose(clf.predict_proba(LazyImages(paths)), expected, **TOL)
    as_strings = np.array([str(path) for path in paths])
    assert_allclose(fitted_on_paths.predict_proba(as_strings), expected, **TOL)


def test_num_workers_gives_the_same_probabilities(files, fitted_on_paths):
    paths, Y = files
    clf = CNNClassifier(**STREAM, num_workers=2).fit(paths, Y)
    assert_allclose(
        clf.predict_proba(paths), fitted_on_paths.predict_proba(paths), **TOL
    )


# -- pipelines and model selection -------------------------------------------


@pytest.mark.parametrize("lazy", [True, False])
def test_image_loader_pipeline(files, fitted_on_paths, lazy):
    paths, Y = files
    pipeline = Pipeline(
        [
            ("load", ImageLoader(size=SIDE, lazy=lazy)),
            ("clf", CNNClassifier(**STREAM)),
        ]
    ).fit(paths, Y)
    assert pipeline.named_steps["clf"].input_shape_ == (3, SIDE, SIDE)
    assert_allclose(
        pipeline.predict_proba(paths), fitted_on_paths.predict_proba(paths), **TOL
    )


def test_cross_val_predict_on_lazy_images_matches_array(files, decoded, monkeypatch):
    paths, Y = files
    received = []
    fit = CNNClassifier.fit

    def spy_fit(self, X, y):
        received.append(type(X))
        return fit(self, X, y)

    monkeypatch.setattr(CNNClassifier, "fit", spy_fit)
    clf, cv = CNNClassifier(**STREAM), KFold(2)
    streamed = cross_val_predict(
        clf, LazyImages(paths), Y, cv=cv, method="predict_proba"
    )
    assert received == [LazyImages, LazyImages]  # the splits were never decoded
    in_memory = cross_val_predict(clf, decoded, Y, cv=cv, method="predict_proba")
    assert_allclose(streamed, in_memory, **TOL)


def test_grid_search_over_paths(files):
    paths, Y = files
    search = GridSearchCV(
        CNNClassifier(**{**STREAM, "max_epochs": 2}),
        {"threshold": [0.3, 0.7]},
        cv=2,
        scoring="f1_micro",
    ).fit(paths, Y)
    assert search.best_params_["threshold"] in (0.3, 0.7)
    assert search.best_estimator_.input_shape_ == (3, SIDE, SIDE)
    assert search.predict(paths).shape == Y.shape


# -- sizes and modes ---------------------------------------------------------


def test_mixed_sizes_are_resized_to_the_first_image(tmp_path, files, decoded):
    _, Y = files
    sizes = [(12, 12), (16, 10), (8, 20), (24, 24)]
    paths = []
    for index, array in enumerate(decoded):
        height, width = sizes[index % len(sizes)]
        image = Image.fromarray(array).resize((width, height))
        paths.append(tmp_path / f"{index}.png")
        image.save(paths[-1])
    clf = CNNClassifier(**{**STREAM, "max_epochs": 1}).fit(paths, Y)
    assert clf.input_shape_ == (3, 12, 12)
    paths = paths[1:] + paths[:1]  # now a 16x10 image comes first
    clf = CNNClassifier(**{**STREAM, "max_epochs": 1}).fit(paths, Y)
    assert clf.input_shape_ == (3, 16, 10)
    assert clf.predict_proba(paths).shape == Y.shape


def test_image_size_parameter(files):
    paths, Y = files
    clf = CNNClassifier(**{**STREAM, "max_epochs": 1}, image_size=(10, 14))
    assert clf.fit(paths, Y).input_shape_ == (3, 10, 14)
    assert clf.set_params(image_size=8).fit(paths, Y).input_shape_ == (3, 8, 8)
    assert clf.predict(paths).shape == Y.shape


def test_image_mode_grey(files):
    paths, Y = files
    clf = CNNClassifier(**STREAM, image_mode="L").fit(paths, Y)
    assert clf.input_shape_ == (1, SIDE, SIDE)
    grey = np.asarray(LazyImages(paths, mode="L"))
    on_array = CNNClassifier(**STREAM).fit(grey, Y)
    assert on_array.input_shape_ == (1, SIDE, SIDE)
    # At predict time the fitted channel count picks the mode ("L").
    assert_allclose(clf.predict_proba(paths), on_array.predict_proba(grey), **TOL)


def test_predict_resizes_files_to_the_fitted_size(
    tmp_path, files, decoded, fitted_on_paths
):
    paths = []
    for index, array in enumerate(decoded[:8]):
        paths.append(tmp_path / f"big{index}.png")
        Image.fromarray(array).resize((2 * SIDE, 3 * SIDE)).save(paths[-1])
    expected = fitted_on_paths.predict_proba(np.asarray(LazyImages(paths, size=SIDE)))
    assert_allclose(fitted_on_paths.predict_proba(paths), expected, **TOL)
    assert fitted_on_paths.predict(paths).shape == (8, 2)


# -- bad files ---------------------------------------------------------------


@pytest.mark.parametrize("bad_file", BAD_KINDS, indirect=True)
def test_bad_file_at_fit_names_the_file(files, bad_file):
    paths, Y = files
    paths = paths[:10] + [bad_file] + paths[11:]
    with pytest.raises((ValueError, OSError), match=bad_file.name):
        CNNClassifier(**STREAM).fit(paths, Y)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("bad_file", BAD_KINDS, indirect=True)
def test_bad_file_at_predict_names_the_file(files, bad_file, num_workers):
    paths, Y = files
    clf = CNNClassifier(**{**STREAM, "max_epochs": 1}, num_workers=num_workers)
    clf.fit(paths[:20], Y[:20])
    # Other tests' joblib workers may still be alive: compare, don't count.
    before = set(multiprocessing.active_children())
    with pytest.raises((ValueError, OSError), match=bad_file.name):
        clf.predict(paths[:5] + [bad_file] + paths[5:8])
    # The workers are stopped at once, not by a later garbage collection that
    # would wait 5 s per worker (see _data._BatchLoader).
    assert set(multiprocessing.active_children()) <= before
    assert clf.predict(paths[:3]).shape == (3, 2)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("bad_file", ["truncated"], indirect=True)
def test_bad_file_met_in_the_training_loop_names_the_file(
    files, bad_file, num_workers, monkeypatch
):
    # With a statistics sample that leaves the bad file out, it is first met by
    # the DataLoader inside skorch's fit loop (in a worker when num_workers=2).
    monkeypatch.setattr(_training, "_MAX_STATS_IMAGES", 4)
    paths, Y = files
    paths = paths[:10] + [bad_file] + paths[11:]
    clf = CNNClassifier(**STREAM, num_workers=num_workers)
    before = set(multiprocessing.active_children())
    with pytest.raises((ValueError, OSError), match=bad_file.name) as excinfo:
        clf.fit(paths, Y)
    assert any("fit_loop" in str(entry.name) for entry in excinfo.traceback)
    assert set(multiprocessing.active_children()) <= before


# -- streaming really streams ------------------------------------------------


def test_fit_and_predict_decode_one_batch_at_a_time(files, monkeypatch):
    paths, Y = files
    spy = _DecodeSpy(monkeypatch)
    clf = CNNClassifier(**STREAM).fit(paths, Y)
    batch = STREAM["batch_size"]
    assert sum(spy.sizes("stats")) == len(paths)  # fewer than 1024: all of them
    # The statistics too are computed one batch at a time.
    assert max(spy.sizes("stats") + spy.sizes("batch")) <= batch
    assert sum(spy.sizes("batch")) == STREAM["max_epochs"] * len(paths)
    spy.calls.clear()
    clf.predict_proba(paths)
    assert max(spy.sizes("batch")) <= batch and not spy.sizes("stats")
    assert sum(spy.sizes("batch")) == len(paths)


def test_statistics_of_files_come_from_a_bounded_sample(files, monkeypatch):
    paths, Y = files
    assert _training._MAX_STATS_IMAGES == 1024
    monkeypatch.setattr(_training, "_MAX_STATS_IMAGES", 20)
    spy = _DecodeSpy(monkeypatch)
    CNNClassifier(**{**STREAM, "max_epochs": 1}).fit(paths, Y)
    assert sum(spy.sizes("stats")) == 20
    assert max(spy.sizes("batch")) <= STREAM["batch_size"]


def test_arrays_are_converted_one_batch_at_a_time(files, decoded, monkeypatch):
    # The float32 copy of an in-memory array exists one batch at a time, the
    # statistics pass included: never a float32 copy of the whole data set.
    _, Y = files
    sizes = []
    batch = ImageBatches.batch

    def spy_batch(self, index):
        sizes.append(len(index))
        return batch(self, index)

    monkeypatch.setattr(ImageBatches, "batch", spy_batch)
    CNNClassifier(**{**STREAM, "max_epochs": 1}).fit(decoded, Y).predict(decoded)
    assert max(sizes) <= STREAM["batch_size"]
    assert sum(sizes) == 3 * len(decoded)  # statistics, one epoch, predict
