"""In-memory training images kept on the training device for the whole fit.

On a CUDA device, building every batch on the CPU (fancy-index, float32
conversion, scaling) and copying it over costs more than the small networks
sk_mlc trains take to process it. :class:`DeviceImages` copies the array to
the device once, in its compact dtype (uint8 stays uint8: a quarter of the
float32 bytes), and builds each batch there: one gather, a layout change, a
conversion and a scale, all on the GPU. It stands in for an
:class:`~sk_mlc.data.ImageBatches` wherever a ``BatchDataset`` reads batches.

Image files, and arrays too large for the device, keep the batch-by-batch
path, with pinned memory and non-blocking copies (``training/_net.py``).
"""

from __future__ import annotations

import numpy as np
import torch

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
        """Images at ``index`` as a float32 ``(k, C, H, W)`` tensor on the device."""
        source = self.source
        rows = torch.from_numpy(np.asarray(index, dtype=np.int64))
        batch = self.pixels.index_select(0, rows.to(self.device, non_blocking=True))
        if not source.channels_first:
            # A view of NHWC memory as NCHW: channels-last strides, which the
            # convolutions of the channels-last network read without a copy.
            batch = batch.permute(0, 3, 1, 2)
        batch = finish_batch(batch.float(), source.scale, source.mode, source.size)
        return batch.contiguous(memory_format=torch.channels_last)


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
