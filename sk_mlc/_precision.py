"""``precision``: which floating-point types training and prediction compute in.

One function resolves the parameter (:func:`resolve_precision`), one opens the
matching autocast region (:func:`autocast`) and one builds the gradient
scaler that float16 needs (:func:`grad_scaler`). The weights always stay
float32: autocast runs the convolutions and matrix products in the lower
precision and keeps losses, reductions and the optimizer step in float32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")

_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}

# An accelerate.Accelerator's mixed_precision, in the names of ``precision``.
ACCELERATE_PRECISIONS = {"no": "32", "bf16": "bf16-mixed", "fp16": "16-mixed"}


def resolve_precision(precision: str, device: str, name: str) -> str:
    """``precision`` for training on ``device``: "auto" becomes a concrete one.

    "auto" is bf16-mixed on a CUDA device that computes in bfloat16 (Ampere
    and newer), else 32: bfloat16 keeps float32's exponent range, so it needs
    no gradient scaler and trains like float32 at about twice the speed.
    """
    device_type = torch.device(device).type
    if precision == "auto":
        return "bf16-mixed" if _cuda_bf16(device_type) else "32"
    if precision == "32":
        return precision
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(
            f"{name}: precision={precision!r} needs autocast, which torch does not "
            f"offer on {device_type!r} devices; use precision='32' there."
        )
    if precision == "16-mixed" and device_type == "cpu":
        # Supported, so that CI covers the gradient scaler, but no help on a
        # CPU: without float16 arithmetic units torch converts back and forth,
        # ~7x slower than float32 for the default CNN (bf16 is ~2x faster).
        warnings.warn(
            f"{name}: precision='16-mixed' on the CPU is several times slower "
            "than precision='32'; it is meant for CUDA GPUs. On the CPU, use "
            "'bf16-mixed' (fast where the CPU has bfloat16 instructions) or '32'.",
            UserWarning,
            stacklevel=6,  # the caller of fit
        )
    return precision


def _cuda_bf16(device_type: str) -> bool:
    return (
        device_type == "cuda"
        and torch.cuda.is_available()
        and torch.cuda.is_bf16_supported()
    )


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The autocast region for ``precision`` on ``device`` (nothing for "32")."""
    dtype = _DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def grad_scaler(precision: str, device) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16, whose small range underflows small gradients."""
    if precision != "16-mixed":
        return None
    return torch.amp.GradScaler(torch.device(device).type)
