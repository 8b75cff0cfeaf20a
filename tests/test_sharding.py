"""Data parallelism: the same make_step / make_epoch / fit with ``mesh=`` on 4 devices.

XLA can split the host CPU into several virtual devices, but only if told before JAX
starts; so the 4-device runs happen in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``, which prints what it measured
as JSON: a CNN's steps, epoch and fit; a network with batch norm and dropout; a GPT.
One device and four must give the same parameters to float32 tolerance (only the
order of the batch sums differs).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from helpers import subprocess_xla_flags

SCRIPT = textwrap.dedent("""
    import json
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import jax.numpy as jnp
    import numpy as np
    import optax
    import jaxbp
    from jaxbp import train

    def diff(a, b):
        return max(float(jnp.max(jnp.abs(u - v)))
                   for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    net = jaxbp.serial(jaxbp.conv2d(4, 3, padding="SAME"), jaxbp.relu(),
                       jaxbp.max_pool2d(2), jaxbp.flatten(), jaxbp.dense(8),
                       jaxbp.tanh(), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 32).astype(np.int32)
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    opt = optax.adam(1e-2)
    mesh = train.data_mesh()
    out = {"devices": jax.device_count(), "mesh": int(mesh.devices.size)}

    # Per-step: three steps on batches of 8, one device against four.
    results = {}
    for m in (None, mesh):
        step = train.make_step(net, loss, opt, mesh=m)
        p, s = jax.tree.map(jnp.array, params), opt.init(params)
        for i in range(3):
            p, s, value = step(p, s, x[8 * i:8 * i + 8], y[8 * i:8 * i + 8])
        results[m is None] = (p, float(value))
    out["step_diff"] = diff(results[True][0], results[False][0])
    out["step_loss_diff"] = abs(results[True][1] - results[False][1])
    p4 = results[False][0]
    out["params_devices"] = sorted({len(leaf.sharding.device_set)
                                    for leaf in jax.tree.leaves(p4)})
    out["params_replicated"] = all(leaf.sharding.is_fully_replicated
                                   for leaf in jax.tree.leaves(p4))
    placed = train._place_batch(x[:8], train._shardings(mesh, "test"), "test", "x")
    out["batch_shard_shapes"] = sorted({tuple(s.data.shape)
                                        for s in placed.addressable_shards})

    # Fused: one epoch of four steps, same key.
    fused = {}
    for m in (None, mesh):
        epoch = train.make_epoch(net, loss, opt, batch_size=8, mesh=m)
        p, s, losses = epoch(jax.tree.map(jnp.array, params), opt.init(params),
                             jax.random.key(3), x, y)
        fused[m is None] = (p, np.asarray(losses))
    out["epoch_diff"] = diff(fused[True][0], fused[False][0])
    out["epoch_losses_diff"] = float(np.max(np.abs(fused[True][1] - fused[False][1])))

    # fit with a mesh, both loops, against fit on one device.
    fits = [train.fit(net, loss, opt, params, x, y, key=jax.random.key(1), epochs=2,
                      batch_size=8, mesh=m, fused=f, train_accuracy=True)
            for m, f in ((None, True), (mesh, True), (mesh, False))]
    out["fit_fused_diff"] = diff(fits[0].params, fits[1].params)
    out["fit_per_step_diff"] = diff(fits[0].params, fits[2].params)
    out["fit_accuracy"] = [f.history["accuracy"][-1] for f in fits]
    print("RESULT " + json.dumps(out))
""")


# A network with batch norm and dropout (jaxbp.apply's state), fit on 1 and 4 devices.
STATE_SCRIPT = textwrap.dedent("""
import json
import jax
jax.config.update("jax_numpy_rank_promotion", "raise")
import jax.numpy as jnp
import numpy as np
import optax
import jaxbp
from jaxbp import train

# No bias before the batch norm: its gradient is zero but for rounding, which differs
# between 1 and 4 devices, and Adam would scale that rounding up to full-size steps.
net = jaxbp.serial(jaxbp.dense(8, bias=False), jaxbp.batch_norm(), jaxbp.relu(),
                   jaxbp.dropout(0.3), jaxbp.dense(3))
loss = jaxbp.softmax_cross_entropy()
rng = np.random.default_rng(0)
x = rng.standard_normal((32, 2)).astype(np.float32)
y = rng.integers(0, 3, 32).astype(np.int32)
params, _ = net.init(jax.random.key(0), (2,))
fits = [train.fit(net, loss, optax.adam(1e-2), params, x, y, key=jax.random.key(1),
                  epochs=2, batch_size=8, mesh=m, fused=f, progress=False)
        for m, f in ((None, True), (train.data_mesh(), True), (train.data_mesh(), False))]

def diff(a, b):
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))

print("RESULT " + json.dumps({
    "devices": jax.device_count(),
    "fused": diff((fits[0].params, fits[0].state), (fits[1].params, fits[1].state)),
    "per_step": diff((fits[0].params, fits[0].state), (fits[2].params, fits[2].state))}))
""")

# A GPT's hand-written training steps on 1 and 4 devices.
GPT_SCRIPT = textwrap.dedent("""
    import json
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import jax.numpy as jnp
    import numpy as np
    import optax
    import jaxbp
    from jaxbp import models, train

    net = models.gpt(11, context=8, features=16, blocks=1, heads=2)
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, (24, 9)).astype(np.int32)
    x, y = ids[:, :-1], ids[:, 1:]
    params, _ = net.init(jax.random.key(0), (8,))
    # SGD, not Adam: some gradients are exactly zero in exact arithmetic (the key bias:
    # adding q.b to a whole row of scores leaves the softmax unchanged), so both runs
    # compute rounding noise there, which Adam's first step would blow up to +-lr.
    opt = optax.sgd(0.5)
    out = {"devices": jax.device_count()}
    results = {}
    for mesh in (None, train.data_mesh()):
        step = train.make_step(net, loss, opt, mesh=mesh)
        p, s = jax.tree.map(jnp.array, params), opt.init(params)
        values = []
        for i in range(3):
            p, s, value = step(p, s, x[8 * i:8 * i + 8], y[8 * i:8 * i + 8])
            values.append(float(value))
        results[mesh is None] = (p, values)
    (p1, v1), (p4, v4) = results[True], results[False]
    out["param_diff"] = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                            zip(jax.tree.leaves(p1), jax.tree.leaves(p4)))
    out["loss_diff"] = max(abs(a - b) for a, b in zip(v1, v4))
    out["moved"] = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                       zip(jax.tree.leaves(p1), jax.tree.leaves(params)))
    out["params_devices"] = sorted({len(leaf.sharding.device_set)
                                    for leaf in jax.tree.leaves(p4)})
    print("RESULT " + json.dumps(out))
""")

# The 4-device checks share one child process (one JAX start-up, not three): each
# script runs in its own namespace and prints its RESULT line.
CHILD = textwrap.dedent("""
    import contextlib
    import io
    import json
    import sys

    results = {}
    for name, source in json.loads(sys.stdin.read()).items():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, f"<{name}>", "exec"), {"__name__": "__main__"})
        line = next(l for l in printed.getvalue().splitlines() if l.startswith("RESULT "))
        results[name] = json.loads(line[len("RESULT "):])
    print("RESULTS " + json.dumps(results))
""")


@pytest.fixture(scope="module")
def children():
    """What the three scripts measured on 4 virtual CPU devices, by name."""
    # compiled for a fast compilation: the child compiles many small programs that
    # run a few times, and compares runs compiled alike
    env = dict(os.environ, XLA_FLAGS=subprocess_xla_flags(devices=4),
               JAX_PLATFORMS="cpu")
    scripts = {"cnn": SCRIPT, "state": STATE_SCRIPT, "gpt": GPT_SCRIPT}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", CHILD],
                          input=json.dumps(scripts), env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS "):])
    assert set(results) == set(scripts)
    return results


@pytest.fixture(scope="module")
def four_devices(children):
    return children["cnn"]


def test_the_subprocess_sees_four_devices_and_splits_the_batch(four_devices):
    assert four_devices["devices"] == 4 and four_devices["mesh"] == 4
    assert four_devices["batch_shard_shapes"] == [[2, 6, 6, 1]]  # 8 rows over 4 devices
    assert four_devices["params_devices"] == [4]
    assert four_devices["params_replicated"]


def test_sharded_steps_give_the_one_device_parameters(four_devices):
    assert four_devices["step_diff"] < 1e-5
    assert four_devices["step_loss_diff"] < 1e-5


def test_sharded_fused_epoch_gives_the_one_device_parameters(four_devices):
    assert four_devices["epoch_diff"] < 1e-5
    assert four_devices["epoch_losses_diff"] < 1e-5


def test_fit_with_a_mesh_gives_the_one_device_parameters(four_devices):
    assert four_devices["fit_fused_diff"] < 1e-5
    assert four_devices["fit_per_step_diff"] < 1e-5
    acc = four_devices["fit_accuracy"]
    assert max(acc) - min(acc) < 1e-6


def test_four_devices_train_like_one_with_state(children):
    """Batch norm's statistics over the whole (sharded) batch and the same dropout
    masks: a 4-device mesh gives the one-device parameters and running statistics."""
    out = children["state"]
    assert out["devices"] == 4
    assert out["fused"] < 1e-5 and out["per_step"] < 1e-5


def test_gpt_trains_on_four_devices_like_on_one(children):
    """A GPT's hand-written training step with mesh= over 4 virtual CPU devices (the
    batch of 8 split 2 per device) gives the one-device parameters and losses."""
    out = children["gpt"]
    assert out["devices"] == 4 and out["params_devices"] == [4]
    assert out["moved"] > 1e-3  # the steps trained: the comparison is not vacuous
    assert out["param_diff"] < 1e-5 and out["loss_diff"] < 1e-5


MULTIHOST = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid = sys.argv[1], int(sys.argv[2])
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid)
    import jax.numpy as jnp
    import numpy as np
    import optax
    import jaxbp
    from jaxbp import train

    net = jaxbp.serial(jaxbp.conv2d(4, 3, padding="SAME"), jaxbp.relu(),
                       jaxbp.max_pool2d(2), jaxbp.flatten(), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(0)  # every process holds the same data and params
    x = rng.standard_normal((32, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 32).astype(np.int32)
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    opt = optax.adam(1e-2)
    mesh = train.data_mesh()  # both processes' devices

    def local(tree):
        return [np.asarray(leaf.addressable_shards[0].data) for leaf in jax.tree.leaves(tree)]

    def diff(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(local(a), local(b)))

    # The same step code: each process passes its own half of every batch of 8.
    step = train.make_step(net, loss, opt, mesh=mesh)
    alone = train.make_step(net, loss, opt)
    p, s = jax.tree.map(jnp.array, params), opt.init(params)
    q, r = jax.tree.map(jnp.array, params), opt.init(params)
    for i in range(3):
        xb, yb = x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
        p, s, _ = step(p, s, xb[4 * pid:4 * pid + 4], yb[4 * pid:4 * pid + 4])
        q, r, _ = alone(q, r, xb, yb)
    fits = [train.fit(net, loss, opt, params, x, y, key=jax.random.key(1), epochs=2,
                      batch_size=8, mesh=m, fused=f, validation_data=(x[:8], y[:8]))
            for m, f in ((None, True), (mesh, True), (mesh, False))]
    print("RESULT", jax.device_count(), jax.local_device_count(), diff(p, q),
          diff(fits[0].params, fits[1].params), diff(fits[0].params, fits[2].params),
          fits[1].history["val_accuracy"][-1] == fits[0].history["val_accuracy"][-1])
""")


@pytest.mark.slow
def test_two_processes_train_like_one_device_with_the_same_code(tmp_path):
    # Two processes with one CPU device each, joined by jax.distributed.initialize:
    # the multi-host set-up, on one machine.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=subprocess_xla_flags())  # one device each
    procs = [subprocess.Popen([sys.executable, "-c", MULTIHOST, port, str(pid)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pid in (0, 1)]
    outs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
        fields = next(l for l in out.splitlines() if l.startswith("RESULT")).split()
        devices, local, step_diff, fused_diff, per_step_diff, same_acc = fields[1:]
        assert (devices, local) == ("2", "1")
        assert float(step_diff) < 1e-5
        assert float(fused_diff) < 1e-5 and float(per_step_diff) < 1e-5
        assert same_acc == "True"
