"""The grading tests: every check of every exercise, on the implementation ``--impl`` names.

A thin wrapper over the grader (:func:`jaxbp.grading.evaluate`, the engine ``jaxbp
grade`` runs): the project's own run grades ``solutions/``, where every check must pass.
One test per exercise and check; a failing test's message is the grader's feedback.
``pytest tests/test_exercises_grading.py --impl exercises`` (or a path) grades another
copy; to grade a learner's work, prefer ``jaxbp grade``, which runs the grader of the
installed package rather than these files. ``JAXBP_GRADE_TIME_LIMIT`` sets the seconds
one call may run.
"""

import os

import pytest

from jaxbp import grading

CHECKS = [(e.name, check) for e in grading.EXERCISES for check, _ in e.checks]


@pytest.fixture(scope="module")
def graded(request):
    """``graded(name)``: the exercise's result, evaluated once per test session."""
    impl = grading.Impl(request.config.getoption("--impl"))
    limit = float(os.environ.get("JAXBP_GRADE_TIME_LIMIT", grading.DEFAULT_TIME_LIMIT))
    results = {}

    def get(name):
        if name not in results:
            results[name] = grading.evaluate(impl, name, limit)
        return results[name]

    return get


@pytest.mark.parametrize("exercise, check", CHECKS, ids=[f"{e}-{c}" for e, c in CHECKS])
def test_exercise(exercise, check, graded, record_property):
    result = graded(exercise).check(check)
    record_property("jaxbp_grading", {"exercise": exercise, **result.to_dict()})
    if not result.passed:
        pytest.fail(f"{exercise} [{check}] {result.feedback}", pytrace=False)
