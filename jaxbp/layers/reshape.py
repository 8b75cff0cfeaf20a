"""``flatten``: every axis after the batch axis folded into one."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax

from jaxbp._core import Layer, check_array, check_input_shape


class FlattenResiduals(NamedTuple):
    x: jax.Array  # only its (static) shape is used; under jit the values are dropped


def flatten() -> Layer:
    """Flattens ``(batch, d1, d2, ...)`` into ``(batch, d1 * d2 * ...)``. No params."""

    def init(key, input_shape):
        del key
        shape = check_input_shape(input_shape, None, "flatten()")
        return (), (math.prod(shape),)

    def forward(params, x):
        del params
        x = check_array(x, "x", "flatten()")
        if x.ndim < 1:
            raise ValueError(f"flatten(): x must have a batch axis, got shape {x.shape}")
        return x.reshape(x.shape[0], -1), FlattenResiduals(x)

    def backward(params, residuals, dy):
        """``dx = dy.reshape(x.shape)``: flattening only moves entries."""
        del params
        return (), dy.reshape(residuals.x.shape)

    return Layer(init, forward, backward, name="flatten")
