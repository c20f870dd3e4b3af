"""``memory``: a visible wrapper that reuses a trained network when nothing changed.

:class:`TrainingCache` puts :func:`~sk_mlc.training.train_network`, the one
function that trains, behind a cache folder (``memory``: a path, or a
:class:`joblib.Memory` whose ``location`` is used). The key is a hash of

* every field of the :class:`~sk_mlc.training.TrainingSpec` that shapes training
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

Entries are sealed safetensors files (``sk_mlc/_sealed.py``, the format of
``sk_mlc.save``): weights as tensors, the history as JSON, a checksum. They
are never pickles, so a crafted file in a shared folder cannot run code; an
entry that is corrupt, foreign or crafted is ignored with a warning and the
network trained again. Each entry is written to a temporary file and renamed
into place, so no process reads half of one, and fits that need the same
network queue on a lock file next to it (``filelock``): however many
processes share the folder, each network is trained once.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import warnings
from dataclasses import replace
from pathlib import Path

import joblib
import numpy as np
import sklearn
import skorch
import torch
from filelock import FileLock
from sklearn.utils.validation import check_memory
from skorch import NeuralNet

from .._sealed import read_sealed, write_sealed
from .._version import __version__
from ..data import ImageBatches
from ._fit import train_network
from ._snapshot import restore, snapshot
from ._spec import TrainingSpec
from ._weights import Weights

NETWORK = "sk_mlc.network"
_SUFFIX = ".safetensors"


class TrainingCache:
    """:func:`train_network` behind ``memory`` (a folder, or a :class:`joblib.Memory`).

    Networks are stored under ``<folder>/sk_mlc/<key>.safetensors``, in the
    format of ``sk_mlc.save`` (weights as tensors, facts as JSON), never as
    pickles: nothing in a cache folder can run code in the fit that reads it.
    """

    def __init__(self, memory):
        memory = check_memory(memory)
        # joblib.Memory(None) caches nothing; a Memory-like object without a
        # folder has nowhere to put networks.
        if not hasattr(memory, "location"):
            warnings.warn(
                f"memory is ignored: a {type(memory).__name__} has no location, and "
                "sk_mlc stores networks in a folder. Pass a path or a joblib.Memory.",
                UserWarning,
                stacklevel=4,
            )
        self.location = getattr(memory, "location", None)
        self.folder = None if self.location is None else Path(self.location) / "sk_mlc"

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
        if self.folder is None:
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
        entry = self.folder / f"{key}{_SUFFIX}"
        # A quiet first look, without the lock: a hit needs no waiting, and a
        # bad entry is reported once, under the lock, where it is replaced.
        net = _read_entry(entry, key, spec, images, warn=False)
        if net is None:
            net = self._train_once(entry, key, spec, images, y_encoded, sample_weight)
        # verbose is not in the key, so a loaded network carries the value of
        # the fit that trained it; show this fit's instead.
        net.verbose = spec.verbose
        return net, f"{self.location}:{key}"

    def _train_once(
        self, entry: Path, key: str, spec, images, y_encoded, sample_weight
    ) -> NeuralNet:
        """Train and store the network, once across every process sharing the folder.

        Fits that need the same network at the same time (workers of a Dask
        or joblib search) queue on a lock file next to the entry; the first
        trains and stores it, the others find it when they get the lock.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only or vanished location
            warnings.warn(
                f"memory: cannot create {str(self.folder)!r} ({exc}); this fit "
                "trains its network without storing it.",
                UserWarning,
                stacklevel=4,
            )
            return train_network(spec, images, y_encoded, sample_weight)
        lock = FileLock(entry.with_suffix(".lock"))
        try:
            lock.acquire()
        except OSError as exc:  # a file system without locks (old NFS)
            warnings.warn(
                f"memory: cannot lock {str(entry)!r} ({exc}); other processes may "
                "train this network at the same time (each stores the same one).",
                UserWarning,
                stacklevel=4,
            )
            return _train_and_store(entry, key, spec, images, y_encoded, sample_weight)
        try:
            # Checked again: another process may have stored it while we waited.
            net = _read_entry(entry, key, spec, images)
            if net is None:
                net = _train_and_store(
                    entry, key, spec, images, y_encoded, sample_weight
                )
            return net
        finally:
            lock.release()


def train_or_load(
    spec: TrainingSpec,
    images: ImageBatches,
    y_encoded: np.ndarray,
    sample_weight: np.ndarray | None,
    memory,
    random_state,
) -> tuple[NeuralNet, str | None]:
    """``fit``'s network: trained, or loaded from ``memory``; and its identity.

    ``memory`` (a folder, a ``joblib.Memory`` or None) serves the fit unless
    :func:`memory_skipped` says why it cannot, with a warning.
    """
    skipped = None if memory is None else memory_skipped(spec, random_state)
    if skipped:
        warnings.warn(f"{spec.name}: memory is ignored {skipped}", UserWarning, 3)
    if memory is None or skipped:
        return train_network(spec, images, y_encoded, sample_weight), None
    return TrainingCache(memory).train(spec, images, y_encoded, sample_weight)


def memory_skipped(spec: TrainingSpec, random_state) -> str | None:
    """Why ``memory`` cannot serve this fit (a warning's reason), or None."""
    if spec.data_parallel is not None and spec.data_parallel[0] > 1:
        return (
            f"when an accelerator trains in {spec.data_parallel[0]} processes: "
            "they train one network together, and a process that waited for "
            "another's cache entry would leave the others waiting for it."
        )
    if random_state is None:
        return (
            "because random_state=None draws a new seed for every fit, so no "
            "cached network could ever be reused. Pass an int random_state to "
            "use the cache."
        )
    return None


def _train_and_store(
    entry: Path, key: str, spec, images, y_encoded, sample_weight
) -> NeuralNet:
    net = train_network(spec, images, y_encoded, sample_weight)
    tensors, facts = snapshot(net)
    document = {"key": key, "code": list(code_version()), "network": facts}
    try:
        write_sealed(entry, NETWORK, document, tensors)
    except OSError as exc:
        warnings.warn(
            f"memory: could not store the network in {str(entry)!r} ({exc}).",
            UserWarning,
            stacklevel=5,
        )
    return net


def _read_entry(
    entry: Path, key: str, spec: TrainingSpec, images, *, warn: bool = True
) -> NeuralNet | None:
    """The network stored for ``key``, or None (absent, or unusable: warned)."""
    if not entry.is_file():
        return None
    try:
        document, tensors, _ = read_sealed(entry, NETWORK, "memory")
        if document.get("key") != key:
            raise ValueError(
                f"memory: {str(entry)!r} was stored for another key; it was renamed "
                "or copied into place"
            )
        facts = document.get("network")
        if not isinstance(facts, dict):
            raise ValueError(f"memory: {str(entry)!r} describes no network")
        # The stored weights replace the starting ones: don't read weights= again.
        spec = replace(spec, weights=None, init=None, tasks=None)
        return restore(spec, images.image_shape, tensors, facts, who="memory")
    except Exception as exc:  # whatever is wrong with it, training is the fix
        if not warn:
            return None
        warnings.warn(
            f"memory: ignored the cache entry {str(entry)!r} and trained the network "
            f"again: {exc}",
            UserWarning,
            stacklevel=5,
        )
        return None


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
    digest = hashlib.sha256()
    package = Path(__file__).parent.parent  # all of sk_mlc, not only training/
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
