"""Grading specs of ``07_conv.py``: 1-D and 2-D convolutions' backward."""

from __future__ import annotations

import dataclasses

import numpy as np
from jax import lax

from jaxbp.grading.spec import (BIAS_AXIS, Case, DocCase, Printed, References, case_rng,
                                 exercise, f64, mistake, nonzero, notes_example, np64, out_shape,
                                 printed_number, printed_record, shape_label, vjp_of)


def _conv_forward(x, w, b, strides, pads):
    n = x.ndim - 2
    dims = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[n]
    y = lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=dims)
    return y + b.reshape((1,) * (n + 1) + (-1,))


def _np_conv_dx(w, dy, in_shape, strides, pads, crop=True):
    """dx by scattering dy * w tap by tap (numpy), for the mistakes' wrong answers;
    ``crop=False``: the padded input's gradient, padding included."""
    n = len(strides)
    ksize = w.shape[:n]
    padded = [s + lo + hi for s, (lo, hi) in zip(in_shape[1:1 + n], pads)]
    dxp = np.zeros((in_shape[0], *padded, in_shape[-1]))
    out = dy.shape[1:1 + n]
    for tap in np.ndindex(*ksize):
        sl = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(tap, out, strides))
        dxp[(slice(None), *sl, slice(None))] += np.einsum("...o,io->...i", dy, w[tap])
    if not crop:
        return dxp
    inner = tuple(slice(lo, lo + s) for s, (lo, _) in zip(in_shape[1:1 + n], pads))
    return dxp[(slice(None), *inner, slice(None))]


def _conv_mistakes(x, w, dy, strides, pads, expected):
    n = len(strides)
    flipped = w[(slice(None, None, -1),) * n]
    dx_unflipped = _np_conv_dx(flipped, dy, x.shape, strides, pads)
    dx, dw, db = (np64(e) for e in expected)
    return {
        "dx": [(mistake("kernel-not-flipped", "kernel not flipped: the input gradient is "
                        "a full convolution of dy with the flipped kernel (004: pixel a21 "
                        "meets W21, W20, W11, W10); or, tap by tap, each input entry gets "
                        "dy * w at the tap that saw it"), dx_unflipped)]
        + ([(mistake("padding-not-cropped", "dx has the padded input's shape: it is the "
                     "gradient of x, so crop the padding off (the padded border's "
                     "gradient belongs to no input)"),
             _np_conv_dx(w, dy, x.shape, strides, pads, crop=False))]
           if any(lo or hi for lo, hi in pads) else []),
        "dw": [
            (mistake("in-out-swapped", "the kernel's in and out channel axes are swapped: "
                     "dw has w's shape (..., in, out)"), np.swapaxes(dw, -1, -2)),
            (mistake("dw-flipped", "dw is reversed along the kernel's spatial axes: "
                     "correlate x with dy (tap j sees x[o * stride + j]); don't convolve"),
             dw[(slice(None, None, -1),) * n]),
        ],
        "db": [
            (mistake(BIAS_AXIS, "bias gradient summed over the wrong axes: db has one "
                     "entry per output channel, so sum dy over the batch and every "
                     "spatial axis"),
             dy.sum(axis=0)),
            (mistake(BIAS_AXIS, "bias gradient summed over the wrong axes: sum dy over "
                     "the batch as well as the spatial axes"), dy.sum(axis=tuple(range(1, n + 1)))),
        ],
    }


def _conv1d_cases():
    rng = case_rng("conv1d_backward")
    refs, drawn = References(), []
    for batch, length, c_in, c_out, k, stride, padding in [
            (1, 5, 1, 2, 3, 1, 0), (2, 7, 2, 3, 3, 2, 1), (3, 8, 2, 1, 2, 3, (1, 0))]:
        lo, hi = (padding, padding) if isinstance(padding, int) else padding
        x, w = nonzero(rng, (batch, length, c_in)), nonzero(rng, (k, c_in, c_out))
        b = nonzero(rng, (c_out,))
        f = lambda x, w, b, s=stride, p=((lo, hi),): _conv_forward(x, w, b, (s,), p)  # noqa: E731
        dy = nonzero(rng, out_shape(f, f64(x), f64(w), f64(b)))
        drawn.append((stride, padding, lo, hi, x, w, dy,
                      refs.vjp(f, (f64(x), f64(w), f64(b)), f64(dy))))
    answers = refs.run()
    cases = []
    for stride, padding, lo, hi, x, w, dy, h in drawn:
        expected = answers[h]
        label = shape_label(x=x, w=w, dy=dy) + f", stride {stride}, padding {padding!r}"
        cases.append(Case(label, (f64(x), f64(w), f64(dy), stride, padding),
                          tuple(expected),
                          lambda x=x, w=w, dy=dy, s=stride, p=((lo, hi),), e=expected:
                          _conv_mistakes(x, w, dy, (s,), p, e)))
    return cases


def _conv1d_doc003():
    # 003's convolution as jaxbp.notes holds it: the input i1 = 0.1 seen as the signal
    # (0, i1, 0), padding 1, stride 2, kernels k1 = (0.1, 0.2, 0.3) (channel 0) and
    # k2 = (0.3, 0.2, 0.1) (channel 1), w[j, 0, c] = k_{c+1, j+1}. Under cross-correlation
    # the positions come out reversed with respect to the document's names: position 0
    # holds C2 and C4, position 1 holds C1 and C3. dy = the document's coef_c (one
    # figure): coef_c1 = 0, coef_c2 = 0.0001, coef_c3 = 0.0005, coef_c4 = 0. Its K lines:
    # ∂E/∂k11 = coef_c1 · i1 + coef_c2 · 0, ∂E/∂k13 = coef_c2 · i1, ∂E/∂k21 = coef_c3 · i1,
    # ∂E/∂k23 = coef_c4 · i1; b lines: ∂E/∂b1 = coef_c1 + coef_c2, ∂E/∂b2 = coef_c3 +
    # coef_c4; then K = k - α ∂E/∂k and b = b - α ∂E/∂b, printed to one decimal.
    ex = notes_example("003")
    layer = ex.params[0]
    x, w = f64(ex.x), f64(layer["w"])
    coef = {k: printed_record(ex, f"coef_c{k}").value for k in (1, 2, 3, 4)}
    dy = f64([[[coef[2], coef[4]], [coef[1], coef[3]]]])
    i1, lr = float(np64(ex.x)[0, 1, 0]), ex.learning_rate
    f = lambda x, w, b: _conv_forward(x, w, b, (2,), ((1, 1),))  # noqa: E731
    expected = tuple(vjp_of(f, (x, w, f64(layer["b"])), dy))
    grads = [  # (kernel entry, its gradient by the document's K lines, label)
        ((0, 0, 0), coef[1] * i1 + coef[2] * 0, "∂E/∂k11 = coef_c1 · i1 + coef_c2 · 0"),
        ((1, 0, 0), coef[1] * 0 + coef[2] * 0, "∂E/∂k12 = coef_c1 · 0 + coef_c2 · 0"),
        ((2, 0, 0), coef[1] * 0 + coef[2] * i1, "∂E/∂k13 = coef_c1 · 0 + coef_c2 · i1"),
        ((0, 0, 1), coef[3] * i1 + coef[4] * 0, "∂E/∂k21 = coef_c3 · i1 + coef_c4 · 0"),
        ((1, 0, 1), coef[3] * 0 + coef[4] * 0, "∂E/∂k22 = coef_c3 · 0 + coef_c4 · 0"),
        ((2, 0, 1), coef[3] * 0 + coef[4] * i1, "∂E/∂k23 = coef_c3 · 0 + coef_c4 · i1"),
    ]
    k_lines = f"document 003, {printed_record(ex, 'k11_new').section}: the K and b update lines"
    printed = [Printed(label, "dw", index, value, 6, k_lines) for index, value, label in grads]
    printed += [
        Printed("∂E/∂b1 = coef_c1 + coef_c2", "db", (0,), coef[1] + coef[2], 6, k_lines),
        Printed("∂E/∂b2 = coef_c3 + coef_c4", "db", (1,), coef[3] + coef[4], 6, k_lines),
    ]
    for ref in ex.param_table:  # the updated kernel and biases, as printed
        if ref.layer == 0:
            leaf = "dw" if ref.key == "w" else "db"
            old = float(np64(layer[ref.key])[ref.index])
            rec = printed_number(ex, f"{ref.name}_new", leaf, ref.index,
                           f"{ref.name} - α · ∂E/∂{ref.name}")
            printed.append(dataclasses.replace(rec, offset=old, scale=-lr))
    return DocCase("003's conv layer: signal (0, i1, 0), stride 2, padding 1, dy = coef_c",
                   (x, w, dy, 2, 1), expected, printed,
                   lambda: _conv_mistakes(np64(x), np64(w), np64(dy), (2,), ((1, 1),),
                                          expected))


def _conv2d_cases():
    rng = case_rng("conv2d_backward")
    refs, drawn = References(), []
    for batch, h, wd, c_in, c_out, kh, kw in [(1, 4, 4, 1, 1, 3, 3), (2, 5, 6, 2, 3, 2, 3),
                                              (3, 3, 5, 3, 2, 3, 2)]:
        x, w = nonzero(rng, (batch, h, wd, c_in)), nonzero(rng, (kh, kw, c_in, c_out))
        b = nonzero(rng, (c_out,))
        f = lambda x, w, b: _conv_forward(x, w, b, (1, 1), ((0, 0), (0, 0)))  # noqa: E731
        dy = nonzero(rng, out_shape(f, f64(x), f64(w), f64(b)))
        drawn.append((x, w, dy, refs.vjp(f, (f64(x), f64(w), f64(b)), f64(dy))))
    answers = refs.run()
    cases = []
    for x, w, dy, h in drawn:
        expected = answers[h]
        cases.append(Case(shape_label(x=x, w=w, dy=dy), (f64(x), f64(w), f64(dy)),
                          tuple(expected),
                          lambda x=x, w=w, dy=dy, e=expected:
                          _conv_mistakes(x, w, dy, (1, 1), ((0, 0), (0, 0)), e)))
    return cases


def _conv2d_doc004():
    # 004: a 4x4 input a, a 3x3 kernel W, four positions s0..s3 (row-major over the 2x2
    # output). Its dL/dW00 line sums, over s0..s3, ∂L/∂s times the window entries a00,
    # a01, a10, a11; its pixel line: the pixel at row 2, column 1 meets W21, W20, W11,
    # W10 in s0..s3. 004 prints no numbers: these values are its formulas evaluated.
    a = np.arange(1, 17, dtype=np.float64).reshape(4, 4) / 10
    kernel = (np.arange(1, 10, dtype=np.float64).reshape(3, 3) - 5) / 10 + 0.05
    g = np.array([[0.3, -0.2], [0.5, 0.1]])
    x, w, dy = f64(a[None, :, :, None]), f64(kernel[:, :, None, None]), f64(g[None, :, :, None])
    f = lambda x, w, b: _conv_forward(x, w, b, (1, 1), ((0, 0), (0, 0)))  # noqa: E731
    expected = tuple(vjp_of(f, (x, w, f64([0.0])), dy))
    g0, g1, g2, g3 = g.ravel()
    dw00 = g0 * a[0, 0] + g1 * a[0, 1] + g2 * a[1, 0] + g3 * a[1, 1]
    da21 = g0 * kernel[2, 1] + g1 * kernel[2, 0] + g2 * kernel[1, 1] + g3 * kernel[1, 0]
    printed = [
        Printed("∂L/∂W00 = Σ ∂L/∂s_k · (a00, a01, a10, a11)_k", "dw", (0, 0, 0, 0), dw00, 9,
           '004, "∂l/∂w00 = ... (w_a ... a00 + w_b ... a01 + w_c ... a10 + w_d ... a11)"'),
        Printed("∂L/∂a21 = Σ ∂L/∂s_k · (W21, W20, W11, W10)_k", "dx", (0, 2, 1, 0), da21, 9,
           '004, "∂l/∂a = ... (W_a ... W21 + W_b ... W20 + W_c ... W11 + W_d ... W10)"'),
    ]
    return DocCase("004: a 4x4 input, a 3x3 kernel, dy = ∂L/∂s (2x2)", (x, w, dy), expected,
                   printed,
                   lambda: _conv_mistakes(a[None, :, :, None], kernel[:, :, None, None],
                                          g[None, :, :, None], (1, 1), ((0, 0), (0, 0)),
                                          expected))


MODULE = "07_conv.py"

EXERCISES = (
    exercise("conv1d_backward", "a 1-D convolution (stride, padding)", "003",
             ("dx", "dw", "db"), _conv1d_cases,
             [("doc003", "document 003's kernel and bias gradients", _conv1d_doc003)],
             static_argnums=(3, 4)),
    exercise("conv2d_backward", "a 2-D convolution: dW and the pixel gradient", "004",
             ("dx", "dw", "db"), _conv2d_cases,
             [("doc004", "document 004's dL/dW00 and the pixel gradient", _conv2d_doc004)]),
)
