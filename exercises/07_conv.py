"""Exercises 14-15: convolutions' backward passes.

A convolution here is a cross-correlation, as in the documents and in
``lax.conv_general_dilated``: the kernel slides over the input without being flipped.
Data is channels-last: ``(batch, length, channels)`` and
``(batch, height, width, channels)``; kernels are ``(k, in, out)`` and
``(kh, kw, in, out)``.

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (``lax.conv_general_dilated`` is allowed; JAX's autodiff and jaxbp are not).
A loop over the kernel's taps (a handful of offsets) is fine; a loop over pixels or
examples is slow. Check your work with ``jaxbp grade conv1d_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def conv1d_backward(x, w, dy, stride=1, padding=0):
    """Exercise 14: a 1-D convolution with stride and padding, backward.

    Source: document 003, the CNN: one input ``i1`` seen by two size-3 kernels
    ``k1, k2`` (biases ``b1, b2``); its ``K11 = k11 - α (coef_c1 * i1 + coef_c2 * 0)``
    lines are this exercise's ``dw``, entry by entry.

    Forward, with ``xpad`` = ``x`` padded with ``lo`` zeros before and ``hi`` after::

        y[n, o, co] = sum_{j, ci} xpad[n, o * stride + j, ci] * w[j, ci, co] + b[co]

    for ``o = 0 .. out_len - 1``, ``out_len = (length + lo + hi - k) // stride + 1``
    (input at the end that no window reaches is unused).

    Derive ``dw[j, ci, co]`` (every output position uses the same kernel: sum over
    positions and examples), ``db[co]``, and ``dx``: each input entry receives
    ``dy * w`` from every output position whose window covered it; the padding's
    entries are not part of ``x``. Written as a convolution, ``dx`` is a full
    convolution of (stride-dilated) ``dy`` with the *flipped* kernel.

    Args:
      x: ``(batch, length, in)``.
      w: ``(k, in, out)``.
      dy: ``(batch, out_len, out)``, the loss's gradient with respect to ``y``.
      stride: a positive int.
      padding: an int (the same at both ends) or a pair ``(lo, hi)``.

    Returns:
      ``(dx, dw, db)``: ``(batch, length, in)``, ``(k, in, out)``, ``(out,)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: conv1d_backward")
    # END SOLUTION


def conv2d_backward(x, w, dy):
    """Exercise 15: a 2-D convolution (stride 1, no padding), backward.

    Source: document 004: ``∂L/∂W00`` sums ``∂L/∂s * a`` over the four positions
    ``s0..s3`` of the window, and the gradient of the input pixel ``a21`` (row 2,
    column 1) meets the kernel entries ``W21, W20, W11, W10`` in the four windows: the
    input gradient is a full convolution of ``dy`` with the flipped kernel.

    Forward::

        y[n, r, c, co] = sum_{i, j, ci} x[n, r + i, c + j, ci] * w[i, j, ci, co] + b[co]

    with ``r < h - kh + 1`` and ``c < w - kw + 1``.

    Derive ``dw[i, j, ci, co]``, ``db[co]`` and ``dx[n, p, q, ci]`` (which kernel
    entries meet pixel ``(p, q)``, and at which output positions?).

    Args:
      x: ``(batch, h, w, in)``.
      w: ``(kh, kw, in, out)``.
      dy: ``(batch, h - kh + 1, w - kw + 1, out)``.

    Returns:
      ``(dx, dw, db)``: ``(batch, h, w, in)``, ``(kh, kw, in, out)``, ``(out,)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: conv2d_backward")
    # END SOLUTION
