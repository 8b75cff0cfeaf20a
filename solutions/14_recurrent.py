"""Exercises 27-28: recurrent networks, backward: a tanh RNN through time, an LSTM cell.

Beyond the documents. A recurrent layer applies the same weights at every time step,
its hidden state carried from one step to the next. Backward, the gradient flows back
along that carry too (backpropagation through time), and every step adds to the
weights' gradients.

Data is batch-first: ``x`` is ``(batch, time, in)``. Weights are laid out as jaxbp's
``rnn`` and ``lstm`` (and as dense): ``wx`` ``(in, hidden)`` multiplies the input from
the right, ``wh`` ``(hidden, hidden)`` the previous hidden state.

超出文档的部分：循环网络的反向传播。循环层在每个时间步使用同一组权重，隐藏状态从一步
传到下一步。反向传播时梯度也沿着这条路径往回传（随时间反向传播，BPTT），每一步都对
权重的梯度有贡献。

Write your code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, with ``jnp`` and
``lax`` (not JAX's autodiff, not jaxbp). A Python loop over the time steps is fine
(``lax.scan`` with ``reverse=True`` is the fast way). Check your work with
``jaxbp grade NAME``, e.g. ``jaxbp grade rnn_backward``.
"""

import jax
import jax.numpy as jnp
from jax import lax


def rnn_backward(x, h, wx, wh, b, dh):
    """Exercise 27: a tanh RNN over a whole sequence, backpropagation through time.

    Source: not in the documents. CS231n assignment 3 (``rnn_backward``); CMU 11-785;
    ``jaxbp.rnn(hidden)``.

    Forward, with ``h[:, -1] = 0`` (the initial state is zero)::

        a_t = x[:, t] @ wx + h[:, t - 1] @ wh + b       pre-activation, (batch, hidden)
        h[:, t] = tanh(a_t)                              t = 0 .. time - 1

    The layer's output is every hidden state ``h``, and ``dh[:, t]`` is the loss's
    gradient with respect to ``h[:, t]`` *from the output alone*.

    Derive, walking back from the last step: ``h[:, t]`` also feeds step ``t + 1``, so
    its total gradient is ``dh[:, t]`` plus what step ``t + 1`` sends back. Then ``da_t``
    (tanh's derivative, written with its output, as in exercise 2), and each step's
    contributions to ``dx[:, t]``, ``dwx``, ``dwh``, ``db`` (the weights are shared:
    add over the steps) and to the previous hidden state. The bias ``b`` is given so
    that you could recompute the forward; the backward does not need it.

    中文：tanh RNN 在整个序列上的反向传播（BPTT）。前向：``a_t = x_t wx + h_{t-1} wh + b``，
    ``h_t = tanh(a_t)``，初始状态为 0。``dh[:, t]`` 只是输出对 ``h_t`` 的梯度；``h_t`` 还流向
    第 ``t + 1`` 步，所以要加上从下一步传回来的梯度。tanh 的导数用输出表示（练习 2）。
    权重在每一步共享，梯度要对所有时间步求和。

    Args:
      x: ``(batch, time, in)``, the inputs.
      h: ``(batch, time, hidden)``, every hidden state of the forward.
      wx: ``(in, hidden)``.
      wh: ``(hidden, hidden)``.
      b: ``(hidden,)``.
      dh: ``(batch, time, hidden)``, the loss's gradient with respect to ``h``.

    Returns:
      ``(dx, dwx, dwh, db)``: ``(batch, time, in)``, ``(in, hidden)``,
      ``(hidden, hidden)``, ``(hidden,)``.
    """
    # BEGIN SOLUTION
    del b
    h_prev = jnp.concatenate([jnp.zeros_like(h[:, :1]), h[:, :-1]], axis=1)

    def step(carry, inputs):
        h_t, dh_t = inputs
        da = (dh_t + carry) * (1 - h_t * h_t)  # carry: what step t + 1 sent back
        return da @ wh.T, da

    time_major = (jnp.swapaxes(h, 0, 1), jnp.swapaxes(dh, 0, 1))
    _, da = lax.scan(step, jnp.zeros_like(h[:, 0]), time_major, reverse=True)
    da = jnp.swapaxes(da, 0, 1)  # (batch, time, hidden)
    dx = jnp.einsum("bth,ih->bti", da, wx)
    dwx = jnp.einsum("bti,bth->ih", x, da)
    dwh = jnp.einsum("btg,bth->gh", h_prev, da)
    db = jnp.sum(da, axis=(0, 1))
    return dx, dwx, dwh, db
    # END SOLUTION


def lstm_cell_backward(x, h_prev, c_prev, wx, wh, b, dh, dc):
    """Exercise 28: one step of an LSTM cell, backward (four gates).

    Source: not in the documents. Hochreiter and Schmidhuber (1997); CS231n assignment
    3 (``lstm_step_backward``); ``torch.nn.LSTM`` (whose gate order this follows);
    one step of ``jaxbp.lstm(hidden)``.

    Forward (``H`` = hidden, ``σ`` the sigmoid), the gates in PyTorch's order *input,
    forget, cell, output*::

        z = x @ wx + h_prev @ wh + b                    (batch, 4H)
        i = σ(z[:, 0:H])      f = σ(z[:, H:2H])         input gate, forget gate
        g = tanh(z[:, 2H:3H]) o = σ(z[:, 3H:4H])        candidate cell, output gate
        c = f * c_prev + i * g                          the new cell state
        h = o * tanh(c)                                 the new hidden state

    ``dh`` and ``dc`` are the loss's gradients with respect to ``h`` and ``c`` that
    come from above and from the next step.

    Derive: the total gradient of ``c`` (``dc``, plus the path through
    ``h = o * tanh(c)``); the gradient of each gate; ``dz`` through each gate's
    activation (sigmoid's and tanh's derivatives written with their outputs, exercises
    1 and 2); then ``dx``, ``dh_prev``, ``dwx``, ``dwh``, ``db`` as in a dense layer,
    and ``dc_prev`` (the cell state's own path: through ``f * c_prev``).

    中文：LSTM 单步的反向传播。门按 PyTorch 的顺序（输入门 i、遗忘门 f、候选 g、输出门 o）
    排在 ``z`` 的四段里。先求 ``c`` 的总梯度（``dc`` 加上经过 ``h = o tanh(c)`` 的那条路径），
    再求每个门的梯度，经过各自的激活函数得到 ``dz``，然后像全连接层一样求 ``dx``、
    ``dh_prev``、``dwx``、``dwh``、``db``，最后 ``dc_prev``（经过 ``f * c_prev``）。

    Args:
      x: ``(batch, in)``, the step's input.
      h_prev: ``(batch, H)``, the previous hidden state.
      c_prev: ``(batch, H)``, the previous cell state.
      wx: ``(in, 4H)``.
      wh: ``(H, 4H)``.
      b: ``(4H,)``.
      dh: ``(batch, H)``, the loss's gradient with respect to ``h``.
      dc: ``(batch, H)``, the loss's gradient with respect to ``c`` (from the next
        step).

    Returns:
      ``(dx, dh_prev, dc_prev, dwx, dwh, db)``: ``(batch, in)``, ``(batch, H)``,
      ``(batch, H)``, ``(in, 4H)``, ``(H, 4H)``, ``(4H,)``.
    """
    # BEGIN SOLUTION
    hidden = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    i = jax.nn.sigmoid(z[:, :hidden])
    f = jax.nn.sigmoid(z[:, hidden:2 * hidden])
    g = jnp.tanh(z[:, 2 * hidden:3 * hidden])
    o = jax.nn.sigmoid(z[:, 3 * hidden:])
    c = f * c_prev + i * g
    tc = jnp.tanh(c)
    dc_total = dc + dh * o * (1 - tc * tc)
    di, df, dg, do = dc_total * g, dc_total * c_prev, dc_total * i, dh * tc
    dz = jnp.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),
                          do * o * (1 - o)], axis=1)
    return (dz @ wx.T, dz @ wh.T, dc_total * f, x.T @ dz, h_prev.T @ dz,
            jnp.sum(dz, axis=0))
    # END SOLUTION
