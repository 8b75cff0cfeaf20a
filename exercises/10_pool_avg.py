"""Exercise 19: average pooling's backward pass.

Beyond the documents: max pooling (exercise 11) routes the gradient to one entry of
each window; average pooling spreads it over the whole window.

超出文档的部分：最大池化（练习 11）把梯度送给窗口里的一个元素；平均池化把梯度平均分给
整个窗口。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade avg_pool2d_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def avg_pool2d_backward(x, dy, window):
    """Exercise 19: 2-D average pooling, backward (spread, not route).

    Source: not in the documents; CS231n's pooling layers, ``torch.nn.AvgPool2d`` and
    ``jaxbp.avg_pool2d(window)``. Compare with document 003's max pooling (exercise 11).

    Forward: windows of ``(wh, ww)`` with stride ``(wh, ww)`` (non-overlapping), no
    padding; rows and columns at the end that do not fill a window are dropped.
    ``y[n, i, j, c] = mean of x[n, i*wh:(i+1)*wh, j*ww:(j+1)*ww, c]``.

    Derive ``∂y[n, i, j, c] / ∂x[n, p, q, c]`` for an entry ``(p, q)`` inside window
    ``(i, j)``: every entry of the window counts equally. Entries in the dropped rows
    and columns get 0.

    中文：二维平均池化的反向传播。每个窗口的输出是窗口内元素的平均值，所以窗口里每个
    元素得到同样的一份梯度（不是只给一个元素）。没有被任何窗口覆盖的行和列梯度为 0。

    Args:
      x: ``(batch, h, w, channels)``, the forward's input (only its shape is needed).
      dy: ``(batch, h // wh, w // ww, channels)``, the loss's gradient with respect
        to the pooled output.
      window: ``(wh, ww)``, a tuple of two ints, or one int for a square window.

    Returns:
      ``dx``: ``(batch, h, w, channels)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: avg_pool2d_backward")
    # END SOLUTION
