"""From what the user passes as ``X`` to float32 ``(N, C, H, W)`` batches.

Validation happens once, on the whole input, without copying it; conversion to
float32 and scaling happen batch by batch, so memory stays near the size of the
input plus a few batches.

The layout rule (documented on :class:`~sk_mlc.CNNClassifier`):

* ``(n, d)`` rows are ``1 x d`` one-channel images unless ``image_shape`` says
  how to reshape a row; the reshaped rows then follow the rules below;
* ``(n, H, W)`` is one channel;
* ``(n, A, B, C)`` is channels-last (NHWC) when ``C <= 4``, otherwise
  channels-first (NCHW) when ``A <= 4``; ``layout`` overrides the guess.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from PIL import Image
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.validation import validate_data

from ._lazy import LazyImages

# Integer images are scaled by their dtype's range, never by the data's range:
# a batch that happens to be dark must not be brightened.
_DTYPE_SCALE = {np.dtype(np.uint8): 1 / 255, np.dtype(np.uint16): 1 / 65535}
_MAX_CHANNELS = 4


class ImageBatches:
    """Images validated once, converted to float32 NCHW tensors batch by batch.

    ``data`` is anything that returns a NumPy array when indexed with an
    integer array: a NumPy array or :class:`~sk_mlc.LazyImages`.
    """

    def __init__(self, data, sample_shape: tuple[int, ...], channels_first: bool):
        self.data = data
        self.sample_shape = sample_shape
        self.channels_first = channels_first
        self.scale = _DTYPE_SCALE.get(np.dtype(data.dtype), 1.0)
        if channels_first:
            self.image_shape = tuple(sample_shape)
        else:
            height, width, channels = sample_shape
            self.image_shape = (channels, height, width)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def is_lazy(self) -> bool:
        return isinstance(self.data, LazyImages)

    def raw(self, index) -> np.ndarray:
        """Images at ``index``, in the caller's dtype, as ``(k, *sample_shape)``."""
        return np.asarray(self.data[index]).reshape((-1, *self.sample_shape))

    def batch(self, index) -> torch.Tensor:
        """Images at ``index`` as a float32 ``(k, C, H, W)`` tensor, scaled by dtype."""
        array = self.raw(index)
        if not self.channels_first:
            array = array.transpose(0, 3, 1, 2)
        batch = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if self.scale != 1.0:
            batch.mul_(self.scale)
        return batch


def is_image_sequence(X) -> bool:
    """True for a 1-D sequence of image paths or PIL images (the streaming input)."""
    if isinstance(X, LazyImages):
        return True
    if isinstance(X, (str, bytes)) or sp.issparse(X):
        return False
    if isinstance(X, np.ndarray):
        if X.ndim != 1 or X.dtype.kind not in "OU" or len(X) == 0:
            return False
    elif not isinstance(X, Sequence) or len(X) == 0:
        return False
    return isinstance(X[0], (str, os.PathLike, Image.Image))


def validate_images(
    estimator,
    X,
    y=None,
    *,
    reset: bool,
    image_shape: tuple[int, ...] | None,
    layout: str,
    lazy_options: dict,
    expected_shape: tuple[int, int, int] | None = None,
) -> tuple[ImageBatches, object]:
    """Validate ``X`` (and ``y`` when given); describe how to cut X into batches.

    On ``reset`` this sets ``n_features_in_`` (and ``feature_names_in_``) as
    :func:`~sklearn.utils.validation.validate_data` does; otherwise it checks
    them against the fitted values, and the ``(C, H, W)`` of the images against
    ``expected_shape``. Returns the images and the validated ``y``.
    """
    name = type(estimator).__name__
    # y may be 2-D (multi-hot) and sparse; its meaning is decided in _targets.
    xy = {} if y is None else {"y": y, "multi_output": True}
    if is_image_sequence(X):
        lazy = X if isinstance(X, LazyImages) else LazyImages(X, **lazy_options)
        images = ImageBatches(lazy, lazy.shape[1:], channels_first=False)
        _check_shape(images, expected_shape, name)
        if reset:
            estimator.n_features_in_ = int(np.prod(images.image_shape))
        if y is not None:
            y = check_array(
                y, accept_sparse="csr", ensure_2d=False, dtype=None, input_name="y"
            )
            check_consistent_length(lazy, y)
        return images, y

    if not sp.issparse(X) and not hasattr(X, "ndim"):
        X = np.asarray(X)
    if getattr(X, "ndim", 2) > 2:
        if X.ndim > 4:
            raise ValueError(
                f"{name} expects images as (n, H, W), (n, H, W, C), (n, C, H, W) or "
                f"flat (n, d) rows; got an array of shape {X.shape}."
            )
        sample_shape, channels_first = _resolve_layout(X.shape[1:], layout, name)
        images = ImageBatches(X, sample_shape, channels_first)
        _check_shape(images, expected_shape, name)
        # Validate a flat view (no copy for a contiguous array) so that
        # scikit-learn's checks of dtype, NaN/inf, emptiness and n_features apply.
        flat = validate_data(
            estimator,
            X.reshape(len(X), int(np.prod(X.shape[1:]))),
            reset=reset,
            dtype="numeric",
            **xy,
        )
        if y is not None:
            flat, y = flat
        return ImageBatches(flat.reshape(X.shape), sample_shape, channels_first), y

    data = validate_data(estimator, X, reset=reset, dtype="numeric", **xy)
    if y is not None:
        data, y = data
    if image_shape is None:
        return ImageBatches(data, (1, 1, data.shape[1]), channels_first=True), y
    sample_shape = tuple(int(s) for s in image_shape)
    if len(sample_shape) not in (2, 3) or np.prod(sample_shape) != data.shape[1]:
        raise ValueError(
            f"{name}: image_shape must be (H, W), (H, W, C) or (C, H, W) with "
            f"H * W * C equal to the {data.shape[1]} features of a row of X; got "
            f"image_shape={tuple(image_shape)}."
        )
    sample_shape, channels_first = _resolve_layout(sample_shape, layout, name)
    images = ImageBatches(data, sample_shape, channels_first)
    _check_shape(images, expected_shape, name)
    return images, y


def _check_shape(images: ImageBatches, expected_shape, name: str) -> None:
    if expected_shape is not None and images.image_shape != tuple(expected_shape):
        raise ValueError(
            f"X holds images of shape (C, H, W) = {images.image_shape}, but {name} "
            f"was fitted on images of shape {tuple(expected_shape)}."
        )


def _resolve_layout(sample_shape: tuple[int, ...], layout: str, name: str):
    """``(sample_shape, channels_first)``; one-channel images get a channel axis."""
    if len(sample_shape) == 2:
        return (1, *sample_shape), True
    return tuple(sample_shape), _channels_first(sample_shape, layout, name)


def _channels_first(sample_shape: tuple[int, ...], layout: str, name: str) -> bool:
    if layout != "auto":
        return layout == "NCHW"
    first, _, last = sample_shape
    if last <= _MAX_CHANNELS:
        return False
    if first <= _MAX_CHANNELS:
        return True
    raise ValueError(
        f"{name} cannot tell the channel axis of images of shape {sample_shape}: "
        f"neither the first nor the last axis has at most {_MAX_CHANNELS} entries. "
        "Pass layout='NHWC' or layout='NCHW'."
    )


def channel_stats(images: ImageBatches, index: np.ndarray, chunk: int):
    """Per-channel mean and std of the images at ``index``, ``chunk`` at a time.

    Pass the training batch size as ``chunk``: the statistics then hold no
    more images at a time than a training step does (the float64 copy of a
    512-image chunk of 64x64 RGB images and its square took 96 MiB).
    """
    n_channels = images.image_shape[0]
    total = np.zeros(n_channels)
    total_sq = np.zeros(n_channels)
    count = 0
    for start in range(0, len(index), chunk):
        batch = images.batch(index[start : start + chunk]).double()
        total += batch.sum(dim=(0, 2, 3)).numpy()
        total_sq += batch.square().sum(dim=(0, 2, 3)).numpy()
        count += batch.shape[0] * batch.shape[2] * batch.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    # A constant channel carries no information; dividing by ~0 would blow it up.
    std = np.where(std > 1e-6, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)
