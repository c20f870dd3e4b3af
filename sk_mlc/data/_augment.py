"""Training-time augmentation, applied to whole batches on the training device.

Augmentation runs inside the training step only (never at predict time) and
draws from its own ``torch.Generator`` seeded from ``random_state``, so a fit is
reproducible whatever else uses torch's global random state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

AUGMENTATIONS = ("flip", "shift", "flip+shift")
# Test-time augmentations (predict_proba averages over the views).
TTA = ("flip",)

# The docs of the estimator parameters these rules resolve (``%(name)s``
# lines in CNNClassifier's docstring, filled by sk_mlc._docs.fill_docs).
AUGMENT_DOCS = {
    "augment": """\
augment : {"auto", "flip", "shift", "flip+shift"}, callable or None, \
        default="auto"
    Augmentation of training batches: random left-right flips, random
    shifts of up to 1/8 of the image side, or both; or a callable
    ``f(X, generator) -> X`` on a float ``(n, C, H, W)`` tensor that draws
    its randomness from ``generator``. "auto" flips images at least 16
    pixels high and wide (photographs, Fashion-MNIST) when there are at
    least 200 training images, and leaves smaller images (8x8 digits,
    ``1 x d`` rows) and smaller training sets alone (on a few images per
    class flips cost accuracy in the transfer benchmark). Pass None where
    a mirror image is not a plausible image of the same class (text, some
    digits, objects that always face one way).""",
    "tta": """\
tta : {"auto", "flip"} or None, default="auto"
    Test-time augmentation in ``predict_proba`` (and so ``predict``,
    ``ThresholdTunerCV`` and the ONNX export): "flip" averages the
    probabilities of each image and of its mirror image, at twice the
    cost of a forward pass. "auto" is "flip" when training flipped
    images (``augment`` resolved to "flip" or "flip+shift"), else None.
    A prediction-time setting: it does not change training, so it can
    be changed on a fitted model (``tta_`` is the one in use).""",
}

# Fewer training images than this make a small training set: "auto" settings
# (augment, CNNClassifier's depth) then resolve as on a few images per class,
# as scikit-learn's HistGradientBoosting decides early_stopping="auto" from
# the number of samples.
SMALL_TRAINING_SET = 200

# augment="auto" flips images at least this many pixels high and wide:
# photographs and Fashion-MNIST's 28x28 items, not 8x8 digits or 1 x d rows.
_AUTO_FLIP_MIN_SIDE = 16

# Largest shift, as a fraction of the image side: 28 px -> 3 px.
_SHIFT_FRACTION = 0.125


def resolve_augment(augment, image_shape: tuple[int, int, int], n_samples=None):
    """``augment`` with "auto" resolved for ``n_samples`` images of ``image_shape``.

    "auto" is "flip" for images at least 16 pixels on each side, else None:
    a mirror image of a photograph is as likely as the photograph (fastai and
    timm flip by default too), while a row of tabular features or an 8x8
    glyph has no such symmetry. Below :data:`SMALL_TRAINING_SET` training
    images (``n_samples``; None: as many as it takes) it is None: on 1 to 20
    images per class (at most 100 images), flips and the fourth stage of
    ``depth="auto"`` cost up to 0.2 of held-out accuracy (LFW photos,
    Fashion-MNIST's classes 5-9; ``benchmarks/bench_transfer.py``'s tiny
    part), while from about 200 images on they were as good or better
    (Fashion-MNIST on 200 to 600 images; the 240 multi-label canvases of
    ``examples/planet_style.py``, where they gained 0.06 of micro-F1).
    """
    if not (isinstance(augment, str) and augment == "auto"):
        return augment
    if n_samples is not None and n_samples < SMALL_TRAINING_SET:
        return None
    _, height, width = image_shape
    return "flip" if min(height, width) >= _AUTO_FLIP_MIN_SIDE else None


def flips(augment) -> bool:
    """Whether the resolved ``augment`` mirrors images left-right."""
    return isinstance(augment, str) and "flip" in augment.split("+")


def resolve_tta(tta, trained_with_flips: bool) -> str | None:
    """``tta`` with "auto" resolved: "flip" after flipped training, else None."""
    if tta == "auto":
        return "flip" if trained_with_flips else None
    return tta


def tta_proba(proba: Callable, x: torch.Tensor, tta: str | None) -> torch.Tensor:
    """``proba(x)``, averaged with ``proba`` of the mirror images when ``tta="flip"``.

    The one definition of test-time augmentation: ``predict_proba`` and the
    ONNX graph both call it, so they cannot drift apart.
    """
    p = proba(x)
    if tta == "flip":
        p = (p + proba(x.flip(-1))) / 2
    return p


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to 1/8 of its size, filling with zeros."""
    n, _, height, width = x.shape
    pad_h = int(height * _SHIFT_FRACTION)
    pad_w = int(width * _SHIFT_FRACTION)
    if pad_h == 0 and pad_w == 0:
        return x
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    dy = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator, device=x.device)
    rows = (dy.view(n, 1) + torch.arange(height, device=x.device)).view(n, 1, height, 1)
    cols = (dx.view(n, 1) + torch.arange(width, device=x.device)).view(n, 1, 1, width)
    # One gather per axis crops every image at its own offset without a loop.
    rows = rows.expand(n, x.shape[1], height, padded.shape[3])
    cropped = padded.gather(2, rows)
    cols = cols.expand(n, x.shape[1], height, width)
    return cropped.gather(3, cols)


_PRESETS: dict[str, tuple[Callable, ...]] = {
    "flip": (random_flip,),
    "shift": (random_shift,),
    "flip+shift": (random_flip, random_shift),
}


class Augmenter:
    """Applies a preset (or the user's callable) with a seeded generator."""

    def __init__(self, augment, seed: int, device: str):
        self.steps = _PRESETS[augment] if isinstance(augment, str) else (augment,)
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x, self.generator)
        return x
