"""ImageLoader: image files, PIL images or pixel arrays in; one ``uint8`` array out.

Files are decoded by :class:`~sk_mlc.LazyImages`; arrays of already-decoded
pixels are validated by scikit-learn (so the estimator checks on
``n_features_in_``, NaN, emptiness and dtypes apply) and go through the same
Pillow mode conversion and resizing as a decoded file (see
:mod:`sk_mlc._decode`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from .._compat import Interval, StrOptions, fit_context, validate_params
from ._decode import (
    MODE_BY_CHANNELS,
    MODES,
    RESIZE_POLICIES,
    SOURCE_TYPES,
    check_size,
    convert_arrays,
)
from ._lazy import LazyImages


def _is_file_input(X) -> bool:
    """True for paths, PIL images or LazyImages: what Pillow decodes, not pixels."""
    if isinstance(X, (LazyImages, *SOURCE_TYPES)):
        # A single source too: LazyImages then explains to wrap it in a list.
        return True
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and X.size > 0 and isinstance(X[0], SOURCE_TYPES)
    return isinstance(X, Sequence) and len(X) > 0 and isinstance(X[0], SOURCE_TYPES)


@contextmanager
def _reading_pixels(name: str):
    """Name the estimator in NumPy's and scikit-learn's errors about ``X``.

    scikit-learn names it in some messages only (n_features, empty data), not
    in those about sparse, complex or non-numeric input, nor NumPy in ragged
    lists.
    """
    try:
        yield
    except (TypeError, ValueError) as exc:
        error = TypeError if isinstance(exc, TypeError) else ValueError
        raise error(f"{name} cannot read X as an array of images: {exc}") from exc


class ImageLoader(TransformerMixin, BaseEstimator):
    """Turn image paths, PIL images or pixel arrays into a ``uint8`` array.

    A stateless transformer that sits first in a pipeline, so that the rest of
    the pipeline (and cross-validation) can be fed file names, or arrays of
    images that need the same mode and size.

    Parameters
    ----------
    size : int or (int, int), default=None
        ``(height, width)`` of the output images; an int means a square.
        ``None`` takes the size of the first image file and resizes the
        others; an array keeps its own ``(H, W)``.
    mode : {"RGB", "L", "LA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"}, default="RGB"
        Pillow mode of the output; its number of bands is ``C``.
    resize : {"resize", "crop"}, default="resize"
        ``"resize"`` stretches to ``size``; ``"crop"`` keeps the aspect ratio
        and cuts the centre.
    lazy : bool, default=False
        Given files, return a :class:`LazyImages` that decodes images on
        access, instead of decoding everything in :meth:`transform`. An array
        is already in memory: it is converted and returned as an array.

    Attributes
    ----------
    n_features_in_ : int
        Number of values per image (``H * W * C``, or ``d`` for flat rows) of
        the array seen in :meth:`fit`; :meth:`transform` checks arrays against
        it. Only set when :meth:`fit` is given an array: files have no
        features to count.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame seen in :meth:`fit`, when they are all
        strings.

    See Also
    --------
    read_image : Decode one image.
    LazyImages : The lazy output.

    Notes
    -----
    ``X`` is an array of images when it is not a sequence of paths or PIL
    images: ``(n, H, W)`` grey images, ``(n, H, W, C)`` channels-last images
    with ``C`` of 1, 2, 3 or 4 (read as L, LA, RGB, RGBA; move the channel
    axis of channels-first arrays with ``np.moveaxis(X, 1, -1)``), or flat
    ``(n, d)`` rows, each a ``1 x d`` grey image. Pixel values follow the
    dtype:

    * ``uint8``: as is;
    * ``uint16``: 16-bit intensities, ``round(v * 255 / 65535)``, as for a
      16-bit PNG file;
    * ``bool``: ``False`` is 0 and ``True`` is 255, as Pillow's ``1`` mode;
    * any other integer or float dtype: 0-255 intensities, rounded (half to
      even) and clipped to ``[0, 255]``. Multiply ``[0, 1]`` floats by 255
      first.

    NaN or infinite values raise a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from sk_mlc import ImageLoader
    >>> images = [Image.new("RGB", (8, 8), "red"), Image.new("L", (10, 5))]
    >>> ImageLoader(size=(4, 6)).fit_transform(images).shape
    (2, 4, 6, 3)
    >>> ImageLoader(mode="L", lazy=True).transform(images)
    LazyImages(n=2, shape=(8, 8, 1), mode='L')
    >>> grey = np.array([[[0.0, 99.6], [255.0, 300.0]]])  # one 2 x 2 float image
    >>> ImageLoader().fit_transform(grey)[0, :, :, 0]
    array([[  0, 100],
           [255, 255]], dtype=uint8)
    """

    _parameter_constraints: dict = {
        "size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "mode": [StrOptions(set(MODES))],
        "resize": [StrOptions(set(RESIZE_POLICIES))],
        "lazy": ["boolean"],
    }

    def __init__(self, *, size=None, mode="RGB", resize="resize", lazy=False):
        self.size = size
        self.mode = mode
        self.resize = resize
        self.lazy = lazy

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters, and record the number of features of an array.

        Parameters
        ----------
        X : sequence of str, os.PathLike or PIL.Image.Image, LazyImages, \
                or array-like of shape (n, d), (n, H, W) or (n, H, W, C)
            Image files are not opened; an array is validated.
        y : None
            Ignored.

        Returns
        -------
        self : ImageLoader
        """
        self._checked_size()
        if _is_file_input(X):
            # Forget what an earlier fit on an array recorded: transform must
            # not compare new arrays with it.
            for attribute in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attribute, None)
        else:
            self._validate_pixels(X, reset=True)
        # fit should always return self
        return self

    def transform(self, X):
        """Decode or convert the images.

        Parameters
        ----------
        X : sequence of str, os.PathLike or PIL.Image.Image, LazyImages, \
                or array-like of shape (n, d), (n, H, W) or (n, H, W, C)
            Image files, or images already decoded into an array (layouts and
            dtype rule in the class Notes).

        Returns
        -------
        images : ndarray of shape (n_images, H, W, C), dtype uint8, or LazyImages
            A :class:`LazyImages` when ``lazy=True`` and ``X`` holds files.
        """
        # Stateless, so transform may run without fit: validate here as well.
        validate_params(self)
        size = self._checked_size()
        if _is_file_input(X):
            sources = X.sources if isinstance(X, LazyImages) else X
            images = LazyImages(sources, mode=self.mode, size=size, resize=self.resize)
            return images if self.lazy else np.asarray(images)
        pixels = self._validate_pixels(X, reset=False)
        return convert_arrays(pixels, self.mode, size, self.resize)

    def _checked_size(self) -> tuple[int, int] | None:
        # The constraints table admits any tuple or list; this checks its items.
        try:
            return check_size(self.size)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None

    def _validate_pixels(self, X, *, reset: bool) -> np.ndarray:
        """``X`` as finite, numeric ``(n, H, W, C)`` pixels.

        scikit-learn validates a flat ``(n, H * W * C)`` view, so
        ``n_features_in_`` counts the values of one image; ``reset`` records
        it (and DataFrame column names) as ``validate_data`` does.
        """
        name = type(self).__name__
        if not hasattr(X, "ndim"):  # lists, and objects with __array__ only
            with _reading_pixels(name):
                X = np.asarray(X)
        if X.ndim not in (2, 3, 4) or (
            X.ndim == 4 and X.shape[-1] not in MODE_BY_CHANNELS
        ):
            if X.ndim < 2:
                fix = "Reshape your data with X.reshape(1, -1) if it is one flat image."
            elif X.ndim == 4:
                fix = "Move the channel axis last with np.moveaxis(X, 1, -1)."
            else:
                fix = "Reshape it to one of these layouts."
            raise ValueError(
                f"{name} expects a sequence of image paths or PIL images, or an "
                "array of images of shape (n, d), (n, H, W) or (n, H, W, C) with "
                f"C in 1..4 (channels last); got an array of shape {X.shape}. {fix}"
            )
        flat = X if X.ndim == 2 else X.reshape(X.shape[0], math.prod(X.shape[1:]))
        options = {"dtype": "numeric", "ensure_all_finite": False}
        with _reading_pixels(name):
            if reset or hasattr(self, "n_features_in_"):
                flat = validate_data(self, flat, reset=reset, **options)
            else:
                # Stateless use before any fit on an array: nothing to compare
                # with, and nothing may be recorded outside fit.
                flat = check_array(flat, estimator=self, **options)
        if flat.dtype.kind == "f" and not np.isfinite(flat).all():
            n_nan = int(np.isnan(flat).sum())
            raise ValueError(
                f"{name} expects finite pixel values; X holds {n_nan} NaN and "
                f"{int(np.isinf(flat).sum())} infinite value(s). Replace them "
                "first, for instance with np.nan_to_num(X)."
            )
        shape = (flat.shape[0], 1, flat.shape[1], 1) if X.ndim == 2 else X.shape
        return flat.reshape(shape if len(shape) == 4 else (*shape, 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: transform works without fit
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        # A list of file paths is a 1-D sequence of strings, but the tags
        # describe numeric arrays to scikit-learn's checks: one_d_array would
        # make them feed 1-D numeric X, and string would make them expect an
        # object array holding a dict to be accepted.
        tags.input_tags.one_d_array = False
        tags.input_tags.string = False
        tags.transformer_tags.preserves_dtype = []  # always uint8
        return tags
