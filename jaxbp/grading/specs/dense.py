"""Grading specs of ``03_dense.py``: the dense layer's backward."""

from __future__ import annotations

import numpy as np

from jaxbp.grading.spec import (BIAS_AXIS, Case, DocCase, References, case_rng, exercise, f64,
                                 mistake, nonzero, notes_example, np64, param_ref,
                                 printed_number, printed_record, shape_label)


def _dense_mistakes(x, w, dy):
    dx = []
    if w.shape[0] == w.shape[1]:  # only a square w lets dy @ w run
        dx.append((mistake("dx-untransposed", "dx = dy @ w.T: w maps inputs to outputs, "
                           "so the way back goes through its transpose"), dy @ w))
    return {
        "dx": dx,
        "dw": [(mistake("transposed", "transposed: your dw is dy.T @ x, the transpose of "
                        "the right one; dw[j, k] pairs input unit j with output unit k, "
                        "as w does"),
                dy.T @ x),
               (mistake("dw-mean", "dw divided by the batch size: sum over the batch; the "
                        "loss's 1/batch is already inside dy"), x.T @ dy / x.shape[0])],
        "db": [
            (mistake(BIAS_AXIS, "bias gradient summed over the wrong axis: db has one "
                     "entry per output unit, so sum dy over the batch axis (axis 0)"),
             dy.sum(axis=1)),
            (mistake("bias-mean", "db averaged over the batch: sum it; the loss's 1/batch "
                     "is already inside dy"), dy.mean(axis=0)),
        ],
    }


def _dense_cases():
    rng = case_rng("dense_backward")
    refs, drawn = References(), []
    for batch, n_in, n_out in [(1, 3, 2), (3, 5, 4), (4, 4, 4)]:
        x, w = nonzero(rng, (batch, n_in)), nonzero(rng, (n_in, n_out))
        b, dy = nonzero(rng, (n_out,)), nonzero(rng, (batch, n_out))
        f = lambda x, w, b: x @ w + b[None, :]  # noqa: E731
        drawn.append((x, w, dy, refs.vjp(f, (f64(x), f64(w), f64(b)), f64(dy))))
    answers = refs.run()
    cases = []
    for x, w, dy, h in drawn:
        cases.append(Case(shape_label(x=x, w=w, dy=dy), (f64(x), f64(w), f64(dy)),
                          tuple(answers[h]),
                          lambda x=x, w=w, dy=dy: _dense_mistakes(x, w, dy)))
    return cases


def _dense_doc002():
    # 002's output layer: x = h = (0.56, 0.50) as printed; w[j, k] from h_j to o_k (w5,
    # w7 into o1; w6, w8 into o2); dy = ∂Error/∂In_o = δ_o · o (1 - o) on the printed
    # δ_o1 = 0.25, o1 = 0.48, δ_o2 = 0.60, o2 = 0.53. δ5..δ8 = ∂Error/∂w5..w8 are dw.
    ex = notes_example("002")
    x = f64([[printed_record(ex, "h1").value, printed_record(ex, "h2").value]])
    w = f64(ex.params[2]["w"])
    o = np.array([printed_record(ex, "o1").value, printed_record(ex, "o2").value])
    delta_o = np.array([printed_record(ex, "delta_o1").value, printed_record(ex, "delta_o2").value])
    dy = f64((delta_o * o * (1 - o))[None, :])
    xn, wn, dyn = np64(x), np64(w), np64(dy)
    expected = (f64(dyn @ wn.T), f64(xn.T @ dyn), f64(dyn.sum(axis=0)))
    printed = [printed_number(ex, f"delta{i}", "dw", param_ref(ex, f"w{i}").index)
               for i in (5, 6, 7, 8)]
    return DocCase("002's output layer: x = h = (0.56, 0.50), w = (w5 w6; w7 w8)",
                   (x, w, dy), expected, printed,
                   lambda: _dense_mistakes(np64(x), np64(w), np64(dy)))


MODULE = "03_dense.py"

EXERCISES = (
    exercise("dense_backward", "the dense layer: dx, dw, db", "000, 001, 002",
             ("dx", "dw", "db"), _dense_cases,
             [("doc002", "document 002's δ5..δ8 as the output layer's dw", _dense_doc002)]),
)
