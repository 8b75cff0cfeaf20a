"""Exercise 10: one step of stochastic gradient descent.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``. Check your work
with ``jaxbp grade sgd_update``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def sgd_update(params, grads, lr):
    """Exercise 10: ``param <- param - lr * grad``, for every parameter.

    Source: document 000, every update line (``w13 = w13 - α * coef_o1 * out_hh1``,
    α = 0.7); document 002, "参数更新" (η = 1); document 003 (α = 0.5).

    Derive why the step subtracts: the gradient points where the loss grows fastest, so
    a small step ``lr`` against it lowers the loss.

    ``params`` is a pytree (nested tuples, lists and dicts of arrays, e.g. a jaxbp
    network's params, where ``()`` stands for a layer without parameters); ``grads``
    has the same structure. Return a new pytree of that structure; change nothing in
    place. ``jax.tree.map`` walks two trees together.

    Args:
      params: a pytree of arrays.
      grads: a pytree of arrays with the structure and shapes of ``params``.
      lr: the learning rate, a float (or a scalar array).

    Returns:
      The updated params: a pytree with the structure and shapes of ``params``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: sgd_update")
    # END SOLUTION
