"""Max and average pooling over ``(batch, *spatial, channels)``, no padding (floor), as
in PyTorch; global average pooling over every spatial axis (at the end of this module).

``stride=None`` means stride = window (non-overlapping windows, CS231n's and PyTorch's
default; stax's default of stride 1 is not followed). Trailing rows/columns that do not
fill a window are dropped, and get zero gradient.

**Ties**: when a window holds its maximum more than once, the whole gradient goes to the
*first* maximum in row-major order within the window, as PyTorch does. (Copying it to
every tied entry would not be a gradient.) The forward reads the maximum at that
arg-max, so ``jax.grad`` of a network with max pooling gives the same gradient as its
hand-written backward on tied data too (``jax.grad`` of ``jnp.max`` splits a tied
window's gradient equally among its maxima, another valid subgradient).

Backward routes ``dy`` to the arg-max of each window (document 003: "pooling routes the
error to C2 and C3 only"). Two vectorised formulations, chosen statically:

* non-overlapping windows (stride == window): a reshape to
  ``(batch, out_h, win_h, out_w, win_w, channels)``; the arg-max one-hot times ``dy``,
  reshaped back: no scatter at all.
* overlapping or gapped windows: one strided slice per window offset (a loop over the
  few window offsets, never over pixels or batch entries); each offset's share of ``dy``
  is placed back with ``lax.pad``'s interior padding and summed.

For non-overlapping windows two other formulations were timed in whole training steps
(``benchmarks/formulations.py``, W4 of ``jaxbp bench``, 2-core CPU): one strided slice
per offset with the first maximum found by comparing the slices in order, and a
reshape-only view ``(batch, out_h, win_h, out_w, win_w, channels)`` that keeps ``x`` and
``y`` and finds the first maximum in the backward pass. Neither beat the arg-max
one-hot above by more than the noise (both were 0-10% slower), so it stays. Forward
and backward together ran about 6x faster than a forward taking ``jnp.max`` and
``jax.grad`` of it (64x28x28x8, 2x2 windows: ``jax.grad`` went through the max
reduction's tie-splitting rule). The forward now reads the maximum at the arg-max, and
``jax.grad`` of that is about 4x faster than of ``jnp.max`` (2.75 to 0.66 ms); W4's
two steps per call are level (``jaxbp bench``).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp._checks import (cast, check_dy, check_key, check_no_params, check_residuals,
                           static_layer_field)
from jaxbp._core import (Layer, check_array, check_input_shape, check_int_tuple,
                         check_rank, shape_str)
from jaxbp.layers.conv import window_slices


@static_layer_field
class PoolResiduals(NamedTuple):
    x: jax.Array       # the input; only its static shape is used by backward
    argmax: jax.Array  # (batch, *out, channels) int32: first max's offset in its window
    layer: str         # static: the name of the pool that made them (window, stride)


def _windows(x, window, strides):
    """Strided slices of ``x``, one per window offset, stacked on a new last axis:
    ``(batch, *out, channels, prod(window))`` (the convolution's im2col, unpadded)."""
    no_padding = tuple((0, 0) for _ in window)
    return jnp.stack(window_slices(x, window, strides, no_padding), axis=-1)


def _reshape_windows(x, window, out):
    """Non-overlapping windows as a trailing axis: (batch, *out, channels, prod(window))."""
    n = len(window)
    crop = x[(slice(None), *(slice(0, q * k) for q, k in zip(out, window)))]
    shape = [x.shape[0]]
    for q, k in zip(out, window):
        shape += [q, k]
    shape.append(x.shape[-1])
    xr = crop.reshape(shape)
    # axes: 0 batch, (1 + 2i) out_i, (2 + 2i) win_i, last channels
    perm = [0, *(1 + 2 * i for i in range(n)), 2 * n + 1, *(2 + 2 * i for i in range(n))]
    xr = xr.transpose(perm)
    return xr.reshape(*xr.shape[:n + 2], math.prod(window))


def _pool_name(kind, window, strides):
    """The name that rebuilds a pool: ``max_pool2d(2)``, ``avg_pool1d(3, stride=2)``."""
    def as_text(t):  # an int when every axis agrees, as the constructor accepts
        return str(t[0]) if len(set(t)) == 1 else str(t)
    return f"{kind}({as_text(window)}" + ("" if strides == window else
                                          f", stride={as_text(strides)}") + ")"


def _pool(n, window, stride):
    kind = f"max_pool{n}d"
    window = check_int_tuple(window, n, "window", kind)
    strides = window if stride is None else check_int_tuple(stride, n, "stride", kind)
    where = _pool_name(kind, window, strides)
    layout = "(batch, length, channels)" if n == 1 else "(batch, height, width, channels)"
    disjoint = strides == window

    def out_sizes(in_sizes):
        return tuple((size - k) // s + 1 for size, k, s in zip(in_sizes, window, strides))

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, n + 1, where)
        if any(size < k for size, k in zip(shape[:n], window)):
            raise ValueError(f"{where}: the window {shape_str(window)} is larger than the "
                             f"input {shape_str(shape[:n])}")
        return (), (*out_sizes(shape[:n]), shape[n])

    def forward(params, x):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        check_rank(x, n + 2, "x", where, layout)
        if any(size < k for size, k in zip(x.shape[1:1 + n], window)):
            raise ValueError(f"{where}: the window {shape_str(window)} is larger than x's "
                             f"spatial shape {shape_str(x.shape[1:1 + n])}")
        out = out_sizes(x.shape[1:1 + n])
        patches = (_reshape_windows(x, window, out) if disjoint
                   else _windows(x, window, strides))
        argmax = jnp.argmax(patches, axis=-1).astype(jnp.int32)  # first maximum on ties
        # The maximum read at the arg-max (bit for bit jnp.max's value): jax.grad of it
        # routes dy where backward does, to the first maximum, also on ties. jax.grad
        # of jnp.max would split a tied window's dy among its maxima: another
        # subgradient, so a network's autodiff and hand-written runs would part ways at
        # the first tie (in the background of images, where a bias-free convolution and
        # batch norm give whole windows the same value).
        y = jnp.take_along_axis(patches, argmax[..., None], axis=-1)[..., 0]
        return y, PoolResiduals(x, argmax, where)

    def backward(params, residuals, dy):
        """``dx[window's first arg-max] += dy[window]``; every other entry gets 0."""
        check_residuals(residuals, PoolResiduals, where)
        check_no_params(params, where)
        x, argmax = residuals.x, residuals.argmax
        dy = check_dy(dy, argmax.shape, where)
        size = math.prod(window)
        onehot = argmax[..., None] == jnp.arange(size, dtype=jnp.int32).reshape(
            (1,) * argmax.ndim + (size,))
        routed = jnp.where(onehot, dy[..., None], jnp.zeros((), dy.dtype))
        out = argmax.shape[1:1 + n]
        if disjoint:
            # (batch, *out, channels, *window) -> (batch, out_0, win_0, ..., channels)
            r = routed.reshape(*routed.shape[:-1], *window)
            perm = [0]
            for i in range(n):
                perm += [1 + i, n + 2 + i]
            perm.append(n + 1)
            r = r.transpose(perm).reshape(x.shape[0], *(q * k for q, k in zip(out, window)),
                                          x.shape[-1])
            tail = [(0, size_i - q * k, 0) for size_i, q, k in
                    zip(x.shape[1:1 + n], out, window)]
            dx = lax.pad(r, jnp.zeros((), dy.dtype), [(0, 0, 0), *tail, (0, 0, 0)])
            return (), cast(dx, x.dtype)
        dx = jnp.zeros(x.shape, dy.dtype)
        for i, offset in enumerate(itertools.product(*(range(k) for k in window))):
            config = [(0, 0, 0)]
            for o, q, s, size_i in zip(offset, out, strides, x.shape[1:1 + n]):
                high = size_i - (o + (q - 1) * s + 1)
                config.append((o, high, s - 1))
            config.append((0, 0, 0))
            dx = dx + lax.pad(routed[..., i], jnp.zeros((), dy.dtype), config)
        return (), cast(dx, x.dtype)

    return Layer(init, forward, backward, name=where)


def max_pool1d(window: int, stride=None) -> Layer:
    """Max pooling over ``(batch, length, channels)``.

    Args:
      window: the window length.
      stride: the step between windows; ``None`` means ``window``.

    Returns:
      A parameterless layer mapping ``(batch, length, c)`` to
      ``(batch, (length - window) // stride + 1, c)``. Ties: the first maximum takes the
      gradient.
    """
    return _pool(1, window, stride)


def max_pool2d(window, stride=None) -> Layer:
    """Max pooling over ``(batch, height, width, channels)``.

    Args:
      window: an int or ``(wh, ww)``.
      stride: an int or ``(sh, sw)``; ``None`` means ``window``.

    Returns:
      A parameterless layer mapping ``(batch, h, w, c)`` to
      ``(batch, (h - wh) // sh + 1, (w - ww) // sw + 1, c)``. Ties: the first maximum
      (row-major within the window) takes the gradient.
    """
    return _pool(2, window, stride)


# --------------------------------------------------------------------------- average


@static_layer_field
class AvgPoolResiduals(NamedTuple):
    x: jax.Array  # the input; only its static shape and dtype are used (jit drops it)
    layer: str    # static: the name of the pool that made them (window, stride)


class GlobalAvgPoolResiduals(NamedTuple):
    x: jax.Array  # the input; only its static shape and dtype are used (jit drops it)


def _avg_pool(n, window, stride):
    kind = f"avg_pool{n}d"
    window = check_int_tuple(window, n, "window", kind)
    strides = window if stride is None else check_int_tuple(stride, n, "stride", kind)
    where = _pool_name(kind, window, strides)
    layout = "(batch, length, channels)" if n == 1 else "(batch, height, width, channels)"
    size = math.prod(window)

    def out_sizes(in_sizes):
        return tuple((s_in - k) // s + 1 for s_in, k, s in zip(in_sizes, window, strides))

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, n + 1, where)
        if any(s_in < k for s_in, k in zip(shape[:n], window)):
            raise ValueError(f"{where}: the window {shape_str(window)} is larger than the "
                             f"input {shape_str(shape[:n])}")
        return (), (*out_sizes(shape[:n]), shape[n])

    def forward(params, x):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        check_rank(x, n + 2, "x", where, layout)
        if any(s_in < k for s_in, k in zip(x.shape[1:1 + n], window)):
            raise ValueError(f"{where}: the window {shape_str(window)} is larger than x's "
                             f"spatial shape {shape_str(x.shape[1:1 + n])}")
        # A concrete zero (a Python float, not a traced value) makes JAX recognize the sum
        # as reduce_window_sum, which jax.vjp can differentiate (the tests compare).
        total = lax.reduce_window(x, 0.0, lax.add, (1, *window, 1),
                                  (1, *strides, 1), "VALID")
        return total / size, AvgPoolResiduals(x, where)

    def backward(params, residuals, dy):
        """``dx[i] = sum over the windows holding i of dy[window] / prod(window)``: every
        entry of a window had weight ``1 / prod(window)`` in its mean. Entries in no
        window (the floor's leftover rows/columns) get 0."""
        check_residuals(residuals, AvgPoolResiduals, where)
        check_no_params(params, where)
        x = residuals.x
        in_sizes = x.shape[1:1 + n]
        out = out_sizes(in_sizes)
        dy = check_dy(dy, (x.shape[0], *out, x.shape[-1]), where)
        share = dy / size
        if strides == window:
            # Each entry is in exactly one window: repeat each share over its window.
            expanded = [x.shape[0]]
            for q, k in zip(out, window):
                expanded += [q, k]
            expanded.append(x.shape[-1])
            dx = jnp.broadcast_to(share.reshape(
                x.shape[0], *(d for q in out for d in (q, 1)), x.shape[-1]), expanded)
            dx = dx.reshape(x.shape[0], *(q * k for q, k in zip(out, window)), x.shape[-1])
            tail = [(0, s_in - q * k, 0) for s_in, q, k in zip(in_sizes, out, window)]
            dx = lax.pad(dx, jnp.zeros((), dy.dtype), [(0, 0, 0), *tail, (0, 0, 0)])
            return (), cast(dx, x.dtype)
        # Overlapping or gapped windows: one strided placement of the shares per window
        # offset (interior padding puts them stride apart), summed.
        dx = jnp.zeros(x.shape, dy.dtype)
        for offset in itertools.product(*(range(k) for k in window)):
            config = [(0, 0, 0)]
            for o, q, s, s_in in zip(offset, out, strides, in_sizes):
                config.append((o, s_in - (o + (q - 1) * s + 1), s - 1))
            config.append((0, 0, 0))
            dx = dx + lax.pad(share, jnp.zeros((), dy.dtype), config)
        return (), cast(dx, x.dtype)

    return Layer(init, forward, backward, name=where)


def avg_pool1d(window: int, stride=None) -> Layer:
    """Average pooling over ``(batch, length, channels)``, no padding (floor).

    Args:
      window: the window length.
      stride: the step between windows; ``None`` means ``window``.

    Returns:
      A parameterless layer mapping ``(batch, length, c)`` to
      ``(batch, (length - window) // stride + 1, c)``, each output the mean of its
      window (as ``torch.nn.AvgPool1d``).
    """
    return _avg_pool(1, window, stride)


def avg_pool2d(window, stride=None) -> Layer:
    """Average pooling over ``(batch, height, width, channels)``, no padding (floor).

    Args:
      window: an int or ``(wh, ww)``.
      stride: an int or ``(sh, sw)``; ``None`` means ``window``.

    Returns:
      A parameterless layer mapping ``(batch, h, w, c)`` to
      ``(batch, (h - wh) // sh + 1, (w - ww) // sw + 1, c)``, each output the mean of
      its window (as ``torch.nn.AvgPool2d``).
    """
    return _avg_pool(2, window, stride)


def global_avg_pool() -> Layer:
    """The mean over every spatial axis: ``(batch, *spatial, c)`` to ``(batch, c)``.

    One or more spatial axes (``(batch, length, c)``, ``(batch, h, w, c)``, ...); the
    usual last step of a residual CNN before its classifier.
    """
    where = "global_avg_pool()"

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, None, where)
        if len(shape) < 2:
            raise ValueError(f"{where}: input_shape must be (*spatial, channels) with at "
                             f"least one spatial axis (without the batch axis), got "
                             f"{shape_str(shape)}")
        return (), (shape[-1],)

    def forward(params, x):
        check_no_params(params, where)
        x = check_array(x, "x", where)
        if x.ndim < 3:
            raise ValueError(f"{where}: x must have rank at least 3 (batch, *spatial, "
                             f"channels), got shape {shape_str(x.shape)} (rank {x.ndim})")
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1))), GlobalAvgPoolResiduals(x)

    def backward(params, residuals, dy):
        """``dx[b, ..., c] = dy[b, c] / S`` at every one of the ``S`` spatial positions."""
        check_residuals(residuals, GlobalAvgPoolResiduals, where)
        check_no_params(params, where)
        shape = residuals.x.shape
        dy = check_dy(dy, (shape[0], shape[-1]), where)
        count = math.prod(shape[1:-1])
        dx = jnp.broadcast_to((dy / count).reshape(shape[0], *(1,) * (len(shape) - 2),
                                                   shape[-1]), shape)
        return (), cast(dx, residuals.x.dtype)

    return Layer(init, forward, backward, name=where)
