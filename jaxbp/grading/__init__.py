"""Grading the exercises: checks against autodiff and the documents, with feedback.

``evaluate(Impl("solutions"), "dense_backward")`` runs every check of one exercise and
returns its points and feedback; the pytest grading tests
(``tests/test_exercises_grading.py``) and ``jaxbp grade`` are built on it.
"""

from jaxbp.grading._evaluate import (CheckResult, ExerciseResult, evaluate, evaluate_all,
                                     summarize)
from jaxbp.grading.registry import BY_NAME, EXERCISES, MODULES
from jaxbp.grading.spec import Exercise
from jaxbp.grading._guard import DEFAULT_TIME_LIMIT
from jaxbp.grading._impl import Impl, ImplError

__all__ = ["BY_NAME", "CheckResult", "DEFAULT_TIME_LIMIT", "EXERCISES", "Exercise",
           "ExerciseResult", "Impl", "ImplError", "MODULES", "evaluate", "evaluate_all",
           "summarize"]
