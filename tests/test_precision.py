"""``precision``: mixed precision trains and predicts on the CPU as on a GPU.

bfloat16 autocast runs on the CPU, so these tests cover the code path a GPU
takes; "16-mixed" also runs here (slowly, with a warning), which covers the
gradient scaler. What only a GPU decides ("auto" on CUDA) is checked by
calling the resolution with a device string.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST
from skorch.callbacks import EpochScoring

from sk_mlc import CNNClassifier
from sk_mlc.training import RUNTIME_FIELDS, TrainingSpec
from sk_mlc.training._placement import autocast, resolve_precision

MIXED = ["bf16-mixed", "16-mixed"]


def _fit(precision, X, y, **params):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*16-mixed' on the CPU")
        return CNNClassifier(**{**FAST, **params}, precision=precision).fit(X, y)


@pytest.fixture(scope="module")
def fp32_binary(binary_data):
    return _fit("32", *binary_data, augment="flip")


@pytest.fixture(scope="module", params=MIXED)
def mixed_binary(request, binary_data):
    return _fit(request.param, *binary_data, augment="flip")


def test_default_is_32_on_the_cpu(fitted_binary):
    assert fitted_binary.precision_ == "32"
    assert fitted_binary.net_.grad_scaler_ is None


def test_mixed_precision_is_close_to_float32(mixed_binary, fp32_binary, binary_data):
    X, y = binary_data
    proba = mixed_binary.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    # Same seed, same batches: only the rounding of the autocast region differs.
    np.testing.assert_allclose(proba, fp32_binary.predict_proba(X), atol=0.05)
    assert mixed_binary.score(X, y) >= fp32_binary.score(X, y) - 0.05


def test_mixed_precision_predicts_in_its_dtype_with_float32_weights(
    mixed_binary, binary_data
):
    X, _ = binary_data
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    seen = []
    conv = next(
        m for m in mixed_binary.net_.module_.modules() if isinstance(m, torch.nn.Conv2d)
    )
    handle = conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        mixed_binary.predict_proba(X[:4])
    finally:
        handle.remove()
    # One batch, seen twice: as it is and mirrored (augment="flip" -> tta_).
    assert mixed_binary.tta_ == "flip"
    assert seen == [dtype[mixed_binary.precision_]] * 2
    # The weights stay float32.
    assert {p.dtype for p in mixed_binary.net_.module_.parameters()} == {torch.float32}


def test_fp16_uses_a_gradient_scaler_and_warns_on_the_cpu(binary_data):
    X, y = binary_data
    with pytest.warns(UserWarning, match="'16-mixed' on the CPU is several times"):
        clf = CNNClassifier(**{**FAST, "max_epochs": 2}, precision="16-mixed").fit(X, y)
    scaler = clf.net_.grad_scaler_
    assert isinstance(scaler, torch.amp.GradScaler)
    assert scaler.get_scale() > 0  # it stepped: the scale is set
    assert len(clf.net_.history) == 2


def test_pickled_mixed_model_predicts_the_same(mixed_binary, binary_data):
    X, _ = binary_data
    copy = pickle.loads(pickle.dumps(mixed_binary))
    assert copy.precision_ == mixed_binary.precision_
    np.testing.assert_array_equal(copy.predict_proba(X), mixed_binary.predict_proba(X))


def test_validation_and_scoring_run_under_bf16(binary_data):
    X, y = binary_data
    clf = _fit(
        "bf16-mixed",
        X,
        y,
        validation_fraction=0.25,
        callbacks=[EpochScoring("accuracy", on_train=False, name="valid_acc")],
    )
    history = clf.net_.history
    assert np.isfinite(history[-1, "valid_loss"])
    assert 0 <= history[-1, "valid_acc"] <= 1


def test_auto_is_bf16_on_cuda_that_supports_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda", "CNNClassifier") == "bf16-mixed"
    assert resolve_precision("auto", "cuda:1", "CNNClassifier") == "bf16-mixed"
    assert resolve_precision("auto", "cpu", "CNNClassifier") == "32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda", "CNNClassifier") == "32"
    # An explicit choice is kept on CUDA (no warning: that is where it belongs).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("16-mixed", "cuda", "CNNClassifier") == "16-mixed"


def test_autocast_region_follows_the_device_type():
    assert autocast("32", "cuda").__class__.__name__ == "nullcontext"
    with warnings.catch_warnings():
        # Built, not entered: on a machine without CUDA torch warns and disables it.
        warnings.filterwarnings("ignore", message="CUDA is not available")
        region = autocast("bf16-mixed", "cuda:0")
    assert region.device == "cuda" and region.fast_dtype == torch.bfloat16


def test_unknown_precision_is_refused(binary_data):
    X, y = binary_data
    with pytest.raises(ValueError, match="'precision' parameter of CNNClassifier"):
        CNNClassifier(**FAST, precision="fp8").fit(X, y)


def test_precision_is_in_the_cache_key(binary_data):
    assert "precision" not in RUNTIME_FIELDS
    names = set(TrainingSpec.__dataclass_fields__)
    assert {"precision", "data_parallel", "accelerator"} <= names
    assert "accelerator" in RUNTIME_FIELDS
