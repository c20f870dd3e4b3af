"""In-memory training images kept on the training device for the whole fit.

On a CUDA device, building every batch on the CPU (fancy-index, float32
conversion, scaling) and copying it over costs more than the small networks
sk_mlc trains take to process it. :class:`DeviceImages` copies the array to
the device once, in its compact dtype (uint8 stays uint8: a quarter of the
float32 bytes), and builds each batch there: one gather, a layout change, a
conversion and a scale, all on the GPU. It stands in for an
:class:`~sk_mlc.data.ImageBatches` wherever a ``BatchDataset`` reads batches.

:class:`DeviceBatchDataset` keeps the rest of a batch there too: the row
index, the encoded targets and the sample weights, so that a batch is one
gather of each, indexed by a slice of a permutation drawn on the device
(``BatchSampler(device=...)``): nothing per batch crosses from the host.

Image files, and arrays too large for the device, keep the batch-by-batch
path, with pinned memory and non-blocking copies (``training/_net.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ._inputs import ImageBatches, finish_batch

# Arrays up to this share of the device's free memory are copied to it: the
# rest stays for the network, its activations and the optimizer.
_MAX_SHARE = 0.25


class DeviceImages:
    """``images``'s pixels on ``device``; :meth:`batch` as ``ImageBatches.batch``.

    uint8 pixels are kept as uint8; other dtypes as float32 (the dtype every
    batch is converted to anyway: the same values, before scaling).
    """

    is_lazy = False

    def __init__(self, images: ImageBatches, device):
        self.source = images
        self.image_shape = images.image_shape
        self.device = torch.device(device)
        pixels = images.raw(slice(None))
        if pixels.dtype != np.uint8:
            pixels = pixels.astype(np.float32)
        self.pixels = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)

    def __len__(self) -> int:
        return len(self.pixels)

    def batch(self, index) -> torch.Tensor:
        """Images at ``index`` as a float32 ``(k, C, H, W)`` tensor on the device.

        ``index``: row numbers, as an array or as an int64 tensor (on the
        device: no copy).
        """
        source = self.source
        rows = (
            index
            if torch.is_tensor(index)
            else torch.from_numpy(np.asarray(index, dtype=np.int64))
        )
        batch = self.pixels.index_select(0, rows.to(self.device, non_blocking=True))
        if not source.channels_first:
            # A view of NHWC memory as NCHW: channels-last strides, which the
            # convolutions of the channels-last network read without a copy.
            batch = batch.permute(0, 3, 1, 2)
        batch = finish_batch(batch.float(), source.scale, source.mode, source.size)
        return batch.contiguous(memory_format=torch.channels_last)


class DeviceBatchDataset(Dataset):
    """``BatchDataset`` over :class:`DeviceImages`, with every part on the device.

    ``dataset[positions]`` takes an int64 tensor of positions on the device
    (a slice of the sampler's permutation) and returns ``(X, y)`` as
    ``BatchDataset`` does: ``y`` is None at predict, ``(y, weight)`` with
    sample weights.
    """

    def __init__(self, images: DeviceImages, y=None, index=None, sample_weight=None):
        device = images.device
        self.images = images
        self.device = device
        index = np.arange(len(images)) if index is None else np.asarray(index)
        self.index = torch.as_tensor(index, dtype=torch.int64, device=device)
        self.y = None if y is None else torch.as_tensor(np.asarray(y), device=device)
        self.sample_weight = (
            None
            if sample_weight is None
            else torch.as_tensor(np.asarray(sample_weight), device=device)
        )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, positions):
        rows = self.index[positions]
        X = self.images.batch(rows)
        y = None if self.y is None else self.y[rows]
        if self.sample_weight is not None:
            y = (y, self.sample_weight[rows])
        return X, y


def fits_on_device(images: ImageBatches, device: str, free_bytes: int) -> bool:
    """Whether to keep ``images`` on ``device``, which has ``free_bytes`` free.

    Only in-memory arrays, only on CUDA (on the CPU the array is already
    where the network runs), and only when they take at most a quarter of
    the free memory.
    """
    if torch.device(device).type != "cuda" or images.is_lazy:
        return False
    itemsize = 1 if images.data.dtype == np.uint8 else 4
    nbytes = len(images) * int(np.prod(images.sample_shape)) * itemsize
    return nbytes <= _MAX_SHARE * free_bytes


def training_images(images: ImageBatches, device: str):
    """The images to train from: on ``device`` when :func:`fits_on_device`."""
    if torch.device(device).type != "cuda" or images.is_lazy:
        return images
    free_bytes, _ = torch.cuda.mem_get_info(torch.device(device))
    if not fits_on_device(images, device, free_bytes):
        return images
    return DeviceImages(images, device)
