"""Assembling what trains: the module with its starting weights, and the skorch net.

:func:`new_module` builds the backbone (the built-in CNN, a copy of the
user's module, or what the user's callable returns) inside the head that
``_network.build_module`` adds, and loads ``weights`` into it;
:func:`start_module` also sets its input statistics. :func:`build_net` wraps
a module in the skorch :class:`~sk_mlc.training._net.Net` (or, with an
accelerator, :class:`~sk_mlc.training._accelerated.AcceleratedNet`), with
the target's loss, the loaders and the callbacks.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch
from skorch.helper import predefined_split

from ..data import (
    Augmenter,
    DeviceImages,
    batch_dataset,
    batch_loader,
    channel_stats,
    flips,
)
from ._accelerated import AcceleratedNet
from ._callbacks import silent, training_callbacks
from ._net import Net
from ._network import Classifier, ConvNet, build_module, set_input_statistics
from ._placement import shard
from ._spec import TrainingSpec
from ._weights import load_into

# Input statistics of lazily decoded images come from a sample, not a full pass.
_MAX_STATS_IMAGES = 1024


def new_module(spec: TrainingSpec, image_shape) -> Classifier:
    """The module, with the starting weights in its backbone."""
    channels = image_shape[0]
    module = build_module(
        make_backbone(spec, image_shape),
        image_shape,
        spec.target.n_outputs,
        np.zeros(channels, dtype=np.float32),
        np.ones(channels, dtype=np.float32),
        spec.dropout,
        owner=spec.name,
    )
    if spec.weights is not None:
        load_into(spec.weights, module.backbone, spec.name)
    return module


def start_module(spec: TrainingSpec, images, train_index) -> Classifier:
    """:func:`new_module` with its input statistics, laid out channels-last."""
    # The network first: a module that fails, or weights that do not fit it,
    # should fail before the pass over the pixels that the statistics take.
    module = new_module(spec, images.image_shape)
    if spec.init is not None:  # warm start: everything, statistics included
        module.load_state_dict(spec.init.state)
    elif spec.statistics is not None:
        set_input_statistics(module, *spec.statistics)
    else:
        set_input_statistics(module, *_input_stats(spec, images, train_index))
    # Channels-last weights make oneDNN (CPU) and cuDNN pick their fast
    # NHWC convolution and pooling kernels: ~25% less training time for
    # the default CNN on 2 CPU cores (benchmarks/bench_fashion.py).
    return module.to(memory_format=torch.channels_last)


def make_backbone(params, image_shape: tuple[int, int, int]) -> torch.nn.Module:
    """The backbone that ``params`` (a spec, or an estimator) describe.

    ``params.module`` None builds the built-in CNN of ``width``, ``depth``
    and ``residual`` for ``image_shape`` (C, H, W); a module is deep-copied,
    never the caller's own trained; a callable is called (under the caller's
    seed) and must return a module. ``params.name`` names the estimator.
    """
    module = params.module
    if module is None:
        return ConvNet(
            image_shape[0],
            image_shape[1:],
            width=params.width,
            depth=params.depth,
            residual=params.residual,
        )
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)  # never train the caller's own module
    built = module()
    if not isinstance(built, torch.nn.Module):
        raise TypeError(
            f"{params.name}: module must be a torch.nn.Module or a callable "
            f"returning one; the callable returned {type(built).__name__}."
        )
    return built


def _input_stats(spec: TrainingSpec, images, train_index):
    """Per-channel mean and std of the training images (a sample of files)."""
    index = train_index
    if images.is_lazy and len(train_index) > _MAX_STATS_IMAGES:
        rng = np.random.RandomState(spec.seed)
        index = np.sort(rng.choice(train_index, _MAX_STATS_IMAGES, replace=False))
    return channel_stats(images, index, spec.batch_size)


def fused_optimizer(optimizer, device: str) -> dict:
    """``optimizer__fused=True`` on CUDA, for an optimizer class that has it.

    torch's fused Adam, AdamW and SGD update every parameter in one kernel
    launch instead of a few per parameter tensor. Elsewhere (the CPU, a
    user's optimizer without ``fused``) nothing changes.
    """
    if torch.device(device).type != "cuda" or not isinstance(optimizer, type):
        return {}
    try:
        accepts = "fused" in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        return {}
    return {"optimizer__fused": True} if accepts else {}


def _param_groups(spec: TrainingSpec) -> dict:
    """The backbone in its own group at ``lr * backbone_lr``, where it differs.

    The backbone is ``module_[1]`` (``_network.Classifier``); skorch puts the
    groups its patterns match first, the rest (the head) last.
    """
    if spec.backbone_lr == 1.0:
        return {}
    return {"optimizer__param_groups": [("1.*", {"lr": spec.lr * spec.backbone_lr})]}


def set_reduction(criterion: torch.nn.Module, weight) -> None:
    """Weighted batches need each sample's loss (see ``Net.get_loss``)."""
    criterion.reduction = "mean" if weight is None else "none"


def build_net(
    spec: TrainingSpec,
    module,
    images=None,
    y_encoded=None,
    train_index=None,
    valid_index=None,
    criterion=None,
    weight=None,
) -> Net:
    """The skorch net; ``images`` and ``y_encoded`` are None when there is no data.

    ``y_encoded[train_index]`` sizes the class weights and the schedule.
    """
    loader = {"num_workers": spec.num_workers, "pin_memory": spec.device != "cpu"}
    if isinstance(images, DeviceImages):
        # Batches are built on the device: nothing to pin, no work for workers.
        loader = {"num_workers": 0, "pin_memory": False}
    valid = None
    if valid_index is not None:
        valid = batch_dataset(images, y_encoded, valid_index, weight)
    target = spec.target
    if criterion is None:
        criterion = target.criterion(
            None if y_encoded is None else spec.class_weight,
            None if y_encoded is None else y_encoded[train_index],
            spec.label_smoothing,
            spec.loss,
        )
        set_reduction(criterion, weight)
    net_class, placement = Net, {"device": spec.device}
    if spec.accelerator is not None:
        # AccelerateMixin wants device=None: the accelerator places the net.
        net_class = AcceleratedNet
        placement = {
            "accelerator": spec.accelerator,
            "device": None,
            "unwrap_after_train": False,  # _fit.train_network unwraps
            "iterator_train__shard": shard(spec.accelerator),
            # Its default sink prints the epoch table whatever verbose says.
            "callbacks__print_log__sink": spec.accelerator.print
            if spec.verbose
            else silent,
        }
    return net_class(
        module=module,
        criterion=criterion,
        optimizer=spec.optimizer,
        optimizer__weight_decay=spec.weight_decay,
        **fused_optimizer(spec.optimizer, spec.device),
        lr=spec.lr,
        max_epochs=spec.max_epochs,
        batch_size=spec.batch_size,
        iterator_train=batch_loader,
        iterator_train__shuffle=True,
        iterator_train__seed=spec.seed,
        iterator_valid=batch_loader,
        **{f"iterator_train__{k}": v for k, v in loader.items()},
        **{f"iterator_valid__{k}": v for k, v in loader.items()},
        train_split=None if valid is None else predefined_split(valid),
        callbacks=training_callbacks(
            spec, 0 if train_index is None else len(train_index)
        ),
        # Only for users of net_.predict_proba: sk_mlc's own prediction takes
        # logits from the module and lets the target apply the activation.
        predict_nonlinearity=target.activation,
        decision=target.encoded_decision,
        precision=spec.precision,
        sync_every_batch=bool(spec.verbose),
        compile_training=spec.compile,
        head_epochs=spec.freeze_epochs if spec.fit_head else 0,
        head_flips=flips(spec.augment),
        **_param_groups(spec),
        augmenter=None
        if spec.augment is None
        else Augmenter(spec.augment, spec.seed, spec.device),
        verbose=spec.verbose,
        **placement,
    )
