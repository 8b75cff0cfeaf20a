"""Element-wise activations and softmax, each forward beside its hand-written backward.

Every activation here has no parameters (params ``()``) and keeps the input's shape.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp._core import Layer, check_array, check_input_shape


class OutputResiduals(NamedTuple):
    y: jax.Array  # the layer's output: sigmoid, tanh and softmax differentiate through it


class InputResiduals(NamedTuple):
    x: jax.Array  # the layer's input: relu differentiates through its sign


def _shape_preserving(name, fn, backward, residuals_from):
    def init(key, input_shape):
        del key
        return (), check_input_shape(input_shape, None, f"{name}()")

    def forward(params, x):
        del params
        x = check_array(x, "x", f"{name}()")
        y = fn(x)
        return y, residuals_from(x, y)

    return Layer(init, forward, backward, name=name)


def sigmoid() -> Layer:
    """The logistic sigmoid ``y = 1 / (1 + exp(-x))``, element-wise, any shape."""

    def backward(params, residuals, dy):
        """``dx = dy * y * (1 - y)``: the sigmoid's derivative ``f' = f - f^2``
        (documents 000, 001 and 004)."""
        del params
        y = residuals.y
        return (), dy * y * (1 - y)

    return _shape_preserving("sigmoid", jax.nn.sigmoid, backward,
                             lambda x, y: OutputResiduals(y))


def tanh() -> Layer:
    """The hyperbolic tangent, element-wise, any shape."""

    def backward(params, residuals, dy):
        """``dx = dy * (1 - y^2)``."""
        del params
        y = residuals.y
        return (), dy * (1 - y * y)

    return _shape_preserving("tanh", jnp.tanh, backward, lambda x, y: OutputResiduals(y))


def relu() -> Layer:
    """The rectifier ``y = max(x, 0)``, element-wise, any shape.

    The derivative at the kink is a choice: ``relu'(0) = 0``, as ``jax.nn.relu``.
    """

    def backward(params, residuals, dy):
        """``dx = dy * [x > 0]`` (so ``relu'(0) = 0``)."""
        del params
        x = residuals.x
        return (), jnp.where(x > 0, dy, jnp.zeros((), dy.dtype))

    return _shape_preserving("relu", jax.nn.relu, backward, lambda x, y: InputResiduals(x))


def softmax() -> Layer:
    """Softmax over the last axis: ``y_i = exp(x_i) / sum_j exp(x_j)``, any shape."""

    def backward(params, residuals, dy):
        """The vector-Jacobian product of softmax, without forming the Jacobian.

        ``J = diag(y) - y y^T``, so ``dx = J^T dy = y * (dy - sum_j dy_j y_j)``.
        """
        del params
        y = residuals.y
        return (), y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))

    return _shape_preserving("softmax", lambda x: jax.nn.softmax(x, axis=-1), backward,
                             lambda x, y: OutputResiduals(y))
