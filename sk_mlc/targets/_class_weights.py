"""Class weights of a target, checked and turned into the loss's weights."""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight


def class_weights(class_weight, classes: np.ndarray, y_encoded: np.ndarray):
    """Per-class weights for 1-D targets, in the order of ``classes``."""
    if isinstance(class_weight, str):  # "balanced"
        present = np.arange(len(classes))
        return compute_class_weight(
            "balanced", classes=present, y=y_encoded.astype(int)
        )
    return np.array([float(class_weight.get(label, 1.0)) for label in classes])


def check_class_weight_1d(class_weight, classes: np.ndarray, name: str) -> None:
    if class_weight is None or isinstance(class_weight, str):
        return
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"{name}: class_weight for a 1-D y must be None, 'balanced' or a dict "
            f"{{class label: weight}}; got {type(class_weight).__name__}. "
            "Per-label weight arrays are for multi-label (2-D) targets."
        )
    known = set(classes.tolist())
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"{name}: class_weight names labels {unknown} that are not in y's "
            f"classes {classes.tolist()}."
        )
    _check_positive(class_weight.values(), name)


def _check_positive(weights, name: str) -> None:
    values = np.asarray(list(weights), dtype=np.float64)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(
            f"{name}: class_weight values must be positive finite numbers; got "
            f"{values.tolist()}."
        )


def per_label_weights(class_weight, n_labels: int, name: str) -> np.ndarray:
    """Positive-class weights for a multi-label target (one per label)."""
    if isinstance(class_weight, dict):
        weights = np.ones(n_labels)
        for label, weight in class_weight.items():
            if not (isinstance(label, (int, np.integer)) and 0 <= label < n_labels):
                raise ValueError(
                    f"{name}: class_weight for a multi-label y maps label indices "
                    f"0..{n_labels - 1} to positive-class weights; got key "
                    f"{label!r}."
                )
            weights[label] = weight
        _check_positive(weights, name)
        return weights
    try:
        weights = np.asarray(class_weight, dtype=np.float64)
    except (TypeError, ValueError):
        weights = np.empty(0)
    if weights.shape != (n_labels,) or not np.all(np.isfinite(weights) & (weights > 0)):
        raise ValueError(
            f"{name}: class_weight for a multi-label y must be 'balanced', a dict "
            f"or an array of {n_labels} positive per-label weights; got "
            f"{class_weight!r}."
        )
    return weights
