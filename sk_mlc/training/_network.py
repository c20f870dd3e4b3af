"""The network: a small CNN for any image size, and the output head.

The module always returns logits. Which loss and which nonlinearity go with
them is decided by the target (see ``sk_mlc/targets/``), never here.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

# Side of the pooled feature grid the built-in CNN hands to the head.
_GRID = 4
# depth="auto" adds stages until the feature maps are at most this small.
_AUTO_FEATURE_SIDE = 4
# ... and for a small training set, until they are at most this small.
_SMALL_FEATURE_SIDE = 8
_AUTO_DEPTH_RANGE = (2, 5)


def auto_depth(image_size: tuple[int, int], small: bool = False) -> int:
    """Stages for ``depth="auto"``: halve the longer side down to 4 pixels or less.

    28x28 gets 4 stages (28, 14, 7, 3), 32x32 gets 4, 56x56 gets 5, 8x8 gets
    2; at least 2 and at most 5. Each stage widens the receptive field, so
    larger images need more of them before the head sees whole objects. The
    last, widest stage on a 3x3 grid is cheap (about a quarter of the
    default network's arithmetic on 28x28) and was the best use of compute
    found for Fashion-MNIST (``benchmarks/bench_recipe.py``).

    A ``small`` training set (``data.SMALL_TRAINING_SET``) halves down to 8
    pixels or less instead, one stage fewer for most sizes (28x28 and 25x25
    get 3): on 1 to 20 images per class the fourth stage cost up to 0.2 of
    held-out accuracy (``benchmarks/bench_transfer.py``'s tiny part).
    """
    longest = max(image_size)
    side = _SMALL_FEATURE_SIDE if small else _AUTO_FEATURE_SIDE
    halvings = int(np.ceil(np.log2(max(longest / side, 1))))
    low, high = _AUTO_DEPTH_RANGE
    return int(np.clip(1 + halvings, low, high))


def convnet_depth(state) -> int | None:
    """The stages of the built-in CNN whose backbone state dict is ``state``.

    Stage ``k``'s convolution is ``features.<i>.weight`` (4-D); residual
    blocks nest deeper and are not counted. None when ``state`` has none
    (another architecture's weights).
    """
    stages = [
        name
        for name, tensor in state.items()
        if re.fullmatch(r"features\.\d+\.weight", name) and tensor.ndim == 4
    ]
    return len(stages) or None


class Standardize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std.

    The statistics are learned in ``fit`` and stored as buffers, so they travel
    with the module (device moves, ``state_dict``, pickling).
    """

    def __init__(self, mean, std):
        super().__init__()
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).view(1, -1, 1, 1)
        std = torch.as_tensor(np.asarray(std, dtype=np.float32)).view(1, -1, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ResidualBlock(nn.Module):
    """``relu(x + BN(conv(relu(BN(conv(x))))))``, both convolutions 3x3, same width.

    The second BatchNorm starts with zero scale, so each block starts as the
    identity (Goyal et al., 2017) and a deep stack trains as a shallow one
    at first.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ConvNet(nn.Module):
    """A VGG-style CNN that adapts to any image size and channel count.

    ``depth`` stages of ``conv3x3 - BatchNorm - ReLU`` (``width`` channels in
    the first stage, doubled in each next one), a 2x max-pool between stages
    on every axis that is still at least 2 pixels long (so a 1 x d "image"
    only shrinks along d), then average pooling to at most ``4 x 4`` cells,
    flattened. Keeping a coarse grid instead of one global average keeps
    *where* things are, which matters for small images and for multi-label
    images whose labels live in different places. The output is a
    ``(n, n_features)`` feature vector; the estimator attaches the head.

    ``residual=True`` puts a :class:`ResidualBlock` after every pooling, at
    the width of the stage before it, ahead of the next stage's widening
    convolution (the layout of ResNet-9 style networks): about twice the
    arithmetic of the plain network at the same width, for longer training.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        *,
        width: int = 16,
        depth: int | str = "auto",
        residual: bool = False,
    ):
        super().__init__()
        if depth == "auto":
            depth = auto_depth(image_size)
        self.depth = depth
        layers: list[nn.Module] = []
        height, wide = image_size
        channels = in_channels
        for stage in range(depth):
            out = width * 2**stage
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
            if stage < depth - 1:
                kernel = (2 if height >= 2 else 1, 2 if wide >= 2 else 1)
                if kernel != (1, 1):
                    layers.append(nn.MaxPool2d(kernel))
                    height, wide = height // kernel[0], wide // kernel[1]
                if residual:
                    layers.append(ResidualBlock(channels))
        grid = (min(_GRID, height), min(_GRID, wide))
        layers += [nn.AdaptiveAvgPool2d(grid), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.n_features = channels * grid[0] * grid[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Classifier(nn.Sequential):
    """``Standardize -> backbone -> [global pool] -> [dropout] -> Linear``.

    A ``Sequential`` (``module[0]`` is the standardisation, ``module[1]`` the
    backbone, ``module[-1]`` the output layer) that can freeze its backbone:
    while :attr:`frozen`, the backbone runs without autograd and in eval mode,
    so neither its weights nor its BatchNorm statistics move, and a training
    step costs a forward pass through it plus the head.
    """

    frozen: bool = False

    @property
    def backbone(self) -> nn.Module:
        return self[1]

    @property
    def output(self) -> nn.Linear:
        """The output layer, whose weights a linear probe fits."""
        return self[-1]

    def features(self) -> nn.Sequential:
        """The layers before the head (dropout and the output layer): a view.

        Its output is what the output layer reads, the backbone's features
        (pooled); the layers are this module's own, not copies.
        """
        end = len(self) - 1
        if isinstance(self[end - 1], nn.Dropout):
            end -= 1
        return self[:end]

    def freeze(self, frozen: bool = True) -> Classifier:
        """Freeze (or unfreeze) the backbone; returns the module."""
        self.frozen = bool(frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # BatchNorm keeps its running statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self):
            if index == 1 and self.frozen and torch.is_grad_enabled():
                with torch.no_grad():
                    x = layer(x)
            else:
                x = layer(x)
        return x


POOLINGS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}


def build_features(
    backbone: nn.Module,
    image_shape: tuple[int, int, int],
    mean,
    std,
    *,
    pooling: str = "avg",
    owner: str = "",
) -> tuple[list[nn.Module], int]:
    """``Standardize -> backbone -> [global pool, flatten]`` and its feature count.

    The backbone's output size is found with one dry run on a zero image, so any
    module that maps ``(n, C, H, W)`` to ``(n, F)`` or ``(n, F, h, w)`` fits;
    feature maps are pooled to one value per channel (``pooling``: "avg" or
    "max"). ``owner`` (an estimator's name) prefixes the error messages.
    """
    prefix = f"{owner}: " if owner else ""
    probe = torch.zeros((2, *image_shape))
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(probe)
    except Exception as exc:  # the user's module; its error is not ours to type
        raise ValueError(
            f"{prefix}The module failed on a batch of images of shape (n, C, H, W) "
            f"= (n, {image_shape[0]}, {image_shape[1]}, {image_shape[2]}): {exc}"
        ) from exc
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim not in (2, 4):
        shape = (
            tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        )
        raise ValueError(
            f"{prefix}The module must return a tensor of shape (n, F) or (n, F, h, w); "
            f"it returned {shape}."
        )
    layers: list[nn.Module] = [Standardize(mean, std), backbone]
    if out.ndim == 4:
        layers += [POOLINGS[pooling](1), nn.Flatten()]
    return layers, int(out.shape[1])


def build_module(
    backbone: nn.Module,
    image_shape: tuple[int, int, int],
    n_outputs: int,
    mean,
    std,
    dropout: float,
    *,
    owner: str = "",
) -> Classifier:
    """``Standardize -> backbone -> [global pool] -> dropout -> Linear(n_outputs)``.

    The layers up to the pooling are :func:`build_features`'.
    """
    layers, n_features = build_features(backbone, image_shape, mean, std, owner=owner)
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(n_features, n_outputs))
    return Classifier(*layers)


def input_statistics(module: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel ``(mean, std)`` that ``module``'s ``Standardize`` applies."""
    standardize = module[0]
    return (
        standardize.mean.detach().cpu().numpy().ravel().copy(),
        standardize.std.detach().cpu().numpy().ravel().copy(),
    )


def set_input_statistics(module: nn.Sequential, mean, std) -> None:
    """Store the per-channel ``mean`` and ``std`` in ``module``'s ``Standardize``."""
    standardize = module[0]
    standardize.mean.copy_(torch.as_tensor(np.asarray(mean)).view_as(standardize.mean))
    standardize.std.copy_(torch.as_tensor(np.asarray(std)).view_as(standardize.std))
