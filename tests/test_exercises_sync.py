"""One source: ``exercises/`` is exactly what ``jaxbp exercises generate`` makes from
``solutions/``, and the exercise set is what the grader expects.
"""

import argparse
import ast
from pathlib import Path

import pytest

from jaxbp import grading
from jaxbp.grading import generate

ROOT = generate.project_root()
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"


def test_exercises_are_exactly_what_the_generator_makes_from_solutions():
    assert generate.differences(SOLUTIONS, EXERCISES) == []


@pytest.mark.parametrize("name", sorted(p.name for p in SOLUTIONS.glob("*.py")))
def test_everything_outside_the_learners_regions_is_identical(name):
    solution = (SOLUTIONS / name).read_text(encoding="utf-8").splitlines(keepends=True)
    exercise = (EXERCISES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    s_regions = generate.regions("".join(solution), name)
    e_regions = generate.regions("".join(exercise), name)
    assert [r.function for r in s_regions] == [r.function for r in e_regions]

    def outside(lines, regions):
        keep, start = [], 0
        for r in regions:
            keep += lines[start:r.begin + 1]
            start = r.end
        return keep + lines[start:]

    assert outside(solution, s_regions) == outside(exercise, e_regions)
    for r in e_regions:  # and inside, only the stub
        assert exercise[r.begin + 1:r.end] == [generate.stub_line(r.indent, r.function)]


def test_every_exercise_has_one_region_in_its_own_function_and_a_full_docstring():
    assert len(grading.EXERCISES) >= 14
    assert [e.number for e in grading.EXERCISES] == list(range(1, len(grading.EXERCISES) + 1))
    for e in grading.EXERCISES:
        text = (SOLUTIONS / e.module).read_text(encoding="utf-8")
        assert [r.function for r in generate.regions(text)].count(e.name) == 1, e.name
        fn = next(n for n in ast.parse(text).body
                  if isinstance(n, ast.FunctionDef) and n.name == e.name)
        doc = ast.get_docstring(fn)
        assert doc and doc.startswith(f"Exercise {e.number}:"), e.name
        for part in ("Source:", "Args:", "Returns:", "Derive"):
            assert part in doc, (e.name, part)


def test_the_modules_are_ordered_and_mirror_the_library_and_the_documents():
    assert list(grading.MODULES) == sorted(p.name for p in SOLUTIONS.glob("*.py"))
    numbers = [grading.MODULES.index(e.module) for e in grading.EXERCISES]
    assert numbers == sorted(numbers)  # exercise order follows the files' order


def _args(**kw):
    ns = argparse.Namespace(action="generate", solutions=str(SOLUTIONS), out=None,
                            force=False)
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_generate_writes_a_fresh_copy_and_check_agrees(tmp_path, capsys):
    out = tmp_path / "exercises"
    assert generate.run(_args(out=str(out))) == 0
    assert generate.run(_args(action="check", out=str(out))) == 0
    for path in out.glob("*.py"):
        assert path.read_text(encoding="utf-8") == (EXERCISES / path.name).read_text(
            encoding="utf-8")
    capsys.readouterr()


def test_generate_never_overwrites_a_learners_work_without_force(tmp_path, capsys):
    out = tmp_path / "exercises"
    generate.run(_args(out=str(out)))
    path = out / "01_activations.py"
    worked = path.read_text(encoding="utf-8").replace(
        'raise NotImplementedError("not done yet: sigmoid_backward")',
        "return dy * y * (1 - y)")
    path.write_text(worked, encoding="utf-8")
    assert generate.run(_args(out=str(out))) == 1
    assert "holds a learner's work" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == worked
    assert generate.run(_args(action="check", out=str(out))) == 1
    assert generate.run(_args(out=str(out), force=True)) == 0
    assert generate.is_untouched(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "without an"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n"
     "    # END SOLUTION\n", "inside the region"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n  # END SOLUTION\n", "indentation"),
])
def test_malformed_markers_are_reported_with_their_line(text, message):
    with pytest.raises(ValueError, match=message):
        generate.make_exercise(text, "bad.py")


def test_the_stub_names_its_function():
    text = 'def f(x):\n    """Doc."""\n    # BEGIN SOLUTION\n    y = x\n    return y\n' \
           '    # END SOLUTION\n'
    assert generate.make_exercise(text) == (
        'def f(x):\n    """Doc."""\n    # BEGIN SOLUTION\n'
        '    raise NotImplementedError("not done yet: f")\n    # END SOLUTION\n')


def test_the_exercise_files_are_not_a_package_and_load_by_path():
    assert not (EXERCISES / "__init__.py").exists()
    impl = grading.Impl(EXERCISES)
    fn, refusal = impl.function("03_dense.py", "dense_backward")
    assert refusal is None and fn.__name__ == "dense_backward"
    assert Path(impl.root) == EXERCISES.resolve()
