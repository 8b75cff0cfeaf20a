"""The grader as a security boundary: each attack seen on the first grader, graded again.

Every hostile answer is a small file in a temporary folder laid out as ``exercises/``,
graded like any other; each test asserts the verdict (refused, timeout, error or
partial points) and that the result adds up. Most attacks are graded twice: with the
source scan (the first lock, which refuses them before any of their code runs), and with
``scan=False``, where only the worker's own locks stand (its own process, a clean
``sys.path``, JAX's autodiff taken apart, Landlock where Linux has it). All share one
worker; most grade one exercise on its random cases only (``documents=False``).
"""

import argparse
import json
import textwrap

import pytest

from jaxbp import grading
from jaxbp.grading import _compare, _sandbox, cli, generate

HEADER = "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"
ROOT = generate.project_root()
RIGHT = "def sigmoid_backward(y, dy):\n    return dy * y * (1 - y)\n"


def grade(tmp_path, source, exercise="sigmoid_backward", *, files=None, **kw):
    """Writes ``source`` as the exercise's module (and ``files``) and grades it."""
    (tmp_path / grading.BY_NAME[exercise].module).write_text(
        HEADER + textwrap.dedent(source), encoding="utf-8")
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    kw.setdefault("documents", False)
    result = grading.evaluate(grading.Impl(tmp_path), exercise, **kw)
    adds_up(result)
    return result


def adds_up(result):
    """The result's points are its checks' points, within its maximum, and its status
    agrees with them."""
    assert result.points == sum(c.points for c in result.checks)
    assert 0 <= result.points <= result.max_points == result.exercise.max_points
    assert [c.name for c in result.checks] == [n for n, _ in result.exercise.checks]
    for c in result.checks:
        assert c.points in (0, c.max_points) and (c.points > 0) == c.passed
    if result.status in ("refused", "timeout", "not done yet"):
        assert result.points == 0


# ----------------------------------------------------------------- 1. in the grader's process


def test_replacing_the_graders_check_at_import_reaches_nothing(tmp_path):
    source = """
import sys
sys.modules["jaxbp.grading._compare"].close = lambda a, b: True


def sigmoid_backward(y, dy):
    return dy
"""
    close = _compare.close
    scanned = grade(tmp_path, source)
    assert scanned.status == "refused" and "uses the module sys" in scanned.feedback
    ran = grade(tmp_path, source, scan=False)
    assert ran.status == "error" and ran.points == 0
    assert "does not import: KeyError" in ran.feedback  # no grader in the worker
    assert _compare.close is close


def test_the_main_threads_case_is_not_in_the_workers_frames(tmp_path):
    source = """
import sys


def sigmoid_backward(y, dy):
    for frame in sys._current_frames().values():
        while frame is not None:
            case = frame.f_locals.get("case")
            if case is not None and hasattr(case, "expected"):
                return case.expected
            frame = frame.f_back
    return dy
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    assert ran.check("values").mistake == "missing-derivative"  # it returned dy
    assert ran.status == "partial" and ran.points == 1  # shapes only


def test_the_registry_of_cases_is_not_importable(tmp_path):
    source = """
def sigmoid_backward(y, dy):
    from jaxbp.grading import BY_NAME
    for case in BY_NAME["sigmoid_backward"].cases():
        if case.args[0].shape == y.shape:
            return case.expected
"""
    scanned = grade(tmp_path, source)
    assert scanned.status == "refused" and "uses jaxbp.grading" in scanned.feedback
    ran = grade(tmp_path, source, scan=False)
    assert ran.points == 0
    assert "ModuleNotFoundError: No module named 'jaxbp'" in ran.check("values").feedback


# ----------------------------------------------------------------- 2. exit status and report


@pytest.mark.parametrize("where", ["import", "call"])
def test_os_exit_is_refused_or_closed(tmp_path, where):
    exit_line = "import os\nos._exit(0)\n"
    source = (exit_line + RIGHT if where == "import" else
              "import os\n\n\ndef sigmoid_backward(y, dy):\n    os._exit(0)\n")
    scanned = grade(tmp_path, source)
    assert scanned.status == "refused" and "uses the module os" in scanned.feedback
    ran = grade(tmp_path, source, scan=False)
    assert ran.points == 0 and "os._exit is not available" in ran.feedback + "".join(
        c.feedback for c in ran.checks)


def test_a_process_that_really_exits_is_an_error_row(tmp_path):
    source = """
import ctypes


def sigmoid_backward(y, dy):
    ctypes.CDLL(None)._exit(0)
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    assert ran.status == "error" and ran.points == 0
    assert "ended with exit status 0 while running sigmoid_backward on case 1" in ran.feedback
    assert grade(tmp_path, RIGHT).points == 4  # the next grading: a fresh child (no docs)


def test_sys_exit_in_the_function_is_its_own_error(tmp_path):
    source = "import sys\n\n\ndef sigmoid_backward(y, dy):\n    sys.exit(0)\n"
    ran = grade(tmp_path, source, scan=False)
    assert ran.points == 0 and "your code called sys.exit()" in ran.check("values").feedback


def test_an_atexit_handler_never_runs_and_never_writes_the_report(tmp_path):
    report = tmp_path / "forged.json"
    source = f"""
import atexit
import json


def _forge():
    with open({str(report)!r}, "w") as f:
        json.dump({{"score": 5, "max_score": 5}}, f)


atexit.register(_forge)


def sigmoid_backward(y, dy):
    return dy
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    assert ran.status == "partial" and ran.points == 1
    assert not report.exists()


def test_the_grader_never_reads_files_the_answer_can_write(tmp_path):
    target = tmp_path / "copy_of_test_exercises_grading.py"
    target.write_text("original\n", encoding="utf-8")
    source = f"""
def sigmoid_backward(y, dy):
    with open({str(target)!r}, "w") as f:
        f.write("def test_exercise(): pass\\n")
    return dy * y * (1 - y)
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    if ran.landlock:  # Linux confines the worker's writes to its working directory
        assert target.read_text(encoding="utf-8") == "original\n"
        assert ran.points == 0 and "PermissionError" in ran.check("values").feedback


def test_a_change_to_the_graders_own_files_voids_the_grade(tmp_path, monkeypatch, capsys):
    (tmp_path / "01_activations.py").write_text(HEADER + RIGHT, encoding="utf-8")
    states = iter([{"grader.py": "before"}, {"grader.py": "after"}])
    monkeypatch.setattr(cli, "grader_files", lambda: next(states))
    out = tmp_path / "result.b64"
    code = _cli(["sigmoid_backward", "--impl", str(tmp_path), "--format", "classroom",
                 "--output", str(out)])
    assert code == 3
    payload = json.loads(__import__("base64").b64decode(out.read_text()))
    assert payload["status"] == "error" and "grader's own files changed" in payload["message"]
    assert "cannot be trusted" in capsys.readouterr().err


def _cli(argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_hostile_answers_in_one_run_each_lose_their_own_row_only(tmp_path, capsys):
    """``jaxbp grade``: an exit at import, a loop, a refusal, and a right answer; the
    exit status and the JSON report are the grader's, and add up."""
    (tmp_path / "01_activations.py").write_text(HEADER + textwrap.dedent("""
        def sigmoid_backward(y, dy):
            return dy * y * (1 - y)


        def tanh_backward(y, dy):
            return jax.vjp(jnp.tanh, jnp.arctanh(y))[1](dy)[0]


        def relu_backward(x, dy):
            while True:
                pass
        """), encoding="utf-8")
    (tmp_path / "02_losses.py").write_text(HEADER + "import os\nos._exit(0)\n",
                                           encoding="utf-8")
    report = tmp_path / "report.json"
    code = _cli(["1", "2", "3", "5", "--impl", str(tmp_path), "--json", str(report),
                 "--time-limit", "0.5"])
    out = capsys.readouterr().out
    assert code == 1 and "Traceback" not in out
    data = json.loads(report.read_text(encoding="utf-8"))
    rows = {e["name"]: e for e in data["exercises"]}
    assert rows["sigmoid_backward"]["points"] == 5
    assert rows["tanh_backward"]["status"] == "refused"
    assert rows["relu_backward"]["status"] == "timeout"
    assert rows["half_mse_backward"]["status"] == "refused"
    assert data["score"] == sum(e["points"] for e in data["exercises"]) == 5
    assert data["score"] == sum(c["points"] for e in data["exercises"] for c in e["checks"])
    assert data["max_score"] == sum(grading.BY_NAME[n].max_points for n in rows)
    assert f"5/{data['max_score']} points" in out


# ----------------------------------------------------------------- 3. autodiff, jaxbp, solutions

X = "jnp.log(y / (1 - y))"  # the sigmoid's input, from its output

AUTODIFF = {
    "getattr-src": f"""
api = getattr(jax, "_s" + "rc").api


def sigmoid_backward(y, dy):
    return api.vjp(jax.nn.sigmoid, {X})[1](dy)[0]
""",
    "jet": f"""
from jax.experimental.jet import jet


def sigmoid_backward(y, dy):
    x = {X}
    return dy * jet(jax.nn.sigmoid, (x,), ((jnp.ones_like(x),),))[1][0]
""",
    "linear-transpose-src": f"""
from jax._src.api import linear_transpose, linearize


def sigmoid_backward(y, dy):
    x = {X}
    _, tangent = linearize(jax.nn.sigmoid, x)
    return linear_transpose(tangent, x)(dy)[0]
""",
    "default-argument": f"""
def sigmoid_backward(y, dy, _vjp=jax.vjp):
    return _vjp(jax.nn.sigmoid, {X})[1](dy)[0]
""",
    "dict-at-import": f"""
TOOLS = {{"vjp": jax.vjp}}


def sigmoid_backward(y, dy):
    return TOOLS["vjp"](jax.nn.sigmoid, {X})[1](dy)[0]
""",
    "reload-guarded-jax": f"""
import importlib


def sigmoid_backward(y, dy):
    api = importlib.reload(importlib.import_module("jax._src.api"))
    return api.vjp(jax.nn.sigmoid, {X})[1](dy)[0]
""",
    "re-execute-lax": f"""
import importlib.util
import sys


def sigmoid_backward(y, dy):
    lax_module = sys.modules["jax._src.lax.lax"]
    spec = importlib.util.spec_from_file_location("again", lax_module.__file__)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return sys.modules["jax._src.api"].vjp(jax.nn.sigmoid, {X})[1](dy)[0]
""",
}


@pytest.mark.parametrize("name", sorted(AUTODIFF))
def test_autodiff_is_refused_by_the_scan_and_at_run_time(tmp_path, name):
    scanned = grade(tmp_path, AUTODIFF[name])
    assert scanned.status == "refused" and scanned.points == 0, scanned.feedback
    ran = grade(tmp_path, AUTODIFF[name], scan=False)
    assert ran.points == 0, ran.feedback
    assert ran.status == "refused" or "PermissionError" in ran.check("values").feedback


def test_a_helper_module_that_imports_jvp_is_refused(tmp_path):
    helper = """
    import jax.numpy as jnp
    from jax import jvp


    def slope(f, x):
        return jvp(f, (x,), (jnp.ones_like(x),))[1]
    """
    source = f"import helper\n\n\ndef sigmoid_backward(y, dy):\n    " \
             f"return dy * helper.slope(jax.nn.sigmoid, {X})\n"
    scanned = grade(tmp_path, source, files={"helper.py": helper})
    assert scanned.status == "refused"
    assert "through helper.py, which 01_activations.py imports" in scanned.feedback
    assert "(helper.py, line 7)" in scanned.feedback  # where jvp is used
    ran = grade(tmp_path, source, files={"helper.py": helper}, scan=False)
    assert ran.status == "refused" and "called jax.jvp at run time" in ran.feedback


def test_laxs_own_jvp_rules_are_gone_in_the_worker(tmp_path):
    source = """
from jax.interpreters import ad


def sigmoid_backward(y, dy):
    return dy * ad.primitive_jvps[lax.logistic_p]
"""
    scanned = grade(tmp_path, source)
    assert scanned.status == "refused" and "jax.interpreters" in scanned.feedback
    ran = grade(tmp_path, source, scan=False)
    assert ran.points == 0 and "KeyError" in ran.check("values").feedback


REACH = {
    "import-module": """
import importlib


def sigmoid_backward(y, dy):
    layers = importlib.import_module("jax" + "bp").sigmoid()
    return layers.backward((), layers.forward((), jnp.log(y / (1 - y)))[1], dy)[1]
""",
    "sys-modules": """
import sys


def sigmoid_backward(y, dy):
    return sys.modules["jaxbp.layers.activations"].sigmoid().backward((), (y,), dy)[1]
""",
    "exec-solutions": f"""
def sigmoid_backward(y, dy):
    found = {{}}
    exec(open({str(ROOT / "solutions" / "01_activations.py")!r}).read(), found)
    return found["sigmoid_backward"](y, dy)
""",
}


@pytest.mark.parametrize("name", sorted(REACH))
def test_jaxbp_and_the_solutions_are_out_of_reach(tmp_path, name):
    scanned = grade(tmp_path, REACH[name])
    assert scanned.status == "refused" and scanned.points == 0, scanned.feedback
    ran = grade(tmp_path, REACH[name], scan=False)
    if name == "exec-solutions" and not ran.landlock:
        pytest.skip("without Landlock, only the scan keeps other files from being read")
    assert ran.points == 0, ran.feedback


# ----------------------------------------------------------------- 4. hangs and crashes


def test_a_loop_at_import_is_stopped_as_an_import_timeout(tmp_path):
    result = grade(tmp_path, "n = 0\nwhile True:\n    n += 1\n\n\n" + RIGHT, time_limit=0.5)
    assert result.status == "timeout" and result.points == 0
    assert result.feedback.startswith("stopped after 0.5 s: importing 01_activations.py")


def test_an_array_conversion_that_loops_is_stopped_in_the_worker(tmp_path):
    source = """
class Forever:
    def __array__(self, dtype=None, copy=None):
        while True:
            pass


def sigmoid_backward(y, dy):
    return Forever()
"""
    result = grade(tmp_path, source, time_limit=0.5)
    assert result.status == "timeout" and result.points == 0
    assert result.feedback.startswith("stopped after 0.5 s (an infinite loop?)")


def test_a_thread_left_running_changes_nothing(tmp_path):
    source = """
import threading


def _spin():
    while True:
        pass


threading.Thread(target=_spin).start()  # not a daemon: it would keep a process alive


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False, time_limit=5)
    assert [c.name for c in ran.checks if c.passed] == ["shapes", "values", "jit"]
    assert grade(tmp_path, RIGHT).points == 4  # and the worker goes on


def test_a_c_stack_overflow_is_an_error_row_with_no_core_dump(tmp_path):
    source = """
import sys


def sigmoid_backward(y, dy):
    sys.setrecursionlimit(10 ** 8)
    nested = []
    for _ in range(2 * 10 ** 5):
        nested = [nested]
    return repr(nested)
"""
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    assert ran.status == "error" and ran.points == 0
    assert "ended by SIGSEGV" in ran.feedback and "stack overflow" in ran.feedback
    assert not list(tmp_path.glob("core*"))


def test_a_signal_to_the_grader_is_refused_and_the_worker_goes_on(tmp_path):
    source = "import os\n\n\ndef sigmoid_backward(y, dy):\n    os.kill(os.getppid(), 9)\n"
    assert grade(tmp_path, source).status == "refused"
    ran = grade(tmp_path, source, scan=False)
    assert ran.points == 0 and "os.kill is not available" in ran.check("values").feedback
    assert grade(tmp_path, RIGHT).points == 4


def test_printing_changes_nothing(tmp_path, capsys):
    source = "def sigmoid_backward(y, dy):\n    print('5/5 points' * 1000)\n" \
             "    return dy * y * (1 - y)\n"
    assert grade(tmp_path, source).points == 4
    assert "5/5 points" not in capsys.readouterr().out


def test_compilation_time_is_not_counted(tmp_path):
    # One case compiles a long unrolled loop (seconds of XLA time) under a 2 s limit.
    source = """
def sigmoid_backward(y, dy):
    out = dy * y * (1 - y)
    if y.shape != (3, 5):
        return out
    x = y
    for _ in range(100):
        x = jnp.sin(x @ jnp.ones((5, 5), y.dtype)) * 1e-3
    return out + 0.0 * x
"""
    result = grade(tmp_path, source, time_limit=2)
    assert result.points == 4, result.feedback


def test_a_compilation_past_its_own_limit_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(_sandbox, "COMPILE_LIMIT", 0.01)
    source = """
def sigmoid_backward(y, dy):
    x = y
    for _ in range(100):
        x = jnp.sin(x @ jnp.ones((y.shape[1], y.shape[1]), y.dtype)) * 1e-3
    return dy * y * (1 - y) + 0.0 * x
"""
    result = grade(tmp_path, source)
    # the worker compiles the three random cases as one program: 0.01 s a case
    assert result.status == "timeout" and "JAX took more than 0.03 s to compile " \
        "sigmoid_backward's 3 cases" in result.feedback


# ----------------------------------------------------------------- the worker's environment


def test_the_worker_sees_neither_jaxbp_nor_the_grader_on_its_path(tmp_path):
    source = """
import sys


def sigmoid_backward(y, dy):
    if any("jaxbp" in p or "solutions" in p for p in sys.path):
        return dy
    if any(name.startswith("jaxbp") for name in sys.modules):
        return dy
    return dy * y * (1 - y)
"""
    assert grade(tmp_path, source, scan=False).points == 4


def test_the_worker_is_a_self_contained_script():
    import ast
    import sys

    from jaxbp.grading import _worker

    source = _sandbox.WORKER_SOURCE.read_text(encoding="utf-8")
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    third_party = roots - set(sys.stdlib_module_names)
    assert third_party == {"jax", "numpy"}, third_party
    assert _worker.NOT_DONE == generate.NOT_DONE
    assert _worker.ALL_CASES == _sandbox.ALL_CASES


# ----------------------------------------------------------------- the cases as one program


def test_an_error_in_one_case_is_reported_on_that_case(tmp_path):
    # The worker first compiles every case as one program; a case that raises sends it
    # back to running the cases one by one, so the error is still that case's.
    source = """
def sigmoid_backward(y, dy):
    if y.shape == (3, 5):
        raise ValueError("only this shape")
    return dy * y * (1 - y)
"""
    result = grade(tmp_path, source)
    values = result.check("values")
    assert not values.passed and "case 2 of 3" in values.feedback
    assert "ValueError: only this shape" in values.feedback


def test_the_cases_run_as_one_program_traced_once_each():
    import numpy as np

    from jaxbp._core import run_once_options
    from jaxbp.grading import _wire, _worker

    rng = np.random.default_rng(0)
    calls = [(rng.uniform(size=s), rng.normal(size=s)) for s in [(1, 3), (3, 5), (4, 2)]]
    arrays = {}
    job = {"static_argnums": [], "cases": [_wire.encode_args(c, arrays) for c in calls]}
    traced, states = [], []

    def right(y, dy):
        traced.append(y.shape)
        return dy * y * (1 - y)

    out = _worker._together(job, right, arrays, run_once_options(), states.append)
    assert traced == [(1, 3), (3, 5), (4, 2)]  # one trace per case, in order
    for (y, dy), got in zip(calls, out):
        np.testing.assert_allclose(np.asarray(got), dy * y * (1 - y), rtol=1e-6)
    assert [s["case"] for s in states] == [0, 1, 2, _worker.ALL_CASES]
    assert _worker.CLOCK.case is None and _worker.CLOCK.phase == "setup"

    def second_fails(y, dy):
        if y.shape == (3, 5):
            raise ValueError("no")
        return dy

    assert _worker._together(job, second_fails, arrays, None, states.append) is None
    assert _worker._together(job, lambda y, dy: "text", arrays, None, states.append) is None
    assert _worker._together({"static_argnums": [], "cases": []}, right, arrays, None,
                             states.append) is None
