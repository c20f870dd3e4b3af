"""Build the skorch ``NeuralNet`` for one fit and train it.

Everything here is a function of the training parameters, the data and the
seed, which is what lets ``memory`` cache its result (see ``_cache.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from skorch.utils import to_numpy, to_tensor

from ._augment import Augmenter
from ._data import BatchDataset, BatchSampler, batch_loader
from ._inputs import ImageBatches, channel_stats
from ._network import ConvNet, build_module
from ._targets import _Target

# Input statistics of lazily decoded images come from a sample, not a full pass.
_MAX_STATS_IMAGES = 1024
# batch_size="auto": this many images per batch, but at least ~10 batches per
# epoch on small data sets (and never fewer than 8 images per batch).
_AUTO_BATCH = 128
_MIN_AUTO_BATCH = 8


def resolve_batch_size(batch_size, n_samples: int | None = None) -> int:
    """The batch size to use; ``n_samples`` is None at prediction time."""
    if batch_size != "auto":
        return int(batch_size)
    if n_samples is None:
        return _AUTO_BATCH
    # Ten epochs of one batch would be ten optimizer steps: too few to learn.
    return int(min(_AUTO_BATCH, max(_MIN_AUTO_BATCH, n_samples // 10)))


class _Net(NeuralNet):
    """skorch's ``NeuralNet`` plus training-time augmentation.

    Augmentation is applied in ``train_step_single`` on the training device,
    so validation and prediction never see it.
    """

    def __init__(self, *args, augmenter=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter

    def train_step_single(self, batch, **fit_params):
        if self.augmenter is not None:
            X, y = batch
            batch = (self.augmenter(to_tensor(X, device=self.device)), y)
        return super().train_step_single(batch, **fit_params)


def train_network(
    params: dict,
    images: ImageBatches,
    y_encoded: np.ndarray,
    target: _Target,
    seed: int,
    *,
    verbose: int,
    num_workers: int,
) -> NeuralNet:
    """Train a network with ``params`` (the estimator's training parameters)."""
    device = params["device"]
    train_index, valid_index = _split(params, y_encoded, target, seed)
    batch_size = resolve_batch_size(params["batch_size"], len(train_index))
    stats_index = train_index
    if images.is_lazy and len(train_index) > _MAX_STATS_IMAGES:
        stats_index = np.sort(
            np.random.RandomState(seed).choice(train_index, _MAX_STATS_IMAGES, False)
        )
    mean, std = channel_stats(images, stats_index, batch_size)

    cuda_devices = (
        [torch.device(device).index or 0] if device.startswith("cuda") else []
    )
    # Seed torch for this fit only: the caller's global random state is restored.
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        module = build_module(
            _backbone(params, images.image_shape),
            images.image_shape,
            target.n_outputs,
            mean,
            std,
            params["dropout"],
        )
        # Channels-last weights make oneDNN (CPU) and cuDNN pick their fast
        # NHWC convolution and pooling kernels: ~25% less training time for
        # the default CNN on 2 CPU cores (benchmarks/bench_fashion.py).
        module = module.to(memory_format=torch.channels_last)
        loader_kwargs = {"num_workers": num_workers, "pin_memory": device != "cpu"}
        valid = None
        if valid_index is not None:
            valid = BatchDataset(images, y_encoded, valid_index)
        augment = params["augment"]
        net = _Net(
            module=module,
            criterion=target.criterion(params["class_weight"], y_encoded[train_index]),
            optimizer=params["optimizer"],
            optimizer__weight_decay=params["weight_decay"],
            lr=params["lr"],
            max_epochs=params["max_epochs"],
            batch_size=batch_size,
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_train__seed=seed,
            iterator_valid=batch_loader,
            **{f"iterator_train__{k}": v for k, v in loader_kwargs.items()},
            **{f"iterator_valid__{k}": v for k, v in loader_kwargs.items()},
            train_split=None if valid is None else predefined_split(valid),
            callbacks=_callbacks(params, len(train_index), batch_size, verbose),
            predict_nonlinearity=target.activation,
            augmenter=None if augment is None else Augmenter(augment, seed, device),
            verbose=verbose,
            device=device,
        )
        net.fit(BatchDataset(images, y_encoded, train_index), None)
    _drop_training_state(net)
    return net


def _drop_training_state(net: NeuralNet) -> None:
    """Forget what only training needs; a fitted CNNClassifier never resumes it.

    The optimizer's moment estimates (and the LR scheduler, which holds the
    optimizer) are as many tensors again as the weights: without them a
    pickled estimator, and every ``memory`` cache hit, loads half as many.
    The augmenter holds a ``torch.Generator``.
    """
    net.augmenter = None
    net.optimizer_ = None
    for _, callback in net.callbacks_:
        if isinstance(callback, LRScheduler):
            callback.lr_scheduler_ = None


def predict_outputs(
    net: NeuralNet, images: ImageBatches, *, batch_size: int, num_workers: int
) -> np.ndarray:
    """The net's activated outputs, batch by batch, in eval mode, without gradients.

    The loader is built here, not taken from the net, so that ``batch_size``
    and ``num_workers`` set on the estimator after fit apply to prediction.
    """
    loader = batch_loader(
        BatchDataset(images),
        resolve_batch_size(batch_size),
        num_workers=num_workers,
        pin_memory=str(net.device) != "cpu",
    )
    # Eval mode once, not per batch as skorch's evaluation_step does, and
    # inference_mode, which skips the autograd bookkeeping no_grad still does.
    net.module_.eval()
    with torch.inference_mode():
        outputs = [to_numpy(net.predict_nonlinearity(net.infer(X))) for X, _ in loader]
    return np.concatenate(outputs)


def _backbone(params: dict, image_shape: tuple[int, int, int]) -> torch.nn.Module:
    module = params["module"]
    if module is None:
        return ConvNet(
            image_shape[0],
            image_shape[1:],
            width=params["width"],
            depth=params["depth"],
        )
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)  # never train the caller's own module
    built = module()
    if not isinstance(built, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module or a callable returning one; the "
            f"callable returned {type(built).__name__}."
        )
    return built


def _split(params: dict, y_encoded: np.ndarray, target: _Target, seed: int):
    """Train and validation indices; no validation set without early stopping."""
    index = np.arange(len(y_encoded))
    if not params["early_stopping"]:
        return index, None
    stratify = None
    if target.target_type != "multilabel-indicator":
        labels = y_encoded.ravel()
        # Stratify only where it can work: every class needs two samples.
        if np.bincount(labels.astype(np.intp)).min() >= 2:
            stratify = labels
    try:
        train, valid = train_test_split(
            index,
            test_size=params["validation_fraction"],
            stratify=stratify,
            random_state=seed,
        )
    except ValueError as exc:
        raise ValueError(
            f"early_stopping cannot hold out validation_fraction="
            f"{params['validation_fraction']} of {len(index)} samples: {exc}"
        ) from exc
    if len(train) < 2:
        raise ValueError(
            f"early_stopping leaves {len(train)} training sample(s) out of "
            f"{len(index)}; lower validation_fraction or disable early_stopping."
        )
    return np.sort(train), np.sort(valid)


def _callbacks(params: dict, n_train: int, batch_size: int, verbose: int) -> list:
    callbacks = []
    if params["lr_schedule"] == "onecycle":
        steps = len(BatchSampler(n_train, batch_size, False, 0))
        callbacks.append(
            (
                "lr_schedule",
                LRScheduler(
                    policy=torch.optim.lr_scheduler.OneCycleLR,
                    max_lr=params["lr"],
                    total_steps=params["max_epochs"] * steps,
                    step_every="batch",
                ),
            )
        )
    if params["early_stopping"]:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=params["n_iter_no_change"],
                    load_best=True,
                    sink=print if verbose else _silent,
                ),
            )
        )
    # skorch initialises (mutates) its callbacks: train on copies of the caller's.
    callbacks += copy.deepcopy(params["callbacks"] or [])
    return callbacks


def _silent(*args, **kwargs) -> None:
    """A sink that prints nothing (EarlyStopping prints by default)."""
