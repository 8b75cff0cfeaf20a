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
