"""Element-wise activations and softmax, each forward beside its hand-written backward.

Every activation here has no parameters (params ``()``) and keeps the input's shape,
so ``dy`` must have the shape of ``x``. Each has its own residual type, so that one
activation's backward refuses another's residuals (tanh's formula on a sigmoid's
output would be a silently wrong gradient).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp._checks import cast, check_dy, check_key, check_no_params, check_residuals
from jaxbp._core import Layer, check_array, check_input_shape


class SigmoidResiduals(NamedTuple):
    y: jax.Array  # the output: sigmoid differentiates through it


class TanhResiduals(NamedTuple):
    y: jax.Array  # the output: tanh differentiates through it


class SoftmaxResiduals(NamedTuple):
    y: jax.Array  # the output: softmax differentiates through it


class ReluResiduals(NamedTuple):
    x: jax.Array  # the input: relu differentiates through its sign


def _shape_preserving(kind, fn, residuals_type, derivative):
    """A parameterless layer ``y = fn(x)`` whose ``dx = derivative(residual, dy)``;
    the one residual array has the shape (and dtype) of ``x`` and ``y``."""
    where = f"{kind}()"
    (field,) = residuals_type._fields

    def init(key, input_shape):
        check_key(key, where)
        return (), check_input_shape(input_shape, None, where)

    def forward(params, x):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        y = fn(x)
        return y, residuals_type(x if field == "x" else y)

    def backward(params, residuals, dy):
        check_residuals(residuals, residuals_type, where)
        check_no_params(params, where)
        r = getattr(residuals, field)
        dy = check_dy(dy, r.shape, where)
        return (), cast(derivative(r, dy), r.dtype)

    backward.__doc__ = derivative.__doc__
    return Layer(init, forward, backward, name=where)


def sigmoid() -> Layer:
    """The logistic sigmoid ``y = 1 / (1 + exp(-x))``, element-wise, any shape."""

    def derivative(y, dy):
        """``dx = dy * y * (1 - y)``: the sigmoid's derivative ``f' = f - f^2``
        (documents 000, 001 and 004)."""
        return dy * y * (1 - y)

    return _shape_preserving("sigmoid", jax.nn.sigmoid, SigmoidResiduals, derivative)


def tanh() -> Layer:
    """The hyperbolic tangent, element-wise, any shape."""

    def derivative(y, dy):
        """``dx = dy * (1 - y^2)``."""
        return dy * (1 - y * y)

    return _shape_preserving("tanh", jnp.tanh, TanhResiduals, derivative)


def relu() -> Layer:
    """The rectifier ``y = max(x, 0)``, element-wise, any shape.

    The derivative at the kink is a choice: ``relu'(0) = 0``, as ``jax.nn.relu``.
    """

    def derivative(x, dy):
        """``dx = dy * [x > 0]`` (so ``relu'(0) = 0``)."""
        return jnp.where(x > 0, dy, jnp.zeros((), dy.dtype))

    return _shape_preserving("relu", jax.nn.relu, ReluResiduals, derivative)


def softmax() -> Layer:
    """Softmax over the last axis: ``y_i = exp(x_i) / sum_j exp(x_j)``, any shape."""

    def derivative(y, dy):
        """The vector-Jacobian product of softmax, without forming the Jacobian.

        ``J = diag(y) - y y^T``, so ``dx = J^T dy = y * (dy - sum_j dy_j y_j)``.
        """
        return y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))

    return _shape_preserving("softmax", lambda x: jax.nn.softmax(x, axis=-1),
                             SoftmaxResiduals, derivative)
