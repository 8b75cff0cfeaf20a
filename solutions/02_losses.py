"""Exercises 5-8: the losses' backward passes.

A loss maps a prediction ``pred`` of shape ``(batch, n)`` and a target of the same
shape to one number: the **mean over the batch** of the per-example loss (which sums
over the ``n`` entries). Each function returns the loss's gradient with respect to
its first argument, with that argument's shape; the ``1 / batch`` of the mean is part
of the answer.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade NAME``, e.g. ``jaxbp grade half_mse_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def half_mse_backward(pred, target):
    """Exercise 5: half squared error.

    Source: document 001, "求 E 对 Y_1, Y_2 的偏导" (``∂E/∂Y_1 = Y_1 - Ŷ_1``); document
    002, ``δ_o1 = ∂Error/∂o_1 = o_1 - 0.23 = 0.25``.

    Loss: ``L = mean over the batch of 1/2 * sum_j (pred_j - target_j)^2``.

    Derive ``∂L/∂pred``. Two factors are easy to get wrong: what the ``1/2`` does, and
    what the mean over the batch does.

    Args:
      pred: ``(batch, n)``, the network's output.
      target: ``(batch, n)``, the labels.

    Returns:
      ``dpred``: ``(batch, n)``.
    """
    # BEGIN SOLUTION
    return (pred - target) / pred.shape[0]
    # END SOLUTION


def softmax_cross_entropy_backward(logits, target):
    """Exercise 6: softmax followed by cross-entropy, differentiated together.

    Source: document 003, first page, the derivation that ends in
    ``∂C/∂z_i = a_i Σ_j y_j - y_i = a_i - y_i``.

    Loss: ``a = softmax(logits)`` over the classes, per example
    ``C = -Σ_i y_i ln a_i``; ``L`` is the mean of ``C`` over the batch.

    Derive ``∂L/∂logits`` by the chain rule through the softmax (both the ``i = j`` and
    the ``i ≠ j`` terms), and simplify it as 003 does. Each row of ``target`` sums to 1
    (one-hot labels, or probabilities).

    Args:
      logits: ``(batch, classes)``, the softmax's input ``z``.
      target: ``(batch, classes)``, one-hot rows or probability rows.

    Returns:
      ``dlogits``: ``(batch, classes)``.
    """
    # BEGIN SOLUTION
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)
    exp = jnp.exp(shifted)
    probs = exp / jnp.sum(exp, axis=-1, keepdims=True)
    return (probs - target) / logits.shape[0]
    # END SOLUTION


def binary_cross_entropy_backward(prob, target):
    """Exercise 7: binary cross-entropy on probabilities.

    Source: document 004, ``L = -[y log y_out + (1 - y) log(1 - y_out)]`` (natural log)
    and ``∂L/∂y_out = -y / y_out + (1 - y) / (1 - y_out)``.

    Loss: per entry ``-[y ln p + (1 - y) ln(1 - p)]``, summed per example, ``L`` the
    mean over the batch. Here ``p`` is a probability (a sigmoid's output), not a logit.

    Derive ``∂L/∂p``.

    Args:
      prob: ``(batch, n)``, probabilities strictly between 0 and 1.
      target: ``(batch, n)``, targets in ``[0, 1]``.

    Returns:
      ``dprob``: ``(batch, n)``.
    """
    # BEGIN SOLUTION
    return (-target / prob + (1 - target) / (1 - prob)) / prob.shape[0]
    # END SOLUTION


def sigmoid_binary_cross_entropy_backward(logits, target):
    """Exercise 8: a sigmoid and binary cross-entropy, differentiated together.

    Source: document 004, the first factor of ``∂L/∂W00``:
    ``(Y_out - y) / (Y_out (1 - Y_out)) * σ'(α)``, which simplifies.

    Loss: ``p = sigmoid(z)`` entry by entry, then the binary cross-entropy of exercise 7
    on ``p`` (summed per example, mean over the batch).

    Derive ``∂L/∂z = ∂L/∂p * ∂p/∂z`` and simplify it: the answer needs neither a
    division nor a logarithm.

    Args:
      logits: ``(batch, n)``, the sigmoid's input ``z``.
      target: ``(batch, n)``, targets in ``[0, 1]``.

    Returns:
      ``dlogits``: ``(batch, n)``.
    """
    # BEGIN SOLUTION
    return (jax.nn.sigmoid(logits) - target) / logits.shape[0]
    # END SOLUTION
