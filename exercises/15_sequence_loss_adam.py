"""Exercises 29-30: a language model's loss, and the Adam optimizer.

Beyond the documents: what a character-level language model trains with. Its loss is
the cross-entropy of the next character's prediction at every position of every
sequence; its optimizer is Adam (SGD, exercise 10, with running averages of the
gradient and of its square).

超出文档的部分：字符级语言模型训练时用到的两样东西。损失是每个序列每个位置上预测下一个
字符的交叉熵；优化器是 Adam（在 SGD，即练习 10 的基础上，加上梯度及其平方的滑动平均）。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp, not optax). Broadcast explicitly. Check your
work with ``jaxbp grade NAME``, e.g. ``jaxbp grade adam_update``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def sequence_cross_entropy_backward(logits, labels):
    """Exercise 29: softmax cross-entropy over a batch of sequences, backward.

    Source: not in the documents. Document 003's softmax with cross-entropy (exercise
    6), at every position; llm.c's ``crossentropy_softmax_backward``;
    ``jaxbp.softmax_cross_entropy()`` on ``(batch, time, classes)`` logits with integer
    labels.

    Loss: with ``p = softmax(logits)`` over the classes (last axis),
    ``L = mean over the batch and the time steps of -log p[n, t, labels[n, t]]``.

    Derive ``∂L/∂logits``: at one position it is exercise 6's ``a - y`` (``y`` the
    one-hot label); then the mean: how many terms does it average?

    中文：一批序列上的 softmax 交叉熵的反向传播。损失是所有样本、所有时间步上
    ``-log p[n, t, labels[n, t]]`` 的平均。每个位置上的梯度是练习 6 的 ``a - y``；
    再想一想平均是对多少项取的。

    Args:
      logits: ``(batch, time, classes)``.
      labels: ``(batch, time)`` integers in ``[0, classes)``.

    Returns:
      ``dlogits``: ``(batch, time, classes)``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: sequence_cross_entropy_backward")
    # END SOLUTION


def adam_update(params, grads, m, v, step, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Exercise 30: one step of Adam, bias correction included.

    Source: not in the documents. Kingma and Ba, "Adam" (2015), Algorithm 1;
    ``optax.adam`` (the grader compares with it, step by step); llm.c's
    ``gpt2_update``.

    For every parameter ``p`` with gradient ``g`` (entry by entry), at the ``step``-th
    update (``step`` = 1 for the first)::

        m = b1 * m + (1 - b1) * g              running mean of the gradient
        v = b2 * v + (1 - b2) * g * g          running mean of its square
        m_hat = m / (1 - b1 ** step)           bias correction: m and v start at 0
        v_hat = v / (1 - b2 ** step)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Derive why the bias correction divides by ``1 - b1 ** step`` (what is ``m`` after
    the first step, if every gradient were the same ``g``?), and where ``eps`` goes (it
    keeps the step finite where ``v_hat`` is 0: outside the square root, as here and
    in optax).

    ``params``, ``grads``, ``m`` and ``v`` are pytrees of one structure (as in exercise
    10); ``jax.tree.map`` walks several trees together. Return new trees; change
    nothing in place.

    中文：Adam 的一步更新，包括偏差修正。对每个参数，先更新梯度的滑动平均 ``m`` 和梯度
    平方的滑动平均 ``v``，再除以 ``1 - b1 ** step``、``1 - b2 ** step`` 做偏差修正（``m``、
    ``v`` 从 0 开始），最后 ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``（``eps`` 在平方根
    外面）。

    Args:
      params: a pytree of arrays.
      grads: a pytree of arrays with the structure and shapes of ``params``.
      m: the running means of the gradients, like ``params`` (zeros before step 1).
      v: the running means of the squared gradients, like ``params`` (zeros before
        step 1).
      step: the number of this update, an int >= 1 (or an integer scalar array).
      lr: the learning rate, a float.
      b1, b2: the decay rates of ``m`` and ``v``, floats.
      eps: a small float, added to ``sqrt(v_hat)``.

    Returns:
      ``(new_params, new_m, new_v)``: three pytrees with the structure and shapes of
      ``params``.
    """
    # BEGIN SOLUTION
    raise NotImplementedError("not done yet: adam_update")
    # END SOLUTION
