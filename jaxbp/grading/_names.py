"""The exercises' names in order, read from the spec modules' source without importing
them (they import JAX, which takes a second), so that ``jaxbp grade`` answers a
mistyped exercise at once.

Each spec module says ``MODULE = "NN_<topic>.py"`` and lists ``EXERCISES = (exercise(
"<name>", ...), ...)``; this reads those literals and orders the modules as the registry
does. A spec module written another way gives ``None``: the caller then asks the
registry (``jaxbp.grading.registry``), which is the authority (tests compare the two).
"""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

from jaxbp.grading import specs  # a docstring only: imports no JAX

# A spec module's MODULE: "NN_<the spec module's name>.py".
MODULE_NAME = re.compile(r"^(\d+)_([A-Za-z_][A-Za-z0-9_]*)\.py$")


def spec_modules() -> list[pkgutil.ModuleInfo]:
    """The spec modules in ``specs.__path__`` (``_``-prefixed ones left out), in the
    order pkgutil finds them: the registry imports these, this module reads them."""
    return [info for info in pkgutil.iter_modules(specs.__path__)
            if not info.name.startswith("_")]


def _literal_str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        else None


def _read(path: Path) -> tuple[str, list[str]] | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    module, names = None, None
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        target = node.targets[0].id
        if target == "MODULE":
            module = _literal_str(node.value)
        elif target == "EXERCISES":
            if not isinstance(node.value, ast.Tuple):
                return None
            names = []
            for call in node.value.elts:
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                        and call.func.id == "exercise" and call.args):
                    return None
                name = _literal_str(call.args[0])
                if name is None:
                    return None
                names.append(name)
    if module is None or names is None:
        return None
    return module, names


def exercise_names() -> list[str] | None:
    """Every exercise's name, numbered from 1 in this order, or ``None`` when a spec
    module cannot be read without running it (or names another module: the
    registry's error then says so)."""
    found = []
    for info in spec_modules():
        where = getattr(info.module_finder, "path", None)
        path = Path(where, f"{info.name}.py") if where and not info.ispkg else None
        read = _read(path) if path is not None and path.is_file() else None
        if read is None:
            return None
        module, names = read
        m = MODULE_NAME.match(module)
        if not m or m.group(2) != info.name:  # the registry says what is wrong
            return None
        found.append((int(m.group(1)), module, names))
    found.sort(key=lambda t: (t[0], t[1]))
    return [name for _, _, names in found for name in names]
