"""The learning-rate schedule of a fine-tune: one cycle per phase.

With ``freeze_epochs``, training has two phases: the head alone, then the
whole network. One one-cycle schedule across both would still be warming up
(at ``lr / 25``) when the backbone unfreezes, and its peak would fall on the
head-only epochs. As fastai's ``fine_tune`` does, each phase gets its own
cycle. On 1, 5 and 20 LFW photos per class this took a fine-tuned
EfficientNet-Lite0 from 0.927 / 0.944 / 0.990 to 0.933 / 0.949 / 0.995
held-out accuracy (``benchmarks/bench_transfer.py``).
"""

from __future__ import annotations

from torch.optim.lr_scheduler import OneCycleLR


class PhasedOneCycleLR:
    """``OneCycleLR`` over ``phase_steps[0]`` steps, then a fresh one over the rest.

    A scheduler policy for skorch's ``LRScheduler`` callback, stepped every
    batch; both cycles peak at ``max_lr``.
    """

    def __init__(
        self,
        optimizer,
        max_lr: float,
        phase_steps: tuple[int, int],
        last_epoch: int = -1,
    ):
        # skorch passes last_epoch (len(history) - 1): sk_mlc starts every
        # scheduled training on a fresh net, and partial_fit has no schedule.
        if last_epoch != -1:
            raise ValueError(
                "PhasedOneCycleLR starts at the beginning of training; got "
                f"last_epoch={last_epoch}."
            )
        self.optimizer = optimizer
        self.max_lr = max_lr
        self.phase_steps = tuple(phase_steps)
        self._steps = 0
        self._cycle = OneCycleLR(optimizer, max_lr=max_lr, total_steps=phase_steps[0])

    def step(self) -> None:
        self._steps += 1
        if self._steps == self.phase_steps[0]:
            # The first cycle has ended with the frozen epochs: start the second.
            self._cycle = OneCycleLR(
                self.optimizer, max_lr=self.max_lr, total_steps=self.phase_steps[1]
            )
        else:
            self._cycle.step()

    def get_last_lr(self) -> list[float]:
        return self._cycle.get_last_lr()
