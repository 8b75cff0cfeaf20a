"""``jaxbp grade``: grade the exercises and print a table of points.

The grader is this installed package: its checks, the cases and the answers come from
``jaxbp.grading`` and its spec modules, never from the folder being graded. The
learner's code runs only in the grading worker (see ``jaxbp.grading._sandbox``); this
process compares, scores, writes every report and sets the exit status, after the
learner's code has stopped.

Exit status: 0 at full marks, 1 otherwise, 2 for a usage error, 3 when the grading
itself failed (the worker could not start, or the grader's own files changed while it
ran). Reports for machines: ``--json FILE`` (jaxbp's own), ``--format classroom``
(GitHub Classroom's reporter, base64) and ``--format gradescope`` (``results.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

FORMATS = ("table", "json", "classroom", "gradescope")
SEED_VARIABLE = "JAXBP_GRADE_SEED"


MAX_WORKERS = 4  # each worker is a Python process with JAX loaded (about 300 MB)


def default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def add_arguments(parser):
    parser.add_argument("exercises", nargs="*", metavar="EXERCISE",
                        help="exercises to grade, by name or number (default: all)")
    parser.add_argument("--impl", default="exercises",
                        help="what to grade: 'exercises' (default), 'solutions', or the "
                             "path to your copy of exercises/")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the report as JSON to FILE")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="the report to write: 'table' (default, for people), 'json', "
                             "'classroom' (GitHub Classroom's reporter payload, base64) or "
                             "'gradescope' (results.json); to --output FILE, or else to "
                             "stdout, the table then going to stderr")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="where --format writes its report")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="seconds importing your file or one call of your function "
                             "may run, JAX's compilation not counted (default 10)")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"instructors: a seed that changes every random case (default: "
                             f"${SEED_VARIABLE}, else the published cases)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the full feedback of every check that did not pass")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help=f"exercises graded at once, each in a sandboxed worker of "
                             f"its own (default: the cores, at most {MAX_WORKERS})")


def _select(tokens, names):
    """The exercises ``tokens`` (names or numbers from 1) choose, in ``names`` (every
    exercise's name, in order); all of them when there are no tokens."""
    chosen = []
    for token in tokens:
        if token.isdigit() and 1 <= int(token) <= len(names):
            chosen.append(names[int(token) - 1])
        elif token in names:
            chosen.append(token)
        else:
            raise ValueError(f"no exercise {token!r}; the exercises are: "
                             f"{', '.join(names)}")
    return list(dict.fromkeys(chosen)) or list(names)


def _seed(args) -> int | None:
    text = os.environ.get(SEED_VARIABLE, "").strip()
    if args.seed is not None:
        value = args.seed
    elif text:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"${SEED_VARIABLE} must be a non-negative int, got "
                             f"{text!r}") from None
    else:
        return None
    if value < 0:
        raise ValueError(f"--seed must be a non-negative int, got {value}")
    return value


def _check_outputs(args):
    """The reports' files can be written (told before grading, not as a traceback
    after it), and --output has a report to take."""
    from jaxbp import _paths

    if args.output is not None and args.format == "table":
        raise ValueError("--output is where --format json, classroom or gradescope "
                         "writes its report; the table goes to the terminal")
    for value, option in ((args.json, "--json"), (args.output, "--output")):
        problem = _paths.file_problem(value, option) if value is not None else None
        if problem:
            raise ValueError(problem)


def grader_files() -> dict[str, str]:
    """The sha256 of every file of the installed jaxbp package (the grader's code)."""
    import jaxbp

    root = Path(jaxbp.__file__).resolve().parent
    out = {}
    for path in sorted(root.rglob("*.py")):
        try:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            out[str(path)] = "unreadable"
    return out


def _changed(before: dict[str, str]) -> list[str]:
    after = grader_files()
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _preload():
    """Imports every module the grader uses before any of the learner's code runs, so
    that nothing the learner's code could write is loaded into the grader afterwards."""
    import importlib
    import pkgutil

    import jaxbp
    import jaxbp.notes

    for info in pkgutil.walk_packages(jaxbp.notes.__path__, "jaxbp.notes."):
        importlib.import_module(info.name)
    del jaxbp


def cache_references(sandbox) -> str | None:
    """Keeps the grader's own programs (the references) in JAX's persistent cache, where
    Landlock confines the learner's code to its job's folder; returns the folder, or
    None. The worker's env has no cache; but without Landlock the learner's code could
    write where the grader reads its references, so then nothing is cached (and JAX
    computes no cache keys: :func:`jaxbp._cache.disable`)."""
    from jaxbp import _cache
    from jaxbp.grading import _worker

    if not (sandbox.landlock and _worker.landlock_abi() >= 1):
        _cache.disable()
        return None
    return _cache.enable()


def run(args) -> int:
    # The grader compiles many small functions once each (the cases' answers): XLA's
    # quick compilation saves a third of its time. Read when JAX's backend starts (the
    # first computation, below); a backend already started keeps its flags.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()
    # before importing JAX
    if args.time_limit is not None and not 0 < args.time_limit < float("inf"):
        print(f"jaxbp grade: --time-limit must be a positive number of seconds, got "
              f"{args.time_limit:g}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"jaxbp grade: --workers must be a positive int, got {args.workers}",
              file=sys.stderr)
        return 2
    from jaxbp.grading import _impl, _names  # import no JAX

    # A wrong --impl, exercise or seed is told before any worker starts or JAX is
    # imported: the exercises' names are read from the spec modules' source.
    try:
        impl = _impl.Impl(args.impl)
    except _impl.ImplError as e:
        print(f"jaxbp grade: {e}", file=sys.stderr)
        return 2
    names = _names.exercise_names()
    try:
        if names is not None:
            _select(args.exercises, names)
        _seed(args)
        _check_outputs(args)
    except ValueError as e:
        print(f"jaxbp grade: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    # The worker imports JAX in its own process: started first, that import runs while
    # this process imports JAX too, instead of after it (half of a one-exercise run).
    from jaxbp.grading import _sandbox  # imports no JAX

    sandbox = _sandbox.Sandbox()
    try:
        sandbox.start()
    except Exception:  # noqa: BLE001 - started again when needed, which then reports
        pass
    cache_references(sandbox)
    from jaxbp import grading
    from jaxbp.grading import _report, spec

    try:
        names = _select(args.exercises, [e.name for e in grading.EXERCISES])
        seed = _seed(args)
    except ValueError as e:
        sandbox.close()
        print(f"jaxbp grade: {e}", file=sys.stderr)
        return 2
    limit = args.time_limit if args.time_limit is not None else grading.DEFAULT_TIME_LIMIT
    before = grader_files()
    spec.use_seed(seed)
    error = None
    try:
        _preload()
        results = grading.evaluate_all(impl, names, limit, sandbox=sandbox,
                                       workers=args.workers or default_workers())
    except _sandbox.SandboxError as e:
        print(f"jaxbp grade: {e}", file=sys.stderr)
        return 3
    finally:
        sandbox.close()
    changed = _changed(before)
    if changed:
        error = (f"the grader's own files changed while it ran ({', '.join(changed[:3])}"
                 f"{'...' if len(changed) > 3 else ''}): this grade cannot be trusted")
    rows = [_report.Row(r.name, [c.to_dict() for c in r.checks], r.seconds)
            for r in results]
    seconds = time.perf_counter() - start
    machine = None
    if args.format == "json":
        machine = json.dumps(_report.to_json(rows), indent=2, ensure_ascii=False) + "\n"
    elif args.format == "classroom":
        machine = _report.classroom_base64(rows, error) + "\n"
    elif args.format == "gradescope":
        machine = json.dumps(_report.gradescope(rows, seconds, error), indent=2,
                             ensure_ascii=False) + "\n"
    human = sys.stdout if machine is None or args.output else sys.stderr
    where = f"grading {impl.root}" + (f" (seed {seed})" if seed is not None else "")
    print(where, file=human)
    print(_report.table(rows), file=human)
    more = _report.details(rows, everything=args.verbose)
    if more:
        print("\n" + more, file=human)
    score = sum(r.points for r in rows)
    max_score = sum(r.max_points for r in rows)
    print(f"\n{score}/{max_score} points in {seconds:.1f} s"
          + ("" if score == max_score else
             "; `jaxbp grade NAME` grades one exercise, -v shows every failing check"),
          file=human)
    if args.json:
        _report.write_json(rows, args.json)
    if machine is not None:
        if args.output:
            Path(args.output).write_text(machine, encoding="utf-8")
        else:
            sys.stdout.write(machine)
    if error:
        print(f"jaxbp grade: {error}", file=sys.stderr)
        return 3
    return 0 if score == max_score else 1
