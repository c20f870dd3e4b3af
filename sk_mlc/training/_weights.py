"""``weights``: a backbone's starting weights, read without running any code.

:func:`read_weights` turns what a user passes as ``CNNClassifier(weights=...)``
into :class:`Weights`: a plain ``{name: tensor}`` state dict (plus the input
statistics, when it comes from a fitted ``CNNClassifier``) and a digest of its
content for the ``memory`` key. Files are read as data only: safetensors, or
``torch.load(weights_only=True)``, whose unpickler refuses anything but
tensors and plain containers, so a crafted file is refused, never executed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .._messages import preview
from ..exceptions import DisallowedContentError, WeightsMismatchError
from ._network import input_statistics


@dataclass(frozen=True, eq=False)
class Weights:
    """A state dict to start from, with what identifies it.

    ``statistics`` is the ``(mean, std)`` input standardisation of the fitted
    ``CNNClassifier`` the weights came from (None for files and mappings).
    """

    state: dict
    statistics: tuple | None
    source: str
    digest: str

    @classmethod
    def from_state(cls, state: Mapping, source: str, statistics=None) -> Weights:
        state = {name: tensor.detach().cpu() for name, tensor in state.items()}
        digest = hashlib.sha256()
        for name in sorted(state):
            tensor = state[name].contiguous()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
        return cls(state, statistics, source, digest.hexdigest())

    @classmethod
    def from_module(cls, module: torch.nn.Module, source: str) -> Weights:
        """Every parameter and buffer of ``module`` (a copy)."""
        state = {name: t.detach().clone() for name, t in module.state_dict().items()}
        return cls.from_state(state, source)


def read_weights(weights, name: str) -> Weights | None:
    """Check and read ``weights`` (None, a path, a mapping or a fitted model)."""
    if weights is None:
        return None
    if isinstance(weights, BaseEstimator):
        return _from_estimator(weights, name)
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        return Weights.from_state(_check_state(_read_file(path, name), name), str(path))
    if isinstance(weights, Mapping):
        return Weights.from_state(_check_state(weights, name), "a state dict")
    raise TypeError(
        f"{name}: weights must be None, a path to a .pt/.pth or .safetensors file, "
        "a state dict (a mapping of parameter names to tensors) or a fitted "
        f"CNNClassifier; got {type(weights).__name__}."
    )


def load_into(weights: Weights, backbone: torch.nn.Module, name: str) -> None:
    """Copy ``weights`` into ``backbone``; every one of its entries must be there.

    Entries the backbone lacks (typically the old classifier head, ``fc.*`` or
    ``_fc.*``) are ignored with a warning that names them.
    """
    own = backbone.state_dict()
    state = weights.state
    # BatchNorm's step counter only matters with momentum=None; a state dict
    # saved without it still carries everything the layer computes with.
    missing = [
        key
        for key in own
        if key not in state and not key.endswith("num_batches_tracked")
    ]
    mismatched = [
        f"{key} {tuple(state[key].shape)} in the weights, "
        f"{tuple(own[key].shape)} in the module"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({preview(missing)})")
        if mismatched:
            problems.append(
                f"{len(mismatched)} of another shape ({preview(mismatched)})"
            )
        raise WeightsMismatchError(
            f"{name}: the weights from {weights.source} do not fit the backbone: "
            f"of its {len(own)} parameters and buffers, {' and '.join(problems)}. "
            "Pass the module these weights were saved from (module=...)."
        )
    unused = [key for key in state if key not in own]
    if unused:
        warnings.warn(
            f"{name}: {len(unused)} entr{'y' if len(unused) == 1 else 'ies'} of the "
            f"weights from {weights.source} ha{'s' if len(unused) == 1 else 've'} no "
            f"place in the backbone and {'is' if len(unused) == 1 else 'are'} "
            f"ignored: {preview(unused)}. (Usually the old classifier head, which "
            "the estimator replaces with one sized for the target.)",
            UserWarning,
            stacklevel=4,
        )
    backbone.load_state_dict({key: state[key] for key in own if key in state}, False)


def _from_estimator(estimator, name: str) -> Weights:
    # sklearn.frozen.FrozenEstimator survives clone (it clones to itself), so a
    # fitted model given as weights survives GridSearchCV and cross_val_score.
    inner = getattr(estimator, "estimator", None)
    if type(estimator).__name__ == "FrozenEstimator" and inner is not None:
        estimator = inner
    module = getattr(getattr(estimator, "net_", None), "module_", None)
    if type(estimator).__name__ != "CNNClassifier" and module is None:
        raise TypeError(
            f"{name}: an estimator given as weights must be a fitted CNNClassifier; "
            f"got {type(estimator).__name__}."
        )
    if module is None:
        raise ValueError(
            f"{name}: weights is an unfitted CNNClassifier. Fit it first. Inside a "
            "search or cross-validation, clone() re-creates estimator-valued "
            "parameters unfitted: pass sklearn.frozen.FrozenEstimator(fitted_model) "
            "instead, which clone leaves as it is."
        )
    source = f"a fitted {type(estimator).__name__}"
    state = {k: t.detach().clone() for k, t in module[1].state_dict().items()}
    return Weights.from_state(state, source, statistics=input_statistics(module))


def _read_file(path: Path, name: str) -> Mapping:
    if not path.is_file():
        raise ValueError(f"{name}: the weights file {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ValueError(
                f"{name}: {str(path)!r} is not a readable safetensors file: {exc}"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DisallowedContentError(
            f"{name}: refused to load the weights file {str(path)!r}: it holds more "
            "than plain tensors, and reading it would run code from the file, which "
            f"sk_mlc never does ({reason}). Save weights as a state dict, "
            "torch.save(module.state_dict(), path), or as a .safetensors file; a "
            "whole model pickled with torch.save(model) can be loaded by you, "
            "where you trust it, and passed as model.state_dict()."
        ) from None
    except Exception as exc:  # not a torch.save file at all: zip or EOF errors
        raise ValueError(
            f"{name}: {str(path)!r} cannot be read as weights saved with torch.save "
            f"or safetensors: {type(exc).__name__}: {exc}"
        ) from None


def _check_state(state, name: str) -> dict:
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{name}: weights must hold a state dict (parameter names to tensors); "
            f"got {type(state).__name__}."
        )
    wrong = [
        str(key)
        for key, value in state.items()
        if not isinstance(key, str) or not isinstance(value, (torch.Tensor, np.ndarray))
    ]
    if wrong:
        hint = ""
        nested = [k for k in ("state_dict", "model", "model_state_dict") if k in state]
        if nested:
            hint = f" It looks like a checkpoint: pass its {nested[0]!r} entry."
        raise ValueError(
            f"{name}: weights must map parameter names to tensors; {len(wrong)} "
            f"entr{'y does' if len(wrong) == 1 else 'ies do'} not: "
            f"{preview(wrong)}.{hint}"
        )
    return {
        key: value if isinstance(value, torch.Tensor) else torch.from_numpy(value)
        for key, value in state.items()
    }
