"""The fully connected layer, ``y = x @ w + b``, with its backward pass beside it."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)


class DenseResiduals(NamedTuple):
    x: jax.Array  # (batch, in): the input, needed for dw


def dense(features: int, bias: bool = True, *, dtype=None) -> Layer:
    """A fully connected layer.

    Params are ``{"w": (in, features), "b": (features,)}`` (no ``"b"`` when
    ``bias=False``). ``w[j, k]`` connects input unit ``j`` to output unit ``k``, as
    ``w^l_{jk}`` in document 001.

    Args:
      features: the number of output units, a positive int.
      bias: whether to add a bias vector.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, in)`` to ``(batch, features)``.
    """
    where = f"dense({features})"
    features = check_positive_int(features, "features", "dense")

    def init(key, input_shape):
        (n_in,) = check_input_shape(input_shape, 1, where)
        dt = as_dtype(dtype)
        # LeCun-normal scale keeps sigmoid/tanh units out of saturation at the start.
        w = jax.random.normal(key, (n_in, features), dt) / jnp.sqrt(jnp.asarray(n_in, dt))
        params = {"w": w}
        if bias:
            params["b"] = jnp.zeros((features,), dt)
        return params, (features,)

    def forward(params, x):
        x = check_array(x, "x", where)
        check_rank(x, 2, "x", where, "(batch, features)")
        w = params["w"]
        if x.shape[1] != w.shape[0]:
            raise ValueError(f"{where}: x must have {w.shape[0]} features (params['w'] "
                             f"has shape {shape_str(w.shape)}), got x of shape "
                             f"{shape_str(x.shape)}")
        y = x @ w
        if "b" in params:
            y = y + params["b"][None, :]
        return y, DenseResiduals(x)

    def backward(params, residuals, dy):
        """``dx = dy @ w.T``, ``dw = x.T @ dy``, ``db = sum_batch dy``.

        Shapes: ``dy`` (batch, out), ``x`` (batch, in), ``w`` (in, out).
        """
        x = residuals.x
        dparams = {"w": x.T @ dy}
        if "b" in params:
            dparams["b"] = jnp.sum(dy, axis=0)
        dx = dy @ params["w"].T
        return dparams, dx

    return Layer(init, forward, backward, name=f"dense({features})")
