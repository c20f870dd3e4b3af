"""Fashion-MNIST read from the idx files of Debian's ``dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

#: The ten class names of Fashion-MNIST, in the order of its labels 0..9.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_DESCR = """\
Fashion-MNIST
-------------
Zalando's article images (Xiao, Rasul and Vollgraf, 2017, arXiv:1708.07747;
MIT licence): 70,000 grey 28x28 images of 10 kinds of clothing, 7,000 of each,
split into 60,000 training and 10,000 test images. Pixels are uint8, light
garments on a black (0) background; a drop-in replacement for MNIST digits.

This is the {subset!r} subset, {n} images, read from {images} and {labels}.
"""
_PREFIXES = {"train": "train", "test": "t10k"}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _read_idx(path: Path, magic: int, n_dims: int) -> np.ndarray:
    """An idx file: big-endian int32 magic, ``n_dims`` int32 sizes, then uint8 data."""
    with gzip.open(path, "rb") as file:
        raw = file.read()
    header = np.frombuffer(raw, dtype=">i4", count=1 + n_dims)
    if header[0] != magic:
        raise ValueError(
            f"{str(path)!r} is not an idx file of the expected kind: magic number "
            f"{header[0]}, expected {magic}."
        )
    shape = tuple(int(s) for s in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + n_dims))
    if data.size != np.prod(shape):
        raise ValueError(
            f"{str(path)!r} holds {data.size} values; its header announces {shape}."
        )
    return data.reshape(shape)


def load_fashion_mnist(
    subset="train", *, data_home="/usr/share/datasets/fashion-mnist", return_X_y=False
):
    """Load Fashion-MNIST: 28x28 grey images of 10 kinds of clothing.

    Reads the gzipped idx files that Debian's ``dataset-fashion-mnist`` package
    installs; nothing is downloaded.

    ``images`` keeps the image axes, so it is the ``X`` that
    :meth:`CNNClassifier.fit <sk_mlc.CNNClassifier.fit>` takes as it is.
    Unlike scikit-learn's ``load_digits``, there is no flat ``data``: a
    ``CNNClassifier`` reads flat ``(n, 784)`` rows as ``1 x 784`` images unless
    it is given ``image_shape=(28, 28)``.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        The 60,000 training images or the 10,000 test images.
    data_home : str or os.PathLike, default="/usr/share/datasets/fashion-mnist"
        Folder holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz`` and their ``t10k-`` counterparts.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        images : ndarray of shape (n_images, 28, 28), dtype uint8
            Light garments on a black background (0); a writeable array.
        target : ndarray of shape (n_images,), dtype int64
            Index of each image's class in ``target_names``.
        target_names : list of str
            The 10 class names, :data:`FASHION_MNIST_CLASSES`.
        DESCR : str
            The dataset's description: source, licence, size, files read.

    (images, target) : tuple if ``return_X_y`` is True
        The two arrays above.

    Raises
    ------
    FileNotFoundError
        If the files are not in ``data_home``.
    ValueError
        If ``subset`` is unknown, or the files are not valid idx files.

    See Also
    --------
    make_mosaic : Turn these single-label images into multi-label ones.

    Examples
    --------
    Two images in the idx format of the Debian files, so that this runs
    anywhere; with the package installed, ``load_fashion_mnist("test")``
    needs no ``data_home``.

    >>> import gzip
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_mlc.datasets import load_fashion_mnist
    >>> def write_idx(path, magic, array):
    ...     header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    ...     with gzip.open(path, "wb") as file:
    ...         file.write(header + array.tobytes())
    >>> with tempfile.TemporaryDirectory() as home:
    ...     pixels = np.zeros((2, 28, 28), dtype=np.uint8)
    ...     write_idx(f"{home}/t10k-images-idx3-ubyte.gz", 2051, pixels)
    ...     write_idx(f"{home}/t10k-labels-idx1-ubyte.gz", 2049, np.uint8([9, 0]))
    ...     data = load_fashion_mnist("test", data_home=home)
    ...     X, y = load_fashion_mnist("test", data_home=home, return_X_y=True)
    >>> data.images.shape, [data.target_names[k] for k in data.target]
    ((2, 28, 28), ['Ankle boot', 'T-shirt/top'])
    >>> X.shape, y.tolist()
    ((2, 28, 28), [9, 0])
    """
    if subset not in _PREFIXES:
        raise ValueError(f"subset must be 'train' or 'test'; got {subset!r}.")
    prefix = _PREFIXES[subset]
    images_path = Path(data_home) / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = Path(data_home) / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST file {path.name!r} not found in {str(data_home)!r}. "
                "Install it with `apt-get install dataset-fashion-mnist`, or pass "
                "data_home= the folder holding the idx .gz files."
            )
    images = _read_idx(images_path, _IMAGES_MAGIC, n_dims=3)
    target = _read_idx(labels_path, _LABELS_MAGIC, n_dims=1).astype(np.int64)
    if len(images) != len(target):
        raise ValueError(
            f"Fashion-MNIST {subset} files disagree: {len(images)} images, "
            f"{len(target)} labels."
        )
    # frombuffer views are read-only; callers expect an array they can modify.
    images = images.copy()
    if return_X_y:
        return images, target
    descr = _DESCR.format(
        subset=subset, n=len(images), images=images_path, labels=labels_path
    )
    return Bunch(
        images=images,
        target=target,
        target_names=list(FASHION_MNIST_CLASSES),
        DESCR=descr,
    )
