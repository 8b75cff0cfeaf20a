"""``jaxbp --help`` and every usage error answer without importing JAX (issue: the waits
a learner feels): each runs in a fresh interpreter, which then reports whether ``jax``
was imported."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import sys
from jaxbp import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("EXIT", code, "JAX", "jax" in sys.modules)
"""


@pytest.mark.parametrize("argv, message", [
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
])
def test_usage_errors_and_help_import_no_jax(tmp_path, argv, message):
    env = dict(os.environ, JAXBP_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.endswith("JAX False"), (last, proc.stderr[-2000:])
    if message is None:
        assert last.startswith("EXIT 0")
    else:
        assert last.startswith("EXIT 2") and message in proc.stderr
        assert "Traceback" not in proc.stderr
