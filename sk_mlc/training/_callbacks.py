"""The skorch callbacks a training runs with: freezing, the schedule, stopping.

:func:`training_callbacks` lists them for a spec: :class:`FreezeBackbone` for
``freeze_epochs``, skorch's ``LRScheduler`` for ``lr_schedule="onecycle"``,
skorch's ``EarlyStopping`` and ``ProgressBar``, :class:`EpochTasks` (each
epoch a task of scikit-learn's callbacks, ``sklearn.callback``), then copies
of the user's.

The learning-rate schedule of a fine-tune. With ``freeze_epochs``, training
has two phases: the head alone, then the whole network. ``fit`` fits the
head to convergence in one history row (``_head.py``), which takes no
optimizer step: the schedule is one cycle over the remaining epochs, each
parameter group peaking at its own rate (:func:`group_one_cycle`; the
backbone's is a tenth of the head's). Where the frozen phase trains epoch by
epoch (a fit through an accelerator), each phase gets its own cycle, as
fastai's ``fine_tune`` does (:func:`phased_one_cycle`, torch's
``SequentialLR`` over two ``OneCycleLR``): one cycle across both would still
be warming up when the backbone unfreezes, and its peak would fall on the
head-only epochs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from skorch.callbacks import Callback, EarlyStopping, LRScheduler, ProgressBar
from torch.optim.lr_scheduler import OneCycleLR, SequentialLR

from ..data import BatchSampler
from ._placement import shard
from ._spec import TrainingSpec


class FreezeBackbone(Callback):
    """Train only the head for the first ``epochs`` epochs of the network.

    Epochs count over the network's whole history, so ``partial_fit`` calls
    freeze for as long as the first epochs of ``fit`` would.
    """

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_begin(self, net, **kwargs):
        # skorch has already opened this epoch's row. A fitted head's row
        # (_head.py) stands for all the frozen epochs.
        done = sum(
            self.epochs if row.get("head_fit") else 1 for row in net.history[:-1]
        )
        net.module_.freeze(done < self.epochs)

    def on_train_end(self, net, **kwargs):
        net.module_.freeze(False)


class EpochTasks(Callback):
    """Each epoch, a task of scikit-learn's callbacks (``sklearn.callback``).

    ``tasks`` is the fit's :class:`FitTasks`. At every epoch's start a
    subtask of its context begins, at its end the subtask ends: scikit-learn
    callbacks (``ProgressBar``, ``ScoringMonitor``) see the epochs as the
    iterations of ``fit``, nested inside ``GridSearchCV``'s or
    ``ThresholdTunerCV``'s folds when the fit is one of theirs. A callback
    that asks to stop (its ``on_fit_task_end`` returns True) ends training
    after that epoch, as skorch's ``EarlyStopping`` does. The references to
    the context and the estimator are dropped when training ends, so the
    fitted net keeps none.
    """

    def __init__(self, tasks: FitTasks):
        self.tasks = tasks

    def initialize(self):
        self.stopped_ = False
        return self

    def on_epoch_begin(self, net, **kwargs):
        if self.tasks is None:  # the net trains on after its fit: no one listens
            return
        self.task_ = self.tasks.context.subcontext(task_name="epoch")
        self.task_.call_on_fit_task_begin(estimator=self.tasks.estimator)

    def on_epoch_end(self, net, **kwargs):
        if self.tasks is None:
            return
        stop = self.task_.call_on_fit_task_end(
            estimator=self.tasks.estimator,
            reconstruction_attributes=lambda: self.tasks.fitted(net),
        )
        if stop:
            self.stopped_ = True
            raise KeyboardInterrupt  # skorch's way to end training early

    def on_train_end(self, net, **kwargs):
        self.tasks = self.task_ = None

    def __getstate__(self):
        # The fit's context and estimator are not the net's to carry along.
        return {**vars(self), "tasks": None, "task_": None}


@dataclass(frozen=True, eq=False)
class FitTasks:
    """scikit-learn callbacks' view of one fit: where its epochs report.

    ``context`` is the fit's ``sklearn.callback.CallbackContext``,
    ``estimator`` the estimator that fits, and ``fitted(net)`` its fitted
    attributes with ``net`` as the network, for callbacks that want a fitted
    estimator at an epoch's end.
    """

    context: object
    estimator: object
    fitted: Callable


def phased_one_cycle(
    optimizer, max_lr: float, phase_steps: tuple[int, int], last_epoch: int = -1
) -> SequentialLR:
    """``OneCycleLR`` over ``phase_steps[0]`` steps, then a fresh one over the rest.

    A scheduler policy for skorch's ``LRScheduler`` callback, stepped every
    batch; both cycles peak at ``max_lr``. skorch passes ``last_epoch``
    (``len(history) - 1``): sk_mlc starts every scheduled training on a fresh
    net, and ``partial_fit`` has no schedule.
    """
    if last_epoch != -1:
        raise ValueError(
            "phased_one_cycle starts at the beginning of training; got "
            f"last_epoch={last_epoch}."
        )
    head, whole = phase_steps
    cycles = [
        OneCycleLR(optimizer, max_lr=max_lr, total_steps=head),
        OneCycleLR(optimizer, max_lr=max_lr, total_steps=whole),
    ]
    return SequentialLR(optimizer, cycles, milestones=[head])


def group_one_cycle(optimizer, total_steps: int, last_epoch: int = -1) -> OneCycleLR:
    """``OneCycleLR`` in which each parameter group peaks at its own rate.

    The rate a group was created with is its peak: the backbone's
    ``lr * backbone_lr`` and the head's ``lr`` after a fitted head
    (``_build.py``'s parameter groups).
    """
    peaks = [group["lr"] for group in optimizer.param_groups]
    return OneCycleLR(
        optimizer, max_lr=peaks, total_steps=total_steps, last_epoch=last_epoch
    )


def training_callbacks(spec: TrainingSpec, n_train: int) -> list:
    """The callbacks of a training on ``n_train`` images, as ``spec`` says."""
    callbacks = []
    if spec.freeze_epochs:
        callbacks.append(("freeze", FreezeBackbone(spec.freeze_epochs)))
    # With a fitted head, the frozen phase takes no optimizer steps: the
    # schedule spans the epochs that fine-tune everything (if any).
    scheduled = spec.max_epochs - (spec.freeze_epochs if spec.fit_head else 0)
    if spec.lr_schedule == "onecycle" and scheduled > 0:
        sampler = BatchSampler(
            n_train, spec.batch_size, False, 0, shard(spec.accelerator)
        )
        steps = len(sampler)
        if spec.fit_head:
            schedule = LRScheduler(
                policy=group_one_cycle,
                total_steps=scheduled * steps,
                step_every="batch",
            )
        elif 0 < spec.freeze_epochs < spec.max_epochs:
            # One cycle for the head alone, one for the whole network.
            frozen = spec.freeze_epochs * steps
            schedule = LRScheduler(
                policy=phased_one_cycle,
                max_lr=spec.lr,
                phase_steps=(frozen, spec.max_epochs * steps - frozen),
                step_every="batch",
            )
        else:
            schedule = LRScheduler(
                policy=OneCycleLR,
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
                    sink=print if spec.verbose else silent,
                ),
            )
        )
    if spec.verbose:
        callbacks.append(("progress", ProgressBar()))
    if spec.tasks is not None:
        callbacks.append(("sklearn_callbacks", EpochTasks(spec.tasks)))
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


def silent(*args, **kwargs) -> None:
    """A sink that prints nothing (EarlyStopping prints by default)."""
