"""Grading specs of ``13_attention.py``: one head of causal attention."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxbp.grading.spec import (Case, References, case_rng, exercise, f64, in_x64, mistake,
                                nonzero, shape_label, vjp_of)


def _attention(q, k, v, *, scale=True, mask="causal"):
    time, depth = q.shape[1], q.shape[2]
    s = jnp.einsum("btd,bud->btu", q, k) * (1 / math.sqrt(depth) if scale else 1.0)
    causal = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    if mask == "causal":
        s = jnp.where(causal, s, jnp.finfo(s.dtype).min)
    p = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("btu,bud->btd", p, v)


def _attention_mistakes(q, k, v, dy):
    q, k, v, dy = f64(q), f64(k), f64(v), f64(dy)
    time, depth = q.shape[1], q.shape[2]
    c = 1 / math.sqrt(depth)
    causal = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    s = jnp.where(causal, c * jnp.einsum("btd,bud->btu", q, k), jnp.finfo(q.dtype).min)
    p = jax.nn.softmax(s, axis=-1)
    dp = jnp.einsum("btd,bud->btu", dy, v)
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))
    elementwise = p * (1 - p) * dp
    ds_t = jnp.swapaxes(ds, 1, 2)
    right = vjp_of(_attention, (q, k, v), dy)

    def grads_of(f):
        return vjp_of(f, (q, k, v), dy)

    unmasked = grads_of(lambda q, k, v: _attention(q, k, v, mask=None))
    # Masked with 0 instead of -inf: the masked entries get weight and gradient.
    pz = jax.nn.softmax(jnp.where(causal, s, 0.0), axis=-1)
    dpz = jnp.einsum("btd,bud->btu", dy, v)
    dsz = pz * (dpz - jnp.sum(dpz * pz, axis=-1, keepdims=True))
    zeros = (c * jnp.einsum("btu,bud->btd", dsz, k), c * jnp.einsum("btu,btd->bud", dsz, q),
             jnp.einsum("btu,btd->bud", pz, dy))
    unscaled = grads_of(lambda q, k, v: _attention(q, k, v, scale=False))
    soft = mistake("softmax-elementwise", "softmax treated entry by entry: each p[t, u] depends on "
                   "every score of its row, so ds = p · (dp - Σ_u dp · p), not p (1 - p) dp "
                   "(exercise 4)")
    mask_m = mistake("mask-gets-gradient", "the masked entries receive gradient: a score with "
                     "u > t never reached the output (its p is exactly 0), so its gradient is 0; "
                     "mask with -inf (or a very negative number) before the softmax, not with 0")
    scale_m = mistake("scale-forgotten", "the scale is forgotten: s = q k^T / sqrt(D), so dq and "
                      "dk carry the factor 1 / sqrt(D) too")
    transposed = mistake("transposed-scores", "the score gradient is transposed: s[t, u] pairs "
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
    rng = case_rng("attention_backward")
    refs, drawn = References(), []
    for batch, time, depth in [(2, 4, 3), (1, 5, 2), (3, 3, 4)]:
        q, k, v = (rng.normal(size=(batch, time, depth)) for _ in range(3))
        dy = nonzero(rng, (batch, time, depth))
        drawn.append((q, k, v, dy, refs.vjp(_attention, (f64(q), f64(k), f64(v)), f64(dy))))
    answers = refs.run()
    cases = []
    for q, k, v, dy, h in drawn:
        cases.append(Case(shape_label(q=q, k=k, v=v, dy=dy),
                          (f64(q), f64(k), f64(v), f64(dy)), tuple(answers[h]),
                          in_x64(lambda q=q, k=k, v=v, dy=dy: _attention_mistakes(q, k, v,
                                                                                 dy))))
    return cases


MODULE = "13_attention.py"

EXERCISES = (
    exercise("attention_backward", "causal attention, one head", "-", ("dq", "dk", "dv"),
             _attention_cases),
)
