"""Causal multi-head self-attention (GPT-2's), its forward beside its hand-written backward.

Shapes: ``x`` is ``(batch, time, features)`` = ``(B, T, F)``; ``heads`` = ``H`` divides
``F``, each head has ``D = F // H`` features. Params, as GPT-2 lays them out::

    {"qkv":  {"w": (F, 3F), "b": (3F,)},   # columns [q | k | v], each F wide and cut
     "proj": {"w": (F, F),  "b": (F,)}}    # into H contiguous slices of D, one per head

Forward (``t`` a query position, ``s`` a key position, ``h`` a head)::

    [q | k | v] = x @ Wqkv + bqkv                      (B, T, 3F), then each (B, T, H, D)
    s[h, t, s'] = (q[t, h] . k[s', h]) / sqrt(D)        scores, (B, H, T, T)
    p[h, t, :]  = softmax over s' <= t of s[h, t, :]    causal: p[h, t, s'] = 0 for s' > t
    o[t, h]     = sum_s' p[h, t, s'] v[s', h]           (B, T, H, D), heads back to (B, T, F)
    y           = o @ Wproj + bproj                     (B, T, F)

The softmax subtracts each row's maximum before ``exp``. Masked scores are replaced by
the dtype's most negative finite number *before* the maximum and the ``exp`` (a
``where``, not an added ``-inf``), so ``exp`` of a masked entry is exactly 0, never
``exp(inf)`` or ``inf - inf``: no NaN in the forward pass, in this backward, or in
``jax.grad`` of the forward (whose gradient through a ``where`` would turn an ``inf``
in the unused branch into NaN). Every row holds at least its diagonal, so no row is all
masked.

The heads are a batch axis of batched matmuls over ``(B, H)``; see
:func:`causal_self_attention` for the formulation kept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp import _random
from jaxbp._checks import (cast, cast_like, check_dy, check_float_dtype, check_key,
                           check_params, check_residuals, compute_dtype,
                           static_layer_field)
from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)


@static_layer_field
class AttentionResiduals(NamedTuple):
    x: jax.Array  # (B, T, F) the input, for dWqkv (in its own dtype, that of dx)
    q: jax.Array  # (B, H, T, D) queries, already scaled by 1/sqrt(D)
    k: jax.Array  # (B, H, T, D) keys
    v: jax.Array  # (B, H, T, D) values
    p: jax.Array  # (B, H, T, T) attention weights, exactly 0 where masked
    o: jax.Array  # (B*T, F) the heads' outputs side by side, for dWproj
    layer: str    # static: the name of the layer that made them (its heads)


def _expected_params(features, where):
    """:func:`~jaxbp._checks.check_params`'s arguments after ``params``: the shapes for
    ``features`` (``None``: any), the layer's name, the axis names."""
    f = features
    three = None if f is None else 3 * f
    expected = {"qkv": {"w": (f, three), "b": (three,)}, "proj": {"w": (f, f), "b": (f,)}}
    axes = {"qkv": {"w": ("F", "3F"), "b": ("3F",)}, "proj": {"w": ("F", "F"), "b": ("F",)}}
    return expected, where, axes


def causal_mask(time: int) -> jax.Array:
    """``(time, time)`` booleans, ``True`` where query ``t`` may attend to key ``s <= t``."""
    return jnp.tril(jnp.ones((time, time), dtype=bool))


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax over the last axis of ``scores`` restricted to ``mask``; 0 where masked.

    Args:
      scores: ``(..., T, T)`` logits.
      mask: booleans broadcastable to ``scores`` (same rank); every row keeps at least
        one entry.

    Returns:
      ``p`` of the shape of ``scores``: each row sums to 1 over its unmasked entries.
    """
    lowest = jnp.asarray(jnp.finfo(scores.dtype).min, scores.dtype)
    scores = jnp.where(mask, scores, lowest)
    # The row maximum is over unmasked entries only (masked ones sit at `lowest`), so
    # the largest exponent is exp(0) = 1 and masked ones underflow to exactly 0.
    e = jnp.exp(scores - jnp.max(scores, axis=-1, keepdims=True))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def masked_softmax_backward(p: jax.Array, dp: jax.Array) -> jax.Array:
    """The vector-Jacobian product of :func:`masked_softmax`, row by row.

    ``ds = p * (dp - sum_s' dp[s'] p[s'])``: the softmax's ``J = diag(p) - p p^T``
    applied without forming it. Where ``p`` is exactly 0 (masked) ``ds`` is exactly 0:
    masked scores get no gradient.
    """
    return p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))


def causal_self_attention(heads: int, *, dtype=None) -> Layer:
    """Causal multi-head self-attention, as in GPT-2.

    Args:
      heads: the number of heads ``H``, a positive int dividing the features ``F``.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, time, F)`` to ``(batch, time, F)`` with
      params ``{"qkv": {"w": (F, 3F), "b": (3F,)}, "proj": {"w": (F, F), "b": (F,)}}``
      (the module docstring gives the math and the layout).

    Formulation (measured, ``benchmarks/sequence_formulations.py``): ``q``, ``k``,
    ``v`` are transposed once to ``(B, H, T, D)`` and every product is a batched matmul
    over ``(B, H)`` (no Python loop over heads). The same einsums on the ``(B, T, H, D)``
    views, without the transposes, left XLA's CPU backend to rearrange the operands of
    each product itself: the scores, softmax and weighted sum ran 3x slower (2.2 ms
    against 7.3 ms at ``B, T, F, H = 16, 64, 128, 4``). The scale ``1/sqrt(D)`` is
    applied to ``q`` (``B*T*F`` multiplications) rather than to the scores
    (``B*H*T*T``). The projections are single matmuls over all ``B*T`` rows.
    """
    heads = check_positive_int(heads, "heads", "causal_self_attention")
    dtype = check_float_dtype(dtype, "dtype", "causal_self_attention")
    where = f"causal_self_attention({heads}" + (
        "" if dtype is None else f", dtype='{dtype}'") + ")"

    def _check_features(features, what):
        if features % heads:
            raise ValueError(f"{where}: the features must be divisible by heads = {heads}, "
                             f"got {what}")

    def init(key, input_shape):
        check_key(key, where)
        time, features = check_input_shape(input_shape, 2, where)
        _check_features(features, f"input_shape {shape_str((time, features))}")
        dt = as_dtype(dtype)
        # LeCun-normal, as dense: unit-variance inputs give unit-variance q, k, v.
        scale = 1.0 / math.sqrt(features)
        params = {
            "qkv": {"w": _random.normal(key, (features, 3 * features), dt, scale=scale),
                    "b": _random.zeros((3 * features,), dt)},
            "proj": {"w": _random.normal(key, (features, features), dt, scale=scale,
                                         stream=1),
                     "b": _random.zeros((features,), dt)},
        }
        return params, (time, features)

    def forward(params, x):
        check_params(params, *_expected_params(None, where))
        x = check_array(x, "x", where)
        check_rank(x, 3, "x", where, "(batch, time, features)")
        batch, time, features = x.shape
        w_qkv = params["qkv"]["w"]
        if w_qkv.shape != (features, 3 * features):
            raise ValueError(f"{where}: params['qkv']['w'] must have shape "
                             f"{shape_str((features, 3 * features))} for x of shape "
                             f"{shape_str(x.shape)}, got {shape_str(w_qkv.shape)}")
        check_params(params, *_expected_params(features, where))
        _check_features(features, f"x of shape {shape_str(x.shape)}")
        d = features // heads
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        ct = compute_dtype(x, params)
        x_in, x = x, cast(x, ct)
        w_qkv, b_qkv = cast(w_qkv, ct), cast(params["qkv"]["b"], ct)
        w_proj, b_proj = cast(params["proj"]["w"], ct), cast(params["proj"]["b"], ct)
        qkv = (x.reshape(batch * time, features) @ w_qkv + b_qkv[None, :])
        # (B*T, 3F) -> (3, B, H, T, D): q, k, v with the heads as a batch axis.
        qkv = qkv.reshape(batch, time, 3, heads, d).transpose(2, 0, 3, 1, 4)
        q = qkv[0] * (1.0 / math.sqrt(d))
        k, v = qkv[1], qkv[2]
        scores = jnp.einsum("bhtd,bhsd->bhts", q, k)
        p = masked_softmax(scores, causal_mask(time)[None, None])
        o = jnp.einsum("bhts,bhsd->bhtd", p, v)
        o = o.transpose(0, 2, 1, 3).reshape(batch * time, features)  # heads side by side
        y = o @ w_proj + b_proj[None, :]
        return y.reshape(batch, time, features), AttentionResiduals(x_in, q, k, v, p, o,
                                                                    where)

    def backward(params, residuals, dy):
        """Backward, stage by stage (``c = 1/sqrt(D)``, sums over ``B`` and ``T`` rows):

        * output projection: ``dWproj = o^T dy``, ``dbproj = sum dy``,
          ``do = dy Wproj^T``, then ``do`` split into heads ``(B, T, H, D)``;
        * weighted sum ``o = p v``: ``dp = do v^T`` (per head, ``(T, T)``),
          ``dv = p^T do``;
        * row-wise softmax: ``ds = p * (dp - sum_s' dp p)``, 0 where masked;
        * scores ``s = (c q) k^T``: ``dq = c ds k``, ``dk = ds^T (c q)``;
        * head split: ``[dq | dk | dv]`` heads concatenated back, ``(B, T, 3F)``;
        * qkv projection: ``dWqkv = x^T dqkv``, ``dbqkv = sum dqkv``,
          ``dx = dqkv Wqkv^T``.
        """
        check_residuals(residuals, AttentionResiduals, where)
        x_in, q, k, v, p, o = residuals[:6]
        batch, time, features = x_in.shape
        check_params(params, *_expected_params(features, where))
        dy = check_dy(dy, x_in.shape, where)
        # The forward's dtype promoted with dy's; each gradient back in its primal's.
        ct = jnp.result_type(compute_dtype(x_in, params), dy)
        x, dy, q, k, v, p, o = (cast(a, ct) for a in (x_in, dy, q, k, v, p, o))
        w_qkv, w_proj = cast(params["qkv"]["w"], ct), cast(params["proj"]["w"], ct)
        d = features // heads
        rows = batch * time
        dy2 = dy.reshape(rows, features)
        d_proj = {"w": o.T @ dy2, "b": jnp.sum(dy2, axis=0)}
        do = (dy2 @ w_proj.T).reshape(batch, time, heads, d)
        do = do.transpose(0, 2, 1, 3)  # (B, H, T, D)
        dp = jnp.einsum("bhtd,bhsd->bhts", do, v)
        dv = jnp.einsum("bhts,bhtd->bhsd", p, do)
        ds = masked_softmax_backward(p, dp)
        dq = jnp.einsum("bhts,bhsd->bhtd", ds, k) * (1.0 / math.sqrt(d))
        dk = jnp.einsum("bhts,bhtd->bhsd", ds, q)  # q already carries the scale
        # (3, B, H, T, D) -> (B*T, 3F): the head split undone, columns [q | k | v].
        dqkv = jnp.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(rows, 3 * features)
        d_qkv = {"w": x.reshape(rows, features).T @ dqkv, "b": jnp.sum(dqkv, axis=0)}
        dx = (dqkv @ w_qkv.T).reshape(batch, time, features)
        dparams = cast_like({"qkv": d_qkv, "proj": d_proj}, params)
        return dparams, cast(dx, x_in.dtype)

    return Layer(init, forward, backward, name=where)
