"""``jaxbp bench``: the hand-written backward against ``jax.grad`` (and PyTorch eager),
side by side in one run.

Workloads:

* **W1**: document 000's 3-2-3-2 sigmoid network, one example, SGD 0.7 (dispatch-bound);
* **W2**: MLP 64-128-64-10 (relu), batch 128, softmax cross-entropy;
* **W3**: MLP 784-1024-1024-10 (relu), batch 512: matmul-bound, reported in GFLOP/s
  against a matmul peak measured in the same run;
* **W4**: CNN on 28x28x1, batch 64: conv 3x3x8 SAME, relu, max-pool 2, conv 3x3x16
  SAME, relu, max-pool 2, dense 10.
* **W7**: residual CNN on 28x28x1, batch 64, in training mode (batch statistics, a
  fresh dropout mask every step): conv 3x3x8, batch norm, relu, a residual block (conv,
  batch norm, relu, conv, batch norm), relu, max-pool 2, the same at 16 channels,
  global average pool, dropout 0.2, dense 10; convolutions before a norm without bias.
* **W5**: the character-level GPT of ``jaxbp demo gpt`` (2 blocks, 4 heads, 128
  features, 96 symbols), 64 characters of context, batch 16.
* **W6**: an LSTM language model (embedding 64, 256 units, dense to 96 symbols), 64
  steps, batch 32.

For each workload and each gradient (``manual``: the layers' backward passes;
``autodiff``: ``jax.grad`` of the same forward) it times the per-step loop (one
compiled :func:`jaxbp.train.make_step` call per minibatch from Python, the rows
gathered on the host, as ``fit(fused=False)`` does) and the fused form
(:func:`jaxbp.train.make_epoch`: many steps in one ``lax.scan``, shuffling and
gathering on the device); both draw the same shuffled minibatches. It also times the
first call of each (tracing plus compilation: the first call's time less a later
call's). Repetitions are interleaved round by round (manual, autodiff, PyTorch, ...;
the order alternates between rounds) and the medians reported, so that a machine's
drift hits every contender alike. PyTorch eager runs the same networks in the per-step
rounds when ``torch`` is importable (it is never a dependency), one pre-made batch per
step, as its loops usually run, with its default threads and with one thread; W4 and
W7 also in PyTorch's faster CPU layout, ``channels_last``. W3's rounds also time the
square matmul peak and the step's own matmuls run alone.

Timings are only meaningful on a quiet machine; the tests never assert on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated subset of " + ",".join(WORKLOADS)
                             + " (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="few, short repetitions (a smoke test, not a measurement)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved rounds per measurement (default 7, quick 2)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="target seconds per timed block (default 0.25, quick 0.02)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip PyTorch even when it is installed")


# --------------------------------------------------------------------------- workloads


@dataclasses.dataclass
class Workload:
    """One benchmark network with its data and optimizer."""

    name: str
    title: str
    net: Any
    loss: Any
    input_shape: tuple
    batch: int
    optimizer: Any
    params: Any
    make_batches: Callable  # (key, count) -> (x (count, batch, ...), y (count, batch, ...))
    flops: float | None = None  # per training step, matmul and convolution FLOPs
    torch_model: Callable | None = None  # (torch, channels_last) -> (module, loss_fn, lr)


def _classification_batches(input_shape, batch, classes=10):
    import jax

    from jaxbp._random import flat

    def make(key, count):
        kx, ky = jax.random.split(key)
        x = flat(jax.random.normal, kx, (count, batch, *input_shape), "float32")
        y = flat(jax.random.randint, ky, (count, batch), 0, classes, "int32")
        return x, y

    return make


def build_workloads(names) -> list[Workload]:
    import jax
    import numpy as np
    import optax

    import jaxbp

    out = []
    for name in names:
        key = jax.random.key(int(name[1:]))
        if name == "W1":
            ex = jaxbp.notes.load("000")
            params = jax.tree.map(lambda a: np.asarray(a, np.float32), ex.params)
            x0 = np.asarray(ex.x, np.float32)
            t0 = np.asarray(ex.target, np.float32)

            def make(key, count, x0=x0, t0=t0):
                del key
                return (np.broadcast_to(x0, (count, *x0.shape)).copy(),
                        np.broadcast_to(t0, (count, *t0.shape)).copy())

            out.append(Workload(
                "W1", "doc 000 net 3-2-3-2 sigmoid, 1 example", ex.net, ex.loss, (3,), 1,
                optax.sgd(ex.learning_rate), params, make, None, _torch_w1))
        elif name == "W2":
            net = jaxbp.serial(jaxbp.dense(128), jaxbp.relu(), jaxbp.dense(64),
                               jaxbp.relu(), jaxbp.dense(10))
            params, _ = net.init(key, (64,))
            out.append(Workload(
                "W2", "MLP 64-128-64-10, batch 128", net, jaxbp.softmax_cross_entropy(),
                (64,), 128, optax.sgd(0.01), params, _classification_batches((64,), 128),
                _mlp_flops((64, 128, 64, 10), 128), _torch_mlp((64, 128, 64, 10))))
        elif name == "W3":
            net = jaxbp.serial(jaxbp.dense(1024), jaxbp.relu(), jaxbp.dense(1024),
                               jaxbp.relu(), jaxbp.dense(10))
            params, _ = net.init(key, (784,))
            out.append(Workload(
                "W3", "MLP 784-1024-1024-10, batch 512", net,
                jaxbp.softmax_cross_entropy(), (784,), 512, optax.sgd(0.01), params,
                _classification_batches((784,), 512), _mlp_flops((784, 1024, 1024, 10), 512),
                _torch_mlp((784, 1024, 1024, 10))))
        elif name == "W4":
            net = jaxbp.serial(jaxbp.conv2d(8, 3, padding="SAME"), jaxbp.relu(),
                               jaxbp.max_pool2d(2), jaxbp.conv2d(16, 3, padding="SAME"),
                               jaxbp.relu(), jaxbp.max_pool2d(2), jaxbp.flatten(),
                               jaxbp.dense(10))
            params, _ = net.init(key, (28, 28, 1))
            out.append(Workload(
                "W4", "CNN 28x28x1 conv8-pool-conv16-pool-dense10, batch 64", net,
                jaxbp.softmax_cross_entropy(), (28, 28, 1), 64, optax.sgd(0.01), params,
                _classification_batches((28, 28, 1), 64), _cnn_flops(64), _torch_w4))
        elif name == "W7":
            net = _resnet_w7()
            params, _ = net.init(key, (28, 28, 1))
            out.append(Workload(
                "W7", "residual CNN 28x28x1 conv8-res8-pool-conv16-res16, batch norm, "
                "dropout, batch 64", net, jaxbp.softmax_cross_entropy(), (28, 28, 1), 64,
                optax.sgd(0.01), params, _classification_batches((28, 28, 1), 64),
                _resnet_flops(64), _torch_w7))
        elif name in ("W5", "W6"):
            out.append(_sequence_workload(name, key))
        else:
            raise ValueError(f"--workloads: unknown workload {name!r}, expected some of "
                             f"{', '.join(WORKLOADS)}")
    return out


VOCAB = 96  # about the printable ASCII characters: the character-level demos' size


def _token_batches(time, batch, vocab=VOCAB):
    import jax

    from jaxbp._random import flat

    def make(key, count):
        kx, ky = jax.random.split(key)
        x = flat(jax.random.randint, kx, (count, batch, time), 0, vocab, "int32")
        y = flat(jax.random.randint, ky, (count, batch, time), 0, vocab, "int32")
        return x, y

    return make


def _sequence_workload(name, key):
    """W5 (the GPT) and W6 (the LSTM), next-character prediction on random ids."""
    import optax

    import jaxbp
    from jaxbp import models

    time, batch = 64, (16 if name == "W5" else 32)
    if name == "W5":
        net = models.gpt(VOCAB, context=time, features=128, blocks=2, heads=4)
        title = "GPT 2 blocks, 4 heads, 128 features, 64 chars, batch 16"
    else:
        net = models.lstm_language_model(VOCAB, features=256, embed=64)
        title = "LSTM 256 units (embedding 64), 64 steps, batch 32"
    params, _ = net.init(key, (time,))
    return Workload(name, title, net, jaxbp.softmax_cross_entropy(), (time,), batch,
                    optax.sgd(0.01), params, _token_batches(time, batch), None,
                    _torch_gpt if name == "W5" else _torch_lstm)


def _mlp_flops(sizes, batch):
    """Forward, weight gradients, and input gradients of every layer but the first."""
    mm = [2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return float(3 * sum(mm) - mm[0])


def _resnet_w7():
    import jaxbp

    def conv(features):
        return jaxbp.conv2d(features, 3, padding="SAME", bias=False)

    def block(features):
        return jaxbp.residual(conv(features), jaxbp.batch_norm(), jaxbp.relu(),
                              conv(features), jaxbp.batch_norm())

    return jaxbp.serial(conv(8), jaxbp.batch_norm(), jaxbp.relu(), block(8), jaxbp.relu(),
                        jaxbp.max_pool2d(2), conv(16), jaxbp.batch_norm(), jaxbp.relu(),
                        block(16), jaxbp.relu(), jaxbp.global_avg_pool(),
                        jaxbp.dropout(0.2), jaxbp.dense(10))


def _resnet_flops(batch):
    """W7's convolutions and dense layer: forward, kernel and input gradients (none for
    the first convolution's input)."""
    first = 2 * batch * 28 * 28 * 9 * 1 * 8
    rest = 2 * batch * (2 * 28 * 28 * 9 * 8 * 8 + 14 * 14 * 9 * 8 * 16
                        + 2 * 14 * 14 * 9 * 16 * 16) + 2 * batch * 16 * 10
    return float(3 * (first + rest) - first)


def _cnn_flops(batch):
    conv1 = 2 * batch * 28 * 28 * 9 * 1 * 8
    conv2 = 2 * batch * 14 * 14 * 9 * 8 * 16
    dense = 2 * batch * 7 * 7 * 16 * 10
    return float(3 * (conv1 + conv2 + dense) - conv1)


# --------------------------------------------------------------------------- timing


def _median(values):
    return statistics.median(values) if values else float("nan")


class _Runner:
    """A compiled step or epoch with its own params/opt_state chain (donated each call)."""

    def __init__(self, w: Workload, grads: str, fused: bool, steps: int, data):
        import jax
        import jax.numpy as jnp
        import numpy as np

        from jaxbp import train
        from jaxbp._core import to_device

        self.fused, self.steps = fused, steps
        self.params = jax.tree.map(jnp.array, w.params)
        self.state = w.optimizer.init(self.params)
        # Dropout and batch norm (W7): the steps thread the network's state and take a
        # fresh key each (split beforehand, outside the timed calls).
        self.stateful = w.net.apply is not None
        if self.stateful:
            from jaxbp import init_state

            self.net_state = init_state(w.net, self.params)
            self.step_keys = list(jax.random.split(jax.random.key(1), 1024))
        if not fused:
            # As fit(fused=False) runs it: the minibatches of make_epoch's shuffling,
            # rows gathered on the host and sent with each call.
            self.x = np.asarray(data[0]).reshape(-1, *data[0].shape[2:])
            self.y = np.asarray(data[1]).reshape(-1, *data[1].shape[2:])
            self.order = np.asarray(train.minibatch_indices(
                jax.random.key(0), len(self.x), w.batch, steps=1024))
            self.i = 0
        t0 = time.perf_counter()
        if fused:
            self.fn = train.make_epoch(w.net, w.loss, w.optimizer, grads,
                                       batch_size=w.batch, steps=steps,
                                       with_state=self.stateful)
            self.x = to_device(data[0].reshape(-1, *data[0].shape[2:]))
            self.y = to_device(data[1].reshape(-1, *data[1].shape[2:]))
            self.key = jax.random.key(0)
        else:
            self.fn = train.make_step(w.net, w.loss, w.optimizer, grads,
                                      with_state=self.stateful)
        self._call(1)
        first = time.perf_counter() - t0
        # The first call traces, compiles and runs once; a second call only runs.
        self.first_call_s = max(first - self.time_per_step(1) * (steps if fused else 1), 0.0)

    def _call(self, n):
        import jax

        if self.fused:
            self.key, sub = jax.random.split(self.key)
            if self.stateful:
                self.params, self.net_state, self.state, losses = self.fn(
                    self.params, self.net_state, self.state, sub, self.x, self.y)
            else:
                self.params, self.state, losses = self.fn(self.params, self.state, sub,
                                                          self.x, self.y)
            jax.block_until_ready(losses)
            return self.steps
        value = None
        for _ in range(n):
            idx = self.order[self.i % len(self.order)]
            self.i += 1
            if self.stateful:
                self.params, self.net_state, self.state, value = self.fn(
                    self.params, self.net_state, self.state, self.x[idx], self.y[idx],
                    self.step_keys[self.i % len(self.step_keys)])
            else:
                self.params, self.state, value = self.fn(self.params, self.state,
                                                         self.x[idx], self.y[idx])
        jax.block_until_ready(value)
        return n

    def time_per_step(self, n) -> float:
        t0 = time.perf_counter()
        done = self._call(n)
        return (time.perf_counter() - t0) / done


def _warm_up():
    """Runs JAX's one-time set-up (the first compilation, the key machinery), so that
    the first runner's compile time is its own."""
    import jax
    import jax.numpy as jnp

    from jaxbp import train

    jax.block_until_ready(train.minibatch_indices(jax.random.key(0), 8, 2, steps=3))
    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.zeros(2)))


class _MatmulRunner:
    """A float32 square matmul ``a @ b`` of size ``n`` under ``jit``: one contender of
    W3's rounds (its time per call gives the machine's matmul peak)."""

    def __init__(self, n: int):
        import jax

        from jaxbp import _random

        self.n = n
        self.a = _random.normal(jax.random.key(0), (n, n), "float32")
        self.b = _random.normal(jax.random.key(1), (n, n), "float32")
        self.f = jax.jit(lambda a, b: a @ b)
        self.f(self.a, self.b).block_until_ready()

    def time_per_step(self, reps) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            out = self.f(self.a, self.b)
        out.block_until_ready()
        return (time.perf_counter() - t0) / reps

    def gflops(self, seconds_per_call: float) -> float:
        return 2 * self.n ** 3 / seconds_per_call / 1e9


class _MatmulBoundRunner:
    """The MLP step's matmuls run alone, one compiled call each: forward ``x @ w``,
    weight gradients ``x.T @ dy`` and input gradients ``dy @ w.T`` (all but the first
    layer's), the shapes of ``w``'s training step; a time per step is their sum."""

    def __init__(self, w):
        import jax

        from jaxbp import _random

        sizes = [w.input_shape[0]] + [leaf.shape[1] for leaf in jax.tree.leaves(w.params)
                                      if leaf.ndim == 2]
        b, stream = w.batch, iter(range(64))

        def normal(*shape):
            return _random.normal(jax.random.key(0), shape, "float32", stream=next(stream))

        self.calls = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            x, wt, dy = normal(b, n_in), normal(n_in, n_out), normal(b, n_out)
            self.calls.append((jax.jit(lambda x, wt: x @ wt), (x, wt)))
            self.calls.append((jax.jit(lambda x, dy: x.T @ dy), (x, dy)))
            if i:
                self.calls.append((jax.jit(lambda dy, wt: dy @ wt.T), (dy, wt)))
        for f, args in self.calls:
            f(*args).block_until_ready()

    def time_per_step(self, n) -> float:
        total = 0.0
        for f, args in self.calls:
            t0 = time.perf_counter()
            for _ in range(n):
                out = f(*args)
            out.block_until_ready()
            total += (time.perf_counter() - t0) / n
        return total


def bench_workload(w: Workload, repeats: int, seconds: float, log=print,
                   extra: dict | None = None) -> dict:
    """Interleaved medians for one workload: per-step loop and fused, both gradients.

    ``extra``: more contenders for the per-step rounds, ``name -> runner`` (anything
    with ``time_per_step(n)``: PyTorch, the matmul peak), timed in the same rounds as
    the JAX steps, so that a machine's drift hits all alike; their median seconds per
    step come back in ``result["extra"][name]``."""
    import jax

    data = w.make_batches(jax.random.key(100), 8)
    _warm_up()
    runners = {}
    for grads in ("manual", "autodiff"):
        runners[(grads, False)] = _Runner(w, grads, False, 0, data)
    # Calibrate: how many steps fill `seconds` (the slower gradient decides).
    per_step = max(runners[(g, False)].time_per_step(3) for g in ("manual", "autodiff"))
    n_loop = int(min(max(seconds / max(per_step, 1e-7), 3), 20000))
    n_fused = int(min(max(seconds / max(per_step, 1e-7), 8), 20000))
    for grads in ("manual", "autodiff"):
        runners[(grads, True)] = _Runner(w, grads, True, n_fused, data)
    counts = {k: n_loop for k in runners}
    for name, runner in (extra or {}).items():  # each its own count to fill `seconds`
        runners[name] = runner
        counts[name] = int(min(max(seconds / max(runner.time_per_step(1), 1e-7), 1), 20000))
    times = {k: [] for k in runners}
    for fused in (False, True):  # each mode's rounds apart, so that modes do not mix
        order = [("manual", fused), ("autodiff", fused)]
        if not fused:
            order += list(extra or {})
        for r in range(repeats):
            for k in (order if r % 2 == 0 else order[::-1]):
                times[k].append(runners[k].time_per_step(counts[k]))
    result = {"title": w.title, "batch": w.batch, "steps_loop": n_loop,
              "steps_fused": n_fused}
    for grads in ("manual", "autodiff"):
        loop, fused = _median(times[(grads, False)]), _median(times[(grads, True)])
        result[grads] = {
            "loop_steps_per_s": 1.0 / loop, "fused_steps_per_s": 1.0 / fused,
            "loop_ms_per_step": 1e3 * loop, "fused_ms_per_step": 1e3 * fused,
            "loop_first_call_s": runners[(grads, False)].first_call_s,
            "fused_first_call_s": runners[(grads, True)].first_call_s,
            "loop_samples_ms": [1e3 * t for t in times[(grads, False)]],
            "fused_samples_ms": [1e3 * t for t in times[(grads, True)]],
        }
        if w.flops:
            result[grads]["loop_gflops"] = w.flops / loop / 1e9
            result[grads]["fused_gflops"] = w.flops / fused / 1e9
    for mode in ("loop", "fused"):
        result[f"ratio_{mode}"] = (result["manual"][f"{mode}_ms_per_step"]
                                   / result["autodiff"][f"{mode}_ms_per_step"])
    for grads in ("manual", "autodiff"):
        result[f"fused_over_loop_{grads}"] = (result[grads]["fused_ms_per_step"]
                                              / result[grads]["loop_ms_per_step"])
    result["flops_per_step"] = w.flops
    result["extra"] = {name: times[name] for name in (extra or {})}
    return result


# --------------------------------------------------------------------------- PyTorch


def _torch_w1(torch, channels_last):
    del channels_last
    import numpy as np

    import jaxbp

    ex = jaxbp.notes.load("000")
    dims = [(3, 2), (2, 3), (3, 2)]
    layers = []
    dense = [p for p in ex.params if p != ()]
    for (a, b), p in zip(dims, dense):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.asarray(p["w"], np.float32).T))
            lin.bias.copy_(torch.tensor(np.asarray(p["b"], np.float32)))
        layers += [lin, torch.nn.Sigmoid()]

    def half_mse(out, target):
        return 0.5 * ((out - target) ** 2).sum(dim=1).mean()

    return torch.nn.Sequential(*layers), half_mse, ex.learning_rate


def _torch_mlp(sizes):
    def build(torch, channels_last):
        del channels_last
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers), torch.nn.CrossEntropyLoss(), 0.01

    return build


def _torch_w4(torch, channels_last):
    del channels_last
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    return model, nn.CrossEntropyLoss(), 0.01


def _torch_w7(torch, channels_last):
    del channels_last
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.branch = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(c, momentum=0.1), nn.ReLU(),
                                        nn.Conv2d(c, c, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(c, momentum=0.1))

        def forward(self, x):
            return x + self.branch(x)

    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                          nn.ReLU(), Residual(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                          nn.ReLU(), Residual(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 10))
    return model, nn.CrossEntropyLoss(), 0.01


def _sequence_loss(torch):
    cross_entropy = torch.nn.CrossEntropyLoss()

    def loss(logits, y):  # the mean over every position, as jaxbp's
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long())

    return loss


def _torch_gpt(torch, channels_last):
    """W5's GPT in PyTorch: the same blocks (pre-norm, tanh GELU), attention through
    ``scaled_dot_product_attention(is_causal=True)``, PyTorch's fastest eager form."""
    del channels_last
    nn, functional = torch.nn, torch.nn.functional
    features, heads, time = 128, 4, 64

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(features), nn.LayerNorm(features)
            self.qkv, self.proj = nn.Linear(features, 3 * features), nn.Linear(features,
                                                                              features)
            self.mlp = nn.Sequential(nn.Linear(features, 4 * features),
                                     nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * features, features))

        def forward(self, x):
            b, t, f = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(f, dim=-1)
            q, k, v = (a.view(b, t, heads, f // heads).transpose(1, 2) for a in (q, k, v))
            o = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(o.transpose(1, 2).reshape(b, t, f))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, features)
            self.position = nn.Parameter(0.02 * torch.randn(time, features))
            self.blocks = nn.Sequential(Block(), Block())
            self.ln = nn.LayerNorm(features)
            self.head = nn.Linear(features, VOCAB)

        def forward(self, ids):
            x = self.embed(ids.long()) + self.position[:ids.shape[1]]
            return self.head(self.ln(self.blocks(x)))

    return GPT(), _sequence_loss(torch), 0.01


def _torch_lstm(torch, channels_last):
    del channels_last
    nn = torch.nn

    class LSTMLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, 64)
            self.lstm = nn.LSTM(64, 256, batch_first=True)
            self.head = nn.Linear(256, VOCAB)

        def forward(self, ids):
            return self.head(self.lstm(self.embed(ids.long()))[0])

    return LSTMLanguageModel(), _sequence_loss(torch), 0.01


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class _TorchRunner:
    """PyTorch eager training steps (SGD) on the same network and batches: one
    contender of a workload's rounds. ``threads``: this many intra-op threads while
    it runs (restored after each block); PyTorch's default uses every core, which
    collapses when the machine is busy, so the table also shows a 1-thread row."""

    def __init__(self, w: Workload, channels_last: bool = False, threads: int | None = None):
        import numpy as np
        import torch

        import jax

        self.torch, self.threads = torch, threads
        torch.manual_seed(0)
        model, self.loss_fn, lr = w.torch_model(torch, channels_last)
        x, y = (np.asarray(a) for a in w.make_batches(jax.random.key(100), 8))
        if x.ndim == 5:  # (count, batch, h, w, c) -> NCHW
            x = x.transpose(0, 1, 4, 2, 3)
        self.xs = [torch.from_numpy(np.array(x[i])) for i in range(len(x))]
        self.ys = [torch.from_numpy(np.ascontiguousarray(
            y[i].astype(np.int64) if y.dtype.kind == "i" else y[i])) for i in range(len(y))]
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            self.xs = [t.contiguous(memory_format=torch.channels_last) for t in self.xs]
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=lr)
        self.time_per_step(3)  # warm-up: PyTorch's first calls allocate

    def time_per_step(self, n) -> float:
        torch = self.torch
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            t0 = time.perf_counter()
            for i in range(n):
                self.opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(self.model(self.xs[i % len(self.xs)]),
                                    self.ys[i % len(self.ys)])
                loss.backward()
                self.opt.step()
            return (time.perf_counter() - t0) / n
        finally:
            self.used_threads = torch.get_num_threads()
            torch.set_num_threads(before)

    def summary(self, samples) -> dict:
        return {"ms_per_step": 1e3 * _median(samples), "steps_per_s": 1.0 / _median(samples),
                "samples_ms": [1e3 * t for t in samples], "threads": self.used_threads,
                "version": self.torch.__version__}


# --------------------------------------------------------------------------- report


def machine_info() -> dict:
    import jax

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": datetime.date.today().isoformat(), "cpu": cpu,
            "cores": os.cpu_count(), "load": load_average(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend(), "devices": jax.device_count()}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def load_warning(cores) -> str | None:
    """A warning when the machine is busier than its cores: timings are then slow,
    and PyTorch's multi-threaded ones collapse first."""
    load = load_average()
    if load and cores and load[0] > cores:
        return (f"warning: load average {load[0]:.2f} on {cores} cores: the machine is "
                f"busy, these timings are slower than its own and PyTorch's multi-threaded "
                f"ones the most (see the 1-thread column)")
    return None


def format_table(results: dict) -> str:
    """The side-by-side table: steps/s, ratios, first-call times, PyTorch, notes."""
    head = (f"{'':4s}{'mode':7s}{'manual/s':>10s}{'autodiff/s':>12s}{'man/auto':>10s}"
            f"{'compile m/a (s)':>17s}{'torch/s':>10s}{'torch CL/s':>12s}{'torch 1t/s':>12s}"
            f"{'man/torch':>11s}")
    lines = [head, "-" * len(head)]
    for name, r in results["workloads"].items():
        m, a = r["manual"], r["autodiff"]
        for mode in ("loop", "fused"):
            cells = ["", "", "", ""]
            if mode == "loop" and "torch" in r:
                torch_runs = [r[k] for k in ("torch", "torch_channels_last", "torch_1thread")
                              if k in r]
                best = min(t["ms_per_step"] for t in torch_runs)
                mine = min(m["loop_ms_per_step"], m["fused_ms_per_step"])
                cells = [_rate(r['torch']['steps_per_s']),
                         _rate(r['torch_channels_last']['steps_per_s'])
                         if "torch_channels_last" in r else "",
                         _rate(r['torch_1thread']['steps_per_s'])
                         if "torch_1thread" in r else "", f"{mine / best:.2f}"]
            lines.append(
                f"{name if mode == 'loop' else '':4s}{mode:7s}"
                f"{_rate(m[f'{mode}_steps_per_s']):>10s}{_rate(a[f'{mode}_steps_per_s']):>12s}"
                f"{r[f'ratio_{mode}']:10.2f}"
                f"{m[f'{mode}_first_call_s']:11.2f} /{a[f'{mode}_first_call_s']:4.1f}"
                f"{cells[0]:>10s}{cells[1]:>12s}{cells[2]:>12s}{cells[3]:>11s}")
    lines += [
        "",
        "man/auto: time per step of the hand-written backward / of jax.grad (<= 1.00: at "
        "least as fast).",
        "loop: one compiled step per call from Python, minibatch rows gathered on the "
        "host (as fit(fused=False));",
        "fused: make_epoch, all steps in one lax.scan call, shuffling and gathering on "
        "the device; both draw the same shuffled minibatches.",
        "compile: first call less a later call (tracing + compilation), manual / "
        "autodiff.",
    ]
    if any("torch" in r for r in results["workloads"].values()):
        lines.append("man/torch: the faster manual form / PyTorch eager's best (default "
                     "threads, CL: channels_last, 1t: one thread), per step.")
    peak = results.get("matmul_peak_gflops")
    for name, r in results["workloads"].items():
        m, a = r["manual"], r["autodiff"]
        notes = [f"{name} {r['title']}: per step, manual {_t(m['loop_ms_per_step'])} "
                 f"loop, {_t(m['fused_ms_per_step'])} fused; jax.grad "
                 f"{_t(a['loop_ms_per_step'])}, {_t(a['fused_ms_per_step'])}"]
        if "torch" in r:
            notes.append(f"torch {_t(r['torch']['ms_per_step'])}" + (
                f", channels_last {_t(r['torch_channels_last']['ms_per_step'])}"
                if "torch_channels_last" in r else ""))
        if name == "W3" and peak:
            best = max(m["loop_gflops"], m["fused_gflops"])
            notes.append(f"{best:.0f} GFLOP/s = {100 * best / peak:.0f}% of the measured "
                         f"matmul peak ({peak:.0f} GFLOP/s)")
            if r.get("matmul_bound_ms"):
                fastest = min(m["loop_ms_per_step"], m["fused_ms_per_step"])
                notes.append(f"the step's matmuls alone take {r['matmul_bound_ms']:.2f} ms "
                             f"= {100 * r['matmul_bound_ms'] / fastest:.0f}% of the step")
        lines.append("; ".join(notes))
    return "\n".join(lines)


def _rate(steps_per_s):
    """Steps per second: whole numbers from 100 up, three digits below (W5, W6)."""
    return f"{steps_per_s:.0f}" if steps_per_s >= 100 else f"{steps_per_s:.3g}"


def _t(ms):
    """A time per step, in ms or, below 0.1 ms, in us."""
    return f"{ms:.3f} ms" if ms >= 0.1 else f"{1e3 * ms:.3g} us"


def run(args) -> int:
    names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
    bad = [n for n in names if n not in WORKLOADS]
    if bad or not names:
        print(f"jaxbp bench: --workloads must name some of {', '.join(WORKLOADS)}, got "
              f"{args.workloads!r}", file=sys.stderr)
        return 2
    # given values are checked as given: 0 is not "the default"
    problem = None
    if args.repeats is not None and args.repeats < 1:
        problem = f"--repeats must be a positive int, got {args.repeats}"
    elif args.seconds is not None and not 0 < args.seconds < float("inf"):
        problem = f"--seconds must be a positive number, got {args.seconds:g}"
    elif args.json:
        from jaxbp import _paths

        problem = _paths.file_problem(args.json, "--json")
    if problem:
        print(f"jaxbp bench: {problem}", file=sys.stderr)
        return 2
    repeats = args.repeats if args.repeats is not None else 2 if args.quick else 7
    seconds = args.seconds if args.seconds is not None else 0.02 if args.quick else 0.25
    use_torch = not args.no_torch and torch_available()
    info = machine_info()
    print(f"jaxbp bench: {info['cpu']} ({info['cores']} cores), jax {info['jax']} on "
          f"{info['backend']}, {info['date']}; {repeats} interleaved rounds, medians"
          + ("" if use_torch else "; PyTorch not installed" if not args.no_torch else ""))
    results = {"machine": info, "repeats": repeats, "workloads": {}}
    warning = load_warning(info["cores"])
    if warning:
        print(warning)
    for w in build_workloads(names):
        print(f"  {w.name}: {w.title} ...", flush=True)
        torch_runners, extra = {}, {}
        if use_torch and w.torch_model is not None:  # interleaved with the JAX steps
            torch_runners["torch"] = _TorchRunner(w)
            if w.name in ("W4", "W7"):
                torch_runners["torch_channels_last"] = _TorchRunner(w, channels_last=True)
            torch_runners["torch_1thread"] = _TorchRunner(w, threads=1)
            extra.update(torch_runners)
        if w.name == "W3":  # the matmul peak and the step's own matmuls, same rounds
            extra["matmul_bound"] = _MatmulBoundRunner(w)
            peaks = {f"matmul_{n}": _MatmulRunner(n) for n in (1024, 2048)}
            extra.update(peaks)
        r = bench_workload(w, repeats, seconds, extra=extra)
        samples = r.pop("extra")
        for name, runner in torch_runners.items():
            r[name] = runner.summary(samples[name])
        if w.name == "W3":
            r["matmul_bound_ms"] = 1e3 * _median(samples["matmul_bound"])
            results["matmul_peak_gflops"] = max(
                runner.gflops(_median(samples[name])) for name, runner in peaks.items())
        results["workloads"][w.name] = r
    print()
    print(format_table(results))
    results["machine"]["load_at_end"] = load_average()
    warning = load_warning(info["cores"])
    if warning:
        print(warning)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        print(f"\nresults written to {args.json}")
    return 0
