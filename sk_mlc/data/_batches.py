"""Feeding skorch: a dataset that returns whole batches, and its loader.

skorch's default ``Dataset`` indexes one sample at a time and lets the
``DataLoader`` collate them, which costs a Python call per image. Here the
sampler yields an array of indices per batch and the dataset converts the whole
batch at once (one fancy-index, one dtype conversion), as a hand-written loop
would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .._compat import shutdown_loader_workers
from ._device import DeviceBatchDataset, DeviceImages
from ._inputs import ImageBatches


class BatchDataset(Dataset):
    """``dataset[positions] -> (X_batch, y_batch)`` for an array of positions.

    ``index`` maps positions to rows of ``images`` (a train or validation
    subset); ``y`` is the encoded target for *all* rows, or None at predict.
    With ``sample_weight`` (one per row), ``y_batch`` is the pair
    ``(y_batch, weight_batch)``, which the net's ``get_loss`` unpacks.
    """

    def __init__(
        self,
        images: ImageBatches,
        y: np.ndarray | None = None,
        index=None,
        sample_weight: np.ndarray | None = None,
    ):
        self.images = images
        self.y = y
        self.index = np.arange(len(images)) if index is None else np.asarray(index)
        # All the rows in order (no validation split): positions are rows,
        # and a batch needs no gather of the index.
        self.identity = len(self.index) == len(images) and bool(
            np.array_equal(self.index, np.arange(len(images)))
        )
        self.sample_weight = sample_weight

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, positions):
        rows = positions if self.identity else self.index[positions]
        X = self.images.batch(rows)
        y = None if self.y is None else torch.from_numpy(self.y[rows])
        if self.sample_weight is not None:
            y = (y, torch.from_numpy(self.sample_weight[rows]))
        return X, y


class BatchSampler(Sampler):
    """Yields one index array per batch, reshuffled on each pass when ``shuffle``.

    A last batch of a single sample is merged into the one before it:
    BatchNorm cannot normalise a batch of one image whose features are 1x1.

    ``shard=(i, n)`` yields process ``i`` of ``n``'s share of every pass for
    data parallel training: batches ``i, i + n, ...`` of the pass's order
    (the same on every process: the same seed), wrapping around to the first
    batches so that every process takes the same number of steps.

    With a ``device`` (a :class:`DeviceBatchDataset`'s), the permutation is
    drawn there, from a generator on that device, and each batch is a slice
    of it (a view): no index array crosses from the host per batch. Without
    one, the order is drawn on the CPU and batches are NumPy arrays.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        shard: tuple[int, int] = (0, 1),
        device=None,
    ):
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.generator = torch.Generator(device=device or "cpu").manual_seed(seed)
        self.shard = shard

    def _bounds(self) -> list[int]:
        bounds = list(range(0, self.n, self.batch_size)) + [self.n]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        return bounds

    def __len__(self) -> int:
        _, processes = self.shard
        return -(-(len(self._bounds()) - 1) // processes)  # ceil

    def __iter__(self):
        if self.device is not None:
            order = (
                torch.randperm(self.n, generator=self.generator, device=self.device)
                if self.shuffle
                else torch.arange(self.n, device=self.device)
            )
        elif self.shuffle:
            order = torch.randperm(self.n, generator=self.generator).numpy()
        else:
            order = np.arange(self.n)
        bounds = self._bounds()
        process, processes = self.shard
        if processes > 1:
            batches = len(bounds) - 1
            for step in range(len(self)):
                i = (process + step * processes) % batches
                yield order[bounds[i] : bounds[i + 1]]
            return
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            yield order[start:stop]


class InProcessBatches:
    """``dataset[batch]`` for each batch of ``sampler``, read in this process.

    What a ``DataLoader`` with ``num_workers=0`` and ``batch_size=None``
    does, without the fetcher, the profiler ranges and the conversion pass
    it adds to every batch: a training step of a small network spends a
    few percent of its time there.
    """

    def __init__(self, dataset: Dataset, sampler: BatchSampler):
        self.dataset = dataset
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        dataset = self.dataset
        for positions in self.sampler:
            yield dataset[positions]


class _BatchLoader(DataLoader):
    """A ``DataLoader`` that stops its workers as soon as a batch fails.

    torch re-raises a worker's error (say, a corrupt image file) from a frame
    that the exception's own traceback holds: a reference cycle. The iterator
    is then freed by the cyclic garbage collector, which closes the queues
    its shutdown needs before calling it, so each worker waits 5 s to time
    out, at whatever later moment the collector runs. Shutting the workers
    down here, while the queues still work, avoids that stall.
    """

    def __iter__(self):
        iterator = super().__iter__()
        try:
            yield from iterator
        except Exception:
            shutdown_loader_workers(self, iterator)
            raise


def batch_loader(
    dataset: BatchDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> DataLoader | InProcessBatches:
    """The ``iterator_train`` / ``iterator_valid`` handed to skorch.

    Without worker processes or pinned memory, batches are read in this
    process by :class:`InProcessBatches`, as a ``DataLoader`` with
    ``num_workers=0`` would, without its per-batch machinery. A
    :class:`DeviceBatchDataset` gets its batches indexed on its device
    (and needs no workers or pinning: nothing is copied).
    """
    device = getattr(dataset, "device", None)
    sampler = BatchSampler(
        len(dataset), batch_size, shuffle, seed, shard, device=device
    )
    if device is not None or (num_workers == 0 and not pin_memory):
        return InProcessBatches(dataset, sampler)
    return _BatchLoader(
        dataset,
        sampler=sampler,
        batch_size=None,  # the sampler already yields whole batches
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        # Without its own generator, every DataLoader iteration draws a base
        # seed from torch's global RNG: predicting would change the caller's
        # random state.
        generator=torch.Generator().manual_seed(seed),
    )


def batch_dataset(images, y=None, index=None, sample_weight=None):
    """The dataset for ``images``: on the device for :class:`DeviceImages`."""
    if isinstance(images, DeviceImages):
        return DeviceBatchDataset(images, y, index, sample_weight)
    return BatchDataset(images, y, index, sample_weight)
