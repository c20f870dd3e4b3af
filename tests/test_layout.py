"""The package's layout keeps its promises: honest boundaries, small modules.

Which way imports run is import-linter's job (``pyproject.toml``, run by
``make test``); these tests check what it does not: no module imports a
name with a leading underscore from another module, benchmarks and examples
use the public API only, skorch still has the private hooks sk_mlc
overrides, and no module has grown past the size a reader takes in.
"""

import ast
import importlib
from pathlib import Path

import pytest

from sk_mlc._compat import SKORCH_HOOKS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sk_mlc"
MAX_LINES = 600


def _imports(path: Path):
    """``(module, name)`` of every import in ``path`` (name None: ``import m``)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                yield module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def _internal(module: str) -> bool:
    return module.startswith(".") or module.split(".")[0] == "sk_mlc"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_imports_another_modules_private_names(path):
    private = [
        f"{module}.{name}"
        for module, name in _imports(path)
        if _internal(module)
        and name is not None
        and name.startswith("_")
        and not name.startswith("__")
        # ``from ._private_module import Name`` imports a module's public name;
        # ``from . import _module`` would import the private module itself.
        and not (module.strip(".") == "" and name != "_")
    ]
    assert private == [], f"{path.name} imports private names: {private}"


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "examples").glob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_benchmarks_and_examples_use_the_public_api_only(path):
    private = []
    for module, name in _imports(path):
        if module.split(".")[0] != "sk_mlc":
            continue
        parts = module.split(".") + ([] if name is None else [name])
        if any(part.startswith("_") and not part.startswith("__") for part in parts):
            private.append(".".join(parts))
    assert private == [], f"{path.name} imports private sk_mlc names: {private}"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_modules_stay_small_enough_to_read(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (> {MAX_LINES})"


@pytest.mark.parametrize(
    "owner, hook",
    [(owner, hook) for owner, hooks in SKORCH_HOOKS.items() for hook in hooks],
)
def test_the_skorch_hooks_sk_mlc_overrides_still_exist(owner, hook):
    # sk_mlc's net subclasses override these private skorch methods; a skorch
    # release that renames one would leave the override silently unused.
    module, name = owner.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, hook, None)), f"skorch's {owner} has no {hook}"
