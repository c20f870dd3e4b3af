"""``memory``: a visible wrapper that reuses a trained network when nothing changed.

:class:`TrainingCache` puts :func:`~sk_mlc._training.train_network`, the one
function that trains, behind a :class:`joblib.Memory`. The key is a hash of

* every field of the :class:`~sk_mlc._spec.TrainingSpec` that shapes training
  (all but ``verbose`` and ``num_workers``), with modules reduced to their class
  code, architecture, weights and plain attributes, and functions and classes
  to their source code;
* the exact training data (pixels or file names and modification times, how
  they are laid out and converted, and the encoded target);
* the code that trains: sk_mlc's version and the source of its modules, and
  the versions of torch, skorch and scikit-learn.

``threshold`` is not in it, which is what makes a grid search over thresholds
cost one training per fold. Only ``fit`` reads or writes the cache: a fitted
model predicts without it, so a model keeps working when its cache folder is
gone, read-only or on another machine. Where a parameter cannot be reduced to
content (a lambda, a local function), the key cannot be trusted: the fit then
trains without the cache and says so with a warning.

Entries are written by :class:`joblib.Memory`, which writes each result to a
temporary file and renames it into place, so processes sharing a cache
directory never read a half-written network (at worst, two of them train the
same one).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
import skorch
import torch
from sklearn.utils.validation import check_memory
from skorch import NeuralNet

from ._inputs import ImageBatches
from ._spec import TrainingSpec
from ._training import train_network
from ._weights import Weights


class TrainingCache:
    """:func:`train_network` behind ``memory`` (a path or a :class:`joblib.Memory`)."""

    def __init__(self, memory):
        self.memory = check_memory(memory)

    def train(
        self,
        spec: TrainingSpec,
        images: ImageBatches,
        y_encoded: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[NeuralNet, str | None]:
        """The trained network and its identity (None when not cached).

        The identity names the weights: the same string always means the same
        network, in this process and in any other that shares the folder.
        """
        if self.memory.location is None:  # joblib.Memory(None) caches nothing
            return train_network(spec, images, y_encoded, sample_weight), None
        try:
            key = training_key(spec, images, y_encoded, sample_weight)
        except Exception as exc:
            warnings.warn(
                "memory is ignored for this fit: the training parameters cannot be "
                f"reduced to a trustworthy key ({type(exc).__name__}: {exc}). Use "
                "importable functions and classes (no lambdas or local functions).",
                UserWarning,
                stacklevel=3,
            )
            return train_network(spec, images, y_encoded, sample_weight), None
        net = _memorized(self.memory)(key, spec, images, y_encoded, sample_weight)
        # verbose is not in the key, so a loaded network carries the value of
        # the fit that trained it; show this fit's instead.
        net.verbose = spec.verbose
        return net, f"{self.memory.location}:{key}"


def training_key(
    spec: TrainingSpec, images: ImageBatches, y_encoded, sample_weight=None
) -> str:
    """A hash of everything that decides the trained weights."""
    settings = {name: _content(value) for name, value in spec.key_fields().items()}
    data = (images.fingerprint(), y_encoded, sample_weight)
    return joblib.hash((settings, data, code_version()))


@functools.cache
def code_version() -> tuple:
    """The versions and sk_mlc source that training runs on, computed once."""
    from . import __version__

    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return (
        __version__,
        digest.hexdigest(),
        torch.__version__,
        skorch.__version__,
        sklearn.__version__,
    )


def _content(value):
    """``value`` reduced to what decides its behaviour, for hashing."""
    if isinstance(value, Weights):
        return "weights", value.digest
    if isinstance(value, torch.nn.Module):
        state = {k: v.detach().cpu().numpy() for k, v in value.state_dict().items()}
        submodules = [
            (name, _code(type(module)), _plain_attributes(module))
            for name, module in value.named_modules()
        ]
        return "module", repr(value), state, submodules
    if isinstance(value, functools.partial):
        return "partial", _content(value.func), _content(value.args), value.keywords
    if isinstance(value, (tuple, list)):
        return type(value)(_content(item) for item in value)
    if inspect.isfunction(value) or inspect.isclass(value):
        return "code", value.__module__, value.__qualname__, _code(value)
    if hasattr(value, "__dict__") and not isinstance(value, np.ndarray):
        # An instance (a skorch callback, say): its state and its class's code.
        return "object", _code(type(value)), value
    return value


def _plain_attributes(module: torch.nn.Module) -> dict:
    """A module's own attributes that ``forward`` may read (a ``scale``, say)."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "training"
    }


@functools.lru_cache(maxsize=256)
def _code(obj) -> str:
    """The source of a function or class, so that editing it changes the key."""
    if "<lambda>" in obj.__qualname__ or "<locals>" in obj.__qualname__:
        raise TypeError(
            f"{obj.__qualname__} is a lambda or a local definition: it has no "
            "stable name to key the cache on"
        )
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # built in, or defined in an interactive session
        code = getattr(obj, "__code__", None)
        return obj.__qualname__ if code is None else code.co_code.hex()


# One MemorizedFunc per cache location: building one checks the function's
# source against the cache's copy, which costs more than loading a small
# network (and a grid search asks for it once per candidate).
_MEMORIZED: dict = {}


def _memorized(memory):
    if memory.location not in _MEMORIZED:
        _MEMORIZED[memory.location] = memory.cache(
            _train_cached, ignore=["spec", "images", "y_encoded", "sample_weight"]
        )
    return _MEMORIZED[memory.location]


def _train_cached(key, spec, images, y_encoded, sample_weight):
    # Only ``key`` is hashed by joblib; it stands for all the other arguments.
    return train_network(spec, images, y_encoded, sample_weight)
