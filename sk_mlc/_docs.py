"""Parameter docs written once and filled into the docstrings that share them.

A docstring names a shared entry by a line ``%(name)s``; :func:`fill_docs`
replaces the line with the entry, at its indentation, in a class's docstring
and its methods'. The entries live with what they document (``_base.py``:
the image parameters; ``targets/_decisions.py``: the decision settings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", re.M)


def fill_docs(*docs: Mapping):
    """A class decorator: fill the ``%(name)s`` lines from the ``docs`` mappings."""
    entries: dict = {}
    for mapping in docs:
        entries.update(mapping)

    def entry(match: re.Match) -> str:
        indent, name = match.groups()
        lines = entries[name].split("\n")
        return "\n".join(indent + line if line else line for line in lines)

    def decorate(cls):
        cls.__doc__ = _PLACEHOLDER.sub(entry, cls.__doc__)
        for member in vars(cls).values():
            if callable(member) and getattr(member, "__doc__", None):
                member.__doc__ = _PLACEHOLDER.sub(entry, member.__doc__)
        return cls

    return decorate
