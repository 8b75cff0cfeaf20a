"""``jaxbp exercises generate``: write ``exercises/`` from ``solutions/``.

``solutions/`` is the one source. Each answer sits between a ``# BEGIN SOLUTION`` line
and a ``# END SOLUTION`` line inside the exercise's function; the learner's copy keeps
every other line as it is and replaces each region's body by a stub that raises
``NotImplementedError("not done yet: <function name>")``, which the grader reports as
"not done yet". ``jaxbp exercises check`` (and a test) verify that ``exercises/`` is
exactly what this module makes from ``solutions/``.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import sys
from pathlib import Path

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
NOT_DONE = "not done yet"


def stub_line(indent: str, name: str) -> str:
    """The line that replaces a region's body in the learner's copy."""
    return f'{indent}raise NotImplementedError("{NOT_DONE}: {name}")\n'


@dataclasses.dataclass(frozen=True)
class Region:
    """One learner's region: the marker lines' indices (0-based) and its function."""

    begin: int     # index of the ``# BEGIN SOLUTION`` line
    end: int       # index of the ``# END SOLUTION`` line
    function: str  # the innermost function that holds it
    indent: str    # the markers' indentation


def _functions_by_line(text: str, filename: str):
    """(first line, last line, name) of every function, 1-based, innermost last."""
    tree = ast.parse(text, filename=filename)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans.append((node.lineno, node.end_lineno, node.name))
    return spans


def regions(text: str, filename: str = "<solutions>") -> list[Region]:
    """Finds the learner's regions of a solutions file.

    Raises:
      ValueError: a marker without its partner, nested markers, markers at different
        indentation, or a region outside a function; the message names the file and
        the line.
    """
    lines = text.splitlines(keepends=True)
    spans = _functions_by_line(text, filename)
    found, open_at = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_at is not None:
                raise ValueError(f"{filename}:{i + 1}: {BEGIN!r} inside the region opened "
                                 f"at line {open_at + 1}")
            open_at = i
        elif stripped == END:
            if open_at is None:
                raise ValueError(f"{filename}:{i + 1}: {END!r} without a {BEGIN!r} before it")
            indent = lines[open_at][:len(lines[open_at]) - len(lines[open_at].lstrip())]
            end_indent = line[:len(line) - len(line.lstrip())]
            if indent != end_indent:
                raise ValueError(f"{filename}:{i + 1}: {END!r} must have the indentation of "
                                 f"its {BEGIN!r} (line {open_at + 1})")
            # A function's last line is its last statement; the END comment may follow it.
            inside = [s for s in spans if s[0] < open_at + 1 <= s[1]]
            if not inside:
                raise ValueError(f"{filename}:{open_at + 1}: a region must sit inside a "
                                 f"function")
            function = max(inside, key=lambda s: s[0])[2]
            found.append(Region(open_at, i, function, indent))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{filename}:{open_at + 1}: {BEGIN!r} without an {END!r}")
    return found


def make_exercise(text: str, filename: str = "<solutions>") -> str:
    """The learner's copy of one solutions file: each region's body becomes a stub."""
    lines = text.splitlines(keepends=True)
    out, start = [], 0
    for region in regions(text, filename):
        out.extend(lines[start:region.begin + 1])
        out.append(stub_line(region.indent, region.function))
        start = region.end
    out.extend(lines[start:])
    return "".join(out)


def is_untouched(exercise_text: str, filename: str = "<exercises>") -> bool:
    """True when every region of a learner's file still holds only its stub."""
    lines = exercise_text.splitlines(keepends=True)
    for region in regions(exercise_text, filename):
        body = lines[region.begin + 1:region.end]
        if body != [stub_line(region.indent, region.function)]:
            return False
    return True


def project_root() -> Path:
    """The directory holding ``jaxbp/`` (and ``solutions/``, ``exercises/``)."""
    return Path(__file__).resolve().parents[2]


def plan(solutions: Path, exercises: Path) -> dict[Path, str]:
    """Every file ``exercises/`` should hold, with its text."""
    files = sorted(p for p in solutions.glob("*.py"))
    if not files:
        raise ValueError(f"solutions: no .py files in {solutions}")
    return {exercises / p.name: make_exercise(p.read_text(encoding="utf-8"), str(p))
            for p in files}


def differences(solutions: Path, exercises: Path) -> list[str]:
    """What differs between ``exercises/`` and what ``solutions/`` generates; [] if none."""
    wanted = plan(solutions, exercises)
    problems = []
    for path, text in wanted.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from what {solutions / path.name} generates")
    for path in sorted(exercises.glob("*.py")):
        if path not in wanted:
            problems.append(f"{path}: has no counterpart in {solutions}")
    return problems


def add_arguments(parser):
    # `jaxbp exercises init DIR` is dispatched before this parser (jaxbp.cli.main): it is
    # listed here so that --help and the usage line show it.
    parser.add_argument("action", choices=["init", "generate", "check"],
                        help="init DIR: write a fresh working copy of the exercises and "
                             "the documents to DIR (`jaxbp exercises init --help`); "
                             "generate: write exercises/ from solutions/; check: exit 1 "
                             "if exercises/ is not what generate would write")
    parser.add_argument("--solutions", default=None,
                        help="the solutions directory (default: the project's solutions/)")
    parser.add_argument("--out", default=None,
                        help="the exercises directory to write (default: the project's "
                             "exercises/)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite exercise files that hold a learner's work")


def run(args) -> int:
    if args.action == "init":  # `jaxbp exercises init DIR` itself never reaches here
        print("jaxbp exercises: init takes a folder and its own options only: "
              "jaxbp exercises init DIR [--force]", file=sys.stderr)
        return 2
    root = project_root()
    solutions = Path(args.solutions) if args.solutions else root / "solutions"
    exercises = Path(args.out) if args.out else root / "exercises"
    if not solutions.is_dir():
        print(f"jaxbp exercises: no solutions directory at {solutions}", file=sys.stderr)
        return 2
    try:
        if args.action == "check":
            problems = differences(solutions, exercises)
            for p in problems:
                print(p)
            print("exercises/ is in sync with solutions/" if not problems else
                  f"{len(problems)} file(s) out of sync: run 'jaxbp exercises generate'")
            return 1 if problems else 0
        wanted = plan(solutions, exercises)
        from jaxbp import _paths

        problem = _paths.folder_problem(exercises, "--out")
        if problem:
            print(f"jaxbp exercises: {problem}", file=sys.stderr)
            return 2
        if not args.force:
            worked = [p for p in wanted if p.exists() and not is_untouched(
                p.read_text(encoding="utf-8"), str(p))]
            if worked:
                for p in worked:
                    print(f"jaxbp exercises: {p} holds a learner's work; not overwritten "
                          f"(use --force)", file=sys.stderr)
                return 1
        exercises.mkdir(parents=True, exist_ok=True)
        for path, text in wanted.items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {os.path.relpath(path)}")
        return 0
    except (ValueError, SyntaxError) as e:
        print(f"jaxbp exercises: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that vanished or filled up while writing
        print(f"jaxbp exercises: cannot write {e.filename or exercises}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 2
