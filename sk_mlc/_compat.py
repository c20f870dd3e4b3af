"""Every use of another library's private API, in one place.

scikit-learn, skorch and torch may rename or remove these without notice; an
upgrade that breaks one of them should touch this file only. Each entry says
why the public API does not do. The rest of sk_mlc imports the names below
(without their leading underscore) and never reaches into another library's
private names itself.

Two kinds of entries:

* functions and constants of scikit-learn and torch that sk_mlc calls;
* skorch hooks that sk_mlc overrides by subclassing (:data:`SKORCH_HOOKS`):
  a subclass must define a method of the same name, so the name cannot go
  through a function here. They are listed with the class that defines them,
  and ``tests/test_layout.py`` fails when skorch renames one.
"""

from __future__ import annotations

import contextlib

# The decorator behind scikit-learn's own ``fit`` methods: it validates
# ``_parameter_constraints`` once and skips nested validation. There is no
# public equivalent; ``BaseEstimator._validate_params`` alone misses the skip.
from sklearn.base import _fit_context as fit_context

# Row indexing that works on arrays, sparse matrices, DataFrames and lists,
# and slicing of sample-aligned fit parameters: what scikit-learn's own
# cross-validation loops use.
from sklearn.utils import _safe_indexing as safe_indexing

# The constraint vocabulary of ``_parameter_constraints`` tables. scikit-learn
# keeps it private but every estimator, ours included, is checked with it.
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
)

# Sample-aligned fit parameters sliced to a CV split's rows, and scikit-learn's
# own check of ``sample_weight`` (shape, finiteness, sign): the checks its
# estimators run, with their messages.
from sklearn.utils.validation import _check_method_params as check_method_params
from sklearn.utils.validation import _check_sample_weight as check_sample_weight

try:  # scikit-learn >= 1.9: the experimental callbacks API (sklearn.callback)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older: estimators take no callbacks; fit reports to no one

    class CallbackSupportMixin:
        """scikit-learn's mixin where it exists; here, a context reporting nothing."""

        def _init_callback_context(self, *args, **kwargs):
            return NO_CALLBACKS


class _NoCallbacks:
    """A ``sklearn.callback.CallbackContext`` that calls nothing: no callbacks."""

    def subcontext(self, *args, **kwargs):
        return self

    def call_on_fit_task_begin(self, **kwargs):
        return self

    def call_on_fit_task_end(self, **kwargs) -> bool:
        return False

    @contextlib.contextmanager
    def propagate_callback_context(self, sub_estimator):
        yield


NO_CALLBACKS = _NoCallbacks()

__all__ = [
    "METADATA_REQUEST_ATTRIBUTE",
    "NO_CALLBACKS",
    "CallbackSupportMixin",
    "SKORCH_HOOKS",
    "TORCH_ONNX_REGISTRY_LOGGER",
    "HasMethods",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "accelerator_prepared",
    "check_method_params",
    "check_sample_weight",
    "fit_context",
    "is_scorer",
    "mark_accelerator_prepared",
    "net_parts",
    "safe_indexing",
    "set_training",
    "shutdown_loader_workers",
    "validate_params",
]

# skorch's private hooks that sk_mlc's net subclasses override, by the class
# that defines them. NeuralNet._step_optimizer runs the optimizer step (a
# gradient scaler must step through it, GradScaler.step takes no closure);
# AccelerateMixin._initialize_accelerator prepares the modules (a loss
# without parameters must not go to DDP). skorch has no public hook for either.
SKORCH_HOOKS = {
    "skorch.NeuralNet": ("_step_optimizer",),
    "skorch.hf.AccelerateMixin": ("_initialize_accelerator",),
}

# The attribute scikit-learn's ``set_{method}_request`` stores its requests
# in: process state of metadata routing, not a fitted attribute to save.
METADATA_REQUEST_ATTRIBUTE = "_metadata_request"

# The logger of torch's dynamo ONNX exporter that warns about every
# torchvision operator it cannot register when torchvision is missing (a
# private module path: a torch refactor would only bring the noise back).
TORCH_ONNX_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


def validate_params(estimator) -> None:
    """Check ``estimator``'s parameters against its ``_parameter_constraints``.

    What ``fit`` does first, for code that runs without ``fit`` (a model
    rebuilt by ``sk_mlc.load``, a stateless transformer's ``transform``):
    ``BaseEstimator._validate_params`` is private.
    """
    estimator._validate_params()


def is_scorer(scoring) -> bool:
    """Whether ``scoring`` is a scikit-learn scorer (``make_scorer``, ``get_scorer``).

    Scorers are callables like metrics; what gives them away is the private
    ``_score_func`` of a single scorer or ``_scorers`` of a multimetric one.
    """
    return hasattr(scoring, "_score_func") or hasattr(scoring, "_scorers")


def set_training(net, training: bool) -> None:
    """skorch's ``NeuralNet._set_training``: train or eval mode for every module.

    What skorch's own training step calls first; a step written anew (in an
    autocast region) must too, and skorch has no public name for it.
    """
    net._set_training(training)


def net_parts(net) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The names of a skorch net's criteria, modules and optimizers.

    skorch registers them in private lists as it initialises them;
    ``AccelerateMixin`` prepares each with the accelerator.
    """
    return tuple(net._criteria), tuple(net._modules), tuple(net._optimizers)


def accelerator_prepared(net) -> bool:
    """Whether ``AccelerateMixin`` has prepared ``net``'s parts already."""
    return bool(getattr(net, "_wrapped_with_accelerator", False))


def mark_accelerator_prepared(net) -> None:
    """Record, as ``AccelerateMixin`` does, that ``net``'s parts are prepared."""
    net._wrapped_with_accelerator = True


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
