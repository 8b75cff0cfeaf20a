"""The compiler options of programs that run once (checks, the grader's references, a
learner's function in the grading worker): accepted by this jaxlib, and the values they
give agree with XLA's default compilation to rounding."""

import inspect
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import _core
from jaxbp.grading import _evaluate, _sandbox
from jaxbp.grading._impl import Impl
from jaxbp.grading.registry import BY_NAME


def _ops(x):
    return (jnp.tanh(x), jax.nn.sigmoid(x), jnp.exp(x), jnp.log1p(jnp.abs(x)),
            jax.nn.softmax(x, axis=-1), jax.nn.gelu(x, approximate=False), x @ x.T)


def test_every_option_is_one_this_jaxlib_compiles_with():
    options = _core.run_once_options()
    assert set(options) <= {k for extra in _core._RUN_ONCE for k in extra}
    compiled = jax.jit(lambda v: v * 2, compiler_options=options).lower(
        np.float32(1)).compile()
    assert float(compiled(np.float32(1.5))) == 3.0


_DEFAULT = """
import jax
import jax.numpy as jnp
import numpy as np
{ops}
for dtype in (np.float64, np.float32):
    x = (np.random.default_rng(0).normal(size=(48, 33)) * 3).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        np.savez({out!r} + dtype.__name__ + ".npz", *jax.jit(_ops)(x))
"""


@pytest.fixture(scope="module")
def default_compilation(tmp_path_factory):
    """The ops compiled with XLA's defaults, in a child process without XLA_FLAGS: the
    test processes themselves compile with the quick options (conftest.py)."""
    out = str(tmp_path_factory.mktemp("default") / "ops-")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    # _ops's own source: the child imports JAX alone, not this module (nor jaxbp)
    code = _DEFAULT.format(ops=inspect.getsource(_ops), out=out)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    return out


@pytest.mark.parametrize("dtype,ulps", [(np.float64, 16), (np.float32, 16)])
def test_values_agree_with_the_default_compilation_to_rounding(dtype, ulps,
                                                                default_compilation):
    x = (np.random.default_rng(0).normal(size=(48, 33)) * 3).astype(dtype)
    with np.load(default_compilation + dtype.__name__ + ".npz") as saved:
        default = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    with jax.enable_x64(dtype == np.float64):
        quick = _core.jit_once(_ops)(x)
    assert len(default) == len(quick)
    eps = np.finfo(dtype).eps
    for a, b in zip(default, quick):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(b, a, rtol=ulps * eps, atol=0)


def test_the_grading_worker_gets_the_options_with_each_job(monkeypatch):
    """The learner's function is compiled with the same options as the references:
    they come with the job (the worker imports nothing from jaxbp)."""
    jobs = []

    class Recording:
        def run(self, job):
            jobs.append(job)
            return _sandbox.Outcome(stop={"kind": "stub"})

    _evaluate.evaluate(Impl("solutions"), BY_NAME["sigmoid_backward"], sandbox=Recording(),
                       documents=False)
    assert jobs and jobs[0].compiler_options == _core.run_once_options()
