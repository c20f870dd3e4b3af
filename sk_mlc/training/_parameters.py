"""The documentation of the training parameters, next to the rules they describe.

Each entry is one parameter of ``CNNClassifier`` as its docstring shows it
(``%(name)s`` lines, filled by ``sk_mlc._docs.fill_docs``). They live in
``training/`` because this package resolves them (``_spec.py``: the batch
size rule, the validation split, the schedule; ``_cache.py``: ``memory``),
so a change to a rule and to its documentation is one change here.
"""

TRAINING_DOCS = {
    "max_epochs": """\
max_epochs : int, default=14
    Number of passes over the training data (``fit``; each ``partial_fit``
    call is one pass).""",
    "batch_size": """\
batch_size : int or "auto", default="auto"
    Images per training and prediction batch. "auto" is 128, lowered on
    small training sets to keep about 10 batches per epoch (never below
    8), so that a few hundred images still get enough optimizer steps.
    At least 2 for training (batch normalisation needs two images); a
    last batch of a single image is merged into the one before it.""",
    "lr": """\
lr : float, default=3e-3
    Learning rate (the peak of the one-cycle schedule).""",
    "lr_schedule": """\
lr_schedule : {"onecycle", "constant"}, default="onecycle"
    "onecycle" warms the learning rate up and anneals it over
    ``max_epochs`` (``torch.optim.lr_scheduler.OneCycleLR``, stepped per
    batch); "constant" keeps ``lr``. ``partial_fit`` always trains at the
    constant ``lr`` (an open-ended series of calls has no end to anneal
    towards); lower ``lr`` with ``set_params`` to fine-tune gently.""",
    "optimizer": """\
optimizer : type, default=torch.optim.AdamW
    A ``torch.optim.Optimizer`` class (or a callable like it, e.g. a
    ``functools.partial`` carrying extra arguments).""",
    "weight_decay": """\
weight_decay : float, default=1e-2
    Weight decay passed to the optimizer.""",
    "early_stopping": """\
early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the training data (0.1 when it is
    None), stop when the validation loss has not improved for
    ``n_iter_no_change`` epochs and restore the best weights.""",
    "validation_fraction": """\
validation_fraction : float or None, default=None
    Share of the training data held out as a validation set (stratified
    for 1-D targets when every class has two samples; for
    multi-label targets by iterative stratification, so that every label
    keeps its rate). skorch reports ``valid_loss`` on it every epoch, and
    skorch callbacks that need a validation set (``EpochScoring(...,
    on_train=False)``, ``Checkpoint``, ``EarlyStopping``) work with it,
    with or without ``early_stopping``. None holds nothing out, unless
    ``early_stopping`` (then 0.1).""",
    "n_iter_no_change": """\
n_iter_no_change : int, default=3
    Patience of early stopping, in epochs.""",
    "callbacks": """\
callbacks : list or None, default=None
    Extra skorch callbacks (instances or ``(name, callback)`` pairs),
    copied and passed to the ``NeuralNet`` (deep copies; a callback that
    cannot be deep-copied, such as ``TensorBoard``, is re-created from
    its parameters and shares them). ``EpochScoring`` takes scorer names
    of labels ("accuracy", "f1", "f1_micro", ...): the net's ``predict``
    returns encoded decisions at threshold 0.5 (argmax for multiclass).
    An ``LRScheduler`` needs ``lr_schedule="constant"`` (two schedules
    would stack). Callbacks run while a network trains: a fit served by
    ``memory`` runs none of them.""",
    "accelerator": """\
accelerator : accelerate.Accelerator or None, default=None
    Trains through Hugging Face Accelerate (skorch's
    ``skorch.hf.AccelerateMixin``), so that ``accelerate launch`` runs
    data parallel training on several GPUs or machines; its device and
    ``mixed_precision`` are used (``device`` and ``precision`` stay
    "auto"). Validation and prediction run whole on every process. It is
    process state, not a setting: ``clone`` shares it, it is not in
    ``memory``'s key, and the fitted network does not keep it. Needs the
    optional extra ``accelerate``; the guide's page on GPUs says more.""",
    "memory": """\
memory : str, joblib.Memory or None, default=None
    Cache of trained networks (as ``Pipeline``'s ``memory``): a folder,
    or a ``joblib.Memory`` whose ``location`` is used. A fit whose
    training parameters, data, seed and sk_mlc code match an earlier one
    loads that network instead of training again; ``threshold``,
    ``min_labels``, ``max_labels``, ``tta``, ``verbose``, ``compile``,
    ``memory`` and ``num_workers`` are not part of the key, so a search
    over them trains once per fold. Entries are
    sealed safetensors files, never pickles (a corrupt or crafted one is
    ignored with a warning), shared safely between processes (one
    training per network, on a lock file); only ``fit`` touches the
    folder. Needs an int ``random_state`` (with None it is skipped with a
    warning). The guide's page on tuning thresholds says more.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling, dropout, augmentation and the
    validation split. The same seed gives the same probabilities. Torch's
    global random state is left as it was.""",
    "verbose": """\
verbose : int, default=0
    0 is silent; 1 or more prints skorch's table of epochs and a progress
    bar of the batches of each epoch. The bar shows each batch's loss, so
    with ``verbose`` each batch waits for a GPU to finish it (silent
    training waits once per epoch: the guide's GPU page).""",
    "compile": """\
compile : bool or dict, default=False
    Trains with the network's forward compiled by ``torch.compile`` (a
    dict: its keyword arguments, such as ``{"mode": "max-autotune"}``).
    The first batches pay the compilation, and a last batch of another
    size pays again: about 40 s for the default CNN on a 2-core CPU,
    where it does not pay back; on a GPU it can pay on long trainings,
    not measured yet (the guide's GPU page). Prediction runs the network
    uncompiled, and the fitted model is the same within floating-point
    rounding: ``compile`` is not in ``memory``'s key. With an
    ``accelerator``, Accelerate compiles (its ``dynamo_backend``).""",
    "freeze_epochs": """\
freeze_epochs : int, default=0
    The first ``freeze_epochs`` of the ``max_epochs`` train only the head,
    on a frozen backbone (eval mode: its BatchNorm statistics do not move).
    ``fit`` does it as a linear probe fitted to convergence: the backbone
    runs once over the training images (once more for their mirror images
    when ``augment_`` flips; shifts and a callable ``augment`` apply to the
    later epochs only), and the output layer is fitted on those features
    by full-batch L-BFGS, minimising the training loss plus
    ``||W||^2 / (2 n)``: for cross-entropy, scikit-learn's
    ``LogisticRegression(C=1.0)`` on the same features. This is one row of
    ``net_.history`` (``head_fit``), standing for the frozen epochs.
    ``freeze_epochs >= max_epochs`` is the probe alone; otherwise the
    remaining epochs fine-tune everything in one cycle, the backbone at a
    tenth of ``lr`` (as fastai's ``fine_tune`` lowers the early layers'
    rates), so that the fitted head is not undone. ``partial_fit`` (and a
    fit with an ``accelerator``) trains the frozen epochs one by one;
    epochs count over the network's life, so ``partial_fit`` calls freeze
    for as long as the first epochs of ``fit`` would. Used with
    ``weights``.""",
    "warm_start": """\
warm_start : bool, default=False
    When True and the estimator is fitted, ``fit`` continues training the
    fitted network (a fresh optimizer and schedule over ``max_epochs``)
    instead of starting anew; ``y`` must have the same classes (or
    labels) and the images the same shape, else a ``ValueError``.
    ``weights`` is then not read. With ``memory``, the cache key holds the
    network it started from.""",
    "label_smoothing": """\
label_smoothing : float in [0, 1), default=0.0
    Moves the training targets towards the uniform distribution:
    cross-entropy's ``label_smoothing`` for multiclass targets, and
    targets ``y (1 - e) + e / 2`` in the sigmoid loss of binary and
    multi-label targets (binary cross-entropy, focal or asymmetric). It
    discourages over-confident logits, which pays over long trainings;
    probabilities then stay inside ``[e / 2, 1 - e / 2]`` on the training
    data.""",
    "class_weight": """\
class_weight : "balanced", dict, array-like or None, default=None
    Class weights in the loss. For 1-D targets: "balanced" or a dict
    ``{class label: weight}``; for binary targets this becomes BCE's
    ``pos_weight = w_pos / w_neg``. For multi-label targets: "balanced"
    (``pos_weight = n_negative / n_positive`` per label), a dict
    ``{label index: weight}`` or an array of one positive weight per label.
    Unknown entries of ``y`` (NaN) count neither way.""",
    "loss": """\
loss : {"auto", "bce", "focal", "asl"} or a loss of sk_mlc.losses, \
        default="auto"
    The loss of binary and multi-label targets: "auto" is the asymmetric
    loss for multi-label targets (it ranks and decides best in
    ``benchmarks/bench_partial_labels.py``, but its probabilities are
    scores, not calibrated: tune the thresholds) and binary cross-entropy
    for binary ones; "bce" is binary cross-entropy, "focal" focal loss
    (``Focal(gamma=2)``), "asl" the asymmetric loss
    (``Asymmetric(gamma_neg=4, gamma_pos=0, clip=0.05)``); an instance
    sets their parameters (``GridSearchCV`` tunes ``loss__gamma``).
    Multiclass targets train with cross-entropy: any other value is an
    error.""",
    "dropout": """\
dropout : float, default=0.1
    Dropout before the output layer.""",
}
