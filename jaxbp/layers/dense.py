"""The fully connected layer, ``y = x @ w + b``, with its backward pass beside it."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp import _random
from jaxbp._checks import (cast, check_bool, check_dy, check_float_dtype, check_key,
                           check_params, check_residuals, static_layer_field)
from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)


@static_layer_field
class DenseResiduals(NamedTuple):
    x: jax.Array  # (batch, ..., in): the input, needed for dw
    layer: str    # static: the name of the dense layer that made them


def dense(features: int, bias: bool = True, *, dtype=None) -> Layer:
    """A fully connected layer.

    Params are ``{"w": (in, features), "b": (features,)}`` (no ``"b"`` when
    ``bias=False``). ``w[j, k]`` connects input unit ``j`` to output unit ``k``, as
    ``w^l_{jk}`` in document 001. It computes in ``x``'s dtype promoted with the
    params'; gradients come back in the dtype of what they are the gradient of.

    Args:
      features: the number of output units, a positive int.
      bias: whether to add a bias vector.
      dtype: the parameters' dtype, floating; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, in)`` to ``(batch, features)``, and
      ``(batch, ..., in)`` to ``(batch, ..., features)`` (the last axis, e.g.
      ``(batch, time, features)`` for sequence models).
    """
    features = check_positive_int(features, "features", "dense")
    bias = check_bool(bias, "bias", "dense")
    dtype = check_float_dtype(dtype, "dtype", "dense")
    where = f"dense({features}" + ("" if bias else ", bias=False") + (
        "" if dtype is None else f", dtype='{dtype}'") + ")"
    expected = {"w": (None, features), "b": (features,)} if bias else \
        {"w": (None, features)}
    axes = {"w": ("in", "features"), "b": ("features",)}

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, None, where)
        if not shape:
            raise ValueError(f"{where}: input_shape must have at least 1 entry (the "
                             f"features, without the batch axis), got ()")
        n_in = shape[-1]
        dt = as_dtype(dtype)
        # LeCun-normal scale keeps sigmoid/tanh units out of saturation at the start.
        w = _random.normal(key, (n_in, features), dt, scale=1.0 / math.sqrt(n_in))
        params = {"w": w}
        if bias:
            params["b"] = _random.zeros((features,), dt)
        return params, (*shape[:-1], features)

    def forward(params, x):
        check_params(params, expected, where, axes)
        x = check_array(x, "x", where)
        if x.ndim < 2:
            check_rank(x, 2, "x", where, "(batch, features)")
        w = params["w"]
        if x.shape[-1] != w.shape[0]:
            raise ValueError(f"{where}: x must have {w.shape[0]} features (params['w'] "
                             f"has shape {shape_str(w.shape)}), got x of shape "
                             f"{shape_str(x.shape)}")
        # (batch, ..., in) @ (in, out): one matmul over every leading position; jnp
        # promotes to the dtype of x and w together.
        y = x @ w
        if bias:
            y = y + params["b"].reshape((1,) * (x.ndim - 1) + params["b"].shape)
        return y, DenseResiduals(x, where)

    def backward(params, residuals, dy):
        """``dx = dy @ w.T``, ``dw = x.T @ dy``, ``db = sum_batch dy``.

        Shapes: ``dy`` (batch, out), ``x`` (batch, in), ``w`` (in, out). For more axes,
        ``(batch, ..., in)``, every leading position is one more row: ``x`` and ``dy``
        are flattened to ``(positions, in)`` and ``(positions, out)``, so ``dw`` and
        ``db`` sum over the batch and every other leading axis.
        """
        check_residuals(residuals, DenseResiduals, where)
        x = residuals.x
        check_params(params, {**expected, "w": (x.shape[-1], features)}, where, axes)
        dy = check_dy(dy, (*x.shape[:-1], features), where)
        w = params["w"]
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = dy.reshape(-1, dy.shape[-1])
        dparams = {"w": cast(x2.T @ dy2, w.dtype)}
        if bias:
            dparams["b"] = cast(jnp.sum(dy2, axis=0), params["b"].dtype)
        dx = cast(dy @ w.T, x.dtype)
        return dparams, dx

    return Layer(init, forward, backward, name=where)
