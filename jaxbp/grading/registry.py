"""The exercise set: every spec module in ``jaxbp/grading/specs/``, in the modules' order.

A spec module ``specs/<topic>.py`` grades the exercise module ``NN_<topic>.py`` (its
``MODULE``) and lists that module's exercises (``EXERCISES``) in the module's order.
The set is ordered by module, and each exercise's number is its place in it, so adding
an exercise is adding its function to a ``solutions/`` module and its spec to that
module's spec file (or a new spec file for a new module): the generator, the grader,
the command and the tests find it here.
"""

from __future__ import annotations

import dataclasses
import importlib

from jaxbp.grading import specs
from jaxbp.grading._names import MODULE_NAME, spec_modules
from jaxbp.grading.spec import Exercise


class SpecError(Exception):
    """A spec module that does not say what it grades, or says it twice."""


def load() -> tuple[Exercise, ...]:
    """Every exercise of every spec module, numbered in order.

    Raises:
      SpecError: a spec module without ``MODULE`` or ``EXERCISES``, a ``MODULE`` that is
        not ``NN_<the spec's name>.py``, two specs for one module, or one exercise name
        twice.
    """
    found = []
    for info in spec_modules():
        mod = importlib.import_module(f"{specs.__name__}.{info.name}")
        module = getattr(mod, "MODULE", None)
        exercises = getattr(mod, "EXERCISES", None)
        if not isinstance(module, str) or not isinstance(exercises, tuple):
            raise SpecError(f"spec module {mod.__name__} must define MODULE (a string, "
                            f"e.g. '01_activations.py') and EXERCISES (a tuple)")
        m = MODULE_NAME.match(module)
        if not m or m.group(2) != info.name:
            raise SpecError(f"spec module {mod.__name__}: MODULE must be "
                            f"'NN_{info.name}.py' (the exercise module it grades), got "
                            f"{module!r}")
        found.append((int(m.group(1)), module, exercises))
    found.sort(key=lambda t: (t[0], t[1]))
    modules = [f[1] for f in found]
    if len(set(modules)) != len(modules) or len({f[0] for f in found}) != len(found):
        raise SpecError(f"two spec modules grade modules with one number: {modules}")
    out, names = [], set()
    for _, module, exercises in found:
        for e in exercises:
            if e.name in names:
                raise SpecError(f"exercise {e.name!r} is in two spec modules")
            names.add(e.name)
            out.append(dataclasses.replace(e, number=len(out) + 1, module=module))
    return tuple(out)


EXERCISES: tuple[Exercise, ...] = load()
BY_NAME: dict[str, Exercise] = {e.name: e for e in EXERCISES}
MODULES: tuple[str, ...] = tuple(dict.fromkeys(e.module for e in EXERCISES))
