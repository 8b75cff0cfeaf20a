"""Exercises 23-25: dropout, embedding and the residual connection, backward.

Beyond the documents: three small layers every modern network uses. Dropout multiplies
by a random mask the forward drew (the backward reuses it); an embedding looks rows up
in a table (ids repeat, so gradients collide); a residual connection forks its input
into two paths (gradients of the two paths add).

超出文档的部分：现代网络里常见的三个小层。dropout 乘以前向传播抽取的随机掩码（反向传播
沿用同一个掩码）；embedding 按编号在表里查行（编号会重复，梯度要累加）；残差连接把输入
分成两条路径（两条路径的梯度相加）。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). Broadcast explicitly. Check your work with
``jaxbp grade NAME``, e.g. ``jaxbp grade dropout_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def dropout_backward(mask, dy, rate):
    """Exercise 23: inverted dropout, backward (the forward's mask and scale).

    Source: not in the documents. Srivastava et al., "Dropout" (2014); CS231n
    assignment 2 (``dropout_backward``); ``jaxbp.dropout(rate)`` in training mode.

    Forward (training mode), entry by entry: the forward drew ``mask`` (``True`` with
    probability ``1 - rate``: the entry is kept) and computed
    ``y = x / (1 - rate)`` where ``mask`` is ``True``, ``y = 0`` where it is ``False``.
    (Inverted dropout: the kept entries are scaled up in training, so inference needs
    no change.)

    Derive ``dy/dx`` for a kept and for a dropped entry; the backward uses the *same*
    mask as the forward (never a new one).

    中文：inverted dropout 的反向传播。前向传播抽取了掩码 ``mask``（``True`` 表示保留，
    概率为 ``1 - rate``），保留的元素除以 ``1 - rate``，丢弃的元素为 0。求两种元素的
    导数；反向传播必须用前向传播的同一个掩码。

    Args:
      mask: ``(batch, ...)`` booleans, the forward's mask (``True``: kept).
      dy: ``mask``'s shape, floats, the loss's gradient with respect to ``y``.
      rate: the probability of dropping an entry, a float in ``[0, 1)``.

    Returns:
      ``dx``: ``dy``'s shape.
    """
    # BEGIN SOLUTION
    return jnp.where(mask, dy / (1 - rate), jnp.zeros((), dy.dtype))
    # END SOLUTION


def embedding_backward(ids, dy, vocab_size):
    """Exercise 24: an embedding lookup, backward (scatter-add).

    Source: not in the documents. Karpathy's "Backprop Ninja" (``dC`` from ``demb``: "a
    for loop that adds"); llm.c's ``encoder_backward``; ``jaxbp.embedding(vocab_size,
    features)``.

    Forward: ``y[n, ..., :] = w[ids[n, ...], :]``: row ``ids[n, ...]`` of the table
    ``w`` (``(vocab_size, features)``), for every id. The ids are integers, so there is
    no ``dx``; the gradient is ``dw``.

    Derive ``dw[r, :]``: which outputs used row ``r``? An id may appear many times in
    ``ids`` (the same character at several positions): each use contributes. Row ``r``
    that no id used gets 0. (In JAX, ``a.at[idx].add(values)`` adds at repeated indices;
    ``a.at[idx].set(values)`` keeps one of them.)

    中文：embedding 查表的反向传播。前向传播取表 ``w`` 的第 ``ids[n, ...]`` 行。求 ``dw``：
    第 ``r`` 行被哪些输出用到了？同一个编号可能出现多次，每一次都要把梯度加上去
    （用 ``.at[].add``，不是 ``.at[].set``）。没有被用到的行梯度为 0。

    Args:
      ids: ``(batch, ...)`` integers in ``[0, vocab_size)``.
      dy: ``(batch, ..., features)``, the loss's gradient with respect to ``y``.
      vocab_size: the number of rows of the table, an int.

    Returns:
      ``dw``: ``(vocab_size, features)``.
    """
    # BEGIN SOLUTION
    features = dy.shape[-1]
    dw = jnp.zeros((vocab_size, features), dy.dtype)
    return dw.at[ids.reshape(-1)].add(dy.reshape(-1, features))
    # END SOLUTION


def residual_backward(branch, params, residuals, dy):
    """Exercise 25: a residual connection ``y = x + f(x)``, backward (the fork).

    Source: not in the documents. He et al., "Deep Residual Learning" (2015); every
    transformer block (llm.c's ``residual_backward``); ``jaxbp.residual(*layers)``.

    Forward: ``f`` is a jaxbp layer (``branch``, e.g. ``serial(dense, tanh, dense)``)
    that keeps its input's shape; the forward computed
    ``fx, residuals = branch.forward(params, x)`` and ``y = x + fx``.

    Derive ``dx``: ``x`` is used twice (the identity path and the branch), so its
    gradient is the sum of what comes back along each path. ``branch.backward(params,
    residuals, dy_branch) -> (dparams, dx_branch)`` is the branch's backward: what does
    the branch get as its upstream gradient? Use it; do not rebuild the branch.

    中文：残差连接 ``y = x + f(x)`` 的反向传播（分叉）。``x`` 被用了两次（恒等路径和分支
    ``f``），所以它的梯度是两条路径传回来的梯度之和。分支的反向传播是
    ``branch.backward(params, residuals, dy_branch)``：分支的上游梯度是什么？

    Args:
      branch: a jaxbp layer with ``backward(params, residuals, dy) -> (dparams, dx)``.
      params: the branch's params.
      residuals: the branch's residuals, from its forward.
      dy: the loss's gradient with respect to ``y`` (``x``'s shape).

    Returns:
      ``(dparams, dx)``: ``dparams`` with the structure of ``params``; ``dx`` with
      ``x``'s shape.
    """
    # BEGIN SOLUTION
    dparams, dx_branch = branch.backward(params, residuals, dy)
    return dparams, dy + dx_branch
    # END SOLUTION
