"""Multi-label images made by pasting single-label images onto a grid."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a pair."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    if (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair
        )
        and min(pair) >= minimum
    ):
        return int(pair[0]), int(pair[1])
    raise ValueError(
        f"make_mosaic: {name} must be an int or a pair of ints, each >= {minimum}; "
        f"got {value!r}."
    )


def _check_labels(labels, n_images: int, n_classes) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.shape != (n_images,) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"make_mosaic: labels must be {n_images} integers, one per image; got an "
            f"array of shape {labels.shape} and dtype {labels.dtype}."
        )
    if n_classes is None:
        n_classes = int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"make_mosaic: labels must lie in [0, n_classes={n_classes}); "
            f"got values from {labels.min()} to {labels.max()}."
        )
    return labels, int(n_classes)


def make_mosaic(
    images,
    labels,
    *,
    n_samples,
    grid=(2, 2),
    n_items=(1, 4),
    jitter=0,
    canvas_size=None,
    n_classes=None,
    random_state=None,
):
    """Build multi-label images by pasting single-label images on a grid.

    Each canvas receives a random number of images, each in its own random
    cell of the grid, shifted by a random offset and merged with
    :func:`numpy.maximum`, so a dark background (such as Fashion-MNIST's) lets
    every item show. Its target row marks the classes pasted on it.

    Draw train and test canvases from disjoint pools of ``images`` so that no
    source image is seen in both.

    Parameters
    ----------
    images : array-like of shape (n_images, H, W) or (n_images, H, W, C)
        The pool of single-label images. The output keeps their dtype.
    labels : array-like of shape (n_images,)
        Integer class of each image, in ``[0, n_classes)``.
    n_samples : int
        Number of canvases to build.
    grid : int or (int, int), default=(2, 2)
        Grid ``(rows, columns)``; an int means a square grid.
    n_items : int or (int, int), default=(1, 4)
        Inclusive range of the number of images per canvas; an int means
        exactly that many. At most ``rows * columns`` and the pool size.
    jitter : int, default=0
        Largest shift, in pixels, of an item from the centre of its cell along
        each axis. Items are clipped to stay on the canvas.
    canvas_size : int or (int, int), default=None
        Canvas ``(height, width)``; ``None`` gives ``(rows * H, columns * W)``.
        Each side must hold at least one image.
    n_classes : int, default=None
        Number of columns of ``Y``; ``None`` means ``max(labels) + 1``.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws; an int gives reproducible canvases.

    Returns
    -------
    X : ndarray of shape (n_samples, canvas_height, canvas_width[, C])
        The canvases, with the dtype of ``images``.
    Y : ndarray of shape (n_samples, n_classes), dtype int64
        ``Y[i, k] == 1`` when an image of class ``k`` is on canvas ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mlc.datasets import make_mosaic
    >>> images = np.stack([np.full((2, 2), 10 * (k + 1), np.uint8) for k in range(3)])
    >>> X, Y = make_mosaic(images, [0, 1, 2], n_samples=2, n_items=2, random_state=0)
    >>> X.shape, Y.shape, Y.sum(axis=1).tolist()
    ((2, 4, 4), (2, 3), [2, 2])
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            "make_mosaic: images must be a non-empty array of shape (n, H, W) or "
            f"(n, H, W, C); got shape {images.shape}."
        )
    labels, n_classes = _check_labels(labels, len(images), n_classes)
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(
            f"make_mosaic: n_samples must be an int >= 1; got {n_samples!r}."
        )
    rows, cols = _pair(grid, "grid", 1)
    low, high = _pair(n_items, "n_items", 1)
    if low > high or high > rows * cols or high > len(images):
        raise ValueError(
            f"make_mosaic: n_items must satisfy 1 <= min <= max <= {rows * cols} (the "
            f"cells of a {rows}x{cols} grid) and <= {len(images)} (the pool size); "
            f"got {n_items!r}."
        )
    if not isinstance(jitter, numbers.Integral) or jitter < 0:
        raise ValueError(f"make_mosaic: jitter must be an int >= 0; got {jitter!r}.")
    height, width = images.shape[1:3]
    if canvas_size is None:
        canvas_size = (rows * height, cols * width)
    canvas_h, canvas_w = _pair(canvas_size, "canvas_size", 1)
    if canvas_h < height or canvas_w < width:
        raise ValueError(
            f"make_mosaic: canvas_size={(canvas_h, canvas_w)} cannot hold one "
            f"{height}x{width} image."
        )

    rng = check_random_state(random_state)
    X = np.zeros((n_samples, canvas_h, canvas_w, *images.shape[3:]), images.dtype)
    Y = np.zeros((n_samples, n_classes), dtype=np.int64)
    for sample in range(n_samples):
        n = rng.randint(low, high + 1)
        cells = rng.choice(rows * cols, size=n, replace=False)
        chosen = rng.choice(len(images), size=n, replace=False)
        shifts = rng.randint(-jitter, jitter + 1, size=(n, 2))
        for cell, index, (dy, dx) in zip(cells, chosen, shifts, strict=True):
            row, col = divmod(int(cell), cols)
            # Centre of the cell, then the shift, then back onto the canvas.
            top = round((row + 0.5) * canvas_h / rows - height / 2) + dy
            left = round((col + 0.5) * canvas_w / cols - width / 2) + dx
            top = min(max(top, 0), canvas_h - height)
            left = min(max(left, 0), canvas_w - width)
            patch = X[sample, top : top + height, left : left + width]
            np.maximum(patch, images[index], out=patch)
            Y[sample, labels[index]] = 1
    return X, Y
