"""The entry points that train: from a :class:`TrainingSpec` to a fitted skorch net.

:func:`train_network` is the one function that trains a network from scratch
(``fit``). Its result depends on the spec, the images and the encoded target
only, which is what lets ``memory`` cache it (``_cache.py``).
:func:`start_network`, :func:`continue_network` and :func:`train_epoch` are
``partial_fit``'s; :func:`initialize_network` builds an untrained network for
weights read from a file (``_snapshot.py``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNet

from .._compat import check_sample_weight
from .._messages import named_errors
from ..data import BatchDataset, ImageBatches, batch_dataset, training_images
from ..model_selection import multilabel_train_test_split
from ._accelerated import without_accelerator
from ._build import build_net, new_module, set_reduction, start_module
from ._net import Interrupted, Net
from ._placement import autotuned
from ._spec import TrainingSpec
from ._weights import Weights


def train_network(
    spec: TrainingSpec,
    images: ImageBatches,
    y_encoded: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> NeuralNet:
    """Train a network as ``spec`` says on ``images`` and the encoded target.

    ``sample_weight`` (checked, positive mean) weights each sample's loss.
    """
    train_index, valid_index = validation_split(spec, y_encoded)
    weight = _relative(sample_weight, train_index)
    with seeded(spec):
        module = start_module(spec, images, train_index)
        # On CUDA, in-memory arrays move to the device once (data/_device.py).
        batches = training_images(images, spec.device)
        net = build_net(
            spec, module, batches, y_encoded, train_index, valid_index, weight=weight
        )
        _fit(net, spec, batch_dataset(batches, y_encoded, train_index, weight))
    if spec.accelerator is not None:
        plain = dataclasses.replace(spec, accelerator=None, tasks=None)
        net = without_accelerator(
            net, lambda module, criterion: build_net(plain, module, criterion=criterion)
        )
    return net


def checked_weights(sample_weight, n_samples: int, name: str) -> np.ndarray | None:
    """Checked float64 ``sample_weight``, or None where they change nothing.

    Equal weights are the same as None: the loss is divided by their mean.
    """
    if sample_weight is None:
        return None
    with named_errors(name):
        weight = check_sample_weight(
            sample_weight, np.empty((n_samples, 0)), ensure_non_negative=True
        )
    return None if np.all(weight == weight[0]) else weight


def _relative(sample_weight: np.ndarray | None, train_index) -> np.ndarray | None:
    """Weights divided by their training mean (float32), or None."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    return (weight / weight[train_index].mean()).astype(np.float32)


def start_network(
    spec: TrainingSpec, images: ImageBatches, y_encoded: np.ndarray
) -> NeuralNet:
    """An initialised, untrained network for ``partial_fit``'s first call."""
    with seeded(spec):
        index = np.arange(len(images))
        module = start_module(spec, images, index)
        net = build_net(spec, module, images, y_encoded, index, None)
        net.initialize()
    return net


def initialize_network(
    spec: TrainingSpec, image_shape: tuple[int, int, int]
) -> NeuralNet:
    """An initialised network for images of ``image_shape``, without any data.

    Its weights and input statistics are the untrained ones: the caller loads
    a state dict into ``net.module_`` (for example one that was saved).
    """
    with seeded(spec):
        module = new_module(spec, image_shape).to(memory_format=torch.channels_last)
        net = build_net(spec, module)
        net.initialize()
    return net


def warm_start_weights(
    net: NeuralNet, fitted_target, fitted_shape, target, image_shape, name: str
) -> Weights:
    """The fitted ``net``'s weights to continue from, checked against this fit.

    ``warm_start`` continues the fitted network: the new ``target`` must have
    the fitted one's kind and classes, the images its ``(C, H, W)``.
    """
    same_target = fitted_target.target_type == target.target_type and np.array_equal(
        fitted_target.classes_, target.classes_
    )
    if not same_target:
        raise ValueError(
            f"{name}: warm_start=True continues the fitted network, trained on a "
            f"{fitted_target.target_type} target with classes "
            f"{fitted_target.classes_.tolist()}; this y is {target.target_type} "
            f"with classes {target.classes_.tolist()}. Set warm_start=False to "
            "train anew (or pass the fitted model as weights= to reuse its "
            "backbone)."
        )
    if tuple(image_shape) != tuple(fitted_shape):
        raise ValueError(
            f"{name}: warm_start=True continues the fitted network, trained on "
            f"images of shape (C, H, W) = {tuple(fitted_shape)}; these are "
            f"{tuple(image_shape)}. Set image_size/image_mode, or "
            "warm_start=False."
        )
    return Weights.from_module(net.module_, "the fitted network")


def continue_network(net: NeuralNet, spec: TrainingSpec) -> NeuralNet:
    """A network for ``partial_fit`` around ``net``'s module (after ``fit``).

    ``net`` was built for ``fit``: a schedule over its epochs, maybe a
    validation split of the old data. The new one trains at a constant rate
    on whatever each call passes; it starts from ``net``'s optimizer state
    where that fits (moment estimates), at ``spec.lr``.
    """
    # The fit's criterion: its class weights came from the fit's data.
    new = build_net(spec, net.module_, criterion=net.criterion_)
    new.initialize()
    old = getattr(net, "optimizer_", None)
    if old is not None:
        try:
            new.optimizer_.load_state_dict(old.state_dict())
        except (ValueError, KeyError):
            pass  # another optimizer class: start it afresh
        for group in new.optimizer_.param_groups:
            group["lr"] = spec.lr
    new.history = copy.deepcopy(net.history)
    return new


def train_epoch(
    net: NeuralNet,
    spec: TrainingSpec,
    images: ImageBatches,
    y_encoded: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> None:
    """One more epoch of ``net`` over ``images`` (``partial_fit``)."""
    weight = _relative(sample_weight, slice(None))
    set_reduction(net.criterion_, weight)
    epoch = len(net.history)
    # A new shuffling order and new dropout masks for every call, reproducibly.
    # (An attribute, as skorch keeps it: set_params would re-initialise.)
    net.iterator_train__seed = spec.seed + epoch
    with seeded(spec, offset=epoch):
        _fit(net, spec, BatchDataset(images, y_encoded, None, weight), partial=True)


def seeded(spec: TrainingSpec, offset: int = 0):
    """Seed torch for one fit; the caller's global random state is restored."""
    return seeded_torch(spec.seed + offset, spec.device)


@contextlib.contextmanager
def seeded_torch(seed: int, device: str):
    """torch seeded with ``seed`` (on ``device`` too); the global state restored."""
    cuda_devices = (
        [torch.device(device).index or 0] if device.startswith("cuda") else []
    )
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


def _fit(net: Net, spec: TrainingSpec, dataset, *, partial: bool = False) -> None:
    try:
        with autotuned(spec.device):
            if partial:
                net.partial_fit(dataset, None, epochs=1)
            else:
                net.fit(dataset, None)
    except Interrupted:
        raise KeyboardInterrupt(
            f"{spec.name}.fit was interrupted after {len(net.history)} "
            "epoch(s); the half-trained network was discarded (and not cached)."
        ) from None


def validation_split(spec: TrainingSpec, y_encoded: np.ndarray):
    """Train and validation indices; None without a ``validation_fraction``."""
    index = np.arange(len(y_encoded))
    if spec.validation_fraction is None:
        return index, None
    if spec.target.multilabel:
        # Iterative stratification: every label keeps its rate in both parts
        # (a random split can leave a rare label out of validation entirely).
        return multilabel_train_test_split(
            index, y_encoded, spec.validation_fraction, spec.seed
        )
    stratify = None
    labels = y_encoded.ravel()
    # Stratify only where it can work: every class needs two samples.
    if np.bincount(labels.astype(np.intp)).min() >= 2:
        stratify = labels
    try:
        train, valid = train_test_split(
            index,
            test_size=spec.validation_fraction,
            stratify=stratify,
            random_state=spec.seed,
        )
    except ValueError as exc:
        raise ValueError(
            f"{spec.name}: cannot hold out validation_fraction="
            f"{spec.validation_fraction} of {len(index)} samples: {exc}"
        ) from exc
    return np.sort(train), np.sort(valid)
