"""The feature extractor of :class:`~sk_mlc.ImageFeatures`: a backbone and no head.

``Standardize -> backbone -> [global pool, flatten]``, built by the very
functions that build a ``CNNClassifier``'s network (``_build.make_backbone``,
``_network.build_features``, ``_weights``), so the features a transformer
returns are the ones a classifier's head would read from the same backbone,
weights and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data import ImageBatches, channel_stats
from ._build import make_backbone
from ._fit import seeded_torch
from ._network import build_features, set_input_statistics
from ._spec import resolve_depth, resolve_statistics
from ._weights import load_into, read_weights


@dataclass(frozen=True)
class BackboneParams:
    """The backbone parameters an estimator shares with ``CNNClassifier``."""

    module: object
    width: int
    depth: object
    residual: bool
    name: str

    @classmethod
    def from_estimator(cls, estimator, image_shape, weights=None) -> BackboneParams:
        """``estimator``'s, "auto" depth following ``weights`` as in a fit."""
        return cls(
            estimator.module,
            estimator.width,
            resolve_depth(estimator, image_shape, None, weights),
            estimator.residual,
            type(estimator).__name__,
        )


def build_extractor(
    estimator,
    image_shape: tuple[int, int, int],
    *,
    seed: int,
    device: str,
    images: ImageBatches | None = None,
    batch_size: int = 128,
) -> tuple[nn.Sequential, int]:
    """``estimator``'s extractor for images of ``image_shape``, and its feature count.

    With ``images``, the starting weights (``weights``) are loaded and the
    input statistics set as ``normalize`` says (learned from ``images`` when
    it says to learn them). Without, the weights are the untrained ones:
    the caller loads a saved state dict. The module is in eval mode,
    channels-last, on ``device``.
    """
    name = type(estimator).__name__
    weights = None if images is None else read_weights(estimator.weights, name)
    params = BackboneParams.from_estimator(estimator, image_shape, weights)
    with seeded_torch(seed, device):
        backbone = make_backbone(params, image_shape)
    channels = image_shape[0]
    layers, n_features = build_features(
        backbone,
        image_shape,
        np.zeros(channels, dtype=np.float32),
        np.ones(channels, dtype=np.float32),
        pooling=estimator.pooling,
        owner=params.name,
    )
    module = nn.Sequential(*layers)
    if images is not None:
        if weights is not None:
            load_into(weights, module[1], params.name)
        statistics = resolve_statistics(
            estimator.normalize, weights, channels, params.name
        )
        if statistics is None:
            statistics = channel_stats(images, np.arange(len(images)), batch_size)
        set_input_statistics(module, *statistics)
    module = module.to(device, memory_format=torch.channels_last)
    return module.eval(), n_features
