"""Splitters for multi-label targets: iterative stratification.

scikit-learn's ``StratifiedKFold`` cannot split a multi-label indicator
matrix (scikit-learn#11795); these keep every label's rate in every part.
``ThresholdTunerCV`` and ``CNNClassifier``'s validation split use them, and
they work in any scikit-learn search as ``cv=``.
"""

from ._split import IterativeStratifiedKFold, multilabel_train_test_split

__all__ = ["IterativeStratifiedKFold", "multilabel_train_test_split"]
