"""What the shape of ``y`` decides: the target table and what hangs off it.

* ``_table``: one :class:`Target` kind per ``type_of_target`` (outputs, loss,
  activation, encoding, decisions), chosen by :func:`resolve_target`;
* ``_losses``: the losses the table chooses from;
* ``_class_weights``: ``class_weight`` checked and turned into loss weights;
* ``_decisions``: the prediction-time settings of sigmoid targets, checked.
"""

from ._decisions import (
    CARDINALITY_CONSTRAINTS,
    DECISION_DOCS,
    KnownScoreMixin,
    apply_cardinality,
    check_cardinality,
    check_threshold,
    known_accuracy,
)
from ._losses import (
    BCE,
    LOSSES,
    Asymmetric,
    AsymmetricLoss,
    Focal,
    FocalLoss,
    LossSpec,
    MaskedBCEWithLogitsLoss,
    SigmoidLoss,
    SmoothedBCEWithLogitsLoss,
    resolve_loss,
)
from ._table import TARGETS, Target, partial_fit_target, resolve_target

__all__ = [
    "BCE",
    "CARDINALITY_CONSTRAINTS",
    "DECISION_DOCS",
    "KnownScoreMixin",
    "LOSSES",
    "TARGETS",
    "Asymmetric",
    "AsymmetricLoss",
    "Focal",
    "FocalLoss",
    "LossSpec",
    "MaskedBCEWithLogitsLoss",
    "SigmoidLoss",
    "SmoothedBCEWithLogitsLoss",
    "Target",
    "apply_cardinality",
    "check_cardinality",
    "check_threshold",
    "known_accuracy",
    "partial_fit_target",
    "resolve_loss",
    "resolve_target",
]
