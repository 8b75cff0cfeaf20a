"""Grading specs of ``14_recurrent.py``: a tanh RNN through time, one LSTM step."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (Case, MISSING_DERIVATIVE, References, case_rng, exercise,
                                f64, in_x64, mistake, nonzero, np64, shape_label, vjp_of)


def _rnn(x, wx, wh, b):
    # Unrolled (a few steps): compiles faster than lax.scan and its transpose.
    h = jnp.zeros((x.shape[0], wh.shape[0]), x.dtype)
    hs = []
    for t in range(x.shape[1]):
        h = jnp.tanh(x[:, t] @ wx + h @ wh + b[None, :])
        hs.append(h)
    return jnp.stack(hs, axis=1)


def _rnn_np(x, h, wx, wh, b, dh, *, carry=True, preact=False, last_only=False,
            wh_transposed=True):
    """Backpropagation through time in numpy, right or with a named mistake."""
    batch, time, _ = x.shape
    h_prev = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    da = np.zeros_like(h)
    back = np.zeros_like(h[:, 0])
    for t in reversed(range(time)):
        if preact:
            a = x[:, t] @ wx + h_prev[:, t] @ wh + b[None, :]
            deriv = 1 - a * a
        else:
            deriv = 1 - h[:, t] ** 2
        da[:, t] = (dh[:, t] + (back if carry else 0.0)) * deriv
        back = da[:, t] @ (wh.T if wh_transposed else wh)
    dx = np.einsum("bth,ih->bti", da, wx)
    steps = slice(time - 1, time) if last_only else slice(None)
    dwx = np.einsum("bti,bth->ih", x[:, steps], da[:, steps])
    dwh = np.einsum("btg,bth->gh", h_prev[:, steps], da[:, steps])
    db = da[:, steps].sum(axis=(0, 1))
    return {"dx": dx, "dwx": dwx, "dwh": dwh, "db": db}


def _rnn_mistakes(*args):
    named = [
        (mistake("not-carried", "the gradient is not carried to the previous step: h[:, t] also "
                 "feeds step t + 1, so its total gradient is dh[:, t] plus da_{t+1} @ wh.T"),
         _rnn_np(*args, carry=False)),
        (mistake("tanh-prime-preactivation", "tanh's derivative taken at the pre-activation: it "
                 "is 1 - h_t², written with tanh's output h_t = tanh(a_t), not 1 - a_t²"),
         _rnn_np(*args, preact=True)),
        (mistake("last-step-only", "the weights' gradients from the last step only: wx, wh and b "
                 "are used at every step, so their gradients are sums over all the steps"),
         _rnn_np(*args, last_only=True)),
        (mistake("wh-not-transposed", "the carried gradient is da_t @ wh; it must be da_t @ wh.T "
                 "(wh maps h_{t-1} to a_t from the right)"), _rnn_np(*args, wh_transposed=False)),
    ]
    out = {}
    for leaf in ("dx", "dwx", "dwh", "db"):
        out[leaf] = [(m, wrong[leaf]) for m, wrong in named]
    return out


def _rnn_cases():
    rng = case_rng("rnn_backward")
    refs, drawn = References(), []
    for batch, time, n_in, hidden in [(2, 4, 3, 2), (1, 5, 2, 4), (3, 3, 4, 3)]:
        x = rng.normal(size=(batch, time, n_in))
        wx = rng.normal(size=(n_in, hidden)) / math.sqrt(n_in)
        wh = 0.8 * rng.normal(size=(hidden, hidden)) / math.sqrt(hidden)
        b = 0.5 * rng.normal(size=(hidden,))
        dh = nonzero(rng, (batch, time, hidden))
        # The hidden states and their vjp.
        drawn.append((x, wx, wh, b, dh, refs.value_and_vjp(
            _rnn, (f64(x), f64(wx), f64(wh), f64(b)), f64(dh))))
    answers = refs.run()
    cases = []
    for x, wx, wh, b, dh, handle in drawn:
        h, expected = answers[handle]
        h = np64(h)
        args = (x, h, wx, wh, b, dh)
        cases.append(Case(shape_label(x=x, h=h, wx=wx, wh=wh, dh=dh),
                          tuple(f64(a) for a in args), tuple(expected),
                          functools.cache(lambda args=args: _rnn_mistakes(*args))))
    return cases


def _lstm_cell(x, h_prev, c_prev, wx, wh, b, order="ifgo"):
    hidden = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    gate = {name: z[:, j * hidden:(j + 1) * hidden] for j, name in enumerate(order)}
    i, f, o = (jax.nn.sigmoid(gate[n]) for n in "ifo")
    g = jnp.tanh(gate["g"])
    c = f * c_prev + i * g
    return o * jnp.tanh(c), c


def _lstm_np(x, h_prev, c_prev, wx, wh, b, dh, dc, *, through_h=True, incoming=True,
             tanh_prime=True):
    hidden = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    i, f = sig(z[:, :hidden]), sig(z[:, hidden:2 * hidden])
    g, o = np.tanh(z[:, 2 * hidden:3 * hidden]), sig(z[:, 3 * hidden:])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    dc_total = ((dc if incoming else 0.0)
                + (dh * o * ((1 - tc * tc) if tanh_prime else 1.0) if through_h else 0.0))
    dz = np.concatenate([dc_total * g * i * (1 - i), dc_total * c_prev * f * (1 - f),
                         dc_total * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
    return {"dx": dz @ wx.T, "dh_prev": dz @ wh.T, "dc_prev": dc_total * f,
            "dwx": x.T @ dz, "dwh": h_prev.T @ dz, "db": dz.sum(axis=0)}


LSTM_OUTPUTS = ("dx", "dh_prev", "dc_prev", "dwx", "dwh", "db")


def _lstm_mistakes(x, h_prev, c_prev, wx, wh, b, dh, dc):
    args = (x, h_prev, c_prev, wx, wh, b, dh, dc)
    swapped = vjp_of(lambda *p: _lstm_cell(*p, order="ifog"),
                   tuple(f64(a) for a in args[:6]), (f64(dh), f64(dc)))
    named = [
        (mistake("gate-order", "the gates in the wrong order: this cell's z holds them in "
                 "PyTorch's order, input, forget, cell (g), output; CS231n's is i, f, o, g"),
         dict(zip(LSTM_OUTPUTS, (np64(a) for a in swapped)))),
        (mistake("cell-path-missing", "the cell state's gradient misses the path through "
                 "h = o · tanh(c): dc_total = dc + dh · o · (1 - tanh(c)²)"),
         _lstm_np(*args, through_h=False)),
        (mistake("incoming-dc-ignored", "the incoming dc is ignored: c also flows to the next "
                 "step, whose gradient dc adds to the one through h"),
         _lstm_np(*args, incoming=False)),
        (mistake(MISSING_DERIVATIVE, "missing tanh's derivative on the way from h to c: "
                 "h = o · tanh(c), so dc gets dh · o · (1 - tanh(c)²)"),
         _lstm_np(*args, tanh_prime=False)),
    ]
    return {leaf: [(m, wrong[leaf]) for m, wrong in named] for leaf in LSTM_OUTPUTS}


def _lstm_cases():
    rng = case_rng("lstm_cell_backward")
    refs, drawn = References(), []
    for batch, n_in, hidden in [(2, 3, 2), (1, 2, 4), (4, 5, 3)]:
        x, h_prev, c_prev = (rng.normal(size=s) for s in
                             [(batch, n_in), (batch, hidden), (batch, hidden)])
        wx = rng.normal(size=(n_in, 4 * hidden)) / math.sqrt(n_in)
        wh = rng.normal(size=(hidden, 4 * hidden)) / math.sqrt(hidden)
        b = 0.5 * rng.normal(size=(4 * hidden,))
        dh, dc = nonzero(rng, (batch, hidden)), nonzero(rng, (batch, hidden))
        args = (x, h_prev, c_prev, wx, wh, b)
        drawn.append((args, dh, dc, refs.vjp(_lstm_cell, tuple(f64(a) for a in args),
                                             (f64(dh), f64(dc)))))
    answers = refs.run()
    cases = []
    for args, dh, dc, handle in drawn:
        x, h_prev, _, wx, wh, _ = args
        cases.append(Case(shape_label(x=x, h_prev=h_prev, wx=wx, wh=wh),
                          tuple(f64(a) for a in (*args, dh, dc)), tuple(answers[handle]),
                          in_x64(lambda a=(*args, dh, dc): _lstm_mistakes(*a))))
    return cases


MODULE = "14_recurrent.py"

EXERCISES = (
    exercise("rnn_backward", "a tanh RNN, backpropagation through time", "-",
             ("dx", "dwx", "dwh", "db"), _rnn_cases),
    exercise("lstm_cell_backward", "one LSTM step, four gates", "-", LSTM_OUTPUTS,
             _lstm_cases),
)
