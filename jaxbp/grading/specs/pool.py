"""Grading specs of ``05_pool.py``: max pooling's backward."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxbp.grading.spec import (Case, DocCase, Printed, References, case_rng, exercise, f64,
                                 mistake, nonzero, notes_example, np64, operand, out_shape,
                                 printed_record, shape_label, source_of, vjp_of)


def _pool_forward(x, window):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *window, 1), "VALID")


def _tie_routes(x, dy, window):
    """dx under three wrong tie rules: every tied maximum gets dy, the tied maxima share
    it, the last one gets it (the rule is the first, row-major)."""
    wh, ww = window
    every, split, last = (np.zeros_like(x) for _ in range(3))
    for n, i, j, c in np.ndindex(*dy.shape):
        block = x[n, i * wh:(i + 1) * wh, j * ww:(j + 1) * ww, c]
        tied = np.argwhere(block == block.max())
        for r, s in tied:
            every[n, i * wh + r, j * ww + s, c] = dy[n, i, j, c]
            split[n, i * wh + r, j * ww + s, c] = dy[n, i, j, c] / len(tied)
        r, s = tied[-1]
        last[n, i * wh + r, j * ww + s, c] = dy[n, i, j, c]
    return every, split, last


def _pool_mistakes(x, dy, window, expected):
    wh, ww = window
    oh, ow = dy.shape[1], dy.shape[2]
    spread = np.zeros_like(x)
    spread[:, :oh * wh, :ow * ww, :] = np.repeat(np.repeat(dy, wh, axis=1), ww, axis=2)
    every, split, last = _tie_routes(x, dy, window)
    return {"dx": [
        (mistake("every-tied", "gradient copied to every tied entry: where a window holds "
                 "its maximum twice, the docstring's rule gives dy to the first one "
                 "(row-major), as PyTorch does; copying it makes the gradient too large "
                 "(a mask x == max marks every tie)"), every),
        (mistake("split-ties", "dy split among the tied maxima: the docstring's rule "
                 "gives all of it to the first one (row-major)"), split),
        (mistake("last-tie", "dy given to the last tied maximum: the docstring's rule is "
                 "the first (row-major within the window; jnp.argmax picks it)"), last),
        (mistake("every-entry", "sent dy to every entry of the window: only the window's "
                 "maximum gets it (003: the error goes to C2 and C3 only)"), spread),
        (mistake("average", "spread dy evenly over the window: that is average pooling's "
                 "backward; max pooling gives all of it to the maximum"), spread / (wh * ww)),
        (mistake("crop", "dx must have x's shape: the rows and columns no window covers "
                 "get gradient 0 (pad them back)"), expected[:, :oh * wh, :ow * ww, :]),
    ]}


def _pool_cases():
    rng = case_rng("max_pool2d_backward")
    refs, drawn = References(), []
    for shape, window in [((1, 4, 4, 1), 2), ((2, 5, 7, 3), (2, 3)), ((3, 6, 4, 2), 3)]:
        win = (window, window) if isinstance(window, int) else window
        x = rng.normal(size=shape)
        label = ""
        if shape[0] == 1:  # ties, as real inputs have them (a relu's zeros)
            x[0, 0, 1, 0] = x[0, 1, 0, 0] = 3.0
            x[0, 2:4, 2:4, 0] = 0.0
            label = ", with tied maxima"
        xj = f64(x)
        f = lambda x, win=win: _pool_forward(x, win)  # noqa: E731
        dy = nonzero(rng, out_shape(f, xj))
        drawn.append((window, win, x, label, xj, dy, refs.vjp(f, (xj,), f64(dy))))
    answers = refs.run()
    cases = []
    for window, win, x, label, xj, dy, h in drawn:
        (dx,) = answers[h]
        cases.append(Case(shape_label(x=x, dy=dy) + f", window {window!r}{label}",
                          (xj, f64(dy), window),
                          dx, lambda x=x, dy=dy, win=win, dx=np64(dx):
                          _pool_mistakes(x, dy, win, dx)))
    return cases


def _pool_doc003():
    # 003's pooling: P1 = max(C1, C2), P2 = max(C3, C4), C = (0.625, 0.629, 0.384, 0.380)
    # as the coef_c lines write them; laid out as (batch 1, 1 row, 2 columns, 2
    # channels): column 0 holds (C1, C3), column 1 (C2, C4); window (1, 2). dy = coef_p =
    # (0.0004, 0.002). The coef_c lines route with a factor 1 to C2 and C3 and 0 to C1 and
    # C4 ("coeff_c1 = 0.0004 · 0 · ...", "coeff_c2 = ... · 1 · ...").
    ex = notes_example("003")
    c = [operand(ex, f"coef_c{k}", f"out_c{k}") for k in (1, 2, 3, 4)]
    p = [printed_record(ex, "coef_p1"), printed_record(ex, "coef_p2")]
    x = f64([[[[c[0], c[2]], [c[1], c[3]]]]])
    dy = f64([[[[p[0].value, p[1].value]]]])
    window = (1, 2)
    (expected,) = vjp_of(lambda x: _pool_forward(x, window), (x,), dy)
    printed = []
    for k, index, pool in [(1, (0, 0, 0, 0), 0), (2, (0, 0, 1, 0), 0), (3, (0, 0, 0, 1), 1),
                           (4, (0, 0, 1, 1), 1)]:
        route = operand(ex, f"coef_c{k}", f"route_c{k}")
        rec = printed_record(ex, f"coef_c{k}")
        printed.append(Printed(f"C{k} gets coef_p{pool + 1} · {route:g}", "dx", index,
                               route * p[pool].value, p[pool].decimals,
                               source_of(ex, rec) + f" (its routing factor {route:g})"))
    return DocCase("003: C = (0.625, 0.629, 0.384, 0.380), dy = coef_p = (0.0004, 0.002)",
                   (x, dy, window), expected, printed,
                   lambda: _pool_mistakes(np64(x), np64(dy), window, np64(expected)))


MODULE = "05_pool.py"

EXERCISES = (
    exercise("max_pool2d_backward", "max pooling's routing", "003", ("dx",), _pool_cases,
             [("doc003", "document 003's routing to C2 and C3", _pool_doc003)],
             static_argnums=(2,)),
)
