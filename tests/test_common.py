"""scikit-learn's estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_mlc import CNNClassifier


@parametrize_with_checks([CNNClassifier(random_state=0)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
