"""A learned position embedding: each time step adds its own trained vector.

Attention alone is blind to order (permuting the keys permutes nothing in a query's
weighted sum), so a GPT adds to every token's vector one that depends on its position:
``y[b, t] = x[b, t] + w[t]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxbp import _random
from jaxbp._checks import (cast, check_dy, check_float_dtype, check_key, check_params,
                           check_residuals, compute_dtype, static_fields)
from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)

# GPT-2's initial scale for its position table: small next to the token embeddings.
INIT_STD = 0.02


@static_fields("shape", "x_dtype", "layer")
class PositionResiduals(NamedTuple):
    """No array: the backward needs only the input's shape and dtype."""

    shape: tuple  # static: x's shape (batch, time, features), the shape of dy and dx
    x_dtype: Any  # static: x's dtype, the dtype of dx
    layer: str    # static: the name of the layer that made them


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
    dtype = check_float_dtype(dtype, "dtype", "position_embedding")
    where = f"position_embedding({max_len}" + (
        "" if dtype is None else f", dtype='{dtype}'") + ")"
    axes = {"w": ("max_len", "features")}

    def _check_time(time, what):
        if time > max_len:
            raise ValueError(f"{where}: the sequence length must be at most max_len = "
                             f"{max_len}, got {what}")

    def init(key, input_shape):
        check_key(key, where)
        time, features = check_input_shape(input_shape, 2, where)
        _check_time(time, f"input_shape {shape_str((time, features))}")
        dt = as_dtype(dtype)
        return {"w": _random.normal(key, (max_len, features), dt, scale=INIT_STD)}, \
            (time, features)

    def forward(params, x):
        check_params(params, {"w": (max_len, None)}, where, axes)
        x = check_array(x, "x", where)
        check_rank(x, 3, "x", where, "(batch, time, features)")
        w = params["w"]
        if x.shape[-1] != w.shape[1]:
            raise ValueError(f"{where}: x must have {w.shape[1]} features (params['w'] "
                             f"has shape {shape_str(w.shape)}), got x of shape "
                             f"{shape_str(x.shape)}")
        time = x.shape[1]
        _check_time(time, f"x of shape {shape_str(x.shape)}")
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        ct = compute_dtype(x, params)
        y = cast(x, ct) + cast(w, ct)[None, :time]
        return y, PositionResiduals(tuple(x.shape), x.dtype, where)

    def backward(params, residuals, dy):
        """``dx = dy``; ``dw[t] = sum_batch dy[:, t]`` for ``t < time``, 0 for the rows
        the input did not reach."""
        check_residuals(residuals, PositionResiduals, where)
        shape = residuals.shape
        check_params(params, {"w": (max_len, shape[-1])}, where, axes)
        dy = check_dy(dy, shape, where)
        time = dy.shape[1]
        rows = jnp.sum(dy, axis=0)
        dw = jnp.pad(rows, ((0, params["w"].shape[0] - time), (0, 0)))
        return {"w": cast(dw, params["w"].dtype)}, cast(dy, residuals.x_dtype)

    return Layer(init, forward, backward, name=where)
