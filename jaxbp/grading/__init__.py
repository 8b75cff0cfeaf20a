"""Grading the exercises: checks against autodiff and the documents, with feedback.

``evaluate(Impl("solutions"), "dense_backward")`` runs every check of one exercise (the
learner's function runs in the grading worker, a sandboxed process of its own) and
returns its points and feedback; ``jaxbp grade`` and the pytest grading tests
(``tests/test_exercises_grading.py``) are built on it. The exercises come from the spec
modules in ``jaxbp/grading/specs/`` (:mod:`jaxbp.grading.registry`).
"""

from jaxbp.grading._evaluate import (CheckResult, ExerciseResult, evaluate, evaluate_all,
                                     summarize)
from jaxbp.grading._impl import Impl, ImplError
from jaxbp.grading._sandbox import DEFAULT_TIME_LIMIT, Sandbox
from jaxbp.grading.registry import BY_NAME, EXERCISES, MODULES
from jaxbp.grading.spec import Exercise

__all__ = ["BY_NAME", "CheckResult", "DEFAULT_TIME_LIMIT", "EXERCISES", "Exercise",
           "ExerciseResult", "Impl", "ImplError", "MODULES", "Sandbox", "evaluate",
           "evaluate_all", "summarize"]
