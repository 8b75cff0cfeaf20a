"""jaxbp.train: jit-compiled steps, fused epochs, evaluation, fit, save and load.

Everything runs on tiny networks and data: these tests pin behaviour (the hand-written
step equals the autodiff step, the step compiles once, donation, shuffling, history),
never speed.
"""

import io
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp import train

OPTIMIZERS = {"sgd": lambda: optax.sgd(0.1), "momentum": lambda: optax.sgd(0.1, momentum=0.9),
              "adam": lambda: optax.adam(1e-2)}


def small_cnn():
    return jaxbp.serial(jaxbp.conv2d(3, 3, padding="SAME"), jaxbp.relu(), jaxbp.max_pool2d(2),
                        jaxbp.flatten(), jaxbp.dense(4))


def small_mlp(out=3):
    return jaxbp.serial(jaxbp.dense(8), jaxbp.tanh(), jaxbp.dense(out))


def blobs(n=96, seed=0):
    """Three well separated Gaussian blobs in 2-D: a problem a small MLP learns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], np.float32)
    x = centers[y] + 0.3 * rng.standard_normal((n, 2)).astype(np.float32)
    return x, y


def images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 6, 6, 1)).astype(np.float32),
            rng.integers(0, 4, n).astype(np.int32))


@pytest.fixture(autouse=True)
def fresh_trace_counter():
    # chex counts traces per place a function is made: parametrized tests share places.
    chex.clear_trace_counter()
    yield
    chex.clear_trace_counter()


def max_abs_diff(a, b):
    # On the host: jnp.max(jnp.abs(u - v)) compiles three programs per leaf shape.
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def copy(tree):
    """A copy of every leaf on the device, for a step to donate (jnp.array compiles a
    copy program per shape; device_put(may_alias=False) compiles nothing)."""
    return jax.tree.map(lambda a: jax.device_put(a, may_alias=False), tree)


@jax.jit
def small_cnn_loss(params, x, y):
    """small_cnn's softmax cross-entropy, computed directly: one program, shared by the
    parametrized cases (op by op, the conv alone compiles a dozen programs)."""
    return jaxbp.softmax_cross_entropy().forward(small_cnn().forward(params, x)[0], y)[0]


# --------------------------------------------------------------------------- make_step


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_manual_step_equals_autodiff_step(name):
    net, loss = small_cnn(), jaxbp.softmax_cross_entropy()
    x, y = images()
    params, _ = net.init(jax.random.key(0), x.shape[1:])
    opt = OPTIMIZERS[name]()
    out = {}
    for grads in ("manual", "autodiff"):
        step = train.make_step(net, loss, opt, grads)
        p, s = copy(params), opt.init(params)
        values = []
        for _ in range(3):
            p, s, value = step(p, s, x, y)
            values.append(float(value))
        out[grads] = (p, values)
    assert max_abs_diff(out["manual"][0], out["autodiff"][0]) < 1e-5
    np.testing.assert_allclose(out["manual"][1], out["autodiff"][1], rtol=1e-5)
    # The parameters moved, and the loss is the one before each update.
    assert max_abs_diff(out["manual"][0], params) > 1e-3
    first = small_cnn_loss(params, x, y)
    np.testing.assert_allclose(out["manual"][1][0], float(first), rtol=1e-6)


def test_step_equals_an_optax_update_written_out():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(16)
    params, _ = net.init(jax.random.key(1), (2,))
    step = train.make_step(net, loss, optax.sgd(0.5), donate=False)
    new, _, _ = step(params, optax.sgd(0.5).init(params), x, y)
    # The gradients in one program (op by op, every operation compiles on its own), the
    # update written out in NumPy.
    _, grads = jax.jit(jaxbp.value_and_grad(net, loss))(params, x, y)
    want = jax.tree.map(lambda p, g: np.asarray(p) - np.float32(0.5) * np.asarray(g),
                        params, grads)
    assert max_abs_diff(new, want) < 1e-6


def test_step_compiles_once():
    net, loss = small_cnn(), jaxbp.softmax_cross_entropy()
    opt = optax.adam(1e-2)
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    step = train.make_step(net, loss, opt, max_traces=1)
    p, s = params, opt.init(params)
    for seed in range(4):  # new data of the same shape: no retrace
        x, y = images(seed=seed)
        p, s, _ = step(p, s, jax.device_put(x), jax.device_put(y))
    # The guard is live: a new batch size would retrace, and it says so.
    x, y = images(n=4)
    with pytest.raises(AssertionError, match="trace"):
        step(p, s, x, y)


def test_step_donates_params_and_opt_state_unless_asked_not_to():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    opt = optax.sgd(0.1, momentum=0.9)
    x, y = blobs(8)
    params, _ = net.init(jax.random.key(0), (2,))
    kept = copy(params)
    train.make_step(net, loss, opt, donate=False)(kept, opt.init(kept), x, y)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(kept))
    given, state = copy(params), opt.init(params)
    train.make_step(net, loss, opt)(given, state, x, y)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves((given, state)))


@pytest.mark.parametrize("grads", ["manual", "autodiff"])
def test_float32_step_stays_float32_under_x64(grads):
    # The compiled program is checked: a weak-typed Python scalar may appear as an f64
    # constant in the lowered text before XLA folds it into the f32 computation.
    with jax.enable_x64(True):
        net = jaxbp.serial(jaxbp.dense(4, dtype=jnp.float32), jaxbp.relu(),
                           jaxbp.dense(3, dtype=jnp.float32))
        opt = optax.sgd(0.1, momentum=0.9)
        # lower() needs the arguments' shapes and dtypes only: traced, not computed (an
        # eager init would compile its programs again under x64).
        params = jax.eval_shape(lambda: net.init(jax.random.key(0), (2,))[0])
        opt_state = jax.eval_shape(opt.init, params)
        assert {np.dtype(a.dtype) for a in jax.tree.leaves((params, opt_state))} == {
            np.dtype(np.float32)}
        x = jax.ShapeDtypeStruct((5, 2), jnp.float32)
        y = jax.ShapeDtypeStruct((5,), jnp.int32)
        step = train.make_step(net, jaxbp.softmax_cross_entropy(), opt, grads)
        text = step.lower(params, opt_state, x, y).compile().as_text()
    assert "f32" in text and "f64" not in text


@pytest.mark.parametrize("kwargs, error, match", [
    ({"grads": "numerical"}, ValueError, "grads must be one of"),
    ({"optimizer": "adam"}, TypeError, "optimizer must be an optax"),
    ({"net": jaxbp.relu}, TypeError, "net must be a jaxbp.Layer"),
    ({"loss": jaxbp.half_mse}, TypeError, "loss must be a jaxbp.Loss"),
    ({"mesh": "data"}, TypeError, "mesh must be a jax.sharding.Mesh"),
    ({"max_traces": 0}, ValueError, "max_traces must be None or a positive int"),
])
def test_make_step_rejects_bad_arguments(kwargs, error, match):
    args = {"net": small_mlp(), "loss": jaxbp.softmax_cross_entropy(),
            "optimizer": optax.sgd(0.1), "grads": "manual"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train.make_step(**args)


# --------------------------------------------------------------------------- fused


def test_minibatch_indices_are_fresh_permutations_per_pass():
    idx = np.asarray(train.minibatch_indices(jax.random.key(3), 10, 3, steps=7))
    assert idx.shape == (7, 3)
    passes = [idx[0:3].reshape(-1), idx[3:6].reshape(-1)]  # 10 // 3 = 3 steps per pass
    for p in passes:
        assert len(set(p.tolist())) == 9 and p.min() >= 0 and p.max() < 10
    assert passes[0].tolist() != passes[1].tolist()
    other = np.asarray(train.minibatch_indices(jax.random.key(4), 10, 3, steps=7))
    assert other.tolist() != idx.tolist()


@pytest.mark.parametrize("grads", ["manual", "autodiff"])
def test_fused_epoch_equals_the_steps_it_fuses(grads):
    net, loss = small_cnn(), jaxbp.softmax_cross_entropy()
    opt = optax.adam(1e-2)
    x, y = images(n=10)
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    key = jax.random.key(7)
    epoch = train.make_epoch(net, loss, opt, grads, batch_size=4, steps=5, max_traces=1)
    p1, _, losses = epoch(copy(params), opt.init(params), key, x, y)
    assert losses.shape == (5,)
    step = train.make_step(net, loss, opt, grads)
    p2, s2 = copy(params), opt.init(params)
    values = []
    for idx in np.asarray(train.minibatch_indices(key, 10, 4, steps=5)):
        p2, s2, value = step(p2, s2, x[idx], y[idx])
        values.append(float(value))
    assert max_abs_diff(p1, p2) < 1e-5
    np.testing.assert_allclose(np.asarray(losses), values, rtol=1e-5)


def test_make_epoch_rejects_too_little_data():
    epoch = train.make_epoch(small_mlp(), jaxbp.softmax_cross_entropy(), optax.sgd(0.1),
                             batch_size=8)
    x, y = blobs(4)
    params, _ = small_mlp().init(jax.random.key(0), (2,))
    with pytest.raises(ValueError, match="at least batch_size = 8"):
        epoch(params, optax.sgd(0.1).init(params), jax.random.key(0), x, y)


# --------------------------------------------------------------------------- evaluate


def test_evaluate_matches_a_direct_computation_in_any_chunking():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(50)
    params, _ = net.init(jax.random.key(2), (2,))

    @jax.jit  # one program (op by op, every operation compiles on its own)
    def direct(params, x, y):
        pred = net.forward(params, x)[0]
        return pred, loss.forward(pred, y)[0]

    pred, want_loss = direct(params, x, y)
    want_loss = float(want_loss)
    want_acc = float(np.mean(np.argmax(np.asarray(pred), axis=1) == y))
    for batch_size in (100, 50, 25, 16, 7):  # one chunk, whole chunks, a remainder
        got_loss, got_acc = train.evaluate(net, loss, params, x, y, batch_size=batch_size)
        assert got_loss == pytest.approx(want_loss, rel=1e-5)
        assert got_acc == pytest.approx(want_acc)
    # One-hot targets count the same way as integer labels.
    onehot = np.eye(3, dtype=np.float32)[y]
    assert train.evaluate(net, loss, params, x, onehot)[1] == pytest.approx(want_acc)


def test_evaluate_names_an_empty_dataset():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    params, _ = net.init(jax.random.key(2), (2,))
    with pytest.raises(ValueError, match=r"evaluate: x must have at least one row"):
        train.evaluate(net, loss, params, np.zeros((0, 2), np.float32),
                       np.zeros((0,), np.int32))


def test_fit_takes_an_optimizer_whose_init_cannot_be_traced():
    """fit initializes the optimizer under jit (one compilation); an init with
    Python-side logic on the values runs eagerly instead."""
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(32)
    params, _ = net.init(jax.random.key(2), (2,))
    sgd = optax.sgd(0.1)

    def init(p):  # np.asarray of a traced value fails under jit
        assert np.all(np.isfinite(np.asarray(jax.tree.leaves(p)[0])))
        return sgd.init(p)

    result = train.fit(net, loss, optax.GradientTransformation(init, sgd.update), params,
                       x, y, key=jax.random.key(0), epochs=1, batch_size=8)
    assert np.isfinite(result.history["loss"][0])


def test_evaluate_accuracy_is_nan_for_a_single_output():
    net = jaxbp.serial(jaxbp.dense(1), jaxbp.sigmoid())
    params, _ = net.init(jax.random.key(0), (2,))
    x = np.ones((4, 2), np.float32)
    y = np.ones((4, 1), np.float32)
    value, acc = train.evaluate(net, jaxbp.half_mse(), params, x, y)
    assert np.isfinite(value) and np.isnan(acc)


# --------------------------------------------------------------------------- fit


def test_fit_learns_and_records_a_history():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(96)
    xv, yv = blobs(48, seed=1)
    params, _ = net.init(jax.random.key(0), (2,))
    result = train.fit(net, loss, optax.adam(0.05), params, x, y, key=jax.random.key(1),
                       epochs=12, batch_size=16, validation_data=(xv, yv), progress=False)
    h = result.history
    assert set(h) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert h["epoch"] == list(range(1, 13))
    assert all(len(v) == 12 for v in h.values())
    assert h["loss"][-1] < 0.3 * h["loss"][0]
    assert h["val_accuracy"][-1] >= 0.95
    assert h["seconds"] == sorted(h["seconds"])
    # The caller's parameters were copied, not donated: still usable.
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(params))
    assert train.evaluate(net, loss, result.params, xv, yv)[1] == h["val_accuracy"][-1]


def test_fit_fused_and_per_step_see_the_same_minibatches():
    net, loss = small_cnn(), jaxbp.softmax_cross_entropy()
    x, y = images(n=12)
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    runs = [train.fit(net, loss, optax.sgd(0.1), params, x, y, key=jax.random.key(5),
                      epochs=2, batch_size=4, fused=fused, train_accuracy=False,
                      progress=False) for fused in (True, False)]
    assert max_abs_diff(runs[0].params, runs[1].params) < 1e-5
    np.testing.assert_allclose(runs[0].history["loss"], runs[1].history["loss"], rtol=1e-5)


def test_fit_is_quiet_off_a_terminal_but_prints_epochs_when_verbose(capsys):
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(32)
    params, _ = net.init(jax.random.key(0), (2,))
    train.fit(net, loss, optax.sgd(0.1), params, x, y, key=jax.random.key(0), epochs=2,
              batch_size=8)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""  # stderr is not a terminal under pytest
    train.fit(net, loss, optax.sgd(0.1), params, x, y, key=jax.random.key(0), epochs=3,
              batch_size=8, verbose=True, desc="mlp")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("mlp epoch 1/3") and "loss" in lines[0] and "acc" in lines[0]


def test_fit_draws_a_progress_bar_when_asked(monkeypatch):
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(32)
    params, _ = net.init(jax.random.key(0), (2,))
    train.fit(net, loss, optax.sgd(0.1), params, x, y, key=jax.random.key(0), epochs=2,
              batch_size=8, progress=True, desc="bar")
    text = stream.getvalue()
    assert "bar" in text and "2/2" in text and "loss" in text and "acc" in text


def test_fit_rejects_a_legacy_key_and_mismatched_data():
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(16)
    params, _ = net.init(jax.random.key(0), (2,))
    with pytest.raises(TypeError, match="key must be a typed key"):
        train.fit(net, loss, optax.sgd(0.1), params, x, y, key=np.uint32([0, 1]))
    with pytest.raises(ValueError, match="y must have 16 rows"):
        train.fit(net, loss, optax.sgd(0.1), params, x, y[:10], key=jax.random.key(0))


def test_labels_outside_the_classes_are_refused_not_silently_left_out():
    """softmax_cross_entropy's one-hot row of a label >= classes (or < 0) is all zeros:
    the example would add nothing to the loss. fit and evaluate refuse such labels,
    training's and validation's, before compiling anything; other losses and float
    targets are not concerned."""
    net, loss = small_mlp(), jaxbp.softmax_cross_entropy()
    x, y = blobs(16)
    params, _ = net.init(jax.random.key(0), (2,))
    sgd, key = optax.sgd(0.1), jax.random.key(0)
    with pytest.raises(ValueError, match=r"fit: integer labels y must be in \[0, 3\) "
                                         r"\(the network has 3 outputs\), got 3"):
        train.fit(net, loss, sgd, params, x, np.where(y == 2, 3, y), key=key, batch_size=8)
    with pytest.raises(ValueError, match=r"integer labels y must be in \[0, 3\).*got -1"):
        train.fit(net, loss, sgd, params, x, y - 1, key=key, batch_size=8)
    with pytest.raises(ValueError, match=r"integer labels validation_data\[1\] .* got 7"):
        train.fit(net, loss, sgd, params, x, y, key=key, batch_size=8,
                  validation_data=(x, y + 5))
    with pytest.raises(ValueError, match=r"evaluate: integer labels y .* got 4"):
        train.evaluate(net, loss, params, x, y + 2)
    # a network with state: its output width comes from inference mode
    bn = jaxbp.serial(jaxbp.dense(4), jaxbp.batch_norm(), jaxbp.dropout(0.1),
                      jaxbp.dense(3))
    bn_params, _ = bn.init(jax.random.key(0), (2,))
    with pytest.raises(ValueError, match=r"must be in \[0, 3\).*got 3"):
        train.fit(bn, loss, sgd, bn_params, x, y + 1, key=key, batch_size=8)
    # labels in range, and a loss without classes, train
    train.fit(net, jaxbp.half_mse(), sgd, params, x, (y[:, None] + 7.0) * np.ones(3),
              key=key, epochs=1, batch_size=8)


# --------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip_the_tree(tmp_path):
    net = jaxbp.serial(small_cnn(), jaxbp.dense(2, bias=False))
    params, _ = net.init(jax.random.key(0), (6, 6, 1))
    # device_put: jnp.arange would compile an iota program.
    params = (params[0], params[1], [jax.device_put(np.arange(3, dtype=np.int32)), None])
    written = train.save(tmp_path / "params", params)  # ".npz" added, as numpy does
    assert written == str(tmp_path / "params.npz")
    back = train.load(tmp_path / "params")
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A loaded tree trains like the original.
    x, y = images(n=4)
    forward = jax.jit(lambda p, x: net.forward(p, x)[0])  # one program for both trees
    out1 = forward(back[:2], x)
    np.testing.assert_array_equal(np.asarray(out1), np.asarray(forward(params[:2], x)))


def test_save_refuses_what_it_cannot_restore_and_load_foreign_files(tmp_path):
    with pytest.raises(TypeError, match="keys must be str"):
        train.save(tmp_path / "a.npz", {1: np.zeros(2, np.float32)})
    with pytest.raises(TypeError, match="node of type object"):
        train.save(tmp_path / "b.npz", (object(),))
    np.savez(tmp_path / "c.npz", w=np.zeros(2))
    with pytest.raises(ValueError, match="not a jaxbp parameter file"):
        train.load(tmp_path / "c.npz")
