"""Pixels into ``uint8`` ``(H, W, C)`` arrays through Pillow: files and arrays.

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

Arrays of decoded images (:func:`convert_arrays`) follow the same rules, keyed
by dtype instead of mode: ``uint8`` is taken as is, ``uint16`` by the 16-bit
rule, ``bool`` as Pillow's ``1`` mode (``True`` is 255), and every other
integer or float dtype as 0-255 intensities, rounded and clipped (the ``F``
rule, without the NaN rule: callers reject NaN first). One to four channels
are read as ``L``, ``LA``, ``RGB``, ``RGBA``, then converted and resized by the
same Pillow calls as a decoded file.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np
from PIL import Image, ImageOps

# 8-bit-per-band modes only: the output is always uint8.
MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"})
RESIZE_POLICIES = frozenset({"resize", "crop"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Pillow cannot convert premultiplied modes to most targets; unpremultiply first.
_PREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}
# The Pillow mode an array of decoded pixels is read as, by its channel count.
MODE_BY_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_ORIENTATION = 0x0112
SOURCE_TYPES = (str, os.PathLike, Image.Image)


def check_mode(mode) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}; got {mode!r}.")
    return mode


def check_resize(resize) -> str:
    if resize not in RESIZE_POLICIES:
        raise ValueError(f"resize must be 'resize' or 'crop'; got {resize!r}.")
    return resize


def check_size(size) -> tuple[int, int] | None:
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


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """``round(v * 255 / 65535)`` in integer arithmetic, for values in [0, 65535]."""
    return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)


def _scale_deep(image: Image.Image) -> Image.Image:
    """A 16/32-bit or float image as an 8-bit ``L`` image (rules in the module doc)."""
    values = np.asarray(image)
    if image.mode == "F":
        scaled = np.clip(np.nan_to_num(values, nan=0.0), 0, 255).round()
    else:
        values = values.astype(np.int64)
        low, high = int(values.min()), int(values.max())
        if image.mode in _SIXTEEN_BIT or (low >= 0 and high <= 65535):
            scaled = _sixteen_to_eight(values)
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


def _convert(
    image: Image.Image, mode: str, size: tuple[int, int] | None, resize: str
) -> np.ndarray:
    """An upright Pillow image at ``mode`` and ``size``, as ``uint8 (H, W, C)``."""
    image = _to_mode(image, mode)
    if size is not None and (image.height, image.width) != size:
        target = (size[1], size[0])  # Pillow sizes are (width, height)
        if resize == "crop":
            image = ImageOps.fit(image, target, method=Image.Resampling.BILINEAR)
        else:
            image = image.resize(target, Image.Resampling.BILINEAR)
    array = np.array(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


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
    return _convert(ImageOps.exif_transpose(image), mode, size, resize)


def read_source(
    source, mode: str, size: tuple[int, int] | None, resize: str
) -> np.ndarray:
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


def decode_error(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be fully decoded, or ``None`` when it can."""
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Finite pixel values of any real dtype as uint8 (the rule in the module doc)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    if pixels.dtype == np.uint16:
        return _sixteen_to_eight(pixels)
    # Clip before the cast: casting 300 or -1 to uint8 would wrap around.
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def convert_arrays(
    images: np.ndarray, mode: str, size: tuple[int, int] | None, resize: str
) -> np.ndarray:
    """Decoded ``(n, H, W, C)`` pixels, ``C`` in 1..4, as ``uint8 (n, H', W', C')``.

    ``C'`` is the number of bands of ``mode``; ``(H', W')`` is ``size``, or
    ``(H, W)`` when ``size`` is None. Values must be finite.
    """
    n, height, width, channels = images.shape
    source_mode = MODE_BY_CHANNELS[channels]
    out_size = size or (height, width)
    out = np.empty((n, *out_size, Image.getmodebands(mode)), dtype=np.uint8)
    for row in range(n):
        pixels = _to_uint8(images[row])
        if source_mode == mode and out_size == (height, width):
            out[row] = pixels  # what Pillow would give back, without the copies
        else:
            # fromarray reads (H, W) as L and (H, W, 2/3/4) as LA/RGB/RGBA.
            image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
            out[row] = _convert(image, mode, size, resize)
    return out


def read_image(source, *, mode="RGB", size=None, resize="resize"):
    """Decode one image into a ``uint8`` array of shape ``(H, W, C)``.

    The EXIF orientation is applied, the image is converted to ``mode`` (deep
    16/32-bit and float images are scaled to 8 bits, see :mod:`sk_mlc._decode`)
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
    return read_source(source, check_mode(mode), check_size(size), check_resize(resize))
