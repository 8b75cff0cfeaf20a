"""Shared checks: a layer's or a loss's hand-written backward against JAX's autodiff.

One call checks everything the project asks of a backward pass, in float64:

* the output shape equals the one ``init`` announced, and ``dparams`` has the tree
  structure, shapes and dtypes of ``params``;
* ``backward`` equals ``jax.vjp`` of ``forward`` for a random upstream gradient, both
  run eagerly (op by op) and under ``jax.jit``;
* central finite differences agree with ``backward`` along random directions (a check
  that does not trust JAX's autodiff at all).

Test data has no ties (every input entry is distinct, so a max-pool window never holds
its maximum twice) and stays at least 0.05 away from the relu kink at 0. The kink
convention itself is ``relu'(0) = 0``, as ``jax.nn.relu``; ``test_layers`` pins it.

Usage::

    assert_layer_matches_autodiff(jaxbp.conv2d(3, (2, 3), stride=2), (5, 6, 2), batch=1)
    assert_loss_matches_autodiff(jaxbp.half_mse(), pred, target)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# The checks' programs run once on tiny arrays: compiled as jaxbp compiles such programs
# (compiling fast matters, running fast does not; values agree to rounding).
from jaxbp._core import run_once_options

# Relative tolerance between two float64 computations of the same gradient (backward
# vs jax.vjp, eager vs jit): both are exact up to rounding, so this is tight.
RTOL_AUTODIFF = 1e-9
# Central differences with step 1e-6 in float64: truncation ~1e-12 * f''', rounding
# ~1e-16 / 1e-6; 1e-6 relative leaves a wide margin and still catches any real error.
FD_EPS = 1e-6
RTOL_FD = 1e-6


def subprocess_xla_flags(devices: int | None = None) -> str:
    """``XLA_FLAGS`` for a test's child process that compiles many programs and runs
    each a few times: ``devices`` virtual CPU devices (if given) and jaxbp's options
    for programs that run once, those this jaxlib knows (an unknown flag in XLA_FLAGS
    kills the process, so only options this process compiled with are passed)."""
    flags = [f"--xla_force_host_platform_device_count={devices}"] if devices else []
    for name, value in run_once_options().items():
        flags.append(f"--{name}={str(value).lower() if isinstance(value, bool) else value}")
    return " ".join(flags)


def distinct_inputs(rng, shape, dtype=np.float64, low=0.05, high=2.0):
    """An array whose entries are all distinct and at least ``low`` away from 0.

    Magnitudes ``low + k * (high - low) / n`` for ``k = 0..n-1``, randomly permuted and
    given random signs: no two entries tie (so max-pool has a unique maximum in every
    window) and none sits at or near relu's kink.

    Args:
      rng: a ``numpy.random.Generator`` (test data is made with NumPy: no compilation).
      shape: the shape to fill, e.g. ``(batch, h, w, c)``.
      dtype: the dtype of the result.
      low: the smallest magnitude.
      high: the largest magnitude (exclusive).

    Returns:
      A NumPy array of ``shape`` and ``dtype``.
    """
    n = math.prod(shape)
    magnitudes = low + (high - low) * rng.permutation(n) / max(n, 1)
    signs = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (signs * magnitudes).reshape(shape).astype(dtype)


def init_shapes(layer, input_shape):
    """``layer.init``'s parameter shapes and output shape, traced without computing.

    Returns:
      ``(params_struct, output_shape)``: a pytree of ``jax.ShapeDtypeStruct`` and a tuple.
    """
    box = {}

    def params_only(key):
        params, box["out"] = layer.init(key, tuple(input_shape))
        return params

    struct = jax.eval_shape(params_only, jax.random.key(0))
    return struct, tuple(box["out"])


def numpy_params(rng, struct):
    """Random normal parameters (scale 0.5) with the tree structure and shapes of
    ``struct``, as float64 NumPy arrays: passed straight into a jitted function they
    cost no compilation."""
    return jax.tree.map(lambda s: 0.5 * rng.normal(size=s.shape), struct)


def random_params(rng, struct, dtype=np.float64):
    """:func:`numpy_params` in ``dtype``, on the device."""
    return jax.tree.map(lambda a: on_device(a, dtype), numpy_params(rng, struct))


def random_init(layer, input_shape, rng, dtype=np.float64):
    """Like ``layer.init`` but filled by NumPy (nothing compiled): ``(params, out_shape)``.

    Call it under ``jax.enable_x64(True)`` for float64 parameters.
    """
    struct, out_shape = init_shapes(layer, input_shape)
    return random_params(rng, struct, dtype), out_shape


def numpy_init(layer, input_shape, rng):
    """:func:`random_init`'s parameters (the same draws) as float64 NumPy arrays, with
    the output shape: ``(params, out_shape)``."""
    struct, out_shape = init_shapes(layer, input_shape)
    return numpy_params(rng, struct), out_shape


def forward_backward(layer):
    """``layer``'s forward then backward as one jitted program: ``f(params, x, dy) ->
    (y, (dparams, dx))``. Each eager operation compiles on its own; a check that is not
    about eager execution runs this instead (with NumPy inputs, which need no transfer
    program either)."""
    def run(params, x, dy):
        y, residuals = layer.forward(params, x)
        return y, layer.backward(params, residuals, dy)

    return jax.jit(run)


def on_device(a, dtype=None) -> jax.Array:
    """``a`` (NumPy, JAX or a list) converted on the host and put on the device:
    ``jnp.asarray(numpy_array, dtype)`` would compile a conversion program for every new
    shape, and the checks meet many shapes."""
    return jax.device_put(np.asarray(a, dtype))


def _to64(tree):
    return jax.tree.map(lambda a: on_device(a, np.float64), tree)


def _assert_close(got, want, what, rtol=RTOL_AUTODIFF):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    if not err <= rtol * scale:
        i = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape)
        raise AssertionError(f"{what}: max |error| {err:.3e} > {rtol:g} * {scale:.3g} at "
                             f"index {tuple(int(j) for j in i)}: got {got[i]!r}, "
                             f"expected {want[i]!r}")


def _leaf_names(params):
    return ["params" + jax.tree_util.keystr(p) for p, _ in
            jax.tree.leaves_with_path(params)]


def layer_gradients(layer, params, x, dy, directions):
    """Everything the checks compare, computed in one jitted call.

    Args:
      layer: the layer.
      params, x, dy: float64 parameters, input and upstream gradient.
      directions: a list, one entry per leaf (``x`` first, then the params' leaves),
        of arrays ``(n_dirs, *leaf.shape)``.

    Returns:
      A dict: ``y``; ``manual`` (dparams, dx) from ``layer.backward`` under jit;
      ``reference`` (dparams, dx) from ``jax.vjp`` of ``forward``; ``fd_numeric`` and
      ``fd_analytic``, both ``(1 + n_leaves, n_dirs)``: ``<dy, J v>`` by central
      differences with only that leaf moved along ``v``, and ``<backward, v>``.
    """
    fwd = lambda p, x_: layer.forward(p, x_)[0]

    def compute(params, x, dy, directions):
        y, residuals = layer.forward(params, x)
        manual = layer.backward(params, residuals, dy)
        _, vjp = jax.vjp(fwd, params, x)
        reference = vjp(dy)

        # All shifted points (each leaf, each direction, +eps and -eps) through one
        # vmapped forward: a single forward in the compiled program.
        leaves, treedef = jax.tree.flatten(params)
        base = [x] + leaves
        n_dirs = directions[0].shape[0]
        shifted = [[] for _ in base]
        for i in range(len(base)):
            for sign in (1.0, -1.0):
                for j, leaf in enumerate(base):
                    step = sign * FD_EPS * directions[i] if j == i else \
                        jnp.zeros((n_dirs, *leaf.shape), leaf.dtype)
                    shifted[j].append(leaf[None] + step)
        shifted = [jnp.concatenate(s) for s in shifted]
        ys = jax.vmap(lambda x_, *ls: fwd(jax.tree.unflatten(treedef, ls), x_))(*shifted)
        ys = ys.reshape(len(base), 2, n_dirs, *y.shape)
        numeric = jnp.tensordot(ys, dy, axes=dy.ndim)  # (leaf, sign, direction)
        numeric = (numeric[:, 0] - numeric[:, 1]) / (2 * FD_EPS)
        grads = [manual[1]] + jax.tree.leaves(manual[0])
        analytic = jnp.stack([jnp.tensordot(v, g, axes=g.ndim)
                              for g, v in zip(grads, directions)])
        return y, manual, reference, numeric, analytic

    compiled = jax.jit(compute).lower(params, x, dy, directions).compile(
        run_once_options())
    y, manual, reference, numeric, analytic = compiled(params, x, dy, directions)
    return {"y": y, "manual": manual, "reference": reference, "fd_numeric": numeric,
            "fd_analytic": analytic}


def assert_layer_matches_autodiff(layer, input_shape, *, batch=2, seed=0, x=None,
                                  params=None, eager=True, fd=True, directions=2):
    """Checks ``layer.backward`` against ``jax.vjp`` (eager and jitted) and finite
    differences, in float64.

    Parameters come from ``layer.init``'s shapes (traced, not run) filled with NumPy
    random numbers; the input from :func:`distinct_inputs`.

    Args:
      layer: a ``jaxbp.Layer``.
      input_shape: the input shape without the batch axis, e.g. ``(5, 6, 2)``.
      batch: the batch size of the random input.
      seed: seeds the parameters, the input, ``dy`` and the directions.
      x: an input to use instead of :func:`distinct_inputs` (shape ``(batch,
        *input_shape)``).
      params: parameters to use instead of random ones.
      eager: also run the backward op by op (not jitted) and compare.
      fd: also compare with central finite differences.
      directions: random directions per leaf for the finite differences.

    Returns:
      ``(params, x, dy, (dparams, dx))`` in float64, for further checks.

    Raises:
      AssertionError: naming the layer and the leaf, the largest error and where it is.
    """
    input_shape = tuple(input_shape)
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        struct, out_shape = init_shapes(layer, input_shape)
        params = random_params(rng, struct) if params is None else _to64(params)
        assert jax.tree.structure(params) == jax.tree.structure(struct), (
            f"{layer.name}: params {jax.tree.structure(params)}, init gives "
            f"{jax.tree.structure(struct)}")
        if x is None:
            x = distinct_inputs(rng, (batch, *input_shape))
        x = on_device(x, np.float64)
        y_struct = jax.eval_shape(lambda p, x_: layer.forward(p, x_)[0], params, x)
        assert y_struct.shape == (x.shape[0], *out_shape), (
            f"{layer.name}: forward gives shape {y_struct.shape}, init announced "
            f"{(x.shape[0], *out_shape)}")
        assert y_struct.dtype == jnp.float64, f"{layer.name}: float64 in, " \
                                              f"{y_struct.dtype} out"
        dy = on_device(rng.normal(size=y_struct.shape), np.float64)
        dirs = [on_device(rng.normal(size=(directions, *leaf.shape)), np.float64)
                for leaf in [x] + jax.tree.leaves(params)]

        # Structure, shapes and dtypes first (traced only), so that a wrong one is
        # reported as such rather than as a failure inside the comparisons.
        def backward_of(p, x_, dy_):
            return layer.backward(p, layer.forward(p, x_)[1], dy_)

        s_params, s_x = jax.eval_shape(backward_of, params, x, dy)
        assert jax.tree.structure(s_params) == jax.tree.structure(params), (
            f"{layer.name}: dparams has the structure {jax.tree.structure(s_params)}, "
            f"params {jax.tree.structure(params)}")
        names = ["x"] + _leaf_names(params)
        wanted = [x] + jax.tree.leaves(params)
        for name, g, w in zip(names, [s_x] + jax.tree.leaves(s_params), wanted):
            assert g.shape == w.shape, f"{layer.name}: d{name} shape {g.shape}, " \
                                       f"expected {w.shape}"
            assert g.dtype == w.dtype, f"{layer.name}: d{name} dtype {g.dtype}, " \
                                       f"expected {w.dtype}"

        got = layer_gradients(layer, params, x, dy, dirs)
        (dparams, dx), (ref_params, ref_x) = got["manual"], got["reference"]
        for name, g, r in zip(names, [dx] + jax.tree.leaves(dparams),
                              [ref_x] + jax.tree.leaves(ref_params)):
            _assert_close(g, r, f"{layer.name}: d{name} (jit) vs jax.vjp")

        if eager:
            y, residuals = layer.forward(params, x)
            _assert_close(y, got["y"], f"{layer.name}: y (eager) vs jit")
            e_params, e_x = layer.backward(params, residuals, dy)
            for name, g, r in zip(names, [e_x] + jax.tree.leaves(e_params),
                                  [ref_x] + jax.tree.leaves(ref_params)):
                _assert_close(g, r, f"{layer.name}: d{name} (eager) vs jax.vjp")

        if fd:
            numeric = np.asarray(got["fd_numeric"])
            analytic = np.asarray(got["fd_analytic"])
            for name, num, ana in zip(names, numeric, analytic):
                err = np.abs(num - ana) / np.maximum(1.0, np.abs(num))
                assert np.all(err <= RTOL_FD), (
                    f"{layer.name}: d{name} vs central differences: <dy, J v> = {num}, "
                    f"<backward, v> = {ana}")
        return params, x, dy, (dparams, dx)


def assert_loss_matches_autodiff(loss, pred, target, *, eager=True, fd=True, seed=0):
    """Checks ``loss.backward`` against ``jax.grad`` of the value (eager and jitted)
    and finite differences, in float64.

    Args:
      loss: a ``jaxbp.Loss``.
      pred: predictions ``(batch, ...)``; cast to float64.
      target: targets; floating targets are cast to float64, integer labels kept.
      eager: also run op by op (not jitted) and compare.
      fd: also compare with central finite differences along random directions.
      seed: seeds the directions.

    Returns:
      ``(value, dpred)`` in float64.
    """
    with jax.enable_x64(True):
        pred = on_device(pred, np.float64)
        target = np.asarray(target)
        target = on_device(target, np.float64 if jnp.issubdtype(target.dtype, jnp.floating)
                           else None)
        value_fn = lambda p: loss.forward(p, target)[0]
        rng = np.random.default_rng(seed)
        dirs = on_device(rng.normal(size=(3, *pred.shape)), np.float64)

        def compute(pred):
            value, residuals = loss.forward(pred, target)
            dpred = loss.backward(residuals)
            ref = jax.grad(value_fn)(pred)
            numeric = jnp.stack([(value_fn(pred + FD_EPS * v) - value_fn(pred - FD_EPS * v))
                                 / (2 * FD_EPS) for v in dirs])
            analytic = jnp.stack([jnp.vdot(dpred, v) for v in dirs])
            return value, dpred, ref, numeric, analytic

        compiled = jax.jit(compute).lower(pred).compile(run_once_options())
        value, dpred, ref, numeric, analytic = compiled(pred)
        assert value.shape == (), f"{loss.name}: value has shape {value.shape}, want ()"
        assert dpred.shape == pred.shape and dpred.dtype == pred.dtype, (
            f"{loss.name}: dpred {dpred.shape} {dpred.dtype}, pred {pred.shape} "
            f"{pred.dtype}")
        _assert_close(dpred, ref, f"{loss.name}: dpred (jit) vs jax.grad")
        if eager:
            e_value, residuals = loss.forward(pred, target)
            e_dpred = loss.backward(residuals)
            _assert_close(e_value, value, f"{loss.name}: value (eager) vs jit")
            _assert_close(e_dpred, ref, f"{loss.name}: dpred (eager) vs jax.grad")
        if fd:
            numeric, analytic = np.asarray(numeric), np.asarray(analytic)
            err = np.abs(numeric - analytic) / np.maximum(1.0, np.abs(numeric))
            assert np.all(err <= RTOL_FD), (
                f"{loss.name}: dpred vs central differences: {numeric} vs {analytic}")
        return value, dpred


def assert_layer_stays_float32(layer, input_shape, *, batch=2, seed=0):
    """With x64 enabled, float32 params and input give float32 everywhere.

    Checks the dtypes of ``y``, ``dx`` and every ``dparams`` leaf, and that the lowered
    (jitted) forward + backward holds no float64 value at all: a bare
    ``jnp.zeros(shape)`` or a Python-float array would show up as ``f64`` in it.
    Nothing is compiled: the step is traced and lowered only.
    """
    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        struct, out_shape = init_shapes(layer, input_shape)
        params = random_params(rng, struct, np.float32)
        x = on_device(distinct_inputs(rng, (batch, *input_shape)), np.float32)
        dy = on_device(rng.normal(size=(batch, *out_shape)), np.float32)

        def step(params, x, dy):
            y, residuals = layer.forward(params, x)
            return y, layer.backward(params, residuals, dy)

        lowered = jax.jit(step).lower(params, x, dy)
        assert "f64" not in lowered.as_text(), (
            f"{layer.name}: float64 appears in the lowered float32 step")
        y, (dparams, dx) = jax.eval_shape(step, params, x, dy)
        for name, a in [("y", y), ("dx", dx)] + list(
                zip(_leaf_names(dparams), jax.tree.leaves(dparams))):
            assert a.dtype == jnp.float32, (
                f"{layer.name}: {name} is {a.dtype}, want float32")


# ------------------------------------------------------------------- command output

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first 8 bytes of every PNG file


def held_out_accuracy(out: str) -> float:
    """The held-out accuracy a classifier demo printed, as a fraction."""
    import re

    match = re.search(r"held-out accuracy with the hand-written backward: ([\d.]+)%", out)
    assert match, out
    return float(match.group(1)) / 100


def run_as_a_user(*argv, cwd, timeout: float = 600):
    """``python -m jaxbp *argv`` in a child process compiled with XLA's defaults, as a
    user's command is: the test processes compile for speed instead (conftest.py), and
    a long training run then runs slower. Its kernels run on one thread
    (``--xla_cpu_multi_thread_eigen=false``): the other core runs the other tests, and
    the demos' small arrays gain nothing from a second thread (the residual CNN demo's
    25 epochs, 2026-12-02: 15.5 s of CPU and 10.4 s on two threads, 11.4 s of CPU and
    7.4 s on one). The child also runs on one core, a different one per pytest-xdist
    worker: XLA sizes its pool of threads by the cores a process may use, and with two
    it still split the work, 14.8 s of CPU for those 25 epochs against 11.5 s on one
    core (the CNN demo's 20: 8.0 s against 6.2 s), the same accuracy (the pytest-xdist
    workers are themselves on one core each, conftest.py; this also holds the child to
    one when they are not). Returns the ``CompletedProcess`` (text)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    command = [sys.executable, "-m", "jaxbp", *argv]
    if env.get("XLA_FLAGS") == env.get("JAXBP_TEST_FAST_COMPILE"):  # the suite's own
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
        if hasattr(os, "sched_setaffinity"):
            cores = sorted(os.sched_getaffinity(0))
            worker = env.get("PYTEST_XDIST_WORKER", "gw0")[2:]
            core = cores[int(worker) % len(cores) if worker.isdigit() else 0]
            # set by the child itself, as `python -m jaxbp` would start (a preexec_fn
            # would fork this process, which JAX warns against)
            command = [sys.executable, "-c", _ON_ONE_CORE, str(core), *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


_ON_ONE_CORE = ("import os, runpy, sys\n"
                "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
                "sys.argv = ['jaxbp', *sys.argv[2:]]\n"
                "runpy.run_module('jaxbp', run_name='__main__', alter_sys=True)\n")
