"""Behaviour of read_image, LazyImages and ImageLoader on tiny files and arrays."""

import pickle
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from sk_mlc import ImageLoader, LazyImages, read_image


def _flatten(X):
    return np.asarray(X).reshape(len(X), -1).astype(np.float32) / 255


def _save(path, image, **kwargs):
    image.save(path, **kwargs)
    return path


def _stripes(height=10, width=20):
    """Three vertical stripes (red, green, blue) so crops and resizes show."""
    array = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    array[:, :third, 0] = 255
    array[:, third : width - third, 1] = 255
    array[:, width - third :, 2] = 255
    return array


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _bad_file(tmp_path, kind):
    """A path that cannot be decoded, of the given kind."""
    image = Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    )
    if kind == "missing":
        return tmp_path / "missing.png"
    if kind == "empty":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
        return path
    if kind == "truncated-png":
        return _truncate(_save(tmp_path / "cut.png", image))
    if kind == "truncated-jpeg":
        return _truncate(_save(tmp_path / "cut.jpg", image))
    if kind == "text":
        path = tmp_path / "notes.png"
        path.write_text("not an image")
        return path
    path = tmp_path / "folder.png"
    path.mkdir()
    return path


BAD_KINDS = ["missing", "empty", "truncated-png", "truncated-jpeg", "text", "directory"]


# -- read_image: modes ------------------------------------------------------


def _palette(transparent):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.putpixel((1, 0), 1)
    if transparent:
        image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    "make, name, mode, expected",
    [
        (lambda: Image.new("1", (2, 1), 1), "bits.png", "L", [[255], [255]]),
        (lambda: Image.new("L", (2, 1), 100), "grey.png", "RGB", [[100] * 3] * 2),
        (lambda: Image.new("LA", (2, 1), (100, 7)), "la.png", "L", [[100], [100]]),
        (lambda: _palette(False), "p.png", "RGB", [[255, 0, 0], [0, 255, 0]]),
        (lambda: _palette(True), "pt.png", "RGBA", [[255, 0, 0, 0], [0, 255, 0, 255]]),
        (lambda: _palette(True), "pt2.png", "RGB", [[255, 0, 0], [0, 255, 0]]),
        (
            lambda: Image.new("RGBA", (2, 1), (1, 2, 3, 0)),
            "a.png",
            "RGB",
            [[1, 2, 3]] * 2,
        ),
        (
            lambda: Image.new("RGB", (2, 1), (0, 0, 0)),
            "rgb.png",
            "RGBA",
            [[0, 0, 0, 255]] * 2,
        ),
        (
            lambda: Image.new("CMYK", (2, 1), (0, 255, 255, 0)),
            "c.tif",
            "RGB",
            [[255, 0, 0]] * 2,
        ),
        (lambda: Image.new("RGB", (2, 1), (9, 9, 9)), "rgb.bmp", "L", [[9], [9]]),
    ],
)
def test_read_image_converts_8bit_modes(tmp_path, make, name, mode, expected):
    path = _save(tmp_path / name, make())
    image = read_image(path, mode=mode)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.array([expected], np.uint8))


def test_read_image_converts_in_memory_colour_spaces():
    red = Image.new("RGB", (2, 2), (255, 0, 0))
    for space in ["YCbCr", "HSV", "LAB"]:
        decoded = read_image(red.convert(space))
        assert np.abs(decoded.astype(int) - [255, 0, 0]).max() <= 6, space
    assert read_image(red, mode="LAB").shape == (2, 2, 3)


def test_read_image_scales_16bit_png_instead_of_clipping(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    path = _save(tmp_path / "deep.png", Image.fromarray(values))
    with Image.open(path) as image:
        assert image.mode == "I;16"
    np.testing.assert_array_equal(read_image(path, mode="L")[..., 0], [[0, 100, 255]])
    np.testing.assert_array_equal(read_image(path)[0, 1], [100, 100, 100])


def test_read_image_scales_big_endian_16bit():
    values = np.array([[0, 257 * 7, 65535]], np.uint16)
    image = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
    np.testing.assert_array_equal(read_image(image, mode="L")[..., 0], [[0, 7, 255]])


def test_read_image_int32_rule(tmp_path):
    sixteen = Image.fromarray(np.array([[0, 257 * 50, 65535]], np.int32))
    path = _save(tmp_path / "int.tif", sixteen)
    with Image.open(path) as image:
        assert image.mode == "I"
    np.testing.assert_array_equal(read_image(path, mode="L")[..., 0], [[0, 50, 255]])
    # Outside [0, 65535] the image's own range is stretched to [0, 255].
    wide = Image.fromarray(np.array([[-100, 0, 100]], np.int32))
    np.testing.assert_array_equal(read_image(wide, mode="L")[..., 0], [[0, 127, 255]])


def test_read_image_float_is_clipped_to_0_255(tmp_path):
    values = np.array([[-5.0, 100.4, 300.0, np.nan]], np.float32)
    path = _save(tmp_path / "float.tif", Image.fromarray(values))
    np.testing.assert_array_equal(
        read_image(path, mode="L")[..., 0], [[0, 100, 255, 0]]
    )


def test_read_image_applies_exif_orientation(tmp_path):
    # 16 wide, 8 high; left half black, right half white.
    array = np.zeros((8, 16, 3), np.uint8)
    array[:, 8:] = 255
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = _save(tmp_path / "rotated.jpg", image, exif=exif, quality=95)
    decoded = read_image(path, mode="L")[..., 0]
    assert decoded.shape == (16, 8)
    # Clockwise: the white right half ends at the bottom.
    assert decoded[:6].max() < 30 and decoded[10:].min() > 225
    assert read_image(path, size=(4, 2)).shape == (4, 2, 3)


def test_read_image_resize_stretches_and_crop_keeps_the_centre(tmp_path):
    path = _save(tmp_path / "stripes.png", Image.fromarray(_stripes()))
    stretched = read_image(path, size=(10, 10))
    cropped = read_image(path, size=10, resize="crop")
    assert stretched.shape == cropped.shape == (10, 10, 3)
    np.testing.assert_array_equal(stretched[5, 0], [255, 0, 0])
    np.testing.assert_array_equal(stretched[5, -1], [0, 0, 255])
    # The centre crop of a 20-wide image only sees the green middle stripe.
    np.testing.assert_array_equal(
        cropped[:, 2:8, :], np.broadcast_to([0, 255, 0], (10, 6, 3))
    )


@pytest.mark.parametrize("resize", ["resize", "crop"])
def test_read_image_large_rotated_jpeg_reaches_requested_size(tmp_path, resize):
    image = Image.fromarray(np.full((96, 160, 3), 120, np.uint8))
    exif = image.getexif()
    exif[0x0112] = 8
    path = _save(tmp_path / "big.jpg", image, exif=exif)
    decoded = read_image(path, size=(12, 5), resize=resize)
    assert decoded.shape == (12, 5, 3)
    assert np.abs(decoded.astype(int) - 120).max() <= 3


def test_read_image_does_not_shrink_a_callers_image(tmp_path):
    path = _save(tmp_path / "big.jpg", Image.new("RGB", (64, 64)))
    with Image.open(path) as image:
        assert read_image(image, size=4).shape == (4, 4, 3)
        assert image.size == (64, 64)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_read_image_bad_file_error_names_the_file(tmp_path, kind):
    path = _bad_file(tmp_path, kind)
    error = FileNotFoundError if kind == "missing" else ValueError
    with pytest.raises(error, match=path.name):
        read_image(path)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"mode": "P"}, ValueError),
        ({"size": (0, 3)}, ValueError),
        ({"size": (2, 3, 4)}, ValueError),
        ({"resize": "pad"}, ValueError),
    ],
)
def test_read_image_rejects_bad_options(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        read_image(Image.new("RGB", (2, 2)), **kwargs)


def test_read_image_rejects_other_sources():
    with pytest.raises(TypeError, match="got int"):
        read_image(3)


# -- LazyImages -------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    """Four PNG/JPEG files of two sizes, each of a distinct grey level."""
    paths = []
    for index, (width, height) in enumerate([(6, 4), (6, 4), (12, 8), (3, 2)]):
        suffix = "png" if index % 2 == 0 else "jpg"
        image = Image.new("RGB", (width, height), (40 * index,) * 3)
        paths.append(_save(tmp_path / f"{index}.{suffix}", image, quality=95))
    return paths


def test_lazy_images_looks_like_an_array(files):
    images = LazyImages(files)
    assert images.shape == (4, 4, 6, 3) and images.size == (4, 6)
    assert images.dtype == np.uint8 and images.ndim == 4 and len(images) == 4
    assert images.mode == "RGB" and images.resize == "resize"
    assert images.sources == tuple(files)
    assert repr(images) == "LazyImages(n=4, shape=(4, 6, 3), mode='RGB')"
    array = np.asarray(images)
    assert array.shape == (4, 4, 6, 3) and array.dtype == np.uint8
    # Other sizes are resized; the grey levels survive.
    np.testing.assert_allclose(array.mean(axis=(1, 2, 3)), [0, 40, 80, 120], atol=2)
    assert np.asarray(images, dtype=np.float32).dtype == np.float32
    assert [image.shape for image in images] == [(4, 6, 3)] * 4


def test_lazy_images_indexing(files):
    images = LazyImages(files, mode="L", size=(2, 3))
    full = np.asarray(images)
    assert full.shape == (4, 2, 3, 1)
    np.testing.assert_array_equal(images[-1], full[3])
    np.testing.assert_array_equal(images[np.int64(1)], full[1])
    np.testing.assert_array_equal(images[1:3], full[1:3])
    np.testing.assert_array_equal(images[::-2], full[::-2])
    np.testing.assert_array_equal(images[[3, 0]], full[[3, 0]])
    np.testing.assert_array_equal(images[np.array([2, 2])], full[[2, 2]])
    np.testing.assert_array_equal(
        images[np.array([True, False, False, True])], full[[0, 3]]
    )
    assert images[[]].shape == (0, 2, 3, 1)
    for key in [4, -5]:
        with pytest.raises(IndexError, match="out of range"):
            images[key]
    for key in [1.5, "a", (0, 1)]:
        with pytest.raises(IndexError):
            images[key]


def test_lazy_images_subsets_stay_lazy(files):
    images = LazyImages(files, mode="L", size=(2, 3))
    subset = images[[3, 0]]
    assert isinstance(subset, LazyImages)
    assert subset.sources == (images.sources[3], images.sources[0])
    assert (subset.size, subset.mode) == (images.size, images.mode)


def test_lazy_images_works_with_sklearn_indexing(files):
    images = LazyImages(files)
    X_train, X_test, y_train, y_test = train_test_split(
        images, np.arange(4), test_size=2, random_state=0
    )
    assert isinstance(X_train, LazyImages)  # splitting decodes nothing
    assert X_train.shape == (2, 4, 6, 3)
    np.testing.assert_array_equal(X_test, np.asarray(images)[y_test])


def test_lazy_images_pickles_sources_not_pixels(files):
    images = LazyImages(files, size=(200, 200))
    payload = pickle.dumps(images)
    assert len(payload) < 2000  # one decoded image alone is 120 kB
    restored = pickle.loads(payload)
    assert restored.shape == images.shape
    np.testing.assert_array_equal(restored[[0, 3]], images[[0, 3]])


def test_lazy_images_accepts_pil_images_and_string_arrays(files):
    in_memory = LazyImages([Image.new("L", (5, 3), 7), Image.new("RGB", (1, 1))])
    assert in_memory.shape == (2, 3, 5, 3)
    assert pickle.loads(pickle.dumps(in_memory))[0][0, 0].tolist() == [7, 7, 7]
    assert LazyImages(np.array([str(path) for path in files])).shape[0] == 4


@pytest.mark.parametrize(
    "sources, error, match",
    [
        ([], ValueError, "at least one"),
        ("a.png", TypeError, "single image"),
        (["a.png", 3], TypeError, "element 1 is a int"),
    ],
)
def test_lazy_images_validates_sources(sources, error, match):
    with pytest.raises(error, match=match):
        LazyImages(sources)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_lazy_images_bad_file_error_names_the_file(tmp_path, files, kind):
    bad = _bad_file(tmp_path, kind)
    images = LazyImages([files[0], bad])
    with pytest.raises((ValueError, FileNotFoundError), match=bad.name):
        images[1]
    with pytest.raises((ValueError, FileNotFoundError), match=bad.name):
        np.asarray(images)
    # The first image is decoded up front to learn the size.
    with pytest.raises((ValueError, FileNotFoundError), match=bad.name):
        LazyImages([bad, files[0]])


# -- ImageLoader ------------------------------------------------------------


def test_image_loader_transforms_eagerly_or_lazily(files):
    loader = ImageLoader(size=(3, 5), mode="L")
    assert loader.fit(files) is loader
    X = loader.transform(files)
    assert isinstance(X, np.ndarray) and X.shape == (4, 3, 5, 1) and X.dtype == np.uint8
    lazy = clone(loader).set_params(lazy=True).transform(files)
    assert isinstance(lazy, LazyImages)
    np.testing.assert_array_equal(np.asarray(lazy), X)
    # A LazyImages input is re-read with the loader's own options.
    assert ImageLoader(size=2).transform(lazy).shape == (4, 2, 2, 3)


def test_image_loader_is_stateless_and_clonable(files):
    loader = ImageLoader(size=4, resize="crop", lazy=True)
    assert clone(loader).get_params() == loader.get_params()
    assert ImageLoader().transform(files).shape == (4, 4, 6, 3)  # no fit needed
    tags = loader.__sklearn_tags__()
    assert not tags.requires_fit and tags.input_tags.two_d_array


@pytest.mark.parametrize(
    "params",
    [{"size": 0}, {"size": (2, 0)}, {"mode": "P"}, {"resize": "x"}, {"lazy": 1}],
)
def test_image_loader_validates_params(files, params):
    with pytest.raises(ValueError):
        ImageLoader(**params).fit(files)
    with pytest.raises(ValueError):
        ImageLoader(**params).transform(files)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_image_loader_bad_file_error_names_the_file(tmp_path, files, kind):
    bad = _bad_file(tmp_path, kind)
    with pytest.raises((ValueError, FileNotFoundError), match=bad.name):
        ImageLoader(size=4).fit_transform([files[0], bad])


@pytest.mark.parametrize("lazy", [False, True])
def test_image_loader_first_in_a_pipeline(tmp_path, lazy):
    paths, y = [], []
    for index in range(8):
        label = index % 2
        image = Image.new("RGB", (10 + index, 8), (200 * label + index,) * 3)
        paths.append(_save(tmp_path / f"{index}.png", image))
        y.append(label)
    pipeline = Pipeline(
        [
            ("load", ImageLoader(size=4, lazy=lazy)),
            ("flatten", FunctionTransformer(_flatten)),
            ("clf", LogisticRegression()),
        ]
    )
    assert pipeline.fit(paths, y).score(paths, y) == 1.0
    assert cross_val_score(clone(pipeline), paths, y, cv=2).mean() == 1.0


# -- ImageLoader on arrays of decoded images ---------------------------------


GREY = np.array([[[0, 50, 100], [150, 200, 255]]], np.uint8)  # one 2 x 3 image
RGB = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], np.uint8)


@pytest.mark.parametrize(
    "layout",
    [GREY, GREY[..., None], GREY[:, None, 0], list(GREY)],
    ids=["(n, H, W)", "(n, H, W, 1)", "(n, d)", "list of (H, W)"],
)
def test_image_loader_grey_array_to_rgb_repeats_the_channel(layout):
    converted = ImageLoader().fit_transform(layout)
    expected = np.asarray(layout, np.uint8).reshape(converted.shape[:3])
    assert converted.dtype == np.uint8 and converted.shape[-1] == 3
    for channel in range(3):
        np.testing.assert_array_equal(converted[..., channel], expected)


def test_image_loader_flat_rows_are_one_by_d_grey_images():
    rows = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8)
    converted = ImageLoader(mode="L").fit_transform(rows)
    np.testing.assert_array_equal(converted, rows.reshape(2, 1, 4, 1))


def test_image_loader_rgb_array_to_grey_is_pillows_luma():
    grey = ImageLoader(mode="L").transform(RGB)[0, :, :, 0]
    # ITU-R 601-2: L = 0.299 R + 0.587 G + 0.114 B, as Pillow converts files.
    np.testing.assert_array_equal(grey, [[76, 150], [29, 18]])


@pytest.mark.parametrize(
    "pixels, mode, expected",
    [
        (RGB[:, :1, :1], "RGBA", [255, 0, 0, 255]),
        (np.array([[[[9, 0]]]], np.uint8), "L", [9]),  # LA: alpha is dropped
        (np.array([[[[9, 8, 7, 0]]]], np.uint8), "RGB", [9, 8, 7]),  # RGBA
        (np.array([[[3]]], np.uint8), "LA", [3, 255]),
    ],
)
def test_image_loader_reads_one_to_four_channels_as_l_la_rgb_rgba(
    pixels, mode, expected
):
    converted = ImageLoader(mode=mode).transform(pixels)
    np.testing.assert_array_equal(converted.reshape(-1), expected)


@pytest.mark.parametrize(
    "values, expected",
    [
        # Floats and wide integers are 0-255 intensities: rounded half to even,
        # then clipped.
        (np.array([[-5.0, 0.4, 0.6, 100.5, 254.5, 300.0]]), [0, 0, 1, 100, 254, 255]),
        (np.array([[-5.0, 99.6]], np.float32), [0, 100]),
        (np.array([[-1, 7, 256]], np.int64), [0, 7, 255]),
        # uint16 is 16-bit, as a 16-bit PNG; bool is Pillow's "1" mode.
        (np.array([[0, 257 * 100, 65535]], np.uint16), [0, 100, 255]),
        (np.array([[False, True]]), [0, 255]),
    ],
    ids=["float64", "float32", "int64", "uint16", "bool"],
)
def test_image_loader_dtype_rule(values, expected):
    converted = ImageLoader(mode="L").fit_transform(values)
    assert converted.dtype == np.uint8
    np.testing.assert_array_equal(converted.reshape(-1), expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_image_loader_rejects_nan_and_inf(bad):
    pixels = np.array([[1.0, bad]])
    for method in ["fit", "transform"]:
        with pytest.raises(ValueError, match="ImageLoader expects finite pixel"):
            getattr(ImageLoader(), method)(pixels)


@pytest.mark.parametrize(
    "shape, hint",
    [((3,), "reshape"), ((2, 4, 4, 5), "moveaxis"), ((1, 2, 2, 2, 3), "layouts")],
)
def test_image_loader_shape_errors_name_expected_and_received(shape, hint):
    received = re.escape(str(shape))
    with pytest.raises(ValueError, match=rf"ImageLoader expects .*{received}.*{hint}"):
        ImageLoader().transform(np.zeros(shape))


def test_image_loader_non_numeric_array_error_names_the_estimator():
    with pytest.raises(ValueError, match="ImageLoader cannot read X"):
        ImageLoader().transform([[1, 2], [3]])
    with pytest.raises(TypeError, match="ImageLoader cannot read X"):
        ImageLoader().transform(np.array([[1, {"a": 1}]], dtype=object))


@pytest.mark.parametrize("resize", ["resize", "crop"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_image_loader_same_pixels_as_files_or_array_give_the_same_output(
    tmp_path, resize, mode
):
    images = [_stripes(10, 20), _stripes(10, 20)[::-1, ::-1]]
    paths = [
        _save(tmp_path / f"{i}.png", Image.fromarray(a)) for i, a in enumerate(images)
    ]
    loader = ImageLoader(size=(5, 7), mode=mode, resize=resize)
    from_files = loader.fit_transform(paths)
    from_array = loader.fit_transform(np.stack(images))
    assert from_array.shape == (2, 5, 7, len(mode))
    np.testing.assert_array_equal(from_array, from_files)


def test_image_loader_16bit_array_matches_16bit_file(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 12345]], np.uint16)
    path = _save(tmp_path / "deep.png", Image.fromarray(values))
    loader = ImageLoader(mode="L")
    np.testing.assert_array_equal(
        loader.transform(values[None]), loader.transform([path])
    )


def test_image_loader_array_size_resizes_and_lazy_returns_the_array():
    loader = ImageLoader(size=(4, 6), lazy=True)
    converted = loader.fit_transform(GREY)
    assert isinstance(converted, np.ndarray)  # nothing to decode lazily
    assert converted.shape == (1, 4, 6, 3)
    # A constant image stays constant through bilinear resizing.
    constant = ImageLoader(size=3, mode="L").transform(np.full((2, 5, 8), 77))
    assert constant.shape == (2, 3, 3, 1) and (constant == 77).all()


def test_image_loader_counts_features_of_arrays_only(files):
    loader = ImageLoader().fit(np.zeros((3, 4, 5, 2)))
    assert loader.n_features_in_ == 4 * 5 * 2
    with pytest.raises(ValueError, match="X has 20 features, but ImageLoader"):
        loader.transform(np.zeros((3, 4, 5)))
    assert loader.transform(files).shape == (4, 4, 6, 3)  # files are not counted
    # A fit on files forgets the array: any array is taken again.
    assert not hasattr(loader.fit(files), "n_features_in_")
    assert loader.transform(np.zeros((1, 4, 5))).shape == (1, 4, 5, 3)


def test_image_loader_takes_dataframes_and_records_their_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [0, 10], "b": [20.0, 30.0]})
    loader = ImageLoader(mode="L").fit(frame)
    assert list(loader.feature_names_in_) == ["a", "b"]
    np.testing.assert_array_equal(
        loader.transform(frame)[..., 0], [[[0, 20]], [[10, 30]]]
    )
