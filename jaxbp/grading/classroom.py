"""``jaxbp classroom init``: the GitHub Classroom workflow that grades with jaxbp.

The workflow installs jaxbp (from a package index or a source the instructor names,
never from the student's repository), runs ``jaxbp grade`` from outside the checkout on
the student's ``exercises/``, and hands the payload (``--format classroom``: one test
per check, with its points) to GitHub Classroom's reporter.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

WORKFLOW = Path(".github") / "workflows" / "classroom.yml"

TEMPLATE = """\
# Written by `jaxbp classroom init`. GitHub Classroom runs it on every push: it installs
# jaxbp's grader (never from this repository), grades {impl}/ and reports the points.
name: Autograding Tests
"on":
  - push
  - repository_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: "{python}"
      - name: Install the grader
        run: python -m pip install "{install}"
      - name: Grade
        id: jaxbp
        env:
          # Optional: a repository or organization secret that changes every random case.
          JAXBP_GRADE_SEED: ${{{{ secrets.JAXBP_GRADE_SEED }}}}
        run: |
          cd "$RUNNER_TEMP"  # outside the checkout: nothing in it is imported or run here
          jaxbp grade --impl "$GITHUB_WORKSPACE/{impl}" --format classroom \\
            --output result.b64 {options}|| true
          echo "result=$(cat result.b64)" >> "$GITHUB_OUTPUT"
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
          JAXBP_RESULTS: "${{{{ steps.jaxbp.outputs.result }}}}"
        with:
          runners: jaxbp
"""


def installed_requirement() -> str:
    """``jaxbp==VERSION`` for the jaxbp running this command."""
    try:
        return f"jaxbp=={importlib.metadata.version('jaxbp')}"
    except importlib.metadata.PackageNotFoundError:
        return "jaxbp"


def workflow(impl: str = "exercises", install: str | None = None, python: str = "3.11",
             time_limit: float | None = None) -> str:
    """The workflow's text.

    Args:
      impl: the folder of the student's repository to grade.
      install: what ``pip install`` installs (default: this version of jaxbp, e.g.
        ``jaxbp==0.1.0``; or ``git+https://...`` for a fork).
      python: the Python version to set up.
      time_limit: ``--time-limit`` for ``jaxbp grade`` (default: its own).
    """
    for name, value in (("impl", impl), ("install", install or ""), ("python", python)):
        if re.search(r"[\"'`$\n\\]", value):
            raise ValueError(f"--{name} must not hold quotes, backslashes, '$' or newlines, "
                             f"got {value!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"--time-limit must be a positive number of seconds, got "
                         f"{time_limit:g}")
    options = f"--time-limit {time_limit:g} " if time_limit else ""
    return TEMPLATE.format(impl=impl.strip("/") or ".", install=install or
                           installed_requirement(), python=python, options=options)


def add_arguments(parser):
    parser.add_argument("action", choices=["init"],
                        help="init: write .github/workflows/classroom.yml")
    parser.add_argument("--dir", default=".",
                        help="the assignment's template repository (default: here)")
    parser.add_argument("--impl", default="exercises",
                        help="the folder to grade, in the student's repository (default: "
                             "exercises)")
    parser.add_argument("--install", default=None,
                        help="what the workflow pip-installs (default: this version, "
                             f"{installed_requirement()})")
    parser.add_argument("--python", default="3.11", help="the Python version (default 3.11)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="passed to jaxbp grade")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing workflow")


def run(args) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        print(f"jaxbp classroom: no directory {root}", file=sys.stderr)
        return 2
    path = root / WORKFLOW
    if path.exists() and not args.force:
        print(f"jaxbp classroom: {path} exists; not overwritten (use --force)",
              file=sys.stderr)
        return 1
    try:
        text = workflow(args.impl, args.install, args.python, args.time_limit)
    except ValueError as e:
        print(f"jaxbp classroom: {e}", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: GitHub Classroom grades {args.impl}/ with `jaxbp grade` on every "
          f"push (set the assignment's points to the report's maximum)")
    return 0
