"""Shared tiny data sets and fitted models (module-scoped: fit once, test many)."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from sk_mlc import CNNClassifier

# The test models are tiny: a second thread only adds synchronisation, and on a
# busy 2-core machine threads spin-waiting on each other make them ~20-50x
# slower (torch's OpenMP pool and OpenBLAS alike).
torch.set_num_threads(1)
threadpool_limits(limits=1)

# Small and fast: every fitted fixture trains in well under a second on 2 cores.
FAST = {"width": 8, "depth": 2, "max_epochs": 8, "batch_size": 32, "random_state": 0}


def quadrant_images(n_samples=160, size=8, seed=0):
    """Noisy images with a bright blob in some of their four quadrants.

    Returns ``X`` of shape (n, size, size) float32 and the multi-hot ``Y``
    (n, 4) telling which quadrants hold a blob: a multi-label problem a small
    CNN learns in a few epochs.
    """
    rng = np.random.RandomState(seed)
    Y = (rng.rand(n_samples, 4) < 0.5).astype(np.int64)
    X = rng.normal(0.0, 0.2, size=(n_samples, size, size)).astype(np.float32)
    half = size // 2
    for q, (r, c) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
        X[Y[:, q] == 1, r : r + half, c : c + half] += 1.0
    return X, Y


@pytest.fixture(scope="session")
def multilabel_data():
    return quadrant_images()


@pytest.fixture(scope="session")
def binary_data(multilabel_data):
    X, Y = multilabel_data
    return X, np.where(Y[:, 0] == 1, "blob", "empty")


@pytest.fixture(scope="session")
def multiclass_data(multilabel_data):
    X, Y = multilabel_data
    # class = number of blobs, capped: 0/1, 2, 3/4 -> three classes
    return X, np.minimum(np.maximum(Y.sum(1) - 1, 0), 2)


@pytest.fixture(scope="session")
def fitted_multilabel(multilabel_data):
    X, Y = multilabel_data
    return CNNClassifier(**FAST).fit(X, Y)


@pytest.fixture(scope="session")
def fitted_binary(binary_data):
    X, y = binary_data
    return CNNClassifier(**FAST).fit(X, y)


@pytest.fixture(scope="session")
def fitted_multiclass(multiclass_data):
    X, y = multiclass_data
    return CNNClassifier(**FAST).fit(X, y)
