"""``TrainingSpec``: every training setting, resolved once in ``fit``.

``CNNClassifier.fit`` builds one spec from its parameters and the target, and
hands it to :func:`~sk_mlc.training.train_network`, the one function that
trains. Everything is resolved here (the device, the batch size, the seed,
the target's loss), and every check that needs only the parameters and the
shape of the data runs here, before any work on the pixels. The spec is what
the ``memory`` cache keys on (see ``_cache.py``): a new training setting gets
a field here, and is in the key unless it is listed in ``RUNTIME_FIELDS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch.callbacks import LRScheduler

from ..data import SMALL_TRAINING_SET, resolve_augment
from ..targets import Target
from ._network import auto_depth, convnet_depth
from ._placement import placement
from ._weights import Weights, read_weights

# batch_size="auto": this many images per batch, but at least ~10 batches per
# epoch on small data sets (and never fewer than 8 images per batch).
_AUTO_BATCH = 128
_MIN_AUTO_BATCH = 8
# batch_size="auto" at prediction on CUDA.
_AUTO_PREDICT_BATCH_CUDA = 1024

# After a fitted head, the backbone fine-tunes at this multiple of ``lr``
# (fastai's fine_tune spreads lr / 100 .. lr over its layer groups), so that
# the first steps, whose gradients come from a head fitted to the frozen
# features, do not undo what the backbone learned (bench_transfer.py).
_FINE_TUNE_BACKBONE_LR = 0.1

# early_stopping with validation_fraction=None holds out this share.
_EARLY_STOPPING_FRACTION = 0.1

# normalize="imagenet": the per-channel statistics of ImageNet's training set,
# on the [0, 1] pixel scale, which ImageNet-pretrained backbones expect.
IMAGENET_STATISTICS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# Fields that change how training runs, never what it computes: not in the key.
RUNTIME_FIELDS = frozenset(
    {"verbose", "num_workers", "compile", "name", "accelerator", "tasks"}
)


@dataclass(frozen=True)
class TrainingSpec:
    """What one training needs besides the images and the encoded target."""

    # The network: the backbone and the head.
    module: object  # torch.nn.Module, a callable returning one, or None
    width: int
    depth: int | str
    residual: bool
    dropout: float
    # Where training starts: the backbone's weights (``weights``), or, for
    # warm_start, the whole network of the previous fit; and the input
    # statistics, None to learn them from the training images.
    weights: Weights | None
    init: Weights | None
    statistics: tuple | None
    freeze_epochs: int
    # The frozen phase as a linear probe fitted to convergence on features
    # computed once (_head.py), rather than as epochs of the head: fit with
    # freeze_epochs, in this process (partial_fit and an accelerator train
    # frozen epochs one by one).
    fit_head: bool
    # The backbone's learning rate as a multiple of lr's, when it trains
    # after a fitted head (1.0 otherwise).
    backbone_lr: float
    # The loss, decided by the target.
    target: Target
    class_weight: object
    label_smoothing: float
    loss: object  # a sigmoid target's loss spec (targets/_losses.py), or None
    # The optimisation.
    max_epochs: int
    batch_size: int
    lr: float
    lr_schedule: str
    optimizer: object
    weight_decay: float
    early_stopping: bool
    validation_fraction: float | None  # None: no validation split
    n_iter_no_change: int
    augment: object  # "auto" resolved (see data/_augment.py)
    callbacks: tuple
    # Where and with which randomness.
    device: str
    seed: int
    # "32", "bf16-mixed" or "16-mixed", resolved (see _placement.py).
    precision: str
    # An accelerate.Accelerator's (num_processes, gradient_accumulation_steps):
    # data parallel training changes the weights; None for (1, 1) or without.
    data_parallel: tuple[int, int] | None
    # How it runs (RUNTIME_FIELDS).
    verbose: int
    num_workers: int
    compile: dict | None  # torch.compile's options, or None: eager
    name: str  # the estimator's, for error messages
    accelerator: object  # accelerate.Accelerator or None: process state, not data
    # Where each epoch reports to scikit-learn's callbacks (_callbacks.FitTasks),
    # or None: what the fit shows while it runs, not what it computes.
    tasks: object = None

    @classmethod
    def from_estimator(
        cls,
        estimator,
        target: Target,
        n_samples: int,
        *,
        image_shape: tuple[int, int, int],
        init: Weights | None = None,
        incremental: bool = False,
        tasks=None,
    ):
        """Resolve and check ``estimator``'s training parameters.

        ``n_samples`` images of ``image_shape`` (C, H, W); ``init`` is the network
        a warm start continues from. ``incremental`` is ``partial_fit``'s
        setting: one epoch at the constant ``lr``, no validation split.
        """
        name = type(estimator).__name__
        channels = image_shape[0]
        if n_samples < 2:
            raise ValueError(
                f"{name} needs at least 2 training samples; got n_samples = "
                f"{n_samples}."
            )
        target.check_class_weight(estimator.class_weight, name)
        loss = target.check_loss(estimator.loss, name)
        if estimator.batch_size == 1:
            raise ValueError(
                f"{name}: batch_size=1 cannot train: batch normalisation needs "
                "more than one image per batch to normalise over. Use "
                "batch_size >= 2 (or 'auto'); a last batch of one image is "
                "merged into the one before it."
            )
        weights = read_weights(estimator.weights, name)
        statistics = resolve_statistics(estimator.normalize, weights, channels, name)
        fraction = estimator.validation_fraction
        early_stopping = estimator.early_stopping and not incremental
        if incremental:
            fraction = None
        elif fraction is None and early_stopping:
            fraction = _EARLY_STOPPING_FRACTION
        n_train = n_samples
        if fraction is not None:
            # train_test_split's rule: the validation set has ceil(f * n) samples.
            n_valid = math.ceil(fraction * n_samples)
            n_train = n_samples - n_valid
            if n_train < 2 or n_valid < 1:
                raise ValueError(
                    f"{name}: validation_fraction={fraction} leaves {n_train} "
                    f"training and {n_valid} validation sample(s) out of "
                    f"{n_samples}; lower validation_fraction (or disable "
                    "early_stopping)."
                )
        callbacks = tuple(estimator.callbacks or ())
        lr_schedule = "constant" if incremental else estimator.lr_schedule
        if lr_schedule != "constant" and any(
            isinstance(c[1] if isinstance(c, tuple) else c, LRScheduler)
            for c in callbacks
        ):
            raise ValueError(
                f"{name}: callbacks hold an LRScheduler, and lr_schedule="
                f"{estimator.lr_schedule!r} brings its own; the two would stack. "
                "Pass lr_schedule='constant' to train with your schedule alone."
            )
        seed = check_random_state(estimator.random_state).randint(
            np.iinfo(np.int32).max
        )
        device, precision, data_parallel = placement(estimator, name, incremental)
        in_process = estimator.accelerator is None and not incremental
        fit_head = bool(estimator.freeze_epochs) and in_process
        # What "auto" settings size themselves by: partial_fit's data to come
        # is unknown (not a small training set).
        known_n = None if incremental else n_train
        return cls(
            module=estimator.module,
            width=estimator.width,
            depth=resolve_depth(estimator, image_shape, known_n, weights),
            residual=estimator.residual,
            dropout=estimator.dropout,
            weights=weights,
            init=init,
            statistics=statistics,
            freeze_epochs=estimator.freeze_epochs,
            fit_head=fit_head,
            backbone_lr=_FINE_TUNE_BACKBONE_LR if fit_head else 1.0,
            target=target,
            class_weight=estimator.class_weight,
            label_smoothing=float(estimator.label_smoothing),
            loss=loss,
            max_epochs=1 if incremental else estimator.max_epochs,
            batch_size=resolve_batch_size(estimator.batch_size, n_train),
            lr=estimator.lr,
            lr_schedule=lr_schedule,
            optimizer=estimator.optimizer,
            weight_decay=estimator.weight_decay,
            early_stopping=early_stopping,
            validation_fraction=fraction,
            n_iter_no_change=estimator.n_iter_no_change,
            augment=resolve_augment(estimator.augment, image_shape, known_n),
            callbacks=callbacks,
            device=device,
            seed=int(seed),
            precision=precision,
            data_parallel=data_parallel,
            verbose=estimator.verbose,
            num_workers=estimator.num_workers,
            compile=_compile_options(estimator, name),
            name=name,
            accelerator=estimator.accelerator,
            tasks=tasks,
        )

    def key_fields(self) -> dict:
        """The fields that decide the trained weights, by name."""
        return {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name not in RUNTIME_FIELDS
        }


def resolve_depth(estimator, image_shape, n_train: int | None, weights=None):
    """``depth``, with "auto" of the built-in CNN resolved where it must be.

    With ``weights`` of the built-in CNN, "auto" is the depth they have: a
    backbone trained on another number of images (or by another version)
    may have another "auto" depth. On a small training set it is the small
    rule's (``auto_depth``). Otherwise "auto" stays "auto" for the network
    to resolve from the image size (a saved network's depth is then read
    from its weights). ``n_train`` None (``partial_fit``: the data to come
    is unknown) is not small.
    """
    depth = estimator.depth
    if depth != "auto" or estimator.module is not None:
        return depth
    if weights is not None:
        depth = convnet_depth(weights.state) or depth
        if depth != "auto":
            return depth
    if n_train is not None and n_train < SMALL_TRAINING_SET:
        return auto_depth(image_shape[1:], small=True)
    return depth


def _compile_options(estimator, name: str) -> dict | None:
    """``compile`` as ``torch.compile``'s keyword arguments, or None."""
    options = estimator.compile
    if options is False:
        return None
    if estimator.accelerator is not None:
        raise ValueError(
            f"{name}: compile={options!r} with an accelerator: Accelerate compiles "
            "the model itself, as its dynamo_backend setting says. Leave "
            "compile=False and configure the Accelerator."
        )
    return {} if options is True else dict(options)


def resolve_statistics(normalize, weights: Weights | None, channels: int, name: str):
    """``normalize`` as a ``(mean, std)`` pair of arrays, or None: learn them."""
    if isinstance(normalize, str):
        if normalize == "auto":
            if weights is None:
                return None  # learned from the training images
            if weights.statistics is not None or channels != 3:
                return weights.statistics  # a fitted CNNClassifier's, or learned
            # Weights from a file or a state dict on colour images: published
            # backbones were trained on ImageNet's statistics, and statistics
            # learned from a few training images moved a linear probe's
            # held-out accuracy by up to -0.035 (bench_transfer.py).
        mean, std = IMAGENET_STATISTICS  # "imagenet"
        if channels != 3:
            raise ValueError(
                f"{name}: normalize='imagenet' needs 3-channel (RGB) images; the "
                f"training images have {channels} channel(s). Pass image_mode='RGB' "
                "to convert them, or use normalize='auto'."
            )
    else:
        try:
            mean, std = normalize
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}: normalize must be 'auto', 'imagenet' or a (mean, std) pair; "
                f"got {normalize!r}."
            ) from None
    mean = np.asarray(mean, dtype=np.float32).ravel()
    std = np.asarray(std, dtype=np.float32).ravel()
    sizes_fit = mean.size in (1, channels) and std.size in (1, channels)
    finite = np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    if not sizes_fit or not finite or not np.all(std > 0):
        raise ValueError(
            f"{name}: normalize's mean and std must each be one finite number or one "
            f"per channel ({channels}), with std > 0; got mean={mean.tolist()}, "
            f"std={std.tolist()}."
        )
    return np.broadcast_to(mean, channels).copy(), np.broadcast_to(std, channels).copy()


def resolve_batch_size(
    batch_size, n_samples: int | None = None, device: str = "cpu"
) -> int:
    """The batch size to use; ``n_samples`` is None at prediction time.

    Prediction on a CUDA device takes batches of ``_AUTO_PREDICT_BATCH_CUDA``:
    no gradients, so the batch size changes only the throughput, and a GPU
    needs large batches to be busy. Training keeps the rule below on every
    device (a GPU rule waits for a measurement: the guide's GPU page).
    """
    if batch_size != "auto":
        return int(batch_size)
    if n_samples is None:
        if torch.device(device).type == "cuda":
            return _AUTO_PREDICT_BATCH_CUDA
        return _AUTO_BATCH
    # Ten epochs of one batch would be ten optimizer steps: too few to learn.
    return int(min(_AUTO_BATCH, max(_MIN_AUTO_BATCH, n_samples // 10)))
