"""Training through Hugging Face Accelerate (``CNNClassifier(accelerator=...)``).

skorch's :class:`~skorch.hf.AccelerateMixin` prepares the module, the
criterion and the optimizer with the accelerator (DDP under ``accelerate
launch``, its mixed precision, gradient accumulation) and runs the training
step in its autocast region. This module adds what sk_mlc's own loader needs:

* **No ``accelerator.prepare(loader)``.** sk_mlc's loader takes whole batches
  from a sampler that yields index arrays (``data/_batches.py``), with
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

from .._compat import accelerator_prepared, mark_accelerator_prepared, net_parts
from ._net import Net, float32


class AcceleratedNet(AccelerateMixin, Net):
    """``Net`` trained by skorch's ``AccelerateMixin`` (see the module docstring)."""

    def train_step_single(self, batch, **fit_params):
        # AccelerateMixin's step replaces Net's (it does not call it):
        # augment here, then run its step in the accelerator's autocast.
        step = super().train_step_single(self._augmented(batch), **fit_params)
        return {**step, "y_pred": float32(step["y_pred"])}

    def get_iterator(self, dataset, training=False):
        # sk_mlc's loader, not accelerator.prepare(loader): the module docstring
        # says why. The training sampler is already sharded.
        return super(AccelerateMixin, self).get_iterator(dataset, training=training)

    def evaluation_step(self, batch, training=False):
        # Every process evaluates all of the data: nothing to gather.
        return super(AccelerateMixin, self).evaluation_step(batch, training=training)

    def _initialize_accelerator(self):  # skorch's private hook: _compat.SKORCH_HOOKS
        """AccelerateMixin's, except that a loss without parameters only moves.

        accelerate's multi-process CPU branch (gloo) wraps every prepared
        module in DDP, which refuses a module without trainable parameters
        (its GPU branch skips those): such a loss needs nothing but the device.
        """
        if accelerator_prepared(self):
            return self
        prepare = self.accelerator.prepare
        criteria, modules, optimizers = net_parts(self)
        for name in criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module):
                trainable = any(p.requires_grad for p in criterion.parameters())
                criterion = (
                    prepare(criterion)
                    if trainable
                    else criterion.to(self.accelerator.device)
                )
                setattr(self, name + "_", criterion)
        for name in modules:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module):
                setattr(self, name + "_", prepare(module))
        for name in optimizers:
            optimizer = getattr(self, name + "_")
            if isinstance(optimizer, torch.optim.Optimizer):
                setattr(self, name + "_", prepare(optimizer))
        # (AccelerateMixin also prepares each LRScheduler's policy_, a class,
        # which prepare returns as it is: the schedule steps per local batch.)
        mark_accelerator_prepared(self)
        return self

    def batch_device(self):
        return self.accelerator.device

    def autocast(self):
        return self.accelerator.autocast()

    def _make_grad_scaler(self):
        return None  # the accelerator scales fp16 gradients itself


def without_accelerator(net, rebuild):
    """The trained network in a plain net, which predicts, pickles and caches.

    ``rebuild(module, criterion)`` builds the plain net. The module comes out
    of its DDP wrapper only now, after every callback's ``on_train_end``:
    EarlyStopping's best weights were taken from the wrapper (its state
    dict's names start with "module."), and go back there.
    """
    unwrap = net.accelerator.unwrap_model
    module = unwrap(net.module_, keep_fp32_wrapper=False)
    criterion = unwrap(net.criterion_, keep_fp32_wrapper=False)
    plain = rebuild(module, criterion)
    plain.initialize()
    plain.history = net.history
    return plain
