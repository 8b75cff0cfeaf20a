"""The grading worker: the one place where a learner's code runs.

``jaxbp grade`` never imports a learner's module. It writes this file into a temporary
directory and starts it as a script (``python -I -S worker.py``), with a ``sys.path``
that holds the standard library and the third-party packages JAX needs, and nothing
else: not jaxbp, not ``solutions/``, not the grader. That process (the *zygote*)
imports JAX once, takes JAX's autodiff apart, and then forks one child per exercise.
The child, in a process group of its own, under resource limits, in an empty working
directory, with a private copy of the learner's files:

1. scans the learner's source (before any of it runs) and reports what it refuses:
   JAX's autodiff, jaxbp, ``solutions``, and the Python that reaches past a sandbox
   (``exec``, ``__import__``, ``importlib``, ``sys.modules``, dunder attributes,
   ``getattr`` on modules...);
2. imports the learner's module and calls the exercise's function on each case the
   grader sent, under ``jax.jit``: every case traced in turn into one compiled program
   (one compilation per exercise), and where anything goes wrong, case by case, each
   compiled on its own (eagerly where only ``jit`` fails), so that an error is
   reported on its case;
3. sends back the outputs as plain arrays (``.npz`` bytes), or what went wrong, and
   heartbeats that say how long the learner's code has run, JAX's compilation not
   counted. The grader enforces the time limit from outside, and kills the child's
   process group when it is past it.

The grader (the parent) compares, diagnoses, scores, reports and sets the exit status
itself. This file is self-contained: it imports only the standard library at the top,
numpy and JAX once running, and nothing from jaxbp. Its source scan is shared with the
grader's in-process loader (``jaxbp.grading._impl``), which imports it as a module.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import struct
import sys
import time
import traceback

NOT_DONE = "not done yet"

# JAX's autodiff: an answer that calls any of these proves nothing (the grader compares
# with them). Looked up as attributes of ``jax`` (or of any jax submodule) and as names
# imported from jax.
AUTODIFF = frozenset({
    "grad", "value_and_grad", "vjp", "jvp", "linearize", "linear_transpose", "jacfwd",
    "jacrev", "jacobian", "hessian", "custom_vjp", "custom_jvp", "check_grads", "jet",
    "closure_convert",
})

# The modules an answer may import (their submodules too, except those below), and
# local helper modules from the learner's own folder.
ALLOWED_IMPORTS = frozenset({
    "jax", "numpy", "math", "cmath", "functools", "itertools", "typing", "collections",
    "numbers", "fractions", "decimal", "statistics", "enum", "abc", "dataclasses", "copy",
    "warnings", "__future__",
})
# jax submodules that hold autodiff's machinery, or reach past the public API.
JAX_FORBIDDEN = frozenset({
    "_src", "interpreters", "experimental", "extend", "core", "custom_derivatives",
    "test_util", "api_util", "linear_util", "lib", "jaxlib",
})
# Names that reach past the sandbox: builtins that run or import code, read frames, or
# open files.
FORBIDDEN_BUILTINS = frozenset({
    "exec", "eval", "compile", "__import__", "open", "globals", "locals", "vars",
    "breakpoint", "input", "exit", "quit", "help", "__builtins__", "__loader__",
    "__spec__",
})
ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# Attribute names an answer never needs, which lead to modules, files, frames or
# processes (``np.ctypeslib``, ``frame.f_globals``, ``np.load(..., allow_pickle)``...).
FORBIDDEN_ATTRIBUTES = frozenset({
    "os", "sys", "subprocess", "ctypes", "ctypeslib", "importlib", "builtins", "gc",
    "inspect", "pickle", "marshal", "shutil", "socket", "signal", "threading",
    "multiprocessing", "atexit", "io", "pathlib", "tempfile", "runpy", "code", "codeop",
    "pdb", "modules", "load", "loads", "save", "savez", "savez_compressed", "loadtxt",
    "savetxt", "genfromtxt", "fromfile", "tofile", "memmap", "fromregex", "DataSource",
    "open", "system", "popen", "spawn", "fork", "kill", "exec_module", "load_module",
    "find_spec", "import_module", "f_globals", "f_locals", "f_back", "f_builtins",
    "gi_frame", "cr_frame", "ag_frame", "tb_frame", "tb_next", "get_field", "attrgetter",
    "methodcaller", "get_type_hints", "ForwardRef",
})
ALLOWED_DUNDERS = frozenset({"__name__", "__doc__", "__file__", "__main__"})


# ----------------------------------------------------------------------- source scan


@dataclasses.dataclass
class Refusal:
    """Why a function may not be graded: it uses autodiff, jaxbp, or leaves the sandbox."""

    what: str   # e.g. "jax.vjp"
    line: int
    via: str = ""  # e.g. "the helper _my_backward"
    kind: str = "autodiff"  # "autodiff", "jaxbp" or "sandbox"
    file: str = ""  # the file it is in, where that is not the exercise's own

    def message(self, function: str, filename: str) -> str:
        via = f" through {self.via}" if self.via else ""
        where = self.file or filename
        if self.kind == "jaxbp":
            why = ("jaxbp's layers and losses hold the reference backward passes, so an "
                   "answer may not call them: write it with jnp and lax")
        elif self.kind == "sandbox":
            why = ("the grader runs your code in a sandbox that allows jax (not its "
                   "internals), numpy and math helpers (math, functools, itertools...), "
                   "and no way around them (no exec, __import__, files, dunder "
                   "attributes or getattr on modules): write it with jnp and lax")
        else:
            why = ("the exercise is to write the backward pass by hand, and the grader "
                   "checks it against JAX's autodiff, so calling autodiff proves nothing: "
                   "write it with jnp and lax")
        return (f"refused: {function} uses {self.what}{via} ({where}, line "
                f"{self.line}); {why}")


@dataclasses.dataclass
class Scan:
    """What the source scan of one module found."""

    refusals: dict  # function name -> Refusal
    module: Refusal | None  # a refusal at the module's top level (every function)
    imports: dict  # local module name -> line, for the learner's helper modules


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _docstrings(tree) -> set[int]:
    """ids of the docstring nodes (their text may mention anything)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef,
                             ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def _import_refusal(module: str, line: int, local: set[str]) -> Refusal | None:
    """Why importing ``module`` is refused, or None."""
    parts = module.split(".")
    root = parts[0]
    if root in local:
        return None
    if root in ("jaxbp", "solutions"):
        return Refusal(module, line, kind="jaxbp")
    if root not in ALLOWED_IMPORTS:
        return Refusal(f"the module {module}", line, kind="sandbox")
    if root == "jax" and len(parts) > 1:
        if parts[1] in JAX_FORBIDDEN or any(p.startswith("_") for p in parts[1:]):
            return Refusal(module, line, kind="autodiff" if parts[1] in (
                "_src", "interpreters", "experimental", "custom_derivatives",
                "test_util") else "sandbox")
    if any(p.startswith("_") for p in parts[1:]):
        return Refusal(f"the private module {module}", line, kind="sandbox")
    return None


def scan(text: str, filename: str = "<impl>", local: set[str] | frozenset = frozenset()
         ) -> Scan:
    """Functions of a module (by name) whose source uses autodiff, jaxbp, or leaves the
    sandbox; and whether the module's top level does.

    A use counts where it appears in the function, in a helper the function calls, or
    in a module-level name the function reads (``G = jax.grad``; ``from jax import
    vjp``). ``local`` names the learner's own modules (files beside this one), which
    may be imported. Raises ``SyntaxError`` for a file that does not parse.
    """
    tree = ast.parse(text, filename=filename)
    docstrings = _docstrings(tree)
    local = set(local)
    jax_modules: set[str] = set()      # names bound to jax or a jax submodule
    modules: set[str] = set()          # names bound to any module
    tainted: dict[str, Refusal] = {}   # module-level names that are autodiff or jaxbp
    imports: dict[str, int] = {}
    module_refusal = None

    def first(r):
        nonlocal module_refusal
        if r is not None and module_refusal is None:
            module_refusal = r

    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                bound = a.asname or root
                first(_import_refusal(a.name, node.lineno, local))
                if root in local:
                    imports.setdefault(root, node.lineno)
                modules.add(bound)
                if root == "jax":
                    if a.asname and a.name.split(".")[-1] in AUTODIFF:
                        tainted[bound] = Refusal(a.name, node.lineno)
                    else:
                        jax_modules.add(bound)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            root = mod.split(".")[0]
            if node.level:  # a relative import: the learner's own files
                imports.setdefault(root or ".", node.lineno)
                continue
            first(_import_refusal(mod, node.lineno, local))
            if root in local:
                imports.setdefault(root, node.lineno)
            for a in node.names:
                bound = a.asname or a.name
                if a.name == "*":
                    first(Refusal(f"from {mod} import *", node.lineno, kind="sandbox"))
                    continue
                if root == "jax":
                    if a.name in AUTODIFF:
                        tainted[bound] = Refusal(f"{mod}.{a.name}", node.lineno)
                    elif a.name in JAX_FORBIDDEN or a.name.startswith("_"):
                        first(Refusal(f"{mod}.{a.name}", node.lineno, kind="sandbox"))
                    else:
                        jax_modules.add(bound)
                        modules.add(bound)
                elif root != "__future__":
                    if a.name in FORBIDDEN_ATTRIBUTES or a.name.startswith("_") or \
                            a.name in FORBIDDEN_BUILTINS:
                        first(Refusal(f"{mod}.{a.name}", node.lineno, kind="sandbox"))
                    modules.add(bound)

    def sandbox(sub) -> Refusal | None:
        """A use of ``sub`` (one AST node) that reaches past the sandbox."""
        if isinstance(sub, ast.Name):
            if sub.id in FORBIDDEN_BUILTINS or (_is_dunder(sub.id)
                                                and sub.id not in ALLOWED_DUNDERS):
                return Refusal(sub.id, sub.lineno, kind="sandbox")
        elif isinstance(sub, ast.Attribute):
            if (_is_dunder(sub.attr) and sub.attr not in ALLOWED_DUNDERS) or \
                    sub.attr in FORBIDDEN_ATTRIBUTES:
                return Refusal(f"the attribute .{sub.attr}", sub.lineno, kind="sandbox")
            parts = _dotted(sub)
            if parts and parts[0] in modules and any(p.startswith("_") for p in parts[1:]):
                return Refusal(".".join(parts), sub.lineno, kind="sandbox")
            if parts and parts[0] in jax_modules and any(p in JAX_FORBIDDEN for p in parts[1:]):
                return Refusal(".".join(["jax", *parts[1:]]), sub.lineno)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and \
                sub.func.id in ATTRIBUTE_BUILTINS:
            args = sub.args
            ok = (len(args) >= 2 and isinstance(args[1], ast.Constant)
                  and isinstance(args[1].value, str) and not args[1].value.startswith("_")
                  and args[1].value not in FORBIDDEN_ATTRIBUTES
                  and not (isinstance(args[0], ast.Name) and args[0].id in modules)
                  and sub.func.id in ("getattr", "hasattr"))
            if not ok:
                return Refusal(f"{sub.func.id}()", sub.lineno, kind="sandbox")
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and \
                id(sub) not in docstrings and "__" in sub.value and \
                sub.value not in ALLOWED_DUNDERS:
            return Refusal(f"the string {sub.value[:40]!r}", sub.lineno, kind="sandbox")
        elif isinstance(sub, ast.MatchClass) and any(
                a.startswith("_") for a in sub.kwd_attrs):
            return Refusal("a match pattern on private attributes", sub.lineno,
                           kind="sandbox")
        elif isinstance(sub, (ast.Import, ast.ImportFrom)) and getattr(sub, "level", 0) == 0:
            names = ([a.name for a in sub.names] if isinstance(sub, ast.Import)
                     else [sub.module or ""])
            for name in names:
                r = _import_refusal(name, sub.lineno, local)
                if r:
                    return r
        return None

    def attribute_names(sub):
        return {n.id for n in ast.walk(sub) if isinstance(n, ast.Name)}

    def uses(node) -> Refusal | None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and \
                    sub.id in tainted:
                r = tainted[sub.id]
                return Refusal(r.what, sub.lineno, r.via, r.kind)
            if isinstance(sub, ast.Attribute):
                parts = _dotted(sub)
                if parts and parts[0] in jax_modules and any(p in AUTODIFF for p in parts[1:]):
                    return Refusal(".".join(["jax", *parts[1:]]), sub.lineno)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                mod = sub.module if isinstance(sub, ast.ImportFrom) else sub.names[0].name
                names = [a.name for a in sub.names]
                if mod and mod.split(".")[0] == "jax" and (
                        any(n in AUTODIFF for n in names)
                        or any(p in AUTODIFF for p in mod.split("."))):
                    return Refusal(mod, sub.lineno)
            r = sandbox(sub)
            if r:
                return r
        return None

    functions = {n.name: n for n in tree.body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    others = [n for n in tree.body if n not in functions.values()
              and not isinstance(n, (ast.Import, ast.ImportFrom))
              and not (isinstance(n, ast.Expr) and id(n.value) in docstrings)]
    for node in others:  # the top level runs at import: the sandbox's rules hold there
        for sub in ast.walk(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            first(sandbox(sub))
    for node in functions.values():  # decorators and defaults run at import too
        heads = list(getattr(node, "decorator_list", []))
        if isinstance(node, ast.ClassDef):
            heads += node.bases + [k.value for k in node.keywords]
        else:
            heads += node.args.defaults + [d for d in node.args.kw_defaults if d]
        for head in heads:
            for sub in ast.walk(head):
                first(sandbox(sub))
    refused: dict[str, Refusal] = {}
    changed = True
    while changed:  # names that read tainted names become tainted, to a fixed point
        changed = False
        for node in others:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                r = uses(node.value) if node.value is not None else None
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for name in attribute_names(t):
                        if r and name not in tainted:
                            tainted[name] = r
                            changed = True
            elif module_refusal is None:
                r = uses(node)
                if r and r.kind != "sandbox":
                    first(r)
        for name, node in functions.items():
            if name in refused:
                continue
            r = uses(node)
            if r:
                refused[name] = r
                if name not in tainted:
                    via = r.via or (f"the helper {name}" if r.what else "")
                    tainted[name] = Refusal(r.what, r.line, via, r.kind)
                changed = True
    return Scan(refused, module_refusal, imports)


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


def scan_folder(root: str, module: str, function: str) -> dict:
    """The source checks of one exercise, before any of the learner's code runs.

    Returns ``{"syntax": {"file", "msg", "line"}}``, ``{"refused": Refusal as a dict}``,
    ``{"stub": True}`` or ``{}`` (go ahead).
    """
    local = {name[:-3] for name in os.listdir(root) if name.endswith(".py")}
    local |= {name for name in os.listdir(root)
              if os.path.isfile(os.path.join(root, name, "__init__.py"))}
    seen: dict[str, Scan] = {}

    def scan_file(name):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            path = os.path.join(path, "__init__.py")
        elif not name.endswith(".py"):
            path += ".py"
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return text, scan(text, os.path.basename(path), local)

    try:
        text, top = scan_file(module)
    except SyntaxError as e:
        return {"syntax": {"file": module, "msg": e.msg, "line": e.lineno}}
    if top.module is None and function not in top.refusals:
        # helper modules the learner imports: any refusal in them counts for all
        queue = list(top.imports.items())
        while queue and len(seen) < 50:
            name, line = queue.pop(0)
            if name in seen or name == module[:-3] or name not in local:
                continue
            try:
                _, helper = scan_file(name)
            except SyntaxError as e:
                return {"syntax": {"file": f"{name}.py", "msg": e.msg, "line": e.lineno}}
            seen[name] = helper
            found = helper.module or next(iter(helper.refusals.values()), None)
            if found:
                r = dataclasses.replace(found, via=f"{name}.py, which {module} imports",
                                        file=f"{name}.py")
                return {"refused": dataclasses.asdict(r)}
            queue += list(helper.imports.items())
    r = top.module or top.refusals.get(function)
    if r:
        return {"refused": dataclasses.asdict(r)}
    if function in stubs(text, module):
        return {"stub": True}
    return {}


# ----------------------------------------------------------------------- the wire


def write_frame(fd: int, payload: bytes, kind: bytes = b"J") -> None:
    data = struct.pack("!I", len(payload) + 1) + kind + payload
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send(fd: int, message: dict, blob: bytes | None = None) -> None:
    write_frame(fd, json.dumps(message).encode())
    if blob is not None:
        write_frame(fd, blob, b"B")


def encode(value, arrays: dict, depth: int = 0):
    """A learner's output as JSON, its arrays collected in ``arrays`` (for an npz)."""
    import numpy as np

    if depth > 64:
        return {"opaque": "a structure nested too deeply"}
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, str):
            return {"opaque": "a str"}
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**62:
            return {"opaque": "an int too large"}
        return value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"namedtuple": type(value).__name__[:60],
                "items": [encode(v, arrays, depth + 1) for v in tuple(value)]}
    if type(value) in (tuple, list):
        return {type(value).__name__: [encode(v, arrays, depth + 1) for v in value]}
    if type(value) is dict:
        return {"dict": [[_key(k), encode(v, arrays, depth + 1)] for k, v in value.items()]}
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything the learner returned
        a = None
    if a is not None and a.dtype.kind not in "biufc":
        try:
            a = a.astype(np.float64)
        except Exception:  # noqa: BLE001
            a = None
    if a is None or a.dtype.kind not in "biufc" or a.dtype.kind == "c":
        return {"opaque": f"a {type(value).__name__[:60]}"}
    key = f"a{len(arrays)}"
    arrays[key] = np.array(a, copy=True)
    return {"array": key}


def _key(k):
    """A dict key as JSON: strings and numbers as they are, anything else described."""
    if k is None or isinstance(k, (bool, int, float, str)):
        return k if not isinstance(k, str) else k[:200]
    if type(k) is tuple and len(k) < 8:
        return {"tuple": [_key(x) for x in k]}
    return {"opaque": f"a {type(k).__name__[:60]}"}


def encode_npz(arrays: dict) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# ----------------------------------------------------------------------- the zygote


def _blocker(denied):
    """A meta-path finder that refuses to import the named top-level modules."""
    import importlib.abc

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in denied:
                raise ModuleNotFoundError(f"No module named {name!r} (the grader's sandbox "
                                          f"holds only jax, numpy and the standard library)",
                                          name=name)
            return None
    return Blocked()


class AutodiffRefused(Exception):
    """Raised in place of JAX's autodiff in the worker."""


def _refuser(name):
    def refused(*args, **kwargs):
        del args, kwargs
        raise AutodiffRefused(name)
    refused.__name__ = name.rsplit(".", 1)[-1]
    return refused


def disable_autodiff():
    """Takes JAX's autodiff apart in this process: the grader never needs it here.

    The public entry points and their internal counterparts raise
    :class:`AutodiffRefused`, and the tables of differentiation rules (every
    primitive's JVP, transpose and Taylor rule) are emptied, so that a reference to
    the original functions (captured any way at all) has nothing left to run.
    """
    import jax
    import jax.experimental.jet as jet
    import jax.test_util
    from jax._src import api, public_test_util
    from jax._src.interpreters import ad

    public = ["grad", "value_and_grad", "vjp", "jvp", "linearize", "linear_transpose",
              "jacfwd", "jacrev", "jacobian", "hessian"]
    for module in (jax, api):
        for name in public:
            if hasattr(module, name):
                setattr(module, name, _refuser(f"jax.{name}"))
    for name in ("jvp", "linearize", "backward_pass", "backward_pass3", "linearize_jaxpr",
                 "jvp_jaxpr", "linear_transpose", "linear_transpose2", "vjp",
                 "linearize_from_jvp"):
        if hasattr(ad, name):
            setattr(ad, name, _refuser(f"jax's autodiff (ad.{name})"))
    for module in (jax.test_util, public_test_util):
        for name in ("check_grads", "check_jvp", "check_vjp"):
            if hasattr(module, name):
                setattr(module, name, _refuser(f"jax.test_util.{name}"))
    jet.jet = _refuser("jax.experimental.jet.jet")
    for module, table in ((ad, "primitive_jvps"), (ad, "primitive_transposes"),
                          (ad, "primitive_linearizations"), (ad, "reducing_transposes"),
                          (ad, "fancy_transposes"), (jet, "jet_rules")):
        if isinstance(getattr(module, table, None), dict):
            getattr(module, table).clear()
            setattr(module, table, _NoRules())


class _NoRules(dict):
    """A table of differentiation rules that stays empty: a module of JAX's executed
    again (to register its rules afresh) fails, and every lookup finds nothing."""

    def __setitem__(self, key, value):
        raise AutodiffRefused("JAX's differentiation rules")

    def __getitem__(self, key):
        raise KeyError(key)

    def get(self, key, default=None):
        return default

    def __contains__(self, key):
        return False

    def setdefault(self, key, default=None):
        raise AutodiffRefused("JAX's differentiation rules")

    def update(self, *args, **kwargs):
        raise AutodiffRefused("JAX's differentiation rules")


class Clock:
    """The learner's running time in the current phase, JAX's compilation not counted."""

    def __init__(self):
        self.phase, self.start, self.compiled = "setup", time.monotonic(), 0.0
        self.compiling_since, self.depth, self.case = None, 0, None

    def enter(self, phase):
        self.phase, self.start, self.compiled = phase, time.monotonic(), 0.0

    def begin_compile(self):
        if self.depth == 0:
            self.compiling_since = time.monotonic()
        self.depth += 1

    def end_compile(self):
        self.depth -= 1
        if self.depth == 0 and self.compiling_since is not None:
            self.compiled += time.monotonic() - self.compiling_since
            self.compiling_since = None

    def state(self):
        now = time.monotonic()
        compiling = self.compiling_since
        current = now - compiling if compiling is not None else 0.0
        return {"t": "hb", "phase": self.phase, "case": self.case,
                "run_s": round(now - self.start - self.compiled - current, 4),
                "compiling": compiling is not None, "compile_s": round(current, 4)}


CLOCK = Clock()


def track_compilation():
    """Wraps JAX's lowering and XLA compilation so the clock can leave them out."""
    from jax._src import compiler
    from jax._src.interpreters import mlir

    def wrap(module, name):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            CLOCK.begin_compile()
            try:
                return original(*args, **kwargs)
            finally:
                CLOCK.end_compile()
        setattr(module, name, timed)

    wrap(compiler, "backend_compile_and_load")
    wrap(mlir, "lower_jaxpr_to_module")


def zygote(sock_fd: int, config_path: str) -> None:
    """Imports JAX once, then forks one child per job the grader sends."""
    import socket

    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    sys.path[:] = [p for p in sys.path if p and os.path.exists(p)] + config["path"]
    sys.meta_path.insert(0, _blocker(frozenset(config["denied"])))
    sys.dont_write_bytecode = True
    start = time.monotonic()
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    # jax.device_put (how the cases' arrays reach the device) imports this module on
    # its first call, and the module registers differentiation rules: before the lock.
    import jax.experimental.multihost_utils  # noqa: F401
    try:  # what JAX imports on a process's first compilation (20 ms a job otherwise);
        # an import only: this process must not compile before it forks
        from jax._src.lib.mlir import dialects
        dialects.mhlo  # noqa: B018 - a lazy module: the attribute imports it
    except (ImportError, AttributeError):
        pass
    disable_autodiff()
    track_compilation()
    sock = socket.socket(fileno=sock_fd)
    _reply(sock, {"ready": True, "import_s": round(time.monotonic() - start, 3),
                  "pid": os.getpid()})
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        except OSError:
            break
        if not message:
            break
        request = json.loads(message.decode())
        with open(request["job"], encoding="utf-8") as f:
            job = json.load(f)
        job["nonce"] = request["nonce"]
        (result_fd,) = fds
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                _child(job, result_fd)
            finally:
                os._exit(70)
        os.close(result_fd)
        _reply(sock, {"nonce": job["nonce"], "pid": pid})
        _, status = os.waitpid(pid, 0)
        _reply(sock, {"nonce": job["nonce"], "status": status})
    os._exit(0)


def _reply(sock, message):
    sock.sendall(json.dumps(message).encode() + b"\n")


# ----------------------------------------------------------------------- the child

_EXIT = os._exit  # kept before the learner's code can replace os._exit


def _limits(job):
    import resource

    cpu = int(job["cpu_limit"])
    for which, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, cpu),
                         (resource.RLIMIT_NOFILE, 256),
                         (resource.RLIMIT_FSIZE, 64 << 20)):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    if job.get("memory_limit"):
        try:  # on top of what the process holds now (JAX's own address space)
            with open("/proc/self/status", encoding="ascii") as f:
                size = next(int(line.split()[1]) * 1024 for line in f
                            if line.startswith("VmSize:"))
            limit = size + int(job["memory_limit"])
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError, StopIteration):
            pass


# Landlock (Linux 5.13+): a process restricts its own access to the filesystem (and,
# from its ABI 4, to TCP; from ABI 6, its signals to processes outside its domain).
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_TRUNCATE, _FS_IOCTL_DEV, _FS_REFER = 1 << 14, 1 << 15, 1 << 13
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 where Landlock is not available."""
    import ctypes
    import platform

    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64",
                                                              "AMD64", "arm64"):
        return 0
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return 0
    syscall.restype = ctypes.c_long
    return max(0, int(syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))


def landlock(read: list[str], write: list[str]) -> int:
    """Confines this process (and any it starts) to reading ``read`` and writing
    ``write``; no TCP, and no signals to processes outside it where the kernel can.
    Returns the kernel's Landlock ABI version, or 0 where Landlock is not available
    (the other locks still hold)."""
    import ctypes

    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    handled = (1 << 13) - 1
    handled |= _FS_REFER if abi >= 2 else 0
    handled |= _FS_TRUNCATE if abi >= 3 else 0
    handled |= _FS_IOCTL_DEV if abi >= 5 else 0
    fields = [handled]
    if abi >= 4:
        fields.append(1 | 2)  # handled_access_net: bind and connect (no rule: none)
    if abi >= 6:
        fields.append(1 | 2)  # scoped: abstract unix sockets and signals
    attr = struct.pack(f"={len(fields)}Q", *fields)
    ruleset = syscall(444, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)),
                      ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    reading = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    try:
        for paths, rights in ((read, reading), (write, handled)):
            for path in dict.fromkeys(paths):
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights & handled
                    if not os.path.isdir(path):
                        allowed &= _FILE_RIGHTS
                    rule = struct.pack("=Qi", allowed, fd)  # landlock_path_beneath_attr
                    syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1),
                            ctypes.c_char_p(rule), ctypes.c_uint32(0))
                finally:
                    os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return 0
        if syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(ruleset)
    return abi


def _readable(job) -> list[str]:
    """What the child may read once confined: the standard library (not its
    site-packages), JAX's packages, the learner's copy, the shared libraries already
    loaded, and the system's /proc, /sys, /etc and /dev."""
    out = []
    for entry in sys.path:
        if not entry or not os.path.exists(entry):
            continue
        if entry in job.get("view", ()):
            for name in os.listdir(entry):
                out.append(os.path.realpath(os.path.join(entry, name)))
            out.append(entry)
        elif os.path.isdir(entry):
            for name in os.listdir(entry):
                if name not in ("site-packages", "dist-packages"):
                    out.append(os.path.join(entry, name))
        else:
            out.append(entry)
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip() if line.count(" ") >= 5 else ""
                if path.startswith("/") and ".so" in os.path.basename(path):
                    out.append(os.path.dirname(path))
    except OSError:
        pass
    out += [job["impl"], "/proc", "/sys", "/etc", "/dev"]
    return out


def _close_doors():
    """Process control out of reach of the learner's code (the scan refuses the names;
    this is the second lock): no fork, exec, spawn, kill or exit from os."""
    import posix

    def refused(name):
        def f(*args, **kwargs):
            del args, kwargs
            raise PermissionError(f"{name} is not available in the grader's sandbox")
        return f
    import importlib

    importlib.reload = refused("importlib.reload")  # re-running JAX's modules would
    # register its differentiation rules again
    for name in ("fork", "forkpty", "system", "popen", "execv", "execve", "execl",
                 "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnv", "spawnve",
                 "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
                 "posix_spawn", "posix_spawnp", "kill", "killpg", "setsid", "setpgid",
                 "setpgrp", "_exit", "abort", "register_at_fork", "chdir", "fchdir"):
        for module in (os, posix):
            if hasattr(module, name):
                setattr(module, name, refused(f"os.{name}"))


def _child(job, fd):
    """Grades one exercise: scan, import, call every case, send what came back."""
    import threading

    os.setpgid(0, 0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(os.path.join(job["dir"], "output.txt"),
                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 16)
    os.chdir(os.path.join(job["dir"], "work"))
    _limits(job)
    lock = threading.Lock()

    def emit(message, blob=None):
        with lock:
            send(fd, message, blob)

    def beat():
        while True:
            time.sleep(0.05)
            emit(CLOCK.state())

    threading.Thread(target=beat, daemon=True).start()
    emit(CLOCK.state())
    try:
        _grade(job, emit)
    except BaseException as e:  # noqa: BLE001 - a bug here is reported, never hidden
        emit({"t": "stop", "kind": "worker", "text": f"{type(e).__name__}: {e}",
              "trace": traceback.format_exc()[-2000:]})
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"t": "done", "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)})
    sys.stdout.flush()
    _EXIT(0)


def _grade(job, emit):
    import importlib.util

    root = job["impl"]
    if job.get("scan_only"):  # the source checks of several exercises, nothing run
        for module, function in job["scan_only"]:
            emit({"t": "scanned", "function": function,
                  "found": scan_folder(root, module, function)})
        return
    found = scan_folder(root, job["module"], job["function"]) if job["scan"] else {}
    if found:
        emit({"t": "stop", "kind": next(iter(found)), **found})
        return
    import jax
    import numpy as np

    with np.load(os.path.join(job["dir"], "inputs.npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    jax.devices()  # the backend starts here, before os's process functions are closed
    sys.path.insert(0, root)
    abi = landlock(_readable(job), [os.getcwd(), os.devnull]) if job.get("landlock") else 0
    emit({"t": "landlock", "abi": abi})
    _close_doors()
    path = os.path.join(root, job["module"])
    name = "_learner_" + job["module"][:-3]
    CLOCK.enter("import")
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as e:  # noqa: BLE001 - the learner's module: anything at all
        CLOCK.enter("setup")
        emit({"t": "stop", "kind": "import", "error": describe_error(e, root)})
        return
    CLOCK.enter("setup")
    fn = getattr(module, job["function"], None)
    if fn is None or not callable(fn):
        emit({"t": "stop", "kind": "missing"})
        return
    try:
        _cases(job, fn, arrays, root, emit)
    except _StopWith as stop:
        emit({"t": "stop", "kind": stop.info["kind"], "error": stop.info})


def _cases(job, fn, arrays, root, emit):
    import jax

    # The learner's function runs once per case, compiled as the grader's references
    # are, for a fast compilation (the options come with the job: this process must
    # not compile before it forks, and imports nothing from jaxbp): all the cases in
    # one program, else one by one.
    options = job.get("compiler_options") or None
    together = _together(job, fn, arrays, options, emit) if job["jit"] else None
    if together is not None:
        for i, out in enumerate(together):
            _finish_case(job, i, out, None, fn, arrays, root, emit)
        return
    jitted = jax.jit(fn, static_argnums=tuple(job["static_argnums"]),
                     compiler_options=options)
    jit_failure = None
    for i, case in enumerate(job["cases"]):
        CLOCK.case = i
        emit(CLOCK.state())  # a crash from here on is reported on this case
        error = None
        try:
            out = _call(jitted if job["jit"] else fn, case, arrays, root)
        except _LearnerError as e:
            if not job["jit"]:
                error = e.info
            else:
                try:
                    out = _call(fn, case, arrays, root)
                    jit_failure = jit_failure or e.info
                except _LearnerError as eager:
                    error = eager.info
        _finish_case(job, i, None if error is not None else out, error, fn, arrays, root,
                     emit)
    if jit_failure is not None:
        emit({"t": "jit", "error": jit_failure})


def _finish_case(job, i, out, error, fn, arrays, root, emit):
    """Sends case ``i``'s output (or ``error``, what it raised) to the grader; then, if
    the exercise asks, whether an eager call changes the case's inputs in place."""
    if error is None:
        outputs = {}
        CLOCK.enter("call")
        try:
            tree = encode(out, outputs)
            blob = encode_npz(outputs)
        except BaseException as e:  # noqa: BLE001 - an __array__ that raises...
            tree, blob, error = None, None, describe_error(e, root)
        CLOCK.enter("setup")
    if error is not None:
        emit({"t": "case", "i": i, "error": error})
    else:
        emit({"t": "case", "i": i, "tree": tree}, blob)
    if i in job.get("mutation_cases", ()):
        changed = _mutation(fn, job["cases"][i], arrays, root)
        if changed:
            emit({"t": "mutated", "i": i, "where": changed})


def _together(job, fn, arrays, options, emit):
    """Every case's output from one compiled program (one compilation instead of one
    per case), or None when anything at all goes wrong: the cases then run one by one,
    which attributes each error to its case and tries eagerly where only jit fails.

    Each case is traced in turn inside the program, its clock and its number set as it
    starts, as when it runs alone; JAX's lowering and compilation are not counted."""
    import jax

    static = set(job["static_argnums"])
    try:
        calls = [decode(case, arrays) for case in job["cases"]]
    except BaseException:  # noqa: BLE001 - a stand-in that cannot be built: one by one
        return None
    if not calls:
        return None
    dynamic = [tuple(a for j, a in enumerate(args) if j not in static) for args in calls]

    def program(dynamic):
        outs = []
        for i, (args, dyn) in enumerate(zip(calls, dynamic)):
            CLOCK.case = i
            CLOCK.enter("call")
            emit(CLOCK.state())  # a crash from here on is reported on this case
            values = iter(dyn)
            outs.append(fn(*(a if j in static else next(values)
                             for j, a in enumerate(args))))
        CLOCK.case = ALL_CASES
        emit(CLOCK.state())
        return outs

    try:
        out = jax.jit(program, compiler_options=options)(dynamic)
        out = jax.block_until_ready(out)
    except BaseException:  # noqa: BLE001 - the learner's code may raise anything
        return None
    finally:
        CLOCK.enter("setup")
        CLOCK.case = None
    if not isinstance(out, list) or len(out) != len(calls):
        return None
    return out


ALL_CASES = -1  # CLOCK.case while the program of every case runs (_sandbox.ALL_CASES)


class _LearnerError(Exception):
    def __init__(self, info):
        super().__init__(info.get("text", ""))
        self.info = info


def _call(fn, case, arrays, root, *, numpy_leaves=False):
    import jax

    args = decode(case, arrays, numpy_leaves=numpy_leaves)
    CLOCK.enter("call")
    try:
        out = fn(*args)
        try:
            out = jax.block_until_ready(out)
        except Exception:  # noqa: BLE001 - not arrays: the comparison says so
            pass
        return out
    except BaseException as e:  # noqa: BLE001 - the learner's code may raise anything
        info = describe_error(e, root)
        if info["kind"] in ("not_done", "refused"):
            CLOCK.enter("setup")
            _stop_now(info)
        raise _LearnerError(info) from None
    finally:
        CLOCK.enter("setup")


def _stop_now(info):
    raise _StopWith(info)


class _StopWith(BaseException):
    def __init__(self, info):
        super().__init__()
        self.info = info


def _mutation(fn, case, arrays, root) -> str:
    """Where an eager call changed its inputs in place ('' if nowhere): the call gets
    numpy arrays in mutable containers, and its inputs are compared afterwards."""
    import copy

    import numpy as np

    args = decode(case, arrays, numpy_leaves=True)
    before = copy.deepcopy(args)
    CLOCK.enter("call")
    try:
        fn(*args)
    except BaseException:  # noqa: BLE001 - the other checks report errors
        return ""
    finally:
        CLOCK.enter("setup")

    def diff(a, b, path):
        if type(a) is not type(b):
            return path or "an argument"
        if isinstance(a, dict):
            if list(a) != list(b):
                return f"{path} (its keys)"
            for k in a:
                d = diff(a[k], b[k], f"{path}[{k!r}]")
                if d:
                    return d
            return ""
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return f"{path} (its length)"
            for i, (x, y) in enumerate(zip(a, b)):
                d = diff(x, y, f"{path}[{i}]")
                if d:
                    return d
            return ""
        if isinstance(a, np.ndarray):
            return "" if np.array_equal(a, b, equal_nan=True) else path
        return ""

    for i, (a, b) in enumerate(zip(args, before)):
        d = diff(a, b, f"argument {i + 1}")
        if d:
            return d
    return ""


class _Layer:
    """A stand-in for a layer: ``backward`` is the real layer's backward at the case's
    params and residuals, as a matrix (it is linear in ``dy``). Handed wrong params or
    residuals, its answer is off; handed a wrong-sized ``dy``, it raises."""

    def __init__(self, index, spec, arrays, jnp):
        self.index, self.name = index, spec["name"]
        self._m = _device(arrays[spec["m"]])
        self._token = _device(arrays[spec["token"]])
        self._params = decode(spec["params"], arrays)
        self._dy_shape = tuple(spec["dy_shape"])
        self._dx_shape = tuple(spec["dx_shape"])

    def __repr__(self):
        return (f"<layer {self.index}: {self.name}>" if self.index is not None
                else f"<branch: {self.name}>")

    def backward(self, params, residuals, dy):
        import jax
        import jax.numpy as jnp

        where = (f"layers[{self.index}].backward ({self.name})" if self.index is not None
                 else f"branch.backward ({self.name})")
        if jax.tree.structure(params) != jax.tree.structure(self._params):
            raise TypeError(f"{where}: params has the wrong structure for this layer: "
                            + (f"expected params[{self.index}]" if self.index is not None
                               else "expected the branch's params"))
        dy = jnp.asarray(dy)
        if tuple(dy.shape) != self._dy_shape:
            raise ValueError(f"{where}: dy must have shape {self._dy_shape} (this layer's "
                             f"output), got {tuple(dy.shape)}")
        off = jnp.sum((jnp.asarray(residuals) - self._token) ** 2) if jnp.shape(
            residuals) == self._token.shape else jnp.asarray(1.0)
        for p, q in zip(jax.tree.leaves(params), jax.tree.leaves(self._params)):
            off = off + (jnp.sum((p - q) ** 2) if jnp.shape(p) == q.shape else 1.0)
        flat = (dy.reshape(-1) @ self._m) * (1.0 + off)
        leaves, treedef = jax.tree.flatten(self._params)
        out, start = [], 0
        for q in leaves:
            out.append(flat[start:start + q.size].reshape(q.shape))
            start += q.size
        dx = flat[start:].reshape(self._dx_shape)
        return jax.tree.unflatten(treedef, out), dx


def _device(a):
    """A numpy array on the device. Not ``jnp.asarray``: in JAX 0.10 that compiles an
    identity program for every new shape (a third of a small exercise's time here)."""
    import jax

    return jax.device_put(a)


def decode(value, arrays, *, numpy_leaves=False):
    """A case's argument tree from its JSON and arrays (fresh containers every call)."""
    import jax.numpy as jnp
    import numpy as np

    def go(v):
        if isinstance(v, dict):
            if "array" in v:
                a = arrays[v["array"]]
                return np.array(a, copy=True) if numpy_leaves else _device(a)
            if "tuple" in v:
                return tuple(go(x) for x in v["tuple"])
            if "list" in v:
                return [go(x) for x in v["list"]]
            if "dict" in v:
                return {go(k) if isinstance(k, dict) else k: go(x) for k, x in v["dict"]}
            if "layers" in v:
                layers = tuple(_Layer(None if v.get("single") else i, s, arrays, jnp)
                               for i, s in enumerate(v["layers"]))
                return layers[0] if v.get("single") else layers
            raise ValueError(f"cannot decode {sorted(v)}")
        return v
    return go(value)


def _learner_frame(exc, root):
    """``(at FILE, line N, in FUNC: CODE)`` for the deepest frame in ``root``, or ''."""
    root = os.path.realpath(root)
    found = None
    for fs in traceback.extract_tb(exc.__traceback__):
        try:
            if os.path.realpath(fs.filename).startswith(root + os.sep):
                found = fs
        except (OSError, ValueError):
            continue
    if found is None:
        return ""
    code = f": {found.line.strip()}" if found.line else ""
    return f" (at {os.path.basename(found.filename)}, line {found.lineno}, in {found.name}{code})"


def _find(e, kind):
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, kind):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def describe_error(e: BaseException, root: str) -> dict:
    """What an exception from the learner's code was, for the grader's feedback."""
    try:
        import jax
    except ImportError:  # the scan runs before jax is needed
        jax = None
    if isinstance(e, NotImplementedError) and str(e).startswith(NOT_DONE):
        return {"kind": "not_done"}
    refused = _find(e, AutodiffRefused)
    if refused is not None:
        return {"kind": "refused", "what": str(refused.args[0])}
    rule = _find(e, NotImplementedError)
    if rule is not None and ("Differentiation rule for" in str(rule)
                             or "Transpose rule" in str(rule)):
        return {"kind": "refused", "what": "JAX's differentiation rules"}
    frame = _learner_frame(e, root)
    if isinstance(e, SystemExit):
        return {"kind": "error", "type": "SystemExit", "frame": frame,
                "text": f"your code called sys.exit(){frame}: a function must return"}
    try:
        message = str(e)
    except Exception:  # noqa: BLE001 - a learner's exception whose str() raises
        message = "(its message cannot be shown)"
    lines = message.strip().splitlines()
    first = lines[0][:500] if lines else ""
    hint = ""
    if "rank promotion" in message or "rank_promotion" in message:
        hint = ("; implicit rank promotion is off: broadcast explicitly, e.g. "
                "b[None, :] or keepdims=True")
    elif jax is not None and isinstance(e, (jax.errors.ConcretizationTypeError,
                                            jax.errors.TracerBoolConversionError)):
        hint = ("; under jax.jit, Python `if`/`while` on array values cannot work: use "
                "jnp.where, or keep such decisions on shapes")
    name = type(e).__name__[:80]
    return {"kind": "error", "type": name, "message": first, "frame": frame,
            "text": f"your code raised {name}: {first}{frame}{hint}"}


if __name__ == "__main__":
    zygote(int(sys.argv[1]), sys.argv[2])
