"""The grading specs: one spec module per exercise module, found by the registry."""

import textwrap

import pytest

from jaxbp import grading
from jaxbp.grading import generate, registry, specs

ROOT = generate.project_root()


def test_every_exercise_module_has_its_spec_module_and_nothing_else():
    solutions = sorted(p.name for p in (ROOT / "solutions").glob("*.py"))
    assert list(grading.MODULES) == solutions
    spec_files = sorted(p.stem for p in (ROOT / "jaxbp" / "grading" / "specs").glob("*.py")
                        if not p.name.startswith("_"))
    assert spec_files == sorted(name.split("_", 1)[1][:-3] for name in solutions)


def test_the_registry_numbers_the_exercises_in_the_modules_order():
    numbers = [e.number for e in grading.EXERCISES]
    assert numbers == list(range(1, len(grading.EXERCISES) + 1))
    order = [grading.MODULES.index(e.module) for e in grading.EXERCISES]
    assert order == sorted(order)
    assert grading.BY_NAME["dense_backward"].module == "03_dense.py"


def test_an_instructor_adds_an_exercise_by_adding_a_spec_file(tmp_path, monkeypatch):
    (tmp_path / "extra.py").write_text(textwrap.dedent('''
        import jax.numpy as jnp
        from jaxbp.grading.spec import Case, exercise, f64

        MODULE = "99_extra.py"

        def _cases():
            x = f64([[1.0, -2.0]])
            return [Case("x (1, 2)", (x, x), 2 * x)]

        EXERCISES = (exercise("double_backward", "a doubling", "-", ("dx",), _cases),)
    '''), encoding="utf-8")
    monkeypatch.setattr(specs, "__path__", [*specs.__path__, str(tmp_path)])
    exercises = registry.load()
    assert exercises[-1].name == "double_backward"
    assert exercises[-1].number == len(grading.EXERCISES) + 1
    assert exercises[-1].module == "99_extra.py"
    assert [e.name for e in exercises[:-1]] == [e.name for e in grading.EXERCISES]


@pytest.mark.parametrize("text, message", [
    ("EXERCISES = ()\n", "must define MODULE"),
    ("MODULE = '98_other.py'\nEXERCISES = ()\n", "MODULE must be 'NN_broken.py'"),
    ("MODULE = '03_broken.py'\nEXERCISES = ()\n", "two spec modules grade modules with one"),
])
def test_a_malformed_spec_module_is_named(tmp_path, monkeypatch, text, message):
    (tmp_path / "broken.py").write_text(text, encoding="utf-8")
    monkeypatch.setattr(specs, "__path__", [*specs.__path__, str(tmp_path)])
    import sys
    monkeypatch.delitem(sys.modules, "jaxbp.grading.specs.broken", raising=False)
    with pytest.raises(registry.SpecError, match=message):
        registry.load()
