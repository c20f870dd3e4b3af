"""What only a CUDA GPU can check: the device data path, autocast, pinned files.

Skipped without CUDA (CI has none). The CPU tests cover the same code with
``device="cpu"`` (``test_device_data.py``, ``test_precision.py``); these
check that on a GPU the fast paths are really taken and agree with the CPU.
"""

import numpy as np
import pytest
import torch
from conftest import FAST

import sk_mlc.training._fit
from sk_mlc import CNNClassifier
from sk_mlc.data import DeviceImages

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)"
)


@pytest.fixture(scope="module")
def uint8_data(multiclass_data):
    X, y = multiclass_data
    return (X.clip(-1, 2) * 80 + 80).astype(np.uint8), y


def test_arrays_train_from_the_device_and_agree_with_the_cpu(monkeypatch, uint8_data):
    X, y = uint8_data
    built = []
    original = sk_mlc.training._fit.training_images

    def spy(images, device):
        built.append(original(images, device))
        return built[-1]

    monkeypatch.setattr(sk_mlc.training._fit, "training_images", spy)
    params = {**FAST, "augment": "flip", "precision": "32"}
    gpu = CNNClassifier(**params, device="cuda").fit(X, y)
    assert isinstance(built[0], DeviceImages)
    assert built[0].pixels.is_cuda and built[0].pixels.dtype == torch.uint8
    cpu = CNNClassifier(**params, device="cpu").fit(X, y)
    # Other kernels, other augmentation draws: close, not equal.
    assert abs(gpu.score(X, y) - cpu.score(X, y)) < 0.1
    assert gpu.predict_proba(X).dtype == np.float32


def test_auto_precision_on_cuda(uint8_data):
    X, y = uint8_data
    clf = CNNClassifier(**FAST, device="cuda").fit(X, y)
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "32"
    assert clf.precision_ == expected
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_fp16_trains_with_a_gradient_scaler_on_cuda(uint8_data):
    X, y = uint8_data
    clf = CNNClassifier(**FAST, device="cuda", precision="16-mixed").fit(X, y)
    assert isinstance(clf.net_.grad_scaler_, torch.amp.GradScaler)
    assert clf.score(X, y) > 0.5


def test_image_files_stream_through_pinned_memory(tmp_path, uint8_data):
    from PIL import Image

    X, y = uint8_data
    paths = []
    for i, image in enumerate(X[:64]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    clf = CNNClassifier(**FAST, device="cuda", image_mode="L").fit(paths, y[:64])
    # Files are decoded on the CPU: their batches are pinned, then copied.
    assert clf.net_.iterator_train__pin_memory is True
    assert clf.predict_proba(paths).shape == (64, len(clf.classes_))
