"""Grading specs of ``11_normalization.py``: layer norm, batch norm step by step and in
closed form."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (Case, References, case_rng, exercise, f64, in_x64, mistake,
                                nonzero, np64, per_feature, shape_label, vjp_of)


def _norm(x, scale, bias, eps, axes, ddof=0, perturb=None):
    """``scale * (x - mean) / sqrt(var + eps) + bias`` over ``axes``; ``perturb``: zeros
    added to each intermediate value (their gradients are the intermediates' total
    gradients)."""
    e = perturb or {}
    n = math.prod(x.shape[a] for a in axes)
    mean = jnp.mean(x, axis=axes, keepdims=True) + e.get("dmean", 0.0)
    xc = x - mean + e.get("dxc", 0.0)
    var = jnp.sum(xc * xc, axis=axes, keepdims=True) / (n - ddof) + e.get("dvar", 0.0)
    rstd = (var + eps) ** -0.5 + e.get("drstd", 0.0)
    xhat = xc * rstd + e.get("dxhat", 0.0)
    return xhat * per_feature(scale, x.ndim) + per_feature(bias, x.ndim)


STEPS = ("dxhat", "drstd", "dvar", "dxc", "dmean")


def _norm_reference(refs, x, scale, dy, eps, axes, steps=False):
    """Asks ``refs`` for the normalization's vjp (and, with ``steps``, the intermediate
    values' gradients); returns the handle."""
    bias = f64(np.zeros(scale.shape))
    if not steps:
        f = lambda x, s, b: _norm(x, s, b, eps, axes)  # noqa: E731
        return refs.vjp(f, (x, scale, bias), dy)
    stat = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    zeros = {"dxhat": np.zeros(x.shape), "drstd": np.zeros(stat), "dvar": np.zeros(stat),
             "dxc": np.zeros(x.shape), "dmean": np.zeros(stat)}
    f = lambda x, s, b, e: _norm(x, s, b, eps, axes, perturb=e)  # noqa: E731
    return refs.vjp(f, (x, scale, bias, jax.tree.map(f64, zeros)), dy)


def _norm_closed(x, scale, dy, eps, axes, *, mean_path=True, var_path=True,
                 var_ddof=0, grad_ddof=None):
    """``(dx, dxc)`` in numpy, right or with a named mistake: no path through the mean,
    none through the variance, n - 1 in the variance (``var_ddof``) or only in the
    gradient of the variance (``grad_ddof``)."""
    n = math.prod(x.shape[a] for a in axes)
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).sum(axis=axes, keepdims=True) / (n - var_ddof)
    rstd = 1 / np.sqrt(var + eps)
    dxhat = dy * np64(scale).reshape((1,) * (x.ndim - 1) + (-1,))
    dvar = (dxhat * xc).sum(axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    gd = var_ddof if grad_ddof is None else grad_ddof
    dxc = dxhat * rstd + (dvar * 2 * xc / (n - gd) if var_path else 0.0)
    dx = dxc - (dxc.sum(axis=axes, keepdims=True) / n if mean_path else 0.0)
    return dx, dxc


def _norm_mistakes(x, scale, dy, eps, axes, wrong_axes, steps=False):
    """Named mistakes of a normalization's backward, per output leaf."""
    x, scale, dy = np64(x), np64(scale), np64(dy)
    lead = tuple(range(x.ndim - 1))
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + eps)
    no_mean = mistake("no-mean-gradient", "no gradient through the mean: the mean is computed "
                      "from every x it normalizes, so each x also gets -(1/n) Σ dxc through it")
    no_var = mistake("no-variance-gradient", "no gradient through the variance: var depends on "
                     "every x, so xc gets a second term, dvar · 2 xc / n, besides dxhat · rstd")
    constant = mistake("constant-statistics", "the mean and the variance treated as constants: "
                       "dx = dy · scale · rstd leaves out the paths through both statistics")
    unbiased = mistake("unbiased-variance", "the variance divided by n - 1 (unbiased): the "
                       "forward normalizes with the biased variance, divided by n (the "
                       "running statistics use n - 1, the normalization does not)")
    axes_m = mistake("wrong-axes", "summed over the wrong axes: the statistics (and dscale, "
                     "dbias) of a feature are taken over "
                + ("its row (the last axis)" if axes == (x.ndim - 1,) else
                   "the batch and every position, every axis but the last"))
    out = {
        "dx": [
            (no_mean, _norm_closed(x, scale, dy, eps, axes, mean_path=False)[0]),
            (no_var, _norm_closed(x, scale, dy, eps, axes, var_path=False)[0]),
            (constant, _norm_closed(x, scale, dy, eps, axes, mean_path=False,
                                    var_path=False)[0]),
        ],
        "dscale": [(mistake("x-for-xhat", "dscale multiplies dy by xhat, the normalized input "
                            "that scale multiplied, not by x"), (dy * x).sum(axis=lead))],
                            "dbias": [],
    }
    n = math.prod(x.shape[a] for a in axes)
    if n > 1:
        out["dx"] += [
            (unbiased, np64(vjp_of(lambda x, s, b: _norm(x, s, b, eps, axes, ddof=1),
                                (f64(x), f64(scale), f64(np.zeros_like(scale))),
                                f64(dy))[0])),
            (unbiased, _norm_closed(x, scale, dy, eps, axes, grad_ddof=1)[0]),
            (unbiased, _norm_closed(x, scale, dy, eps, axes, var_ddof=1, grad_ddof=0)[0]),
        ]
    for wrong in wrong_axes:
        out["dx"].append((axes_m, np64(vjp_of(
            lambda x, s, b, w=wrong: _norm(x, s, b, eps, w),
            (f64(x), f64(scale), f64(np.zeros_like(scale))), f64(dy))[0])))
        out["dscale"].append((axes_m, (dy * xhat).sum(axis=wrong)))
        out["dbias"].append((axes_m, dy.sum(axis=wrong)))
    if steps:
        right_dxc = _norm_closed(x, scale, dy, eps, axes)[1]
        out["steps['dxc']"] = [
            (no_var, _norm_closed(x, scale, dy, eps, axes, var_path=False)[1]),
            (unbiased, _norm_closed(x, scale, dy, eps, axes, grad_ddof=1)[1]),
        ]
        out["dx"].append((no_mean, right_dxc))  # dx = dxc: the mean's path left out
    return out


def _norm_cases(name, specs, axes_of, wrong_axes_of, steps=False):
    rng = case_rng(name)
    refs, drawn = References(), []
    for shape, eps in specs:
        x = 2 * rng.normal(size=shape) + rng.normal(size=shape[-1:])
        scale, dy = nonzero(rng, shape[-1:], 0.5, 1.5), nonzero(rng, shape)
        axes = axes_of(len(shape))
        drawn.append((shape, eps, x, scale, dy, axes,
                      _norm_reference(refs, f64(x), f64(scale), f64(dy), eps, axes, steps)))
    answers = refs.run()
    cases = []
    for shape, eps, x, scale, dy, axes, h in drawn:
        expected = tuple(answers[h])
        if steps:
            dx, dscale, dbias, de = expected
            expected = (dx, dscale, dbias, {k: de[k] for k in STEPS})
        cases.append(Case(shape_label(x=x, scale=scale, dy=dy) + f", eps {eps:g}",
                          (f64(x), f64(scale), f64(dy), eps), expected,
                          in_x64(lambda x=x, s=scale, dy=dy, eps=eps, axes=axes,
                                w=wrong_axes_of(len(shape)):
                                _norm_mistakes(x, s, dy, eps, axes, w, steps))))
    return cases


def _layer_norm_cases():
    return _norm_cases("layer_norm_backward", [((3, 5), 1e-5), ((1, 4), 0.1),
                                               ((2, 3, 6), 1e-5)],
                       lambda nd: (nd - 1,),
                       lambda nd: [(0,), tuple(range(nd - 1))])


def _bn_axes(nd):
    return tuple(range(nd - 1))


def _bn_wrong_axes(nd):
    return [(nd - 1,)] + ([(0,)] if nd > 2 else [])


def _batch_norm_steps_cases():
    return _norm_cases("batch_norm_backward_steps", [((6, 4), 1e-5), ((1, 3, 4, 2), 0.1),
                                                     ((3, 2, 3, 3), 1e-5)],
                       _bn_axes, _bn_wrong_axes, steps=True)


def _batch_norm_cases():
    return _norm_cases("batch_norm_backward", [((5, 3), 1e-5), ((1, 4, 3, 2), 0.1),
                                               ((4, 2, 3, 3), 1e-5)],
                       _bn_axes, _bn_wrong_axes)


MODULE = "11_normalization.py"

EXERCISES = (
    exercise("layer_norm_backward", "layer norm: through the mean and the variance", "-",
             ("dx", "dscale", "dbias"), _layer_norm_cases),
    exercise("batch_norm_backward_steps", "batch norm, step by step through the graph", "-",
             ("dx", "dscale", "dbias", "steps"), _batch_norm_steps_cases),
    exercise("batch_norm_backward", "batch norm in closed form", "-",
             ("dx", "dscale", "dbias"), _batch_norm_cases),
)
