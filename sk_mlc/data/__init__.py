"""Reading images: from what a user passes as ``X`` to float32 batches.

* ``_decode``: one image through Pillow into a ``uint8`` array
  (:func:`read_image`), with the rules for deep, paletted and alpha images;
* ``_lazy``: :class:`LazyImages`, an array-like of files decoded on access;
* ``_loader``: :class:`ImageLoader`, the same decoding as a transformer;
* ``_inputs``: :class:`InputSpec` and :func:`read_images`, which validate any
  ``X`` once and describe it as :class:`ImageBatches`;
* ``_batches``: the skorch dataset and loader that cut it into whole batches;
* ``_device``: the same batches built on a GPU from a copy kept there;
* ``_augment``: training-time augmentation and the test-time rule.
"""

from ._augment import (
    AUGMENT_DOCS,
    AUGMENTATIONS,
    SMALL_TRAINING_SET,
    TTA,
    Augmenter,
    flips,
    random_flip,
    random_shift,
    resolve_augment,
    resolve_tta,
    tta_proba,
)
from ._batches import BatchDataset, BatchSampler, batch_dataset, batch_loader
from ._decode import MODE_BY_CHANNELS, MODES, decode_error, read_image
from ._device import (
    DeviceBatchDataset,
    DeviceImages,
    fits_on_device,
    training_images,
)
from ._inputs import (
    GraphInput,
    ImageBatches,
    InputSpec,
    channel_stats,
    finish_batch,
    pixel_scale,
    read_images,
)
from ._lazy import LazyImages
from ._loader import ImageLoader

__all__ = [
    "AUGMENTATIONS",
    "AUGMENT_DOCS",
    "MODES",
    "MODE_BY_CHANNELS",
    "TTA",
    "Augmenter",
    "BatchDataset",
    "BatchSampler",
    "DeviceBatchDataset",
    "DeviceImages",
    "GraphInput",
    "ImageBatches",
    "ImageLoader",
    "InputSpec",
    "LazyImages",
    "batch_dataset",
    "batch_loader",
    "channel_stats",
    "decode_error",
    "finish_batch",
    "fits_on_device",
    "flips",
    "pixel_scale",
    "random_flip",
    "random_shift",
    "read_image",
    "read_images",
    "SMALL_TRAINING_SET",
    "resolve_augment",
    "resolve_tta",
    "training_images",
    "tta_proba",
]
