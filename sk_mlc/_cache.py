"""``memory``: reuse a trained network when nothing that shapes training changed.

The cache key is a hash of every training parameter, the exact training data
(pixels, layout and encoded target) and the seed. ``threshold`` is not in it,
which is what makes a grid search over thresholds cost one training per fold.
The network's outputs are cached too, keyed by the network and the exact
images: a grid search scores every threshold on the same held-out fold, and
the forward pass over it need not run once per threshold either.
Entries are written by :class:`joblib.Memory`, which writes each result to a
temporary file and renames it into place, so processes sharing a cache
directory never read a half-written network (at worst, two of them train the
same one).
"""

from __future__ import annotations

import os
import warnings

import joblib
import numpy as np
import torch
from PIL import Image
from sklearn.utils.validation import check_memory

from ._inputs import ImageBatches
from ._lazy import LazyImages
from ._targets import _Target
from ._training import predict_outputs, train_network


def fit_network(
    memory,
    params: dict,
    images: ImageBatches,
    y_encoded: np.ndarray,
    target: _Target,
    seed: int,
    *,
    verbose: int,
    num_workers: int,
):
    """Train a network, or load it from ``memory`` when the key matches.

    Returns ``(net, key)``; ``key`` is None when nothing was cached.
    """
    kwargs = {"verbose": verbose, "num_workers": num_workers}
    if memory is None:
        return train_network(params, images, y_encoded, target, seed, **kwargs), None
    try:
        key = training_key(params, images, y_encoded, target, seed)
    except Exception as exc:  # e.g. a lambda among the parameters cannot be pickled
        warnings.warn(
            f"memory is ignored for this fit: the training parameters cannot be "
            f"hashed ({type(exc).__name__}: {exc}).",
            UserWarning,
            stacklevel=3,
        )
        net = train_network(params, images, y_encoded, target, seed, **kwargs)
        return net, None
    cached = _memorized(memory, _train_cached)
    net = cached(key, params, images, y_encoded, target, seed, **kwargs)
    # verbose is not in the key, so a loaded network carries the value of the
    # fit that trained it; show this fit's instead.
    net.verbose = verbose
    return net, key


def predict_activations(
    memory, key: str | None, net, images: ImageBatches, **options
) -> np.ndarray:
    """``net``'s activated outputs on ``images``, from ``memory`` when cached.

    ``key`` is the training key of ``net`` (None: not cached, compute);
    ``options`` (batch size, workers) change how, not what, is computed.
    """
    if memory is None or key is None:
        return predict_outputs(net, images, **options)
    cached = _memorized(memory, _predict_cached)
    return cached(key, joblib.hash(_images_fingerprint(images)), net, images, options)


# Only the keys are hashed; they stand for the other arguments.
_IGNORED = {
    "_train_cached": [
        "params",
        "images",
        "y_encoded",
        "target",
        "seed",
        "verbose",
        "num_workers",
    ],
    "_predict_cached": ["net", "images", "options"],
}
# One MemorizedFunc per cache location and function: building one checks the
# function's source against the cache's copy, which costs more than loading a
# small network (and a grid search asks for it once per candidate).
_MEMORIZED: dict = {}


def _memorized(memory, function):
    memory = check_memory(memory)
    key = (memory.location, function.__name__)
    if key not in _MEMORIZED:
        _MEMORIZED[key] = memory.cache(function, ignore=_IGNORED[function.__name__])
    return _MEMORIZED[key]


def _predict_cached(key, images_key, net, images, options):
    # Only the two keys are hashed: the trained network and the exact images.
    return predict_outputs(net, images, **options)


def _train_cached(
    key, params, images, y_encoded, target, seed, *, verbose, num_workers
):
    # Only ``key`` is hashed by joblib; it stands for all the other arguments.
    return train_network(
        params,
        images,
        y_encoded,
        target,
        seed,
        verbose=verbose,
        num_workers=num_workers,
    )


def training_key(
    params: dict,
    images: ImageBatches,
    y_encoded: np.ndarray,
    target: _Target,
    seed: int,
) -> str:
    """A hash of everything that influences the trained weights."""
    return joblib.hash(
        (
            {name: _hashable(value) for name, value in sorted(params.items())},
            _images_fingerprint(images),
            y_encoded,
            target.target_type,
            seed,
            torch.__version__,
        )
    )


def _hashable(value):
    """Parameters that pickle unstably (modules) are reduced to their content."""
    if isinstance(value, torch.nn.Module):
        state = {k: v.detach().cpu().numpy() for k, v in value.state_dict().items()}
        return (type(value).__module__, type(value).__qualname__, repr(value), state)
    return value


def _images_fingerprint(images: ImageBatches):
    layout = (images.sample_shape, images.channels_first)
    data = images.data
    if not isinstance(data, LazyImages):
        return layout, data
    sources = []
    for source in data.sources:
        if isinstance(source, Image.Image):
            sources.append((source.mode, source.size, source.tobytes()))
        else:
            # A file edited in place gets a new size or modification time.
            stat = os.stat(source)
            sources.append((os.fspath(source), stat.st_size, stat.st_mtime_ns))
    return layout, data.shape, data.mode, data.resize, sources
