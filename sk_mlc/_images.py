"""Decode image files into ``uint8`` ``(H, W, C)`` arrays, eagerly or lazily.

Every Pillow mode is converted to the requested 8-bit ``mode``. Pillow's own
conversions clip deep images to 8 bits, which turns a 16-bit scan into a white
sheet, so deep modes are scaled here first:

* ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` (16-bit): ``round(v * 255 / 65535)``;
* ``I`` (32-bit int): the same 16-bit rule when every value lies in
  ``[0, 65535]`` (16-bit PNG and TIFF files decode to ``I``); otherwise the
  image's own ``[min, max]`` is stretched to ``[0, 255]``;
* ``F`` (32-bit float): values are taken as 0-255 intensities, rounded and
  clipped to ``[0, 255]``; NaN becomes 0. Rescale ``[0, 1]`` floats yourself.

Alpha is dropped (not composited) when the target mode has none, as Pillow does.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps
from sklearn.base import BaseEstimator, TransformerMixin

from ._compat import Interval, StrOptions, _fit_context

# 8-bit-per-band modes only: the output is always uint8.
_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"})
_RESIZE = frozenset({"resize", "crop"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Pillow cannot convert premultiplied modes to most targets; unpremultiply first.
_PREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}
_ORIENTATION = 0x0112
_SOURCE_TYPES = (str, os.PathLike, Image.Image)


def _check_mode(mode) -> str:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {sorted(_MODES)}; got {mode!r}.")
    return mode


def _check_resize(resize) -> str:
    if resize not in _RESIZE:
        raise ValueError(f"resize must be 'resize' or 'crop'; got {resize!r}.")
    return resize


def _check_size(size) -> tuple[int, int] | None:
    """``None``, an int (square) or ``(height, width)`` -> ``(height, width)``."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, numbers.Integral) else size
    if (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in pair
        )
        and min(pair) >= 1
    ):
        return int(pair[0]), int(pair[1])
    raise ValueError(
        f"size must be None, a positive int or a (height, width) pair of positive "
        f"ints; got {size!r}."
    )


def _scale_deep(image: Image.Image) -> Image.Image:
    """A 16/32-bit or float image as an 8-bit ``L`` image (rules in the module doc)."""
    values = np.asarray(image)
    if image.mode == "F":
        scaled = np.clip(np.nan_to_num(values, nan=0.0), 0, 255).round()
    else:
        values = values.astype(np.int64)
        low, high = int(values.min()), int(values.max())
        if image.mode in _SIXTEEN_BIT or (low >= 0 and high <= 65535):
            scaled = (values * 255 + 32767) // 65535
        else:
            scaled = (values - low) * 255 // max(high - low, 1)
    return Image.fromarray(scaled.astype(np.uint8))


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode:
        return image
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        image = _scale_deep(image)
    elif image.mode in ("P", "PA") and (
        image.mode == "PA" or "transparency" in image.info
    ):
        # Going through RGBA keeps the palette transparency and avoids Pillow's
        # "Palette images with Transparency" warning on a direct conversion.
        image = image.convert("RGBA")
    image = image.convert(_PREMULTIPLIED.get(image.mode, image.mode))
    try:
        return image.convert(mode)
    except ValueError:
        # Pillow lacks some direct conversions (LAB -> L, ...); RGB reaches all.
        return image.convert("RGB").convert(mode)


def _draft_size(image: Image.Image, size: tuple[int, int], resize: str):
    """The smallest raw ``(W, H)`` a JPEG may be decoded at and still cover ``size``."""
    height, width = size
    if image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
        # The EXIF rotation swaps axes after decoding.
        height, width = width, height
    if resize == "crop":
        scale = max(width / image.width, height / image.height)
        return math.ceil(image.width * scale), math.ceil(image.height * scale)
    return width, height


def _decode(
    image: Image.Image,
    mode: str,
    size: tuple[int, int] | None,
    resize: str,
    draft: bool,
) -> np.ndarray:
    # Never draft a caller's image: draft() shrinks it in place.
    if draft and size is not None and image.format == "JPEG":
        # DCT-domain downscaling: decoding a large JPEG to a small size is then
        # several times faster than a full decode followed by a resize.
        image.draft(None, _draft_size(image, size, resize))
    # load() must run inside the caller's try: truncation is only seen here.
    image.load()
    image = _to_mode(ImageOps.exif_transpose(image), mode)
    if size is not None and (image.height, image.width) != size:
        target = (size[1], size[0])  # Pillow sizes are (width, height)
        if resize == "crop":
            image = ImageOps.fit(image, target, method=Image.Resampling.BILINEAR)
        else:
            image = image.resize(target, Image.Resampling.BILINEAR)
    array = np.array(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def _read(source, mode: str, size: tuple[int, int] | None, resize: str) -> np.ndarray:
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or f"<in-memory {source.mode} image>"
        try:
            return _decode(source, mode, size, resize, draft=False)
        except Exception as exc:
            raise ValueError(f"Cannot decode image {name!r}: {exc}") from exc
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "Expected an image path (str or os.PathLike) or a PIL.Image.Image; "
            f"got {type(source).__name__}."
        )
    path = os.fspath(source)
    try:
        with Image.open(path) as image:
            return _decode(image, mode, size, resize, draft=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Image file not found: {path!r}.") from exc
    except IsADirectoryError as exc:
        raise ValueError(f"Cannot decode image {path!r}: it is a directory.") from exc
    # Pillow plugins raise a zoo of errors on corrupt data (OSError, SyntaxError,
    # struct.error, EOFError, ...): report them all as one error naming the file.
    except Exception as exc:
        raise ValueError(f"Cannot decode image {path!r}: {exc}") from exc


def _decode_error(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be fully decoded, or ``None`` when it can."""
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def read_image(source, *, mode="RGB", size=None, resize="resize"):
    """Decode one image into a ``uint8`` array of shape ``(H, W, C)``.

    The EXIF orientation is applied, the image is converted to ``mode`` (deep
    16/32-bit and float images are scaled to 8 bits, see :mod:`sk_mlc._images`)
    and, when ``size`` is given, resized with bilinear interpolation.

    Parameters
    ----------
    source : str, os.PathLike or PIL.Image.Image
        The image file, or an image already opened with Pillow.
    mode : {"RGB", "L", "LA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"}, default="RGB"
        Pillow mode of the output; ``C`` is its number of bands ("L" gives 1).
    size : int or (int, int), default=None
        Output ``(height, width)`` (NumPy order); an int means a square.
        ``None`` keeps the decoded size.
    resize : {"resize", "crop"}, default="resize"
        ``"resize"`` stretches the image to ``size``; ``"crop"`` scales it so
        that it covers ``size`` and cuts the centre, keeping the aspect ratio.

    Returns
    -------
    image : ndarray of shape (H, W, C), dtype uint8

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be decoded (empty, truncated, not an image, a
        directory); the message names the file.

    See Also
    --------
    LazyImages : A sequence of images decoded on access.
    ImageLoader : The same decoding as a scikit-learn transformer.

    Examples
    --------
    >>> from PIL import Image
    >>> from sk_mlc import read_image
    >>> image = Image.new("RGB", (6, 4), color=(255, 0, 0))  # width 6, height 4
    >>> read_image(image).shape
    (4, 6, 3)
    >>> read_image(image, mode="L", size=(2, 3)).shape
    (2, 3, 1)
    >>> deep = Image.new("I;16", (2, 2), color=65535)
    >>> int(read_image(deep, mode="L").max())
    255
    """
    return _read(source, _check_mode(mode), _check_size(size), _check_resize(resize))


class LazyImages:
    """A read-only, array-like sequence of images decoded on access.

    An integer index decodes one image; a slice, a list of ints or a mask gives
    another ``LazyImages`` (so cross-validation splits stay lazy), decoded by
    ``np.asarray`` or :meth:`decode`. Only the requested images are decoded,
    so a data loader can stream a
    folder of files batch by batch. Pickling keeps the sources and options, not
    pixels, which makes it cheap to send to worker processes.

    Parameters
    ----------
    sources : sequence of str, os.PathLike or PIL.Image.Image
        The images, in order.
    mode : {"RGB", "L", "LA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"}, default="RGB"
        Pillow mode of every image; ``C`` is its number of bands.
    size : int or (int, int), default=None
        ``(height, width)`` of every image. ``None`` takes the size of the
        first image (decoded once here); other sizes are then resized.
    resize : {"resize", "crop"}, default="resize"
        How an image of another size is brought to ``size``, see
        :func:`read_image`.

    Attributes
    ----------
    shape : tuple of int
        ``(n_images, height, width, channels)``.
    dtype : numpy.dtype
        Always ``uint8``.
    ndim : int
        Always 4.

    See Also
    --------
    read_image : Decode one image.
    ImageLoader : Build this (``lazy=True``) inside a pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sk_mlc import LazyImages
    >>> images = LazyImages([Image.new("L", (4, 3)), Image.new("RGB", (8, 6))])
    >>> images
    LazyImages(n=2, shape=(3, 4, 3), mode='RGB')
    >>> images[1].shape, images[[0, 1]], np.asarray(images[[0, 1]]).shape
    ((3, 4, 3), LazyImages(n=2, shape=(3, 4, 3), mode='RGB'), (2, 3, 4, 3))
    """

    def __init__(self, sources, *, mode="RGB", size=None, resize="resize"):
        if isinstance(sources, _SOURCE_TYPES) or not isinstance(
            sources, (Sequence, np.ndarray)
        ):
            raise TypeError(
                "LazyImages expects a sequence of image paths or PIL images; got "
                f"{type(sources).__name__}. Wrap a single image in a list."
            )
        sources = tuple(sources)
        if not sources:
            raise ValueError("LazyImages needs at least one image; got none.")
        for index, source in enumerate(sources):
            if not isinstance(source, _SOURCE_TYPES):
                raise TypeError(
                    "LazyImages expects image paths (str or os.PathLike) or PIL "
                    f"images; element {index} is a {type(source).__name__}."
                )
        self._sources = sources
        self._mode = _check_mode(mode)
        self._resize = _check_resize(resize)
        size = _check_size(size)
        if size is None:
            size = _read(sources[0], self._mode, None, self._resize).shape[:2]
        self._size = size

    sources = property(lambda self: self._sources, doc="The images, as a tuple.")
    mode = property(lambda self: self._mode, doc="Pillow mode of every image.")
    size = property(lambda self: self._size, doc="Resolved ``(height, width)``.")
    resize = property(lambda self: self._resize, doc="Resize policy.")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self._sources), *self._size, Image.getmodebands(self._mode))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        n, *image_shape = self.shape
        return f"LazyImages(n={n}, shape={tuple(image_shape)}, mode={self._mode!r})"

    def _one(self, index) -> np.ndarray:
        n = len(self._sources)
        if not -n <= index < n:
            raise IndexError(f"Index {index} is out of range for {n} images.")
        return _read(self._sources[index], self._mode, self._size, self._resize)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            # scikit-learn's _safe_indexing asks for images[rows, ...].
            if not key or any(part is not Ellipsis for part in key[1:]):
                raise IndexError(
                    "LazyImages is indexed along its first axis only; got "
                    f"{key!r}. Index the decoded array for pixels."
                )
            key = key[0]
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            return self._one(int(key))
        if isinstance(key, slice):
            indices = range(*key.indices(len(self)))
        else:
            indices = np.asarray(key)
            if indices.dtype == bool and indices.shape == (len(self),):
                indices = np.flatnonzero(indices)
            elif indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
                raise IndexError(
                    "LazyImages accepts an int, a slice, a boolean mask of length "
                    f"{len(self)} or a 1-D array of ints; got {key!r}."
                )
        return self._subset(indices)

    def _subset(self, indices) -> LazyImages:
        """The images at ``indices``, still undecoded, with the resolved size."""
        n = len(self._sources)
        for index in indices:
            if not -n <= int(index) < n:
                raise IndexError(f"Index {index} is out of range for {n} images.")
        subset = object.__new__(LazyImages)
        subset._sources = tuple(self._sources[int(index)] for index in indices)
        subset._mode, subset._size = self._mode, self._size
        subset._resize = self._resize
        return subset

    def decode(self) -> np.ndarray:
        """Decode every image into a ``uint8`` array ``(n, H, W, C)``."""
        out = np.empty(self.shape, dtype=np.uint8)
        for row in range(len(self)):
            out[row] = self._one(row)
        return out

    def __iter__(self):
        for index in range(len(self)):
            yield self._one(index)

    def __array__(self, dtype=None, copy=None):
        array = self.decode()
        return array if dtype is None else array.astype(dtype, copy=False)


class ImageLoader(TransformerMixin, BaseEstimator):
    """Turn a sequence of image paths or PIL images into a ``uint8`` array.

    A stateless transformer that sits first in a pipeline, so that the rest of
    the pipeline (and cross-validation) can be fed file names.

    Parameters
    ----------
    size : int or (int, int), default=None
        ``(height, width)`` of the output images; an int means a square.
        ``None`` takes the size of the first image and resizes the others.
    mode : {"RGB", "L", "LA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"}, default="RGB"
        Pillow mode of the output; its number of bands is ``C``.
    resize : {"resize", "crop"}, default="resize"
        ``"resize"`` stretches to ``size``; ``"crop"`` keeps the aspect ratio
        and cuts the centre.
    lazy : bool, default=False
        Return a :class:`LazyImages` that decodes images on access, instead of
        decoding everything in :meth:`transform`.

    See Also
    --------
    read_image : Decode one image.
    LazyImages : The lazy output.

    Examples
    --------
    >>> from PIL import Image
    >>> from sk_mlc import ImageLoader
    >>> images = [Image.new("RGB", (8, 8), "red"), Image.new("L", (10, 5))]
    >>> ImageLoader(size=(4, 6)).fit_transform(images).shape
    (2, 4, 6, 3)
    >>> ImageLoader(mode="L", lazy=True).transform(images)
    LazyImages(n=2, shape=(8, 8, 1), mode='L')
    """

    _parameter_constraints: dict = {
        "size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "mode": [StrOptions(set(_MODES))],
        "resize": [StrOptions(set(_RESIZE))],
        "lazy": ["boolean"],
    }

    def __init__(self, *, size=None, mode="RGB", resize="resize", lazy=False):
        self.size = size
        self.mode = mode
        self.resize = resize
        self.lazy = lazy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters; nothing is learned.

        Parameters
        ----------
        X : sequence of str, os.PathLike or PIL.Image.Image
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageLoader
        """
        _check_size(self.size)
        # fit should always return self
        return self

    def transform(self, X):
        """Decode the images.

        Parameters
        ----------
        X : sequence of str, os.PathLike or PIL.Image.Image, or LazyImages

        Returns
        -------
        images : ndarray of shape (n_images, H, W, C), dtype uint8, or LazyImages
            A :class:`LazyImages` when ``lazy=True``.
        """
        # Stateless, so transform may run without fit: validate here as well.
        self._validate_params()
        sources = X.sources if isinstance(X, LazyImages) else X
        images = LazyImages(sources, mode=self.mode, size=self.size, resize=self.resize)
        return images if self.lazy else np.asarray(images)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags
