"""The parameters sk_mlc's image estimators share, written once.

``CNNClassifier`` (and every estimator that reads images and runs a
backbone) takes the same parameters for the backbone (``module``, ``width``,
``depth``, ``residual``, ``weights``, ``normalize``), for reading images
(``image_shape``, ``layout``, ``image_size``, ``image_mode``) and for where
it computes (``device``, ``num_workers``). Their constraints
(:data:`SHARED_CONSTRAINTS`) and their documentation (:data:`SHARED_DOCS`)
live here, so that the estimators cannot drift apart: a class docstring
names a shared parameter by a line ``%(name)s``, which :func:`shared_docs`
replaces with its entry.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from numbers import Integral

import torch
from sklearn.base import BaseEstimator
from torch import nn

from ._compat import Interval, StrOptions
from ._docs import fill_docs
from .data import AUGMENT_DOCS, MODES, InputSpec, read_images
from .targets import DECISION_DOCS
from .training import PRECISIONS, TRAINING_DOCS

LAYOUTS = ("auto", "NHWC", "NCHW")

SHARED_CONSTRAINTS: dict = {
    "module": [nn.Module, callable, None],
    "width": [Interval(Integral, 1, None, closed="left")],
    "depth": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "residual": ["boolean"],
    "weights": [str, os.PathLike, Mapping, BaseEstimator, None],
    "normalize": [StrOptions({"auto", "imagenet"}), tuple, list],
    "image_shape": [tuple, list, None],
    "layout": [StrOptions(set(LAYOUTS))],
    "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
    "image_mode": [StrOptions(set(MODES)), None],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
    "num_workers": [Interval(Integral, 0, None, closed="left")],
}

SHARED_DOCS = {
    "module": """\
module : torch.nn.Module, callable or None, default=None
    The backbone. None builds the built-in CNN (see ``width``, ``depth``).
    A module (deep-copied, never modified) or a callable returning one
    (called under the fit's seed) must map ``(n, C, H, W)`` images to
    features ``(n, F)`` or feature maps ``(n, F, h, w)``; the estimator
    adds the input standardisation, global average pooling of feature maps,
    and what it needs on top (``CNNClassifier``: ``dropout`` and the output
    layer sized for the target).""",
    "width": """\
width : int, default=16
    Channels of the built-in CNN's first stage; doubled at each stage.""",
    "depth": """\
depth : int or "auto", default="auto"
    Number of stages of the built-in CNN. "auto" halves the longer image
    side down to 4 pixels or less: 2 stages for 8x8 images, 4 for 28x28
    or 32x32, 5 for 56x56 (at least 2, at most 5). ``CNNClassifier.fit``
    on fewer than 200 training images halves down to 8 pixels or less
    (3 stages for 28x28): the fourth stage costs accuracy on a few images
    per class.""",
    "residual": """\
residual : bool, default=False
    Adds a residual block (two 3x3 convolutions and a skip connection)
    after each pooling of the built-in CNN, ResNet-9 style: about twice
    the arithmetic per image, for longer trainings (with ``width=32``,
    ``augment="flip+shift"``, ``label_smoothing=0.1`` and
    ``max_epochs=30`` it is the guide's longer Fashion-MNIST setting).""",
    "weights": """\
weights : str, path, mapping, CNNClassifier or None, default=None
    The backbone's starting weights; None initialises it at random.

    * A path to a state dict saved with ``torch.save`` (``.pt``, ``.pth``;
      read with ``weights_only=True``) or to a ``.safetensors`` file. A
      file that holds anything but tensors (a pickled model, a crafted
      payload) is refused with a ``ValueError``: nothing in it runs.
    * A state dict (a mapping of names to tensors or arrays).
    * A fitted ``CNNClassifier``, whose trained backbone (and, with
      ``normalize="auto"``, input statistics) is reused; a classifier puts
      a new head sized for its own target on it. Inside ``GridSearchCV`` or
      ``cross_val_score``, wrap it in
      :class:`sklearn.frozen.FrozenEstimator`: ``clone`` re-creates a
      bare estimator parameter unfitted, but leaves a frozen one as is.

    Every parameter and buffer of the backbone (``module``, or the
    built-in CNN) must be in the weights with its shape, else a
    ``ValueError`` lists the missing or mismatched names. Entries the
    backbone lacks (typically the old classifier head, ``fc.*`` or
    ``_fc.*``) are ignored with a warning that names them.""",
    "normalize": """\
normalize : "auto", "imagenet" or (mean, std), default="auto"
    The per-channel standardisation applied inside the network, on the
    [0, 1] pixel scale. "auto" learns mean and std from the training
    images; with ``weights``, it takes them from the fitted
    ``CNNClassifier`` given as ``weights`` (its backbone learned on them),
    and for weights from a file or a state dict on 3-channel images it
    uses ImageNet's (published backbones were trained on them; statistics
    of a few training images cost a linear probe accuracy). "imagenet"
    uses ImageNet's statistics (3 channels: pass ``image_mode="RGB"`` for
    grey images). A pair of sequences (one value or one per channel each)
    is used as given: pass the statistics a backbone was trained with when
    they are not ImageNet's.""",
    "image_shape": """\
image_shape : tuple of int or None, default=None
    How to reshape each row of a flat ``(n, d)`` X: ``(H, W)``,
    ``(H, W, C)`` or ``(C, H, W)`` (the layout rule below applies). None
    treats each row as a ``1 x d`` one-channel image, so tabular data works.""",
    "layout": """\
layout : {"auto", "NHWC", "NCHW"}, default="auto"
    Channel axis of 4-D input (or of a 3-D ``image_shape``). "auto" takes
    the last axis as channels when it has at most 4 entries, otherwise the
    first axis when it has at most 4; 3-D input ``(n, H, W)`` is always one
    channel.""",
    "image_size": """\
image_size : int, tuple of int or None, default=None
    The ``(height, width)`` every image is resized to (bilinear, with
    antialiasing), image files and arrays alike. None keeps the size of
    the input: arrays as they are, image files at the size of the first
    training image. After fit the fitted value is used, and image files
    are always brought to the fitted size.""",
    "image_mode": """\
image_mode : {"L", "RGB", "LA", "RGBA", "CMYK", ...} or None, default=None
    The Pillow mode every image is converted to. Image files convert to
    any 8-bit mode; arrays convert between grey ("L") and colour ("RGB",
    with Pillow's luma weights; an alpha channel is dropped). None keeps
    the channels of arrays and decodes image files as RGB. After fit the
    fitted value is used (and files take the fitted channel count). With
    ``image_size`` or ``image_mode`` set, a fitted estimator accepts arrays
    of other sizes or channel counts and converts them the same way.""",
    "device": """\
device : str, default="auto"
    Torch device; "auto" takes CUDA when available, else the CPU. On a
    CUDA device, in-memory training arrays are copied to the GPU once (in
    their own dtype, uint8 stays uint8) when they take at most a quarter
    of its free memory, and are scaled, laid out, augmented and batched
    there; image files and larger arrays go through pinned memory, batch
    by batch.""",
    "precision": """\
precision : {"auto", "32", "bf16-mixed", "16-mixed"}, default="auto"
    The floating-point types the network computes in. The mixed settings
    run it under ``torch.autocast`` in bfloat16 or float16 while the
    weights (and in training the loss and the optimizer) stay float32;
    "16-mixed" training adds a gradient scaler (float16's small range would
    flush small gradients to zero). "auto" is "bf16-mixed" on CUDA devices
    that support bfloat16, else "32". "bf16-mixed" also runs on the CPU
    (fast only where it has bfloat16 instructions); "16-mixed" on the CPU
    works but is several times slower than "32" (a warning says so).
    Prediction runs in the precision the network trained in
    (``precision_``); outputs are float32 whatever it is. With an
    ``accelerator``, its ``mixed_precision`` decides and ``precision`` must
    stay "auto".""",
    "num_workers": """\
num_workers : int, default=0
    Worker processes that decode image files (torch ``DataLoader``).
    Arrays are converted in-process.""",
    # The X of fit and of a fitted estimator's methods.
    "X_fit": """\
X : array-like or sequence of image paths / PIL images
    Images ``(n, H, W)``, ``(n, H, W, C)``, ``(n, C, H, W)``, flat rows
    ``(n, d)`` (see ``image_shape``), or image files decoded batch by
    batch through Pillow. ``uint8`` pixels are scaled to [0, 1] and
    ``uint16`` to [0, 1] by their dtype; per-channel mean and std are
    learned here (for image files, from a random sample of at most
    1024 training images rather than a full pass) and applied inside
    the network.""",
    "X": """\
X : array-like or sequence of image paths / PIL images
    Images in any layout accepted by ``fit``, of the fitted shape.""",
    # Fitted attributes.
    "input_shape_": """\
input_shape_ : tuple of int
    ``(C, H, W)`` of the training images.""",
    "n_features_in_": """\
n_features_in_ : int
    Values per sample of the training ``X`` (``C * H * W`` of image files
    after decoding); flat rows have ``d``.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Defined only when X was a DataFrame with string column names.""",
    "device_": """\
device_ : str
    The device the network was trained on.""",
    "precision_": """\
precision_ : str
    The precision the network computes in: "32", "bf16-mixed" or
    "16-mixed" (``precision`` resolved, or an accelerator's).""",
}


class ImageInputMixin:
    """Reads ``X`` as the ``image_shape``, ``layout``, ``image_size`` and
    ``image_mode`` parameters say, in ``fit`` and after it."""

    def _read_images(self, X, y=None, *, reset: bool, needs_y: bool = False):
        """``(images, y, input_spec)``: ``X`` validated, ``y`` too when given.

        ``reset`` (``fit``, a first ``partial_fit``) builds the input spec from
        the parameters and records ``n_features_in_``; otherwise the fitted
        spec reads ``X``, which must convert to the fitted ``input_shape_``.
        ``needs_y``: a missing ``y`` is an error (a supervised fit).
        """
        if needs_y and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        if reset:
            spec = InputSpec.from_params(
                self.image_shape,
                self.layout,
                self.image_size,
                self.image_mode,
                type(self).__name__,
            )
            images, y = read_images(self, X, y, spec=spec, reset=True)
            return images, y, spec.fitted(images)
        spec = self._input_spec_
        images, y = read_images(
            self, X, y, spec=spec, reset=False, expected_shape=self.input_shape_
        )
        return images, y, spec


class ProcessStateMixin:
    """Parameters that are process state, named in ``_process_state``.

    Such a parameter (an ``accelerate.Accelerator``: the process's device and
    process group) is not a setting: ``clone``'s deep copy would give every
    clone a detached duplicate, and a pickle could not carry it to another
    process. ``clone`` shares it; a pickle leaves it out (None when loaded).
    """

    _process_state: tuple = ()

    def __sklearn_clone__(self):
        held = {name: getattr(self, name) for name in self._process_state}
        if all(value is None for value in held.values()):
            return super().__sklearn_clone__()
        shallow = copy.copy(self)  # never modify self: clones may run in threads
        for name in held:
            setattr(shallow, name, None)
        new = super(ProcessStateMixin, shallow).__sklearn_clone__()
        for name, value in held.items():
            setattr(new, name, value)
        return new

    def __getstate__(self):
        state = super().__getstate__()
        held = [name for name in self._process_state if state.get(name) is not None]
        return {**state, **dict.fromkeys(held)} if held else state


def shared_docs(cls):
    """Fill ``cls``'s ``%(name)s`` lines: :data:`SHARED_DOCS` and the docs of
    the parameters that ``targets/``, ``data/`` and ``training/`` resolve."""
    return fill_docs(SHARED_DOCS, DECISION_DOCS, AUGMENT_DOCS, TRAINING_DOCS)(cls)
