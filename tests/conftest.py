"""Test configuration: strict JAX numerics, fast compilation, shared fixtures."""

import gc
import os
import subprocess
import sys

# Most of the suite's time is XLA compiling programs that run once or a few times on
# small arrays (a layer's check, a grading case, a few training steps). The test
# processes compile as jaxbp compiles such programs (jaxbp._core.run_once_options:
# XLA's cheapest LLVM optimization level, its elemental emitters, code generated in one
# piece): about twice as fast, running slower, the same values to rounding
# (test_compile_options compares them with XLA's defaults). Set here, before any JAX
# computation, through XLA_FLAGS, which the pytest-xdist workers and the commands the
# tests start inherit. Only options this jaxlib knows (an unknown flag in XLA_FLAGS
# kills the process): a child process lists them. A user's own XLA_FLAGS are kept as
# they are; JAXBP_TEST_XLA_DEFAULTS=1 runs the suite with XLA's default compilation.
# JAXBP_TEST_FAST_COMPILE marks the flags as the suite's own (helpers.run_as_a_user).
FAST_COMPILE_ENV = "JAXBP_TEST_FAST_COMPILE"
if ("XLA_FLAGS" not in os.environ
        and os.environ.get("JAXBP_TEST_XLA_DEFAULTS", "") in ("", "0")):
    _probe = subprocess.run(
        [sys.executable, "-c",
         f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
         "from helpers import subprocess_xla_flags\n"
         "print(subprocess_xla_flags())"],
        capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    if _probe.returncode == 0 and _probe.stdout.strip():
        os.environ["XLA_FLAGS"] = _probe.stdout.strip()
        os.environ[FAST_COMPILE_ENV] = os.environ["XLA_FLAGS"]

import pytest  # noqa: E402

# JAX's persistent compilation cache is off for the tests and the `jaxbp` commands they
# start (never the user's own cache): on a first run, which CI's always is, writing the
# suite's 3,400 programs cost more than reading some back saved (the whole suite, cold,
# 2026-12-02 on 2 cores: 141 s without, 161 s with a cache shared by the processes).
# JAXBP_CACHE_DIR=<folder> keeps one across runs (the second run then compiles less).
# Off, JAX computes no cache key either (_cache.disable, passed on in the environment).
os.environ.setdefault("JAXBP_CACHE_DIR", "off")
from jaxbp import _cache  # noqa: E402

_cache.enable()


def pytest_configure(config):
    # JAX is imported by the processes that run tests, not by pytest-xdist's controller,
    # which only starts the workers (they wait for its start-up).
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return
    # Each pytest-xdist worker runs on a core of its own (gw0 the first, gw1 the
    # second, ...), and so do the commands its tests start. XLA sizes its pools of
    # threads by the cores a process may use: with every core, each worker's XLA split
    # its small programs' work and compilation over two threads, which then competed
    # with the other worker for the same two cores. The whole suite, 2026-12-02 20:30
    # UTC, back to back: 117.5 s and 202 s of user CPU unpinned, 105.2 s and 185 s
    # pinned. JAXBP_TEST_PIN=0 leaves the workers on every core.
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    if worker[2:].isdigit() and hasattr(os, "sched_setaffinity") and \
            os.environ.get("JAXBP_TEST_PIN", "1") != "0":
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})
    import jax

    # Implicit rank promotion hides shape bugs (a (batch, out) + (out, 1) broadcast is
    # a silently wrong answer); every jaxbp computation broadcasts explicitly.
    jax.config.update("jax_numpy_rank_promotion", "raise")


# Python's cyclic garbage collector: JAX's caches keep hundreds of thousands of objects
# alive in a test process (traced programs, lowered modules, compiled executables), and
# each full collection walks all of them: 16-18 full collections cost 3-6 s per worker
# in a run of the suite, and pytest's collections at the end of a session up to 2 s more
# while the other worker waited. So once the tests are collected, and after every 10
# tests, garbage is collected and what survives is moved out of the collector's sight
# (gc.freeze: never walked again; still freed when nothing refers to it). Seven modules
# in one process, 2026-12-02: 4.4 s in the collector without, 1.4-1.9 s with.
_GC_FREEZE_EVERY = 10
_tests_since_freeze = 0


def _collect_and_freeze():
    global _tests_since_freeze
    gc.collect()
    gc.freeze()
    _tests_since_freeze = 0


def pytest_collection_finish(session):
    _collect_and_freeze()


def pytest_runtest_logfinish(nodeid, location):
    global _tests_since_freeze
    _tests_since_freeze += 1
    if _tests_since_freeze >= _GC_FREEZE_EVERY:
        _collect_and_freeze()


def pytest_sessionfinish(session):
    _collect_and_freeze()


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled."""
    import jax

    with jax.enable_x64(True):
        yield


# pytest-xdist gives each worker one test module at a time (--dist loadfile), in the
# order they were collected (--no-loadscope-reorder, pyproject.toml), and the next one
# to the worker that runs out first. Its own order, most tests first, handed out the
# longest modules last (a few tests each: demo training runs, the 4-device children, a
# wheel build), and one worker ran them alone while the other sat idle for 16 s. So the
# modules that took longest come first, and the short ones fill the end: seconds per
# module from a run of the suite on 2 workers, 2026-12-02. The rest keep their order.
_LONGEST_FIRST = (
    "test_demo.py",                     # 23 s: the CNN's default schedule in a child
    "test_demo_resnet.py",              # 22 s: the residual CNN's 25 epochs in a child
    "test_sequence.py",                 # 20 s
    "test_grading_mistakes_beyond.py",  # 19 s
    "test_sharding.py",                 # 18 s: the 4-device child, two processes
    "test_layers.py",                   # 13 s
    "test_grading_plug.py",             # 11 s
    "test_grading_cli.py",              # 10 s
    "test_notes_cli.py",                # 10 s
    "test_exercises_grading.py",        # 9 s
    "test_grading_mistakes.py",         # 9 s
    "test_layers_beyond.py",            # 8 s
    "test_grading_security.py",         # 8 s
    "test_state.py",                    # 7 s
    "test_wheel.py",                    # 7 s
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable


def pytest_addoption(parser):
    parser.addoption(
        "--impl", default="solutions",
        help="the exercise implementation the grading tests grade: 'solutions' (the "
             "default), 'exercises', or the path to a learner's copy of exercises/")
