"""Dependencies point one way (docs/architecture.md): read every module's imports and check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import eventor

PACKAGE = Path(eventor.__file__).parent
#: Which parts of eventor each part may import (by dotted prefix, below `eventor.`).
BASE = (
    "__version__",
    "types",
    "errors",
    "names",
    "settings",
    "clock",
    "ids",
    "payloads",
    "failures",
    "durations",
)
ALLOWED: dict[str, tuple[str, ...]] = {
    "types": (),
    "errors": (),
    "client": ("types", "errors", "_client_calls"),
    "_client_calls": ("types", "errors"),
    "storage": (*BASE, "storage"),
    "appended": BASE,
    "store": (*BASE, "appended", "storage.base"),
    "delivery": (*BASE, "delivery", "store", "storage.base"),
    "subscriptions": (*BASE, "delivery", "store", "storage.base"),
    "legacy_files": (),
    "legacy_import": (*BASE, "legacy_files", "store", "subscriptions", "storage.base"),
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _imports(path: Path) -> set[str]:
    """The eventor modules `path` imports (relative imports resolved), without `eventor.`."""
    here = _module(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    type_only = {  # `if TYPE_CHECKING:` blocks: type-only references may point anywhere
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            elif (node.module or "").startswith("eventor"):
                target = (node.module or "").removeprefix("eventor").strip(".")
            else:
                continue
            if node.module is None:  # `from . import x`: the modules are the names
                found |= {f"{target}.{a.name}".strip(".") for a in node.names}
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("eventor.") for a in node.names if a.name.startswith("eventor.")
            }
    return {name for name in found if name}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "ui" not in p.relative_to(PACKAGE).parts)


@pytest.mark.parametrize("path", MODULES, ids=_module)
def test_imports_point_one_way(path: Path) -> None:
    module = _module(path)
    rule = next(
        (
            k
            for k in sorted(ALLOWED, key=len, reverse=True)
            if module == k or module.startswith(k + ".")
        ),
        None,
    )
    if rule is None:
        return  # api, cli, __main__: the top, free to import below
    allowed = ALLOWED[rule]
    wrong = {
        name
        for name in _imports(path)
        if not any(name == ok or name.startswith(ok + ".") for ok in allowed)
        and not name.startswith(module)
    }
    assert not wrong, f"{module} imports {sorted(wrong)}; it may import only {allowed}"
