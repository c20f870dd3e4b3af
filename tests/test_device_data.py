"""The GPU data path, checked on the CPU: the same batches, the same network.

``DeviceImages`` is what a CUDA fit trains from (the array copied once to the
GPU); built here with ``device="cpu"``, it must give exactly the batches of
the CPU path, and a fit through it the same network. The decision to use it
is a function of the device string and the free memory, tested as such.
"""

import numpy as np
import pytest
import torch
from conftest import FAST

import sk_mlc.training._fit
import sk_mlc.training._net
from sk_mlc import CNNClassifier
from sk_mlc.data import (
    DeviceImages,
    ImageBatches,
    LazyImages,
    fits_on_device,
    training_images,
)

RNG = np.random.RandomState(0)
CASES = {
    "uint8 NHWC": (RNG.randint(0, 256, (10, 6, 5, 3)).astype(np.uint8), False, {}),
    "float NCHW": (RNG.rand(10, 2, 6, 5).astype(np.float32), True, {}),
    "uint16 grey": (RNG.randint(0, 65536, (10, 6, 5, 1)).astype(np.uint16), False, {}),
    "float64 to L": (RNG.rand(10, 6, 5, 3), False, {"mode": "L"}),
    "uint8 resized": (
        RNG.randint(0, 256, (10, 6, 5, 3)).astype(np.uint8),
        False,
        {"size": (4, 3)},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_device_batches_equal_the_cpu_batches(case):
    data, channels_first, options = CASES[case]
    images = ImageBatches(data, data.shape[1:], channels_first, **options)
    resident = DeviceImages(images, "cpu")
    assert len(resident) == len(images)
    assert resident.image_shape == images.image_shape
    rows = np.array([7, 0, 3, 3])
    expected = images.batch(rows)
    got = resident.batch(rows)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_uint8_stays_uint8_on_the_device():
    data = CASES["uint8 NHWC"][0]
    resident = DeviceImages(ImageBatches(data, data.shape[1:], False), "cpu")
    assert resident.pixels.dtype == torch.uint8
    assert resident.pixels.shape == data.shape


def test_only_in_memory_arrays_on_cuda_that_fit_move():
    data = np.zeros((100, 28, 28, 1), np.uint8)  # 78,400 bytes
    images = ImageBatches(data, data.shape[1:], False)
    assert fits_on_device(images, "cuda", free_bytes=10**6)
    assert fits_on_device(images, "cuda:1", free_bytes=4 * 78_400)
    assert not fits_on_device(images, "cuda", free_bytes=4 * 78_400 - 1)
    assert not fits_on_device(images, "cpu", free_bytes=10**12)
    # float pixels take four bytes each on the device.
    floats = ImageBatches(data.astype(np.float64), data.shape[1:], False)
    assert not fits_on_device(floats, "cuda", free_bytes=10**6)
    # On the CPU the array is already where the network runs.
    assert training_images(images, "cpu") is images


def test_image_files_never_move(tmp_path):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.new("L", (4, 4)).save(path)
    lazy = LazyImages([path, path])
    images = ImageBatches(lazy, lazy.shape[1:], False)
    assert images.is_lazy
    assert not fits_on_device(images, "cuda", free_bytes=10**12)


def test_fit_through_device_images_trains_the_same_network(
    monkeypatch, multiclass_data
):
    X, y = multiclass_data
    X = (X.clip(-1, 2) * 80 + 80).astype(np.uint8)  # uint8 pixels, as on a GPU
    params = {**FAST, "max_epochs": 3, "augment": "flip", "validation_fraction": 0.2}
    expected = CNNClassifier(**params).fit(X, y)
    used = []

    def on_cpu_device(images, device):
        used.append(DeviceImages(images, device))
        return used[-1]

    monkeypatch.setattr(sk_mlc.training._fit, "training_images", on_cpu_device)
    clf = CNNClassifier(**params).fit(X, y)
    assert used
    np.testing.assert_allclose(
        clf.predict_proba(X), expected.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    assert clf.net_.history[-1, "valid_loss"] == pytest.approx(
        expected.net_.history[-1, "valid_loss"], rel=1e-5
    )


def test_cpu_batches_are_not_touched(fitted_binary):
    # The CPU path stays skorch's: no copy, no new tuple.
    X = torch.zeros(2, 1, 8, 8)
    batch = [X, (torch.zeros(2), torch.ones(2))]
    assert fitted_binary.net_.to_device(batch) is batch


def test_nested_batches_move_whole():
    X, y, w = torch.zeros(2, 1, 4, 4), torch.zeros(2), torch.ones(2)
    moved = sk_mlc.training._net._moved([X, (y, w)], "cpu")
    assert isinstance(moved, tuple) and isinstance(moved[1], tuple)
    assert moved[0] is X and moved[1][0] is y and moved[1][1] is w
