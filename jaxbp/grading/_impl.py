"""Finding and loading the implementation to grade, and refusing autodiff in its source.

An implementation is a directory laid out as ``solutions/``: ``01_activations.py`` and
so on. ``solutions`` and ``exercises`` name the project's own directories (looked up in
the current directory first, then beside the ``jaxbp`` package); anything else is a
path. Modules are loaded by file path with ``importlib`` (their names start with digits
and the directories are not packages), fresh each time a file changes.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from jaxbp.grading.generate import NOT_DONE, project_root

# JAX's autodiff: an answer that calls any of these proves nothing (the grader compares
# with them). Looked up as attributes of ``jax`` (or of any jax submodule) and as names
# imported from jax.
AUTODIFF = frozenset({
    "grad", "value_and_grad", "vjp", "jvp", "linearize", "linear_transpose", "jacfwd",
    "jacrev", "jacobian", "hessian", "custom_vjp", "custom_jvp", "check_grads", "jet",
    "closure_convert",
})


class ImplError(Exception):
    """The implementation (or one of its files or functions) cannot be used."""


def resolve(impl: str | Path) -> Path:
    """The directory an ``--impl`` value names.

    Raises:
      ImplError: no such directory.
    """
    text = str(impl)
    candidates = [Path(text)]
    if text in ("solutions", "exercises"):
        candidates.append(project_root() / text)
    for c in candidates:
        if c.is_dir():
            return c.resolve()
        if c.is_file():
            raise ImplError(f"--impl must be a directory laid out as solutions/ (e.g. "
                            f"exercises/), got the file {text!r}")
    where = " or ".join(str(c) for c in candidates)
    raise ImplError(f"--impl: no directory {where} (give 'solutions', 'exercises' or the "
                    f"path to your copy of exercises/)")


@dataclasses.dataclass
class Refusal:
    """Why a function may not be graded: it uses autodiff or jaxbp."""

    what: str   # e.g. "jax.vjp"
    line: int
    via: str = ""  # e.g. "the helper _my_backward"

    def message(self, function: str, filename: str) -> str:
        via = f" through {self.via}" if self.via else ""
        if self.what.startswith("jaxbp"):
            why = ("jaxbp's layers and losses hold the reference backward passes, so an "
                   "answer may not call them: write it with jnp and lax")
        else:
            why = ("the exercise is to write the backward pass by hand, and the grader "
                   "checks it against JAX's autodiff, so calling autodiff proves nothing: "
                   "write it with jnp and lax")
        return (f"refused: {function} uses {self.what}{via} ({filename}, line "
                f"{self.line}); {why}")


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def scan(text: str, filename: str = "<impl>") -> dict[str, Refusal]:
    """Functions of a module (by name) whose source uses JAX's autodiff or jaxbp.

    A use counts where it appears in the function, in a helper the function calls, or
    in a module-level name the function reads (``G = jax.grad``; ``from jax import
    vjp``). Raises ``SyntaxError`` for a file that does not parse.
    """
    tree = ast.parse(text, filename=filename)
    jax_modules: set[str] = set()      # names bound to jax or a jax submodule
    tainted: dict[str, Refusal] = {}   # module-level names that are autodiff or jaxbp

    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                bound = a.asname or root
                if root == "jax":
                    if a.asname and a.name.split(".")[-1] in AUTODIFF:
                        tainted[bound] = Refusal(a.name, node.lineno)
                    else:
                        jax_modules.add(bound)
                elif root == "jaxbp":
                    tainted[bound] = Refusal(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            for a in node.names:
                bound = a.asname or a.name
                if root == "jaxbp":
                    tainted[bound] = Refusal(f"{node.module}.{a.name}", node.lineno)
                elif root == "jax":
                    if a.name in AUTODIFF:
                        tainted[bound] = Refusal(f"{node.module}.{a.name}", node.lineno)
                    else:
                        jax_modules.add(bound)

    def uses(node) -> Refusal | None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                parts = _dotted(sub)
                if parts and parts[0] in jax_modules and any(p in AUTODIFF for p in parts[1:]):
                    return Refusal(".".join(["jax", *parts[1:]]), sub.lineno)
            elif isinstance(sub, ast.Name) and sub.id in tainted:
                r = tainted[sub.id]
                return Refusal(r.what, sub.lineno, r.via)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                mod = sub.module if isinstance(sub, ast.ImportFrom) else sub.names[0].name
                names = [a.name for a in sub.names]
                if mod and mod.split(".")[0] == "jaxbp":
                    return Refusal(mod, sub.lineno)
                if mod and mod.split(".")[0] == "jax" and (
                        any(n in AUTODIFF for n in names)
                        or any(p in AUTODIFF for p in mod.split("."))):
                    return Refusal(mod, sub.lineno)
        return None

    functions = {n.name: n for n in tree.body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    others = [n for n in tree.body if n not in functions.values()
              and not isinstance(n, (ast.Import, ast.ImportFrom))]
    refused: dict[str, Refusal] = {}
    changed = True
    while changed:  # names that read tainted names become tainted, to a fixed point
        changed = False
        for node in others:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                r = uses(node.value) if node.value is not None else None
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if r and isinstance(t, ast.Name) and t.id not in tainted:
                        tainted[t.id] = r
                        changed = True
        for name, node in functions.items():
            if name in refused:
                continue
            r = uses(node)
            if r:
                refused[name] = r
                if name not in tainted:
                    via = r.via or (f"the helper {name}" if r.what else "")
                    tainted[name] = Refusal(r.what, r.line, via)
                changed = True
    return refused


def stubs(text: str, filename: str = "<impl>") -> set[str]:
    """Functions whose body is still only the "not done yet" stub (after a docstring)."""
    tree = ast.parse(text, filename=filename)
    found = set()
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(
                body[0].value.value, str):
            body = body[1:]
        if len(body) != 1 or not isinstance(body[0], ast.Raise):
            continue
        exc = body[0].exc
        if (isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name)
                and exc.func.id == "NotImplementedError" and exc.args
                and isinstance(exc.args[0], ast.Constant)
                and str(exc.args[0].value).startswith(NOT_DONE)):
            found.add(node.name)
    return found


@dataclasses.dataclass
class LoadedModule:
    path: Path
    module: object | None
    error: str | None           # why the file cannot be used (missing, does not import)
    refusals: dict[str, Refusal]
    stubs: set[str] = dataclasses.field(default_factory=set)


class Impl:
    """One implementation directory; its modules load on first use."""

    def __init__(self, impl: str | Path):
        self.label = str(impl)
        self.root = resolve(impl)
        self._modules: dict[str, tuple[float, LoadedModule]] = {}

    def __repr__(self):
        return f"Impl({str(self.root)!r})"

    def module(self, filename: str) -> LoadedModule:
        path = self.root / filename
        stamp = path.stat().st_mtime_ns if path.exists() else -1
        cached = self._modules.get(filename)
        if cached and cached[0] == stamp:
            return cached[1]
        loaded = _load(path)
        self._modules[filename] = (stamp, loaded)
        return loaded

    def function(self, filename: str, name: str):
        """``(function, refusal)``; raises :class:`ImplError` if there is none to grade."""
        loaded = self.module(filename)
        if loaded.error:
            raise ImplError(loaded.error)
        fn = getattr(loaded.module, name, None)
        if fn is None or not callable(fn):
            raise ImplError(f"{self.display(loaded.path)} has no function {name}(): "
                            f"keep the function's name and signature as given")
        return fn, loaded.refusals.get(name)

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


def _load(path: Path) -> LoadedModule:
    if not path.exists():
        return LoadedModule(path, None, f"no file {path}", {})
    text = path.read_text(encoding="utf-8")
    try:
        refusals = scan(text, str(path))
    except SyntaxError as e:
        return LoadedModule(path, None, f"{path.name} does not parse: {e.msg} (line "
                            f"{e.lineno})", {})
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"_jaxbp_impl_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would (dataclasses, pickle look it up)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the learner's module: any error is theirs to see
        sys.modules.pop(name, None)
        frame = learner_frame(e, path.parent)
        return LoadedModule(path, None, f"{path.name} does not import: "
                            f"{type(e).__name__}: {e}{frame}", refusals,
                            stubs(text, str(path)))
    return LoadedModule(path, module, None, refusals, stubs(text, str(path)))


def learner_frame(exc: BaseException, root: Path) -> str:
    """`` (at FILE, line N, in FUNC: CODE)`` for the deepest frame in ``root``, or ''."""
    root = root.resolve()
    found = None
    for fs in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(fs.filename).resolve().is_relative_to(root):
                found = fs
        except (OSError, ValueError):
            continue
    if found is None:
        return ""
    code = f": {found.line.strip()}" if found.line else ""
    return f" (at {Path(found.filename).name}, line {found.lineno}, in {found.name}{code})"
