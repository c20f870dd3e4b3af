"""Train a skorch ``NeuralNet`` from a :class:`~sk_mlc._spec.TrainingSpec`, and predict.

:func:`train_network` is the one function that trains. Its result depends on
the spec, the images and the encoded target only, which is what lets
``memory`` cache it (see ``_cache.py``). :func:`predict_proba` runs a trained
net; what its logits mean is the target's business (``_targets.py``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import unpack_data
from skorch.helper import predefined_split
from skorch.utils import to_numpy, to_tensor

from ._augment import Augmenter, tta_proba
from ._data import BatchDataset, BatchSampler, batch_loader
from ._device_data import DeviceImages, training_images
from ._inputs import ImageBatches, channel_stats
from ._network import Classifier, ConvNet, build_module, set_input_statistics
from ._precision import autocast, grad_scaler
from ._schedule import PhasedOneCycleLR
from ._spec import TrainingSpec, resolve_batch_size
from ._split import multilabel_train_test_split
from ._weights import load_into

# Input statistics of lazily decoded images come from a sample, not a full pass.
_MAX_STATS_IMAGES = 1024


class _Net(NeuralNet):
    """skorch's ``NeuralNet``, extended through its hooks.

    * Augmentation is applied in ``train_step_single`` on the training
      device, so validation and prediction never see it.
    * ``predict`` returns decisions, for skorch's scoring callbacks.
    * ``precision``: the training, validation and evaluation steps run in
      its autocast region, with a gradient scaler for float16
      (``_precision.py``); "32" runs skorch's own steps.
    * ``fit_loop`` lets a user's Ctrl-C leave ``fit``.
    * Pickles leave the optimizer state out (``__getstate__``).
    """

    def __init__(self, *args, augmenter=None, decision=None, precision="32", **kwargs):
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter
        self.decision = decision
        self.precision = precision

    def predict(self, X):
        """Decisions in the encoded target's format (threshold 0.5, or argmax).

        skorch's own ``predict`` returns probabilities; its ``EpochScoring``
        with a scorer name ("accuracy", "f1_micro", ...) compares ``predict``
        with the encoded targets, so it needs decisions.
        """
        return self.decision(self.predict_proba(X))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion's loss; with sample weights, their weighted mean.

        Weighted batches carry ``(y, weight)`` (``BatchDataset``), and the
        criterion then reduces nothing: each sample's loss (the mean over its
        labels) is weighted, and the batch's loss is the mean of the weighted
        losses. The weights were divided by their mean over the training
        set, so that they shift emphasis between samples, not the step size.
        """
        if not isinstance(y_true, (tuple, list)):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        y_true, weight = (to_tensor(part, device=self.device) for part in y_true)
        losses = self.criterion_(y_pred, y_true).reshape(len(weight), -1).mean(1)
        return (losses * weight).mean()

    def train_step_single(self, batch, **fit_params):
        batch = self._augmented(batch)
        if self.precision == "32":
            return super().train_step_single(batch, **fit_params)
        # NeuralNet's step, in the autocast region, with a scaled loss for fp16.
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with self.autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if self.grad_scaler_ is None:
            loss.backward()
        else:
            self.grad_scaler_.scale(loss).backward()
            # Unscaled now, so that gradient callbacks (clipping) see the
            # true gradients; the scaler's step then skips its own unscale.
            self.grad_scaler_.unscale_(self.optimizer_)
        return {"loss": loss, "y_pred": _float32(y_pred)}

    def _augmented(self, batch):
        """``batch`` on the device, augmented (training batches only)."""
        batch = self.to_device(batch)
        if self.augmenter is None:
            return batch
        X, y = batch
        return self.augmenter(to_tensor(X, device=self.device)), y

    def batch_device(self):
        """Where batches go: the net's device (or, with accelerate, its)."""
        return self.device

    def to_device(self, batch):
        """``batch`` on the GPU, copied without blocking (from pinned memory).

        skorch's own copy (in ``infer``) blocks until it is done, so the next
        batch could not be prepared meanwhile. On the CPU nothing moves.
        """
        device = self.batch_device()
        if device is None or torch.device(device).type == "cpu":
            return batch
        return _moved(batch, device)

    def _step_optimizer(self, step_fn):
        if getattr(self, "grad_scaler_", None) is None:
            return super()._step_optimizer(step_fn)
        # GradScaler.step takes no closure: run the step, then step through it
        # (it skips the update when the fp16 gradients overflowed).
        step_fn()
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.grad_scaler_ = self._make_grad_scaler()
        return self

    def _make_grad_scaler(self):
        return grad_scaler(self.precision, self.device)

    def autocast(self):
        """The autocast region that training and prediction run in."""
        return autocast(self.precision, self.device)

    def validation_step(self, batch, **fit_params):
        batch = self.to_device(batch)
        with self.autocast():
            step = super().validation_step(batch, **fit_params)
        # Scoring callbacks reuse these outputs.
        return {**step, "y_pred": _float32(step["y_pred"])}

    def evaluation_step(self, batch, training=False):
        batch = self.to_device(batch)
        with self.autocast():
            return _float32(super().evaluation_step(batch, training=training))

    def fit_loop(self, X, y=None, **fit_params):
        # skorch's partial_fit swallows KeyboardInterrupt and returns a half
        # trained net as if it were done; memory would then cache it. Carry
        # a user's interrupt past it (scikit-learn's rule: fit completes or
        # raises). skorch's EarlyStopping stops training with the same
        # exception: that one is the normal end of training.
        try:
            return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt as exc:
            if self._stopped_early():
                raise
            raise _Interrupted from exc

    def _stopped_early(self) -> bool:
        return any(
            isinstance(callback, EarlyStopping)
            and callback.misses_ >= callback.patience
            for _, callback in self.callbacks_
        )

    def __getstate__(self):
        """Pickle without the optimizer state; the live net keeps it.

        The optimizer's moment estimates (and the LR scheduler, which holds
        the optimizer) are as many tensors again as the weights: without them
        a pickled estimator, and every ``memory`` cache hit, loads half as
        many. skorch's own ``__getstate__`` pickles ``__dict__``, so it runs
        on a copy of it that lacks them; nothing of the live net changes.
        """
        live = self.__dict__
        state = dict(live)
        if "optimizer_" in state:
            state["optimizer_"] = None
        if "grad_scaler_" in state:
            state["grad_scaler_"] = None
        if "callbacks_" in state:
            state["callbacks_"] = [
                (name, _without_scheduler(callback))
                for name, callback in state["callbacks_"]
            ]
        try:
            self.__dict__ = state
            return super().__getstate__()
        finally:
            self.__dict__ = live

    def __setstate__(self, state):
        super().__setstate__(state)
        # A fresh optimizer (no moment estimates), so that the net can go on
        # training: continued training after a pickle restarts its optimizer.
        if getattr(self, "initialized_", False) and self.optimizer_ is None:
            self.initialize_optimizer()


def _moved(part, device):
    """The tensors in ``part``, nested as in ``(X, (y, weight))``, on ``device``."""
    if isinstance(part, torch.Tensor):
        return part.to(device, non_blocking=True)
    if isinstance(part, (tuple, list)):
        return tuple(_moved(item, device) for item in part)
    return part


def _float32(y_pred):
    """Outputs of an autocast region as float32: numpy has no bfloat16."""
    if isinstance(y_pred, torch.Tensor) and y_pred.is_floating_point():
        return y_pred.float()
    return y_pred


def _without_scheduler(callback):
    if isinstance(callback, LRScheduler) and callback.lr_scheduler_ is not None:
        callback = copy.copy(callback)
        callback.lr_scheduler_ = None
    return callback


def train_network(
    spec: TrainingSpec,
    images: ImageBatches,
    y_encoded: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> NeuralNet:
    """Train a network as ``spec`` says on ``images`` and the encoded target.

    ``sample_weight`` (checked, positive mean) weights each sample's loss.
    """
    train_index, valid_index = _split(spec, y_encoded)
    weight = _relative(sample_weight, train_index)
    with _seeded(spec):
        module = _start_module(spec, images, train_index)
        # On CUDA, in-memory arrays move to the device once (_device_data.py).
        batches = training_images(images, spec.device)
        net = _build_net(
            spec, module, batches, y_encoded, train_index, valid_index, weight=weight
        )
        _fit(net, spec, BatchDataset(batches, y_encoded, train_index, weight))
    if spec.accelerator is not None:
        net = _without_accelerator(net, spec)
    return net


def _without_accelerator(net: NeuralNet, spec: TrainingSpec) -> NeuralNet:
    """The trained network in a plain net, which predicts, pickles and caches.

    The module comes out of its DDP wrapper only now, after every callback's
    ``on_train_end``: EarlyStopping's best weights were taken from the
    wrapper (its state dict's names start with "module."), and go back there.
    """
    unwrap = spec.accelerator.unwrap_model
    spec = dataclasses.replace(spec, accelerator=None)
    module = unwrap(net.module_, keep_fp32_wrapper=False)
    criterion = unwrap(net.criterion_, keep_fp32_wrapper=False)
    plain = _build_net(spec, module, None, None, None, None, criterion)
    plain.initialize()
    plain.history = net.history
    return plain


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
    with _seeded(spec):
        index = np.arange(len(images))
        module = _start_module(spec, images, index)
        net = _build_net(spec, module, images, y_encoded, index, None)
        net.initialize()
    return net


def initialize_network(
    spec: TrainingSpec, image_shape: tuple[int, int, int]
) -> NeuralNet:
    """An initialised network for images of ``image_shape``, without any data.

    Its weights and input statistics are the untrained ones: the caller loads
    a state dict into ``net.module_`` (for example one that was saved).
    """
    with _seeded(spec):
        module = _build(spec, image_shape).to(memory_format=torch.channels_last)
        net = _build_net(spec, module, None, None, None, None)
        net.initialize()
    return net


def continue_network(net: NeuralNet, spec: TrainingSpec) -> NeuralNet:
    """A network for ``partial_fit`` around ``net``'s module (after ``fit``).

    ``net`` was built for ``fit``: a schedule over its epochs, maybe a
    validation split of the old data. The new one trains at a constant rate
    on whatever each call passes; it starts from ``net``'s optimizer state
    where that fits (moment estimates), at ``spec.lr``.
    """
    # The fit's criterion: its class weights came from the fit's data.
    new = _build_net(spec, net.module_, None, None, None, None, net.criterion_)
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
    _set_reduction(net.criterion_, weight)
    epoch = len(net.history)
    # A new shuffling order and new dropout masks for every call, reproducibly.
    # (An attribute, as skorch keeps it: set_params would re-initialise.)
    net.iterator_train__seed = spec.seed + epoch
    with _seeded(spec, offset=epoch):
        _fit(net, spec, BatchDataset(images, y_encoded, None, weight), partial=True)


@contextlib.contextmanager
def _seeded(spec: TrainingSpec, offset: int = 0):
    """Seed torch for one fit; the caller's global random state is restored."""
    cuda_devices = (
        [torch.device(spec.device).index or 0] if spec.device.startswith("cuda") else []
    )
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(spec.seed + offset)
        yield


def _build(spec: TrainingSpec, image_shape) -> Classifier:
    """The module, with the starting weights in its backbone."""
    channels = image_shape[0]
    module = build_module(
        _backbone(spec, image_shape),
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


def _start_module(spec: TrainingSpec, images: ImageBatches, train_index) -> Classifier:
    # The network first: a module that fails, or weights that do not fit it,
    # should fail before the pass over the pixels that the statistics take.
    module = _build(spec, images.image_shape)
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


def _fit(net: _Net, spec: TrainingSpec, dataset, *, partial: bool = False) -> None:
    try:
        if partial:
            net.partial_fit(dataset, None, epochs=1)
        else:
            net.fit(dataset, None)
    except _Interrupted:
        raise KeyboardInterrupt(
            f"{spec.name}.fit was interrupted after {len(net.history)} "
            "epoch(s); the half-trained network was discarded (and not cached)."
        ) from None


class FreezeBackbone(Callback):
    """Train only the head for the first ``epochs`` epochs of the network.

    Epochs count over the network's whole history, so ``partial_fit`` calls
    freeze for as long as the first epochs of ``fit`` would.
    """

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_begin(self, net, **kwargs):
        # skorch has already opened this epoch's row: len(history) is 1-based.
        net.module_.freeze(len(net.history) <= self.epochs)

    def on_train_end(self, net, **kwargs):
        net.module_.freeze(False)


class _Interrupted(BaseException):
    """A KeyboardInterrupt in flight through skorch, which would swallow it."""


def _input_stats(spec: TrainingSpec, images: ImageBatches, train_index):
    """Per-channel mean and std of the training images (a sample of files)."""
    index = train_index
    if images.is_lazy and len(train_index) > _MAX_STATS_IMAGES:
        rng = np.random.RandomState(spec.seed)
        index = np.sort(rng.choice(train_index, _MAX_STATS_IMAGES, replace=False))
    return channel_stats(images, index, spec.batch_size)


def _set_reduction(criterion: torch.nn.Module, weight) -> None:
    # Weighted batches need each sample's loss (see _Net.get_loss).
    criterion.reduction = "mean" if weight is None else "none"


def _build_net(
    spec,
    module,
    images,
    y_encoded,
    train_index,
    valid_index,
    criterion=None,
    weight=None,
) -> _Net:
    """The skorch net; ``images`` and ``y_encoded`` are None when there is no data.

    ``y_encoded[train_index]`` sizes the class weights and the schedule.
    """
    loader = {"num_workers": spec.num_workers, "pin_memory": spec.device != "cpu"}
    if isinstance(images, DeviceImages):
        # Batches are built on the device: nothing to pin, no work for workers.
        loader = {"num_workers": 0, "pin_memory": False}
    valid = None
    if valid_index is not None:
        valid = BatchDataset(images, y_encoded, valid_index, weight)
    target = spec.target
    if criterion is None:
        criterion = target.criterion(
            None if y_encoded is None else spec.class_weight,
            None if y_encoded is None else y_encoded[train_index],
            spec.label_smoothing,
        )
        _set_reduction(criterion, weight)
    net_class, placement = _Net, {"device": spec.device}
    if spec.accelerator is not None:
        from ._accelerate import AcceleratedNet

        # AccelerateMixin wants device=None: the accelerator places the net.
        net_class = AcceleratedNet
        placement = {
            "accelerator": spec.accelerator,
            "device": None,
            "unwrap_after_train": False,  # _without_accelerator unwraps
            "iterator_train__shard": _shard(spec),
            # Its default sink prints the epoch table whatever verbose says.
            "callbacks__print_log__sink": spec.accelerator.print
            if spec.verbose
            else _silent,
        }
    return net_class(
        module=module,
        criterion=criterion,
        optimizer=spec.optimizer,
        optimizer__weight_decay=spec.weight_decay,
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
        callbacks=_callbacks(spec, 0 if train_index is None else len(train_index)),
        # Only for users of net_.predict_proba: sk_mlc's own prediction takes
        # logits from the module and lets the target apply the activation.
        predict_nonlinearity=target.activation,
        decision=target.encoded_decision,
        precision=spec.precision,
        augmenter=None
        if spec.augment is None
        else Augmenter(spec.augment, spec.seed, spec.device),
        verbose=spec.verbose,
        **placement,
    )


def predict_proba(
    net: NeuralNet,
    images: ImageBatches,
    proba_tensor,
    *,
    tta: str | None,
    batch_size: int,
    num_workers: int,
) -> np.ndarray:
    """``predict_proba``'s output, in batches, in eval mode.

    ``proba_tensor`` maps the module's logits to the probabilities (the
    target's). With ``tta="flip"`` each image's probabilities are the mean
    of its own and its mirror image's (``x.flip(-1)`` on the NCHW batch),
    which is what the ONNX export computes too. The loader is built here,
    not taken from the net, so that ``batch_size`` and ``num_workers`` set
    on the estimator after fit apply to prediction.
    """
    loader = batch_loader(
        BatchDataset(images),
        resolve_batch_size(batch_size),
        num_workers=num_workers,
        pin_memory=str(net.device) != "cpu",
    )

    def proba(X):
        # float32 logits whatever the autocast region computed in.
        return proba_tensor(net.infer(X).float())

    # Eval mode once, not per batch as skorch's evaluation_step does, and
    # inference_mode, which skips the autograd bookkeeping no_grad still does.
    # The mode the net was in is restored: it may go on training.
    was_training = net.module_.training
    net.module_.eval()
    try:
        with torch.inference_mode(), net.autocast():
            batches = []
            for X, _ in loader:
                X = to_tensor(net.to_device((X,))[0], device=net.device)
                batches.append(to_numpy(tta_proba(proba, X, tta)))
    finally:
        net.module_.train(was_training)
    return np.concatenate(batches)


def _backbone(spec: TrainingSpec, image_shape: tuple[int, int, int]) -> torch.nn.Module:
    module = spec.module
    if module is None:
        return ConvNet(
            image_shape[0],
            image_shape[1:],
            width=spec.width,
            depth=spec.depth,
            residual=spec.residual,
        )
    if isinstance(module, torch.nn.Module):
        return copy.deepcopy(module)  # never train the caller's own module
    built = module()
    if not isinstance(built, torch.nn.Module):
        raise TypeError(
            f"{spec.name}: module must be a torch.nn.Module or a callable returning "
            f"one; the callable returned {type(built).__name__}."
        )
    return built


def _split(spec: TrainingSpec, y_encoded: np.ndarray):
    """Train and validation indices; None without a ``validation_fraction``."""
    index = np.arange(len(y_encoded))
    if spec.validation_fraction is None:
        return index, None
    if spec.target.target_type == "multilabel-indicator":
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


def _callbacks(spec: TrainingSpec, n_train: int) -> list:
    callbacks = []
    if spec.freeze_epochs:
        callbacks.append(("freeze", FreezeBackbone(spec.freeze_epochs)))
    if spec.lr_schedule == "onecycle":
        steps = len(BatchSampler(n_train, spec.batch_size, False, 0, _shard(spec)))
        if 0 < spec.freeze_epochs < spec.max_epochs:
            # One cycle for the head alone, one for the whole network.
            frozen = spec.freeze_epochs * steps
            schedule = LRScheduler(
                policy=PhasedOneCycleLR,
                max_lr=spec.lr,
                phase_steps=(frozen, spec.max_epochs * steps - frozen),
                step_every="batch",
            )
        else:
            schedule = LRScheduler(
                policy=torch.optim.lr_scheduler.OneCycleLR,
                max_lr=spec.lr,
                total_steps=spec.max_epochs * steps,
                step_every="batch",
            )
        callbacks.append(("lr_schedule", schedule))
    if spec.early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss",
                    patience=spec.n_iter_no_change,
                    load_best=True,
                    sink=print if spec.verbose else _silent,
                ),
            )
        )
    if spec.verbose:
        callbacks.append(("progress", ProgressBar()))
    # skorch initialises (mutates) its callbacks: train on copies of the caller's.
    callbacks += [_copy_callback(callback) for callback in spec.callbacks]
    return callbacks


def _copy_callback(callback):
    """A copy of the caller's callback (or ``(name, callback)`` pair) to train with.

    Some callbacks hold what cannot be deep-copied (TensorBoard's
    ``SummaryWriter``, a lock, an open file): those are re-created from their
    parameters, which they then share with the caller's (the same writer).
    """
    if isinstance(callback, tuple):
        name, callback = callback
        return name, _copy_callback(callback)
    try:
        return copy.deepcopy(callback)
    except Exception:
        return type(callback)(**callback.get_params(deep=False))


def _shard(spec: TrainingSpec) -> tuple[int, int]:
    """This process's share of the training batches: all of them, but with DDP."""
    if spec.accelerator is None:
        return 0, 1
    from ._accelerate import shard

    return shard(spec.accelerator)


def _silent(*args, **kwargs) -> None:
    """A sink that prints nothing (EarlyStopping prints by default)."""
