"""The losses of sigmoid targets, for ``CNNClassifier(loss=...)``.

``loss="auto"`` (the default) trains multi-label targets with
:class:`Asymmetric` and binary targets with binary cross-entropy
(:class:`BCE`); for rare positives, :class:`Focal` (Lin et al., 2017)
and :class:`Asymmetric` (ASL, Ridnik et al., 2021) down-weight the easy
negatives that dominate such data. The strings ``"bce"``, ``"focal"`` and
``"asl"`` name them with their default parameters; an instance sets them,
and ``GridSearchCV`` tunes them as nested parameters (``loss__gamma``).
Each composes with ``class_weight`` (the positives' weight), ``label_smoothing``
and unknown entries of ``y``; the torch module a fit trained with is
``criterion_`` (:class:`FocalLoss`, :class:`AsymmetricLoss`, ...).

Examples
--------
>>> from sklearn.model_selection import GridSearchCV
>>> from sk_mlc import CNNClassifier
>>> from sk_mlc.losses import Focal
>>> search = GridSearchCV(CNNClassifier(loss=Focal()), {"loss__gamma": [1.0, 2.0]})
>>> search.estimator.get_params()["loss__gamma"]
2.0
"""

from .targets import (
    BCE,
    Asymmetric,
    AsymmetricLoss,
    Focal,
    FocalLoss,
    MaskedBCEWithLogitsLoss,
    SigmoidLoss,
    SmoothedBCEWithLogitsLoss,
)

__all__ = [
    "BCE",
    "Asymmetric",
    "AsymmetricLoss",
    "Focal",
    "FocalLoss",
    "MaskedBCEWithLogitsLoss",
    "SigmoidLoss",
    "SmoothedBCEWithLogitsLoss",
]
