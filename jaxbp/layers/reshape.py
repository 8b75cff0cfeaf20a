"""``flatten``: every axis after the batch axis folded into one."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax

from jaxbp._checks import cast, check_dy, check_key, check_no_params, check_residuals
from jaxbp._core import Layer, check_array, check_input_shape, shape_str


class FlattenResiduals(NamedTuple):
    x: jax.Array  # only its (static) shape is used; under jit the values are dropped


def flatten() -> Layer:
    """Flattens ``(batch, d1, d2, ...)`` into ``(batch, d1 * d2 * ...)``. No params."""
    where = "flatten()"

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, None, where)
        return (), (math.prod(shape),)

    def forward(params, x):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        if x.ndim < 1:
            raise ValueError(f"{where}: x must have a batch axis, got shape "
                             f"{shape_str(x.shape)}")
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), FlattenResiduals(x)

    def backward(params, residuals, dy):
        """``dx = dy.reshape(x.shape)``: flattening only moves entries."""
        check_residuals(residuals, FlattenResiduals, where)
        check_no_params(params, where)
        x = residuals.x
        dy = check_dy(dy, (x.shape[0], math.prod(x.shape[1:])), where)
        return (), cast(dy.reshape(x.shape), x.dtype)

    return Layer(init, forward, backward, name=where)
