"""The losses the target table chooses from, and the ``loss`` parameter's specs.

Binary targets train with binary cross-entropy by default, multi-label
targets with the asymmetric loss (``loss="auto"``; measured best on rare
positives in ``benchmarks/bench_partial_labels.py``). For rare positives, two
losses that down-weight the easy negatives which dominate such data:

* focal loss (Lin et al., 2017): each label's BCE term scaled by
  ``(1 - p_t) ** gamma``, so confident, correct outputs contribute little;
* asymmetric loss, ASL (Ridnik et al., 2021): a focal loss with separate
  exponents for positives (``gamma_pos``, 0 by default) and negatives
  (``gamma_neg``, 4), whose negatives' probabilities are first shifted down
  by ``clip`` (0.05): easy negatives below it are dropped entirely.

:class:`BCE`, :class:`Focal` and :class:`Asymmetric` are the specs a user
passes as ``loss=`` (scikit-learn estimators in miniature: ``get_params``,
so ``GridSearchCV`` tunes ``loss__gamma``); each builds its torch module for
a fit. Every sigmoid loss here shares :class:`SigmoidLoss`'s rules: class
weights as ``pos_weight`` (the positives' term scaled), targets smoothed
towards 1/2 by ``label_smoothing``, and unknown entries (NaN targets, a
multi-label ``y`` with unknowns) left out: the loss is the mean over the
known entries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator


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


class SigmoidLoss(torch.nn.Module):
    """An elementwise loss on logits, over the known entries of the target.

    Subclasses define :meth:`elementwise` on 0/1 (or smoothed) targets. A NaN
    target is an unknown entry: it contributes nothing, and ``"mean"`` divides
    by the number of known entries. ``pos_weight`` (one per label) scales the
    positives' term, as in ``BCEWithLogitsLoss``; ``reduction="none"`` returns
    the ``(n, k)`` entries, 0 where unknown.
    """

    def __init__(self, pos_weight=None, label_smoothing: float = 0.0, reduction="mean"):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction

    def elementwise(self, logits: torch.Tensor, target: torch.Tensor):
        raise NotImplementedError

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(target)
        target = torch.where(known, target, torch.zeros_like(target))
        e = self.label_smoothing
        if e:
            target = target * (1.0 - e) + 0.5 * e
        loss = torch.where(known, self.elementwise(input, target), 0.0)
        if self.reduction == "none":
            return loss
        return loss.sum() / known.sum().clamp(min=1)

    def _positive_weight(self, target: torch.Tensor) -> torch.Tensor:
        """The weight of each entry's positive term: ``pos_weight``, or 1."""
        if self.pos_weight is None:
            return torch.ones_like(target)
        return self.pos_weight.to(target.dtype).expand_as(target)


class MaskedBCEWithLogitsLoss(SigmoidLoss):
    """Binary cross-entropy over the known entries (NaN targets are unknown)."""

    def elementwise(self, logits, target):
        return F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=self.pos_weight, reduction="none"
        )


class FocalLoss(SigmoidLoss):
    """Focal loss (Lin et al., 2017): ``-(1 - p_t) ** gamma * log(p_t)`` per entry.

    With a soft target ``t``: ``-[w t (1 - p) ** gamma log p + (1 - t) p ** gamma
    log(1 - p)]``, ``w`` the ``pos_weight``. ``gamma = 0`` is binary
    cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.gamma = float(gamma)

    def elementwise(self, logits, target):
        p = torch.sigmoid(logits)
        positive = (1 - p) ** self.gamma * F.logsigmoid(logits)
        negative = p**self.gamma * F.logsigmoid(-logits)
        return -(self._positive_weight(target) * target * positive) - (
            (1 - target) * negative
        )


class AsymmetricLoss(SigmoidLoss):
    """Asymmetric loss, ASL (Ridnik et al., 2021), per entry.

    ``-[w t (1 - p) ** gamma_pos log p + (1 - t) q ** gamma_neg log(1 - q)]``
    with ``q = max(p - clip, 0)``, ``w`` the ``pos_weight``: negatives are
    focused harder than positives, and a negative whose probability is
    already below ``clip`` adds nothing.
    """

    def __init__(
        self,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.gamma_neg = float(gamma_neg)
        self.gamma_pos = float(gamma_pos)
        self.clip = float(clip)

    def elementwise(self, logits, target):
        p = torch.sigmoid(logits)
        positive = (1 - p) ** self.gamma_pos * F.logsigmoid(logits)
        shifted = (p - self.clip).clamp(min=0)
        if self.clip > 0:
            # log(1 - q) = log(1 - p + clip) where q > 0, and log 1 = 0 where not.
            log_not = torch.log((1 - p + self.clip).clamp(max=1))
        else:  # q = p: from the logits, precise where p is near 1
            log_not = F.logsigmoid(-logits)
        negative = shifted**self.gamma_neg * log_not
        return -(self._positive_weight(target) * target * positive) - (
            (1 - target) * negative
        )


# -- the loss parameter's specs ----------------------------------------------------


class LossSpec(BaseEstimator):
    """A sigmoid loss as ``CNNClassifier(loss=...)`` takes it: its parameters."""

    def module(self, pos_weight, label_smoothing: float, unknowns: bool):
        """The torch loss for a fit; ``unknowns``: the target has NaN entries."""
        raise NotImplementedError


class BCE(LossSpec):
    """Binary cross-entropy: ``loss="auto"``'s choice for binary targets.

    Trains with torch's ``BCEWithLogitsLoss`` (with ``label_smoothing``, its
    smoothed subclass; with unknown entries in ``y``, a masked one).

    Examples
    --------
    >>> from sk_mlc.losses import BCE
    >>> type(BCE().module(None, 0.0, unknowns=False)).__name__
    'BCEWithLogitsLoss'
    """

    def module(self, pos_weight, label_smoothing, unknowns):
        if unknowns:
            return MaskedBCEWithLogitsLoss(
                pos_weight=pos_weight, label_smoothing=label_smoothing
            )
        if label_smoothing:
            return SmoothedBCEWithLogitsLoss(
                pos_weight=pos_weight, label_smoothing=label_smoothing
            )
        return torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)


class Focal(LossSpec):
    """Focal loss (Lin et al., 2017) for sigmoid targets: ``loss="focal"``.

    Parameters
    ----------
    gamma : float, default=2.0
        The focusing exponent: a term scaled by ``(1 - p_t) ** gamma``; 0 is
        binary cross-entropy. Lin et al.'s alpha is ``class_weight``.

    Examples
    --------
    >>> from sk_mlc.losses import Focal
    >>> Focal(gamma=3).module(None, 0.0, unknowns=False).gamma
    3.0
    """

    def __init__(self, gamma=2.0):
        self.gamma = gamma

    def module(self, pos_weight, label_smoothing, unknowns):
        return FocalLoss(
            self.gamma, pos_weight=pos_weight, label_smoothing=label_smoothing
        )


class Asymmetric(LossSpec):
    """Asymmetric loss, ASL (Ridnik et al., 2021) for sigmoid targets: ``loss="asl"``.

    Parameters
    ----------
    gamma_neg : float, default=4.0
        The negatives' focusing exponent.
    gamma_pos : float, default=0.0
        The positives' focusing exponent.
    clip : float, default=0.05
        The probability shift of the negatives: ``q = max(p - clip, 0)``.

    Examples
    --------
    >>> from sk_mlc.losses import Asymmetric
    >>> loss = Asymmetric().module(None, 0.0, unknowns=False)
    >>> loss.gamma_neg, loss.gamma_pos, loss.clip
    (4.0, 0.0, 0.05)
    """

    def __init__(self, gamma_neg=4.0, gamma_pos=0.0, clip=0.05):
        self.gamma_neg = gamma_neg
        self.gamma_pos = gamma_pos
        self.clip = clip

    def module(self, pos_weight, label_smoothing, unknowns):
        return AsymmetricLoss(
            self.gamma_neg,
            self.gamma_pos,
            self.clip,
            pos_weight=pos_weight,
            label_smoothing=label_smoothing,
        )


LOSSES = {"bce": BCE, "focal": Focal, "asl": Asymmetric}


def resolve_loss(loss, auto: type[LossSpec] = BCE) -> LossSpec:
    """``loss`` as a spec: "bce", "focal", "asl" by name, "auto" is ``auto``."""
    if isinstance(loss, LossSpec):
        return loss
    return LOSSES.get(loss, auto)()
