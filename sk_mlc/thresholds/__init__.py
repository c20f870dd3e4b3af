"""Threshold tuning: any classifier's probabilities, decided by tuned thresholds.

Nothing here depends on sk_mlc's training: the tuner works with any
scikit-learn classifier that has ``predict_proba``.

* ``_tuner``: :class:`ThresholdTunerCV`, the estimator;
* ``_out_of_fold``: one fit per CV split, out-of-fold positive probabilities;
* ``_scores``: scoring candidate thresholds from confusion counts;
* ``_choice``: choosing them (global, per label, the ``"auto"`` rule);
* ``_tuning``: the choice as the tuner's fitted tables;
* ``_checks``: the parameters' checks and metadata routing;
* ``_display``: :class:`ThresholdDisplay`, the plot of that choice.
"""

from ._display import ThresholdDisplay
from ._out_of_fold import positive_proba
from ._tuner import ThresholdTunerCV

__all__ = ["ThresholdDisplay", "ThresholdTunerCV", "positive_proba"]
