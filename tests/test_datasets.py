"""Behaviour of the dataset loaders and of make_mosaic, on tiny files in tmp_path."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sk_mlc import LazyImages
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
    paths, y, class_names = load_image_folder(folder)
    assert class_names == ["cat", "dog", "emu"]
    rel = [path.relative_to(folder).as_posix() for path in paths]
    assert rel == ["cat/2.png", "cat/x/1.bmp", "dog/a.JPG", "dog/b.png", "emu/0.png"]
    assert y.dtype == np.int64 and y.tolist() == [0, 0, 1, 1, 2]
    assert all(isinstance(path, Path) for path in paths)
    assert LazyImages(paths).shape == (5, 4, 4, 3)


def test_load_image_folder_extensions(folder):
    paths, y, _ = load_image_folder(str(folder), extensions=["png", ".BMP"])
    assert [path.name for path in paths] == ["2.png", "1.bmp", "b.png", "0.png"]
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
    paths, _, _ = load_image_folder(folder)  # no image is opened
    images = LazyImages(paths)
    for name in bad[:3]:
        index = [path.name for path in paths].index(name)
        with pytest.raises(ValueError, match=name):
            images[index]
    (folder / "dog" / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        load_image_folder(folder)


def test_load_image_folder_skip_warns_with_the_names(folder):
    bad = _corrupt(folder / "dog")
    with pytest.warns(UserWarning, match="Skipped 4 unreadable") as record:
        paths, y, class_names = load_image_folder(folder, on_error="skip")
    message = str(record[0].message)
    assert all(name in message for name in bad)
    assert len(paths) == len(y) == 5 and class_names == ["cat", "dog", "emu"]
    assert np.asarray(LazyImages(paths)).shape == (5, 4, 4, 3)


# -- load_image_csv ---------------------------------------------------------


@pytest.fixture
def planet(tmp_path):
    images = tmp_path / "images"
    for name in ["t0.jpg", "t1.jpg", "t2.PNG", "t3.png"]:
        _image(images / name)
    csv = tmp_path / "labels.csv"
    csv.write_text("image_name,tags\nt0,haze primary\nt1,clear\nt2,\nt3.png,primary\n")
    return csv, images


def test_load_image_csv_resolves_ids_with_and_without_extension(planet):
    csv, images = planet
    paths, Y, label_names = load_image_csv(csv, images)
    assert [path.name for path in paths] == ["t0.jpg", "t1.jpg", "t2.PNG", "t3.png"]
    assert label_names == ["clear", "haze", "primary"]
    assert Y.dtype == np.int64
    assert Y.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]]


def test_load_image_csv_explicit_extension_and_columns(tmp_path, planet):
    _, images = planet
    csv = tmp_path / "other.csv"
    # A BOM, as spreadsheets write it, must not rename the first column.
    csv.write_text("\ufeffid,labels,extra\nt3,a b,1\nt2,b,2\n", encoding="utf-8")
    paths, Y, names = load_image_csv(
        csv, images, id_column="id", tags_column="labels", extension="png"
    )
    assert [path.name for path in paths] == ["t3.png", "t2.PNG"]
    assert names == ["a", "b"] and Y.tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match=r"tried extensions \['\.png'\]\): 't0'"):
        load_image_csv(Path(csv).with_name("labels.csv"), images, extension=".png")


def test_load_image_csv_missing_file_and_columns(tmp_path, planet):
    csv, images = planet
    csv.write_text(csv.read_text() + "ghost,clear\n")
    with pytest.raises(ValueError, match=f"{images}.*'ghost'"):
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
    rows = "".join(f"{name},rare\n" for name in bad)
    csv.write_text(csv.read_text() + rows + "ghost,clear\n")
    with pytest.raises(ValueError, match="ghost"):
        load_image_csv(csv, images)
    with pytest.warns(UserWarning) as record:
        paths, Y, names = load_image_csv(csv, images, on_error="skip")
    messages = " ".join(str(warning.message) for warning in record)
    assert "ghost" in messages and all(name in messages for name in bad)
    assert len(paths) == len(Y) == 4
    # Tags of dropped rows still name a (now empty) column.
    assert names == ["clear", "haze", "primary", "rare"] and Y[:, 3].sum() == 0


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
    X, y = load_fashion_mnist("test")
    assert X.shape == (10000, 28, 28) and X.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert set(np.unique(y).tolist()) == set(range(len(FASHION_MNIST_CLASSES)))
    assert X.flags.writeable


def test_load_fashion_mnist_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist("test", data_home=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist("valid", data_home=tmp_path)
    header = np.array([2049, 1, 28, 28], ">i4").tobytes()
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        with gzip.open(tmp_path / name, "wb") as file:
            file.write(header + bytes(28 * 28))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_fashion_mnist("test", data_home=tmp_path)
