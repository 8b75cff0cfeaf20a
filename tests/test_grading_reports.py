"""Reports other tools read: GitHub Classroom's reporter payload, Gradescope's
results.json, jaxbp's own JSON, and the workflow ``jaxbp classroom init`` writes."""

import argparse
import base64
import json
import shutil

import pytest

from jaxbp import grading
from jaxbp.grading import _report, classroom, cli, generate

ROOT = generate.project_root()
CLASSROOM_TEST_KEYS = {"name", "status", "score", "message", "test_code", "filename",
                       "line_no", "duration"}


def _rows():
    """Two exercises as the grader reports them: one partial, one refused."""
    check = lambda name, pts, mx, status, feedback="": {  # noqa: E731
        "name": name, "points": pts, "max_points": mx, "status": status,
        "feedback": feedback, "mistake": None}
    return [
        _report.Row("dense_backward", [
            check("shapes", 1, 1, "passed"), check("values_dx", 1, 1, "passed"),
            check("values_dw", 0, 1, "failed", "transposed: ..."),
            check("values_db", 1, 1, "passed"), check("doc002", 0, 1, "failed", "..."),
            check("jit", 1, 1, "passed")], 2.4),
        _report.Row("relu_backward", [
            check(name, 0, pts, "timeout", "stopped after 10 s") for name, pts in
            grading.BY_NAME["relu_backward"].checks], 10.2),
    ]


def test_the_classroom_payload_has_the_reporters_shape_with_partial_points():
    rows = _rows()
    payload = _report.classroom(rows)
    assert set(payload) == {"version", "status", "max_score", "tests"}
    assert payload["version"] == 1 and payload["status"] == "fail"
    assert payload["max_score"] == sum(r.max_points for r in rows) == 6 + 4
    assert len(payload["tests"]) == sum(len(r.checks) for r in rows)
    for test in payload["tests"]:
        assert set(test) == CLASSROOM_TEST_KEYS
        assert test["status"] in ("pass", "fail", "error")
        assert isinstance(test["score"], int) and isinstance(test["duration"], int)
        assert test["line_no"] == 0
    assert sum(t["score"] for t in payload["tests"]) == sum(r.points for r in rows) == 4
    first = payload["tests"][0]
    assert first["name"] == "09 dense_backward [shapes]" and first["status"] == "pass"
    assert {t["status"] for t in payload["tests"] if "relu" in t["name"]} == {"error"}
    decoded = json.loads(base64.b64decode(_report.classroom_base64(rows)))
    assert decoded == payload


def test_the_classroom_status_is_pass_only_at_full_marks_and_error_when_grading_failed():
    full = [_report.Row("sigmoid_backward", [
        {"name": n, "points": p, "max_points": p, "status": "passed", "feedback": ""}
        for n, p in grading.BY_NAME["sigmoid_backward"].checks])]
    assert _report.classroom(full)["status"] == "pass"
    failed = _report.classroom(full, error="the grader's own files changed")
    assert failed["status"] == "error" and "files changed" in failed["message"]


def test_the_gradescope_results_have_its_shape():
    rows = _rows()
    results = _report.gradescope(rows, 12.6)
    assert set(results) >= {"score", "execution_time", "tests"}
    assert results["score"] == 4 and results["execution_time"] == 13
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert test["visibility"] == "visible" and 0 <= test["score"] <= test["max_score"]
    assert sum(t["max_score"] for t in results["tests"]) == 10
    assert sum(t["score"] for t in results["tests"]) == results["score"]


def _cli(argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


@pytest.fixture(scope="module")
def graded_files(tmp_path_factory):
    """``jaxbp grade`` once on a copy of exercises/ with one exercise solved, writing
    every report."""
    tmp = tmp_path_factory.mktemp("reports")
    mine = tmp / "mine"
    shutil.copytree(ROOT / "exercises", mine)
    path = mine / "01_activations.py"
    text = path.read_text(encoding="utf-8")
    stub = '    raise NotImplementedError("not done yet: sigmoid_backward")\n'
    path.write_text(text.replace(stub, "    return dy * y * (1 - y)\n"), encoding="utf-8")
    out = {}
    for fmt in ("classroom", "gradescope"):  # one worker each: one exercise runs
        out[fmt] = tmp / f"{fmt}.out"
        out[f"{fmt}-code"] = _cli(["1", "2", "--impl", str(mine), "--format", fmt,
                                   "--workers", "1", "--output", str(out[fmt]),
                                   "--json", str(tmp / f"{fmt}.json")])
    out["json"] = tmp / "classroom.json"
    return out


def test_grade_writes_the_classroom_payload_for_the_reporter(graded_files):
    assert graded_files["classroom-code"] == 1
    payload = json.loads(base64.b64decode(graded_files["classroom"].read_text().strip()))
    assert payload["status"] == "fail" and payload["max_score"] == 5 + 4
    scores = {t["name"]: t["score"] for t in payload["tests"]}
    assert scores["01 sigmoid_backward [values]"] == 2
    assert sum(scores.values()) == 5
    assert all(t["status"] == "fail" for t in payload["tests"] if "tanh" in t["name"])
    assert all("not done yet" in t["message"] for t in payload["tests"] if "tanh" in t["name"])


def test_grade_writes_gradescopes_results(graded_files):
    results = json.loads(graded_files["gradescope"].read_text())
    assert results["score"] == 5 and len(results["tests"]) == 4 + 3  # one per check
    report = json.loads(graded_files["json"].read_text())  # --json, as before
    assert report["score"] == 5 and [e["name"] for e in report["exercises"]] == [
        "sigmoid_backward", "tanh_backward"]


def test_without_output_the_payload_goes_to_stdout_and_the_table_to_stderr(tmp_path, capsys):
    code = _cli(["2", "--impl", "exercises", "--format", "classroom", "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    payload = json.loads(base64.b64decode(captured.out.strip()))
    assert payload["max_score"] == 4 and "not done yet" in captured.err


def test_classroom_init_writes_a_workflow_that_runs_the_installed_grader(tmp_path, capsys):
    args = argparse.Namespace(action="init", dir=str(tmp_path), impl="exercises",
                              install="jaxbp==9.9", python="3.11", time_limit=None,
                              force=False)
    assert classroom.run(args) == 0
    text = (tmp_path / ".github" / "workflows" / "classroom.yml").read_text()
    assert 'pip install "jaxbp==9.9"' in text
    assert 'cd "$RUNNER_TEMP"' in text and "pip install -e" not in text
    assert 'jaxbp grade --impl "$GITHUB_WORKSPACE/exercises" --format classroom' in text
    assert "classroom-resources/autograding-grading-reporter@v1" in text
    assert "runners: jaxbp" in text and 'JAXBP_RESULTS: "${{ steps.jaxbp.outputs.result }}"' \
        in text
    assert "name: Autograding Tests" in text
    assert classroom.run(args) == 1  # never overwritten without --force
    assert "not overwritten" in capsys.readouterr().err
    args.force, args.time_limit = True, 20.0
    assert classroom.run(args) == 0
    assert "--time-limit 20" in (tmp_path / ".github" / "workflows" / "classroom.yml").read_text()


@pytest.mark.parametrize("field, value", [("impl", 'x"; rm -rf /'), ("install", "$(id)")])
def test_classroom_init_refuses_text_that_would_break_the_workflow(tmp_path, capsys, field,
                                                                   value):
    args = argparse.Namespace(action="init", dir=str(tmp_path), impl="exercises",
                              install=None, python="3.11", time_limit=None, force=False)
    setattr(args, field, value)
    assert classroom.run(args) == 2
    assert f"--{field} must not hold" in capsys.readouterr().err


def test_the_command_is_registered():
    from jaxbp.cli import COMMANDS

    assert COMMANDS["classroom"][0] == "jaxbp.grading.classroom"


def test_every_failing_check_is_listed_once_its_text_is_shown():
    text = _report.details(_rows()[1:], everything=True)
    lines = text.splitlines()
    names = [name for name, _ in grading.BY_NAME["relu_backward"].checks]
    assert len(lines) == len(names)
    assert lines[0] == "relu_backward [shapes] 0/1: stopped after 10 s"
    for line, name in zip(lines[1:], names[1:]):
        assert line.startswith(f"relu_backward [{name}] 0/") and line.endswith(": as [shapes]")
