"""Exercises 1-4: the backward passes of the activations.

Each function gets what the forward pass kept (its output ``y``, or its input ``x``)
and the upstream gradient ``dy`` (the loss's gradient with respect to the output), and
returns ``dx`` (the loss's gradient with respect to the input), with the shape of ``dy``.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp``
(``jax.numpy``) and ``lax``. Not allowed: ``jax.grad``, ``jax.vjp``, ``jax.jvp`` and
the rest of JAX's autodiff, and jaxbp itself: the grader compares your answer with
them. The grader runs with implicit rank promotion off: broadcast explicitly
(``b[None, :]``, ``keepdims=True``). Check your work with ``jaxbp grade NAME``, e.g.
``jaxbp grade sigmoid_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def sigmoid_backward(y, dy):
    """Exercise 1: the sigmoid's backward pass.

    Source: document 000, first page ("sigmoid 求导推导"); document 001, last section
    ("关于 sigmoid 函数求导", ``f'(z) = f - f^2``); document 004 ("微分 = σ(x)(1-σ(x))").

    Forward: ``y = 1 / (1 + exp(-x))``, entry by entry.

    Derive ``dy/dx`` and write it with the output ``y`` alone (000 does it in six
    lines); the chain rule then gives ``dx = dy * (dy/dx)``, entry by entry.

    Args:
      y: ``(batch, n)``, the forward's output (its input ``x`` is not given).
      dy: ``(batch, n)``, the loss's gradient with respect to ``y``.

    Returns:
      ``dx``: ``(batch, n)``, the loss's gradient with respect to ``x``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: sigmoid_backward")
    # END SOLUTION


def tanh_backward(y, dy):
    """Exercise 2: the hyperbolic tangent's backward pass.

    Source: not in the documents; the same pattern as the sigmoid (000, first page):
    a derivative written through the output.

    Forward: ``y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``, entry by entry.

    Derive ``dy/dx`` in terms of ``y`` alone, then ``dx = dy * (dy/dx)``.

    Args:
      y: ``(batch, n)``, the forward's output.
      dy: ``(batch, n)``, the loss's gradient with respect to ``y``.

    Returns:
      ``dx``: ``(batch, n)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: tanh_backward")
    # END SOLUTION


def relu_backward(x, dy):
    """Exercise 3: the rectifier's backward pass.

    Source: not in the documents; the activation of most modern networks (and of the
    small CNN the library trains).

    Forward: ``y = max(x, 0)``, entry by entry.

    Derive ``dy/dx`` on each side of the kink, then ``dx = dy * (dy/dx)``. At the kink
    ``x = 0`` take 0 (as ``jax.nn.relu`` does; the grader checks inputs at exactly 0).

    Args:
      x: ``(batch, n)``, the forward's input.
      dy: ``(batch, n)``, the loss's gradient with respect to ``y``.

    Returns:
      ``dx``: ``(batch, n)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: relu_backward")
    # END SOLUTION


def softmax_backward(y, dy):
    """Exercise 4: softmax's backward pass, as a vector-Jacobian product.

    Source: document 003, first page: ``∂a_j/∂z_i = a_i (1 - a_i)`` when ``i = j`` and
    ``-a_i a_j`` when ``i ≠ j``.

    Forward: ``y_i = exp(x_i) / sum_k exp(x_k)`` over the last axis (the classes), for
    each example of the batch separately.

    Derive: the Jacobian ``J = dy/dx`` of one example is ``diag(y) - y y^T``; the
    backward pass needs ``dx = J^T dy``. Simplify it so that the Jacobian is never
    formed: the answer is ``O(classes)`` per example, not ``O(classes^2)``. Every
    output ``y_j`` depends on every input ``x_i``, so the off-diagonal terms matter.

    Args:
      y: ``(batch, classes)``, the forward's output (each row sums to 1).
      dy: ``(batch, classes)``, the loss's gradient with respect to ``y``.

    Returns:
      ``dx``: ``(batch, classes)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: softmax_backward")
    # END SOLUTION
