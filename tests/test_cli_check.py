"""``jaxbp check MODULE:NAME``: gradient-check a user's own layer from the command line.

The layers live in a temporary user file, as a learner's would: a right one must pass
(exit 0), a deliberately wrong backward must fail (exit non-zero, FAIL in the report).
"""

import subprocess
import sys
import textwrap

import pytest

from jaxbp import cli

USER_FILE = textwrap.dedent('''
    """A learner's own layers."""
    import jaxbp


    def _init(key, input_shape):
        del key
        return (), tuple(input_shape)


    def _forward(params, x):
        del params
        return x ** 3, x


    def _backward(params, x, dy):
        del params
        return (), 3 * x ** 2 * dy


    def _backward_forgot_the_square(params, x, dy):
        del params
        return (), 3 * x * dy


    cube = jaxbp.Layer(_init, _forward, _backward, name="cube")
    wrong_cube = jaxbp.Layer(_init, _forward, _backward_forgot_the_square,
                             name="wrong_cube")


    def small_net():
        return jaxbp.serial(jaxbp.flatten(), jaxbp.dense(2), jaxbp.tanh())


    not_a_layer = 42
''')


@pytest.fixture
def user_file(tmp_path, monkeypatch):
    """The user's file; sys.path and the user's modules are restored after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "my_layers.py"
    path.write_text(USER_FILE, encoding="utf-8")
    yield path
    for name in ("my_layers", "_jaxbp_user_module"):
        sys.modules.pop(name, None)


def run_check(capsys, *argv):
    code = cli.main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_right_layer_from_a_file_passes(user_file, capsys):
    code, out, _ = run_check(capsys, f"{user_file}:cube", "--shape", "4")
    assert code == 0
    assert "gradient check of cube" in out and "PASSED" in out and "FAIL" not in out


def test_wrong_backward_from_a_file_fails(user_file, capsys):
    code, out, _ = run_check(capsys, f"{user_file}:wrong_cube")
    assert code != 0
    assert "gradient check of wrong_cube" in out
    assert "FAIL" in out and "PASSED" not in out


def test_module_name_form_and_a_constructor(user_file, capsys, monkeypatch):
    monkeypatch.chdir(user_file.parent)
    code, out, _ = run_check(capsys, "my_layers:small_net", "--shape", "2,2",
                             "--batch", "2")
    assert code == 0, out
    assert "dense(2)" in out and "params[1]['w']" in out and "PASSED" in out


def test_module_name_form_with_a_wrong_layer(user_file, capsys, monkeypatch):
    monkeypatch.chdir(user_file.parent)
    code, out, _ = run_check(capsys, "my_layers:wrong_cube", "--shape", "2,3")
    assert code == 1 and "FAIL" in out


@pytest.mark.parametrize("target, phrase", [
    ("my_layers.py", "target must be MODULE:NAME or FILE.py:NAME"),
    ("{dir}/my_layers.py:missing", "has no attribute 'missing'"),
    ("{dir}/my_layers.py:not_a_layer", "must be a jaxbp.Layer or a function returning one, "
                                       "got int"),
    ("{dir}/nowhere.py:cube", "no file"),
])
def test_bad_targets_exit_2_with_a_message(user_file, capsys, target, phrase):
    code, out, err = run_check(capsys, target.format(dir=user_file.parent))
    assert code == 2
    assert phrase in err


@pytest.mark.parametrize("shape, phrase", [
    ("4,x", "--shape must be integers separated by commas, got '4,x'"),
    ("0", "--shape must be positive integers separated by commas, e.g. 8 or 6,6,1, "
          "got '0'"),
    ("3,-1", "--shape must be positive integers"),
    (",", "--shape must be positive integers"),  # no axis: every check would pass
])
def test_bad_shape_exits_2(user_file, capsys, shape, phrase):
    code, _, err = run_check(capsys, f"{user_file}:small_net", "--shape", shape)
    assert code == 2
    assert phrase in err


def test_shape_without_a_target_is_a_usage_error(capsys):
    """The built-in networks have their own input shapes: a --shape given for them
    would be silently ignored."""
    code, out, err = run_check(capsys, "--shape", "6,6,1")
    assert code == 2 and out == ""
    assert "--shape is the input shape of a layer of yours" in err
    assert len(err.strip().splitlines()) == 1


def test_the_installed_command_exits_non_zero_on_a_wrong_backward(user_file):
    """The real ``jaxbp`` entry point, in a fresh process."""
    jaxbp_cmd = [sys.executable, "-m", "jaxbp"]
    done = subprocess.run([*jaxbp_cmd, "check", f"{user_file}:wrong_cube", "--shape", "3"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "FAIL" in done.stdout
