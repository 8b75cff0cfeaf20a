"""Grading specs of ``10_pool_avg.py``: average pooling."""

from __future__ import annotations

import numpy as np
from jax import lax

from jaxbp.grading.spec import (Case, References, case_rng, exercise, f64, mistake, nonzero,
                                np64, out_shape, shape_label)


def _avg_pool(x, window):
    wh, ww = window
    dims = (1, wh, ww, 1)
    return lax.reduce_window(x, 0.0, lax.add, dims, dims, "VALID") / (wh * ww)


def _avg_pool_mistakes(x, dy, window, expected):
    wh, ww = window
    batch, oh, ow, channels = dy.shape
    h, w = oh * wh, ow * ww
    copied = np.zeros_like(x)
    copied[:, :h, :w, :] = np.repeat(np.repeat(dy, wh, axis=1), ww, axis=2)
    first = np.zeros_like(x)
    first[:, 0:h:wh, 0:w:ww, :] = dy
    blocks = x[:, :h, :w, :].reshape(batch, oh, wh, ow, ww, channels)
    blocks = blocks.transpose(0, 1, 3, 5, 2, 4).reshape(batch, oh, ow, channels, wh * ww)
    winner = np.eye(wh * ww)[np.argmax(blocks, axis=-1)] * dy[..., None]
    winner = winner.reshape(batch, oh, ow, channels, wh, ww).transpose(0, 1, 4, 2, 5, 3)
    to_max = np.zeros_like(x)
    to_max[:, :h, :w, :] = winner.reshape(batch, h, w, channels)
    routed = mistake("routed", "routed to one entry: average pooling spreads dy over the whole "
                     "window, each entry getting dy / (wh · ww); only max pooling routes")
    return {"dx": [
        (routed, to_max),
        (routed, first),
        (mistake("not-averaged", "copied dy to every entry of the window: the forward is a mean, "
                 "so each entry gets dy / (wh · ww)"), copied),
        (mistake("crop", "dx must have x's shape: the rows and columns no window covers get "
                 "gradient 0 (pad them back)"), expected[:, :h, :w, :]),
    ]}


def _avg_pool_cases():
    rng = case_rng("avg_pool2d_backward")
    refs, drawn = References(), []
    for shape, window in [((1, 4, 4, 1), 2), ((2, 5, 7, 3), (2, 3)), ((3, 6, 4, 2), 3)]:
        win = (window, window) if isinstance(window, int) else window
        x = rng.normal(size=shape)
        f = lambda x, win=win: _avg_pool(x, win)  # noqa: E731
        dy = nonzero(rng, out_shape(f, f64(x)))
        drawn.append((window, win, x, dy, refs.vjp(f, (f64(x),), f64(dy))))
    answers = refs.run()
    cases = []
    for window, win, x, dy, h in drawn:
        (dx,) = answers[h]
        cases.append(Case(shape_label(x=x, dy=dy) + f", window {window!r}",
                          (f64(x), f64(dy), window), dx,
                          lambda x=x, dy=dy, win=win, dx=np64(dx):
                          _avg_pool_mistakes(x, dy, win, dx)))
    return cases


MODULE = "10_pool_avg.py"

EXERCISES = (
    exercise("avg_pool2d_backward", "average pooling: spread, not route", "-", ("dx",),
             _avg_pool_cases, static_argnums=(2,)),
)
