"""``jaxbp --help`` and every usage error answer without importing JAX (issue: the waits
a learner feels): the cases run one after the other in a fresh interpreter, which
reports after each whether ``jax`` has been imported (a case that imports it is
flagged, and the cases after it get a fresh interpreter of their own)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import contextlib, io, json, sys
from jaxbp import cli
results = []
for argv in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    results.append({"code": code, "stderr": err.getvalue(), "jax": "jax" in sys.modules})
    if "jax" in sys.modules:
        break
print("RESULTS " + json.dumps(results))
"""

CASES = [
    (["--help"], None),
    (["grade", "--time-limit", "-5"], "--time-limit must be a positive number"),
    (["grade", "--time-limit", "inf"], "--time-limit must be a positive number"),
    (["grade", "--workers", "0"], "--workers must be a positive int"),
    (["grade", "--impl", "no/such/dir"], "--impl: no directory no/such/dir"),
    (["notes", "999"], "name must be one of 000, 001, 002, 003, 004"),
    (["notes", "000", "--plot", "/no/such/folder/x.png"], "does not exist"),
    (["check", "--batch", "0"], "--batch must be a positive int"),
    (["check", "no_such_file.py:layer"], "no file"),
    (["check", "my.py:layer", "--shape", "a,b"], "--shape must be integers"),
    (["check", "my.py:layer", "--shape", "0"], "--shape must be positive integers"),
    (["check", "--shape", "8"], "--shape is the input shape of a layer of yours"),
    (["grade", "no_such_exercise"], "no exercise 'no_such_exercise'; the exercises are"),
    (["grade", "99"], "no exercise '99'"),
    (["grade", "--seed", "-1"], "--seed must be a non-negative int"),
    (["demo", "gpt", "--data", "no/such/file.txt"], "--data: cannot read"),
    (["demo", "mlp", "--data", "no/such/file.npz"], "--data: cannot read"),
    (["demo", "--epochs", "0"], "--epochs must be a positive int, got 0"),
    (["demo", "gpt", "--steps", "0"], "--steps must be a positive int, got 0"),
    (["demo", "--no-such-option"], "unrecognized arguments"),
    (["exercises", "--out", "somewhere", "init"], "jaxbp exercises init DIR"),
    # given numbers are checked as given, and every file a command would write is
    # checked before its work, not reported as a traceback after it
    (["bench", "--repeats", "0"], "--repeats must be a positive int, got 0"),
    (["bench", "--seconds", "0"], "--seconds must be a positive number, got 0"),
    (["bench", "--json", "no/such/dir/b.json"],
     "--json: cannot write 'no/such/dir/b.json': the folder"),
    (["demo", "--lr", "-1"], "--lr must be a positive number, got -1"),
    (["demo", "--seed", "-1"], "--seed must be a non-negative int, got -1"),
    (["demo", "--save", "no/such/dir/p.npz"], "--save: cannot write"),
    (["demo", "--out", os.devnull + "/plots"], "is a file, not a folder"),
    (["demo", "mlp", "--model", "gpt"], "--model: only the gpt demo reads it"),
    (["demo", "--json", "r.json"], "--json: only the gpt demo reads it"),
    (["demo", "gpt", "--json", "no/such/dir/r.json"], "--json: cannot write"),
    (["demo", "--impl", "no/such/dir"], "--impl: no directory no/such/dir"),
    (["grade", "--output", "report.json"], "--output is where --format json"),
    (["grade", "--json", "no/such/dir/g.json"], "--json: cannot write"),
    (["exercises", "generate", "--out", os.devnull + "/ex"], "is a file, not a folder"),
]
@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """Each case's ``{"code", "stderr", "jax"}``, in CASES' order."""
    cwd = tmp_path_factory.mktemp("startup")
    env = dict(os.environ, JAXBP_CACHE_DIR=str(cwd / "cache"))
    results = []
    while len(results) < len(CASES):
        todo = [argv for argv, _ in CASES[len(results):]]
        proc = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(todo),
                              cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=120)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULTS ")),
                    None)
        assert line, proc.stderr[-2000:]
        results += json.loads(line[len("RESULTS "):])
    return results


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[" ".join(argv) for argv, _ in CASES])
def test_usage_errors_and_help_import_no_jax(answers, case):
    argv, message = CASES[case]
    got = answers[case]
    assert not got["jax"], (argv, got["stderr"][-2000:])
    if message is None:
        assert got["code"] == 0
    else:
        assert got["code"] == 2 and message in got["stderr"], got
        assert "Traceback" not in got["stderr"]
        if not got["stderr"].startswith("usage:"):  # argparse's own: usage, then error
            assert len(got["stderr"].strip().splitlines()) == 1, got["stderr"]
