"""Grading the exercises: checks against autodiff and the documents, with feedback.

``evaluate(Impl("solutions"), "dense_backward")`` runs every check of one exercise (the
learner's function runs in the grading worker, a sandboxed process of its own) and
returns its points and feedback; ``jaxbp grade`` and the pytest grading tests
(``tests/test_exercises_grading.py``) are built on it. The exercises come from the spec
modules in ``jaxbp/grading/specs/`` (:mod:`jaxbp.grading.registry`).
"""

import importlib

# Public names load on first use (PEP 562), so that `jaxbp grade --help` and argument
# errors answer before JAX is imported.
_EXPORTS = {
    "CheckResult": "_evaluate", "ExerciseResult": "_evaluate", "evaluate": "_evaluate",
    "evaluate_all": "_evaluate", "summarize": "_evaluate", "Impl": "_impl",
    "ImplError": "_impl", "DEFAULT_TIME_LIMIT": "_sandbox", "Sandbox": "_sandbox",
    "BY_NAME": "registry", "EXERCISES": "registry", "MODULES": "registry",
    "Exercise": "spec",
}

__all__ = ["BY_NAME", "CheckResult", "DEFAULT_TIME_LIMIT", "EXERCISES", "Exercise",
           "ExerciseResult", "Impl", "ImplError", "MODULES", "Sandbox", "evaluate",
           "evaluate_all", "summarize"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"jaxbp.grading.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxbp.grading' has no attribute {name!r}")
