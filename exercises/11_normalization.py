"""Exercises 20-22: normalization's backward passes, layer norm and batch norm.

Beyond the documents. Both layers compute, over some axes of ``x``::

    mean = mean(x)                       the statistics (keepdims over the normalized axes)
    xc   = x - mean
    var  = mean(xc * xc)                 the biased variance: divided by n, not n - 1
    rstd = 1 / sqrt(var + eps)
    xhat = xc * rstd
    y    = scale * xhat + bias           scale and bias: one entry per feature (last axis)

Layer norm normalizes over the last axis (each example, each position on its own);
batch norm over every axis but the last (each feature over the batch and, for images,
every pixel). Each function gets the forward's input ``x``, ``scale``, the upstream
gradient ``dy`` and ``eps``, and recomputes the statistics it needs. The lesson: ``mean``
and ``var`` depend on every ``x`` they were computed from, so each ``x`` gets gradient
through three paths (directly through ``xc``, through ``mean``, through ``var``).

超出文档的部分：归一化层的反向传播。两种层都按上面的公式计算，区别在于对哪些轴求统计量：
layer norm 沿最后一个轴，batch norm 沿除最后一个轴以外的所有轴。``mean`` 和 ``var``
依赖于参与计算的每一个 ``x``，所以每个 ``x`` 的梯度有三条路径：直接经过 ``xc``、经过
``mean``、经过 ``var``。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly (``keepdims=True``,
``scale[None, :]``). Check your work with ``jaxbp grade NAME``, e.g.
``jaxbp grade layer_norm_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def layer_norm_backward(x, scale, dy, eps=1e-5):
    """Exercise 20: layer normalization over the last axis, backward.

    Source: not in the documents. Ba, Kiros and Hinton, "Layer Normalization" (2016);
    llm.c's ``layernorm_backward``; CS231n assignment 2; ``jaxbp.layer_norm()``.

    Forward: the module docstring's, with the statistics over the last axis (``F``
    features) of each row, ``mean`` and ``var`` of shape ``(..., 1)``.

    Derive ``dbias`` and ``dscale`` (sums over every axis but the last: every row uses
    the same ``scale``), then ``dx``. With ``g = dy * scale`` (the gradient of
    ``xhat``), the chain rule through ``xc``, ``mean`` and ``var`` simplifies to
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``, the means over the last axis:
    derive it, don't copy it (which term is the path through the mean, which through
    the variance?).

    中文：layer norm（沿最后一个轴归一化）的反向传播。先求 ``dbias`` 和 ``dscale``
    （对除最后一个轴以外的所有轴求和），再求 ``dx``：记 ``g = dy * scale``，链式法则经过
    ``xc``、``mean``、``var`` 三条路径，化简后为
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``。请自己推导出来。

    Args:
      x: ``(batch, ..., features)``, the forward's input.
      scale: ``(features,)``.
      dy: ``x``'s shape, the loss's gradient with respect to ``y``.
      eps: the float added to the variance (``1e-5`` in jaxbp and PyTorch).

    Returns:
      ``(dx, dscale, dbias)``: ``x``'s shape, ``(features,)``, ``(features,)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: layer_norm_backward")
    # END SOLUTION


def batch_norm_backward_steps(x, scale, dy, eps=1e-5):
    """Exercise 21: batch normalization (training mode), backward step by step.

    Source: not in the documents. Karpathy's "Building makemore Part 4: Becoming a
    Backprop Ninja" (exercise 1: backward through every intermediate value of the
    forward graph); Ioffe and Szegedy (2015); CS231n assignment 2 (``batchnorm_backward``);
    ``jaxbp.batch_norm()`` in training mode.

    Forward: the module docstring's graph, with the statistics over every axis but the
    last (``n`` values per feature: ``n = batch`` for ``(batch, features)``,
    ``n = batch * h * w`` for ``(batch, h, w, channels)``); ``mean``, ``var`` and
    ``rstd`` have shape ``(1, ..., 1, features)`` (``keepdims=True``).

    Derive, walking the graph backward one node at a time, the gradient of the loss
    with respect to each intermediate value (the *total* gradient: every path from the
    node to the loss counted):

    1. ``dbias``, ``dscale`` (sums over every axis but the last) and ``dxhat``;
    2. ``drstd`` (``rstd`` is shared by every ``xhat`` of its feature: sum);
    3. ``dvar`` (the derivative of ``(var + eps) ** -0.5``);
    4. ``dxc``: ``xc`` feeds two nodes, ``xhat`` and ``var``: add both paths;
    5. ``dmean`` (``mean`` is subtracted from every ``x``: sum);
    6. ``dx``: ``x`` feeds ``xc`` and ``mean``: add both paths.

    中文：batch norm（训练模式）的反向传播，逐步进行（Karpathy "Backprop Ninja" 的第一种
    写法）。沿着前向计算图逐个节点往回走，求损失对每个中间值的梯度（所有路径都要算上）：
    ``dxhat``、``drstd``、``dvar``、``dxc``（``xc`` 同时流向 ``xhat`` 和 ``var``，两条路径
    相加）、``dmean``、``dx``（``x`` 同时流向 ``xc`` 和 ``mean``）。

    Args:
      x: ``(batch, ..., features)``, the forward's input.
      scale: ``(features,)``.
      dy: ``x``'s shape, the loss's gradient with respect to ``y``.
      eps: the float added to the variance.

    Returns:
      ``(dx, dscale, dbias, steps)``: ``dx`` with ``x``'s shape, ``dscale`` and
      ``dbias`` ``(features,)``, and ``steps`` a dict of the intermediate gradients:
      ``{"dxhat": x's shape, "drstd": (1, ..., 1, features), "dvar": (1, ..., 1,
      features), "dxc": x's shape, "dmean": (1, ..., 1, features)}``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: batch_norm_backward_steps")
    # END SOLUTION


def batch_norm_backward(x, scale, dy, eps=1e-5):
    """Exercise 22: batch normalization (training mode), backward in closed form.

    Source: not in the documents. Karpathy's "Backprop Ninja" (exercise 3: the whole
    backward in one expression); CS231n assignment 2 (``batchnorm_backward_alt``);
    ``jaxbp.batch_norm()``'s own backward.

    Forward: as in exercise 21 (statistics over every axis but the last, ``n`` values
    per feature, the biased variance).

    Derive the closed form from your steps in exercise 21: substitute ``dxc``, ``dvar``
    and ``dmean`` into ``dx`` and simplify, until ``dx`` needs only ``dy``, ``xhat``,
    ``rstd``, ``scale`` and the two sums ``dbias = sum(dy)`` and
    ``dscale = sum(dy * xhat)``. (The answer has the shape
    ``dx = scale * rstd / n * (n * dy - ... - ...)``.)

    中文：batch norm（训练模式）反向传播的闭式解（"Backprop Ninja" 的第三种写法）。把
    练习 21 里的 ``dxc``、``dvar``、``dmean`` 代入 ``dx`` 并化简，直到 ``dx`` 只用到
    ``dy``、``xhat``、``rstd``、``scale`` 和两个求和 ``dbias``、``dscale``。

    Args:
      x: ``(batch, ..., features)``, the forward's input.
      scale: ``(features,)``.
      dy: ``x``'s shape, the loss's gradient with respect to ``y``.
      eps: the float added to the variance.

    Returns:
      ``(dx, dscale, dbias)``: ``x``'s shape, ``(features,)``, ``(features,)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: batch_norm_backward")
    # END SOLUTION
