"""A bounded, in-process cache of network outputs, for threshold searches.

A grid search over ``threshold`` with ``memory`` loads the same network for
every candidate and scores it on the same validation fold; computing the
forward pass once per candidate would make 19 thresholds cost 19 passes.
This cache keeps the last outputs in memory, keyed by the identity and the
content of the trained weights, a fingerprint of the exact images and the
prediction settings. It never touches the disk, so serving a model has no side effects.

Bound: at most ``MAX_ENTRIES`` entries and ``MAX_BYTES`` of outputs (an entry
is one ``(n_samples, n_outputs)`` float32 array), least recently used first
out. Only weights with a stable identity are cached: those that came from, or
went into, a ``memory`` folder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import joblib
import numpy as np

MAX_ENTRIES = 64
MAX_BYTES = 256 * 2**20


class OutputsCache:
    """A thread-safe LRU of arrays, bounded in entries and bytes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A copy of the array cached for ``key``, else ``compute()``, then cached."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key].copy()
        value = compute()
        if value.nbytes > self.max_bytes:
            return value
        stored = value.copy()  # the caller may edit its array; not ours
        with self._lock:
            if key not in self._entries:
                self._entries[key] = stored
                self._bytes += stored.nbytes
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
        return value


OUTPUTS = OutputsCache()


def cached_outputs(
    weights_id: str | None, module, images, settings: tuple, compute: Callable
) -> np.ndarray:
    """``compute()``, through :data:`OUTPUTS` when the weights have an identity.

    The key holds a hash of ``module``'s current weights too: a network that
    trained on after fit (``net_.partial_fit``) must not get the outputs of
    the weights it had before. Hashing them costs far less than a forward pass.
    """
    if weights_id is None:
        return compute()
    weights = [t.detach().cpu().numpy() for t in module.state_dict().values()]
    key = (
        weights_id,
        joblib.hash(weights),
        joblib.hash(images.fingerprint()),
        settings,
    )
    return OUTPUTS.get(key, compute)
