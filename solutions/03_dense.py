"""Exercise 9: the fully connected layer's backward pass.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade dense_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def dense_backward(x, w, dy):
    """Exercise 9: ``y = x @ w + b``, backward.

    Source: document 001, "求对 w 的偏导" (``∂E/∂w^3_11 = ∂E/∂z^3_1 * a^2_1``: the
    weight's gradient is the error at its output unit times the activation at its input
    unit); document 002, ``δ_5 = ∂Error/∂w_5 = ... * h_1``; document 000, the ``w`` and
    ``b`` update lines.

    Forward: ``y[n, k] = sum_j x[n, j] w[j, k] + b[k]``; ``w[j, k]`` connects input unit
    ``j`` to output unit ``k`` (001's ``w^l_jk``).

    Derive, index by index, then as matrix products: ``dx[n, j]``, ``dw[j, k]`` (sum
    over the batch: every example uses the same ``w``) and ``db[k]``. Check each
    result's shape against the shape of what it is the gradient of.

    Args:
      x: ``(batch, in)``, the layer's input.
      w: ``(in, out)``, the weights.
      dy: ``(batch, out)``, the loss's gradient with respect to ``y``.

    Returns:
      ``(dx, dw, db)``: ``(batch, in)``, ``(in, out)``, ``(out,)``.
    """
    # BEGIN SOLUTION
    dx = dy @ w.T
    dw = x.T @ dy
    db = jnp.sum(dy, axis=0)
    return dx, dw, db
    # END SOLUTION
