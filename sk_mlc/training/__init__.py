"""Training: from a :class:`TrainingSpec` to a fitted skorch net, and back.

* ``_spec``: every training setting, resolved once (:class:`TrainingSpec`);
* ``_placement``: ``device``, ``precision`` and ``accelerator`` resolved;
* ``_network``: the built-in CNN and the head around any backbone;
* ``_weights``: ``weights=`` read without running code, and loaded;
* ``_net``: the skorch ``NeuralNet`` subclass, changed through its hooks;
* ``_accelerated``: the same net trained by Hugging Face Accelerate;
* ``_callbacks``: freezing, the learning-rate schedule, early stopping;
* ``_build``: the module and the net assembled from a spec;
* ``_head``: the frozen phase as a linear probe fitted to convergence;
* ``_extractor``: ``ImageFeatures``' backbone without a head;
* ``_fit``: the entry points that train (``fit``, ``partial_fit``);
* ``_predict``: ``predict_proba``'s forward passes;
* ``_snapshot``: a trained net as tensors and JSON, and back;
* ``_cache``: ``memory``, the cache of trained networks;
* ``_outputs``: the in-process cache of a network's outputs.
"""

from ._cache import TrainingCache, memory_skipped, train_or_load
from ._callbacks import FitTasks
from ._extractor import build_extractor
from ._fit import (
    checked_weights,
    continue_network,
    initialize_network,
    start_network,
    train_epoch,
    train_network,
    warm_start_weights,
)
from ._network import ConvNet, ResidualBlock, build_module, input_statistics
from ._outputs import cached_outputs
from ._parameters import TRAINING_DOCS
from ._placement import PRECISIONS, autocast, resolve_device, resolve_precision
from ._predict import forward_batches, predict_proba
from ._snapshot import CRITERION, MODULE, restore, saved_depth, snapshot
from ._spec import RUNTIME_FIELDS, TrainingSpec, resolve_batch_size
from ._weights import Weights

__all__ = [
    "CRITERION",
    "MODULE",
    "PRECISIONS",
    "RUNTIME_FIELDS",
    "TRAINING_DOCS",
    "ConvNet",
    "FitTasks",
    "ResidualBlock",
    "TrainingCache",
    "TrainingSpec",
    "Weights",
    "autocast",
    "build_extractor",
    "build_module",
    "cached_outputs",
    "checked_weights",
    "continue_network",
    "initialize_network",
    "input_statistics",
    "memory_skipped",
    "forward_batches",
    "predict_proba",
    "resolve_batch_size",
    "resolve_device",
    "resolve_precision",
    "restore",
    "saved_depth",
    "snapshot",
    "start_network",
    "train_epoch",
    "train_network",
    "train_or_load",
    "warm_start_weights",
]
