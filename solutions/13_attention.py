"""Exercise 26: causal self-attention's backward pass, one head.

Beyond the documents: the heart of a transformer. Every step of it is a backward pass
you have written before: matrix products (exercise 9) and a softmax over each row
(exercise 4), here with a causal mask.

超出文档的部分：Transformer 的核心。它的每一步你都写过：矩阵乘法（练习 9）和按行的
softmax（练习 4），这里多了一个因果掩码。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). ``jnp.einsum`` and ``jnp.swapaxes`` help with
the batch axis. Check your work with ``jaxbp grade attention_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def attention_backward(q, k, v, dy):
    """Exercise 26: one head of causal scaled dot-product attention, backward.

    Source: not in the documents. Vaswani et al., "Attention Is All You Need" (2017);
    llm.c's ``attention_backward``; one head of ``jaxbp.causal_self_attention(heads)``.

    Forward, for each example of the batch (``T`` positions, ``D`` features per
    position, ``c = 1 / sqrt(D)``)::

        s[t, u] = c * sum_d q[t, d] k[u, d]        scores, (T, T)
        s[t, u] = -inf where u > t                  causal mask: no look at the future
        p[t, :] = softmax(s[t, :])                  over the keys u; p[t, u] = 0 if u > t
        y[t, :] = sum_u p[t, u] v[u, :]             (T, D)

    (To compute ``p`` without NaN, replace the masked scores by a very negative finite
    number, e.g. ``jnp.finfo(q.dtype).min``, and subtract each row's maximum before
    ``exp``.)

    Derive, backward through each step: ``dv`` and ``dp`` (the product ``p @ v``);
    ``ds`` (the softmax of each row is a vector-Jacobian product, as in exercise 4: each
    ``p[t, u]`` depends on every score of its row); the masked scores' gradient (what
    is it?); then ``dq`` and ``dk`` through the scaled product ``c * q @ k^T``.

    中文：单头因果缩放点积注意力的反向传播。前向：分数 ``s = c q k^T``（``c = 1/sqrt(D)``），
    把未来位置（``u > t``）屏蔽掉，按行做 softmax 得到 ``p``，输出 ``y = p v``。反向依次
    求 ``dv`` 和 ``dp``、经过每一行 softmax 的 ``ds``（和练习 4 一样是向量-雅可比乘积；
    被屏蔽的分数梯度是多少？）、最后经过 ``c q k^T`` 求 ``dq`` 和 ``dk``。

    Args:
      q: ``(batch, T, D)``, the queries.
      k: ``(batch, T, D)``, the keys.
      v: ``(batch, T, D)``, the values.
      dy: ``(batch, T, D)``, the loss's gradient with respect to ``y``.

    Returns:
      ``(dq, dk, dv)``: each ``(batch, T, D)``.
    """
    # BEGIN SOLUTION
    time, depth = q.shape[1], q.shape[2]
    c = 1.0 / jnp.sqrt(jnp.asarray(depth, q.dtype))
    mask = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    s = c * jnp.einsum("btd,bud->btu", q, k)
    s = jnp.where(mask, s, jnp.finfo(s.dtype).min)
    e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
    p = e / jnp.sum(e, axis=-1, keepdims=True)
    dv = jnp.einsum("btu,btd->bud", p, dy)
    dp = jnp.einsum("btd,bud->btu", dy, v)
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))  # 0 where masked (p = 0)
    dq = c * jnp.einsum("btu,bud->btd", ds, k)
    dk = c * jnp.einsum("btu,btd->bud", ds, q)
    return dq, dk, dv
    # END SOLUTION
