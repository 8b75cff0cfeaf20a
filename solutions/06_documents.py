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
    w1, w2, w3, w4, w5, w6, w7, w8 = (w[i] for i in range(8))
    x1, x2 = x[0], x[1]
    h1 = jax.nn.sigmoid(w1 * x1 + w3 * x2)
    h2 = jax.nn.sigmoid(w2 * x1 + w4 * x2)
    o1 = jax.nn.sigmoid(w5 * h1 + w7 * h2)
    o2 = jax.nn.sigmoid(w6 * h1 + w8 * h2)
    # Error signals at the outputs' inputs: ∂Error/∂In_o = (o - y) * o (1 - o).
    delta_o1 = (o1 - y[0]) * o1 * (1 - o1)
    delta_o2 = (o2 - y[1]) * o2 * (1 - o2)
    delta5, delta7 = delta_o1 * h1, delta_o1 * h2
    delta6, delta8 = delta_o2 * h1, delta_o2 * h2
    # h1 feeds o1 through w5 and o2 through w6; h2 through w7 and w8.
    delta_h1 = (delta_o1 * w5 + delta_o2 * w6) * h1 * (1 - h1)
    delta_h2 = (delta_o1 * w7 + delta_o2 * w8) * h2 * (1 - h2)
    delta1, delta3 = delta_h1 * x1, delta_h1 * x2
    delta2, delta4 = delta_h2 * x1, delta_h2 * x2
    grads = jnp.stack([delta1, delta2, delta3, delta4, delta5, delta6, delta7, delta8])
    return grads, w - lr * grads
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
    if convention not in ("notes", "standard"):
        raise ValueError(f"convention must be 'notes' or 'standard', got {convention!r}")
    activations = [x]
    for layer in params:
        activations.append(jax.nn.sigmoid(activations[-1] @ layer["w"] + layer["b"]))
    out = activations[-1]
    coef = (out - target) * out * (1 - out)
    new = [None] * len(params)
    for i in reversed(range(len(params))):
        w, b = params[i]["w"], params[i]["b"]
        new_w = w - lr * jnp.outer(activations[i], coef)
        new[i] = {"w": new_w, "b": b - lr * coef}
        if i > 0:
            carrier = new_w if convention == "notes" else w
            a = activations[i]
            coef = (carrier @ coef) * a * (1 - a)
    return tuple(new)
    # END SOLUTION
