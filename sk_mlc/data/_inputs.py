"""From what the user passes as ``X`` to float32 ``(N, C, H, W)`` batches.

One function, :func:`read_images`, turns every accepted ``X`` (arrays, flat
rows, image files, PIL images, :class:`~sk_mlc.LazyImages`) into the same
thing: an :class:`ImageBatches`. Validation happens once, on the whole input,
without copying it; conversion to float32, scaling, channel conversion and
resizing happen batch by batch, so memory stays near the size of the input
plus a few batches.

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
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
from PIL import Image
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.validation import validate_data

from .._messages import named_errors
from ._decode import MODE_BY_CHANNELS, check_size
from ._lazy import LazyImages

# Integer images are scaled by their dtype's range, never by the data's range:
# a batch that happens to be dark must not be brightened.
_DTYPE_SCALE = {np.dtype(np.uint8): 1 / 255, np.dtype(np.uint16): 1 / 65535}
_MAX_CHANNELS = 4
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# The Pillow modes an array can be converted to, and their channel counts.
_ARRAY_MODES = {"L": 1, "RGB": 3}
# ITU-R 601-2 luma, the weights of Pillow's own RGB -> L conversion.
_LUMA = (0.299, 0.587, 0.114)


def pixel_scale(dtype) -> float:
    """The factor pixels of ``dtype`` are multiplied by: 1 / 255 for uint8."""
    return _DTYPE_SCALE.get(np.dtype(dtype), 1.0)


@dataclass(frozen=True)
class GraphInput:
    """One image as an exported graph takes it (see :meth:`InputSpec.graph_input`).

    ``sample_shape`` is ``(d,)`` for flat rows, ``(H, W)`` for one-channel
    images, ``(H, W, C)`` or ``(C, H, W)``; ``scale`` is the dtype's scaling.
    """

    dtype: np.dtype
    sample_shape: tuple[int, ...]
    channels_first: bool
    scale: float


@dataclass(frozen=True)
class InputSpec:
    """How ``X`` becomes images: built from the parameters in ``fit``, kept for predict.

    ``image_shape`` reshapes flat rows, ``layout`` names the channel axis,
    ``size`` (``(height, width)``) resizes and ``mode`` converts the channels
    of every input, files and arrays alike; None keeps what the input has
    (files decode as RGB at their first image's size).
    """

    image_shape: tuple[int, ...] | None
    layout: str
    size: tuple[int, int] | None
    mode: str | None
    # Set once fit has seen the data: the dtype whose scaling rule predict keeps,
    # and where the training images had their channels, which the "auto" layout
    # guessed from their shape (``to_onnx`` takes images laid out the same way).
    pixel_dtype: str | None = None
    channels_first: bool | None = None

    def fitted(self, images: ImageBatches) -> InputSpec:
        """This spec, with the pixel dtype and channel axis of training ``images``."""
        return replace(
            self,
            pixel_dtype=str(images.data.dtype),
            channels_first=images.channels_first,
        )

    def graph_input(self, image_shape: tuple[int, int, int], name: str) -> GraphInput:
        """How an exported graph takes images: as ``predict_proba`` read training ones.

        ``image_shape`` is the fitted ``(C, H, W)``. Images come at that size
        and channel count: the ``size`` and ``mode`` conversions are left
        out, as ``predict_proba`` itself skips them for images that already
        have the fitted shape. The layout is the one the layout rule gave the
        training images (module docstring).
        """
        dtype = np.dtype(self.pixel_dtype or np.float32)
        scale = pixel_scale(dtype)
        channels, height, width = image_shape
        if self.image_shape is None and image_shape[:2] == (1, 1):
            # Tabular rows are 1 x d grey images, whatever the layout rule says.
            return GraphInput(dtype, (width,), True, scale)
        if self.image_shape is not None:
            # Flat rows, each reshaped to image_shape, then the layout rule.
            row = self.image_shape
            shape, first = _resolve_layout(row, self.layout, name)
            resolved = shape if first else (shape[2], shape[0], shape[1])
            if tuple(resolved) != tuple(image_shape):
                raise ValueError(
                    f"{name} reshapes flat rows to image_shape={row} and converts "
                    f"them to (C, H, W) = {tuple(image_shape)} (image_size / "
                    "image_mode); the graph takes rows without that conversion "
                    f"only. Refit on images of shape {tuple(image_shape)}, or "
                    "convert rows before predicting."
                )
            return GraphInput(dtype, (int(np.prod(row)),), first, scale)
        first = self.channels_first
        if first is None:  # fitted before the spec kept it: the layout rule's guess
            first = channels == 1 or _channels_first(
                (height, width, channels), self.layout, name
            )
        if first and channels == 1 and self.layout != "NCHW":
            # (n, H, W) was fitted, or (n, 1, H, W): the graph takes the plain one.
            return GraphInput(dtype, (height, width), True, scale)
        sample = tuple(image_shape) if first else (height, width, channels)
        return GraphInput(dtype, sample, first, scale)

    @classmethod
    def from_params(cls, image_shape, layout, image_size, image_mode, name: str):
        if image_shape is not None:
            shape = tuple(image_shape)
            if len(shape) not in (2, 3) or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                for s in shape
            ):
                raise ValueError(
                    f"{name}: image_shape must be None, (H, W), (H, W, C) or "
                    f"(C, H, W) of positive ints; got {image_shape!r}."
                )
            image_shape = tuple(int(s) for s in shape)
        try:
            size = check_size(image_size)
        except ValueError as exc:
            raise ValueError(f"{name}: image_{exc}") from None
        return cls(image_shape, layout, size, image_mode)


class ImageBatches:
    """Images validated once, converted to float32 NCHW tensors batch by batch.

    ``data`` is anything that returns a NumPy array when indexed with an
    integer array: a NumPy array or :class:`~sk_mlc.LazyImages`. Each batch is
    scaled by the dtype (uint8 / 255, uint16 / 65535), then converted to
    ``mode`` and resized to ``size`` where they are given (arrays only: files
    are decoded at their mode and size by Pillow).
    """

    def __init__(
        self,
        data,
        sample_shape: tuple[int, ...],
        channels_first: bool,
        *,
        mode: str | None = None,
        size: tuple[int, int] | None = None,
    ):
        self.data = data
        self.sample_shape = tuple(sample_shape)
        self.channels_first = channels_first
        self.scale = pixel_scale(data.dtype)
        if channels_first:
            channels, height, width = self.sample_shape
        else:
            height, width, channels = self.sample_shape
        self.mode = None if mode is None or _ARRAY_MODES[mode] == channels else mode
        self.size = None if size is None or tuple(size) == (height, width) else size
        self.image_shape = (
            channels if self.mode is None else _ARRAY_MODES[self.mode],
            *((height, width) if self.size is None else self.size),
        )

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
        return finish_batch(batch, self.scale, self.mode, self.size)

    def fingerprint(self):
        """Everything that decides the tensors: for cache keys."""
        layout = (self.sample_shape, self.channels_first, self.mode, self.size)
        data = self.data
        if not isinstance(data, LazyImages):
            return layout, data
        sources = []
        for source in data.sources:
            if isinstance(source, Image.Image):
                sources.append((source.mode, source.size, source.tobytes()))
            else:
                # A file edited in place gets a new size or modification time.
                stat = os.stat(source)
                sources.append((os.fspath(source), stat.st_size, stat.st_mtime_ns))
        return layout, data.shape, data.mode, data.resize, sources


def finish_batch(
    batch: torch.Tensor, scale: float, mode: str | None, size: tuple | None
) -> torch.Tensor:
    """A float ``(k, C, H, W)`` batch scaled by dtype, channel-converted, resized.

    The steps every batch takes after it is laid out as NCHW floats, on the
    CPU (``ImageBatches.batch``) or on the GPU (``DeviceImages``).
    """
    if scale != 1.0:
        batch.mul_(scale)
    if mode is not None:
        batch = _convert_channels(batch, mode)
    if size is not None:
        # Antialiased bilinear: what Pillow's BILINEAR does for files.
        batch = torch.nn.functional.interpolate(
            batch, size=size, mode="bilinear", antialias=True
        )
    return batch


def _convert_channels(batch: torch.Tensor, mode: str) -> torch.Tensor:
    """Grey <-> RGB on a float ``(k, C, H, W)`` batch, dropping alpha as Pillow does."""
    colour = batch[:, :3] if batch.shape[1] >= 3 else batch[:, :1]
    if mode == "L":
        if colour.shape[1] == 1:
            return colour
        weights = torch.tensor(_LUMA, dtype=batch.dtype, device=batch.device)
        weights = weights.view(1, 3, 1, 1)
        return (colour * weights).sum(dim=1, keepdim=True)
    return colour.expand(-1, 3, -1, -1) if colour.shape[1] == 1 else colour


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


def read_images(
    estimator,
    X,
    y=None,
    *,
    spec: InputSpec,
    reset: bool,
    expected_shape: tuple[int, int, int] | None = None,
) -> tuple[ImageBatches, object]:
    """Validate ``X`` (and ``y`` when given) and describe how to cut X into batches.

    The one entry point for every kind of ``X``. On ``reset`` this sets
    ``n_features_in_`` (and ``feature_names_in_``) as
    :func:`~sklearn.utils.validation.validate_data` does; otherwise it checks
    them against the fitted values, and the ``(C, H, W)`` of the converted
    images against ``expected_shape``. Returns ``(images, y)``; ``y`` is None
    when not given.
    """
    name = type(estimator).__name__
    with named_errors(name):
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        elif getattr(X, "ndim", None) == 1 and hasattr(X, "to_numpy"):
            X = X.to_numpy()  # a pandas Series, of image paths say
        if is_image_sequence(X):
            images, y = _read_files(estimator, X, y, spec, reset, expected_shape)
            _check_shape(images, expected_shape, name)
        else:
            images, y = _read_array(estimator, X, y, spec, reset, expected_shape)
        if not reset and spec.pixel_dtype is not None:
            _check_scaling(images, np.dtype(spec.pixel_dtype), name)
    return images, y


def _scaling(dtype: np.dtype) -> str:
    scale = _DTYPE_SCALE.get(np.dtype(dtype))
    return "as they are" if scale is None else f"/ {round(1 / scale)}"


def _check_scaling(images: ImageBatches, fitted: np.dtype, name: str) -> None:
    """The same pixels must mean the same thing at predict as in fit.

    Integer pixels are scaled by their dtype's range, others used as they
    are: uint8 pixels at fit and the same image as floats at predict would be
    read 255 times brighter, a silent wrong answer.
    """
    got = images.data.dtype
    if _scaling(got) != _scaling(fitted):
        raise ValueError(
            f"{name} was fitted on {fitted} pixels (used {_scaling(fitted)}), but "
            f"X has dtype {got} (which would be used {_scaling(got)}): the same "
            f"image would give other predictions. Pass X as {fitted}, as in fit."
        )


def _check_shape(images: ImageBatches, expected_shape, name: str) -> None:
    if expected_shape is not None and images.image_shape != tuple(expected_shape):
        raise ValueError(
            f"X holds images of shape (C, H, W) = {images.image_shape}, but {name} "
            f"was fitted on images of shape {tuple(expected_shape)}."
        )


def _read_files(estimator, X, y, spec: InputSpec, reset: bool, expected_shape):
    """Paths, PIL images or LazyImages, decoded by Pillow."""
    given = X if isinstance(X, LazyImages) else None
    mode, size = spec.mode, spec.size
    if expected_shape is not None:  # predict: the fitted channels and size
        mode = mode or MODE_BY_CHANNELS.get(expected_shape[0])
        size = size or tuple(expected_shape[1:])
    elif given is not None:
        mode, size = mode or given.mode, size or given.size
    mode = mode or "RGB"
    if given is not None and (given.mode, given.size) == (mode, size):
        lazy = given
    else:
        sources = X if given is None else given.sources
        resize = "resize" if given is None else given.resize
        lazy = LazyImages(sources, mode=mode, size=size, resize=resize)
    images = ImageBatches(lazy, lazy.shape[1:], channels_first=False)
    n_features = int(np.prod(images.image_shape))
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_  # from an earlier fit on a DataFrame
    if y is not None:
        y = _check_y(y)
        check_consistent_length(lazy, y)
    return images, y


def _check_y(y):
    """``y`` as scikit-learn's validation leaves it, NaN allowed.

    A 2-D y may be a multi-hot matrix with unknown entries (NaN); what NaN
    means, and where it is an error, is the target table's to say
    (``sk_mlc/targets/``). Infinity is refused here.
    """
    return check_array(
        y,
        accept_sparse="csr",
        ensure_2d=False,
        dtype=None,
        input_name="y",
        ensure_all_finite="allow-nan",
    )


def _read_array(estimator, X, y, spec: InputSpec, reset: bool, expected_shape):
    """Arrays and flat rows; scikit-learn validates a flat view of them."""
    name = type(estimator).__name__
    if not sp.issparse(X) and not hasattr(X, "ndim"):
        try:
            X = np.asarray(X)
        except ValueError as exc:  # a ragged list: images of several shapes
            raise ValueError(
                f"{name} expects images of one shape (or image files, which "
                f"image_size brings to one size); X holds arrays of different "
                f"shapes: {exc}"
            ) from None
    shape = X.shape
    if len(shape) > 4:
        raise ValueError(
            f"{name} expects images as (n, H, W), (n, H, W, C), (n, C, H, W) or "
            f"flat (n, d) rows; got an array of shape {shape}."
        )
    if len(shape) > 2:
        # A wrong image shape says more than a wrong number of features.
        _check_shape(_describe(X, shape[1:], spec, name), expected_shape, name)
        # Validate a flat view (no copy for a contiguous array) so that
        # scikit-learn's checks of dtype, NaN/inf, emptiness and n_features apply.
        X = X.reshape(len(X), int(np.prod(shape[1:])))
    if reset or (spec.mode is None and spec.size is None):
        flat = validate_data(estimator, X, reset=reset, dtype="numeric")
    else:
        # Converting channels or size is what lets an input with another
        # number of features in: the converted shape is checked instead.
        flat = check_array(X, dtype="numeric", estimator=estimator, input_name="X")
    if y is not None:
        # y may be 2-D (multi-hot), sparse, with NaN: the target table decides.
        y = _check_y(y)
        check_consistent_length(flat, y)
    _check_float32_range(flat, name)
    if len(shape) > 2:
        sample_shape = tuple(shape[1:])
    elif spec.image_shape is not None:
        sample_shape = spec.image_shape
        if np.prod(sample_shape) != flat.shape[1]:
            raise ValueError(
                f"{name}: image_shape must be (H, W), (H, W, C) or (C, H, W) with "
                f"H * W * C equal to the {flat.shape[1]} features of a row of X; "
                f"got image_shape={sample_shape}."
            )
    else:
        # A tabular row is a 1 x d grey image, whatever the layout rule says.
        sample_shape = (1, 1, flat.shape[1])
    images = _describe(flat, sample_shape, spec, name, tabular=len(shape) == 2)
    _check_shape(images, expected_shape, name)
    return images, y


def _check_float32_range(flat: np.ndarray, name: str) -> None:
    """Float pixels wider than float32 must fit in it: the network computes in it.

    scikit-learn's check for inf passes a float64 1e39; cast to float32 it is
    inf, and fit then trains a network of NaN weights without a word.
    """
    if flat.dtype.kind != "f" or flat.dtype.itemsize <= 4 or flat.size == 0:
        return
    largest = max(-float(flat.min()), float(flat.max()))  # two passes, no copy
    if largest > _FLOAT32_MAX:
        raise ValueError(
            f"{name}: X contains a value too large for float32 ({largest:.3g} in "
            "magnitude), the precision the network computes in. Rescale X."
        )


def _describe(
    X, sample_shape, spec: InputSpec, name: str, tabular: bool = False
) -> ImageBatches:
    """``X``'s rows as images of ``sample_shape``, converted as ``spec`` says."""
    if tabular and spec.image_shape is None:
        channels_first = True
    else:
        sample_shape, channels_first = _resolve_layout(sample_shape, spec.layout, name)
    mode = spec.mode
    if mode is not None and mode not in _ARRAY_MODES:
        channels = sample_shape[0] if channels_first else sample_shape[-1]
        if MODE_BY_CHANNELS.get(channels) != mode:
            raise ValueError(
                f"{name}: image_mode={mode!r} converts image files only; arrays "
                f"convert to {sorted(_ARRAY_MODES)} or keep their {channels} "
                "channel(s) with image_mode=None."
            )
        mode = None
    data = X.reshape((len(X), *sample_shape))
    return ImageBatches(data, sample_shape, channels_first, mode=mode, size=spec.size)


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
