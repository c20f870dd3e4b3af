"""The skorch ``NeuralNet`` that sk_mlc trains, extended through its hooks.

Everything sk_mlc changes in skorch's training loop is here, as overrides of
skorch's hooks (``train_step_single``, ``get_loss``, ``validation_step``,
``evaluation_step``, ``initialize_optimizer``, ``fit_loop``) and of one private
hook that skorch offers no public name for (``_step_optimizer``, listed in
``_compat.SKORCH_HOOKS``). The net is built in ``_build.py``.
"""

from __future__ import annotations

import copy

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_tensor

from .._compat import set_training
from ._head import fit_head, view_features
from ._placement import autocast, grad_scaler


class Net(NeuralNet):
    """skorch's ``NeuralNet``, extended through its hooks.

    * Augmentation is applied in ``train_step_single`` on the training
      device, so validation and prediction never see it.
    * ``predict`` returns decisions, for skorch's scoring callbacks.
    * ``precision``: the training, validation and evaluation steps run in
      its autocast region, with a gradient scaler for float16
      (``_placement.py``); "32" runs skorch's own steps.
    * ``run_single_epoch`` waits for the device once per epoch, not once
      per batch (``sync_every_batch`` for callbacks that need more).
    * ``fit_loop`` lets a user's Ctrl-C leave ``fit``; with
      ``compile_training`` (``torch.compile``'s options) it trains a
      compiled forward; with ``head_epochs``, its first epoch fits the head
      on the frozen backbone's features, computed once (``_head.py``), in
      place of that many frozen epochs.
    * Pickles leave the optimizer state out (``__getstate__``).
    """

    def __init__(
        self,
        *args,
        augmenter=None,
        decision=None,
        precision="32",
        sync_every_batch=False,
        compile_training=None,
        head_epochs=0,
        head_flips=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.head_epochs = head_epochs
        self.head_flips = head_flips
        self.augmenter = augmenter
        self.decision = decision
        self.precision = precision
        self.sync_every_batch = sync_every_batch
        self.compile_training = compile_training

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
        With unknown entries (NaN in a multi-label target), the weighted
        entries' sum is divided by the number of known ones, as the
        unweighted loss is.
        """
        if not isinstance(y_true, (tuple, list)):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        y_true, weight = (to_tensor(part, device=self.device) for part in y_true)
        entries = self.criterion_(y_pred, y_true).reshape(len(weight), -1)
        if y_true.is_floating_point():
            # Without a branch on the values (it would wait for the device):
            # with every entry known, this is the mean of the weighted means.
            known = ~torch.isnan(y_true.reshape(len(weight), -1))
            return (entries * weight[:, None]).sum() / known.sum().clamp(min=1)
        return (entries.mean(1) * weight).mean()

    def train_step_single(self, batch, **fit_params):
        """skorch's step: augmented, in the autocast region, scaled for fp16.

        skorch puts the module into training mode at every batch, a walk
        over all its submodules that cost about a tenth of a step of a
        network with no arithmetic to speak of (``bench_overhead.py``'s null
        network). Here it happens only when the module is not in training
        mode already: after validation, prediction or a callback switched
        it to evaluation.
        """
        batch = self._augmented(batch)
        if not self.module_.training:
            set_training(self, True)
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
        return {"loss": loss, "y_pred": float32(y_pred)}

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``, skipping callbacks whose method does nothing.

        Three notifications per batch reach every callback, most of which
        inherit skorch's empty ``Callback`` method for them; calling those
        cost a few percent of a small network's step. The net's own method
        (which keeps the history) and every overriding callback are called
        as skorch calls them, in the same order.
        """
        getattr(self, method_name)(self, **cb_kwargs)
        for listener in self._listeners(method_name):
            listener(self, **cb_kwargs)

    def _listeners(self, method_name: str) -> list:
        """The callbacks' bound ``method_name`` methods that do something.

        Worked out once per list of callbacks: skorch builds a new
        ``callbacks_`` list whenever it initialises them (``set_params``).
        """
        callbacks = self.callbacks_
        cache = self.__dict__.get("_listener_cache")
        if cache is None or cache[0] is not callbacks:
            cache = (callbacks, {})
            self.__dict__["_listener_cache"] = cache
        found = cache[1].get(method_name)
        if found is None:
            empty = getattr(Callback, method_name, None)
            found = [
                getattr(callback, method_name)
                for _, callback in callbacks
                if getattr(type(callback), method_name, None) is not empty
                or method_name in vars(callback)
            ]
            cache[1][method_name] = found
        return found

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
        if device is None or device == "cpu" or torch.device(device).type == "cpu":
            return batch
        return _moved(batch, device)

    def _step_optimizer(self, step_fn):  # skorch's private hook: _compat.SKORCH_HOOKS
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
        return {**step, "y_pred": float32(step["y_pred"])}

    def evaluation_step(self, batch, training=False):
        batch = self.to_device(batch)
        with self.autocast():
            return float32(super().evaluation_step(batch, training=training))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, waiting for the device once at its end.

        skorch records each batch's loss with ``loss.item()``, which waits
        for the GPU to finish the batch before the host may queue the next:
        the device idles while Python prepares every step. Here each batch
        records its loss as a detached device tensor, and the epoch's end
        turns them all into floats in one transfer, so the history holds
        floats again before any ``on_epoch_end`` callback reads it (skorch's
        ``train_loss`` and ``valid_loss``, ``EarlyStopping``, the printed
        log). A callback that reads the batch's history row in
        ``on_batch_end`` sees the tensor, as it sees ``loss`` in its
        arguments; ``sync_every_batch`` (``verbose``: the progress bar shows
        each batch's loss) records floats at once, at one wait per batch.
        """
        if iterator is None:
            return
        rows, losses = [], []
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        batches = self.history[-1]["batches"]  # this epoch's batch rows
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            # The batch's row, which on_batch_begin opened (what
            # history.record_batch writes to, without its lookups).
            row = batches[-1]
            row[loss_key] = loss.item() if self.sync_every_batch else loss
            row[size_key] = get_len(batch[0])
            rows.append(row)
            losses.append(loss)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses and not self.sync_every_batch:
            values = torch.stack(losses).float().cpu().tolist()
            for row, value in zip(rows, values, strict=True):
                row[loss_key] = value
        self.history.record(prefix + "_batch_count", len(rows))

    def fit_loop(self, X, y=None, **fit_params):
        # skorch's partial_fit swallows KeyboardInterrupt and returns a half
        # trained net as if it were done; memory would then cache it. Carry
        # a user's interrupt past it (scikit-learn's rule: fit completes or
        # raises). skorch's EarlyStopping stops training with the same
        # exception: that one is the normal end of training.
        compiled = self.compile_training is not None
        if compiled:
            # The module's forward, compiled in place: module_ stays the
            # Classifier (indexing, freeze, state_dict keys), where skorch's
            # own compile=True would wrap it in an OptimizedModule. Undone
            # after training, so that the fitted net pickles and predicts
            # eagerly. (Module.compile() would compile _call_impl, which
            # torch's dynamo skips as one of torch's own files.)
            module = self.module_
            module.forward = torch.compile(module.forward, **self.compile_training)
        try:
            epochs = fit_params.pop("epochs", None)
            epochs = self.max_epochs if epochs is None else epochs
            if self.head_epochs and not any(
                row.get("head_fit") for row in self.history
            ):
                self._head_epoch(X, y)
                epochs -= self.head_epochs
            if epochs > 0:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
            return self
        except KeyboardInterrupt as exc:
            if self._stopped_early():
                raise
            raise Interrupted from exc
        finally:
            if compiled:
                del module.forward

    def _head_epoch(self, X, y=None) -> None:
        """One epoch of the history: the head fitted on the frozen features.

        It stands for the ``head_epochs`` frozen epochs (``head_fit`` in its
        row; ``FreezeBackbone`` counts it so). Epoch callbacks run as for any
        epoch (its time, the printed row, early stopping's record, scikit-
        learn's callbacks); batch callbacks do not (no optimizer step, so
        the learning-rate schedule does not move). Its one training "batch"
        holds the fitted loss, so skorch's ``train_loss`` is that loss; with
        a validation split, its ``valid_loss`` is the fitted head's on the
        validation images.
        """
        dataset_train, dataset_valid = self.get_split_datasets(X, y)
        kwargs = {"dataset_train": dataset_train, "dataset_valid": dataset_valid}
        self.notify("on_epoch_begin", **kwargs)
        features, targets = view_features(self, dataset_train, self.head_flips)
        loss, iterations = fit_head(self, features, targets)
        self.history.new_batch()
        self.history.record_batch("train_loss", loss)
        self.history.record_batch("train_batch_size", len(features))
        if dataset_valid is not None:
            features, targets = view_features(self, dataset_valid, False)
            with torch.no_grad():
                valid = self.get_loss(self.module_.output(features), targets)
            self.history.new_batch()
            self.history.record_batch("valid_loss", float(valid))
            self.history.record_batch("valid_batch_size", len(features))
        self.history.record("head_fit", True)
        self.history.record("head_iterations", iterations)
        self.notify("on_epoch_end", **kwargs)

    def _stopped_early(self) -> bool:
        # EarlyStopping, or a scikit-learn callback (_callbacks.EpochTasks).
        return any(
            isinstance(callback, EarlyStopping)
            and callback.misses_ >= callback.patience
            or getattr(callback, "stopped_", False)
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
        state.pop("_listener_cache", None)  # bound methods: rebuilt on demand
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


def float32(y_pred):
    """Outputs of an autocast region as float32: numpy has no bfloat16."""
    if isinstance(y_pred, torch.Tensor) and y_pred.is_floating_point():
        return y_pred.float()
    return y_pred


def _without_scheduler(callback):
    if isinstance(callback, LRScheduler) and callback.lr_scheduler_ is not None:
        callback = copy.copy(callback)
        callback.lr_scheduler_ = None
    return callback


class Interrupted(BaseException):
    """A KeyboardInterrupt in flight through skorch, which would swallow it."""
