"""Finding an implementation to grade, and loading it in this process for training.

An implementation is a directory laid out as ``solutions/``: ``01_activations.py`` and
so on. ``solutions`` and ``exercises`` name the project's own directories (looked up in
the current directory first, then beside the ``jaxbp`` package); anything else is a
path.

Grading never loads a learner's module here: it runs in the grading worker
(``_sandbox``). :meth:`Impl.function` loads one in this process, for
:func:`jaxbp.grading.plug.learner_layers` (training with the learner's backward
passes), after the worker's source scan: modules are loaded by file path with
``importlib`` (their names start with digits and the directories are not packages),
fresh each time a file changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from jaxbp.grading._worker import Refusal, scan, stubs
from jaxbp.grading.generate import project_root


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
        found = scan(text, path.name, {p.stem for p in path.parent.glob("*.py")})
    except SyntaxError as e:
        return LoadedModule(path, None, f"{path.name} does not parse: {e.msg} (line "
                            f"{e.lineno})", {})
    refusals = dict(found.refusals)
    if found.module is not None:  # the module's top level: every function
        refusals = _EveryFunction(found.module, refusals)
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


class _EveryFunction(dict):
    """Refusals where the module's top level is refused: every function has one."""

    def __init__(self, refusal, refusals):
        super().__init__(refusals)
        self.refusal = refusal

    def get(self, key, default=None):
        return super().get(key, self.refusal)
