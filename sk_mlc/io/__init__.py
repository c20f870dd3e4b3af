"""Saving, loading and exporting fitted models.

* ``_codec``: parameters and fitted attributes as JSON, with an allow-list;
* ``_save`` and ``_load``: :func:`save` and :func:`load`, one sealed file
  (``sk_mlc/_sealed.py``) read without pickle;
* ``_serving``: what an exported graph computes, from the estimator's parts;
* ``_onnx``: :func:`to_onnx`, checked against ``predict_proba`` by onnxruntime.

This package is the estimators' serializer: like pickle, it reads and writes
their fitted state by name (``_target_``, ``_input_spec_``, ``net_``, ...),
which no other package outside the estimators' own modules touches.
"""

from ._load import load
from ._onnx import to_onnx
from ._save import save, versions

__all__ = ["load", "save", "to_onnx", "versions"]
