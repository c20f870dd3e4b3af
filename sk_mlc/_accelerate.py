"""Training through Hugging Face Accelerate (``CNNClassifier(accelerator=...)``).

skorch's :class:`~skorch.hf.AccelerateMixin` prepares the module, the
criterion and the optimizer with the accelerator (DDP under ``accelerate
launch``, its mixed precision, gradient accumulation) and runs the training
step in its autocast region. This module adds what sk_mlc's own loader needs:

* **No ``accelerator.prepare(loader)``.** sk_mlc's loader takes whole batches
  from a sampler that yields index arrays (``_data.py``), with
  ``batch_size=None``. Accelerate's ``prepare`` rebuilds a loader from its
  ``batch_sampler``, which such a loader does not have: on one process it
  falls back to a sampler of single indices (every "batch" one image), on
  several it fails. Instead the training sampler shards itself: process
  ``i`` of ``n`` takes batches ``i, i + n, ...`` of the epoch's shared
  order, all processes the same count (the last wrap around), and the batches
  are moved to the accelerator's device here.
* **Validation and prediction are not sharded.** Every process evaluates the
  whole validation set, so every process computes the same ``valid_loss``
  and early stopping ends them at the same epoch (processes stopping apart
  would leave the others waiting in DDP forever).
* **The fitted network forgets the accelerator.** After training the
  unwrapped module goes into a plain net, which predicts, pickles and goes
  into ``memory`` like any other (an Accelerator is process state).

Nothing here imports ``accelerate``: the accelerator arrives as an object.
"""

from __future__ import annotations

import torch
from skorch.hf import AccelerateMixin

from ._precision import ACCELERATE_PRECISIONS
from ._training import _float32, _Net


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


class AcceleratedNet(AccelerateMixin, _Net):
    """``_Net`` trained by skorch's ``AccelerateMixin`` (see the module docstring)."""

    def train_step_single(self, batch, **fit_params):
        # AccelerateMixin's step replaces _Net's (it does not call it):
        # augment here, then run its step in the accelerator's autocast.
        step = super().train_step_single(self._augmented(batch), **fit_params)
        return {**step, "y_pred": _float32(step["y_pred"])}

    def get_iterator(self, dataset, training=False):
        # sk_mlc's loader, not accelerator.prepare(loader): the module docstring
        # says why. The training sampler is already sharded.
        return super(AccelerateMixin, self).get_iterator(dataset, training=training)

    def evaluation_step(self, batch, training=False):
        # Every process evaluates all of the data: nothing to gather.
        return super(AccelerateMixin, self).evaluation_step(batch, training=training)

    def _initialize_accelerator(self):
        """AccelerateMixin's, except that a loss without parameters only moves.

        accelerate's multi-process CPU branch (gloo) wraps every prepared
        module in DDP, which refuses a module without trainable parameters
        (its GPU branch skips those): such a loss needs nothing but the device.
        """
        if self._wrapped_with_accelerator:
            return self
        prepare = self.accelerator.prepare
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module):
                trainable = any(p.requires_grad for p in criterion.parameters())
                criterion = (
                    prepare(criterion)
                    if trainable
                    else criterion.to(self.accelerator.device)
                )
                setattr(self, name + "_", criterion)
        for name in self._modules:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module):
                setattr(self, name + "_", prepare(module))
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            if isinstance(optimizer, torch.optim.Optimizer):
                setattr(self, name + "_", prepare(optimizer))
        # (AccelerateMixin also prepares each LRScheduler's policy_, a class,
        # which prepare returns as it is: the schedule steps per local batch.)
        self._wrapped_with_accelerator = True
        return self

    def batch_device(self):
        return self.accelerator.device

    def autocast(self):
        return self.accelerator.autocast()

    def _make_grad_scaler(self):
        return None  # the accelerator scales fp16 gradients itself
