"""sk_mlc.mlflow: MLflow logging and serving of sk_mlc models, without pickle."""

import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import FAST, quadrant_images

from sk_mlc import CNNClassifier, ThresholdTunerCV

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra")
pyfunc = pytest.importorskip("mlflow.pyfunc", reason="needs the mlflow extra")
sk_mlflow = pytest.importorskip("sk_mlc.mlflow")

SMALL = {**FAST, "max_epochs": 2, "batch_size": 16}


@pytest.fixture(scope="module")
def data():
    return quadrant_images(n_samples=48)


@pytest.fixture(scope="module")
def multilabel(data):
    X, Y = data
    return CNNClassifier(**SMALL).fit(X, sp.csr_matrix(Y))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every way to unpickle raises: what loads must load without them."""

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    cloudpickle = pytest.importorskip("cloudpickle")
    monkeypatch.setattr(cloudpickle, "load", refuse)
    monkeypatch.setattr(cloudpickle, "loads", refuse)


def test_a_saved_model_is_served_by_pyfunc_without_unpickling(
    multilabel, data, tmp_path, request
):
    X, _ = data
    path = tmp_path / "model"
    sk_mlflow.save_model(multilabel, path)
    # What MLflow stored: our flavor's safetensors file, and no pickle at all.
    files = [f for _, _, names in os.walk(path) for f in names]
    assert "model.safetensors" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
    flavor = mlflow.models.Model.load(str(path / "MLmodel")).flavors["sk_mlc"]
    assert flavor["data"] == "data/model.safetensors"
    assert flavor["estimator_class"] == "CNNClassifier"
    request.getfixturevalue("no_unpickling")
    served = pyfunc.load_model(str(path))
    # A sparse multi-hot fit predicts a dense 0/1 matrix through pyfunc.
    np.testing.assert_array_equal(served.predict(X), multilabel.predict(X).toarray())
    assert isinstance(served.get_raw_model(), CNNClassifier)


def test_pyfunc_serves_predict_proba_when_asked(data, tmp_path):
    X, Y = data
    clf = CNNClassifier(**SMALL).fit(X, np.where(Y[:, 0], "blob", "empty"))
    path = tmp_path / "proba"
    sk_mlflow.save_model(clf, path, pyfunc_predict_fn="predict_proba")
    np.testing.assert_array_equal(
        pyfunc.load_model(str(path)).predict(X), clf.predict_proba(X)
    )
    # String labels come back as they went in.
    labels = tmp_path / "labels"
    sk_mlflow.save_model(clf, labels)
    np.testing.assert_array_equal(
        pyfunc.load_model(str(labels)).predict(X), clf.predict(X)
    )
    with pytest.raises(ValueError, match="pyfunc_predict_fn must be one of"):
        sk_mlflow.save_model(clf, tmp_path / "x", pyfunc_predict_fn="transform")


def test_a_dataframe_column_of_image_paths_is_read_as_files(data, tmp_path):
    pd = pytest.importorskip("pandas")
    from PIL import Image

    X, Y = data
    paths = []
    for i, image in enumerate((X.clip(0, 1) * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    clf = CNNClassifier(**SMALL, image_mode="L").fit(paths, Y[:, 0])
    sk_mlflow.save_model(clf, tmp_path / "files")
    served = pyfunc.load_model(str(tmp_path / "files"))
    frame = pd.DataFrame({"path": paths})
    np.testing.assert_array_equal(served.predict(frame), clf.predict(paths))


def test_log_model_and_load_model_through_a_run(data, tmp_path, monkeypatch):
    X, Y = data
    tuner = ThresholdTunerCV(CNNClassifier(**SMALL), cv=2, thresholds=9).fit(X, Y)
    # MLflow 3 keeps the file store for those who ask for it (mlflow-skinny has
    # no database store).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    try:
        with mlflow.start_run():
            info = sk_mlflow.log_model(tuner, name="tuner")
    finally:
        mlflow.set_tracking_uri(None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    assert info.model_uri.startswith(("runs:/", "models:/"))
    loaded = sk_mlflow.load_model(info.model_uri, dst_path=str(tmp_path / "down"))
    assert isinstance(loaded, ThresholdTunerCV)
    np.testing.assert_array_equal(loaded.best_thresholds_, tuner.best_thresholds_)
    np.testing.assert_array_equal(loaded.predict(X), tuner.predict(X))


@pytest.mark.filterwarnings("ignore:.*type hints:UserWarning")
def test_load_model_refuses_another_flavor(tmp_path):
    class Echo(pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    pyfunc.save_model(str(tmp_path / "other"), python_model=Echo())
    with pytest.raises(ValueError, match="was not saved with the sk_mlc flavor"):
        sk_mlflow.load_model(str(tmp_path / "other"))


def test_default_requirements_pin_what_the_model_runs_on():
    requirements = sk_mlflow.get_default_pip_requirements()
    assert requirements[0].startswith("sk_mlc==")
    names = {r.split("==")[0] for r in requirements}
    assert {"torch", "skorch", "scikit-learn", "safetensors"} <= names


def test_image_features_are_served_by_transform(data, tmp_path, request):
    from sk_mlc import ImageFeatures

    X, _ = data
    features = ImageFeatures(width=4, depth=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="'transform'.*got 'predict'"):
        sk_mlflow.save_model(features, tmp_path / "wrong")
    path = tmp_path / "features"
    sk_mlflow.save_model(features, path, pyfunc_predict_fn="transform")
    request.getfixturevalue("no_unpickling")
    served = pyfunc.load_model(str(path))
    np.testing.assert_allclose(
        served.predict(X[:4]), features.transform(X[:4]), rtol=1e-6, atol=1e-6
    )
