"""sk_mlc: a scikit-learn CNN image classifier that reads the shape of ``y``.

Softmax or sigmoid? :class:`CNNClassifier` decides from ``y``: 1-D labels with
three or more classes train a softmax network with cross-entropy; two classes
and multi-hot indicator matrices train sigmoid outputs (binary cross-entropy,
or the asymmetric loss for multi-label targets), decided by a ``threshold``
that is an ordinary, tunable hyperparameter. :class:`ThresholdTunerCV` tunes
thresholds, each label's own or one shared, at the cost of one fit per CV
split, and :class:`ThresholdDisplay`
plots why it chose them. :class:`ImageLoader` and :class:`LazyImages`
bring image files in through Pillow; :mod:`sk_mlc.datasets` reads the common
folder and CSV layouts and :mod:`sk_mlc.model_selection` splits multi-label
targets. :func:`save` and :func:`load` keep a fitted model in one file
(safetensors and JSON) that loads without running any code from it, and
:func:`to_onnx` exports one graph from pixels to probabilities and labels.
``CNNClassifier(weights=...)`` starts from a pretrained or fitted backbone,
and :class:`ImageFeatures` hands a backbone's features to any scikit-learn
model.

The package is laid out by concern (``data/``, ``training/``, ``targets/``,
``thresholds/``, ``model_selection/``, ``io/``); imports run one way, checked
by import-linter (``pyproject.toml``).
"""

from . import exceptions as exceptions
from . import losses as losses
from . import model_selection as model_selection
from ._classifier import CNNClassifier
from ._features import ImageFeatures
from ._version import __version__ as __version__
from .data import ImageLoader, LazyImages, read_image
from .io import load, save, to_onnx
from .thresholds import ThresholdDisplay, ThresholdTunerCV

__all__ = [
    "CNNClassifier",
    "ImageFeatures",
    "ImageLoader",
    "LazyImages",
    "ThresholdDisplay",
    "ThresholdTunerCV",
    "load",
    "read_image",
    "save",
    "to_onnx",
]
