"""MLflow without pickle: a custom flavor that stores models with ``sk_mlc.save``.

MLflow's scikit-learn flavor pickles (or, with ``serialization_format="skops"``,
writes skops, which cannot hold torch tensors). This flavor, ``sk_mlc``, keeps
the model as the one safetensors-and-JSON file of :func:`sk_mlc.save`, read
back by :func:`sk_mlc.load`, which never unpickles anything; MLflow's generic
``python_function`` flavor loads it through :func:`_load_pyfunc` (its
``loader_module`` mechanism for custom flavors), so ``mlflow.pyfunc`` and MLflow
model serving run ``predict`` or ``predict_proba`` without unpickling either.

Needs the optional extra ``mlflow`` (``pip install "sk_mlc[mlflow]"``; the
slim ``mlflow-skinny`` package is enough). Tried with MLflow 3.18
(mlflow-skinny): local paths, and ``runs:/`` URIs of a ``file:`` tracking store
(which MLflow 3 allows with ``MLFLOW_ALLOW_FILE_STORE=true``).

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import mlflow.pyfunc  # doctest: +SKIP
>>> import sk_mlc.mlflow
>>> from sk_mlc import CNNClassifier
>>> X = np.random.RandomState(0).rand(20, 6, 6).astype(np.float32)
>>> clf = CNNClassifier(max_epochs=1, random_state=0).fit(X, np.arange(20) % 2)
>>> path = os.path.join(tempfile.mkdtemp(), "model")
>>> sk_mlc.mlflow.save_model(clf, path)  # doctest: +SKIP
>>> served = mlflow.pyfunc.load_model(path)  # doctest: +SKIP
>>> bool((served.predict(X) == clf.predict(X)).all())  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import metadata as package_metadata

import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .io import load, save

__all__ = [
    "FLAVOR_NAME",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sk_mlc"
_DATA = "model.safetensors"
_PREDICT_FNS = ("predict", "predict_proba", "transform")
# The packages a saved model needs to be loaded and run, pinned to the versions
# it was saved with (what MLflow's own flavors record).
_REQUIREMENTS = (
    "torch",
    "skorch",
    "scikit-learn",
    "numpy",
    "scipy",
    "pillow",
    "safetensors",
)


def _mlflow():
    try:
        import mlflow
        import mlflow.pyfunc
    except ImportError as exc:
        raise ImportError(
            "sk_mlc.mlflow needs MLflow, which is not installed. Install it with "
            '`pip install "sk_mlc[mlflow]"` (or `pip install mlflow-skinny`).'
        ) from exc
    return mlflow


def get_default_pip_requirements() -> list[str]:
    """The pip requirements recorded with a model: sk_mlc and what it runs on.

    Returns
    -------
    requirements : list of str
        ``"sk_mlc==<version>"`` and the installed versions of torch, skorch,
        scikit-learn, NumPy, SciPy, Pillow and safetensors.
    """
    pinned = [f"sk_mlc=={__version__}"]
    for name in _REQUIREMENTS:
        try:
            pinned.append(f"{name}=={package_metadata.version(name)}")
        except package_metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def save_model(
    model,
    path,
    *,
    pyfunc_predict_fn="predict",
    signature=None,
    input_example=None,
    pip_requirements=None,
    extra_pip_requirements=None,
    metadata=None,
    mlflow_model=None,
):
    """Save a fitted model as an MLflow model in the folder ``path``.

    The folder holds the ``MLmodel`` file (flavors ``sk_mlc`` and
    ``python_function``), the environment files, and ``data/model.safetensors``,
    written by :func:`sk_mlc.save`: nothing in it is a pickle.

    Parameters
    ----------
    model : CNNClassifier, ThresholdTunerCV or ImageFeatures
        A fitted model that :func:`sk_mlc.save` can store.
    path : str or os.PathLike
        The folder to create; it must not exist.
    pyfunc_predict_fn : {"predict", "predict_proba", "transform"}, \
default="predict"
        What ``mlflow.pyfunc``'s ``predict`` returns, as for MLflow's
        scikit-learn flavor (log the model twice to serve both);
        "transform" for an ``ImageFeatures``.
    signature, input_example, pip_requirements, extra_pip_requirements, \
metadata, mlflow_model
        As in :func:`mlflow.pyfunc.save_model`. Without ``pip_requirements``
        the model records :func:`get_default_pip_requirements`.
    """
    mlflow = _mlflow()
    from mlflow.models import Model

    if pyfunc_predict_fn not in _PREDICT_FNS or not hasattr(model, pyfunc_predict_fn):
        offered = [fn for fn in _PREDICT_FNS if hasattr(model, fn)]
        raise ValueError(
            f"sk_mlc.mlflow.save_model: pyfunc_predict_fn must be one of "
            f"{offered}, the methods a {type(model).__name__} has; got "
            f"{pyfunc_predict_fn!r}."
        )
    if pip_requirements is None and extra_pip_requirements is None:
        pip_requirements = get_default_pip_requirements()
    mlflow_model = Model() if mlflow_model is None else mlflow_model
    if metadata is not None:
        mlflow_model.metadata = metadata
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, _DATA)
        save(model, file)
        mlflow_model.add_flavor(
            FLAVOR_NAME,
            data=f"data/{_DATA}",
            sk_mlc_version=__version__,
            estimator_class=type(model).__name__,
            serialization_format="sk_mlc.save (safetensors and JSON, no pickle)",
            pyfunc_predict_fn=pyfunc_predict_fn,
        )
        mlflow.pyfunc.save_model(
            os.fspath(path),
            loader_module=__name__,
            data_path=file,
            mlflow_model=mlflow_model,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )


def log_model(
    model,
    name=None,
    *,
    pyfunc_predict_fn="predict",
    registered_model_name=None,
    signature=None,
    input_example=None,
    pip_requirements=None,
    extra_pip_requirements=None,
    metadata=None,
    **kwargs,
):
    """Log a fitted model to the active MLflow run (or a new one), without pickle.

    MLflow's documented route for a custom flavor: ``mlflow.models.Model.log``
    with this module as the flavor, which calls :func:`save_model`.

    Parameters
    ----------
    model : CNNClassifier, ThresholdTunerCV or ImageFeatures
        A fitted model that :func:`sk_mlc.save` can store.
    name : str, default=None
        The model's name in the run (MLflow 3's ``name``).
    pyfunc_predict_fn : {"predict", "predict_proba", "transform"}, \
default="predict"
        As in :func:`save_model`.
    registered_model_name, signature, input_example, pip_requirements, \
extra_pip_requirements, metadata, **kwargs
        As in :func:`mlflow.pyfunc.log_model`.

    Returns
    -------
    model_info : mlflow.models.model.ModelInfo
        Where the model was logged (``model_info.model_uri``).
    """
    mlflow = _mlflow()
    return mlflow.models.Model.log(
        artifact_path=None,
        name=name,
        flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        model=model,
        pyfunc_predict_fn=pyfunc_predict_fn,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        **kwargs,
    )


def load_model(model_uri, dst_path=None, **overrides):
    """Load a model logged or saved with this flavor, as the sk_mlc estimator.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI (a local path, ``runs:/<run_id>/<name>``,
        ``models:/<name>/<version>``).
    dst_path : str, default=None
        Where to download the model's artifacts; None takes a temporary folder.
    **overrides : dict
        Passed to :func:`sk_mlc.load` (``module=...`` for a model trained with
        a module a file cannot hold, ``device="cpu"``).

    Returns
    -------
    estimator : CNNClassifier or ThresholdTunerCV
        The fitted model, read by :func:`sk_mlc.load`: no unpickling.
    """
    mlflow = _mlflow()
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=str(model_uri), dst_path=dst_path
    )
    flavors = Model.load(os.path.join(local, "MLmodel")).flavors
    if FLAVOR_NAME not in flavors:
        raise ValueError(
            f"sk_mlc.mlflow.load_model: {model_uri!r} was not saved with the "
            f"sk_mlc flavor (it has {sorted(flavors)}); use the loader of its own "
            "flavor."
        )
    return load(os.path.join(local, flavors[FLAVOR_NAME]["data"]), **overrides)


class _PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` serves: the estimator's predictions."""

    def __init__(self, estimator, predict_fn: str):
        self.estimator = estimator
        self.predict_fn = predict_fn

    def predict(self, model_input, params=None):
        output = getattr(self.estimator, self.predict_fn)(_images(model_input))
        return output.toarray() if sp.issparse(output) else np.asarray(output)

    def get_raw_model(self):
        """The sk_mlc estimator itself."""
        return self.estimator


def _images(model_input):
    """``model_input`` as the images an sk_mlc estimator reads.

    MLflow hands over what the caller or a serving request gave: an array, a
    dict of one named array (a tensor signature), or a DataFrame, of which a
    single column is a sequence of image paths and more columns are pixels.
    """
    if isinstance(model_input, dict) and len(model_input) == 1:
        (model_input,) = model_input.values()
    if hasattr(model_input, "columns") and hasattr(model_input, "to_numpy"):
        if len(model_input.columns) == 1:
            return model_input.iloc[:, 0]
        return model_input.to_numpy()
    return model_input


def _load_pyfunc(path):
    """MLflow's loader hook (``loader_module``): the pyfunc model in ``path``."""
    _mlflow()
    from mlflow.models import Model

    # path is the flavor's data file; its MLmodel is two folders up.
    folder = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    predict_fn = "predict"
    mlmodel = os.path.join(folder, "MLmodel")
    if os.path.exists(mlmodel):
        flavor = Model.load(mlmodel).flavors.get(FLAVOR_NAME, {})
        predict_fn = flavor.get("pyfunc_predict_fn", predict_fn)
    return _PyfuncModel(load(path), predict_fn)
