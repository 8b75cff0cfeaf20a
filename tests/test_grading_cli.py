"""``jaxbp grade``: the table, the JSON report and the exit status an autograder reads,
and a learner's first exercise, as the README tells it, from fill-in to pass."""

import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

from jaxbp import grading
from jaxbp.grading import cli, generate

ROOT = generate.project_root()


def jaxbp_grade(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONWARNINGS="error::DeprecationWarning")
    proc = subprocess.run([sys.executable, "-m", "jaxbp", "grade", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
def test_untouched_exercises_score_zero_with_not_done_yet_and_no_traceback(tmp_path):
    # one worker: a second would import JAX to run nothing (every exercise a stub)
    code, out, err = jaxbp_grade("--impl", "exercises", "--workers", "1",
                                 "--json", str(tmp_path / "g.json"))
    assert code == 1
    report = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert report["score"] == 0
    assert report["max_score"] == sum(e.max_points for e in grading.EXERCISES)
    assert [e["name"] for e in report["exercises"]] == [e.name for e in grading.EXERCISES]
    for e in report["exercises"]:
        assert set(e) >= {"name", "points", "max_points", "status", "feedback"}
        assert e["status"] == "not done yet" and e["points"] == 0
    assert out.count("not done yet") >= 2 * len(grading.EXERCISES)  # status and feedback
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_a_learner_fills_one_exercise_and_sees_it_pass(tmp_path):
    # README: copy exercises/, write sigmoid_backward between the markers, grade it.
    mine = tmp_path / "my_exercises"
    shutil.copytree(ROOT / "exercises", mine)
    path = mine / "01_activations.py"
    text = path.read_text(encoding="utf-8")
    stub = '    raise NotImplementedError("not done yet: sigmoid_backward")\n'
    assert stub in text
    path.write_text(text.replace(stub, "    return dy * y * (1 - y)\n"), encoding="utf-8")
    code, out, err = jaxbp_grade("sigmoid_backward", "--impl", str(mine),
                                 "--json", str(tmp_path / "g.json"), cwd=tmp_path)
    assert code == 0, out + err
    row = next(line for line in out.splitlines() if "sigmoid_backward" in line)
    assert "5/5" in row and "passed" in row
    report = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert report["score"] == report["max_score"] == 5


@pytest.mark.slow
def test_solutions_get_full_marks_and_a_loop_is_stopped(tmp_path):
    mine = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", mine)
    path = mine / "01_activations.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    return jnp.where(x > 0, dy, jnp.zeros((), dy.dtype))\n",
                                 "    while True:\n        pass\n"), encoding="utf-8")
    code, out, err = jaxbp_grade("dense_backward", "relu_backward", "--impl", str(mine),
                                 "--time-limit", "0.5", "--json", str(tmp_path / "g.json"))
    assert code == 1
    report = {e["name"]: e for e in json.loads((tmp_path / "g.json").read_text())["exercises"]}
    assert report["dense_backward"]["points"] == report["dense_backward"]["max_points"]
    assert report["relu_backward"]["status"] == "timeout"
    assert report["relu_backward"]["feedback"].startswith("stopped after 0.5 s")
    assert "Traceback" not in out + err


def test_a_huge_time_limit_is_no_limit_not_a_crash():
    """The worker's CPU limit grows with the time limit: past what the kernel takes it
    is capped (it killed the worker, and the solutions scored 0)."""
    result = grading.evaluate(grading.Impl("solutions"), "relu_backward", time_limit=1e300)
    assert result.status == "passed" and result.points == result.max_points


@pytest.mark.slow
def test_grading_in_parallel_workers_gives_the_sequential_report(tmp_path):
    """Two workers at once (the default on 2 cores) and one give the same JSON report,
    on an answer that passes, one that is wrong, one that loops and one not done."""
    mine = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", mine)
    path = mine / "01_activations.py"
    text = path.read_text(encoding="utf-8")
    for old, new in [("    return jnp.where(x > 0, dy, jnp.zeros((), dy.dtype))\n",
                      "    while True:\n        pass\n"),
                     ("    return dy * (1 - y * y)\n", "    return dy * (1 - y)\n")]:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "exercises" / "03_dense.py", mine / "03_dense.py")
    reports = []
    for workers in ("1", "2"):
        out = tmp_path / f"g{workers}.json"
        code = _run(["1", "2", "3", "9", "--impl", str(mine), "--time-limit", "0.5",
                     "--workers", workers, "--json", str(out)], None, tmp_path)
        assert code == 1
        reports.append(json.loads(out.read_text(encoding="utf-8")))
    assert reports[0] == reports[1]
    status = {e["name"]: e["status"] for e in reports[0]["exercises"]}
    assert status == {"sigmoid_backward": "passed", "tanh_backward": "partial",
                      "relu_backward": "timeout", "dense_backward": "not done yet"}


def _run(argv, monkeypatch, tmp_path):
    """``jaxbp grade`` in this process."""
    del monkeypatch, tmp_path
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_grade_selects_exercises_by_number_and_name(monkeypatch, tmp_path, capsys):
    code = _run(["1", "tanh_backward", "--impl", "exercises", "--workers", "1", "--json",
                 str(tmp_path / "g.json")], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert code == 1
    report = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in report["exercises"]] == ["sigmoid_backward", "tanh_backward"]
    assert report["score"] == 0 and "not done yet" in out and "total" in out


@pytest.mark.parametrize("argv, message", [
    (["no_such_exercise"], "no exercise 'no_such_exercise'; the exercises are:"),
    (["--impl", "/no/such/dir"], "--impl: no directory"),
    (["--workers", "0"], "--workers must be a positive int, got 0"),
])
def test_usage_errors_exit_2(monkeypatch, tmp_path, capsys, argv, message):
    assert _run(argv, monkeypatch, tmp_path) == 2
    assert message in capsys.readouterr().err


def test_the_command_is_registered():
    from jaxbp.cli import COMMANDS
    assert COMMANDS["grade"][0] == "jaxbp.grading.cli"
    assert COMMANDS["exercises"][0] == "jaxbp.grading.generate"


@pytest.mark.parametrize("abi,confined,cached", [(7, True, True), (0, True, False),
                                                 (7, False, False)])
def test_the_references_are_cached_only_where_landlock_confines_the_learner(
        monkeypatch, abi, confined, cached):
    """Without Landlock a learner's code could write compiled programs where the grader
    reads its references: the grader then caches nothing."""
    from jaxbp import _cache
    from jaxbp.grading import _worker

    calls = []
    monkeypatch.setattr(_worker, "landlock_abi", lambda: abi)
    monkeypatch.setattr(_cache, "enable", lambda: calls.append("enable") or "/cache")
    monkeypatch.setattr(_cache, "disable", lambda: calls.append("disable"))
    sandbox = argparse.Namespace(landlock=confined)
    assert cli.cache_references(sandbox) == ("/cache" if cached else None)
    assert calls == ["enable" if cached else "disable"]


def test_landlock_abi_is_the_kernels_version_or_zero():
    from jaxbp.grading import _worker

    abi = _worker.landlock_abi()
    assert isinstance(abi, int) and abi >= 0
    if not sys.platform.startswith("linux"):
        assert abi == 0
