"""Behaviour of the dataset loaders and of make_mosaic, on tiny files in tmp_path."""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.utils import Bunch

from sk_mlc import CNNClassifier, LazyImages
from sk_mlc.datasets import (
    FASHION_MNIST_CLASSES,
    load_fashion_mnist,
    load_image_csv,
    load_image_folder,
    make_mosaic,
)

FASHION_HOME = Path("/usr/share/datasets/fashion-mnist")


def _image(path, value=0, size=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value,) * 3).save(path)
    return path


def _corrupt(folder):
    """Unreadable files of every kind, keyed by name."""
    folder.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    for name in ["cut.png", "cut.jpg"]:
        Image.fromarray(noise).save(folder / name)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    return ["cut.png", "cut.jpg", "text.png", "empty.png"]


# -- load_image_folder ------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    for name in ["dog/b.png", "dog/a.JPG", "cat/x/1.bmp", "cat/2.png", "emu/0.png"]:
        _image(root / name)
    (root / "cat" / "notes.txt").write_text("ignored")
    _image(root / "cat" / "._2.png").write_bytes(b"macOS resource fork")
    _image(root / ".cache" / "z.png")
    return root


def test_load_image_folder_lists_classes_and_files(folder):
    data = load_image_folder(folder)
    assert isinstance(data, Bunch)
    assert sorted(data) == ["DESCR", "filenames", "target", "target_names"]
    assert data.target_names == ["cat", "dog", "emu"]
    rel = [path.relative_to(folder).as_posix() for path in data.filenames]
    assert rel == ["cat/2.png", "cat/x/1.bmp", "dog/a.JPG", "dog/b.png", "emu/0.png"]
    assert data.target.dtype == np.int64 and data.target.tolist() == [0, 0, 1, 1, 2]
    assert data.filenames.shape == (5,) and data.filenames.dtype == object
    assert all(isinstance(path, Path) for path in data.filenames)
    assert str(folder) in data.DESCR and "5 images in 3 classes" in data.DESCR
    assert LazyImages(data.filenames).shape == (5, 4, 4, 3)
    X, y = load_image_folder(folder, return_X_y=True)
    np.testing.assert_array_equal(X, data.filenames)
    np.testing.assert_array_equal(y, data.target)


def test_load_image_folder_extensions(folder):
    filenames, _ = load_image_folder(
        str(folder), extensions=["png", ".BMP"], return_X_y=True
    )
    assert [path.name for path in filenames] == ["2.png", "1.bmp", "b.png", "0.png"]
    with pytest.raises(ValueError, match="hold no image"):
        load_image_folder(folder, extensions=[".jpg"])


def test_load_image_folder_bad_roots(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere")
    _image(tmp_path / "flat" / "1.png")
    with pytest.raises(ValueError, match="flat.*no class sub-folder"):
        load_image_folder(tmp_path / "flat")
    (tmp_path / "flat" / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty_class"):
        load_image_folder(tmp_path / "flat")
    with pytest.raises(ValueError, match="on_error"):
        load_image_folder(tmp_path / "flat", on_error="ignore")


def test_load_image_folder_raise_defers_decoding_but_catches_empty(folder):
    bad = _corrupt(folder / "dog")
    (folder / "dog" / "empty.png").unlink()
    filenames, _ = load_image_folder(folder, return_X_y=True)  # no image is opened
    images = LazyImages(filenames)
    for name in bad[:3]:
        index = [path.name for path in filenames].index(name)
        with pytest.raises(ValueError, match=name):
            images[index]
    (folder / "dog" / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        load_image_folder(folder)


def test_load_image_folder_skip_warns_with_the_names(folder):
    bad = _corrupt(folder / "dog")
    with pytest.warns(UserWarning, match="Skipped 4 unreadable") as record:
        data = load_image_folder(folder, on_error="skip")
    message = str(record[0].message)
    assert all(name in message for name in bad)
    assert record[0].filename == __file__  # points at the caller's line
    assert len(data.filenames) == len(data.target) == 5
    assert data.target_names == ["cat", "dog", "emu"]
    assert np.asarray(LazyImages(data.filenames)).shape == (5, 4, 4, 3)


def test_return_X_y_is_what_cnnclassifier_fits_on(folder):
    X, y = load_image_folder(folder, return_X_y=True)
    # Index arrays select from filenames as from target (a CV split would).
    X, y = X[[0, 2, 3, 4]], y[[0, 2, 3, 4]]
    params = {"width": 4, "depth": 1, "max_epochs": 1, "random_state": 0}
    clf = CNNClassifier(**params).fit(X, y)
    assert clf.input_shape_ == (3, 4, 4) and clf.predict(X).shape == (4,)


# -- load_image_csv ---------------------------------------------------------


@pytest.fixture
def planet(tmp_path):
    images = tmp_path / "images"
    for name in ["t0.jpg", "t1.jpg", "t2.PNG", "t3.png"]:
        _image(images / name)
    csv = tmp_path / "labels.csv"
    csv.write_text("image_name,tags\nt0,haze primary\nt1,clear\nt2,\nt3.png,primary\n")
    return csv, images


def _with_rows(csv, *rows):
    csv.write_text(csv.read_text() + "".join(f"{row}\n" for row in rows))
    return csv


def test_load_image_csv_resolves_ids_with_and_without_extension(planet):
    csv, images = planet
    data = load_image_csv(csv, images)
    assert isinstance(data, Bunch)
    assert sorted(data) == ["DESCR", "filenames", "target", "target_names"]
    assert [path.name for path in data.filenames] == [
        "t0.jpg",
        "t1.jpg",
        "t2.PNG",
        "t3.png",
    ]
    assert data.filenames.dtype == object
    assert data.target_names == ["clear", "haze", "primary"]
    assert data.target.dtype == np.int64
    assert data.target.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert str(csv) in data.DESCR and "4 images (of 4 rows), 3 tags" in data.DESCR
    X, Y = load_image_csv(csv, images, return_X_y=True)
    np.testing.assert_array_equal(X, data.filenames)
    np.testing.assert_array_equal(Y, data.target)


def test_load_image_csv_explicit_extension_and_columns(tmp_path, planet):
    _, images = planet
    csv = tmp_path / "other.csv"
    # A BOM, as spreadsheets write it, must not rename the first column.
    csv.write_text("\ufeffid,labels,extra\nt3,a b,1\nt2,b,2\n", encoding="utf-8")
    data = load_image_csv(
        csv, images, id_column="id", tags_column="labels", extension="png"
    )
    assert [path.name for path in data.filenames] == ["t3.png", "t2.PNG"]
    assert data.target_names == ["a", "b"]
    assert data.target.tolist() == [[1, 1], [0, 1]]
    with pytest.raises(
        ValueError, match=r"tried extensions \['\.png'\]\): line 2 't0'"
    ):
        load_image_csv(Path(csv).with_name("labels.csv"), images, extension=".png")


def test_load_image_csv_missing_file_and_columns(tmp_path, planet):
    csv, images = planet
    _with_rows(csv, "ghost,clear")
    with pytest.raises(ValueError, match=f"{csv}.*{images}.*: line 6 'ghost'"):
        load_image_csv(csv, images)
    bad = tmp_path / "bad.csv"
    bad.write_text("image_name,label\nt0,a\n")
    with pytest.raises(ValueError, match=r"\['tags'\]; found columns \['image_name'"):
        load_image_csv(bad, images)
    with pytest.raises(ValueError, match="does not exist"):
        load_image_csv(csv, tmp_path / "nowhere")


def test_load_image_csv_skip_drops_missing_and_corrupt(tmp_path, planet):
    csv, images = planet
    bad = _corrupt(images)
    _with_rows(csv, *(f"{name},rare" for name in bad), "ghost,clear")
    with pytest.raises(ValueError, match="ghost"):
        load_image_csv(csv, images)
    with pytest.warns(UserWarning) as record:
        data = load_image_csv(csv, images, on_error="skip")
    messages = " ".join(str(warning.message) for warning in record)
    assert "ghost" in messages and all(name in messages for name in bad)
    assert len(data.filenames) == len(data.target) == 4
    # Tags of dropped rows still name a (now empty) column.
    assert data.target_names == ["clear", "haze", "primary", "rare"]
    assert data.target[:, 3].sum() == 0
    assert "4 images (of 9 rows)" in data.DESCR


@pytest.mark.parametrize(
    "image_id, why",
    [
        ("../outside.png", "'..' in the path"),
        ("../outside", "'..' in the path"),  # the extension is added after
        ("sub/../../outside.png", "'..' in the path"),
        # Lands inside, but through a name that a link could redirect.
        ("sub/../t0.jpg", "'..' in the path"),
        ("{outside}", "absolute path"),
        ("", "empty id"),
    ],
)
def test_load_image_csv_refuses_ids_outside_the_image_folder(planet, image_id, why):
    csv, images = planet
    outside = _image(images.parent / "outside.png")  # readable, next to images/
    image_id = image_id.format(outside=outside)
    _with_rows(csv, f"{image_id},secret")
    message = re.escape(f"line 6 {image_id!r} ({why})")
    message = f"{re.escape(str(csv))}.*inside the image folder.*{message}"
    with pytest.raises(ValueError, match=message):
        load_image_csv(csv, images)
    with pytest.warns(
        UserWarning, match=message + "; these rows were skipped"
    ) as record:
        data = load_image_csv(csv, images, on_error="skip")
    assert record[0].filename == __file__  # points at the caller's line
    assert outside not in data.filenames and len(data.filenames) == 4
    assert all(path.parent == images for path in data.filenames)


def test_load_image_csv_accepts_ids_in_sub_folders(planet):
    csv, images = planet
    _image(images / "tile" / "t4.png")
    data = load_image_csv(_with_rows(csv, "tile/t4,cloudy"), images)
    assert data.filenames[-1] == images / "tile" / "t4.png"
    assert data.target[-1].tolist() == [0, 1, 0, 0]


def test_load_image_csv_follows_links_placed_in_the_image_folder(planet):
    # The folder's owner may link into a shared store; only the CSV's text is
    # kept from leaving the folder.
    csv, images = planet
    store = _image(images.parent / "store" / "t5.png")
    (images / "t5.png").symlink_to(store)
    data = load_image_csv(_with_rows(csv, "t5,cloudy"), images)
    assert data.filenames[-1] == images / "t5.png"


def test_load_image_csv_reports_images_listed_twice(planet):
    csv, images = planet
    # The same id twice, and the same file through two ids.
    _with_rows(csv, "t1,haze", "t0.jpg,cloudy")
    message = re.escape(str(csv)) + re.escape(
        "' lists 2 image(s) on more than one row: "
        "line 2 't0', line 7 't0.jpg'; line 3 't1', line 6 't1'"
    )
    with pytest.raises(ValueError, match=message + ".*on_error='skip'"):
        load_image_csv(csv, images)
    with pytest.warns(UserWarning, match=message + "; only the first row of each"):
        data = load_image_csv(csv, images, on_error="skip")
    assert [path.name for path in data.filenames] == [
        "t0.jpg",
        "t1.jpg",
        "t2.PNG",
        "t3.png",
    ]
    assert data.target_names == ["clear", "cloudy", "haze", "primary"]
    assert data.target[:2].tolist() == [[0, 0, 1, 1], [1, 0, 0, 0]]


@pytest.mark.parametrize(
    "content, match",
    [
        ("image_name,tags\nt0,caf\xe9\n".encode("latin-1"), "not UTF-8 text: line 2"),
        (bytes(range(256)) * 4, "not UTF-8 text: line 2"),
        ("image_name,tags\nt0,haze\n".encode("utf-16-le"), "NUL character"),
        ("image_name,tags\nt0,haze\n".encode("utf-16"), "not UTF-8 text"),
        (b"image_name,tags\nt0," + b"x" * 200_000, "cannot be parsed as CSV at line 2"),
    ],
    ids=["latin-1", "binary", "utf-16-no-bom", "utf-16", "huge-field"],
)
def test_load_image_csv_names_a_file_it_cannot_read(planet, content, match):
    csv, images = planet
    csv.write_bytes(content)
    with pytest.raises(
        ValueError, match=f"Tags CSV {re.escape(repr(str(csv)))} .*{match}"
    ):
        load_image_csv(csv, images)


# -- make_mosaic ------------------------------------------------------------


def _pool(n_classes=5, per_class=3, size=4):
    """Images of class k are filled with the value 10 * (k + 1)."""
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.stack([np.full((size, size), 10 * (k + 1), np.uint8) for k in labels])
    return images, labels


def test_make_mosaic_labels_match_what_was_pasted():
    images, labels = _pool()
    X, Y = make_mosaic(images, labels, n_samples=50, grid=(2, 3), random_state=0)
    assert X.shape == (50, 8, 12) and X.dtype == np.uint8
    assert Y.shape == (50, 5) and Y.dtype == np.int64
    for canvas, row in zip(X, Y, strict=True):
        present = set(np.unique(canvas).tolist()) - {0}
        assert present == {10 * (k + 1) for k in np.flatnonzero(row)}
        n_items = np.count_nonzero(canvas) // 16  # no jitter: items do not overlap
        assert 1 <= n_items <= 4 and row.sum() <= n_items


def test_make_mosaic_is_seeded_and_exact_item_counts():
    images, labels = _pool()
    first = make_mosaic(images, labels, n_samples=10, n_items=3, random_state=1)
    again = make_mosaic(images, labels, n_samples=10, n_items=3, random_state=1)
    other = make_mosaic(images, labels, n_samples=10, n_items=3, random_state=2)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert (np.count_nonzero(first[0], axis=(1, 2)) == 3 * 16).all()


def test_make_mosaic_keeps_channels_dtype_and_canvas_size():
    rng = np.random.default_rng(0)
    images = rng.random((6, 3, 5, 3)).astype(np.float32)
    X, Y = make_mosaic(
        images, [0, 1, 2] * 2, n_samples=4, canvas_size=(7, 20), n_classes=6
    )
    assert X.shape == (4, 7, 20, 3) and X.dtype == np.float32
    assert Y.shape == (4, 6) and Y[:, 3:].sum() == 0


def test_make_mosaic_jitter_stays_in_bounds():
    images = np.ones((3, 4, 4), np.uint8)
    X, _ = make_mosaic(
        images,
        [0, 0, 0],
        n_samples=300,
        grid=1,
        n_items=1,
        jitter=2,
        canvas_size=10,
        random_state=0,
    )
    tops = np.array([np.flatnonzero(canvas.any(axis=1))[0] for canvas in X])
    lefts = np.array([np.flatnonzero(canvas.any(axis=0))[0] for canvas in X])
    # Centred at 3, shifted by at most 2 pixels, every shift drawn.
    assert set(tops.tolist()) == set(lefts.tolist()) == {1, 2, 3, 4, 5}
    # A jitter larger than the canvas is clipped: the whole item stays visible.
    X, _ = make_mosaic(
        images,
        [0, 0, 0],
        n_samples=50,
        grid=1,
        n_items=1,
        jitter=50,
        canvas_size=10,
        random_state=0,
    )
    assert (X.sum(axis=(1, 2)) == 16).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_items": 5}, "n_items"),
        ({"n_items": (3, 2)}, "n_items"),
        ({"grid": 3, "n_items": (1, 9)}, "pool size"),
        ({"grid": (0, 2)}, "grid"),
        ({"jitter": -1}, "jitter"),
        ({"n_samples": 0}, "n_samples"),
        ({"canvas_size": (2, 8)}, "canvas_size"),
        ({"n_classes": 2}, "labels must lie"),
    ],
)
def test_make_mosaic_validates(kwargs, match):
    images, labels = _pool(n_classes=3, per_class=2)
    params = {"n_samples": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_mosaic(images, labels, **params)


def test_make_mosaic_validates_arrays():
    images, labels = _pool(n_classes=2, per_class=2)
    with pytest.raises(ValueError, match="shape"):
        make_mosaic(images[0], labels, n_samples=1)
    with pytest.raises(ValueError, match="one per image"):
        make_mosaic(images, labels[:-1], n_samples=1)
    with pytest.raises(ValueError, match="one per image"):
        make_mosaic(images, labels.astype(float), n_samples=1)


# -- load_fashion_mnist -----------------------------------------------------


@pytest.mark.skipif(
    not (FASHION_HOME / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="apt-get install dataset-fashion-mnist",
)
def test_load_fashion_mnist_test_subset():
    data = load_fashion_mnist("test")
    assert isinstance(data, Bunch)
    assert sorted(data) == ["DESCR", "images", "target", "target_names"]
    assert data.images.shape == (10000, 28, 28) and data.images.dtype == np.uint8
    assert data.target.shape == (10000,) and data.target.dtype == np.int64
    assert data.target_names == list(FASHION_MNIST_CLASSES)
    assert set(np.unique(data.target).tolist()) == set(range(10))
    assert data.images.flags.writeable
    assert "Fashion-MNIST" in data.DESCR and "'test' subset, 10000" in data.DESCR
    X, y = load_fashion_mnist("test", return_X_y=True)
    np.testing.assert_array_equal(X, data.images)
    np.testing.assert_array_equal(y, data.target)
    assert X.flags.writeable


def _write_idx(path, magic, array):
    header = np.array([magic, *array.shape], ">i4").tobytes()
    with gzip.open(path, "wb") as file:
        file.write(header + array.tobytes())


def test_load_fashion_mnist_from_data_home(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", 2051, images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 2049, np.uint8([3, 0, 9]))
    data = load_fashion_mnist(data_home=tmp_path)
    np.testing.assert_array_equal(data.images, images)
    assert data.target.tolist() == [3, 0, 9] and data.target.dtype == np.int64
    assert data.target_names[9] == "Ankle boot"
    assert str(tmp_path) in data.DESCR and "'train' subset, 3 images" in data.DESCR
    X, y = load_fashion_mnist(data_home=tmp_path, return_X_y=True)
    assert X.shape == (3, 28, 28) and y.tolist() == [3, 0, 9]


def test_load_fashion_mnist_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist("test", data_home=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist("valid", data_home=tmp_path)
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        _write_idx(tmp_path / name, 2049, np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_fashion_mnist("test", data_home=tmp_path)
