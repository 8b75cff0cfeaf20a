"""Gradients from the hand-written backward passes, and a bridge into ``jax.grad``."""

from __future__ import annotations

from typing import Callable

import jax

from jaxbp._apply import apply
from jaxbp._core import Layer, Loss


def value_and_grad(net: Layer, loss: Loss, *, with_state: bool = False) -> Callable:
    """The loss and its parameter gradients, computed by the hand-written passes alone.

    Args:
      net: a layer (often a ``serial`` network).
      loss: a loss.
      with_state: use the extended forward (:func:`jaxbp.apply`) in training mode, for
        networks with dropout or batch norm.

    Returns:
      ``f(params, x, target) -> (value, grads)``; ``grads`` has the tree structure of
      ``params``. Pure and jit-compatible; no JAX autodiff runs inside. With
      ``with_state=True``: ``f(params, state, x, target, key) -> ((value, new_state),
      grads)`` (as ``jax.value_and_grad(..., has_aux=True)``), the state from
      :func:`jaxbp.init_state` (or ``None`` to keep none) and ``key`` a
      ``jax.random.key`` for dropout (or ``None`` when the network draws nothing).
    """
    _check_layer(net, "net", "value_and_grad")
    if not isinstance(loss, Loss):
        raise TypeError(f"value_and_grad: loss must be a jaxbp.Loss, got "
                        f"{type(loss).__name__}")
    if with_state:
        def f_state(params, state, x, target, key=None):
            y, residuals, new_state = apply(net, params, state, x, key=key, train=True)
            value, loss_residuals = loss.forward(y, target)
            dy = loss.backward(loss_residuals)
            grads, _ = net.backward(params, residuals, dy)
            return (value, new_state), grads

        return f_state

    def f(params, x, target):
        y, residuals = net.forward(params, x)
        value, loss_residuals = loss.forward(y, target)
        dy = loss.backward(loss_residuals)
        grads, _ = net.backward(params, residuals, dy)
        return value, grads

    return f


def differentiable(layer: Layer) -> Callable:
    """``layer.forward`` as ``f(params, x) -> y``, differentiated by ``layer.backward``.

    Registered with ``jax.custom_vjp``: ``jax.grad`` (or ``jax.vjp``) through ``f`` runs
    the hand-written backward, so the layer can sit inside any JAX program.
    """
    _check_layer(layer, "layer", "differentiable")

    @jax.custom_vjp
    def f(params, x):
        return layer.forward(params, x)[0]

    def f_fwd(params, x):
        y, residuals = layer.forward(params, x)
        return y, (params, residuals)

    def f_bwd(saved, dy):
        params, residuals = saved
        return layer.backward(params, residuals, dy)

    f.defvjp(f_fwd, f_bwd)
    return f


def _check_layer(layer, argument, where):
    if not isinstance(layer, Layer):
        hint = " (did you forget to call the constructor?)" if callable(layer) else ""
        raise TypeError(f"{where}: {argument} must be a jaxbp.Layer, got "
                        f"{type(layer).__name__}{hint}")
