"""Exercise 11: max pooling's backward pass.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade max_pool2d_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def max_pool2d_backward(x, dy, window):
    """Exercise 11: 2-D max pooling, backward.

    Source: document 003, the pooling layer of its CNN (``P1 = max(C1, C2)``,
    ``P2 = max(C3, C4)``) and the ``coef_c`` lines: "pooling routes the error to C2 and
    C3 only" (the maxima); the other entries get 0.

    Forward: windows of ``(wh, ww)`` with stride ``(wh, ww)`` (non-overlapping), no
    padding; rows and columns at the end that do not fill a window are dropped.
    ``y[n, i, j, c] = max of x[n, i*wh:(i+1)*wh, j*ww:(j+1)*ww, c]``.

    Derive: the max passes its gradient to the entry that won, and nothing to the
    others. If a window holds its maximum twice, give the gradient to the first one
    (row-major order within the window), as PyTorch does, never a copy to each (dy
    would count twice). Ties are common (after a relu, every zero ties): the grader
    checks this rule on a case with ties. Entries in the dropped rows and columns get 0.

    Args:
      x: ``(batch, h, w, channels)``, the forward's input.
      dy: ``(batch, h // wh, w // ww, channels)``, the loss's gradient with respect
        to the pooled output.
      window: ``(wh, ww)``, a tuple of two ints, or one int for a square window.

    Returns:
      ``dx``: ``(batch, h, w, channels)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: max_pool2d_backward")
    # END SOLUTION
