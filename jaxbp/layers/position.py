"""A learned position embedding: each time step adds its own trained vector.

Attention alone is blind to order (permuting the keys permutes nothing in a query's
weighted sum), so a GPT adds to every token's vector one that depends on its position:
``y[b, t] = x[b, t] + w[t]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)

# GPT-2's initial scale for its position table: small next to the token embeddings.
INIT_STD = 0.02


def position_embedding(max_len: int, *, dtype=None) -> Layer:
    """Adds a learned vector per position: ``y[b, t] = x[b, t] + w[t]``.

    Args:
      max_len: the longest sequence the layer accepts, a positive int.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, time, features)`` (``time <= max_len``)
      to the same shape, params ``{"w": (max_len, features)}``. Shorter inputs use the
      first ``time`` rows.
    """
    max_len = check_positive_int(max_len, "max_len", "position_embedding")
    where = f"position_embedding({max_len})"

    def _check_time(time, what):
        if time > max_len:
            raise ValueError(f"{where}: the sequence length must be at most max_len = "
                             f"{max_len}, got {what}")

    def init(key, input_shape):
        time, features = check_input_shape(input_shape, 2, where)
        _check_time(time, f"input_shape {shape_str((time, features))}")
        dt = as_dtype(dtype)
        return {"w": INIT_STD * jax.random.normal(key, (max_len, features), dt)}, \
            (time, features)

    def forward(params, x):
        x = check_array(x, "x", where)
        check_rank(x, 3, "x", where, "(batch, time, features)")
        w = params["w"]
        if w.shape[0] != max_len or x.shape[-1] != w.shape[1]:
            raise ValueError(f"{where}: params['w'] must have shape "
                             f"{shape_str((max_len, x.shape[-1]))} for x of shape "
                             f"{shape_str(x.shape)}, got {shape_str(w.shape)}")
        time = x.shape[1]
        _check_time(time, f"x of shape {shape_str(x.shape)}")
        return x + w[None, :time], ()  # backward needs nothing kept: dy has the length

    def backward(params, residuals, dy):
        """``dx = dy``; ``dw[t] = sum_batch dy[:, t]`` for ``t < time``, 0 for the rows
        the input did not reach."""
        del residuals
        time = dy.shape[1]
        rows = jnp.sum(dy, axis=0)
        dw = jnp.pad(rows, ((0, params["w"].shape[0] - time), (0, 0)))
        return {"w": dw}, dy

    return Layer(init, forward, backward, name=where)
