"""Every use of another library's private API, in one place.

scikit-learn, skorch and torch may rename or remove these without notice; an
upgrade that breaks one of them should touch this file only. Each entry says
why the public API does not do.
"""

from __future__ import annotations

# The decorator behind scikit-learn's own ``fit`` methods: it validates
# ``_parameter_constraints`` once and skips nested validation. There is no
# public equivalent; ``BaseEstimator._validate_params`` alone misses the skip.
from sklearn.base import _fit_context

# Row indexing that works on arrays, sparse matrices, DataFrames and lists,
# and slicing of sample-aligned fit parameters: what scikit-learn's own
# cross-validation loops use.
from sklearn.utils import _safe_indexing

# The constraint vocabulary of ``_parameter_constraints`` tables. scikit-learn
# keeps it private but every estimator, ours included, is checked with it.
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.validation import _check_method_params, _check_sample_weight

__all__ = [
    "TORCH_ONNX_REGISTRY_LOGGER",
    "HasMethods",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "_check_method_params",
    "_check_sample_weight",
    "_fit_context",
    "_safe_indexing",
    "shutdown_loader_workers",
    "validate_params",
]


def validate_params(estimator) -> None:
    """Check ``estimator``'s parameters against its ``_parameter_constraints``.

    What ``fit`` does first, for a model rebuilt by ``sk_mlc.load`` (which
    does not fit): ``BaseEstimator._validate_params`` is private.
    """
    estimator._validate_params()


# The logger of torch's dynamo ONNX exporter that warns about every
# torchvision operator it cannot register when torchvision is missing (a
# private module path: a torch refactor would only bring the noise back).
TORCH_ONNX_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


def shutdown_loader_workers(loader, iterator) -> None:
    """Stop a ``DataLoader`` iterator's worker processes now.

    torch re-raises a worker's error from a frame that the exception's
    traceback holds, so the iterator is freed later by the cyclic garbage
    collector, after the queues its shutdown needs are closed: each worker
    then waits 5 s to time out. Calling torch's private shutdown while the
    queues still work avoids that stall. The guard keeps a torch refactor
    from breaking us: we would only fall back to torch's slow shutdown.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
        if hasattr(loader, "_iterator"):
            loader._iterator = None  # persistent workers: start afresh next time
