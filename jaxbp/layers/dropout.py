"""Dropout (Srivastava et al. 2014), inverted: the forward beside its hand-written
backward.

In training mode each unit is kept with probability ``1 - rate`` and the kept ones are
scaled by ``1 / (1 - rate)``, so that a unit's expected value is unchanged and
inference needs no rescaling: in inference mode dropout is the identity. The random
mask comes from the key its caller passes (``jaxbp.apply(..., key=k, train=True)``;
``serial`` and the training steps split a fresh one for every layer and step), and it
travels to the backward in the residuals: the gradient flows through exactly the units
the forward kept.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbp._checks import (cast, check_dy, check_key, check_no_params, check_residuals,
                           static_fields)
from jaxbp._core import Layer, check_array, check_input_shape
from jaxbp._random import flat


@static_fields("shape", "x_dtype", "layer")
class DropoutResiduals(NamedTuple):
    keep: Any      # bool, x's shape: the units the forward kept; None when nothing dropped
    shape: tuple   # static: x's shape, the shape of dy and dx
    x_dtype: Any   # static: x's dtype, the dtype of dx
    layer: str     # static: the name of the dropout that made them (its rate)


def dropout(rate: float) -> Layer:
    """Inverted dropout: zeroes each unit with probability ``rate`` in training mode.

    * ``forward(params, x)`` and ``jaxbp.apply(..., train=False)``: the identity
      (inference mode).
    * ``jaxbp.apply(layer, params, state, x, key=k, train=True)``: ``keep`` drawn by
      ``jax.random.bernoulli(k, 1 - rate, x.shape)``, ``y = keep * x / (1 - rate)``.
      The key is required (a ``ValueError`` otherwise: dropout is never silently off).
      ``rate = 0`` is the identity in every mode and needs no key.

    Args:
      rate: the probability of dropping a unit, in [0, 1).

    Returns:
      A parameterless :class:`~jaxbp.Layer` (params ``()``, stateless) keeping the
      input's shape, any rank.
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
            or not math.isfinite(rate):
        raise TypeError(f"dropout: rate must be a number in [0, 1), got {rate!r} of type "
                        f"{type(rate).__name__}")
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1) (the probability of dropping a "
                         f"unit), got {rate!r}")
    rate = float(rate)
    scale = 1.0 / (1.0 - rate)
    where = f"dropout({rate!r})"

    def init(key, input_shape):
        check_key(key, where)
        return (), check_input_shape(input_shape, None, where)

    def identity(x):
        return x, DropoutResiduals(None, tuple(x.shape), x.dtype, where)

    def forward(params, x):
        check_no_params(params, where)
        return identity(check_array(x, "x", where))

    def apply(params, state, x, *, key=None, train=False):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        if not train or rate == 0.0:
            return (*identity(x), state)
        if key is None:
            raise ValueError(f"{where}: key must be a jax.random.key in training mode "
                             f"(train=True), got None; pass key=..., or train=False for "
                             f"inference (the identity)")
        check_key(key, where)
        # The uniform numbers are drawn in p's dtype: x's (at least float32), so that a
        # float32 step stays float32 when x64 is on.
        p = jnp.asarray(1.0 - rate, jnp.promote_types(x.dtype, jnp.float32))
        # the same mask as jax.random.bernoulli(key, p, x.shape), compiled much faster
        keep = flat(lambda k, shape: jax.random.bernoulli(k, p, shape), key, x.shape)
        y = jnp.where(keep, x * scale, jnp.zeros((), x.dtype))
        return y, DropoutResiduals(keep, tuple(x.shape), x.dtype, where), state

    def backward(params, residuals, dy):
        """``dx = keep * dy / (1 - rate)`` with the forward's ``keep`` mask (``dx = dy``
        in inference mode): a dropped unit passed nothing forward and gets no gradient;
        a kept one was scaled, and so is its gradient."""
        check_residuals(residuals, DropoutResiduals, where)
        check_no_params(params, where)
        dy = check_dy(dy, residuals.shape, where)
        keep = residuals.keep
        if keep is None:
            return (), cast(dy, residuals.x_dtype)
        dx = jnp.where(keep, dy * scale, jnp.zeros((), dy.dtype))
        return (), cast(dx, residuals.x_dtype)

    return Layer(init, forward, backward, name=where, apply=apply)
