"""Exercises 12-13: the documents' worked examples, one training step by hand.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Check your work with ``jaxbp grade NAME``,
e.g. ``jaxbp grade doc002_step``; the grader also runs your function on the
documents' own numbers and compares with what they print.
"""

import jax
import jax.numpy as jnp
from jax import lax


def doc002_step(w, x, y, lr):
    """Exercise 12: document 002's network, one step, by the chain rule, scalar by scalar.

    Source: document 002 (a 2-2-2 sigmoid network without biases): "反向传播:梯度计算"
    and its numbers, ``δ5 = 0.03, δ6 = 0.08, δ7 = 0.03, δ8 = 0.07``. The document then
    writes ``δ1 = (δ5 + δ6) * h1 (1 - h1) * x1`` and prints 0.01 for ``δ1..δ4``: that
    formula is wrong (``δ5, δ6`` are weight gradients, not error signals). Derive the
    chain rule properly: two of the four true values are negative.

    Forward, as the document writes it (``sigmoid(t) = 1 / (1 + exp(-t))``)::

        h1 = sigmoid(w1 x1 + w3 x2)        h2 = sigmoid(w2 x1 + w4 x2)
        o1 = sigmoid(w5 h1 + w7 h2)        o2 = sigmoid(w6 h1 + w8 h2)
        Error = 1/2 (o1 - y1)^2 + 1/2 (o2 - y2)^2

    Derive ``δi = ∂Error/∂wi`` for i = 1..8 (``δ5..δ8`` first, then ``δ1..δ4`` through
    ``h1`` and ``h2``, each of which feeds both outputs), and take one step
    ``wi <- wi - lr * δi``. Work with scalars (``w[0]`` is ``w1``): that is the point.

    Args:
      w: ``(8,)``, ``w1..w8`` in the document's numbering (``w[i - 1]`` is ``wi``).
      x: ``(2,)``, the input ``(x1, x2)``.
      y: ``(2,)``, the labels ``(y1, y2)``.
      lr: the learning rate ``η`` (the document uses 1).

    Returns:
      ``(grads, new_w)``: ``grads`` ``(8,)`` with ``grads[i - 1] = δi = ∂Error/∂wi``,
      and ``new_w`` ``(8,)``, the weights after the step.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: doc002_step")
    # END SOLUTION


def doc000_step(params, x, target, lr, convention):
    """Exercise 13: document 000's network, one full SGD step, in both conventions.

    Source: document 000 (a 3-2-3-2 sigmoid network with biases, half squared error,
    α = 0.7): the ``coef`` and update lines, ``coef_o1 = 0.0628`` down to
    ``w6 = 0.189``.

    Forward: ``a0 = x``; for each layer ``l``, ``a(l+1) = sigmoid(a(l) @ W + b)`` with
    ``W = params[l]["w"]`` ``(in, out)`` and ``b = params[l]["b"]`` ``(out,)``; the loss
    is ``E = 1/2 * sum (a_last - target)^2`` (one example, no batch axis). In 000,
    ``params[0]["w"][:, 0] = (w1, w2, w3)``, ``params[0]["b"] = (b1, b2)``,
    ``params[2]["w"][:, 0] = (w13, w14, w15)``, and so on.

    Derive the error coefficient of each layer's units, ``coef = ∂E/∂(pre-activation)``,
    as 000 does: at the top from the loss and the sigmoid (its ``coef_o1`` line), then
    for each layer below from the coefficients of the layer above, carried down through
    the weights between them (its ``coef_hh1`` line); then each layer's weight and bias
    gradients from its ``coef`` and its input, and the update ``p <- p - lr * ∂E/∂p``.
    Vectorise over a layer's units (``@``, ``jnp.outer``). The conventions differ in
    which weights carry ``coef`` down:

    * ``"standard"``: textbook backprop (what ``jax.grad`` computes): the weights of the
      forward pass, as if every layer were updated only at the end.
    * ``"notes"``: the document's way: it updates a layer first and then propagates
      through the *updated* weights (000's ``coef_hh1`` uses ``w13 = 0.962``, the new
      value).

    Args:
      params: a tuple of layers, input side first, each ``{"w": (in, out),
        "b": (out,)}``; any number of layers and sizes.
      x: ``(in,)``, one example.
      target: ``(out,)``, its target.
      lr: the learning rate α.
      convention: ``"notes"`` or ``"standard"``.

    Returns:
      The updated params, with the structure and shapes of ``params`` (a tuple of
      dicts).
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: doc000_step")
    # END SOLUTION
