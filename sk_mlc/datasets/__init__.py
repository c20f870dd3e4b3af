"""Image datasets: labelled image files on disk, Fashion-MNIST, and mosaics.

The ``load_*`` functions follow scikit-learn's convention: they return a
:class:`~sklearn.utils.Bunch` (``target``, ``target_names``, ``DESCR``, and
``images`` or ``filenames``), or ``(X, y)`` with ``return_X_y=True``, where
``X`` is what :class:`~sk_mlc.CNNClassifier` takes: images of shape
``(n, H, W[, C])``, or image files. :func:`make_mosaic`, a generator, returns
``(X, Y)`` as scikit-learn's ``make_*`` functions do.
"""

from ._fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from ._files import load_image_folder
from ._mosaic import make_mosaic
from ._tags_csv import load_image_csv

__all__ = [
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_image_csv",
    "load_image_folder",
    "make_mosaic",
]
