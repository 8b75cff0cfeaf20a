"""Recurrent layers: a tanh RNN and an LSTM, with backpropagation through time by hand.

Shapes: ``x`` is ``(batch, time, in)``, the output is every hidden state
``(batch, time, h)``; the initial state is zero. Both layers run the same way:

* forward: the input projection ``x_t @ Wx + b`` for *all* time steps is one matmul
  outside the loop; only the recurrent part ``h_{t-1} @ Wh`` (for the LSTM, the four
  gates together: one ``(h, 4h)`` matmul) is a ``lax.scan`` over time;
* backward (backpropagation through time): a reverse ``lax.scan`` carries the gradient
  flowing back into the previous state (``dh``, and for the LSTM ``dc``) and emits each
  step's pre-activation gradient ``da_t``; the weight gradients, which are sums over
  time, are then single matmuls over all ``batch * time`` rows outside the loop:
  ``dWh = sum_t h_{t-1}^T da_t``, ``dWx = sum_t x_t^T da_t``, ``db = sum_t da_t``,
  ``dx_t = da_t Wx^T``. No Python loop over time steps: the program's size does not
  grow with the sequence length.

Parameters follow PyTorch's ``nn.RNN``/``nn.LSTM`` transposed (``wx = weight_ih.T``,
``wh = weight_hh.T``) with a single bias: PyTorch's two biases only ever appear as
their sum, ``b = bias_ih + bias_hh``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp import _random
from jaxbp._checks import (cast, cast_like, check_dy, check_float_dtype, check_key,
                           check_params, check_residuals, compute_dtype,
                           static_layer_field)
from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape,
                         check_positive_int, check_rank, shape_str)


def _check_params(params, features, gates, where, n_in=None):
    """``{"wx": (in, gates * h), "wh": (h, gates * h), "b": (gates * h,)}``;
    ``n_in=None`` leaves the input width open (forward reads it from x)."""
    g = "" if gates == 1 else f"{gates} * "
    width = gates * features
    check_params(params, {"wx": (n_in, width), "wh": (features, width), "b": (width,)},
                 where, {"wx": ("in", f"{g}features"), "wh": ("features", f"{g}features"),
                         "b": (f"{g}features",)})


def _check_input(x, params, features, gates, where):
    """Checks ``params`` and ``x``; returns ``x``, the params and ``x`` in the dtype to
    compute in (``x``'s promoted with the params')."""
    _check_params(params, features, gates, where)
    x = check_array(x, "x", where)
    check_rank(x, 3, "x", where, "(batch, time, in)")
    wx = params["wx"]
    if wx.shape[0] != x.shape[-1]:
        raise ValueError(f"{where}: params['wx'] must have shape "
                         f"{shape_str((x.shape[-1], gates * features))} for x of shape "
                         f"{shape_str(x.shape)}, got {shape_str(wx.shape)}")
    ct = compute_dtype(x, params)
    return x, jax.tree.map(lambda a: cast(a, ct), params), cast(x, ct)


def _check_backward(params, residuals, dy, kind, features, gates, where):
    """Checks the residuals, ``params`` and ``dy``; returns the params and ``dy`` in the
    dtype to compute in (the forward's promoted with ``dy``'s)."""
    check_residuals(residuals, kind, where)
    x = residuals.x
    _check_params(params, features, gates, where, x.shape[-1])
    dy = check_dy(dy, (*x.shape[:2], features), where)
    ct = jnp.result_type(compute_dtype(x, params), dy)
    return jax.tree.map(lambda a: cast(a, ct), params), cast(dy, ct)


def _init(key, input_shape, features, gates, dtype, where):
    check_key(key, where)
    time, n_in = check_input_shape(input_shape, 2, where)
    dt = as_dtype(dtype)
    # PyTorch's initialisation: uniform in +-1/sqrt(h) for every weight and the bias.
    bound = 1.0 / math.sqrt(features)
    params = {
        "wx": _random.uniform(key, (n_in, gates * features), dt, -bound, bound),
        "wh": _random.uniform(key, (features, gates * features), dt, -bound, bound,
                              stream=1),
        "b": _random.uniform(key, (gates * features,), dt, -bound, bound, stream=2),
    }
    return params, (time, features)


def _time_major(a):
    """``(batch, time, ...)`` to ``(time, batch, ...)``: ``lax.scan`` walks axis 0."""
    return jnp.swapaxes(a, 0, 1)


def _input_projection(params, x):
    """``x_t @ Wx + b`` for every step at once: ``(time, batch, gates * h)``."""
    batch, time, n_in = x.shape
    xw = _time_major(x).reshape(time * batch, n_in) @ params["wx"] + params["b"][None, :]
    return xw.reshape(time, batch, -1)


def _weight_grads(params, x, h_prev, da):
    """The sums over time, as one matmul each over all ``time * batch`` rows.

    Args:
      params: in the dtype computed in (``da``'s).
      x: ``(batch, time, in)``; ``h_prev``: ``(time, batch, h)`` the state each step
        started from; ``da``: ``(time, batch, gates * h)`` the pre-activation gradients.

    Returns:
      ``(dparams, dx)`` with ``dx`` ``(batch, time, in)``, in ``da``'s dtype.
    """
    time, batch, width = da.shape
    rows = da.reshape(time * batch, width)
    x_rows = _time_major(cast(x, da.dtype)).reshape(time * batch, x.shape[-1])
    dparams = {"wx": x_rows.T @ rows,
               "wh": h_prev.reshape(time * batch, -1).T @ rows,
               "b": jnp.sum(rows, axis=0)}
    dx = _time_major((rows @ params["wx"].T).reshape(time, batch, x.shape[-1]))
    return dparams, dx


def _previous_states(states):
    """``(time, batch, h)`` states ``s_1..s_T`` to ``s_0..s_{T-1}`` (``s_0 = 0``)."""
    return jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]], axis=0)


# --------------------------------------------------------------------------- RNN


@static_layer_field
class RNNResiduals(NamedTuple):
    x: jax.Array  # (batch, time, in) the input, for dWx (in its own dtype, that of dx)
    h: jax.Array  # (time, batch, h) every hidden state h_1..h_T (time-major)
    layer: str    # static: the name of the layer that made them


def rnn(features: int, *, dtype=None) -> Layer:
    """The tanh (Elman) recurrent layer: ``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``, ``h_0 = 0``.

    Args:
      features: the hidden size ``h``, a positive int.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, time, in)`` to every hidden state
      ``(batch, time, h)``, params ``{"wx": (in, h), "wh": (h, h), "b": (h,)}``
      (PyTorch's ``nn.RNN`` with ``wx = weight_ih_l0.T``, ``wh = weight_hh_l0.T``,
      ``b = bias_ih_l0 + bias_hh_l0``).
    """
    features = check_positive_int(features, "features", "rnn")
    dtype = check_float_dtype(dtype, "dtype", "rnn")
    where = f"rnn({features}" + ("" if dtype is None else f", dtype='{dtype}'") + ")"

    def init(key, input_shape):
        return _init(key, input_shape, features, 1, dtype, where)

    def forward(params, x):
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        x_in, params, x = _check_input(x, params, features, 1, where)
        xw = _input_projection(params, x)
        wh = params["wh"]

        def step(h, xw_t):
            h = jnp.tanh(xw_t + h @ wh)
            return h, h

        h0 = jnp.zeros((x.shape[0], wh.shape[0]), xw.dtype)
        _, hs = lax.scan(step, h0, xw)
        return _time_major(hs), RNNResiduals(x_in, hs, where)

    def backward(params, residuals, dy):
        """Backpropagation through time, ``t = T .. 1`` (a reverse ``lax.scan``)::

            g_t  = dy_t + dh_t             dh_T = 0: nothing flows in after the last step
            da_t = g_t * (1 - h_t^2)       through tanh, a_t its pre-activation
            dh_{t-1} = da_t Wh^T           what h_{t-1} passes back to step t-1

        then ``dWh = sum_t h_{t-1}^T da_t``, ``dWx = sum_t x_t^T da_t``,
        ``db = sum_t da_t``, ``dx_t = da_t Wx^T`` (matmuls outside the loop).
        """
        ct_params, dy = _check_backward(params, residuals, dy, RNNResiduals, features, 1,
                                        where)
        x, hs = residuals.x, cast(residuals.h, dy.dtype)
        wh_t = ct_params["wh"].T

        def step(dh, inputs):
            dy_t, h_t = inputs
            da = (dy_t + dh) * (1 - h_t * h_t)
            return da @ wh_t, da

        dh0 = jnp.zeros(hs.shape[1:], hs.dtype)
        _, da = lax.scan(step, dh0, (_time_major(dy), hs), reverse=True)
        dparams, dx = _weight_grads(ct_params, x, _previous_states(hs), da)
        return cast_like(dparams, params), cast(dx, x.dtype)

    return Layer(init, forward, backward, name=where)


# --------------------------------------------------------------------------- LSTM


@static_layer_field
class LSTMResiduals(NamedTuple):
    x: jax.Array      # (batch, time, in) the input (in its own dtype, that of dx)
    h: jax.Array      # (time, batch, h) hidden states h_1..h_T
    c: jax.Array      # (time, batch, h) cell states c_1..c_T
    gates: jax.Array  # (time, batch, 4h) activated gates [i | f | g | o]
    layer: str        # static: the name of the layer that made them


def _split4(a):
    return jnp.split(a, 4, axis=-1)


def lstm(features: int, *, dtype=None) -> Layer:
    """Long short-term memory, gates in PyTorch's order (input, forget, cell, output).

    With ``z_t = x_t Wx + h_{t-1} Wh + b`` cut into four blocks of ``h`` columns::

        i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_g)   o = sigmoid(z_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)                     h_0 = c_0 = 0

    Args:
      features: the hidden size ``h``, a positive int.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, time, in)`` to every hidden state
      ``(batch, time, h)``, params ``{"wx": (in, 4h), "wh": (h, 4h), "b": (4h,)}``
      (PyTorch's ``nn.LSTM``: ``wx = weight_ih_l0.T``, ``wh = weight_hh_l0.T``,
      ``b = bias_ih_l0 + bias_hh_l0``).

    Formulation: the four gates' recurrent products are one ``(batch, h) @ (h, 4h)``
    matmul per step, and the input projection of every step one matmul before the scan.
    """
    features = check_positive_int(features, "features", "lstm")
    dtype = check_float_dtype(dtype, "dtype", "lstm")
    where = f"lstm({features}" + ("" if dtype is None else f", dtype='{dtype}'") + ")"

    def init(key, input_shape):
        return _init(key, input_shape, features, 4, dtype, where)

    def forward(params, x):
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        x_in, params, x = _check_input(x, params, features, 4, where)
        xw = _input_projection(params, x)
        wh = params["wh"]

        def step(carry, xw_t):
            h, c = carry
            zi, zf, zg, zo = _split4(xw_t + h @ wh)
            i, f, g, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jnp.tanh(zg), \
                jax.nn.sigmoid(zo)
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

        zeros = jnp.zeros((x.shape[0], wh.shape[0]), xw.dtype)
        _, (hs, cs, gates) = lax.scan(step, (zeros, zeros), xw)
        return _time_major(hs), LSTMResiduals(x_in, hs, cs, gates, where)

    def backward(params, residuals, dy):
        """Backpropagation through time, ``t = T .. 1`` (a reverse ``lax.scan``), carrying
        ``dh`` and ``dc``, the gradients flowing back into ``h_t`` and ``c_t`` from step
        ``t + 1`` (both 0 at ``t = T``)::

            gh = dy_t + dh                          everything that reaches h_t
            do = gh * tanh(c_t)
            gc = dc + gh * o * (1 - tanh(c_t)^2)    everything that reaches c_t
            di = gc * g     dg = gc * i     df = gc * c_{t-1}
            dz = [di * i (1 - i) | df * f (1 - f) | dg * (1 - g^2) | do * o (1 - o)]
            dh <- dz Wh^T   dc <- gc * f            handed to step t - 1

        then ``dWh = sum_t h_{t-1}^T dz_t``, ``dWx = sum_t x_t^T dz_t``,
        ``db = sum_t dz_t``, ``dx_t = dz_t Wx^T`` (matmuls outside the loop).
        """
        ct_params, dy = _check_backward(params, residuals, dy, LSTMResiduals, features, 4,
                                        where)
        x = residuals.x
        hs, cs, gates = (cast(a, dy.dtype) for a in residuals[1:4])
        wh_t = ct_params["wh"].T
        c_prev = _previous_states(cs)

        def step(carry, inputs):
            dh, dc = carry
            dy_t, c_t, c_before, gates_t = inputs
            i, f, g, o = _split4(gates_t)
            tanh_c = jnp.tanh(c_t)
            gh = dy_t + dh
            gc = dc + gh * o * (1 - tanh_c * tanh_c)
            dz = jnp.concatenate([gc * g * i * (1 - i), gc * c_before * f * (1 - f),
                                  gc * i * (1 - g * g), gh * tanh_c * o * (1 - o)],
                                 axis=-1)
            return (dz @ wh_t, gc * f), dz

        zeros = jnp.zeros(hs.shape[1:], hs.dtype)
        _, dz = lax.scan(step, (zeros, zeros), (_time_major(dy), cs, c_prev, gates),
                         reverse=True)
        dparams, dx = _weight_grads(ct_params, x, _previous_states(hs), dz)
        return cast_like(dparams, params), cast(dx, x.dtype)

    return Layer(init, forward, backward, name=where)
