"""Randomness, mode and state: ``jaxbp.apply`` through nested combinators, and the
training functions that thread state and keys (``make_step``/``make_epoch`` with
``with_state=True``, ``fit``, ``evaluate``, ``save``/``load``).

Batch norm's running statistics are recomputed in NumPy over several steps; dropout's
keys are checked to differ between layers and between steps; the hand-written step
equals the ``jax.grad`` step with the same keys.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from helpers import assert_layer_matches_autodiff
from jaxbp import train

KEY = jax.random.key(0)


@pytest.fixture(autouse=True)
def fresh_trace_counter():
    chex.clear_trace_counter()
    yield


def nested():
    """serial inside residual inside serial, with batch norm and dropout at each level."""
    return jaxbp.serial(
        jaxbp.dense(6), jaxbp.batch_norm(), jaxbp.relu(),
        jaxbp.residual(jaxbp.serial(jaxbp.dense(6), jaxbp.batch_norm(), jaxbp.gelu()),
                       jaxbp.dropout(0.3), jaxbp.dense(6)),
        jaxbp.dropout(0.5), jaxbp.dense(3))


def blobs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], np.float32)
    return centers[y] + 0.4 * rng.standard_normal((n, 2)).astype(np.float32), y


# ---------------------------------------------------------------- apply and nesting


def test_nested_state_structure_and_modes():
    net = nested()
    assert net.apply is not None and net.init_state is not None
    params, _ = net.init(KEY, (4,))
    state = jaxbp.init_state(net, params)
    # One entry per layer, nested as the params are; stateless layers hold ().
    assert jax.tree.structure(state) == jax.tree.structure(
        ((), {"mean": 0, "var": 0}, (), (((), {"mean": 0, "var": 0}, ()), (), ()), (), ()))
    x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)

    # Each mode's calls in one compiled program (op by op, every layer's forward and
    # backward compiled its operations one by one); the README example, in
    # test_the_readme_example_runs, runs the same calls eagerly.
    @jax.jit
    def training(params, state, x, key):
        y, residuals, new_state = jaxbp.apply(net, params, state, x, key=key, train=True)
        # The backward is unchanged: the residuals carry the masks and the statistics.
        dparams, dx = net.backward(params, residuals, jnp.ones_like(y))
        return y, new_state, dparams, dx

    @jax.jit
    def inference(params, state, x, key):
        # Inference: no key needed; a key given is ignored.
        y1, _, same = jaxbp.apply(net, params, state, x)
        y2, _, _ = jaxbp.apply(net, params, state, x, key=key)
        return y1, y2, same

    y, new_state, dparams, dx = training(params, state, x, KEY)
    assert y.shape == (8, 3)
    assert not np.allclose(new_state[1]["mean"], state[1]["mean"])
    assert not np.allclose(new_state[3][0][1]["var"], state[3][0][1]["var"])
    assert jax.tree.structure(dparams) == jax.tree.structure(params)
    assert dx.shape == x.shape
    # Inference: deterministic, no key needed, state unchanged.
    y1, y2, same = inference(params, new_state, x, jax.random.key(5))
    np.testing.assert_array_equal(y1, y2)
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(new_state)):
        np.testing.assert_array_equal(a, b)
    # Training: the same key gives the same draw, another key another one.
    ya = training(params, state, x, KEY)[0]
    yb = training(params, state, x, jax.random.key(9))[0]
    np.testing.assert_array_equal(ya, y)
    assert not np.allclose(ya, yb)


def test_two_dropouts_in_one_serial_draw_different_masks():
    net = jaxbp.serial(jaxbp.dropout(0.5), jaxbp.dropout(0.5))
    x = np.ones((4, 64), np.float32)
    # Under jit: one program (op by op, each of the draws' operations compiles on its own).
    _, residuals, _ = jax.jit(lambda x, key: jaxbp.apply(net, ((), ()), ((), ()), x, key=key,
                                                         train=True))(x, KEY)
    first, second = (np.asarray(r.keep) for r in residuals)
    assert 0.3 < first.mean() < 0.7 and 0.3 < second.mean() < 0.7
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_batch_norm_inference_with_a_numpy_state_keeps_the_dtype(dtype):
    """A state of NumPy arrays (a user's own, or read from a file by hand) gives what the
    same state as JAX arrays gives: in NumPy, bfloat16 + eps would be float32."""
    layer = jaxbp.batch_norm(dtype=dtype)
    params = {"scale": np.full((3,), 1.5, dtype), "bias": np.full((3,), 0.25, dtype)}
    x = np.linspace(-2, 2, 12).reshape(4, 3).astype(dtype)
    state = {"mean": np.array([0.1, -0.2, 0.3], dtype),
             "var": np.array([0.5, 2.0, 1.0], dtype)}
    y, _, _ = layer.apply(params, state, jax.device_put(x), train=False)
    y_jax, _, _ = layer.apply(params, jax.tree.map(jax.device_put, state),
                              jax.device_put(x), train=False)
    assert y.dtype == np.dtype(dtype) == y_jax.dtype
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(y_jax, np.float32))


def test_training_mode_network_matches_autodiff():
    """The whole nested network in training mode, one key bound: every batch norm's and
    dropout's backward, the residual's fork rule, against jax.vjp and finite
    differences."""
    layer = jaxbp.bind(nested(), key=jax.random.key(3), train=True)
    assert_layer_matches_autodiff(layer, (4,), batch=5, eager=False)


def test_residual_matches_autodiff():
    block = jaxbp.residual(jaxbp.conv2d(2, 3, padding="SAME"), jaxbp.layer_norm(),
                           jaxbp.leaky_relu())
    assert_layer_matches_autodiff(block, (4, 4, 2), batch=1, eager=False)


# ------------------------------------------------------------------- training steps


def test_make_step_refuses_a_stateful_net_without_with_state():
    net = jaxbp.serial(jaxbp.dense(4), jaxbp.dropout(0.5), jaxbp.dense(2))
    loss = jaxbp.softmax_cross_entropy()
    for make in (lambda: train.make_step(net, loss, optax.sgd(0.1)),
                 lambda: train.make_epoch(net, loss, optax.sgd(0.1), batch_size=4)):
        with pytest.raises(TypeError, match=r"net holds layers that need a key, a mode or "
                                            r"state \(dropout\(0.5\)\); pass "
                                            r"with_state=True"):
            make()


def numpy_bn_net_steps(params, xs, ys, lr, momentum, eps):
    """serial(batch_norm, dense(3)) with softmax cross-entropy and SGD, in NumPy:
    returns the running mean and variance after each step."""
    scale, bias = (np.asarray(params[0][k], np.float64) for k in ("scale", "bias"))
    w, b = (np.asarray(params[1][k], np.float64) for k in ("w", "b"))
    mean, var = np.zeros(scale.shape), np.ones(scale.shape)
    history = []
    for x, y in zip(xs, ys):
        n = len(x)
        mu, v = x.mean(0), x.var(0)
        mean = momentum * mean + (1 - momentum) * mu
        var = momentum * var + (1 - momentum) * v * n / (n - 1)
        history.append((mean.copy(), var.copy()))
        xhat = (x - mu) / np.sqrt(v + eps)
        h = xhat * scale + bias
        z = h @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - np.eye(3)[y]) / n
        dw, db, dh = h.T @ dz, dz.sum(0), dz @ w.T
        dscale, dbias = (dh * xhat).sum(0), dh.sum(0)
        w, b, scale, bias = w - lr * dw, b - lr * db, scale - lr * dscale, bias - lr * dbias
    return history


@pytest.mark.parametrize("grads", ["manual", "autodiff"])
def test_batch_norm_state_through_several_steps(grads, x64):
    net = jaxbp.serial(jaxbp.batch_norm(momentum=0.8), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(6, 4)) * (i + 1) + i for i in range(4)]
    ys = [rng.integers(0, 3, size=6) for _ in range(4)]
    params, _ = net.init(KEY, (4,))
    # float64 copies made on the host: jnp.asarray(a, jnp.float64) compiles a conversion
    # per shape; the step takes NumPy arrays as they are.
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    want = numpy_bn_net_steps(params, xs, ys, 0.3, 0.8, 1e-5)
    step = train.make_step(net, loss, optax.sgd(0.3), grads, with_state=True, max_traces=1)
    state = jaxbp.init_state(net, params)
    p = jax.tree.map(jax.device_put, params)
    for i, (x, y) in enumerate(zip(xs, ys)):
        p, state, _, value = step(p, state, optax.sgd(0.3).init(p), x,
                                  np.asarray(y, np.int32), jax.random.key(i))
        np.testing.assert_allclose(state[0]["mean"], want[i][0], rtol=1e-12)
        np.testing.assert_allclose(state[0]["var"], want[i][1], rtol=1e-12)
    assert state[1] == ()


def test_manual_and_autodiff_steps_agree_with_the_same_keys():
    net = nested()
    loss = jaxbp.softmax_cross_entropy()
    x, y = blobs(16)
    x = np.concatenate([x, x], axis=1)  # 4 features
    params, _ = net.init(KEY, (4,))
    # SGD, not Adam: a bias before a batch norm has a zero gradient in exact arithmetic,
    # and Adam would blow the two float32 roundings of that zero up to full-size steps.
    opt = optax.sgd(0.1)
    out = {}
    for grads in ("manual", "autodiff"):
        step = train.make_step(net, loss, opt, grads, with_state=True)
        # A copy for the step to donate (device_put(may_alias=False) compiles nothing,
        # jnp.array compiles a copy per shape).
        p = jax.tree.map(lambda a: jax.device_put(a, may_alias=False), params)
        s, o = jaxbp.init_state(net, params), opt.init(params)
        for i in range(3):
            p, s, o, value = step(p, s, o, x, y, jax.random.key(10 + i))
        out[grads] = (p, s, float(value))
    for a, b in zip(jax.tree.leaves(out["manual"][:2]), jax.tree.leaves(out["autodiff"][:2])):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(out["manual"][2], out["autodiff"][2], rtol=1e-4)


def test_with_state_on_a_plain_net_is_the_plain_step():
    net = jaxbp.serial(jaxbp.dense(5), jaxbp.tanh(), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    x, y = blobs(8)
    params, _ = net.init(KEY, (2,))
    opt = optax.sgd(0.1)
    p1, o1, v1 = train.make_step(net, loss, opt, donate=False)(params, opt.init(params), x, y)
    p2, s2, o2, v2 = train.make_step(net, loss, opt, with_state=True, donate=False)(
        params, jaxbp.init_state(net, params), opt.init(params), x, y, KEY)
    assert s2 == ()
    np.testing.assert_array_equal(v1, v2)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
        np.testing.assert_array_equal(a, b)


def test_step_keys_are_all_different():
    shuffle, keys = train.step_keys(KEY, 5)
    data = np.concatenate([np.asarray(jax.random.key_data(shuffle))[None],
                           np.asarray(jax.random.key_data(keys))])
    assert len({tuple(row) for row in data.reshape(6, -1)}) == 6


def test_fused_epoch_equals_the_step_loop_with_its_keys():
    """make_epoch's scan draws the minibatches and one dropout key per step exactly as
    fit(fused=False) does: the same parameters and state come out."""
    net = jaxbp.serial(jaxbp.dense(8), jaxbp.batch_norm(), jaxbp.relu(), jaxbp.dropout(0.4),
                       jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    x, y = blobs(40)
    params, _ = net.init(KEY, (2,))
    opt = optax.sgd(0.1)
    epoch = train.make_epoch(net, loss, opt, batch_size=8, with_state=True, donate=False)
    p1, s1, _, losses = epoch(params, jaxbp.init_state(net, params), opt.init(params),
                              jax.random.key(4), x, y)
    assert losses.shape == (5,)
    step = train.make_step(net, loss, opt, with_state=True, donate=False)
    shuffle, keys = train.step_keys(jax.random.key(4), 5)
    p2, s2, o2 = params, jaxbp.init_state(net, params), opt.init(params)
    for idx, k in zip(np.asarray(train.minibatch_indices(shuffle, 40, 8)), keys):
        p2, s2, o2, _ = step(p2, s2, o2, x[idx], y[idx], k)
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A second epoch with another key moves on: keys are never reused.
    p3, _, _, losses3 = epoch(p1, s1, opt.init(p1), jax.random.key(5), x, y)
    assert not np.allclose(losses, losses3)


def test_one_device_mesh_with_state():
    net = jaxbp.serial(jaxbp.dense(4), jaxbp.batch_norm(), jaxbp.dropout(0.2), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    x, y = blobs(8)
    params, _ = net.init(KEY, (2,))
    opt = optax.sgd(0.1)
    out = []
    for mesh in (None, train.data_mesh()):
        step = train.make_step(net, loss, opt, with_state=True, mesh=mesh, donate=False)
        out.append(step(params, jaxbp.init_state(net, params), opt.init(params), x, y, KEY))
    for a, b in zip(jax.tree.leaves(out[0]), jax.tree.leaves(out[1])):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ---------------------------------------------------------------- fit and evaluate


@pytest.mark.parametrize("fused", [True, False])
def test_fit_threads_state_and_evaluates_in_inference_mode(fused):
    net = jaxbp.serial(jaxbp.dense(16), jaxbp.batch_norm(), jaxbp.relu(), jaxbp.dropout(0.2),
                       jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    x, y = blobs(64)
    params, _ = net.init(KEY, (2,))
    result = train.fit(net, loss, optax.adam(0.05), params, x, y, key=jax.random.key(2),
                       epochs=3, batch_size=16, fused=fused, validation_data=(x, y),
                       progress=False)
    assert result.state is not None
    assert not np.allclose(result.state[1]["mean"], 0)
    assert result.history["val_accuracy"][-1] > 0.9
    # evaluate = the inference-mode forward with the running statistics.
    value, acc = train.evaluate(net, loss, result.params, x, y, state=result.state)

    @jax.jit  # one program (op by op, each operation would compile on its own)
    def forward_and_loss(params, state, x, y):
        pred, _, _ = jaxbp.apply(net, params, state, x)
        return pred, loss.forward(pred, y)[0]

    pred, want = forward_and_loss(result.params, result.state, x, y)
    np.testing.assert_allclose(value, float(want), rtol=1e-5)
    assert acc == float(np.mean(np.argmax(np.asarray(pred), -1) == y))
    assert acc == result.history["val_accuracy"][-1]
    with pytest.raises(ValueError, match="state must hold the running statistics"):
        train.evaluate(net, loss, result.params, x, y)


def test_fit_of_a_plain_net_has_no_state():
    net = jaxbp.serial(jaxbp.dense(4), jaxbp.tanh(), jaxbp.dense(3))
    x, y = blobs(16)
    params, _ = net.init(KEY, (2,))
    result = train.fit(net, jaxbp.softmax_cross_entropy(), optax.sgd(0.1), params, x, y,
                       key=KEY, epochs=1, batch_size=8, progress=False)
    assert result.state is None
    assert len(result) == 4 and result[:3] == (result.params, result.opt_state,
                                               result.history)


# --------------------------------------------------------------------- save / load


def test_save_and_load_round_trip_state(tmp_path):
    net = nested()
    params, _ = net.init(KEY, (4,))
    state = jax.tree.map(lambda a: np.asarray(a) + 0.5, jaxbp.init_state(net, params))
    path = train.save(tmp_path / "model", params, state)
    loaded_params, loaded_state = train.load(path, with_state=True)
    assert jax.tree.structure(loaded_state) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves((params, state)),
                    jax.tree.leaves((loaded_params, loaded_state))):
        np.testing.assert_array_equal(a, b)
    # load(path) keeps its meaning: the params alone.
    only = train.load(path)
    assert jax.tree.structure(only) == jax.tree.structure(params)


def test_files_without_state_still_load(tmp_path):
    params, _ = jaxbp.dense(2).init(KEY, (3,))
    path = train.save(tmp_path / "plain.npz", params)
    assert jax.tree.structure(train.load(path)) == jax.tree.structure(params)
    loaded, state = train.load(path, with_state=True)
    assert state is None
    np.testing.assert_array_equal(loaded["w"], params["w"])


# ------------------------------------------------------------------------- the README


def test_the_readme_example_runs():
    """The README's example of the extended contract runs as printed."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Beyond the documents", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["y"].shape == (32, 10) and scope["dx"].shape == (32, 8, 8, 1)
    assert np.isfinite(float(scope["loss"]))
    bn_state = scope["state"][2][0][1]
    assert set(bn_state) == {"mean", "var"} and bn_state["mean"].shape == (16,)
