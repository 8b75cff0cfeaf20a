"""Alternative formulations of the convolution and max-pool passes, timed side by side.

Each alternative is a complete jaxbp layer (forward beside hand-written backward); all
of them pass ``jaxbp.check_gradients`` first (correctness before speed), then a W4-like
CNN (28x28x1, batch 64: conv 3x3x8, relu, pool 2, conv 3x3x16, relu, pool 2, dense 10)
and the digits demo's CNN (8x8x1, batch 32: conv 3x3x32, pool, conv 3x3x64, pool) train
with each combination, as a per-step loop and inside ``lax.scan``, interleaved, medians
reported. ``jax.grad`` of the library's forward is timed alongside for reference.

    python benchmarks/formulations.py               # all combinations
    python benchmarks/formulations.py --quick       # fewer rounds

What the formulations are:

conv forward  ``conv``: ``lax.conv_general_dilated``;  ``patches``: the kh*kw shifted
              strided slices concatenated on the channel axis (im2col), one matmul;
              ``taps`` (one input channel only): the shifted slices times each
              offset's weights, summed elementwise;  ``auto``: the library's
              choice (``patches`` for windows of <= 32 values, else ``conv``).
conv dw       ``dimnums``: one convolution whose dimension numbers make the batch axis
              the contracted feature axis (``CHWN``/``IHWO``: no data movement
              asked for);  ``transposed``: the same convolution on operands transposed
              explicitly into the canonical NHWC/HWIO layouts;  ``patches``:
              ``patches.T @ dy``, one matmul.
conv dx       ``conv``: full correlation of the dilated ``dy`` with the flipped kernel;
              ``col2im``: ``dy @ w.T`` gives each patch's gradient, summed back into
              place with one ``lax.pad`` per kernel offset (im2col's transpose).
pool          ``argmax``: windows gathered on a trailing axis (reshape and transpose),
              ``argmax`` one-hot routes ``dy``;  ``slices``: one strided slice per
              window offset, the first maximum found by comparing the slices in order,
              ``dy`` placed back by interleaving (stack and reshape);  ``view``: the
              free reshape (b, oh, k, ow, k, c), forward a max over the window axes
              keeping x and y, backward finds the first maximum by comparison.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

import jaxbp
from jaxbp._core import Layer
from jaxbp.layers import conv as C

DN = ("NHWC", "HWIO", "NHWC")


# --------------------------------------------------------------------------- conv


def _pads(x_shape, ksize, padding):
    return C.explicit_padding(padding, x_shape[1:3], ksize, (1, 1))


def patches(x, ksize, pads):
    """(b, h', w', kh*kw*c): the stride-1 windows of ``x`` padded by ``pads``."""
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    oh = xp.shape[1] - ksize[0] + 1
    ow = xp.shape[2] - ksize[1] + 1
    cols = [xp[:, i:i + oh, j:j + ow, :] for i in range(ksize[0]) for j in range(ksize[1])]
    return jnp.concatenate(cols, axis=-1)


def dw_dimnums(x, dy, ksize, pads):
    return lax.conv_general_dilated(x, dy, (1, 1), pads,
                                    dimension_numbers=("CHWN", "IHWO", "HWNC"))


def dw_transposed(x, dy, ksize, pads):
    return C.conv_kernel_grad(x, dy, ksize, (1, 1), pads)


def dw_patches(x, dy, ksize, pads):
    p = patches(x, ksize, pads)
    k = p.shape[-1]
    dw = p.reshape(-1, k).T @ dy.reshape(-1, dy.shape[-1])
    return dw.reshape(*ksize, x.shape[-1], dy.shape[-1])


def dx_conv(dy, w, x_shape, pads):
    return C.conv_input_grad(dy, w, x_shape[1:3], (1, 1), pads)


def dx_col2im(dy, w, x_shape, pads):
    kh, kw, ci, co = w.shape
    dp = (dy.reshape(-1, co) @ w.reshape(-1, co).T).reshape(*dy.shape[:3], kh * kw, ci)
    hp = x_shape[1] + pads[0][0] + pads[0][1]
    wp = x_shape[2] + pads[1][0] + pads[1][1]
    oh, ow = dy.shape[1:3]
    dxp = jnp.zeros((x_shape[0], hp, wp, ci), dy.dtype)
    for t, (i, j) in enumerate(itertools.product(range(kh), range(kw))):
        cfg = [(0, 0, 0), (i, hp - i - oh, 0), (j, wp - j - ow, 0), (0, 0, 0)]
        dxp = dxp + lax.pad(dp[:, :, :, t, :], jnp.zeros((), dy.dtype), cfg)
    (t0, _), (l0, _) = pads
    return dxp[:, t0:t0 + x_shape[1], l0:l0 + x_shape[2], :]


class ConvRes(NamedTuple):
    x: jax.Array


def conv_layer(features, ksize=(3, 3), padding="SAME", fwd="conv", dw="transposed",
               dx="conv"):
    """A stride-1 2-D convolution built from the chosen formulations."""
    dws = {"dimnums": dw_dimnums, "transposed": dw_transposed, "patches": dw_patches}
    dxs = {"conv": dx_conv, "col2im": dx_col2im}
    base = jaxbp.conv2d(features, ksize, padding=padding)

    def forward(params, x):
        w = params["w"]
        pads = _pads(x.shape, ksize, padding)
        if fwd == "conv":
            y = lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)
        elif fwd == "auto":
            y = C.conv_forward(x, w, (1, 1), pads)
        elif fwd == "taps" and x.shape[-1] == 1:
            y = sum(xs * w[i, j].reshape(1, 1, 1, -1) for (i, j), xs in zip(
                itertools.product(range(ksize[0]), range(ksize[1])),
                C.window_slices(x, ksize, (1, 1), pads)))
        elif fwd == "taps":
            y = lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)
        else:
            p = patches(x, ksize, pads)
            y = (p.reshape(-1, p.shape[-1]) @ w.reshape(-1, w.shape[-1])).reshape(
                *p.shape[:3], w.shape[-1])
        return y + params["b"].reshape(1, 1, 1, -1), ConvRes(x)

    def backward(params, res, dy):
        pads = _pads(res.x.shape, ksize, padding)
        grads = {"w": dws[dw](res.x, dy, ksize, pads), "b": jnp.sum(dy, axis=(0, 1, 2))}
        return grads, dxs[dx](dy, params["w"], res.x.shape, pads)

    return Layer(base.init, forward, backward, name=f"conv[{fwd},{dw},{dx}]")


# --------------------------------------------------------------------------- pool


class PoolRes(NamedTuple):
    first: tuple  # one bool mask per window offset: that offset holds the first maximum


def pool_slices(window=2):
    """Non-overlapping max-pool (stride = window) from one strided slice per offset."""
    base = jaxbp.max_pool2d(window)
    k = window

    def forward(params, x):
        del params
        oh, ow = x.shape[1] // k, x.shape[2] // k
        xs = [x[:, i:i + k * oh:k, j:j + k * ow:k, :] for i in range(k) for j in range(k)]
        y = functools_reduce(jnp.maximum, xs)
        taken = jnp.zeros(y.shape, bool)
        first = []
        for xi in xs:
            m = (xi == y) & ~taken
            taken = taken | m
            first.append(m)
        return y, PoolRes(tuple(first))

    def backward(params, res, dy):
        del params
        parts = [jnp.where(m, dy, jnp.zeros((), dy.dtype)) for m in res.first]
        b, oh, ow, c = dy.shape
        # (b, oh, k, ow, k, c) -> (b, oh*k, ow*k, c): offsets interleaved back in place
        stacked = jnp.stack(parts, axis=0).reshape(k, k, b, oh, ow, c)
        dx = stacked.transpose(2, 3, 0, 4, 1, 5).reshape(b, oh * k, ow * k, c)
        return (), dx

    return Layer(base.init, forward, backward, name="pool[slices]")


def functools_reduce(f, xs):
    out = xs[0]
    for v in xs[1:]:
        out = f(out, v)
    return out


class ViewRes(NamedTuple):
    x: jax.Array  # the input
    y: jax.Array  # the pooled output


def pool_view(window=2):
    """Non-overlapping max-pool on the free reshape ``(b, oh, k, ow, k, c)``: forward is
    one max over the two window axes and keeps ``x`` and ``y``; backward finds each
    window's first maximum (smallest row-major offset among the entries equal to ``y``)
    and routes ``dy`` there."""
    base = jaxbp.max_pool2d(window)
    k = window

    def view(x):
        b, h, w, c = x.shape
        oh, ow = h // k, w // k
        return x[:, :oh * k, :ow * k, :].reshape(b, oh, k, ow, k, c)

    def forward(params, x):
        del params
        y = jnp.max(view(x), axis=(2, 4))
        return y, ViewRes(x, y)

    def backward(params, res, dy):
        del params
        x, y = res
        xr = view(x)
        offset = (jnp.arange(k, dtype=jnp.int32)[:, None] * k
                  + jnp.arange(k, dtype=jnp.int32)[None, :]).reshape(1, 1, k, 1, k, 1)
        hit = xr == y[:, :, None, :, None, :]
        first = jnp.min(jnp.where(hit, offset, k * k), axis=(2, 4), keepdims=True)
        dxr = jnp.where(offset == first, dy[:, :, None, :, None, :],
                        jnp.zeros((), dy.dtype))
        b, oh, _, ow, _, c = dxr.shape
        dx = dxr.reshape(b, oh * k, ow * k, c)
        tail = [(0, 0, 0), (0, x.shape[1] - oh * k, 0), (0, x.shape[2] - ow * k, 0),
                (0, 0, 0)]
        return (), lax.pad(dx, jnp.zeros((), dy.dtype), tail)

    return Layer(base.init, forward, backward, name="pool[view]")


def pool_layer(kind):
    return {"argmax": lambda: jaxbp.max_pool2d(2), "slices": lambda: pool_slices(2),
            "view": lambda: pool_view(2)}[kind]()


# --------------------------------------------------------------------------- timing


def cnn(conv_cfg, pool_kind, f1=8, f2=16):
    return jaxbp.serial(conv_layer(f1, **conv_cfg), jaxbp.relu(), pool_layer(pool_kind),
                        conv_layer(f2, **conv_cfg), jaxbp.relu(), pool_layer(pool_kind),
                        jaxbp.flatten(), jaxbp.dense(10))


def check(layer, shape):
    with jax.enable_x64(True):
        params, _ = layer.init(jax.random.key(0), shape)
        x = jax.random.normal(jax.random.key(1), (2, *shape), jnp.float64)
        report = jaxbp.check_gradients(layer, params, x)
    assert report.passed, f"{layer.name}: {report}"


def time_net(net, input_shape, batch, grads, rounds, seconds):
    loss = jaxbp.softmax_cross_entropy()
    opt = optax.sgd(0.01)
    params, _ = net.init(jax.random.key(0), input_shape)
    n = 8
    xs = jax.random.normal(jax.random.key(1), (n * batch, *input_shape), jnp.float32)
    ys = jax.random.randint(jax.random.key(2), (n * batch,), 0, 10)
    batches = [(xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch])
               for i in range(n)]
    step = jaxbp.train.make_step(net, loss, opt, grads)
    p, s = jax.tree.map(jnp.array, params), opt.init(params)
    p, s, v = step(p, s, *batches[0])
    v.block_until_ready()
    t0 = time.perf_counter()
    p, s, v = step(p, s, *batches[1])
    v.block_until_ready()
    k = int(min(max(seconds / (time.perf_counter() - t0), 4), 5000))
    epoch = jaxbp.train.make_epoch(net, loss, opt, grads, batch_size=batch, steps=k)
    q, r = jax.tree.map(jnp.array, params), opt.init(params)
    q, r, _ = epoch(q, r, jax.random.key(3), xs, ys)
    state = {"p": p, "s": s, "q": q, "r": r, "key": jax.random.key(4)}

    def loop():
        t = time.perf_counter()
        for i in range(k):
            state["p"], state["s"], v = step(state["p"], state["s"], *batches[i % n])
        v.block_until_ready()
        return (time.perf_counter() - t) / k

    def fused():
        state["key"], sub = jax.random.split(state["key"])
        t = time.perf_counter()
        state["q"], state["r"], losses = epoch(state["q"], state["r"], sub, xs, ys)
        losses.block_until_ready()
        return (time.perf_counter() - t) / k

    return loop, fused


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="substring filter on config names")
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.1) if args.quick else (7, 0.3)

    conv_cfgs = {
        "conv/dimnums/conv": dict(fwd="conv", dw="dimnums", dx="conv"),
        "conv/transposed/conv": dict(fwd="conv", dw="transposed", dx="conv"),
        "conv/patches/conv": dict(fwd="conv", dw="patches", dx="conv"),
        "patches/patches/conv": dict(fwd="patches", dw="patches", dx="conv"),
        "patches/transposed/conv": dict(fwd="patches", dw="transposed", dx="conv"),
        "conv/transposed/col2im": dict(fwd="conv", dw="transposed", dx="col2im"),
        "taps(1 channel)+conv/transposed/conv": dict(fwd="taps", dw="transposed",
                                                     dx="conv"),
        "auto/transposed/conv": dict(fwd="auto", dw="transposed", dx="conv"),
    }
    for name, cfg in conv_cfgs.items():
        check(conv_layer(3, (3, 2), **cfg), (5, 4, 2))
        check(conv_layer(3, (3, 2), **cfg), (5, 4, 1))
    check(pool_slices(2), (4, 6, 3))
    check(pool_view(2), (5, 6, 3))
    print("every formulation passes check_gradients (float64, vs jax.vjp and finite "
          "differences)")

    nets = {"W4 28x28x1 b64": ((28, 28, 1), 64, 8, 16),
            "digits 8x8x1 b32": ((8, 8, 1), 32, 32, 64)}
    for net_name, (shape, batch, f1, f2) in nets.items():
        timers = {}
        for (cname, ccfg), pool in itertools.product(conv_cfgs.items(),
                                                     ("argmax", "slices", "view")):
            name = f"{cname} + pool {pool}"
            if args.only and args.only not in name:
                continue
            loop, fused = time_net(cnn(ccfg, pool, f1, f2), shape, batch, "manual",
                                   rounds, seconds)
            timers[f"manual {name}"] = (loop, fused)
        lib = jaxbp.serial(jaxbp.conv2d(f1, 3, padding="SAME"), jaxbp.relu(),
                           jaxbp.max_pool2d(2), jaxbp.conv2d(f2, 3, padding="SAME"),
                           jaxbp.relu(), jaxbp.max_pool2d(2), jaxbp.flatten(),
                           jaxbp.dense(10))
        timers["manual jaxbp layers"] = time_net(lib, shape, batch, "manual", rounds,
                                                 seconds)
        timers["jax.grad of jaxbp forward"] = time_net(lib, shape, batch, "autodiff",
                                                       rounds, seconds)
        samples = {k: ([], []) for k in timers}
        order = list(timers)
        for r in range(rounds):
            for k in (order if r % 2 == 0 else order[::-1]):
                samples[k][0].append(timers[k][0]())
                samples[k][1].append(timers[k][1]())
        print(f"\n{net_name}: ms per step, median of {rounds} interleaved rounds")
        print(f"  {'formulation':62s}{'loop':>8s}{'scan':>8s}")
        for k in order:
            lo, fu = (1e3 * statistics.median(v) for v in samples[k])
            print(f"  {k:62s}{lo:8.3f}{fu:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
