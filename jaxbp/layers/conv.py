"""Convolutions (cross-correlation, as in the documents and ``lax.conv_general_dilated``).

One implementation serves ``conv1d`` and ``conv2d``: data is channels-last,
``(batch, *spatial, channels)``, kernels are ``(*kernel_size, in, out)``.

Forward, per spatial axis with stride ``s`` and padding ``(lo, hi)``::

    y[o] = sum_j xpad[o * s + j] * w[j] + b,    xpad = x padded with lo, hi zeros

Backward, written by hand (no autodiff):

* ``dx`` is the *full* correlation of ``dy`` (dilated by the stride) with the
  *flipped* kernel, in/out channels swapped; cropping by the forward padding is folded
  into (possibly negative) padding of that correlation.
* ``dw[j] = sum_{batch, o} xpad[o * s + j] dy[o]``: a correlation of the input with
  ``dy`` in which the batch axis is the contracted "channel" axis and ``dy`` is dilated
  by the stride.
* ``db = sum_{batch, spatial} dy``.

**Formulations** (the math above is fixed; how XLA is asked to compute it was chosen
by measurement, ``benchmarks/formulations.py``, 2-core CPU, W4 of ``jaxbp bench``):

* Forward, from the static shapes (:func:`forward_formulation`): a window of at most
  ``PATCHES_MAX_WINDOW`` (32) values, ``"patches"``: one strided slice of the input
  per kernel offset, concatenated on the channel axis (im2col), and one matmul; this
  made W4's training step 15-25% faster than ``conv_general_dilated``, whose CPU
  kernels handle one or three input channels poorly. Larger windows,
  ``"convolution"``: ``lax.conv_general_dilated``, which wins once there are enough
  channels (patches were 2x slower at 32x32, 32 -> 64). For one input channel, a sum of
  the shifted slices times each offset's weights ("taps", no matmul) was 4x faster
  than patches alone but slower inside a whole training step, so it was dropped.
* ``dw`` is one ``conv_general_dilated`` on operands *explicitly transposed* into the
  canonical layouts (``x`` to (in, *space, batch), ``dy`` to (*space, batch, out)).
  The same convolution written with dimension numbers alone (``CHWN``/``IHWO``,
  no transposes asked for) is as fast in a plain jitted step, but inside ``lax.scan``
  (the fused epoch) XLA's CPU backend leaves it in its non-canonical form and runs it
  10-25x slower (1.7 ms -> 46 ms for 64x28x28, 8 -> 16 channels), so the fused epoch
  would be slower than the per-step loop. Patches and a matmul (``patches.T @ dy``)
  were 2x slower.
* ``dx`` is the convolution primitive (but see the next item); writing it as
  ``dy @ w.T`` and summing the patches back (im2col's transpose, one ``lax.pad`` per
  offset) was no faster.
  In a training step the first layer's ``dx`` is never used, and XLA removes it.
* ``dx`` where XLA's CPU compiler aborts while compiling that convolution (SIGABRT
  from a failed shape check in its algebraic simplifier; ``jax.vjp`` of
  ``lax.conv_general_dilated`` aborts on the same geometries). The trigger, found with
  ``benchmarks/conv_sweep.py`` (jax 0.10.2) and matching XLA's operand-swapping
  rewrite: two or more spatial axes; on one, kernel 2 and stride 2 with a correlation
  that needs no padding there (forward padding low 1, no trailing input unreached); on
  the others, a kernel larger than ``dy``. XLA swaps the correlation's operands so that
  the smaller one becomes the kernel, takes the kernel-2 axis for a grouped one that
  it may copy unchanged, and the copied window no longer fits. From the static shapes,
  :func:`input_grad_formulation` sends every geometry with such an axis (whatever the
  other axes, since XLA's rule for swapping may change) to ``"scatter"``: ``dy @ w.T``
  gives every window's gradient and one ``lax.pad`` per kernel offset spreads it back
  (the transpose of the forward's window slices), with no convolution for XLA to
  rewrite. The forward and ``dw`` never abort: no axis of theirs has that form.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp import _random
from jaxbp._checks import (cast, check_bool, check_dy, check_float_dtype, check_key,
                           check_params, check_residuals, compute_dtype, static_layer_field)
from jaxbp._core import (Layer, as_dtype, check_array, check_input_shape, check_int_tuple,
                         check_positive_int, check_rank, shape_str)

_SPATIAL = {1: "W", 2: "HW"}


@static_layer_field
class ConvResiduals(NamedTuple):
    x: jax.Array  # (batch, *spatial, in): the input, needed for dw
    layer: str    # static: the name of the layer that made them (its stride, padding)


def _dimension_numbers(n):
    sp = _SPATIAL[n]
    return ("N" + sp + "C", sp + "IO", "N" + sp + "C")


def normalize_padding(padding, n: int, where: str):
    """Checks ``padding`` and returns it as "VALID", "SAME" or ``n`` (low, high) pairs."""
    if isinstance(padding, str):
        if padding.upper() in ("VALID", "SAME"):
            return padding.upper()
        raise ValueError(f"{where}: padding must be 'VALID', 'SAME', an int or {n} "
                         f"(low, high) pairs, got {padding!r}")
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        if padding < 0:
            raise ValueError(f"{where}: padding must be >= 0, got {padding}")
        return ((int(padding), int(padding)),) * n
    pairs = padding
    if n == 1 and isinstance(pairs, (tuple, list)) and len(pairs) == 2 and all(
            isinstance(p, numbers.Integral) for p in pairs):
        pairs = (pairs,)  # conv1d accepts a bare (low, high) pair
    ok = isinstance(pairs, (tuple, list)) and len(pairs) == n and all(
        isinstance(p, (tuple, list)) and len(p) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
                for v in p) for p in pairs)
    if not ok:
        raise ValueError(f"{where}: padding must be 'VALID', 'SAME', an int or {n} "
                         f"(low, high) pairs of non-negative ints, got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def explicit_padding(padding, in_sizes, kernel_size, strides):
    """Resolves "VALID"/"SAME" into (low, high) pairs, as ``lax`` does."""
    if padding == "VALID":
        return tuple((0, 0) for _ in in_sizes)
    if padding == "SAME":
        pads = []
        for n, k, s in zip(in_sizes, kernel_size, strides):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return padding


def output_sizes(in_sizes, kernel_size, strides, pads):
    return tuple((n + lo + hi - k) // s + 1
                 for n, k, s, (lo, hi) in zip(in_sizes, kernel_size, strides, pads))


# The forward formulation is chosen from the static shapes (measured with
# benchmarks/formulations.py; see the module docstring): a window of at most this many
# values (kh * kw * in) runs as patches and one matmul.
PATCHES_MAX_WINDOW = 32


def forward_formulation(ksize, c_in) -> str:
    """``"patches"`` or ``"convolution"``: how the forward pass runs (module docstring)."""
    return "patches" if math.prod(ksize) * c_in <= PATCHES_MAX_WINDOW else "convolution"


def window_slices(x, ksize, strides, pads):
    """One strided slice of the padded ``x`` per kernel offset, in the kernel's row-major
    order: entry ``j`` is ``xpad[:, o * s + j, :]`` for every output position ``o``,
    shape ``(batch, *out, in)``."""
    n = len(ksize)
    xpad = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    out = output_sizes(x.shape[1:1 + n], ksize, strides, pads)
    slices = []
    for offset in itertools.product(*(range(k) for k in ksize)):
        start = (0, *offset, 0)
        limit = (x.shape[0], *(o + (q - 1) * s + 1 for o, q, s in zip(offset, out, strides)),
                 x.shape[-1])
        slices.append(lax.slice(xpad, start, limit, (1, *strides, 1)))
    return slices


def conv_forward(x, w, strides, pads):
    """``y[o] = sum_j xpad[o * s + j] @ w[j]`` (no bias), by the formulation
    :func:`forward_formulation` picks.

    Shapes: ``x`` (batch, *in, ci), ``w`` (*k, ci, co) -> (batch, *out, co).
    """
    n = w.ndim - 2
    ksize, c_out = w.shape[:n], w.shape[-1]
    how = forward_formulation(ksize, w.shape[-2])
    if how == "convolution":
        return lax.conv_general_dilated(x, w, window_strides=strides, padding=pads,
                                        dimension_numbers=_dimension_numbers(n))
    p = jnp.concatenate(window_slices(x, ksize, strides, pads), axis=-1)  # im2col
    return (p.reshape(-1, p.shape[-1]) @ w.reshape(-1, c_out)).reshape(*p.shape[:-1], c_out)


def input_grad_formulation(ksize, strides, pads, in_sizes, out_sizes) -> str:
    """``"convolution"`` or ``"scatter"``: how :func:`conv_input_grad` runs (module
    docstring), from the static shapes.

    ``"scatter"`` when XLA's CPU compiler may abort on the ``dx`` correlation: two or
    more spatial axes, one of which the correlation slides a kernel of 2 over ``dy``
    dilated by a stride of 2 with no padding at all (forward padding low 1 and no
    trailing input left unreached). XLA takes such an axis for one it can leave alone
    when it swaps the correlation's operands (done when the kernel is larger than
    ``dy`` on the other axes), and then fails its own shape check.
    """
    if len(ksize) < 2:
        return "convolution"
    for size, k, s, (lo, _), o in zip(in_sizes, ksize, strides, pads, out_sizes):
        if k == 2 and s == 2 and _input_grad_padding(size, k, s, lo, o) == (0, 0):
            return "scatter"
    return "convolution"


def _input_grad_padding(size, k, s, lo, o):
    """The ``dx`` correlation's (low, high) padding on one axis: ``k - 1`` zeros for
    the full correlation, less the forward's low padding (cropped back off), and the
    trailing input the forward never reached."""
    return k - 1 - lo, size + lo - ((o - 1) * s + 1)


def conv_input_grad(dy, w, in_sizes, strides, pads, how=None):
    """``dx``: full correlation of the stride-dilated ``dy`` with the flipped kernel.

    ``how`` (default: :func:`input_grad_formulation`) is ``"convolution"``, one
    ``lax.conv_general_dilated``, or ``"scatter"``, :func:`conv_input_grad_scatter`.
    Shapes: ``dy`` (batch, *out_spatial, out), ``w`` (*k, in, out) ->
    (batch, *in_sizes, in).
    """
    n = len(in_sizes)
    ksize = w.shape[:n]
    out_sizes = dy.shape[1:1 + n]
    if how is None:
        how = input_grad_formulation(ksize, strides, pads, in_sizes, out_sizes)
    if how not in ("convolution", "scatter"):
        raise ValueError(f"conv_input_grad: how must be 'convolution' or 'scatter', "
                         f"got {how!r}")
    if how == "scatter":
        return conv_input_grad_scatter(dy, w, in_sizes, strides, pads)
    w_flip = jnp.flip(w, axis=tuple(range(n))).swapaxes(-1, -2)  # (*k, out, in)
    padding = [_input_grad_padding(size, k, s, lo, o)
               for size, k, s, (lo, _), o in zip(in_sizes, ksize, strides, pads, out_sizes)]
    return lax.conv_general_dilated(dy, w_flip, window_strides=(1,) * n, padding=padding,
                                    lhs_dilation=strides,
                                    dimension_numbers=_dimension_numbers(n))


def conv_input_grad_scatter(dy, w, in_sizes, strides, pads):
    """``dx`` as the transpose of the forward's window slices, with no convolution.

    ``dxpad[o * s + j] += dy[o] @ w[j].T`` for every kernel offset ``j``: one matmul
    gives every window's gradient, then each offset's share is spread back over the
    input (dilated by the stride, shifted by ``j``) by one ``lax.pad``, whose negative
    edge padding also crops the forward padding off.
    Shapes: ``dy`` (batch, *out_spatial, out), ``w`` (*k, in, out) ->
    (batch, *in_sizes, in).
    """
    n = len(in_sizes)
    ksize, (c_in, c_out) = w.shape[:n], w.shape[-2:]
    out_sizes = dy.shape[1:1 + n]
    taps = math.prod(ksize)
    # (batch, *out, taps, in): entry t is dy[o] @ w[offset t].T
    parts = (dy.reshape(-1, c_out) @ w.reshape(-1, c_out).T).reshape(
        *dy.shape[:-1], taps, c_in)
    zero = jnp.zeros((), parts.dtype)
    dx = None
    for t, offset in enumerate(itertools.product(*(range(k) for k in ksize))):
        config = [(0, 0, 0)]
        for j, s, (lo, _), o, size in zip(offset, strides, pads, out_sizes, in_sizes):
            start = j - lo  # where dy[0]'s share lands in the unpadded input
            config.append((start, size - start - ((o - 1) * s + 1), s - 1))
        config.append((0, 0, 0))
        share = lax.pad(parts[..., t, :], zero, config)
        dx = share if dx is None else dx + share
    return dx


def conv_kernel_grad(x, dy, ksize, strides, pads):
    """``dw[j, ci, co] = sum_{b, o} xpad[b, o * s + j, ci] * dy[b, o, co]``.

    A correlation in which the batch axis is the contracted "channel" axis and ``dy``,
    dilated by the stride, is the kernel. The operands are transposed explicitly into
    the canonical layouts, ``x`` to (ci, *in, batch) and ``dy`` to (*out, batch, co),
    rather than described by non-canonical dimension numbers: see the module docstring.
    Shapes: ``x`` (batch, *in, ci), ``dy`` (batch, *out, co) -> (*k, ci, co).
    """
    n = len(ksize)
    in_sizes = x.shape[1:1 + n]
    out_sizes = dy.shape[1:1 + n]
    padding = []
    for size, k, s, (lo, _), o in zip(in_sizes, ksize, strides, pads, out_sizes):
        dilated = (o - 1) * s + 1
        # Trailing input the forward never reached (floor division) is cropped here.
        padding.append((lo, k + dilated - 1 - size - lo))
    xt = jnp.moveaxis(jnp.moveaxis(x, -1, 0), 1, -1)  # (ci, *in, batch)
    dyt = jnp.moveaxis(dy, 0, -2)                      # (*out, batch, co)
    dw = lax.conv_general_dilated(xt, dyt, window_strides=(1,) * n, padding=padding,
                                  rhs_dilation=strides,
                                  dimension_numbers=_dimension_numbers(n))  # (ci, *k, co)
    return jnp.moveaxis(dw, 0, -2)


def _conv(n, features, kernel_size, stride, padding, bias, dtype):
    kind = f"conv{n}d"
    features = check_positive_int(features, "features", kind)
    ksize = check_int_tuple(kernel_size, n, "kernel_size", kind)
    strides = check_int_tuple(stride, n, "stride", kind)
    padding = normalize_padding(padding, n, kind)
    bias = check_bool(bias, "bias", kind)
    dtype = check_float_dtype(dtype, "dtype", kind)
    where = _layer_name(kind, features, ksize, strides, padding, bias, dtype)
    layout = "(batch, length, channels)" if n == 1 else "(batch, height, width, channels)"
    expected = {"w": (*ksize, None, features)}
    if bias:
        expected["b"] = (features,)
    axes = {"w": ("k",) * n + ("in", "features"), "b": ("features",)}

    def pads_for(in_sizes):
        return explicit_padding(padding, in_sizes, ksize, strides)

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, n + 1, where)
        in_sizes, c_in = shape[:n], shape[n]
        pads = pads_for(in_sizes)
        out = output_sizes(in_sizes, ksize, strides, pads)
        if min(out) < 1:
            raise ValueError(f"{where}: the kernel {shape_str(ksize)} does not fit the "
                             f"padded input {shape_str(in_sizes)} with padding {pads}")
        dt = as_dtype(dtype)
        fan_in = c_in * math.prod(ksize)
        w = _random.normal(key, (*ksize, c_in, features), dt, scale=1.0 / math.sqrt(fan_in))
        params = {"w": w}
        if bias:
            params["b"] = _random.zeros((features,), dt)
        return params, (*out, features)

    def forward(params, x):
        check_params(params, expected, where, axes)
        x = check_array(x, "x", where)
        check_rank(x, n + 2, "x", where, layout)
        w = params["w"]
        if x.shape[-1] != w.shape[-2]:
            raise ValueError(f"{where}: x must have {w.shape[-2]} channels (params['w'] "
                             f"has shape {shape_str(w.shape)}), got x of shape "
                             f"{shape_str(x.shape)}")
        pads = pads_for(x.shape[1:1 + n])
        if min(output_sizes(x.shape[1:1 + n], ksize, strides, pads)) < 1:
            raise ValueError(f"{where}: the kernel {shape_str(ksize)} does not fit x of "
                             f"shape {shape_str(x.shape)} with padding {pads}")
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        ct = compute_dtype(x, params)
        y = conv_forward(cast(x, ct), cast(w, ct), strides, pads)
        if bias:
            y = y + cast(params["b"], ct).reshape((1,) * (n + 1) + (-1,))
        return y, ConvResiduals(x, where)

    def backward(params, residuals, dy):
        """``dx`` = full correlation of ``dy`` with the flipped kernel; ``dw`` =
        correlation of ``x`` with ``dy``; ``db = sum dy`` over batch and space.

        See the module docstring for the index form.
        """
        check_residuals(residuals, ConvResiduals, where)
        x = residuals.x
        check_params(params, {**expected, "w": (*ksize, x.shape[-1], features)}, where,
                     axes)
        in_sizes = x.shape[1:1 + n]
        pads = pads_for(in_sizes)
        out = output_sizes(in_sizes, ksize, strides, pads)
        dy = check_dy(dy, (x.shape[0], *out, features), where)
        w = params["w"]
        ct = jnp.result_type(compute_dtype(x, params), dy)
        xc, wc, dy = cast(x, ct), cast(w, ct), cast(dy, ct)
        dparams = {"w": cast(conv_kernel_grad(xc, dy, ksize, strides, pads), w.dtype)}
        if bias:
            dparams["b"] = cast(jnp.sum(dy, axis=tuple(range(n + 1))), params["b"].dtype)
        dx = cast(conv_input_grad(dy, wc, in_sizes, strides, pads), x.dtype)
        return dparams, dx

    return Layer(init, forward, backward, name=where)


def _layer_name(kind, features, ksize, strides, padding, bias, dtype):
    """The name that rebuilds the layer: ``conv2d(8, 3, stride=1, padding='SAME')``."""
    def size(t):
        return str(t[0]) if len(set(t)) == 1 else str(t)
    if isinstance(padding, str):
        pad = repr(padding)
    elif len({p for pair in padding for p in pair}) == 1:
        pad = str(padding[0][0])  # the same on every side: an int
    else:
        pad = str(padding[0] if kind == "conv1d" else padding)
    extra = ("" if bias else ", bias=False") + ("" if dtype is None else f", dtype='{dtype}'")
    return f"{kind}({features}, {size(ksize)}, stride={size(strides)}, padding={pad}{extra})"


def conv1d(features: int, kernel_size, stride=1, padding="VALID", bias: bool = True, *,
           dtype=None) -> Layer:
    """A 1-D convolution (cross-correlation) over ``(batch, length, channels)``.

    Params are ``{"w": (k, in, features), "b": (features,)}``.

    Args:
      features: output channels.
      kernel_size: ``k``, an int or a 1-tuple.
      stride: an int or a 1-tuple.
      padding: "VALID", "SAME" (output length ``ceil(length / stride)``), an int (the same
        on both sides) or a ``(low, high)`` pair (or a 1-tuple of one).
      bias: whether to add a per-channel bias.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A layer mapping ``(batch, length, in)`` to ``(batch, out_length, features)``.
    """
    return _conv(1, features, kernel_size, stride, padding, bias, dtype)


def conv2d(features: int, kernel_size, stride=1, padding="VALID", bias: bool = True, *,
           dtype=None) -> Layer:
    """A 2-D convolution (cross-correlation) over ``(batch, height, width, channels)``.

    Params are ``{"w": (kh, kw, in, features), "b": (features,)}``.

    Args:
      features: output channels.
      kernel_size: an int or ``(kh, kw)``.
      stride: an int or ``(sh, sw)``.
      padding: "VALID", "SAME", an int (the same on every side) or
        ``((top, bottom), (left, right))``.
      bias: whether to add a per-channel bias.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A layer mapping ``(batch, h, w, in)`` to ``(batch, out_h, out_w, features)``.
    """
    return _conv(2, features, kernel_size, stride, padding, bias, dtype)
