"""Exercise 16: a network's backward pass, composed from its layers'.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``. Check your work
with ``jaxbp grade serial_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def serial_backward(layers, params, residuals, dy):
    """Exercise 16: backpropagation through layers in sequence.

    Source: document 000 and 001, the whole backward section: the error at the output
    goes down one layer at a time; each layer turns the gradient of its output into the
    gradient of its input (and of its parameters), and hands it to the layer below.

    A layer ``L`` has ``L.backward(params, residuals, dy) -> (dparams, dx)``. The
    network computed ``x1, r0 = layers[0].forward(params[0], x0)``,
    ``x2, r1 = layers[1].forward(params[1], x1)``, ..., and ``residuals[i]`` is ``ri``.

    Derive the order in which the layers must run backward, and what each one gets as
    its ``dy``. Use each layer's ``backward``; do not rebuild the network.

    Args:
      layers: a tuple of layers, input side first.
      params: a tuple with one entry per layer (``()`` for a layer without parameters).
      residuals: a tuple with one entry per layer, from the forward pass.
      dy: the loss's gradient with respect to the network's output.

    Returns:
      ``(dparams, dx)``: ``dparams`` a tuple with one entry per layer, each with the
      structure of ``params[i]``; ``dx`` the gradient with respect to the network's
      input.
    """
    # BEGIN SOLUTION
    dparams = [None] * len(layers)
    for i in reversed(range(len(layers))):
        dparams[i], dy = layers[i].backward(params[i], residuals[i], dy)
    return tuple(dparams), dy
    # END SOLUTION
