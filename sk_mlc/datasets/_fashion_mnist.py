"""Fashion-MNIST read from the idx files of Debian's ``dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

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
    subset="train", *, data_home="/usr/share/datasets/fashion-mnist"
):
    """Load Fashion-MNIST: 28x28 grey images of 10 kinds of clothing.

    Reads the gzipped idx files that Debian's ``dataset-fashion-mnist`` package
    installs; nothing is downloaded.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        The 60,000 training images or the 10,000 test images.
    data_home : str or os.PathLike, default="/usr/share/datasets/fashion-mnist"
        Folder holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz`` and their ``t10k-`` counterparts.

    Returns
    -------
    X : ndarray of shape (n_images, 28, 28), dtype uint8
        Light garments on a black background.
    y : ndarray of shape (n_images,), dtype int64
        Class indices into :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    FileNotFoundError
        If the files are not in ``data_home``.

    See Also
    --------
    make_mosaic : Turn these single-label images into multi-label ones.

    Examples
    --------
    >>> from sk_mlc.datasets import load_fashion_mnist
    >>> load_fashion_mnist(data_home="/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: Fashion-MNIST file 'train-images-idx3-ubyte.gz' not found ...
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
    X = _read_idx(images_path, _IMAGES_MAGIC, n_dims=3)
    y = _read_idx(labels_path, _LABELS_MAGIC, n_dims=1).astype(np.int64)
    if len(X) != len(y):
        raise ValueError(
            f"Fashion-MNIST {subset} files disagree: {len(X)} images, {len(y)} labels."
        )
    # frombuffer views are read-only; callers expect an array they can modify.
    return X.copy(), y
