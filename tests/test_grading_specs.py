"""The grading specs: one spec module per exercise module, found by the registry."""

import argparse
import textwrap

import numpy as np
import pytest

from jaxbp import grading
from jaxbp.grading import _names, generate, registry, spec, specs

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
    # and the grader grades it, from the new spec, on a learner's file
    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / "99_extra.py").write_text("def double_backward(x, dy):\n    return 2 * dy\n",
                                      encoding="utf-8")
    result = grading.evaluate(grading.Impl(impl), exercises[-1])
    assert result.status == "passed" and result.points == result.max_points == 4


def test_the_names_read_from_the_specs_source_are_the_registrys():
    """``jaxbp grade`` checks the exercises asked for against names read from the spec
    modules' source (no JAX import): they must be the registry's, in its order."""
    assert _names.exercise_names() == [e.name for e in grading.EXERCISES]


def test_a_spec_file_added_is_read_without_running_it(tmp_path, monkeypatch):
    (tmp_path / "extra.py").write_text(
        'MODULE = "99_extra.py"\n'
        'EXERCISES = (exercise("double_backward", "a doubling", "-", ("dx",), f),)\n',
        encoding="utf-8")
    monkeypatch.setattr(specs, "__path__", [*specs.__path__, str(tmp_path)])
    assert _names.exercise_names() == [e.name for e in grading.EXERCISES] + \
        ["double_backward"]


@pytest.mark.parametrize("text", [
    'MODULE = "99_extra.py"\nEXERCISES = tuple(make())\n',
    'MODULE = "99_extra.py"\nEXERCISES = (exercise(NAME, "t", "-", ("dx",), f),)\n',
    'MODULE = "99_" + "extra.py"\nEXERCISES = ()\n',
    'EXERCISES = (\n',
    'MODULE = "99_other.py"\nEXERCISES = ()\n',  # not its own: the registry's error
])
def test_a_spec_written_otherwise_leaves_the_names_to_the_registry(tmp_path, monkeypatch,
                                                                  text):
    (tmp_path / "extra.py").write_text(text, encoding="utf-8")
    monkeypatch.setattr(specs, "__path__", [*specs.__path__, str(tmp_path)])
    assert _names.exercise_names() is None


def test_an_unknown_exercise_is_told_by_the_registry_when_the_names_cannot_be_read(
        monkeypatch, capsys):
    from jaxbp.grading import cli

    monkeypatch.setattr(_names, "exercise_names", lambda: None)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    code = cli.run(parser.parse_args(["no_such_exercise", "--impl", "solutions",
                                      "--workers", "1"]))
    assert code == 2
    assert "no exercise 'no_such_exercise'; the exercises are: sigmoid_backward" in \
        capsys.readouterr().err


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


SEEDED = ["sigmoid_backward", "half_mse_backward", "dense_backward", "sgd_update"]


def _arrays(tree):
    import jax

    return [np.asarray(a) for a in jax.tree.leaves(tree) if hasattr(a, "shape")]


def test_a_seed_changes_every_random_case_and_the_solutions_still_pass():
    published = {name: grading.BY_NAME[name].cases() for name in SEEDED}
    spec.use_seed(2024)
    try:
        for name in SEEDED:
            seeded = grading.BY_NAME[name].cases()
            assert len(seeded) == len(published[name])
            for old, new in zip(published[name], seeded):
                assert [a.shape for a in _arrays(old.args)] == [a.shape for a in _arrays(new.args)]
                assert any(not np.array_equal(a, b) for a, b in
                           zip(_arrays(old.args), _arrays(new.args))), (name, old.label)
        result = grading.evaluate(grading.Impl("solutions"), "dense_backward", documents=False)
        assert [c.name for c in result.checks if not c.passed] == ["doc002"]  # not run
    finally:
        spec.use_seed(None)
    assert grading.BY_NAME["dense_backward"].cases() is published["dense_backward"]


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_a_seed_must_be_a_non_negative_int(value):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        spec.use_seed(value)


@pytest.mark.parametrize("argv, env, expected", [
    ([], "", None), ([], "17", 17), (["--seed", "5"], "17", 5)])
def test_the_seed_comes_from_the_option_or_the_environment(monkeypatch, argv, env, expected):
    import argparse

    from jaxbp.grading import cli

    monkeypatch.setenv(cli.SEED_VARIABLE, env)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli._seed(parser.parse_args(argv)) == expected


def test_a_bad_seed_in_the_environment_is_a_usage_error(monkeypatch, capsys):
    import argparse

    from jaxbp.grading import cli

    monkeypatch.setenv(cli.SEED_VARIABLE, "many")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["1"])) == 2
    assert "JAXBP_GRADE_SEED must be a non-negative int, got 'many'" in capsys.readouterr().err
