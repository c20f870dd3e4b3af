"""The losses the target table chooses from."""

from __future__ import annotations

import torch


class SmoothedBCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """``BCEWithLogitsLoss`` towards smoothed targets ``y (1 - e) + e / 2``.

    The binary counterpart of ``CrossEntropyLoss(label_smoothing=e)``: each
    label's 0/1 target moves towards 1/2 by ``e``, so the network is not
    pushed to ever larger logits on labels it already gets right.
    """

    def __init__(self, *args, label_smoothing: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_smoothing = label_smoothing

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        e = self.label_smoothing
        return super().forward(input, target * (1.0 - e) + 0.5 * e)


def bce(pos_weight, label_smoothing: float) -> torch.nn.Module:
    """``BCEWithLogitsLoss``, towards smoothed targets when ``label_smoothing``."""
    if label_smoothing:
        return SmoothedBCEWithLogitsLoss(
            pos_weight=pos_weight, label_smoothing=label_smoothing
        )
    return torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
