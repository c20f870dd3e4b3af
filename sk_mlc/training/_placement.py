"""Where training runs, in which precision: ``device``, ``precision``, ``accelerator``.

Pure checks and small factories, no training: :func:`resolve_device` and
:func:`resolve_precision` resolve the parameters, :func:`accelerator_placement`
reads an ``accelerate.Accelerator``'s device and mixed precision instead (and
refuses the settings it decides), :func:`autocast` opens the matching
autocast region and :func:`grad_scaler` builds the gradient scaler that
float16 needs. The weights always stay float32: autocast runs the
convolutions and matrix products in the lower precision and keeps losses,
reductions and the optimizer step in float32. The net that trains through
an accelerator is in ``_accelerated.py``.
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


@contextlib.contextmanager
def autotuned(device):
    """cuDNN benchmarks its convolution algorithms for each shape (CUDA only).

    Training runs the same few batch shapes thousands of times: the first
    of each picks the fastest kernel for it, the rest reuse it. The
    caller's setting is restored. Elsewhere nothing changes.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def grad_scaler(precision: str, device) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16, whose small range underflows small gradients."""
    if precision != "16-mixed":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def resolve_device(device) -> str:
    """``"auto"`` is CUDA when available, else the CPU."""
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def placement(estimator, name: str, incremental: bool) -> tuple[str, str, tuple | None]:
    """The device, the resolved precision and the data parallel setting."""
    if estimator.accelerator is not None:
        return accelerator_placement(estimator, name, incremental=incremental)
    device = resolve_device(estimator.device)
    return device, resolve_precision(estimator.precision, device, name), None


def accelerator_placement(estimator, name: str, *, incremental: bool = False):
    """The device, precision and ``data_parallel`` setting an accelerator decides."""
    accelerator = estimator.accelerator
    if estimator.precision != "auto":
        raise ValueError(
            f"{name}: with an accelerator, its mixed_precision decides the "
            f"precision; got precision={estimator.precision!r}. Leave precision="
            "'auto' and pass Accelerator(mixed_precision='bf16') (or 'fp16', 'no')."
        )
    if str(estimator.device) != "auto":
        raise ValueError(
            f"{name}: with an accelerator, it places the network on its device "
            f"({accelerator.device}); got device={str(estimator.device)!r}. Leave "
            "device='auto'."
        )
    if incremental:
        raise ValueError(
            f"{name}: partial_fit trains in this process only and does not use the "
            "accelerator. Set accelerator=None (set_params) for incremental "
            "training, or use fit."
        )
    mixed = str(accelerator.mixed_precision)
    precision = ACCELERATE_PRECISIONS.get(mixed)
    if precision is None:
        raise ValueError(
            f"{name}: the accelerator's mixed_precision={mixed!r} is not supported; "
            f"use one of {sorted(ACCELERATE_PRECISIONS)}."
        )
    processes = int(accelerator.num_processes)
    if processes > 1 and estimator.freeze_epochs:
        raise ValueError(
            f"{name}: freeze_epochs={estimator.freeze_epochs} with an accelerator "
            f"of {processes} processes: DDP cannot skip the gradients of a frozen "
            "backbone. Use freeze_epochs=0, or train in one process."
        )
    steps = int(accelerator.gradient_accumulation_steps)
    # One process stepping every batch trains exactly as without accelerate:
    # such a fit shares memory's entries with plain fits.
    data_parallel = None if (processes, steps) == (1, 1) else (processes, steps)
    return str(accelerator.device), precision, data_parallel


def shard(accelerator) -> tuple[int, int]:
    """``(process_index, num_processes)``: which share of the batches is ours."""
    if accelerator is None:
        return 0, 1
    return int(accelerator.process_index), int(accelerator.num_processes)
