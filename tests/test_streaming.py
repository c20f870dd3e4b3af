"""Image files streamed batch by batch through ``CNNClassifier``.

Streaming must change nothing but memory: every model fitted on files is
compared with the same model fitted on the decoded ``uint8`` array.
"""

import multiprocessing
from collections import Counter

import numpy as np
import pytest
from conftest import FAST
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from sk_mlc import CNNClassifier, ImageLoader, LazyImages
from sk_mlc.data import ImageBatches

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


class RecordingImages(LazyImages):
    """``LazyImages`` that logs each decoding as ``("decode", sources)``.

    A subset (a batch, a cross-validation split) is a ``RecordingImages`` on
    the same log, so every decoding of these images is seen, however they
    were cut. Only in-process decoding is seen (``num_workers=0``).
    """

    def __init__(self, sources, log, **kwargs):
        super().__init__(sources, **kwargs)
        self.log = log

    def __getitem__(self, key):
        item = super().__getitem__(key)
        if not isinstance(item, LazyImages):  # one image, decoded now
            index = key[0] if isinstance(key, tuple) else key
            self.log.append(("decode", (self.sources[index],)))
            return item
        return RecordingImages(
            item.sources, self.log, mode=item.mode, size=item.size, resize=item.resize
        )

    def decode(self):
        self.log.append(("decode", self.sources))
        return super().decode()


class TrainingEvents(Callback):
    """Calls ``mark(event)`` when training begins and at each batch.

    ``CNNClassifier`` trains on deep copies of its callbacks; ``mark`` is a
    function, which ``deepcopy`` shares, so the events reach the caller's log.
    """

    def __init__(self, mark):
        self.mark = mark

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.mark(("train",))

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        self.mark(("batch", len(batch[0]), training))


def recording(paths, size=SIDE, **params):
    """Images that log their decodings, and a classifier that logs its training.

    Returns ``(images, classifier, log)``. ``size`` is given, so that building
    the images decodes nothing, and ``fit`` keeps them as they are.
    """
    log = []

    def mark(event):
        log.append(event)

    images = RecordingImages(paths, log, size=size)
    clf = CNNClassifier(**params, callbacks=[("events", TrainingEvents(mark))])
    return images, clf, log


def decodings(log) -> list[tuple]:
    """The sources of each decoding in ``log``, in order."""
    return [event[1] for event in log if event[0] == "decode"]


def until_training_begins(log) -> tuple[list, list]:
    """The events before ``fit`` starts its training loop, and those after."""
    begin = log.index(("train",))
    return log[:begin], log[begin + 1 :]


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
    # Each label's probabilities rank its positives first.
    assert average_precision_score(Y, fitted_on_paths.predict_proba(paths)) > 0.9


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


def test_cross_val_predict_on_lazy_images_matches_array(files, decoded):
    paths, Y = files
    images, clf, log = recording(paths, **STREAM)
    cv = KFold(2)
    streamed = cross_val_predict(clf, images, Y, cv=cv, method="predict_proba")
    # The splits were never decoded whole: every decoding is one batch (a
    # split holds 24 images), and each image is decoded exactly as often as
    # streaming needs: in its training fold by the statistics pass and by
    # every epoch, in its test fold once by predict_proba.
    assert max(map(len, decodings(log))) <= STREAM["batch_size"] < len(paths) // 2
    counts = Counter(source for sources in decodings(log) for source in sources)
    assert counts == dict.fromkeys(paths, 1 + STREAM["max_epochs"] + 1)
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


class TruncateWhenTrainingBegins(Callback):
    """Cut ``path`` short once the statistics pass has read it whole."""

    def __init__(self, path):
        self.path = path

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.path.write_bytes(self.path.read_bytes()[:200])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_file_met_in_the_training_loop_names_the_file(
    files, decoded, tmp_path, num_workers
):
    # The file goes bad after the statistics pass decoded it, so the first to
    # meet it is the DataLoader inside skorch's fit loop (in a worker when
    # num_workers=2), as a file left out of the statistics sample would be.
    paths, Y = files
    bad_file = tmp_path / "cut.jpg"
    Image.fromarray(decoded[10]).save(bad_file)
    paths = paths[:10] + [bad_file] + paths[11:]
    callbacks = [("cut", TruncateWhenTrainingBegins(bad_file))]
    clf = CNNClassifier(**STREAM, num_workers=num_workers, callbacks=callbacks)
    before = set(multiprocessing.active_children())
    with pytest.raises((ValueError, OSError), match=bad_file.name) as excinfo:
        clf.fit(paths, Y)
    assert any("fit_loop" in str(entry.name) for entry in excinfo.traceback)
    assert set(multiprocessing.active_children()) <= before


# -- streaming really streams ------------------------------------------------


def test_fit_and_predict_decode_one_batch_at_a_time(files):
    paths, Y = files
    images, clf, log = recording(paths, **STREAM)
    clf.fit(images, Y)
    batch = STREAM["batch_size"]
    statistics, training = until_training_begins(log)
    # The statistics: every image once (fewer than 1024 files: all of them),
    # one batch at a time too.
    assert sorted(s for sources in decodings(statistics) for s in sources) == paths
    assert max(map(len, decodings(statistics))) <= batch
    # Training: each batch is decoded just before it is trained on, and
    # nothing else is decoded.
    steps = [(e[0], len(e[1])) if e[0] == "decode" else e[:2] for e in training]
    sizes = [n for step, n in steps if step == "batch"]
    assert steps == [step for n in sizes for step in (("decode", n), ("batch", n))]
    assert max(sizes) <= batch
    assert sum(sizes) == STREAM["max_epochs"] * len(paths)
    log.clear()
    clf.predict_proba(images)
    assert max(map(len, decodings(log))) <= batch
    assert sorted(s for sources in decodings(log) for s in sources) == paths
    assert [event[0] for event in log] == ["decode"] * len(log)


def test_statistics_of_files_come_from_a_bounded_sample(tmp_path):
    # More files than the 1024 that the statistics sample: tiny ones, each
    # of a random grey level, so that leaving some out moves the mean.
    n, side = 1100, 2
    levels = np.random.RandomState(0).randint(0, 256, size=n).astype(np.uint8)
    paths = []
    for index, level in enumerate(levels):
        paths.append(tmp_path / f"{index:04d}.png")
        Image.new("RGB", (side, side), (int(level),) * 3).save(paths[-1])
    y = np.where(levels > 127, "bright", "dark")
    images, clf, log = recording(paths, size=side, **{**STREAM, "max_epochs": 1})
    clf.fit(images, y)
    statistics, training = until_training_begins(log)
    sampled = [source for sources in decodings(statistics) for source in sources]
    assert len(sampled) == len(set(sampled)) == 1024
    assert max(map(len, decodings(statistics))) <= STREAM["batch_size"]
    assert max(map(len, decodings(training))) <= STREAM["batch_size"]
    # The fitted standardisation is the mean and std of exactly the sampled
    # images, which differ from those of all of them by far more than rtol.
    standardize = clf.net_.module_[0]
    level_of = dict(zip(paths, levels / 255, strict=True))
    sample = np.array([level_of[path] for path in sampled])
    assert_allclose(standardize.mean.flatten(), [sample.mean()] * 3, rtol=1e-5)
    assert_allclose(standardize.std.flatten(), [sample.std()] * 3, rtol=1e-4)
    assert abs(sample.mean() - (levels / 255).mean()) > 20 * 1e-5 * sample.mean()


def test_arrays_are_converted_one_batch_at_a_time(files, decoded, monkeypatch):
    # The float32 copy of an in-memory array exists one batch at a time, the
    # statistics pass included: never a float32 copy of the whole data set.
    # No public seam reaches this conversion: scikit-learn's validation hands
    # sk_mlc a plain ndarray (a caller's array subclass or wrapper is gone), and
    # a callback or forward hook sees a batch only after it was converted, so
    # it cannot tell a per-batch conversion from a sliced whole-array one. So
    # the spy sits on the one method that converts images to float32.
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
