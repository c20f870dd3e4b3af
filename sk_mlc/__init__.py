"""sk_mlc: a scikit-learn CNN image classifier that reads the shape of ``y``.

Softmax or sigmoid? :class:`CNNClassifier` decides from ``y``: 1-D labels with
three or more classes train a softmax network with cross-entropy; two classes
and multi-hot indicator matrices train sigmoid outputs with binary
cross-entropy, decided by a ``threshold`` that is an ordinary, tunable
hyperparameter. :class:`ThresholdTunerCV` tunes thresholds, each label's own or
one shared, at the cost of one fit per CV split, and :class:`ThresholdDisplay`
plots why it chose them. :class:`ImageLoader` and :class:`LazyImages`
bring image files in through Pillow; :mod:`sk_mlc.datasets` reads the common
folder and CSV layouts. :func:`save` and :func:`load` keep a fitted model in
one file (safetensors and JSON) that loads without running any code from it,
and :func:`to_onnx` exports one graph from pixels to probabilities and labels.
``CNNClassifier(weights=...)`` starts from a pretrained or fitted backbone.
"""

from ._classifier import CNNClassifier
from ._decode import read_image
from ._display import ThresholdDisplay
from ._lazy import LazyImages
from ._loader import ImageLoader
from ._onnx import to_onnx
from ._persist import load, save
from ._threshold import ThresholdTunerCV

__all__ = [
    "CNNClassifier",
    "ImageLoader",
    "LazyImages",
    "ThresholdDisplay",
    "ThresholdTunerCV",
    "load",
    "read_image",
    "save",
    "to_onnx",
]
__version__ = "0.1.0"
