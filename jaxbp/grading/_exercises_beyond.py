"""The exercises beyond the documents (17-30): their cases and named mistakes.

Each section specifies the exercises of one module of ``solutions/`` (``09_activations_more``
to ``15_sequence_loss_adam``): random cases in float64 over several shapes (batch 1 and
odd sizes among them), the expected answer from ``jax.vjp`` (or ``jax.grad``, or
optax) of a plain ``jnp`` forward written here, and the wrong answers that the common
mistakes give on the same inputs, each named for the learner.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxbp.grading._compare import Mistake
from jaxbp.grading._exercises import (MISSING_DERIVATIVE, Case, Exercise, _f64, _np,
                                      _nonzero, _out_shape, _rng, _shapes, _vjp)


def _m(key, message):
    return Mistake(key, message)


def _lazy(make):
    """Candidates computed on first use (only a failing answer needs them), in float64,
    as numpy arrays: ``make() -> {leaf: [(Mistake, wrong answer)]}``."""
    @functools.cache
    def run():
        with jax.enable_x64(True):
            out = make()
            return {leaf: [(m, np.asarray(w, np.float64)) for m, w in pairs]
                    for leaf, pairs in out.items()}
    return run


def _per_feature(v, ndim):
    """``(features,)`` as ``(1, ..., 1, features)``: explicit broadcasting."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


# ------------------------------------------------------------------ 09 activations


GELU_C, GELU_A = math.sqrt(2 / math.pi), 0.044715


def _gelu(x):
    return 0.5 * x * (1 + jnp.tanh(GELU_C * (x + GELU_A * x ** 3)))


def _gelu_mistakes(x, dy):
    t = np.tanh(GELU_C * (x + GELU_A * x ** 3))
    from math import erf

    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(erf)(x / math.sqrt(2)))

    def with_inner(du):
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

    inner = _m("inner-derivative", "the inner polynomial's derivative is wrong: u = c (x + "
               "0.044715 x³), so du/dx = c (1 + 3 · 0.044715 x²)")
    return {"dx": [
        (_m("erf-form", "that is the derivative of the erf form, Φ(x) + x φ(x): this "
            "exercise's GELU is the tanh form, 0.5 x (1 + tanh(c (x + 0.044715 x³)))"),
         dy * (cdf + x * phi)),
        (inner, with_inner(GELU_C * (1 + GELU_A * x * x))),
        (inner, with_inner(GELU_C)),
        (inner, with_inner(1.0)),
        (inner, with_inner(GELU_C * (x + GELU_A * x ** 3))),
        (_m("product-rule", "half of the product rule: y = (0.5 x) · (1 + tanh(u)); its "
            "derivative has a term for each factor"),
         dy * 0.5 * (1 + t)),
        (_m(MISSING_DERIVATIVE, "missing the activation's derivative: you returned dy "
            "unchanged; multiply it by GELU's derivative"), dy),
    ]}


def _gelu_cases():
    rng = _rng("gelu_backward")
    cases = []
    for shape in [(1, 4), (3, 5), (2, 3, 4)]:
        x, dy = 1.5 * _nonzero(rng, shape, 0.1, 2.0), _nonzero(rng, shape)
        (dx,) = _vjp(_gelu, (_f64(x),), _f64(dy))
        cases.append(Case(_shapes(x=x, dy=dy), (_f64(x), _f64(dy)), dx,
                          lambda x=x, dy=dy: _gelu_mistakes(x, dy)))
    return cases


def _leaky_cases():
    rng = _rng("leaky_relu_backward")
    cases = []
    for shape, slope in [((1, 5), 0.01), ((4, 3), 0.2), ((2, 3, 3), 0.1)]:
        x, dy = _nonzero(rng, shape, 0.1, 2.0), _nonzero(rng, shape)
        f = lambda x, s=slope: jnp.where(x >= 0, x, s * x)  # noqa: E731
        (dx,) = _vjp(f, (_f64(x),), _f64(dy))

        def candidates(x=x, dy=dy, s=slope):
            return {"dx": [
                (_m("slope-wrong-side", "the slope is on the wrong side: dy passes "
                    "unchanged where x >= 0 and is multiplied by negative_slope where "
                    "x < 0"), np.where(x >= 0, s * dy, dy)),
                (_m("missing-slope", "that is relu's backward: where x < 0 leaky relu "
                    "passes negative_slope * dy, not 0"), np.where(x >= 0, dy, 0.0)),
                (_m("mask-from-dy", "masked by the sign of dy: the two sides are those of "
                    "the forward's input x"), np.where(dy >= 0, dy, s * dy)),
                (_m(MISSING_DERIVATIVE, "missing the activation's derivative: you returned "
                    "dy unchanged"), dy),
            ]}
        cases.append(Case(_shapes(x=x, dy=dy) + f", negative_slope {slope}",
                          (_f64(x), _f64(dy), slope), dx, candidates))
    return cases


# ------------------------------------------------------------------ 10 average pool


def _avg_pool(x, window):
    wh, ww = window
    dims = (1, wh, ww, 1)
    return lax.reduce_window(x, 0.0, lax.add, dims, dims, "VALID") / (wh * ww)


def _avg_pool_mistakes(x, dy, window, expected):
    wh, ww = window
    batch, oh, ow, channels = dy.shape
    h, w = oh * wh, ow * ww
    copied = np.zeros_like(x)
    copied[:, :h, :w, :] = np.repeat(np.repeat(dy, wh, axis=1), ww, axis=2)
    first = np.zeros_like(x)
    first[:, 0:h:wh, 0:w:ww, :] = dy
    blocks = x[:, :h, :w, :].reshape(batch, oh, wh, ow, ww, channels)
    blocks = blocks.transpose(0, 1, 3, 5, 2, 4).reshape(batch, oh, ow, channels, wh * ww)
    winner = np.eye(wh * ww)[np.argmax(blocks, axis=-1)] * dy[..., None]
    winner = winner.reshape(batch, oh, ow, channels, wh, ww).transpose(0, 1, 4, 2, 5, 3)
    to_max = np.zeros_like(x)
    to_max[:, :h, :w, :] = winner.reshape(batch, h, w, channels)
    routed = _m("routed", "routed to one entry: average pooling spreads dy over the whole "
                "window, each entry getting dy / (wh · ww); only max pooling routes")
    return {"dx": [
        (routed, to_max),
        (routed, first),
        (_m("not-averaged", "copied dy to every entry of the window: the forward is a mean, "
            "so each entry gets dy / (wh · ww)"), copied),
        (_m("crop", "dx must have x's shape: the rows and columns no window covers get "
            "gradient 0 (pad them back)"), expected[:, :h, :w, :]),
    ]}


def _avg_pool_cases():
    rng = _rng("avg_pool2d_backward")
    cases = []
    for shape, window in [((1, 4, 4, 1), 2), ((2, 5, 7, 3), (2, 3)), ((3, 6, 4, 2), 3)]:
        win = (window, window) if isinstance(window, int) else window
        x = rng.normal(size=shape)
        f = lambda x, win=win: _avg_pool(x, win)  # noqa: E731
        dy = _nonzero(rng, _out_shape(f, _f64(x)))
        (dx,) = _vjp(f, (_f64(x),), _f64(dy))
        cases.append(Case(_shapes(x=x, dy=dy) + f", window {window!r}",
                          (_f64(x), _f64(dy), window), dx,
                          lambda x=x, dy=dy, win=win, dx=_np(dx):
                          _avg_pool_mistakes(x, dy, win, dx)))
    return cases


# ------------------------------------------------------------------ 11 normalization


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
    return xhat * _per_feature(scale, x.ndim) + _per_feature(bias, x.ndim)


STEPS = ("dxhat", "drstd", "dvar", "dxc", "dmean")


def _norm_reference(x, scale, dy, eps, axes, steps=False):
    bias = jnp.zeros_like(scale)
    if not steps:
        f = lambda x, s, b: _norm(x, s, b, eps, axes)  # noqa: E731
        return tuple(_vjp(f, (x, scale, bias), dy))
    stat = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    zeros = {"dxhat": jnp.zeros_like(x), "drstd": jnp.zeros(stat, x.dtype),
             "dvar": jnp.zeros(stat, x.dtype), "dxc": jnp.zeros_like(x),
             "dmean": jnp.zeros(stat, x.dtype)}
    f = lambda x, s, b, e: _norm(x, s, b, eps, axes, perturb=e)  # noqa: E731
    dx, dscale, dbias, de = _vjp(f, (x, scale, bias, zeros), dy)
    return dx, dscale, dbias, de


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
    dxhat = dy * _np(scale).reshape((1,) * (x.ndim - 1) + (-1,))
    dvar = (dxhat * xc).sum(axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    gd = var_ddof if grad_ddof is None else grad_ddof
    dxc = dxhat * rstd + (dvar * 2 * xc / (n - gd) if var_path else 0.0)
    dx = dxc - (dxc.sum(axis=axes, keepdims=True) / n if mean_path else 0.0)
    return dx, dxc


def _norm_mistakes(x, scale, dy, eps, axes, wrong_axes, steps=False):
    """Named mistakes of a normalization's backward, per output leaf."""
    x, scale, dy = _np(x), _np(scale), _np(dy)
    lead = tuple(range(x.ndim - 1))
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + eps)
    no_mean = _m("no-mean-gradient", "no gradient through the mean: the mean is computed "
                 "from every x it normalizes, so each x also gets -(1/n) Σ dxc through it")
    no_var = _m("no-variance-gradient", "no gradient through the variance: var depends on "
                "every x, so xc gets a second term, dvar · 2 xc / n, besides dxhat · rstd")
    constant = _m("constant-statistics", "the mean and the variance treated as constants: "
                  "dx = dy · scale · rstd leaves out the paths through both statistics")
    unbiased = _m("unbiased-variance", "the variance divided by n - 1 (unbiased): the "
                  "forward normalizes with the biased variance, divided by n (the "
                  "running statistics use n - 1, the normalization does not)")
    axes_m = _m("wrong-axes", "summed over the wrong axes: the statistics (and dscale, "
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
        "dscale": [(_m("x-for-xhat", "dscale multiplies dy by xhat, the normalized input "
                       "that scale multiplied, not by x"), (dy * x).sum(axis=lead))],
        "dbias": [],
    }
    n = math.prod(x.shape[a] for a in axes)
    if n > 1:
        out["dx"] += [
            (unbiased, _np(_vjp(lambda x, s, b: _norm(x, s, b, eps, axes, ddof=1),
                                (_f64(x), _f64(scale), _f64(np.zeros_like(scale))),
                                _f64(dy))[0])),
            (unbiased, _norm_closed(x, scale, dy, eps, axes, grad_ddof=1)[0]),
            (unbiased, _norm_closed(x, scale, dy, eps, axes, var_ddof=1, grad_ddof=0)[0]),
        ]
    for wrong in wrong_axes:
        out["dx"].append((axes_m, _np(_vjp(
            lambda x, s, b, w=wrong: _norm(x, s, b, eps, w),
            (_f64(x), _f64(scale), _f64(np.zeros_like(scale))), _f64(dy))[0])))
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
    rng = _rng(name)
    cases = []
    for shape, eps in specs:
        x = 2 * rng.normal(size=shape) + rng.normal(size=shape[-1:])
        scale, dy = _nonzero(rng, shape[-1:], 0.5, 1.5), _nonzero(rng, shape)
        axes = axes_of(len(shape))
        expected = _norm_reference(_f64(x), _f64(scale), _f64(dy), eps, axes, steps)
        if steps:
            dx, dscale, dbias, de = expected
            expected = (dx, dscale, dbias, {k: de[k] for k in STEPS})
        cases.append(Case(_shapes(x=x, scale=scale, dy=dy) + f", eps {eps:g}",
                          (_f64(x), _f64(scale), _f64(dy), eps), expected,
                          _lazy(lambda x=x, s=scale, dy=dy, eps=eps, axes=axes,
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


# ------------------------------------------------------------------ 12 dropout, embedding, residual


def _dropout_cases():
    rng = _rng("dropout_backward")
    cases = []
    for shape, rate in [((1, 6), 0.5), ((4, 5), 0.25), ((2, 3, 4), 0.1)]:
        mask = rng.uniform(size=shape) >= rate
        mask.flat[0], mask.flat[1] = True, False  # both kinds, whatever the draw
        dy = _nonzero(rng, shape)
        f = lambda x, m=jnp.asarray(mask), r=rate: jnp.where(m, x / (1 - r), 0.0)  # noqa: E731
        (dx,) = _vjp(f, (_f64(np.ones(shape)),), _f64(dy))

        def candidates(mask=mask, dy=dy, r=rate):
            return {"dx": [
                (_m("missing-scale", "missing the scale: the kept entries were divided by "
                    "1 - rate in the forward, so their gradient is dy / (1 - rate)"),
                 np.where(mask, dy, 0.0)),
                (_m("scale-inverted", "multiplied by 1 - rate: the forward divided the kept "
                    "entries by 1 - rate, so the backward divides too"),
                 np.where(mask, dy * (1 - r), 0.0)),
                (_m("inverted-mask", "the mask is inverted: gradient flows through the kept "
                    "entries (mask True) and not through the dropped ones"),
                 np.where(mask, 0.0, dy / (1 - r))),
                (_m("no-mask", "the mask is missing: a dropped entry did not reach the "
                    "output, so its gradient is 0"), dy / (1 - r)),
            ]}
        cases.append(Case(_shapes(mask=mask, dy=dy) + f", rate {rate}",
                          (jnp.asarray(mask), _f64(dy), rate), dx, candidates))
    return cases


def _embedding_cases():
    rng = _rng("embedding_backward")
    cases = []
    for ids_shape, vocab, features in [((1, 6), 4, 3), ((3, 4), 7, 2), ((2, 3, 2), 5, 4)]:
        ids = rng.integers(0, vocab - 1, size=ids_shape)  # the last row is never used
        ids.flat[1] = ids.flat[0]  # at least one id repeats
        dy = _nonzero(rng, (*ids_shape, features))
        w = _nonzero(rng, (vocab, features))
        idsj = jnp.asarray(ids, dtype=jnp.int32)
        (dw,) = _vjp(lambda w, i=idsj: w[i], (_f64(w),), _f64(dy))

        def candidates(ids=ids, dy=dy, vocab=vocab):
            flat_ids, rows = ids.reshape(-1), dy.reshape(-1, dy.shape[-1])
            last, first = np.zeros((vocab, rows.shape[1])), np.zeros((vocab, rows.shape[1]))
            last[flat_ids] = rows
            first[flat_ids[::-1]] = rows[::-1]
            summed = np.zeros_like(last)
            np.add.at(summed, flat_ids, rows)
            counts = np.bincount(flat_ids, minlength=vocab)[:, None]
            assigned = _m("assignment", "assignment loses repeated ids: an id used at several "
                          "positions gets the sum of their dy (a.at[ids].add, not "
                          "a.at[ids].set)")
            return {"dw": [(assigned, last), (assigned, first),
                           (_m("mean-of-repeats", "averaged over the repeats of an id: every "
                               "use adds its dy, so the row gets their sum"),
                            summed / np.maximum(counts, 1))]}
        cases.append(Case(_shapes(ids=ids, dy=dy) + f", vocab_size {vocab}",
                          (idsj, _f64(dy), vocab), dw, candidates))
    return cases


def _residual_cases():
    import jaxbp

    branches = [
        ((jaxbp.dense(4), jaxbp.tanh(), jaxbp.dense(3)), (1, 3)),
        ((jaxbp.dense(6), jaxbp.relu(), jaxbp.dense(5), jaxbp.sigmoid()), (3, 5)),
        ((jaxbp.conv2d(2, 3, padding="SAME"), jaxbp.tanh()), (2, 4, 5, 2)),
    ]
    rng = _rng("residual_backward")
    cases = []
    for layers, shape in branches:
        branch = jaxbp.serial(*layers)
        shapes, _ = jax.eval_shape(lambda k, b=branch, s=shape[1:]: b.init(k, s),
                                   jax.random.key(0))
        params = jax.tree.map(lambda s: _f64(rng.normal(size=s.shape) / 2), shapes)
        x = _f64(rng.normal(size=shape))
        dy = _f64(_nonzero(rng, shape))

        @jax.jit
        def reference(params, x, dy, branch=branch):
            fx, residuals = branch.forward(params, x)
            _, pullback = jax.vjp(lambda p, x: x + branch.forward(p, x)[0], params, x)
            return residuals, pullback(dy)

        residuals, (dparams, dx) = reference(params, x, dy)

        def candidates(dx=_np(dx), dy=_np(dy)):
            return {"dx": [
                (_m("identity-forgotten", "the identity path is missing: x reaches y directly "
                    "(y = x + f(x)) as well as through the branch, so dx = dy + the "
                    "branch's dx"), dx - dy),
                (_m("branch-forgotten", "the branch's path is missing: x also reaches y "
                    "through f, so dx = dy + the branch's dx"), dy),
            ]}
        label = "branch " + ", ".join(layer.name for layer in layers) + f"; x {shape}"
        cases.append(Case(label, (branch, params, residuals, dy), (dparams, dx), candidates))
    return cases


# ------------------------------------------------------------------ 13 attention


def _attention(q, k, v, *, scale=True, mask="causal"):
    time, depth = q.shape[1], q.shape[2]
    s = jnp.einsum("btd,bud->btu", q, k) * (1 / math.sqrt(depth) if scale else 1.0)
    causal = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    if mask == "causal":
        s = jnp.where(causal, s, jnp.finfo(s.dtype).min)
    p = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("btu,bud->btd", p, v)


def _attention_mistakes(q, k, v, dy):
    q, k, v, dy = _f64(q), _f64(k), _f64(v), _f64(dy)
    time, depth = q.shape[1], q.shape[2]
    c = 1 / math.sqrt(depth)
    causal = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    s = jnp.where(causal, c * jnp.einsum("btd,bud->btu", q, k), jnp.finfo(q.dtype).min)
    p = jax.nn.softmax(s, axis=-1)
    dp = jnp.einsum("btd,bud->btu", dy, v)
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))
    elementwise = p * (1 - p) * dp
    ds_t = jnp.swapaxes(ds, 1, 2)
    right = _vjp(_attention, (q, k, v), dy)

    def grads_of(f):
        return _vjp(f, (q, k, v), dy)

    unmasked = grads_of(lambda q, k, v: _attention(q, k, v, mask=None))
    # Masked with 0 instead of -inf: the masked entries get weight and gradient.
    pz = jax.nn.softmax(jnp.where(causal, s, 0.0), axis=-1)
    dpz = jnp.einsum("btd,bud->btu", dy, v)
    dsz = pz * (dpz - jnp.sum(dpz * pz, axis=-1, keepdims=True))
    zeros = (c * jnp.einsum("btu,bud->btd", dsz, k), c * jnp.einsum("btu,btd->bud", dsz, q),
             jnp.einsum("btu,btd->bud", pz, dy))
    unscaled = grads_of(lambda q, k, v: _attention(q, k, v, scale=False))
    soft = _m("softmax-elementwise", "softmax treated entry by entry: each p[t, u] depends on "
              "every score of its row, so ds = p · (dp - Σ_u dp · p), not p (1 - p) dp "
              "(exercise 4)")
    mask_m = _m("mask-gets-gradient", "the masked entries receive gradient: a score with "
                "u > t never reached the output (its p is exactly 0), so its gradient is 0; "
                "mask with -inf (or a very negative number) before the softmax, not with 0")
    scale_m = _m("scale-forgotten", "the scale is forgotten: s = q k^T / sqrt(D), so dq and "
                 "dk carry the factor 1 / sqrt(D) too")
    transposed = _m("transposed-scores", "the score gradient is transposed: s[t, u] pairs "
                    "query t with key u, so dq[t] = c Σ_u ds[t, u] k[u] and "
                    "dk[u] = c Σ_t ds[t, u] q[t]")
    return {
        "dq": [(soft, c * jnp.einsum("btu,bud->btd", elementwise, k)),
               (mask_m, unmasked[0]), (mask_m, zeros[0]),
               (scale_m, right[0] / c), (scale_m, unscaled[0]),
               (transposed, c * jnp.einsum("btu,bud->btd", ds_t, k))],
        "dk": [(soft, c * jnp.einsum("btu,btd->bud", elementwise, q)),
               (mask_m, unmasked[1]), (mask_m, zeros[1]),
               (scale_m, right[1] / c), (scale_m, unscaled[1]),
               (transposed, c * jnp.einsum("btu,btd->bud", ds_t, q))],
        "dv": [(mask_m, unmasked[2]), (mask_m, zeros[2])],
    }


def _attention_cases():
    rng = _rng("attention_backward")
    cases = []
    for batch, time, depth in [(2, 4, 3), (1, 5, 2), (3, 3, 4)]:
        q, k, v = (rng.normal(size=(batch, time, depth)) for _ in range(3))
        dy = _nonzero(rng, (batch, time, depth))
        expected = _vjp(_attention, (_f64(q), _f64(k), _f64(v)), _f64(dy))
        cases.append(Case(_shapes(q=q, k=k, v=v, dy=dy),
                          (_f64(q), _f64(k), _f64(v), _f64(dy)), tuple(expected),
                          _lazy(lambda q=q, k=k, v=v, dy=dy: _attention_mistakes(q, k, v,
                                                                                 dy))))
    return cases


# ------------------------------------------------------------------ 14 recurrent


def _rnn(x, wx, wh, b):
    def step(h, x_t):
        h = jnp.tanh(x_t @ wx + h @ wh + b[None, :])
        return h, h

    h0 = jnp.zeros((x.shape[0], wh.shape[0]), x.dtype)
    _, hs = lax.scan(step, h0, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def _rnn_np(x, h, wx, wh, b, dh, *, carry=True, preact=False, last_only=False,
            wh_transposed=True):
    """Backpropagation through time in numpy, right or with a named mistake."""
    batch, time, _ = x.shape
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    da = np.zeros_like(h)
    back = np.zeros_like(h[:, 0])
    for t in reversed(range(time)):
        if preact:
            a = x[:, t] @ wx + h_prev[:, t] @ wh + b[None, :]
            deriv = 1 - a * a
        else:
            deriv = 1 - h[:, t] ** 2
        da[:, t] = (dh[:, t] + (back if carry else 0.0)) * deriv
        back = da[:, t] @ (wh.T if wh_transposed else wh)
    dx = np.einsum("bth,ih->bti", da, wx)
    steps = slice(time - 1, time) if last_only else slice(None)
    dwx = np.einsum("bti,bth->ih", x[:, steps], da[:, steps])
    dwh = np.einsum("btg,bth->gh", h_prev[:, steps], da[:, steps])
    db = da[:, steps].sum(axis=(0, 1))
    return {"dx": dx, "dwx": dwx, "dwh": dwh, "db": db}


def _rnn_mistakes(*args):
    named = [
        (_m("not-carried", "the gradient is not carried to the previous step: h[:, t] also "
            "feeds step t + 1, so its total gradient is dh[:, t] plus da_{t+1} @ wh.T"),
         _rnn_np(*args, carry=False)),
        (_m("tanh-prime-preactivation", "tanh's derivative taken at the pre-activation: it "
            "is 1 - h_t², written with tanh's output h_t = tanh(a_t), not 1 - a_t²"),
         _rnn_np(*args, preact=True)),
        (_m("last-step-only", "the weights' gradients from the last step only: wx, wh and b "
            "are used at every step, so their gradients are sums over all the steps"),
         _rnn_np(*args, last_only=True)),
        (_m("wh-not-transposed", "the carried gradient is da_t @ wh; it must be da_t @ wh.T "
            "(wh maps h_{t-1} to a_t from the right)"), _rnn_np(*args, wh_transposed=False)),
    ]
    out = {}
    for leaf in ("dx", "dwx", "dwh", "db"):
        out[leaf] = [(m, wrong[leaf]) for m, wrong in named]
    return out


def _rnn_cases():
    rng = _rng("rnn_backward")
    cases = []
    for batch, time, n_in, hidden in [(2, 4, 3, 2), (1, 5, 2, 4), (3, 3, 4, 3)]:
        x = rng.normal(size=(batch, time, n_in))
        wx = rng.normal(size=(n_in, hidden)) / math.sqrt(n_in)
        wh = 0.8 * rng.normal(size=(hidden, hidden)) / math.sqrt(hidden)
        b = 0.5 * rng.normal(size=(hidden,))
        h = _np(jax.jit(_rnn)(_f64(x), _f64(wx), _f64(wh), _f64(b)))
        dh = _nonzero(rng, h.shape)
        expected = _vjp(_rnn, (_f64(x), _f64(wx), _f64(wh), _f64(b)), _f64(dh))
        args = (x, h, wx, wh, b, dh)
        cases.append(Case(_shapes(x=x, h=h, wx=wx, wh=wh, dh=dh),
                          tuple(_f64(a) for a in args), tuple(expected),
                          functools.cache(lambda args=args: _rnn_mistakes(*args))))
    return cases


def _lstm_cell(x, h_prev, c_prev, wx, wh, b, order="ifgo"):
    hidden = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    gate = {name: z[:, j * hidden:(j + 1) * hidden] for j, name in enumerate(order)}
    i, f, o = (jax.nn.sigmoid(gate[n]) for n in "ifo")
    g = jnp.tanh(gate["g"])
    c = f * c_prev + i * g
    return o * jnp.tanh(c), c


def _lstm_np(x, h_prev, c_prev, wx, wh, b, dh, dc, *, through_h=True, incoming=True,
             tanh_prime=True):
    hidden = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    i, f = sig(z[:, :hidden]), sig(z[:, hidden:2 * hidden])
    g, o = np.tanh(z[:, 2 * hidden:3 * hidden]), sig(z[:, 3 * hidden:])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    dc_total = ((dc if incoming else 0.0)
                + (dh * o * ((1 - tc * tc) if tanh_prime else 1.0) if through_h else 0.0))
    dz = np.concatenate([dc_total * g * i * (1 - i), dc_total * c_prev * f * (1 - f),
                         dc_total * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
    return {"dx": dz @ wx.T, "dh_prev": dz @ wh.T, "dc_prev": dc_total * f,
            "dwx": x.T @ dz, "dwh": h_prev.T @ dz, "db": dz.sum(axis=0)}


LSTM_OUTPUTS = ("dx", "dh_prev", "dc_prev", "dwx", "dwh", "db")


def _lstm_mistakes(x, h_prev, c_prev, wx, wh, b, dh, dc):
    args = (x, h_prev, c_prev, wx, wh, b, dh, dc)
    swapped = _vjp(lambda *p: _lstm_cell(*p, order="ifog"),
                   tuple(_f64(a) for a in args[:6]), (_f64(dh), _f64(dc)))
    named = [
        (_m("gate-order", "the gates in the wrong order: this cell's z holds them in "
            "PyTorch's order, input, forget, cell (g), output; CS231n's is i, f, o, g"),
         dict(zip(LSTM_OUTPUTS, (_np(a) for a in swapped)))),
        (_m("cell-path-missing", "the cell state's gradient misses the path through "
            "h = o · tanh(c): dc_total = dc + dh · o · (1 - tanh(c)²)"),
         _lstm_np(*args, through_h=False)),
        (_m("incoming-dc-ignored", "the incoming dc is ignored: c also flows to the next "
            "step, whose gradient dc adds to the one through h"),
         _lstm_np(*args, incoming=False)),
        (_m(MISSING_DERIVATIVE, "missing tanh's derivative on the way from h to c: "
            "h = o · tanh(c), so dc gets dh · o · (1 - tanh(c)²)"),
         _lstm_np(*args, tanh_prime=False)),
    ]
    return {leaf: [(m, wrong[leaf]) for m, wrong in named] for leaf in LSTM_OUTPUTS}


def _lstm_cases():
    rng = _rng("lstm_cell_backward")
    cases = []
    for batch, n_in, hidden in [(2, 3, 2), (1, 2, 4), (4, 5, 3)]:
        x, h_prev, c_prev = (rng.normal(size=s) for s in
                             [(batch, n_in), (batch, hidden), (batch, hidden)])
        wx = rng.normal(size=(n_in, 4 * hidden)) / math.sqrt(n_in)
        wh = rng.normal(size=(hidden, 4 * hidden)) / math.sqrt(hidden)
        b = 0.5 * rng.normal(size=(4 * hidden,))
        dh, dc = _nonzero(rng, (batch, hidden)), _nonzero(rng, (batch, hidden))
        args = (x, h_prev, c_prev, wx, wh, b)
        expected = _vjp(_lstm_cell, tuple(_f64(a) for a in args), (_f64(dh), _f64(dc)))
        cases.append(Case(_shapes(x=x, h_prev=h_prev, wx=wx, wh=wh),
                          tuple(_f64(a) for a in (*args, dh, dc)), tuple(expected),
                          _lazy(lambda a=(*args, dh, dc): _lstm_mistakes(*a))))
    return cases


# ------------------------------------------------------------------ 15 sequence loss, adam


def _sequence_xent(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def _sequence_xent_cases():
    rng = _rng("sequence_cross_entropy_backward")
    cases = []
    for batch, time, classes in [(3, 5, 6), (1, 4, 3), (4, 3, 5)]:
        logits = 2 * rng.normal(size=(batch, time, classes))
        labels = rng.integers(0, classes, size=(batch, time))
        lj, yj = _f64(logits), jnp.asarray(labels, dtype=jnp.int32)
        (dlogits,) = _vjp(lambda z: _sequence_xent(z, yj), (lj,), _f64(1.0))

        def candidates(logits=logits, labels=labels):
            b, t, c = logits.shape
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            diff = e / e.sum(axis=-1, keepdims=True) - np.eye(c)[labels]
            return {"dlogits": [
                (_m("mean-over-batch-only", "the mean over the batch only: the loss "
                    "averages over the batch and the time steps, batch · time terms"),
                 diff / b),
                (_m("mean-over-time-only", "the mean over the time steps only: the loss "
                    "averages over the batch and the time steps, batch · time terms"),
                 diff / t),
                (_m("no-mean", "missing the mean: the loss is the mean over batch · time "
                    "positions, so its gradient carries 1 / (batch · time)"), diff),
                (_m("logits-for-probs", "used the logits where the softmax probabilities "
                    "belong: the gradient is (softmax(logits) - one_hot(labels)) / "
                    "(batch · time)"), (logits - np.eye(c)[labels]) / (b * t)),
            ]}
        cases.append(Case(_shapes(logits=logits, labels=labels), (lj, yj), dlogits,
                          candidates))
    return cases


ADAM_OUTPUTS = ("new_params", "new_m", "new_v")


def _adam_np(p, g, m, v, step, lr, b1, b2, eps, *, correct=True, eps_inside=False,
             update_moments=True):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    um, uv = (new_m, new_v) if update_moments else (m, v)
    if correct:
        um, uv = um / (1 - b1 ** step), uv / (1 - b2 ** step)
    denom = np.sqrt(uv + eps) if eps_inside else np.sqrt(uv) + eps
    return p - lr * um / denom, new_m, new_v


def _adam_mistakes(params, grads, m, v, step, lr, b1, b2, eps):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    leaves = [jax.tree.leaves(t) for t in (grads, m, v)]
    out = {}
    no_correction = _m("no-bias-correction", "no bias correction: m and v start at 0, so "
                       "early on they are too small by the factors 1 - b1^step and "
                       "1 - b2^step; divide by them")
    inside = _m("eps-inside-sqrt", "epsilon inside the square root: the step is "
                "m_hat / (sqrt(v_hat) + eps), eps outside (as in the paper and in optax)")
    not_updated = _m("moments-not-updated", "the moments are not updated: first "
                     "m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g², then the step with "
                     "the new m and v (and return the new ones)")
    off = _m("step-off-by-one", "the bias correction uses the wrong step count: step is "
             "the number of this update (1 for the first), and the factors are 1 - b1^step, "
             "1 - b2^step")
    for (path, p), g, mm, vv in zip(flat, *leaves):
        key = jax.tree_util.keystr(path)
        p, g, mm, vv = _np(p), _np(g), _np(mm), _np(vv)
        args = (p, g, mm, vv, step, lr, b1, b2, eps)
        out["new_params" + key] = [
            (no_correction, _adam_np(*args, correct=False)[0]),
            (inside, _adam_np(*args, eps_inside=True)[0]),
            (not_updated, _adam_np(*args, update_moments=False)[0]),
            (off, _adam_np(p, g, mm, vv, step + 1, lr, b1, b2, eps)[0]),
        ]
        out["new_m" + key] = [(not_updated, mm)]
        out["new_v" + key] = [(not_updated, vv)]
    return out


def _adam_cases():
    import optax

    rng = _rng("adam_update")
    cases = []
    trees = [
        ({"w": (3, 2), "b": (2,)}, 1, (0.1, 0.9, 0.999, 1e-8)),
        (({"w": (2, 3)}, (), {"w": (3, 1), "b": (1,)}), 3, (0.05, 0.8, 0.9, 0.1)),
        ((5,), 4, (0.2, 0.5, 0.7, 1e-3)),
    ]
    is_shape = lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s)  # noqa: E731
    for shapes, step, (lr, b1, b2, eps) in trees:
        def draw(scale=1.0, shapes=shapes):
            return jax.tree.map(lambda s: _f64(scale * _nonzero(rng, s)), shapes,
                                is_leaf=is_shape)
        params = draw()
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps)
        state = opt.init(params)
        for _ in range(step - 1):  # optax's own steps up to this one
            updates, state = opt.update(draw(0.3), state, params)
            params = optax.apply_updates(params, updates)
        grads = draw(0.3)
        mu, nu = state[0].mu, state[0].nu
        updates, new_state = opt.update(grads, state, params)
        expected = (optax.apply_updates(params, updates), new_state[0].mu, new_state[0].nu)
        label = (f"params {jax.tree.map(lambda a: tuple(a.shape), params)}, step {step}, "
                 f"lr {lr}, b1 {b1}, b2 {b2}, eps {eps:g}")
        args = (params, grads, mu, nu, step, lr, b1, b2, eps)
        cases.append(Case(label, args, expected,
                          functools.cache(lambda a=args: _adam_mistakes(*a))))
    return cases


# ------------------------------------------------------------------ the registry


def _ex(number, name, module, title, outputs, make_cases, **kw):
    return Exercise(number, name, module, title, "-", outputs, make_cases, (), **kw)


BEYOND: tuple[Exercise, ...] = (
    _ex(17, "gelu_backward", "09_activations_more.py", "GELU (tanh form): a composite",
        ("dx",), _gelu_cases),
    _ex(18, "leaky_relu_backward", "09_activations_more.py", "leaky relu", ("dx",),
        _leaky_cases),
    _ex(19, "avg_pool2d_backward", "10_pool_avg.py", "average pooling: spread, not route",
        ("dx",), _avg_pool_cases, static_argnums=(2,)),
    _ex(20, "layer_norm_backward", "11_normalization.py",
        "layer norm: through the mean and the variance", ("dx", "dscale", "dbias"),
        _layer_norm_cases),
    _ex(21, "batch_norm_backward_steps", "11_normalization.py",
        "batch norm, step by step through the graph", ("dx", "dscale", "dbias", "steps"),
        _batch_norm_steps_cases),
    _ex(22, "batch_norm_backward", "11_normalization.py", "batch norm in closed form",
        ("dx", "dscale", "dbias"), _batch_norm_cases),
    _ex(23, "dropout_backward", "12_dropout_embedding_residual.py",
        "inverted dropout: the forward's mask and scale", ("dx",), _dropout_cases),
    _ex(24, "embedding_backward", "12_dropout_embedding_residual.py",
        "embedding: scatter-add over repeated ids", ("dw",), _embedding_cases,
        static_argnums=(2,)),
    _ex(25, "residual_backward", "12_dropout_embedding_residual.py",
        "the residual fork: two paths add", ("dparams", "dx"), _residual_cases,
        static_argnums=(0,)),
    _ex(26, "attention_backward", "13_attention.py", "causal attention, one head",
        ("dq", "dk", "dv"), _attention_cases),
    _ex(27, "rnn_backward", "14_recurrent.py", "a tanh RNN, backpropagation through time",
        ("dx", "dwx", "dwh", "db"), _rnn_cases),
    _ex(28, "lstm_cell_backward", "14_recurrent.py", "one LSTM step, four gates",
        LSTM_OUTPUTS, _lstm_cases),
    _ex(29, "sequence_cross_entropy_backward", "15_sequence_loss_adam.py",
        "cross-entropy over batch and time", ("dlogits",), _sequence_xent_cases),
    _ex(30, "adam_update", "15_sequence_loss_adam.py", "Adam, with bias correction",
        ADAM_OUTPUTS, _adam_cases),
)
