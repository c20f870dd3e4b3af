"""What an exported graph computes, taken from the fitted estimator's own parts.

:func:`serving_parts` finds what ``predict`` uses (the classifier, the target
that decides, the thresholds), :class:`ServingInput` how the graph takes
images (from the fitted input spec), and :class:`ServingModule` is one
``nn.Module`` from those images to ``predict_proba``'s output, which
``_onnx.py`` hands to torch's exporter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from torch import nn

from .._classifier import CNNClassifier
from ..data import tta_proba
from ..targets import Target, check_cardinality, check_threshold
from ..thresholds import ThresholdTunerCV

# The caller named in messages.
NAME = "to_onnx"


@dataclass(frozen=True)
class ServingParts:
    """What ``predict`` uses: the classifier, the target that decides, the thresholds.

    ``thresholds`` is None for targets decided by argmax; ``min_labels`` and
    ``max_labels`` bound a multi-label row's count. A
    :class:`~sk_mlc.ThresholdTunerCV` contributes its ``estimator_``, its
    tuned thresholds and its bounds; a :class:`~sk_mlc.CNNClassifier` its own.
    """

    classifier: CNNClassifier
    target: Target
    thresholds: np.ndarray | None
    min_labels: int = 0
    max_labels: int | None = None


def serving_parts(estimator, caller: str = NAME) -> ServingParts:
    """The :class:`ServingParts` of a fitted CNNClassifier or ThresholdTunerCV."""
    if isinstance(estimator, ThresholdTunerCV):
        if not hasattr(estimator, "best_thresholds_"):
            raise NotFittedError(
                f"{caller}: this ThresholdTunerCV is not fitted yet; call fit first."
            )
        inner = estimator.estimator_
        while isinstance(inner, FrozenEstimator):
            inner = inner.estimator
        if not isinstance(inner, CNNClassifier):
            raise ValueError(
                f"{caller} exports a ThresholdTunerCV around a CNNClassifier; this "
                f"one's estimator_ is a {type(inner).__name__}, which has no network "
                "to export. Keep it with pickle (or sk_mlc.save, where it allows)."
            )
        _check_fitted(inner, caller)
        # The tuner's own target decides (its y's dtype and sparsity).
        target = estimator._target_
        bounds = check_cardinality(
            estimator.min_labels, estimator.max_labels, target, "ThresholdTunerCV"
        )
        return ServingParts(
            inner, target, np.asarray(estimator.best_thresholds_), *bounds
        )
    if not isinstance(estimator, CNNClassifier):
        raise TypeError(
            f"{caller} exports a fitted CNNClassifier or ThresholdTunerCV; got "
            f"{type(estimator).__name__}."
        )
    _check_fitted(estimator, caller)
    target, name = estimator._target_, type(estimator).__name__
    thresholds = None
    if target.uses_threshold:
        thresholds = check_threshold(estimator.threshold, target.n_labels, name)
    bounds = check_cardinality(estimator.min_labels, estimator.max_labels, target, name)
    return ServingParts(estimator, target, thresholds, *bounds)


def _check_fitted(classifier: CNNClassifier, caller: str) -> None:
    if not hasattr(classifier, "net_"):
        raise NotFittedError(
            f"{caller}: this {type(classifier).__name__} is not fitted yet; call "
            "fit first."
        )


@dataclass(frozen=True)
class ServingInput:
    """The graph's input: one batch of images in the fitted layout and dtype.

    ``sample_shape`` is one image as the graph takes it: ``(d,)`` for flat
    rows, ``(H, W)`` for one-channel images, ``(H, W, C)`` or ``(C, H, W)``.
    ``image_shape`` is the ``(C, H, W)`` the network sees.
    """

    dtype: np.dtype
    sample_shape: tuple[int, ...]
    image_shape: tuple[int, int, int]
    channels_first: bool
    scale: float

    @classmethod
    def from_estimator(cls, estimator, caller: str = NAME):
        """The input the fitted ``estimator`` reads as it read its training images.

        A ``CNNClassifier``'s or an ``ImageFeatures``': the fitted input spec
        says how (:meth:`sk_mlc.data.InputSpec.graph_input`).
        """
        image_shape = tuple(int(s) for s in estimator.input_shape_)
        try:
            graph = estimator._input_spec_.graph_input(
                image_shape, type(estimator).__name__
            )
        except ValueError as exc:
            raise ValueError(f"{caller}: {exc}") from None
        return cls(
            graph.dtype,
            graph.sample_shape,
            image_shape,
            graph.channels_first,
            graph.scale,
        )

    def probe(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` random images of this input, pixels in the dtype's usual range."""
        rng = np.random.RandomState(seed)
        shape = (n, *self.sample_shape)
        if self.dtype.kind in "ui":
            high = 256 if self.scale == 1.0 else round(1 / self.scale) + 1
            return rng.randint(0, high, size=shape).astype(self.dtype)
        if self.dtype.kind == "b":
            return rng.rand(*shape) < 0.5
        return rng.rand(*shape).astype(self.dtype)


class ServingModule(nn.Module):
    """Images as passed to ``predict_proba`` -> ``predict_proba``'s output.

    (Or, without a ``target``, images as passed to ``ImageFeatures.transform``
    -> its features.) ``pixels`` does what :func:`~sk_mlc.data.read_images`
    does to one batch (float32, the dtype's scaling, NCHW); the network
    standardises with its own statistics and returns logits;
    ``target.proba_tensor`` applies the activation and lays out
    ``predict_proba``'s columns.

    Test-time augmentation (``tta="flip"``) averages the probabilities of
    ``x`` and of ``x.flip(-1)``, as ``predict_proba`` does; every
    prediction-time setting of the classifier must be computed here, or the
    graph would answer otherwise than ``predict_proba`` without a word.
    """

    def __init__(
        self,
        network: nn.Module,
        inputs: ServingInput,
        target: Target | None,
        tta: str | None = None,
    ):
        super().__init__()
        self.network = network
        self.inputs = inputs
        self.target = target
        self.tta = tta

    def proba(self, x: torch.Tensor) -> torch.Tensor:
        # Without a target (ImageFeatures), the network's output is the answer.
        out = self.network(x)
        return out if self.target is None else self.target.proba_tensor(out)

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The float32 ``(n, C, H, W)`` batch the network reads."""
        x = images.to(torch.float32)
        if self.inputs.scale != 1.0:
            x = x * self.inputs.scale
        channels, height, width = self.inputs.image_shape
        if self.inputs.channels_first:
            return x.reshape(-1, channels, height, width)
        return x.reshape(-1, height, width, channels).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return tta_proba(self.proba, self.pixels(images), self.tta)
