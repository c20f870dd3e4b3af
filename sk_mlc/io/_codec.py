"""Values to JSON and back, without pickle: what ``save`` writes besides tensors.

:func:`encode` turns a parameter or a fitted attribute into JSON-able data;
:func:`decode` turns it back. Plain data (None, bools, numbers, strings,
lists) is stored as itself. Everything else is a one-key object whose key
says what it is:

====================  ==================================================
``__tuple__``         a tuple (JSON has only lists)
``__dict__``          a dict, as ``[key, value]`` pairs (keys of any type)
``__ndarray__``       a NumPy array: dtype, shape, and the values (inline,
                      or the name of a tensor when the array is large)
``__tensor__``        a torch tensor: the name of a tensor in the file
``__scalar__``        a NumPy scalar, with its dtype
``__dtype__``         a NumPy dtype
``__device__``        a ``torch.device``
``__import__``        a class or function, by import path, from the
                      allow-list below
``__partial__``       a ``functools.partial`` of an allowed callable
``__object__``        an instance of an allowed class, by its parameters
``__target__``        the fitted target (sk_mlc's ``Target``)
``__input_spec__``    the fitted input conversion (sk_mlc's ``InputSpec``)
====================  ==================================================

The trap this module avoids: "store classes by import path" becomes "import
and call whatever the file names". :func:`allowed` resolves a path only from
modules that are already imported (nothing is imported), only under
``torch`` and ``sk_mlc`` (plus scikit-learn's CV splitters), and only to
classes of the kinds a parameter can hold (modules, optimizers, splitters,
estimators) or to the functions listed in :data:`_FUNCTIONS`. A value that
fits none of these raises :class:`Unstorable` when saving; ``save`` records
its name and ``load`` asks for it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from numbers import Integral

import numpy as np
import torch
from sklearn import model_selection
from sklearn.base import BaseEstimator

from .._classifier import CNNClassifier
from .._messages import describe
from ..data import InputSpec, random_flip, random_shift
from ..exceptions import DisallowedContentError
from ..targets import LOSSES, TARGETS, Target
from ..thresholds import ThresholdTunerCV
from ..training import ConvNet, ResidualBlock

# Arrays with more values than this go to a tensor rather than into the JSON.
INLINE_VALUES = 1024
# NumPy dtype kinds an array or a scalar may have in a file: booleans, integers,
# floats, strings and objects (whose items are decoded one by one).
_KINDS = frozenset("biufUO")
# Array dtypes that travel as tensors (safetensors stores these exactly).
_TENSOR_DTYPES = frozenset(
    np.dtype(t)
    for t in ("bool", "uint8", "int8", "int16", "int32", "int64")
    + ("float16", "float32", "float64")
)

# The functions a file may name (classes are checked by kind, below).
_FUNCTIONS = frozenset({random_flip, random_shift})
# scikit-learn's CV splitters: the tuner's ``cv`` may be one.
_SPLITTERS = frozenset(
    getattr(model_selection, name)
    for name in (
        "GroupKFold",
        "KFold",
        "LeaveOneOut",
        "PredefinedSplit",
        "RepeatedKFold",
        "RepeatedStratifiedKFold",
        "ShuffleSplit",
        "StratifiedGroupKFold",
        "StratifiedKFold",
        "StratifiedShuffleSplit",
    )
)
# Instances a file may hold by their parameters (``__object__``): the CV
# splitters, and the specs of ``CNNClassifier(loss=...)``.
_OBJECTS = _SPLITTERS | frozenset(LOSSES.values())
_ROOTS = ("torch", "sk_mlc")

# What files saved by the flat layout (every module directly under sk_mlc/,
# before the subpackages) name by their import paths then, and is now here.
_FORMER_PATHS = {
    "sk_mlc._augment:random_flip": random_flip,
    "sk_mlc._augment:random_shift": random_shift,
    "sk_mlc._classifier:CNNClassifier": CNNClassifier,
    "sk_mlc._network:ConvNet": ConvNet,
    "sk_mlc._network:ResidualBlock": ResidualBlock,
    "sk_mlc._threshold:ThresholdTunerCV": ThresholdTunerCV,
}


class Unstorable(TypeError):
    """A value that has no place in a file (a user's module, a lambda, ...)."""


def import_path(obj) -> str:
    """``"module:qualname"`` of a class or function."""
    return f"{obj.__module__}:{obj.__qualname__}"


def current_path(path):
    """``path`` as this sk_mlc spells it: a file may name a former import path."""
    former = _FORMER_PATHS.get(path) if isinstance(path, str) else None
    return path if former is None else import_path(former)


def allowed(path: str):
    """The class or function ``path`` names, if the allow-list has it; else raise.

    Nothing is imported: the module must already be in ``sys.modules``. A
    former import path (:func:`current_path`) is read as the current one.
    """
    path = current_path(path)
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"{path!r} is not an import path ('module:name')")
    module_name, qualname = path.split(":")
    under_root = any(
        module_name == root or module_name.startswith(root + ".") for root in _ROOTS
    )
    module = sys.modules.get(module_name)
    obj = module
    parts = qualname.split(".")
    if module is not None and all(p.isidentifier() and p[0] != "_" for p in parts):
        for part in parts:
            obj = getattr(obj, part, None)
    if module is None or obj is None or obj is module or not _allowed_kind(obj):
        raise DisallowedContentError(f"{path!r} is not on sk_mlc's allow-list")
    if not under_root and obj not in _SPLITTERS:
        raise DisallowedContentError(f"{path!r} is not on sk_mlc's allow-list")
    if import_path(obj) != path:  # a re-export or an alias: store the original
        raise DisallowedContentError(f"{path!r} is not on sk_mlc's allow-list")
    return obj


def _allowed_kind(obj) -> bool:
    if inspect.isclass(obj):
        return obj in _SPLITTERS or issubclass(
            obj, (torch.nn.Module, torch.optim.Optimizer, BaseEstimator)
        )
    return obj in _FUNCTIONS


def encode(value, tensors: dict | None = None, name: str = "array"):
    """``value`` as JSON-able data; raises :class:`Unstorable`.

    Large arrays go into ``tensors`` (a dict filled here) under names starting
    with ``name``; None keeps every array inline.
    """
    # NumPy scalars first: np.str_ and np.float64 are also str and float.
    if isinstance(value, np.generic):
        return {"__scalar__": {"dtype": _dtype_str(value.dtype), "value": _item(value)}}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, list):
        return [encode(item, tensors, f"{name}.{i}") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        items = [encode(item, tensors, f"{name}.{i}") for i, item in enumerate(value)]
        return {"__tuple__": items}
    if isinstance(value, dict):
        pairs = [
            [encode(key), encode(item, tensors, f"{name}.{i}")]
            for i, (key, item) in enumerate(value.items())
        ]
        return {"__dict__": pairs}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _encode_array(value, tensors, name)}
    if isinstance(value, torch.Tensor) and tensors is not None:
        tensors[name] = value.detach().cpu().clone()
        return {"__tensor__": name}
    if isinstance(value, np.dtype):
        return {"__dtype__": _dtype_str(value)}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, Target):
        return {"__target__": _encode_target(value, tensors, name)}
    if isinstance(value, InputSpec):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__input_spec__": encode(fields)}
    if isinstance(value, functools.partial):
        partial = {"func": value.func, "args": value.args, "keywords": value.keywords}
        return {"__partial__": {k: encode(v) for k, v in partial.items()}}
    if inspect.isclass(value) or inspect.isfunction(value):
        try:
            allowed(import_path(value))
        except ValueError:
            raise Unstorable(describe(value)) from None
        return {"__import__": import_path(value)}
    if type(value) in _OBJECTS:
        return {"__object__": _encode_object(value, tensors, name)}
    raise Unstorable(describe(value))


def _encode_object(value, tensors, name) -> dict:
    params = {
        key: getattr(value, key)
        for key in inspect.signature(type(value)).parameters
        if hasattr(value, key)
    }
    return {"class": import_path(type(value)), "params": encode(params, tensors, name)}


def _encode_target(target: Target, tensors, name) -> dict:
    state = {key: value for key, value in vars(target).items() if key.endswith("_")}
    return {"type": target.target_type, "state": encode(state, tensors, name)}


def _encode_array(array: np.ndarray, tensors, name) -> dict:
    dtype = array.dtype
    if dtype.kind not in _KINDS:
        raise Unstorable(f"an array of dtype {dtype}")
    spec = {"dtype": _dtype_str(dtype), "shape": list(array.shape)}
    if tensors is not None and dtype in _TENSOR_DTYPES and array.size > INLINE_VALUES:
        tensors[name] = torch.from_numpy(np.ascontiguousarray(array)).clone()
        return {**spec, "tensor": name}
    flat = array.ravel()
    if dtype.kind == "O":
        return {**spec, "values": [encode(item) for item in flat]}
    return {**spec, "values": [_item(item) for item in flat]}


def _item(value):
    item = value.item()
    if isinstance(item, (bytes, complex)) or not isinstance(
        item, (bool, int, float, str)
    ):
        raise Unstorable(f"a {type(item).__name__} value")
    return item


def _dtype_str(dtype: np.dtype) -> str:
    if dtype.kind not in _KINDS:
        raise Unstorable(f"dtype {dtype}")
    return dtype.str


# -- decoding --------------------------------------------------------------------


def decode(data, tensors: dict | None = None):
    """The value :func:`encode` turned into ``data``; ValueError if malformed.

    ``tensors`` holds the file's tensors, for the arrays that went there.
    """
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(item, tensors) for item in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"unexpected JSON value {_short(data)}")
    ((tag, body),) = data.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown tag {tag!r}")
    return decoder(body, tensors)


def _decode_dict(body, tensors) -> dict:
    _expect(body, list, "__dict__")
    out = {}
    for pair in body:
        _expect(pair, list, "a __dict__ pair")
        if len(pair) != 2:
            raise ValueError("a __dict__ pair must hold a key and a value")
        key, value = decode(pair[0]), decode(pair[1], tensors)
        try:
            out[key] = value
        except TypeError:
            raise ValueError(f"unhashable dict key {_short(pair[0])}") from None
    return out


def _decode_array(body, tensors) -> np.ndarray:
    _expect(body, dict, "__ndarray__")
    dtype = _decode_dtype(body.get("dtype"), tensors)
    shape = body.get("shape")
    _expect(shape, list, "an array's shape")
    if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in shape):
        raise ValueError(f"an array's shape must be a list of ints; got {shape!r}")
    if any(s < 0 for s in shape):
        raise ValueError(f"an array's shape must not be negative; got {shape!r}")
    if "tensor" in body:
        tensor = (tensors or {}).get(body["tensor"])
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"the array tensor {body['tensor']!r} is not in the file")
        array = tensor.numpy()
        if array.dtype != dtype or list(array.shape) != shape:
            raise ValueError(
                f"the array tensor {body['tensor']!r} is {array.dtype} "
                f"{list(array.shape)}; the JSON says {dtype} {shape}"
            )
        return array.copy()
    values = body.get("values")
    _expect(values, list, "an array's values")
    if len(values) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"an array of shape {shape} holds {len(values)} values")
    if dtype.kind == "O":
        array = np.empty(len(values), dtype=object)
        for index, item in enumerate(values):  # one by one: no broadcasting
            array[index] = decode(item, tensors)
        return array.reshape(shape)
    if not all(_plain_item(item, dtype) for item in values):
        raise ValueError(f"an array of dtype {dtype} holds values of another type")
    return np.array(values, dtype=dtype).reshape(shape)


def _plain_item(item, dtype: np.dtype) -> bool:
    if dtype.kind == "U":
        return isinstance(item, str)
    return isinstance(item, (bool, int, float))


def _decode_tensor(body, tensors) -> torch.Tensor:
    tensor = (tensors or {}).get(body) if isinstance(body, str) else None
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"the tensor {_short(body)} is not in the file")
    return tensor.clone()


def _decode_scalar(body, tensors):
    _expect(body, dict, "__scalar__")
    dtype = _decode_dtype(body.get("dtype"), tensors)
    value = body.get("value")
    if dtype.kind == "O" or not _plain_item(value, dtype):
        raise ValueError(f"a {dtype} scalar cannot hold {_short(value)}")
    return np.array(value, dtype=dtype)[()]


def _decode_dtype(body, tensors) -> np.dtype:
    if not isinstance(body, str):
        raise ValueError(f"a dtype must be a string; got {_short(body)}")
    try:
        dtype = np.dtype(body)
    except TypeError:
        raise ValueError(f"{body!r} is not a NumPy dtype") from None
    if dtype.kind not in _KINDS or dtype.fields is not None:
        raise ValueError(f"dtype {body!r} is not one sk_mlc stores")
    return dtype


def _decode_device(body, tensors) -> torch.device:
    if not isinstance(body, str):
        raise ValueError(f"a device must be a string; got {_short(body)}")
    try:
        return torch.device(body)
    except RuntimeError:
        raise ValueError(f"{body!r} is not a torch device") from None


def _decode_partial(body, tensors) -> functools.partial:
    _expect(body, dict, "__partial__")
    func = decode(body.get("func"))
    args = decode(body.get("args"))
    keywords = decode(body.get("keywords"))
    if not callable(func) or not isinstance(args, tuple):
        raise ValueError("a __partial__ needs a function and a tuple of arguments")
    if not isinstance(keywords, dict) or not all(isinstance(k, str) for k in keywords):
        raise ValueError("a __partial__ needs a dict of keyword arguments")
    return functools.partial(func, *args, **keywords)


def _decode_object(body, tensors):
    _expect(body, dict, "__object__")
    cls = allowed(body.get("class"))
    if cls not in _OBJECTS:
        raise ValueError(f"{body.get('class')!r} is not a class sk_mlc rebuilds")
    params = decode(body.get("params"), tensors)
    _check_kwargs(params, cls)
    return cls(**params)


def _decode_target(body, tensors) -> Target:
    _expect(body, dict, "__target__")
    kind = TARGETS.get(body.get("type"))
    if kind is None:
        raise ValueError(f"unknown target type {_short(body.get('type'))}")
    target = kind()
    state = decode(body.get("state"), tensors)
    _expect(state, dict, "a target's state")
    for key, value in state.items():
        set_attribute(target, key, value)
    return target


def _decode_input_spec(body, tensors) -> InputSpec:
    fields = decode(body, tensors)
    _check_kwargs(fields, InputSpec)
    return InputSpec(**fields)


def _check_kwargs(kwargs, cls) -> None:
    _expect(kwargs, dict, f"{cls.__name__}'s parameters")
    known = set(inspect.signature(cls).parameters)
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter(s) {unknown!r}")


def set_attribute(obj, name, value) -> None:
    """``setattr``, for a fitted attribute's name read from a file.

    Only names a fit could have set: identifiers, not dunder, and nothing the
    class defines (a file must not replace ``predict``).
    """
    if (
        not isinstance(name, str)
        or not name.isidentifier()
        or name.startswith("__")
        or hasattr(type(obj), name)
    ):
        raise ValueError(f"{_short(name)} is not a fitted attribute's name")
    setattr(obj, name, value)


def _expect(value, kind, what: str) -> None:
    if not isinstance(value, kind):
        raise ValueError(f"{what} must be a JSON {kind.__name__}; got {_short(value)}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_DECODERS: dict[str, Callable] = {
    "__tuple__": lambda body, tensors: tuple(decode(_list(body), tensors)),
    "__dict__": _decode_dict,
    "__ndarray__": _decode_array,
    "__tensor__": _decode_tensor,
    "__scalar__": _decode_scalar,
    "__dtype__": _decode_dtype,
    "__device__": _decode_device,
    "__import__": lambda body, tensors: allowed(body),
    "__partial__": _decode_partial,
    "__object__": _decode_object,
    "__target__": _decode_target,
    "__input_spec__": _decode_input_spec,
}


def _list(body) -> list:
    _expect(body, list, "__tuple__")
    return body
