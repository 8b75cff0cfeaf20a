"""``check_gradients``: a layer's hand-written backward against ``jax.vjp`` and against
central finite differences, both in float64.

For a random upstream gradient ``dy`` the backward must equal ``jax.vjp`` of the
forward, entry by entry. Finite differences check the same thing without trusting JAX's
autodiff: for random directions ``v`` per leaf, ``<dy, (f(p + eps v) - f(p - eps v)) /
(2 eps)>`` must equal ``<backward(dy), v>``.

Before any number is compared, the structure, shapes and dtypes of what ``backward``
returns are read from a trace (nothing runs): a gradient of the wrong shape, such as a
bias gradient not summed over the batch, is reported as a failed check naming the leaf,
never a crash inside the comparison.

**Errors are relative.** A leaf's error is ``max |backward - vjp|`` divided by
``max |vjp|`` over that leaf, so a gradient 1% wrong fails at any scale of the inputs.
The divisor is floored at ``REL_ERROR_FLOOR`` (1e-12) only so that a leaf whose true
gradient is all zeros is compared absolutely. The finite-difference error divides by
``|<dy, J v>|``, floored at the rounding noise of the central difference itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp._checks import check_layer
from jaxbp._core import Layer, jit_once, shape_str

DEFAULT_TOLERANCE = 1e-6  # relative, in float64
# The smallest divisor of a relative error: below it a leaf's reference gradient counts
# as zero and its error is absolute (float64 rounding of O(1) terms is ~1e-16).
REL_ERROR_FLOOR = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)
# The most float64 entries the compiled check's batch of directions may hold (256 MiB).
SPREAD_LIMIT = 1 << 25


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """One parameter leaf (or the input): the largest errors found.

    Attributes:
      name: ``"x"`` for the input, else the leaf's path, e.g. ``"[0]['w']"``.
      shape: the leaf's shape.
      max_abs_error: largest ``|backward - vjp|`` over the entries.
      max_rel_error: ``max_abs_error / max(max |vjp|, REL_ERROR_FLOOR)``.
      fd_rel_error: the largest relative error of the directional finite-difference check.
      passed: both relative errors are within the tolerance.
    """

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    fd_rel_error: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class GradientReport:
    """What :func:`check_gradients` found; ``str(report)`` is a readable table."""

    layer: str
    tolerance: float
    leaves: tuple[LeafReport, ...]
    jit_max_abs_error: float
    error: str | None = None  # a description when backward raised or returned a wrong tree
    notes: tuple[str, ...] = ()  # warnings that do not fail the check (a batch of 1)
    eager: bool = True  # False: the backward ran under jit only (no jit-vs-eager figure)

    @property
    def passed(self) -> bool:
        return (self.error is None and all(leaf.passed for leaf in self.leaves)
                and self.jit_max_abs_error <= self.tolerance)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def max_error(self) -> float:
        return max([leaf.max_abs_error for leaf in self.leaves] + [0.0])

    def __str__(self) -> str:
        lines = [f"gradient check of {self.layer} (float64, tolerance {self.tolerance:g})"]
        lines += [f"  note: {note}" for note in self.notes]
        if self.error:
            lines += [f"  FAILED: {line}" if i == 0 else f"          {line}"
                      for i, line in enumerate(self.error.splitlines())]
            return "\n".join(lines)
        header = f"  {'leaf':<16} {'shape':<16} {'max |err|':>10} {'rel err':>10} " \
                 f"{'fin.diff':>10}  result"
        lines.append(header)
        for leaf in self.leaves:
            lines.append(f"  {leaf.name:<16} {shape_str(leaf.shape):<16} "
                         f"{leaf.max_abs_error:>10.2e} {leaf.max_rel_error:>10.2e} "
                         f"{leaf.fd_rel_error:>10.2e}  {'ok' if leaf.passed else 'FAIL'}")
        if self.eager:
            lines.append(f"  jit vs eager: max |diff| {self.jit_max_abs_error:.2e}")
        else:
            lines.append("  jit vs eager: not run (the backward ran under jit only)")
        lines.append(f"  {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)


def _leaf_name(path) -> str:
    return "params" + jax.tree_util.keystr(path) if path else "params"


def check_gradients(layer: Layer, params: Any, x, *, key=None, dy=None,
                    tolerance: float = DEFAULT_TOLERANCE, eps: float = 1e-6,
                    directions: int = 3, eager: bool = True) -> GradientReport:
    """Compares ``layer.backward`` with ``jax.vjp`` and finite differences, in float64.

    Args:
      layer: the layer to check (called: ``jaxbp.relu()``, not ``jaxbp.relu``).
      params: its parameters (cast to float64 here).
      x: an input with a batch axis (cast to float64 here). Use a batch of at least 2:
        at batch 1 a gradient not summed over the batch has the right shape and values.
      key: a ``jax.random.key`` for the random ``dy`` and directions (default key 0).
      dy: the upstream gradient; random normal when ``None``.
      tolerance: the largest relative error that passes.
      eps: the finite-difference step.
      directions: how many random directions the finite-difference check tries.
      eager: also run the backward op by op outside ``jax.jit`` and compare the two
        (``jit vs eager`` in the report). Everything else runs as one compiled program;
        the op-by-op run compiles a small program per operation and shape, most of the
        check's time for a network: ``False`` skips it (``jaxbp check`` does unless
        ``--eager``) and the report says so.

    Returns:
      A :class:`GradientReport`; nothing is raised for a wrong gradient, nor when the
      layer's forward or backward raises (the report says what was raised).

    Raises:
      TypeError: ``layer`` is not a :class:`~jaxbp.Layer`.
    """
    check_layer(layer, "layer", "check_gradients")
    with jax.enable_x64(True):
        return _check(layer, params, x, key, dy, tolerance, eps, directions, eager)


def _failed(layer, tolerance, error, notes=(), leaves=()):
    return GradientReport(layer.name, tolerance, tuple(leaves), float("inf"), error,
                          tuple(notes))


def _structure_problems(got, want_params, want_x):
    """What is wrong with the traced ``(dparams, dx)``: one line per bad leaf, or ``[]``.

    ``got`` holds ``jax.ShapeDtypeStruct``s from ``jax.eval_shape``; nothing has run.
    """
    got_params, got_x = got
    if jax.tree.structure(got_params) != jax.tree.structure(want_params):
        return [f"dparams has the structure {jax.tree.structure(got_params)}, expected "
                f"that of params {jax.tree.structure(want_params)}"]
    problems = []
    named = [("x", got_x, want_x)] + [
        (_leaf_name(path), g, w) for (path, w), g in
        zip(jax.tree.leaves_with_path(want_params), jax.tree.leaves(got_params))]
    for name, g, w in named:
        if not hasattr(g, "shape") or not hasattr(g, "dtype"):
            problems.append(f"{name}: the gradient is {type(g).__name__}, expected an array "
                            f"of shape {shape_str(w.shape)}")
        elif g.shape != w.shape:
            hint = ""
            if g.shape == (want_x.shape[0], *w.shape) and name != "x":
                hint = " (not summed over the batch axis?)"
            elif sorted(g.shape) == sorted(w.shape):
                hint = " (transposed?)"
            problems.append(f"{name}: the gradient has shape {shape_str(g.shape)}, "
                            f"expected {shape_str(w.shape)}{hint}")
        elif g.dtype != w.dtype:
            problems.append(f"{name}: the gradient has dtype {g.dtype}, expected "
                            f"{w.dtype} (the dtype of {name})")
    return problems


def _rng(key):
    """A NumPy generator seeded by ``key``: random data without compiling a program."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _to64(a):
    """``a`` in float64; arrays through NumPy (an eager cast compiles per shape)."""
    if isinstance(a, (jax.Array, np.ndarray, np.generic)) and not isinstance(
            a, jax.core.Tracer):
        return jax.device_put(np.asarray(a, np.float64))
    return jnp.asarray(a, jnp.float64)


def _check(layer, params, x, key, dy, tolerance, eps, directions, eager):
    to64 = _to64
    try:
        params = jax.tree.map(to64, params)
        x = to64(x)
    except (TypeError, ValueError) as e:
        return _failed(layer, tolerance, f"params and x must be arrays (or pytrees of "
                                         f"arrays): {e}")
    notes = []
    if x.ndim >= 1 and x.shape[0] == 1:
        notes.append("x has a batch of 1: a gradient not summed over the batch goes "
                     "unnoticed; check with a batch of at least 2")
    rng = _rng(jax.random.key(0) if key is None else key)
    fwd = lambda p, x_: layer.forward(p, x_)[0]

    def run_backward(p, x_, dy_):
        _, residuals = layer.forward(p, x_)
        return layer.backward(p, residuals, dy_)

    try:
        y = jax.eval_shape(fwd, params, x)  # traced, nothing compiled or run
    except Exception as e:  # the report carries it; check_gradients raises nothing
        return _failed(layer, tolerance, f"forward raised {type(e).__name__}: {e}", notes)
    if not isinstance(y, jax.ShapeDtypeStruct):
        return _failed(layer, tolerance, f"forward must return (y, residuals) with y one "
                                         f"array, got y = {type(y).__name__}", notes)
    if dy is None:
        dy = jax.device_put(rng.standard_normal(y.shape))
    else:
        dy = to64(dy)
        if dy.shape != y.shape:
            return _failed(layer, tolerance, f"dy must have the shape of the forward's "
                                             f"output {shape_str(y.shape)}, got "
                                             f"{shape_str(dy.shape)}", notes)
    try:
        # Shapes, dtypes and structure first, from a trace: nothing computed yet.
        traced = jax.eval_shape(run_backward, params, x, dy)
    except Exception as e:  # the report carries it; check_gradients raises nothing
        return _failed(layer, tolerance, f"backward raised {type(e).__name__}: {e}", notes)
    problems = _structure_problems(traced, params, x)
    if problems:
        return _failed(layer, tolerance, "\n".join(problems), notes)
    leaves = [x] + jax.tree.leaves(params)
    dirs = [rng.standard_normal((directions, *leaf.shape)) for leaf in leaves]
    if len(leaves) * directions * sum(leaf.size for leaf in leaves) > SPREAD_LIMIT:
        # a large network: the vmapped batch of every leaf's directions would not fit
        # in memory; one direction at a time instead
        return _check_eagerly(layer, params, x, dy, tolerance, eps, dirs, notes)
    if eager:  # op by op first, as a learner's code runs when called (errors from here)
        try:
            got_params, got_x = run_backward(params, x, dy)
        except Exception as e:  # the report carries it; check_gradients raises nothing
            return _failed(layer, tolerance, f"backward raised {type(e).__name__}: {e}",
                           notes)
    try:
        ref, jitted, numeric, noise = _compiled_check(layer, eps, directions)(
            params, x, dy, _spread(dirs))
    except Exception:  # a forward jax.vjp/vmap cannot trace: the op-by-op way says why
        return _check_eagerly(layer, params, x, dy, tolerance, eps, dirs, notes)
    jit_params, jit_x = jitted
    if not eager:
        got_params, got_x = jit_params, jit_x
    got_all = [got_x] + jax.tree.leaves(got_params)
    numeric, noise = np.asarray(numeric), np.asarray(noise)
    fd = []
    for i, (v, grad) in enumerate(zip(dirs, got_all)):
        analytic = np.tensordot(v, np.asarray(grad, np.float64), axes=grad.ndim)
        rows = slice(i * directions, (i + 1) * directions)
        fd.append(_fd_error(numeric[rows], analytic, noise[rows]))
    return _report(layer, tolerance, notes, ref[0], ref[1], got_params, got_x,
                   jit_params, jit_x, fd, eager)


def _fd_error(numeric, analytic, noise):
    """The worst direction's relative error; NaN when any direction gives NaN."""
    err = np.abs(numeric - analytic) / np.maximum(np.maximum(np.abs(numeric), noise),
                                                  REL_ERROR_FLOOR)
    return float("nan") if np.any(np.isnan(err)) else float(np.max(err))


def _spread(dirs):
    """Per leaf ``(L * D, *shape)``: leaf ``i``'s ``D`` directions in rows ``i * D`` to
    ``(i + 1) * D - 1`` and zeros elsewhere, so one vmapped forward moves one leaf per row."""
    d = dirs[0].shape[0]
    out = []
    for i, v in enumerate(dirs):
        block = np.zeros((len(dirs) * d, *v.shape[1:]))
        block[i * d:(i + 1) * d] = v
        out.append(jax.device_put(block))
    return out


def _compiled_check(layer, eps, directions):
    """One compiled program: ``jax.vjp``'s gradients, the backward's, and the central
    differences ``<dy, f(p + eps v) - f(p - eps v)> / (2 eps)`` of every direction of
    every leaf, all leaves' directions as one vmapped batch (see :func:`_spread`), with
    the rounding noise of each difference."""

    def program(params, x, dy, spread):
        fwd = lambda p, x_: layer.forward(p, x_)[0]
        _, vjp = jax.vjp(fwd, params, x)
        ref = vjp(dy)
        _, residuals = layer.forward(params, x)
        got = layer.backward(params, residuals, dy)
        param_leaves, treedef = jax.tree.flatten(params)
        all_leaves = [x] + param_leaves

        def shifted(vs, sign):
            moved = [leaf + sign * eps * v for leaf, v in zip(all_leaves, vs)]
            return fwd(jax.tree.unflatten(treedef, moved[1:]), moved[0])

        def one(vs):
            plus, minus = shifted(vs, 1.0), shifted(vs, -1.0)
            numeric = jnp.vdot(dy, plus - minus) / (2 * eps)
            noise = _EPS64 * jnp.vdot(jnp.abs(dy), jnp.abs(plus) + jnp.abs(minus)) \
                / (2 * eps)
            return numeric, noise

        numeric, noise = jax.vmap(one)(spread)
        return ref, got, numeric, noise

    # The program runs once on small arrays: compiled for a fast compilation
    # (_core.run_once_options), which changes no value a check reads (float64).
    return jit_once(program)


def _report(layer, tolerance, notes, ref_params, ref_x, got_params, got_x,
            jit_params, jit_x, fd, eager=True):
    ref_leaves = [("x", ref_x)] + [(_leaf_name(p), v) for p, v in
                                    jax.tree.leaves_with_path(ref_params)]
    got_leaves = [got_x] + jax.tree.leaves(got_params)
    jit_leaves = [jit_x] + jax.tree.leaves(jit_params)
    # Central differences with eps ~1e-6 are good to ~1e-9 at best in float64.
    fd_limit = max(1e3 * tolerance, 1e-7)
    leaves, jit_err = [], 0.0
    for (name, ref), got, jitted, fd_err in zip(ref_leaves, got_leaves, jit_leaves, fd):
        ref, got, jitted = np.asarray(ref), np.asarray(got), np.asarray(jitted)
        abs_err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, REL_ERROR_FLOOR)
        rel_err = abs_err / scale
        diff = float(np.max(np.abs(jitted - got))) / scale if ref.size else 0.0
        jit_err = float("inf") if np.isnan(diff) else max(jit_err, diff)  # max() skips NaN
        passed = bool(rel_err <= tolerance and fd_err <= fd_limit)  # False for NaN
        leaves.append(LeafReport(name, ref.shape, abs_err, rel_err, fd_err, passed))
    return GradientReport(layer.name, tolerance, tuple(leaves), jit_err, None, tuple(notes),
                          eager)


def _check_eagerly(layer, params, x, dy, tolerance, eps, dirs, notes):
    """The check op by op, for a layer whose forward or backward the compiled check
    could not trace (it reports what the layer raised, where it raised it)."""
    fwd = lambda p, x_: layer.forward(p, x_)[0]
    try:
        _, vjp = jax.vjp(fwd, params, x)
    except Exception as e:  # the report carries it; check_gradients raises nothing
        return _failed(layer, tolerance, f"forward raised {type(e).__name__}: {e}", notes)
    ref_params, ref_x = vjp(dy)

    def run_backward(p, x_, dy_):
        _, residuals = layer.forward(p, x_)
        return layer.backward(p, residuals, dy_)

    try:
        got_params, got_x = run_backward(params, x, dy)
        jit_params, jit_x = jax.jit(run_backward)(params, x, dy)
    except Exception as e:  # the report carries it; check_gradients raises nothing
        return _failed(layer, tolerance, f"backward raised {type(e).__name__}: {e}", notes)
    fd = _finite_difference_errors(jax.jit(fwd), params, x, dy, got_params, got_x, dirs,
                                   eps)
    return _report(layer, tolerance, notes, ref_params, ref_x, got_params, got_x,
                   jit_params, jit_x, fd)


def _finite_difference_errors(fwd, params, x, dy, got_params, got_x, dirs, eps):
    """Relative errors of ``<dy, J v>`` (central differences) vs ``<backward, v>``.

    The divisor is ``|<dy, J v>|``, floored at the rounding noise of the central
    difference, ``eps64 * <|dy|, |f(p + eps v)| + |f(p - eps v)|> / (2 eps)``: below
    that the difference quotient carries no digits.
    """
    param_leaves, treedef = jax.tree.flatten(params)
    all_leaves = [x] + param_leaves
    got_all = [got_x] + jax.tree.leaves(got_params)
    errors = []
    for i, (leaf, grad) in enumerate(zip(all_leaves, got_all)):
        worst = 0.0
        for v in dirs[i]:

            def shifted(sign):
                leaves = list(all_leaves)
                leaves[i] = leaf + sign * eps * v
                return fwd(jax.tree.unflatten(treedef, leaves[1:]), leaves[0])

            plus, minus = shifted(1), shifted(-1)
            numeric = float(jnp.vdot(dy, plus - minus) / (2 * eps))
            analytic = float(jnp.vdot(grad, v))
            noise = _EPS64 * float(jnp.vdot(jnp.abs(dy), jnp.abs(plus) + jnp.abs(minus))) \
                / (2 * eps)
            err = abs(numeric - analytic) / max(abs(numeric), noise, REL_ERROR_FLOOR)
            worst = err if np.isnan(err) else max(worst, err)
        errors.append(worst)
    return errors
