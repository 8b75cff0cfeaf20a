"""Alternative formulations of the attention and LSTM passes, timed in W5 and W6.

Each alternative is a complete layer (forward beside hand-written backward) that first
passes ``jaxbp.check_gradients``; then the W5 GPT (2 blocks, 4 heads, 128 features, 64
characters, batch 16) or the W6 LSTM language model (256 units, 64 steps, batch 32)
trains with it, fused (``make_epoch``) and as a per-step loop, rounds interleaved,
medians reported. ``jax.grad`` of the library's forward is timed alongside.

    python benchmarks/sequence_formulations.py            # both
    python benchmarks/sequence_formulations.py --only lstm --rounds 3

attention  ``heads_major`` (the library): ``q, k, v`` transposed once to
           ``(B, H, T, D)``, every product a batched matmul over ``(B, H)``;
           ``time_major``: the same einsums on the ``(B, T, H, D)`` views of the
           projection, no transposes asked for (XLA inserts its own, per product).
lstm       ``library``: input projection of all steps one matmul before the scan, the
           four gates one ``(h, 4h)`` matmul per step, the weight gradients one
           matmul each after the reverse scan;  ``four_matmuls``: one ``(h, h)``
           matmul per gate per step, forward and backward;  ``projection_inside``:
           ``x_t @ Wx`` inside the scan, one step at a time;  ``accumulate``:
           ``dWh += h_{t-1}^T dz_t`` and ``dWx += x_t^T dz_t`` in the reverse scan's
           carry, as BPTT is often written.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import jax
import jax.numpy as jnp
import optax
from jax import lax

import jaxbp
from jaxbp._core import Layer
from jaxbp.layers import attention as A
from jaxbp.layers import recurrent as R

VOCAB, TIME = 96, 64


# --------------------------------------------------------------------------- attention


def attention_time_major(heads):
    """The (B, T, H, D) einsum formulation (the library's first version)."""
    library = jaxbp.causal_self_attention(heads)

    def forward(params, x):
        batch, time, features = x.shape
        d = features // heads
        qkv = x.reshape(batch * time, features) @ params["qkv"]["w"] + \
            params["qkv"]["b"][None, :]
        qkv = qkv.reshape(batch, time, 3, heads, d)
        q = qkv[:, :, 0] * (1.0 / math.sqrt(d))
        k, v = qkv[:, :, 1], qkv[:, :, 2]
        p = A.masked_softmax(jnp.einsum("bthd,bshd->bhts", q, k),
                             A.causal_mask(time)[None, None])
        o = jnp.einsum("bhts,bshd->bthd", p, v).reshape(batch * time, features)
        y = o @ params["proj"]["w"] + params["proj"]["b"][None, :]
        return y.reshape(batch, time, features), (x, q, k, v, p, o)

    def backward(params, residuals, dy):
        x, q, k, v, p, o = residuals
        batch, time, features = x.shape
        d = features // heads
        rows = batch * time
        dy2 = dy.reshape(rows, features)
        d_proj = {"w": o.T @ dy2, "b": jnp.sum(dy2, axis=0)}
        do = (dy2 @ params["proj"]["w"].T).reshape(batch, time, heads, d)
        dp = jnp.einsum("bthd,bshd->bhts", do, v)
        dv = jnp.einsum("bhts,bthd->bshd", p, do)
        ds = A.masked_softmax_backward(p, dp)
        dq = jnp.einsum("bhts,bshd->bthd", ds, k) * (1.0 / math.sqrt(d))
        dk = jnp.einsum("bhts,bthd->bshd", ds, q)
        dqkv = jnp.stack([dq, dk, dv], axis=2).reshape(rows, 3 * features)
        d_qkv = {"w": x.reshape(rows, features).T @ dqkv, "b": jnp.sum(dqkv, axis=0)}
        dx = (dqkv @ params["qkv"]["w"].T).reshape(batch, time, features)
        return {"qkv": d_qkv, "proj": d_proj}, dx

    return Layer(library.init, forward, backward, name="attention(time_major)")


ATTENTION = {"heads_major": jaxbp.causal_self_attention, "time_major": attention_time_major}


def gpt_with(attention):
    blocks = [jaxbp.serial(
        jaxbp.residual(jaxbp.layer_norm(), attention(4)),
        jaxbp.residual(jaxbp.layer_norm(), jaxbp.dense(512), jaxbp.gelu(), jaxbp.dense(128)))
        for _ in range(2)]
    return jaxbp.serial(jaxbp.embedding(VOCAB, 128), jaxbp.position_embedding(TIME), *blocks,
                        jaxbp.layer_norm(), jaxbp.dense(VOCAB))


# --------------------------------------------------------------------------- LSTM


def _cell(z, c):
    zi, zf, zg, zo = z
    i, f, g, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jnp.tanh(zg), jax.nn.sigmoid(zo)
    c = f * c + i * g
    return o * jnp.tanh(c), c, (i, f, g, o)


def _gate_grads(gh, dc, c_t, c_before, gates):
    i, f, g, o = gates
    tanh_c = jnp.tanh(c_t)
    gc = dc + gh * o * (1 - tanh_c * tanh_c)
    dz = (gc * g * i * (1 - i), gc * c_before * f * (1 - f), gc * i * (1 - g * g),
          gh * tanh_c * o * (1 - o))
    return dz, gc * f


def lstm_variant(kind, features=256):
    library = jaxbp.lstm(features)
    if kind == "library":
        return library

    def forward(params, x):
        wx, wh, b = params["wx"], params["wh"], params["b"]
        batch = x.shape[0]
        zeros = jnp.zeros((batch, features), x.dtype)
        if kind == "projection_inside":
            xs = R._time_major(x)
        else:
            xs = R._input_projection(params, x)
        whs = jnp.split(wh, 4, axis=1)

        def step(carry, x_t):
            h, c = carry
            if kind == "projection_inside":
                z = jnp.split(x_t @ wx + b[None, :] + h @ wh, 4, axis=-1)
            elif kind == "four_matmuls":
                z = [xz + h @ w for xz, w in zip(jnp.split(x_t, 4, axis=-1), whs)]
            else:
                z = jnp.split(x_t + h @ wh, 4, axis=-1)
            h, c, gates = _cell(z, c)
            return (h, c), (h, c, jnp.concatenate(gates, axis=-1))

        _, (hs, cs, gates) = lax.scan(step, (zeros, zeros), xs)
        return R._time_major(hs), R.LSTMResiduals(x, hs, cs, gates, f"lstm({kind})")

    def backward(params, residuals, dy):
        x, hs, cs, gates, _ = residuals
        wh = params["wh"]
        c_prev = R._previous_states(cs)
        h_prev = R._previous_states(hs)
        whs_t = [w.T for w in jnp.split(wh, 4, axis=1)]
        zeros = jnp.zeros(hs.shape[1:], hs.dtype)

        if kind == "accumulate":
            xs = R._time_major(x)

            def step(carry, inputs):
                dh, dc, dwh, dwx = carry
                dy_t, c_t, c_before, g_t, h_before, x_t = inputs
                dz, dc = _gate_grads(dy_t + dh, dc, c_t, c_before, jnp.split(g_t, 4, -1))
                dz = jnp.concatenate(dz, axis=-1)
                return (dz @ wh.T, dc, dwh + h_before.T @ dz, dwx + x_t.T @ dz), dz

            init = (zeros, zeros, jnp.zeros_like(wh), jnp.zeros_like(params["wx"]))
            (_, _, dwh, dwx), dz = lax.scan(
                step, init, (R._time_major(dy), cs, c_prev, gates, h_prev, xs), reverse=True)
            rows = dz.reshape(-1, dz.shape[-1])
            dx = R._time_major((rows @ params["wx"].T).reshape(*dz.shape[:2], -1))
            return {"wx": dwx, "wh": dwh, "b": jnp.sum(rows, axis=0)}, dx

        def step(carry, inputs):
            dh, dc = carry
            dy_t, c_t, c_before, g_t = inputs
            dz, dc = _gate_grads(dy_t + dh, dc, c_t, c_before, jnp.split(g_t, 4, -1))
            if kind == "four_matmuls":
                dh = sum(d @ w for d, w in zip(dz, whs_t))
            else:
                dh = jnp.concatenate(dz, axis=-1) @ wh.T
            return (dh, dc), jnp.concatenate(dz, axis=-1)

        _, dz = lax.scan(step, (zeros, zeros), (R._time_major(dy), cs, c_prev, gates),
                         reverse=True)
        return R._weight_grads(params, x, h_prev, dz)

    return Layer(library.init, forward, backward, name=f"lstm({kind})")


LSTM = ("library", "four_matmuls", "projection_inside", "accumulate")


def lstm_lm_with(kind):
    return jaxbp.serial(jaxbp.embedding(VOCAB, 64), lstm_variant(kind), jaxbp.dense(VOCAB))


# --------------------------------------------------------------------------- timing


def check(layer, shape):
    with jax.enable_x64(True):
        params, _ = layer.init(jax.random.key(0), shape)
        x = jax.random.normal(jax.random.key(1), (2, *shape), jnp.float64)
        report = jaxbp.check_gradients(layer, params, x)
    assert report.passed, str(report)


class Runner:
    def __init__(self, net, batch, grads, fused, steps):
        from jaxbp import train

        self.params, _ = net.init(jax.random.key(0), (TIME,))
        self.opt = optax.sgd(0.01)
        self.state = self.opt.init(self.params)
        n = batch * 8
        self.x = jax.random.randint(jax.random.key(1), (n, TIME), 0, VOCAB, "int32")
        self.y = jax.random.randint(jax.random.key(2), (n, TIME), 0, VOCAB, "int32")
        self.fused, self.steps, self.batch = fused, steps, batch
        if fused:
            self.fn = train.make_epoch(net, jaxbp.softmax_cross_entropy(), self.opt, grads,
                                       batch_size=batch, steps=steps)
        else:
            self.fn = train.make_step(net, jaxbp.softmax_cross_entropy(), self.opt, grads)
        self.run()

    def run(self):
        t0 = time.perf_counter()
        if self.fused:
            self.params, self.state, out = self.fn(self.params, self.state,
                                                   jax.random.key(3), self.x, self.y)
        else:
            for i in range(self.steps):
                sl = slice((i % 8) * self.batch, (i % 8 + 1) * self.batch)
                self.params, self.state, out = self.fn(self.params, self.state,
                                                       self.x[sl], self.y[sl])
        jax.block_until_ready(out)
        return (time.perf_counter() - t0) / self.steps * 1e3


def compare(title, nets, batch, rounds, steps):
    print(f"{title}: ms per step, median of {rounds} interleaved rounds of {steps} steps")
    runners = {(name, fused): Runner(net, batch, grads, fused, steps)
               for name, (net, grads) in nets.items() for fused in (False, True)}
    times = {k: [] for k in runners}
    keys = list(runners)
    for r in range(rounds):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            times[k].append(runners[k].run())
    for name in nets:
        loop = statistics.median(times[(name, False)])
        fused = statistics.median(times[(name, True)])
        print(f"  {name:28s} loop {loop:8.2f}   fused {fused:8.2f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("attention", "lstm"), default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"load average {open('/proc/loadavg').read().split()[0]}, "
          f"{jax.device_count()} {jax.default_backend()} device(s)")
    if args.only in (None, "attention"):
        for name, make in ATTENTION.items():
            check(make(2), (5, 4))
        nets = {f"attention {k}": (gpt_with(make), "manual")
                for k, make in ATTENTION.items()}
        nets["jax.grad (heads_major forward)"] = (gpt_with(jaxbp.causal_self_attention),
                                                  "autodiff")
        compare("W5 GPT, batch 16", nets, 16, args.rounds, args.steps)
    if args.only in (None, "lstm"):
        for kind in LSTM:
            check(lstm_variant(kind, 3), (4, 2))
        nets = {f"lstm {k}": (lstm_lm_with(k), "manual") for k in LSTM}
        nets["jax.grad (library forward)"] = (lstm_lm_with("library"), "autodiff")
        compare("W6 LSTM, batch 32", nets, 32, args.rounds, args.steps)


if __name__ == "__main__":
    main()
