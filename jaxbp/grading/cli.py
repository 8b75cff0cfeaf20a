"""``jaxbp grade``: grade the exercises and print a table of points.

Runs the pytest grading tests (``tests/test_exercises_grading.py``) in this process,
with a small plugin that collects each check's result, so the points are exactly those
of the tests. Where the tests are not installed (jaxbp installed from a wheel), the same
checks run directly. Exit status: 0 at full marks, 1 otherwise, 2 for a usage error;
a CI autograder reads ``--json``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path

TEST_FILE = Path("tests") / "test_exercises_grading.py"


def add_arguments(parser):
    parser.add_argument("exercises", nargs="*", metavar="EXERCISE",
                        help="exercises to grade, by name or number (default: all)")
    parser.add_argument("--impl", default="exercises",
                        help="what to grade: 'exercises' (default), 'solutions', or the "
                             "path to your copy of exercises/")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the report as JSON to FILE")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="seconds one call of your function may run, JAX's "
                             "compilation not counted (default 10)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every check, passed or not, and the exercises not "
                             "done yet (without -v: every check that did not pass)")


def _select(names, exercises):
    chosen = []
    for token in names:
        if token.isdigit() and 1 <= int(token) <= len(exercises):
            chosen.append(exercises[int(token) - 1].name)
        elif token in {e.name for e in exercises}:
            chosen.append(token)
        else:
            known = ", ".join(e.name for e in exercises)
            raise ValueError(f"no exercise {token!r}; the exercises are: {known}")
    return list(dict.fromkeys(chosen)) or [e.name for e in exercises]


class _Collector:
    """A pytest plugin that keeps each grading test's recorded result."""

    def __init__(self):
        self.results: dict[tuple[str, str], dict] = {}
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report):
        for key, value in report.user_properties:
            if key == "jaxbp_grading":
                self.results[(value["exercise"], value["name"])] = value
        if report.failed and report.when != "call":
            self.errors.append(f"{report.nodeid} ({report.when}): {report.longreprtext}")

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(str(report.longrepr))


def _via_pytest(test_file: Path, impl_root: Path, names, exercises_by_name):
    import pytest

    nodes = [f"{test_file}::test_exercise[{name}-{check}]"
             for name in names for check, _ in exercises_by_name[name].checks]
    collector = _Collector()
    args = [*nodes, "--impl", str(impl_root), "-p", "no:cacheprovider", "-p", "no:terminal",
            "-o", "addopts=--strict-markers", "--rootdir", str(test_file.parents[1])]
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(args, plugins=[collector])
    if code not in (0, 1):
        collector.errors.append(f"pytest exited with status {int(code)}")
    return collector


def _directly(impl, names, time_limit):
    import jax

    from jaxbp import grading

    jax.config.update("jax_numpy_rank_promotion", "raise")  # as the tests run
    results = {}
    for name in names:
        for c in grading.evaluate(impl, name, time_limit).checks:
            results[(name, c.name)] = c.to_dict()
    return results


def run(args) -> int:
    from jaxbp import grading
    from jaxbp.grading import _report
    from jaxbp.grading.generate import project_root

    start = time.perf_counter()
    try:
        names = _select(args.exercises, grading.EXERCISES)
        impl = grading.Impl(args.impl)
    except (ValueError, grading.ImplError) as e:
        print(f"jaxbp grade: {e}", file=sys.stderr)
        return 2
    limit = args.time_limit if args.time_limit is not None else grading.DEFAULT_TIME_LIMIT
    test_file = project_root() / TEST_FILE
    errors = []
    if test_file.exists():
        saved = os.environ.get("JAXBP_GRADE_TIME_LIMIT")
        os.environ["JAXBP_GRADE_TIME_LIMIT"] = str(limit)
        try:
            collector = _via_pytest(test_file, impl.root, names, grading.BY_NAME)
        finally:
            if saved is None:
                os.environ.pop("JAXBP_GRADE_TIME_LIMIT", None)
            else:
                os.environ["JAXBP_GRADE_TIME_LIMIT"] = saved
        results, errors = collector.results, collector.errors
    else:
        results = _directly(impl, names, limit)
    rows = [_report.Row(name, [results[(name, check)] for check, _ in
                               grading.BY_NAME[name].checks if (name, check) in results])
            for name in names]
    print(f"grading {impl.root}")
    print(_report.table(rows))
    more = _report.details(rows, everything=args.verbose)
    if more:
        print("\n" + more)
    for e in errors:
        print(f"\njaxbp grade: the grading tests reported an error:\n{e}", file=sys.stderr)
    if args.json:
        _report.write_json(rows, args.json)
    score = sum(r.points for r in rows)
    max_score = sum(r.max_points for r in rows)
    print(f"\n{score}/{max_score} points in {time.perf_counter() - start:.1f} s"
          + ("" if score == max_score else
             "; `jaxbp grade NAME` grades one exercise, -v lists every check"))
    return 0 if score == max_score and not errors else 1
