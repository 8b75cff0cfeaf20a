"""Exercises 17-18: two more activations, GELU and leaky relu.

Beyond the documents: the activations of transformers (GELU, in GPT-2 and BERT) and
of many convolutional networks (leaky relu). As in exercises 1-4, each function gets
what the forward pass kept (here its input ``x``) and the upstream gradient ``dy``, and
returns ``dx`` with the shape of ``dy``; the input may have any rank.

超出文档的部分：Transformer 用的 GELU（GPT-2、BERT）和许多卷积网络用的 leaky relu。和
练习 1-4 一样，函数拿到前向传播保存的输入 ``x`` 和上游梯度 ``dy``，返回与 ``dy``
同形状的 ``dx``；输入可以是任意维数。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade NAME``, e.g. ``jaxbp grade gelu_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def gelu_backward(x, dy):
    """Exercise 17: GELU's backward pass, tanh form (the calculus of a composite).

    Source: not in the documents. Hendrycks and Gimpel, "Gaussian Error Linear Units"
    (2016); GPT-2 and llm.c's ``gelu_backward`` use this tanh approximation, and so do
    ``jax.nn.gelu(x, approximate=True)`` and ``jaxbp.gelu()``.

    Forward, entry by entry, with ``c = sqrt(2 / pi)`` and ``a = 0.044715``::

        u = c * (x + a * x**3)
        y = 0.5 * x * (1 + tanh(u))

    Derive ``dy/dx``: a product (``0.5 x`` times ``1 + tanh(u)``), a tanh of an inner
    function ``u(x)`` (its derivative is ``1 - tanh(u)^2``), and the inner polynomial's
    own derivative ``du/dx``. Then ``dx = dy * (dy/dx)``.

    中文：GELU（tanh 近似形式）的反向传播。前向为 ``y = 0.5 x (1 + tanh(u))``，其中
    ``u = c (x + a x^3)``。对乘积、tanh 和里面的多项式 ``u(x)`` 依次用链式法则求
    ``dy/dx``，再乘以 ``dy``。

    Args:
      x: ``(batch, ...)``, the forward's input.
      dy: ``x``'s shape, the loss's gradient with respect to ``y``.

    Returns:
      ``dx``: ``x``'s shape.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: gelu_backward")
    # END SOLUTION


def leaky_relu_backward(x, dy, negative_slope=0.01):
    """Exercise 18: leaky relu's backward pass.

    Source: not in the documents. Maas, Hannun and Ng (2013); ``jax.nn.leaky_relu`` and
    ``jaxbp.leaky_relu(negative_slope=0.01)``.

    Forward, entry by entry: ``y = x`` where ``x >= 0``, ``y = negative_slope * x``
    where ``x < 0``.

    Derive ``dy/dx`` on each side of the kink, then ``dx = dy * (dy/dx)``. At the kink
    ``x = 0`` take 1 (as ``jax.nn.leaky_relu`` does).

    中文：leaky relu 的反向传播。``x >= 0`` 时 ``y = x``，``x < 0`` 时
    ``y = negative_slope * x``。分别求两侧的导数，再乘以 ``dy``。

    Args:
      x: ``(batch, ...)``, the forward's input.
      dy: ``x``'s shape, the loss's gradient with respect to ``y``.
      negative_slope: the slope on the negative side, a float (or a scalar array).

    Returns:
      ``dx``: ``x``'s shape.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: leaky_relu_backward")
    # END SOLUTION
