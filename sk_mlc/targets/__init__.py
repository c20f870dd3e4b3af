"""What the shape of ``y`` decides: the target table and what hangs off it.

* ``_table``: one :class:`Target` kind per ``type_of_target`` (outputs, loss,
  activation, encoding, decisions), chosen by :func:`resolve_target`;
* ``_losses``: the losses the table chooses from;
* ``_class_weights``: ``class_weight`` checked and turned into loss weights;
* ``_decisions``: the prediction-time settings of sigmoid targets, checked.
"""

from ._decisions import check_threshold
from ._losses import SmoothedBCEWithLogitsLoss
from ._table import TARGETS, Target, partial_fit_target, resolve_target

__all__ = [
    "TARGETS",
    "SmoothedBCEWithLogitsLoss",
    "Target",
    "check_threshold",
    "partial_fit_target",
    "resolve_target",
]
