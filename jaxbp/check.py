"""``check_gradients``: a layer's hand-written backward against ``jax.vjp`` and against
central finite differences, both in float64.

For a random upstream gradient ``dy`` the backward must equal ``jax.vjp`` of the
forward, entry by entry. Finite differences check the same thing without trusting JAX's
autodiff: for random directions ``v`` per leaf, ``<dy, (f(p + eps v) - f(p - eps v)) /
(2 eps)>`` must equal ``<backward(dy), v>``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp._core import Layer, shape_str

DEFAULT_TOLERANCE = 1e-6  # relative, in float64


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """One parameter leaf (or the input): the largest errors found.

    Attributes:
      name: ``"x"`` for the input, else the leaf's path, e.g. ``"[0]['w']"``.
      shape: the leaf's shape.
      max_abs_error: largest ``|backward - vjp|`` over the entries.
      max_rel_error: ``max_abs_error / max(1, max |vjp|)``.
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
        if self.error:
            lines.append(f"  FAILED: {self.error}")
            return "\n".join(lines)
        header = f"  {'leaf':<16} {'shape':<16} {'max |err|':>10} {'rel err':>10} " \
                 f"{'fin.diff':>10}  result"
        lines.append(header)
        for leaf in self.leaves:
            lines.append(f"  {leaf.name:<16} {shape_str(leaf.shape):<16} "
                         f"{leaf.max_abs_error:>10.2e} {leaf.max_rel_error:>10.2e} "
                         f"{leaf.fd_rel_error:>10.2e}  {'ok' if leaf.passed else 'FAIL'}")
        lines.append(f"  jit vs eager: max |diff| {self.jit_max_abs_error:.2e}")
        lines.append(f"  {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)


def _leaf_name(path) -> str:
    return "params" + jax.tree_util.keystr(path) if path else "params"


def check_gradients(layer: Layer, params: Any, x, *, key=None, dy=None,
                    tolerance: float = DEFAULT_TOLERANCE, eps: float = 1e-6,
                    directions: int = 3) -> GradientReport:
    """Compares ``layer.backward`` with ``jax.vjp`` and finite differences, in float64.

    Args:
      layer: the layer to check.
      params: its parameters (cast to float64 here).
      x: an input with a batch axis (cast to float64 here).
      key: a ``jax.random.key`` for the random ``dy`` and directions (default key 0).
      dy: the upstream gradient; random normal when ``None``.
      tolerance: the largest relative error that passes.
      eps: the finite-difference step.
      directions: how many random directions the finite-difference check tries.

    Returns:
      A :class:`GradientReport`; nothing is raised for a wrong gradient.
    """
    with jax.enable_x64(True):
        return _check(layer, params, x, key, dy, tolerance, eps, directions)


def _check(layer, params, x, key, dy, tolerance, eps, directions):
    to64 = lambda a: jnp.asarray(a, jnp.float64)
    params = jax.tree.map(to64, params)
    x = to64(x)
    key = jax.random.key(0) if key is None else key
    key_dy, key_dir = jax.random.split(key)
    fwd = lambda p, x_: layer.forward(p, x_)[0]
    y, vjp = jax.vjp(fwd, params, x)
    dy = jax.random.normal(key_dy, y.shape, jnp.float64) if dy is None else to64(dy)
    ref_params, ref_x = vjp(dy)

    def run_backward(p, x_, dy_):
        _, residuals = layer.forward(p, x_)
        return layer.backward(p, residuals, dy_)

    try:
        got_params, got_x = run_backward(params, x, dy)
        jit_params, jit_x = jax.jit(run_backward)(params, x, dy)
    except Exception as e:  # the report carries it; check_gradients raises nothing
        return GradientReport(layer.name, tolerance, (), float("inf"),
                              f"backward raised {type(e).__name__}: {e}")
    if jax.tree.structure(got_params) != jax.tree.structure(ref_params):
        return GradientReport(layer.name, tolerance, (), float("inf"),
                              f"dparams has the structure {jax.tree.structure(got_params)}"
                              f", expected that of params {jax.tree.structure(ref_params)}")

    ref_leaves = [("x", ref_x)] + [(_leaf_name(p), v) for p, v in
                                    jax.tree.leaves_with_path(ref_params)]
    got_leaves = [got_x] + jax.tree.leaves(got_params)
    jit_leaves = [jit_x] + jax.tree.leaves(jit_params)
    fd = _finite_difference_errors(jax.jit(fwd), params, x, dy, got_params, got_x, key_dir, eps,
                                   directions)

    # Central differences with eps ~1e-6 are good to ~1e-9 at best in float64.
    fd_limit = max(1e3 * tolerance, 1e-7)
    leaves, jit_err = [], 0.0
    for (name, ref), got, jitted, fd_err in zip(ref_leaves, got_leaves, jit_leaves, fd):
        ref, got, jitted = np.asarray(ref), np.asarray(got), np.asarray(jitted)
        if got.shape != ref.shape:
            return GradientReport(layer.name, tolerance, tuple(leaves), float("inf"),
                                  f"{name}: the gradient has shape {shape_str(got.shape)}, "
                                  f"expected {shape_str(ref.shape)}")
        abs_err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        rel_err = abs_err / scale
        diff = float(np.max(np.abs(jitted - got))) / scale if ref.size else 0.0
        jit_err = float("inf") if np.isnan(diff) else max(jit_err, diff)  # max() skips NaN
        leaves.append(LeafReport(name, ref.shape, abs_err, rel_err, fd_err,
                                 bool(rel_err <= tolerance and fd_err <= fd_limit)))
    return GradientReport(layer.name, tolerance, tuple(leaves), jit_err)


def _finite_difference_errors(fwd, params, x, dy, got_params, got_x, key, eps, directions):
    """Relative errors of ``<dy, J v>`` (central differences) vs ``<backward, v>``."""
    param_leaves, treedef = jax.tree.flatten(params)
    all_leaves = [x] + param_leaves
    got_all = [got_x] + jax.tree.leaves(got_params)
    errors = []
    for i, (leaf, grad) in enumerate(zip(all_leaves, got_all)):
        worst = 0.0
        for k in jax.random.split(jax.random.fold_in(key, i), directions):
            v = jax.random.normal(k, leaf.shape, jnp.float64)

            def shifted(sign):
                leaves = list(all_leaves)
                leaves[i] = leaf + sign * eps * v
                return fwd(jax.tree.unflatten(treedef, leaves[1:]), leaves[0])

            numeric = float(jnp.vdot(dy, shifted(1) - shifted(-1)) / (2 * eps))
            analytic = float(jnp.vdot(grad, v))
            worst = max(worst, abs(numeric - analytic) / max(1.0, abs(numeric)))
        errors.append(worst)
    return errors
