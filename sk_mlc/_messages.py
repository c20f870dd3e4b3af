"""Small helpers that every error and warning message of sk_mlc is built with."""

from __future__ import annotations

import inspect
from contextlib import contextmanager

# How many names a message lists before it says "and N more".
SHOWN = 5


@contextmanager
def named_errors(name: str):
    """Errors about the input say whose input it is.

    scikit-learn's validation names the estimator in some messages ("X has 10
    features, but CNNClassifier is expecting 64") but not in others ("Input X
    contains infinity", "Expected 2D array", a sparse X, inconsistent numbers
    of samples): those get ``name`` as a prefix, in the same exception type.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        # Subclasses (UnicodeDecodeError...) have other constructors: as raised.
        if type(exc) not in (ValueError, TypeError) or name in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from None


def describe(value) -> str:
    """A few words that name ``value`` for a message: "a Backbone instance"."""
    if inspect.isclass(value) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return f"a {type(value).__name__} instance"


def preview(names: list[str]) -> str:
    """The first few of ``names``, then how many more: "a, b, ... (3 more)"."""
    shown = ", ".join(names[:SHOWN])
    return shown if len(names) <= SHOWN else f"{shown}, ... ({len(names) - SHOWN} more)"
