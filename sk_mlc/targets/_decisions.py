"""Decision thresholds: the prediction-time settings of sigmoid targets."""

from __future__ import annotations

from numbers import Real

import numpy as np


def check_threshold(threshold, n_labels: int, estimator_name: str) -> np.ndarray:
    """Return ``threshold`` as a float array of shape ``(n_labels,)``, or raise."""
    if isinstance(threshold, Real) and not isinstance(threshold, bool):
        values = np.full(n_labels, float(threshold))
    else:
        try:
            values = np.asarray(threshold, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{estimator_name}: threshold must be a float in [0, 1] or an array "
                f"of one float per label; got {threshold!r}."
            ) from exc
        if values.ndim != 1 or len(values) != n_labels:
            raise ValueError(
                f"{estimator_name}: a per-label threshold must have shape "
                f"({n_labels},), one value per label; got shape {values.shape}."
            )
    if not np.all((values >= 0) & (values <= 1)):  # also rejects NaN
        raise ValueError(
            f"{estimator_name}: threshold must lie in [0, 1]; got {threshold!r}."
        )
    return values
