"""Image datasets: labelled image files on disk, Fashion-MNIST, and mosaics."""

from ._fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from ._files import load_image_csv, load_image_folder
from ._mosaic import make_mosaic

__all__ = [
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_image_csv",
    "load_image_folder",
    "make_mosaic",
]
