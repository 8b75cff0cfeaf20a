"""Element-wise activations and softmax, each forward beside its hand-written backward.

Every activation here has no parameters (params ``()``) and keeps the input's shape.
"""

from __future__ import annotations

import math
import numbers
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


# GELU's tanh form (Hendrycks and Gimpel 2016), as jax.nn.gelu(approximate=True) and
# torch.nn.GELU(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu(approximate: bool = True) -> Layer:
    """The Gaussian error linear unit, element-wise, any shape.

    ``approximate=True`` (the default, as ``jax.nn.gelu``): the tanh form
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (GPT-2's, llm.c's).
    ``approximate=False``: the exact ``x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``, as
    ``torch.nn.GELU()``.
    """
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: approximate must be True or False, got {approximate!r}")
    name = f"gelu(approximate={approximate})"

    def backward(params, residuals, dy):
        """Tanh form, with ``u = sqrt(2/pi) (x + 0.044715 x^3)`` and ``t = tanh(u)``:
        ``dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))``.

        Erf form: ``dx = dy * (Phi(x) + x phi(x))``, ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``
        the normal density, ``Phi`` its distribution function.
        """
        del params
        x = residuals.x
        if approximate:
            t = jnp.tanh(_GELU_C * (x + _GELU_A * x * x * x))
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_A * x * x)
        else:
            cdf = 0.5 * (1 + jax.lax.erf(x * (1 / math.sqrt(2.0))))
            d = cdf + x * _INV_SQRT_2PI * jnp.exp(-0.5 * x * x)
        return (), dy * d

    return _shape_preserving(name, lambda x: jax.nn.gelu(x, approximate=approximate),
                             backward, lambda x, y: InputResiduals(x))


def leaky_relu(negative_slope: float = 0.01) -> Layer:
    """``y = x`` for ``x >= 0``, ``negative_slope * x`` below, element-wise, any shape.

    The derivative at the kink is a choice: ``1`` at ``x = 0``, as
    ``jax.nn.leaky_relu`` (PyTorch takes ``negative_slope`` there).
    """
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real) \
            or not math.isfinite(negative_slope):
        raise TypeError(f"leaky_relu: negative_slope must be a finite number, got "
                        f"{negative_slope!r}")
    slope = float(negative_slope)

    def backward(params, residuals, dy):
        """``dx = dy`` where ``x >= 0``, ``negative_slope * dy`` elsewhere."""
        del params
        x = residuals.x
        return (), jnp.where(x >= 0, dy, slope * dy)

    return _shape_preserving(f"leaky_relu({slope:g})",
                             lambda x: jnp.where(x >= 0, x, slope * x), backward,
                             lambda x, y: InputResiduals(x))
