"""A read-only, array-like sequence of images, decoded on access.

Cross-validation splits, ``train_test_split`` and a data loader's batches
index it like an array; only the images asked for are ever decoded, by the
same Pillow path as :func:`~sk_mlc.read_image`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ._decode import SOURCE_TYPES, check_mode, check_resize, check_size, read_source


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
        if isinstance(sources, SOURCE_TYPES) or not isinstance(
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
            if not isinstance(source, SOURCE_TYPES):
                raise TypeError(
                    "LazyImages expects image paths (str or os.PathLike) or PIL "
                    f"images; element {index} is a {type(source).__name__}."
                )
        self._sources = sources
        self._mode = check_mode(mode)
        self._resize = check_resize(resize)
        size = check_size(size)
        if size is None:
            size = read_source(sources[0], self._mode, None, self._resize).shape[:2]
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
        return read_source(self._sources[index], self._mode, self._size, self._resize)

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
        subset = object.__new__(type(self))  # a subclass stays itself
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
