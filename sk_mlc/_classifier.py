"""``CNNClassifier``: a scikit-learn classifier whose loss and output follow ``y``."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import SHARED_CONSTRAINTS, ImageInputMixin, ProcessStateMixin, shared_docs
from ._compat import (
    CallbackSupportMixin,
    HasMethods,
    Interval,
    StrOptions,
    fit_context,
)
from .data import (
    AUGMENTATIONS,
    TTA,
    flips,
    resolve_tta,
)
from .targets import (
    CARDINALITY_CONSTRAINTS,
    KnownScoreMixin,
    LossSpec,
    check_cardinality,
    check_threshold,
    partial_fit_target,
    resolve_target,
)
from .training import (
    FitTasks,
    TrainingSpec,
    checked_weights,
    continue_network,
    predict_proba,
    start_network,
    train_epoch,
    train_or_load,
    warm_start_weights,
)


@shared_docs
class CNNClassifier(
    ImageInputMixin,
    ProcessStateMixin,
    CallbackSupportMixin,
    KnownScoreMixin,
    ClassifierMixin,
    BaseEstimator,
):
    """A convolutional image classifier that reads the shape of ``y``.

    ``fit`` looks at the target and decides, in one place, everything that
    depends on it:

    ============================  =======  ======================  ===========
    ``y``                         outputs  criterion               activation
    ============================  =======  ======================  ===========
    1-D, 2 classes (any labels)   1        ``BCEWithLogitsLoss``   sigmoid
    1-D, 3 or more classes        k        ``CrossEntropyLoss``    softmax
    2-D multi-hot (dense/sparse)  k        ``AsymmetricLoss``      sigmoid
    ============================  =======  ======================  ===========

    ``predict`` returns ``classes_[p >= threshold]`` for binary targets, the
    argmax class for multiclass targets, and the indicator matrix
    ``p >= threshold`` (per label, in ``y``'s dtype, sparse if ``y`` was) for
    multi-label targets, within ``min_labels`` and ``max_labels`` per row. A
    multi-label ``y`` may mark entries nobody annotated with NaN (target type
    "multilabel-indicator-with-unknowns"): the loss leaves them out, and
    ``predict`` decides them. The comparison is always ``>=``. The training engine
    is a :class:`skorch.NeuralNet`, kept as ``net_``.

    Parameters
    ----------
    %(module)s

    %(width)s

    %(depth)s

    %(residual)s

    %(dropout)s

    %(weights)s

    %(freeze_epochs)s

    %(normalize)s

    %(warm_start)s

    threshold : float or array-like of shape (n_labels,), default=0.5
        Decision threshold on the positive-class probability for binary and
        multi-label targets (one value per label, or one for all); a sample is
        positive when ``p >= threshold``. It has no effect on multiclass
        targets, which predict the argmax. It does not influence training, so
        tuning it (with ``memory``, or :class:`ThresholdTunerCV`) needs no
        retraining.

    %(min_labels)s

    %(max_labels)s

    %(loss)s

    %(label_smoothing)s

    %(class_weight)s

    %(image_shape)s

    %(layout)s

    %(image_size)s

    %(image_mode)s

    %(max_epochs)s

    %(batch_size)s

    %(lr)s

    %(lr_schedule)s

    %(optimizer)s

    %(weight_decay)s

    %(early_stopping)s

    %(validation_fraction)s

    %(n_iter_no_change)s

    %(augment)s

    %(tta)s

    %(callbacks)s

    %(device)s

    %(precision)s

    %(compile)s

    %(accelerator)s

    %(num_workers)s

    %(memory)s

    %(random_state)s

    %(verbose)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; for multi-label targets, the label indices ``0..k-1``.

    target_type_ : str
        ``type_of_target(y)``: "binary", "multiclass" or "multilabel-indicator".

    out_activation_ : str
        "softmax" or "sigmoid": the nonlinearity applied to the logits.

    criterion_ : torch.nn.Module
        The loss the network was trained with.

    n_outputs_ : int
        Number of logits of the output layer.

    %(input_shape_)s

    %(n_features_in_)s

    %(feature_names_in_)s

    n_iter_ : int
        Epochs actually run (fewer than ``max_epochs`` after early stopping);
        the head fitted on the frozen backbone (``freeze_epochs``) is one.

    %(device_)s

    %(precision_)s

    augment_ : str, callable or None
        The training augmentation: ``augment`` with "auto" resolved for the
        fitted images ("flip" for images of at least 16 pixels a side and at
        least 200 training images, else None).

    tta_ : "flip" or None
        The test-time augmentation ``predict_proba`` applies (``tta``
        resolved against the training's augmentation).

    net_ : skorch.NeuralNet
        The trained network; its training history is ``net_.history``.

    See Also
    --------
    ThresholdTunerCV : Tune one threshold per label from out-of-fold scores.
    sklearn.neural_network.MLPClassifier : Picks its output activation the same way.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mlc import CNNClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 8, 8).astype(np.float32)
    >>> Y = np.stack([X[:, :4].mean((1, 2)) > 0.5, X[:, 4:].mean((1, 2)) > 0.5], 1)
    >>> clf = CNNClassifier(max_epochs=2, random_state=0).fit(X, Y.astype(int))
    >>> clf.target_type_, clf.out_activation_, type(clf.criterion_).__name__
    ('multilabel-indicator', 'sigmoid', 'AsymmetricLoss')
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    # An Accelerator is the process's place in a group of processes, not a
    # setting: clone shares it, pickles leave it out (ProcessStateMixin).
    _process_state = ("accelerator",)

    _parameter_constraints: dict = {
        **SHARED_CONSTRAINTS,
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "freeze_epochs": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "threshold": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        **CARDINALITY_CONSTRAINTS,
        "loss": [StrOptions({"auto", "bce", "focal", "asl"}), LossSpec],
        "class_weight": [StrOptions({"balanced"}), dict, "array-like", None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"onecycle", "constant"})],
        "optimizer": [callable],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "augment": [StrOptions({"auto", *AUGMENTATIONS}), callable, None],
        "tta": [StrOptions({"auto", *TTA}), None],
        "callbacks": [list, None],
        "accelerator": [HasMethods(["prepare", "autocast"]), None],
        "memory": [str, HasMethods(["cache"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "compile": ["boolean", dict],
    }

    def __init__(
        self,
        module=None,
        *,
        width=16,
        depth="auto",
        residual=False,
        dropout=0.1,
        weights=None,
        freeze_epochs=0,
        normalize="auto",
        warm_start=False,
        threshold=0.5,
        min_labels=0,
        max_labels=None,
        loss="auto",
        label_smoothing=0.0,
        class_weight=None,
        image_shape=None,
        layout="auto",
        image_size=None,
        image_mode=None,
        max_epochs=14,
        batch_size="auto",
        lr=3e-3,
        lr_schedule="onecycle",
        optimizer=torch.optim.AdamW,
        weight_decay=1e-2,
        early_stopping=False,
        validation_fraction=None,
        n_iter_no_change=3,
        augment="auto",
        tta="auto",
        callbacks=None,
        device="auto",
        precision="auto",
        compile=False,
        accelerator=None,
        num_workers=0,
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.module = module
        self.width = width
        self.depth = depth
        self.residual = residual
        self.dropout = dropout
        self.weights = weights
        self.freeze_epochs = freeze_epochs
        self.normalize = normalize
        self.warm_start = warm_start
        self.threshold = threshold
        self.min_labels = min_labels
        self.max_labels = max_labels
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.image_shape = image_shape
        self.layout = layout
        self.image_size = image_size
        self.image_mode = image_mode
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.augment = augment
        self.tta = tta
        self.callbacks = callbacks
        self.device = device
        self.precision = precision
        self.compile = compile
        self.accelerator = accelerator
        self.num_workers = num_workers
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on images ``X`` and targets ``y``.

        Parameters
        ----------
        %(X_fit)s
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multi-hot indicator matrix (dense or sparse).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples' losses (each sample's loss is
            the mean over its labels). They are divided by their mean over
            the training samples, so they move emphasis between samples and
            leave the learning rate's meaning alone; equal weights are the
            same as None. The validation loss (``early_stopping``) is weighted
            too. Mini-batch training is stochastic: a weight of 2 is close to,
            not the same as, repeating a sample.

        Returns
        -------
        self : CNNClassifier
            The fitted estimator.
        """
        name = type(self).__name__
        # scikit-learn's callbacks (sklearn.callback): the fit is a task, each
        # epoch a subtask (training/_callbacks.py's EpochTasks).
        context = self._init_callback_context(max_subtasks=self.max_epochs)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        context.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
        images, y, inputs = self._read_images(X, y, reset=True, needs_y=True)
        target = resolve_target(y, name)
        y_encoded = target.fit_encode(y)
        if target.uses_threshold:
            check_threshold(self.threshold, target.n_labels, name)
        check_cardinality(self.min_labels, self.max_labels, target, name)
        init = None
        if self.warm_start and hasattr(self, "net_"):
            init = warm_start_weights(
                self.net_,
                self._target_,
                self.input_shape_,
                target,
                images.image_shape,
                name,
            )
        shape = images.image_shape
        tasks = FitTasks(
            context,
            self,
            lambda net: self._fitted(inputs, shape, target, spec, net, None),
        )
        spec = TrainingSpec.from_estimator(
            self, target, len(images), image_shape=shape, init=init, tasks=tasks
        )
        sample_weight = checked_weights(sample_weight, len(images), name)
        net, weights_id = train_or_load(
            spec, images, y_encoded, sample_weight, self.memory, self.random_state
        )
        vars(self).update(self._fitted(inputs, shape, target, spec, net, weights_id))
        context.call_on_fit_task_end(
            estimator=self, X=X, y=y, metadata=metadata, reconstruction_attributes={}
        )
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one more epoch on ``X``, ``y``, at the constant ``lr``.

        scikit-learn's incremental convention: the first call (on an unfitted
        estimator) builds the network, learning the input statistics from its
        batch as ``normalize`` says; each call is one pass over the data it
        is given. The optimizer state (moment estimates) carries over from
        call to call, and from a previous ``fit``. ``memory`` is not used.

        Parameters
        ----------
        X : array-like or sequence of image paths / PIL images
            Images, as for ``fit``; later calls need the first call's shape.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels within ``classes``, or a multi-hot indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class label of a 1-D target; required on the first call (a
            batch need not hold them all), optional later (it must then match
            ``classes_``). A multi-hot ``y`` names its labels by its columns.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples' losses, relative within the call (see
            ``fit``).

        Returns
        -------
        self : CNNClassifier
            The estimator, one epoch further.
        """
        name = type(self).__name__
        first = not hasattr(self, "net_")
        images, y, inputs = self._read_images(X, y, reset=first, needs_y=True)
        target = partial_fit_target(
            y, classes, name, fitted=None if first else self._target_
        )
        y_encoded = target.encode(y, name)
        spec = TrainingSpec.from_estimator(
            self, target, len(images), image_shape=images.image_shape, incremental=True
        )
        if first:
            net = start_network(spec, images, y_encoded)
        else:
            net = self.net_ if self._incremental_ else continue_network(self.net_, spec)
        sample_weight = checked_weights(sample_weight, len(images), name)
        train_epoch(net, spec, images, y_encoded, sample_weight)
        fitted = self._fitted(inputs, images.image_shape, target, spec, net, None)
        vars(self).update(fitted, _incremental_=True)
        return self

    @staticmethod
    def _fitted(inputs, image_shape, target, spec, net, weights_id) -> dict:
        """The fitted attributes of a fit with ``spec`` that trained ``net``."""
        return {
            "_input_spec_": inputs,
            "_target_": target,
            "_weights_id_": weights_id,
            "_incremental_": False,
            "classes_": target.classes_,
            "target_type_": target.target_type,
            "out_activation_": target.out_activation,
            "n_outputs_": target.n_outputs,
            "input_shape_": tuple(image_shape),
            "device_": spec.device,
            "precision_": spec.precision,
            "_flips_": flips(spec.augment),
            "net_": net,
            "n_iter_": len(net.history),
        }

    @property
    def augment_(self):
        """The augmentation ``fit`` trains with: ``augment``, "auto" resolved."""
        check_is_fitted(self, "net_")
        if isinstance(self.augment, str) and self.augment == "auto":
            # "auto" resolves to flips or to nothing, which _flips_ records.
            return "flip" if getattr(self, "_flips_", False) else None
        return self.augment

    @property
    def tta_(self) -> str | None:
        """The test-time augmentation ``predict_proba`` applies: "flip" or None."""
        check_is_fitted(self, "net_")
        # Models saved before test-time augmentation existed lack _flips_.
        return resolve_tta(self.tta, getattr(self, "_flips_", False))

    @property
    def criterion_(self) -> nn.Module:
        """The torch loss module the network was trained with."""
        check_is_fitted(self, "net_")
        return self.net_.criterion_

    def predict_proba(self, X):
        """Class probabilities, in batches, in eval mode, without gradients.

        With test-time augmentation (``tta_ == "flip"``) each image's
        probabilities are the mean of its own and its mirror image's.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
            Binary: ``(n, 2)`` with columns ``[1 - p, p]``; multiclass: softmax
            rows summing to 1; multi-label: one sigmoid probability per label.
        """
        check_is_fitted(self)
        images, _, _ = self._read_images(X, reset=False)
        return predict_proba(
            self.net_,
            images,
            self._target_.proba_tensor,
            tta=self.tta_,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            weights_id=self._weights_id_,
        )

    def predict(self, X):
        """Predicted classes (binary, multiclass) or label indicators (multi-label).

        Parameters
        ----------
        %(X)s

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``; for multi-label targets an indicator
            matrix in ``y``'s dtype (a sparse CSR matrix if ``y`` was sparse).
        """
        check_is_fitted(self)
        target, name = self._target_, type(self).__name__
        threshold = None
        if target.uses_threshold:
            # The prediction-time settings may have changed through set_params.
            threshold = check_threshold(self.threshold, target.n_labels, name)
        bounds = check_cardinality(self.min_labels, self.max_labels, target, name)
        return target.decide(target.positive(self.predict_proba(X)), threshold, *bounds)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.three_d_array = True
        return tags
