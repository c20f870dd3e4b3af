"""A trained network as tensors plus plain JSON, and back: for ``save`` and ``memory``.

What a trained skorch net holds that its spec does not decide is its weights
(the module's state dict, input statistics included), the loss's class
weights (``pos_weight``/``weight``, computed from the training data) and
settings (``reduction``), and its history. :func:`snapshot` takes those out;
:func:`restore` builds the net from a spec with
:func:`~sk_mlc.training.initialize_network` and puts them back, checking that
every tensor fits the rebuilt module. The optimizer state is not
kept: a restored network that trains on starts its optimizer afresh.
"""

from __future__ import annotations

import numpy as np
from skorch import NeuralNet
from skorch.history import History

from .._messages import describe, preview
from ..exceptions import WeightsMismatchError
from ._fit import initialize_network
from ._network import convnet_depth
from ._spec import TrainingSpec

MODULE = "module."
CRITERION = "criterion."


def snapshot(net: NeuralNet, prefix: str = "") -> tuple[dict, dict]:
    """The tensors (named under ``prefix``) and the JSON-able facts of ``net``."""
    tensors = {
        f"{prefix}{MODULE}{name}": tensor
        for name, tensor in net.module_.state_dict().items()
    }
    tensors.update(
        (f"{prefix}{CRITERION}{name}", tensor)
        for name, tensor in net.criterion_.state_dict().items()
    )
    facts = {
        # Settings such as ``reduction`` ("none" after weighted training).
        "criterion": {
            name: value
            for name, value in vars(net.criterion_).items()
            if not name.startswith("_")
            and name != "training"  # the mode, not a setting
            and type(value) in (bool, int, float, str)
        },
        "history": [_plain(row) for row in net.history],
        "batch_size": int(net.batch_size),
        "max_epochs": int(net.max_epochs),
    }
    return tensors, facts


def restore(
    spec: TrainingSpec,
    image_shape: tuple[int, int, int],
    tensors: dict,
    facts: dict,
    *,
    prefix: str = "",
    who: str,
) -> NeuralNet:
    """The network :func:`snapshot` described, on ``spec.device``; ValueError if not.

    ``who`` names the caller in messages ("sk_mlc.load", "memory").
    """
    net = initialize_network(spec, image_shape)
    module = _part(tensors, prefix + MODULE)
    _check_fits(module, net.module_.state_dict(), spec, who)
    net.module_.load_state_dict(module)
    # The loss's class weights are buffers that are None until data sets them.
    criterion = net.criterion_
    for name, tensor in _part(tensors, prefix + CRITERION).items():
        _set_buffer(criterion, name, tensor.to(net.device), who)
    settings = facts.get("criterion", {})
    if not isinstance(settings, dict):
        raise ValueError(f"{who}: the saved loss settings are not a mapping.")
    for name, value in settings.items():
        # Only settings the rebuilt loss has, with a value of the same type.
        own = getattr(criterion, name, None) if isinstance(name, str) else None
        if name.startswith("_") or own is None or type(own) is not type(value):
            raise ValueError(
                f"{who}: the loss {type(criterion).__name__} has no setting "
                f"{name!r} of type {type(value).__name__}."
            )
        setattr(criterion, name, value)
    net.history = History(_rows(facts.get("history"), who))
    return net


def _set_buffer(module, name: str, tensor, who: str) -> None:
    """Set ``module``'s buffer ``name`` (registered, maybe still None) to ``tensor``.

    ``register_buffer`` replaces a registered buffer and refuses a name that
    is another kind of attribute; a name the module lacks altogether would
    become a new buffer, so it is refused first.
    """
    if not name.isidentifier() or not hasattr(module, name):
        raise ValueError(
            f"{who}: the loss {type(module).__name__} has no buffer {name!r}."
        )
    try:
        module.register_buffer(name, tensor)
    except KeyError:  # an attribute, but not a buffer
        raise ValueError(
            f"{who}: the loss {type(module).__name__} has no buffer {name!r}."
        ) from None


def saved_depth(tensors: dict, prefix: str = "") -> int | None:
    """The stages of a saved built-in CNN: its top-level convolutions, or None.

    ``depth="auto"`` has changed meaning between versions (28x28 images get 4
    stages now, 3 before); a network saved with it is rebuilt with the depth
    its weights have. Stage ``k``'s convolution is ``1.features.<i>.weight``
    (4-D); residual blocks nest deeper and are not counted.
    """
    return convnet_depth(_part(tensors, prefix + MODULE + "1."))


def _part(tensors: dict, prefix: str) -> dict:
    return {
        name[len(prefix) :]: tensor
        for name, tensor in tensors.items()
        if name.startswith(prefix)
    }


def _check_fits(saved: dict, own: dict, spec: TrainingSpec, who: str) -> None:
    """Every tensor of the module is saved, with its shape and dtype, and no other."""
    missing = [name for name in own if name not in saved]
    extra = [name for name in saved if name not in own]
    other = [
        f"{name} {tuple(saved[name].shape)} {saved[name].dtype} saved, "
        f"{tuple(own[name].shape)} {own[name].dtype} in the module"
        for name in own
        if name in saved
        and (
            saved[name].shape != own[name].shape or saved[name].dtype != own[name].dtype
        )
    ]
    if not (missing or extra or other):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} not saved ({preview(missing)})")
    if extra:
        problems.append(f"{len(extra)} saved but not in the module ({preview(extra)})")
    if other:
        problems.append(f"{len(other)} of another shape or dtype ({preview(other)})")
    backbone = "the built-in CNN"
    if spec.module is not None:
        backbone = f"module={describe(spec.module)}"
    raise WeightsMismatchError(
        f"{who}: the saved weights do not fit the network rebuilt with {backbone}: "
        f"of its {len(own)} parameters and buffers, {'; '.join(problems)}. Pass the "
        "module the model was trained with (module=...)."
    )


def _plain(value):
    """``value`` as plain JSON data; what has no JSON form (a tensor) is left out.

    A history row holds what callbacks recorded: floats and strings for
    skorch's own, anything for a user's.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _plain(item)
            if isinstance(key, str) and item is not _DROP:
                out[key] = item
        return out
    if isinstance(value, (list, tuple)):
        return [item for item in map(_plain, value) if item is not _DROP]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _DROP


_DROP = object()


def _rows(rows, who: str) -> list:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{who}: the saved history is not a list of epochs.")
    return rows
