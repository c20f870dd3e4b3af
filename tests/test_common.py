"""scikit-learn's estimator checks on every public estimator, no expected failures."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_mlc import CNNClassifier, ImageLoader, ThresholdTunerCV

# Small enough that the ~60 checks of each estimator run in seconds.
FAST = {"width": 8, "depth": 2, "max_epochs": 4, "random_state": 0}


@parametrize_with_checks(
    [
        CNNClassifier(random_state=0),
        ThresholdTunerCV(CNNClassifier(**FAST), cv=2),
        ImageLoader(),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([ThresholdTunerCV(CNNClassifier(random_state=0))])
def test_sklearn_compatible_with_default_settings(estimator, check):
    check(estimator)
