"""The layers beyond the documents: every backward against jax.vjp, finite differences
and jit (the shared helper), plus each layer's own conventions.

Layer norm, batch norm (both modes), dropout (one draw, bound to its key), GELU (both
forms), leaky relu, average pools, global average pool, dense on rank > 2, softmax
cross-entropy per position, and the embedding (integer input: its own check against
jax.vjp with respect to the table, since the shared helper perturbs ``x``).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import (assert_layer_matches_autodiff, assert_layer_stays_float32,
                     assert_loss_matches_autodiff, forward_backward, init_shapes,
                     on_device)

KEY = jax.random.key(0)


# ------------------------------------------------------------------------ layer norm


@pytest.mark.parametrize("shape, batch, eager", [
    ((4,), 1, True), ((3, 5), 2, False), ((2, 3, 6), 1, False)])
def test_layer_norm_matches_autodiff(shape, batch, eager):
    assert_layer_matches_autodiff(jaxbp.layer_norm(), shape, batch=batch, eager=eager)


def test_layer_norm_forward_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5))
    scale, bias = rng.normal(size=5), rng.normal(size=5)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)  # biased
    want = (x - mean) / np.sqrt(var + 1e-3) * scale + bias
    with jax.enable_x64(True):
        y = jax.jit(lambda p, x_: jaxbp.layer_norm(eps=1e-3).forward(p, x_)[0])(
            {"scale": scale, "bias": bias}, x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, want, rtol=1e-12)


# ------------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("shape, batch, eager", [
    ((4,), 3, True), ((3, 3, 2), 1, False), ((2, 5), 2, False)])
def test_batch_norm_training_matches_autodiff(shape, batch, eager):
    """forward(params, x): the batch statistics, the path through them included."""
    assert_layer_matches_autodiff(jaxbp.batch_norm(), shape, batch=batch, eager=eager)


@pytest.mark.parametrize("shape, batch", [((4,), 3), ((3, 2, 2), 1)])
def test_batch_norm_inference_matches_autodiff(shape, batch):
    """Inference mode: the running statistics are constants of the backward."""
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        state = {"mean": jnp.asarray(rng.normal(size=shape[-1:])),
                 "var": jnp.asarray(rng.uniform(0.5, 2.0, size=shape[-1:]))}
        layer = jaxbp.bind(jaxbp.batch_norm(), state=state, train=False)
        assert_layer_matches_autodiff(layer, shape, batch=batch, eager=batch == 3)


def test_batch_norm_train_apply_equals_forward_and_updates_state():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3, 2, 5)) * 2 + 1
    with jax.enable_x64(True):
        bn = jaxbp.batch_norm(momentum=0.8)
        params, _ = bn.init(KEY, (3, 2, 5))
        params = {"scale": rng.normal(size=5), "bias": rng.normal(size=5)}
        state = jaxbp.init_state(bn, params)
        assert set(state) == {"mean", "var"}
        np.testing.assert_array_equal(state["mean"], np.zeros(5))
        np.testing.assert_array_equal(state["var"], np.ones(5))

        @jax.jit  # apply and forward in one compiled program
        def both(params, state, x):
            y, _, new_state = jaxbp.apply(bn, params, state, x, train=True)
            return y, new_state, bn.forward(params, x)[0]

        y, new_state, y_plain = both(params, state, x)
    flat = x.reshape(-1, 5)
    mean, biased = flat.mean(0), flat.var(0)
    want = (x - mean) / np.sqrt(biased + 1e-5) * params["scale"] + params["bias"]
    np.testing.assert_allclose(y, want, rtol=1e-11, atol=1e-12)
    np.testing.assert_array_equal(y, y_plain)
    n = flat.shape[0]
    np.testing.assert_allclose(new_state["mean"], 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(new_state["var"], 0.8 + 0.2 * biased * n / (n - 1),
                               rtol=1e-12)


def test_batch_norm_inference_uses_running_statistics():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4))
    mean, var = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    with jax.enable_x64(True):
        bn = jaxbp.batch_norm()
        # Eager (the state must come back as the very same object); device_put sends
        # the NumPy arrays over without compiling a transfer program.
        params = jax.device_put({"scale": np.full((4,), 2.0), "bias": np.full((4,), 0.5)})
        state = jax.device_put({"mean": mean, "var": var})
        y, _, same = jaxbp.apply(bn, params, state, jax.device_put(x))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5) * 2 + 0.5, rtol=1e-12)
    assert same is state


def test_batch_norm_without_state_in_inference_mode_names_state():
    bn = jaxbp.batch_norm()
    params, _ = bn.init(KEY, (3,))
    x = jax.device_put(np.ones((2, 3), np.float32))  # no transfer program compiled
    with pytest.raises(ValueError, match=r"batch_norm\(\): state must hold the running "
                                         r"statistics .* got None"):
        jaxbp.apply(bn, params, None, x)
    with pytest.raises(ValueError, match=r"state\['var'\] must have shape \(3,\), got "
                                         r"\(4,\)"):
        jaxbp.apply(bn, params, jax.device_put({"mean": np.zeros(3, np.float32),
                                                "var": np.ones(4, np.float32)}),
                    x, train=True)


def test_batch_norm_training_with_one_value_per_feature_is_an_error():
    bn = jaxbp.batch_norm()
    params, _ = bn.init(KEY, (3,))
    with pytest.raises(ValueError, match=r"more than one value per feature .* got x of "
                                         r"shape \(1, 3\)"):
        jaxbp.apply(bn, params, jaxbp.init_state(bn, params),
                    jax.device_put(np.ones((1, 3), np.float32)), train=True)


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("rate, shape, batch, eager", [
    (0.5, (6,), 1, True), (0.2, (3, 4), 2, False), (0.0, (3,), 2, False)])
def test_dropout_one_draw_matches_autodiff(rate, shape, batch, eager):
    """Bound to one key, the layer is a fixed function of x: the backward must use the
    mask the forward drew."""
    layer = jaxbp.bind(jaxbp.dropout(rate), key=jax.random.key(7), train=True)
    assert_layer_matches_autodiff(layer, shape, batch=batch, eager=eager)


def test_dropout_inference_is_the_identity():
    layer = jaxbp.dropout(0.5)
    x = jax.device_put(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    y, residuals = layer.forward((), x)
    np.testing.assert_array_equal(y, x)
    y2, _, _ = jaxbp.apply(layer, (), (), x, key=KEY, train=False)
    np.testing.assert_array_equal(y2, x)
    _, dx = layer.backward((), residuals, jax.device_put(np.ones((2, 3), np.float32)))
    np.testing.assert_array_equal(dx, np.ones((2, 3)))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scale(rate):
    """Over 200k units the kept fraction is within 5 standard deviations of 1 - rate,
    and every kept unit is x / (1 - rate)."""
    n = 200_000
    x = jnp.asarray(np.random.default_rng(5).uniform(1, 2, size=(100, n // 100)),
                    jnp.float32)
    y, residuals, _ = jaxbp.apply(jaxbp.dropout(rate), (), (), x, key=jax.random.key(11),
                                  train=True)
    y, x = np.asarray(y), np.asarray(x)
    kept = y != 0
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(kept.mean() - (1 - rate)) < 5 * sigma, kept.mean()
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(residuals.keep), kept)
    # Masks of neighbouring rows are not copies of each other.
    assert not np.array_equal(kept[0], kept[1])


def test_dropout_backward_uses_the_forward_mask():
    layer = jaxbp.dropout(0.5)
    x = jnp.ones((4, 50), jnp.float32)
    y, residuals, _ = jaxbp.apply(layer, (), (), x, key=jax.random.key(3), train=True)
    _, dx = layer.backward((), residuals, jnp.ones_like(x))
    np.testing.assert_array_equal(np.asarray(dx), np.asarray(y))  # 2 where kept, 0 else
    # Another key draws another mask: the backward follows the residuals, not a redraw.
    y2, _, _ = jaxbp.apply(layer, (), (), x, key=jax.random.key(4), train=True)
    assert not np.array_equal(np.asarray(y2), np.asarray(y))


def test_dropout_needs_a_key_in_training_mode():
    with pytest.raises(ValueError, match=r"dropout\(0.5\): key must be a jax.random.key "
                                         r"in training mode \(train=True\), got None"):
        jaxbp.apply(jaxbp.dropout(0.5), (), (), jnp.ones((2, 3)), train=True)
    # rate 0 drops nothing and needs no key.
    y, _, _ = jaxbp.apply(jaxbp.dropout(0.0), (), (), jnp.ones((2, 3)), train=True)
    np.testing.assert_array_equal(y, np.ones((2, 3)))


@pytest.mark.parametrize("rate, error, phrase", [
    (1.0, ValueError, "rate must be in [0, 1) (the probability of dropping a unit), got 1.0"),
    (-0.1, ValueError, "got -0.1"),
    ("0.5", TypeError, "rate must be a number in [0, 1), got '0.5' of type str"),
    (True, TypeError, "got True of type bool"),
    (float("nan"), TypeError, "got nan"),
])
def test_dropout_rate_validation(rate, error, phrase):
    with pytest.raises(error, match=re.escape(phrase)):
        jaxbp.dropout(rate)


# ------------------------------------------------------------------ gelu, leaky relu


@pytest.mark.parametrize("make", [lambda: jaxbp.gelu(), lambda: jaxbp.gelu(False),
                                  lambda: jaxbp.leaky_relu(), lambda: jaxbp.leaky_relu(0.3)],
                         ids=["gelu tanh", "gelu erf", "leaky_relu", "leaky_relu 0.3"])
@pytest.mark.parametrize("shape, batch, eager", [
    ((1,), 1, True), ((3, 5), 3, False), ((2, 3, 5), 1, False)])
def test_new_activations_match_autodiff(make, shape, batch, eager):
    assert_layer_matches_autodiff(make(), shape, batch=batch, eager=eager)


def test_gelu_forward_values():
    from math import erf, pi, sqrt, tanh

    x = np.array([[-3.0, -1.0, -0.2, 0.0, 0.7, 2.5]])
    tanh_form = [0.5 * v * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 * v ** 3))) for v in x[0]]
    erf_form = [0.5 * v * (1 + erf(v / sqrt(2))) for v in x[0]]
    with jax.enable_x64(True):
        y_tanh, y_erf = jax.jit(lambda x_: (jaxbp.gelu().forward((), x_)[0],
                                            jaxbp.gelu(approximate=False).forward((), x_)[0]))(x)
    y_tanh, y_erf = np.asarray(y_tanh), np.asarray(y_erf)
    assert y_tanh.dtype == y_erf.dtype == np.float64
    np.testing.assert_allclose(y_tanh[0], tanh_form, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(y_erf[0], erf_form, rtol=1e-13, atol=1e-15)
    assert np.max(np.abs(y_tanh - y_erf)) > 1e-5  # two functions


def test_leaky_relu_values_and_kink_convention():
    """y = x for x >= 0, slope * x below; the derivative at 0 is 1, as jax.nn.leaky_relu."""
    layer = jaxbp.leaky_relu(0.1)
    x = np.array([[-2.0, 0.0, 3.0]], np.float32)

    @jax.jit  # the layer and JAX's own derivative at 0 in one compiled program
    def run(x, dy, zero):
        y, (_, dx) = forward_backward(layer)((), x, dy)
        return y, dx, jax.grad(lambda v: jax.nn.leaky_relu(v, 0.1))(zero)

    y, dx, at_zero = run(x, np.ones((1, 3), np.float32), np.float32(0.0))
    np.testing.assert_allclose(y, [[-0.2, 0.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(dx, [[0.1, 1.0, 1.0]], rtol=1e-6)
    assert float(at_zero) == 1.0


@pytest.mark.parametrize("make, phrase", [
    (lambda: jaxbp.gelu("yes"), "gelu: approximate must be True or False, got 'yes'"),
    (lambda: jaxbp.leaky_relu("0.1"), "leaky_relu: negative_slope must be a finite number"),
])
def test_activation_argument_errors(make, phrase):
    with pytest.raises(TypeError, match=re.escape(phrase)):
        make()


# ------------------------------------------------------------------------- avg pools


@pytest.mark.parametrize("window, stride, length, batch, eager", [
    (2, None, 8, 2, True), (2, None, 7, 1, False), (3, 1, 7, 2, False),
    (2, 3, 9, 1, False), (3, 2, 8, 1, False)])
def test_avg_pool1d_matches_autodiff(window, stride, length, batch, eager):
    assert_layer_matches_autodiff(jaxbp.avg_pool1d(window, stride), (length, 2),
                                  batch=batch, eager=eager)


@pytest.mark.parametrize("window, stride, shape, eager", [
    (2, None, (4, 4, 1), True), ((2, 3), None, (5, 7, 2), False),
    (2, 1, (5, 4, 2), False), ((3, 2), (1, 2), (6, 5, 1), False),
    ((1, 2), (2, 3), (5, 9, 2), False)])
def test_avg_pool2d_matches_autodiff(window, stride, shape, eager):
    assert_layer_matches_autodiff(jaxbp.avg_pool2d(window, stride), shape, batch=1,
                                  eager=eager)


def test_avg_pool2d_values_floor_and_untouched_rows():
    x = np.arange(2 * 5 * 5 * 1, dtype=np.float64).reshape(2, 5, 5, 1)
    layer = jaxbp.avg_pool2d(2)
    with jax.enable_x64(True):
        y, (_, dx) = forward_backward(layer)((), x, np.ones((2, 2, 2, 1)))
    y, dx = np.asarray(y), np.asarray(dx)
    want = x[:, :4, :4, 0].reshape(2, 2, 2, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(y[..., 0], want, rtol=1e-13)
    assert y.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(dx[:, :4, :4], np.full((2, 4, 4, 1), 0.25))
    np.testing.assert_array_equal(dx[:, 4], 0)  # the floor's leftover row
    np.testing.assert_array_equal(dx[:, :, 4], 0)


@pytest.mark.parametrize("shape, batch, eager", [
    ((4, 4, 3), 1, True), ((5, 2), 2, False), ((2, 3, 2, 2), 1, False)])
def test_global_avg_pool_matches_autodiff(shape, batch, eager):
    layer = jaxbp.global_avg_pool()
    _, out = layer.init(KEY, shape)
    assert out == shape[-1:]
    assert_layer_matches_autodiff(layer, shape, batch=batch, eager=eager)


def test_avg_pool_errors():
    with pytest.raises(ValueError, match=re.escape(
            "avg_pool2d(3): the window (3, 3) is larger than x's spatial shape (2, 4)")):
        jaxbp.avg_pool2d(3).forward((), jnp.ones((1, 2, 4, 1)))
    with pytest.raises(ValueError, match=re.escape(
            "global_avg_pool(): x must have rank at least 3 (batch, *spatial, channels), "
            "got shape (2, 3) (rank 2)")):
        jaxbp.global_avg_pool().forward((), jnp.ones((2, 3)))


# --------------------------------------------------------------------- dense, rank 3


@pytest.mark.parametrize("shape, batch, bias, eager", [
    ((3, 5), 2, True, True), ((1, 4), 1, False, False), ((2, 3, 4), 1, True, False)])
def test_dense_on_the_last_axis_of_any_rank(shape, batch, bias, eager):
    layer = jaxbp.dense(3, bias=bias)
    _, out = layer.init(KEY, shape)
    assert out == (*shape[:-1], 3)
    assert_layer_matches_autodiff(layer, shape, batch=batch, eager=eager)


def test_dense_rank3_equals_rank2_on_flattened_positions():
    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        layer = jaxbp.dense(3)
        params = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
        x, dy = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 3))

        @jax.jit  # both ranks in one compiled program
        def both(params, x, dy):
            run = forward_backward(layer)
            return run(params, x, dy), run(params, x.reshape(10, 4), dy.reshape(10, 3))

        (y, (g, dx)), (y2, (g2, dx2)) = both(params, x, dy)
    y, dx = np.asarray(y), np.asarray(dx)  # reshaped on the host
    assert y.shape == (2, 5, 3) and dx.shape == (2, 5, 4)
    np.testing.assert_allclose(y.reshape(10, 3), y2, rtol=1e-13)
    np.testing.assert_allclose(dx.reshape(10, 4), dx2, rtol=1e-13)
    np.testing.assert_allclose(g["w"], g2["w"], rtol=1e-13)
    np.testing.assert_allclose(g["b"], g2["b"], rtol=1e-13)


# ------------------------------------------------------- cross-entropy per position


def test_softmax_cross_entropy_per_position_matches_autodiff():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 3, 5))
    labels = rng.integers(0, 5, size=(2, 3)).astype(np.int32)
    loss = jaxbp.softmax_cross_entropy()
    value, _ = assert_loss_matches_autodiff(loss, logits, labels)
    one_hot = np.eye(5)[labels]
    value_oh, _ = assert_loss_matches_autodiff(loss, logits, one_hot)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.mean(np.take_along_axis(log_p, labels[..., None], -1))  # every position
    np.testing.assert_allclose(value, want, rtol=1e-12)
    np.testing.assert_allclose(value_oh, want, rtol=1e-12)


def test_softmax_cross_entropy_per_position_label_errors():
    loss = jaxbp.softmax_cross_entropy()
    # Eager: concrete labels are range-checked. device_put sends the NumPy arrays over
    # without compiling a transfer program.
    logits = jax.device_put(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=re.escape(
            "labels must be in [0, 3] for 4 classes, got labels[1, 2] = 4")):
        loss.forward(logits, jax.device_put(np.array([[0, 1, 2], [3, 0, 4]], np.int32)))
    with pytest.raises(ValueError, match=re.escape("integer labels must have shape (2, 3)")):
        loss.forward(logits, jax.device_put(np.zeros((2,), np.int32)))
    with pytest.raises(TypeError, match="integer labels must have an integer dtype"):
        loss.forward(logits, jax.device_put(np.zeros((2, 3), np.float32)))


# ------------------------------------------------------------------------- embedding


def embedding_check(layer, params, ids, dy):
    """The backward against jax.vjp of the forward with respect to the table, eager and
    jitted, and against NumPy's unbuffered scatter-add; returns the largest error."""
    def manual(params, ids, dy):
        y, residuals = layer.forward(params, ids)
        dparams, dx = layer.backward(params, residuals, dy)
        assert dx is None
        return y, dparams

    @jax.jit  # the reference, once: compiled, not op by op
    def reference(params, ids, dy):
        _, vjp = jax.vjp(lambda p: layer.forward(p, ids)[0], params)
        return vjp(dy)[0]

    want = np.zeros(params["w"].shape)
    np.add.at(want, np.asarray(ids).reshape(-1), np.asarray(dy).reshape(-1, dy.shape[-1]))
    ref = np.asarray(reference(params, ids, dy)["w"])
    worst = 0.0
    for run in (manual, jax.jit(manual)):
        y, dparams = run(params, ids, dy)
        np.testing.assert_array_equal(y, np.asarray(params["w"])[np.asarray(ids)])
        for got in (ref, want):
            err = float(np.max(np.abs(np.asarray(dparams["w"]) - got)))
            assert err <= 1e-12, err
            worst = max(worst, err)
    return worst


@pytest.mark.parametrize("ids", [
    [[1, 2, 1], [0, 9, 1]],        # (batch, time), ids repeat
    [3, 3, 3],                     # (batch,), one id three times
    [[[4]]],                       # batch 1, (batch, 1, 1)
], ids=["2x3", "batch of 3 same", "1x1x1"])
def test_embedding_matches_autodiff_and_scatter_add(ids):
    rng = np.random.default_rng(8)
    layer = jaxbp.embedding(10, 4)
    # device_put: JAX arrays for the eager run without compiling a transfer program.
    ids = on_device(ids, np.int32)
    _, out = init_shapes(layer, ids.shape[1:])  # init traced, not compiled
    assert out == (*ids.shape[1:], 4)
    with jax.enable_x64(True):
        params = jax.device_put({"w": rng.normal(size=(10, 4))})
        dy = jax.device_put(rng.normal(size=(*ids.shape, 4)))
        embedding_check(layer, params, ids, dy)


def test_embedding_params_layout_and_errors():
    layer = jaxbp.embedding(7, 3)
    params, out = layer.init(KEY, (5,))
    assert set(params) == {"w"} and params["w"].shape == (7, 3) and out == (5, 3)
    with pytest.raises(TypeError, match=re.escape(
            "embedding(7, 3): x must be integer ids (an integer dtype), got float32")):
        layer.forward(params, jax.device_put(np.zeros((2, 5), np.float32)))
    # Eager: concrete ids are range-checked.
    with pytest.raises(ValueError, match=re.escape(
            "embedding(7, 3): ids must be in [0, 6], got x[1, 0] = 7")):
        layer.forward(params, jax.device_put(np.array([[0, 1], [7, 2]], np.int32)))
    with pytest.raises(ValueError, match=re.escape("got x[0] = -1")):
        layer.forward(params, jax.device_put(np.array([-1, 2], np.int32)))


def test_embedding_out_of_range_under_jit_is_nan_and_gets_no_gradient():
    layer = jaxbp.embedding(4, 2)
    params = {"w": np.arange(8.0, dtype=np.float32).reshape(4, 2)}

    @jax.jit
    def run(ids):
        y, residuals = layer.forward(params, ids)
        return y, layer.backward(params, residuals, jnp.ones_like(y))[0]["w"]

    y, dw = (np.asarray(a) for a in run(np.array([1, 4, -1], np.int32)))
    np.testing.assert_array_equal(y[0], [2.0, 3.0])
    assert np.isnan(y[1:]).all()  # never another id's row
    np.testing.assert_array_equal(dw, [[0, 0], [1, 1], [0, 0], [0, 0]])


def test_embedding_first_in_serial_and_value_and_grad():
    """An embedding as the first layer: dx is None for the network, and the gradient
    of a small sequence classifier matches jax.grad."""
    net = jaxbp.serial(jaxbp.embedding(6, 4), jaxbp.layer_norm(), jaxbp.dense(5),
                       jaxbp.gelu(), jaxbp.dense(3))
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(9)
    with jax.enable_x64(True):
        params, out = init_shapes(net, (4,))  # init traced, not compiled
        params = jax.tree.map(lambda a: rng.normal(size=a.shape) * 0.5, params)
        ids = rng.integers(0, 6, size=(3, 4)).astype(np.int32)
        labels = rng.integers(0, 3, size=(3, 4)).astype(np.int32)

        def backward(params, ids):
            y, residuals = net.forward(params, ids)
            return y, net.backward(params, residuals, jnp.ones_like(y))[1]

        y, dx = jax.eval_shape(backward, params, ids)  # traced, not compiled
        assert y.shape == (3, 4, 3) and out == (4, 3)
        assert dx is None

        def both(params, ids, labels):  # one compiled program
            ref = jax.value_and_grad(
                lambda p: loss.forward(net.forward(p, ids)[0], labels)[0])(params)
            return jaxbp.value_and_grad(net, loss)(params, ids, labels), ref

        (value, grads), (ref_value, ref) = jax.jit(both)(params, ids, labels)
    np.testing.assert_allclose(value, ref_value, rtol=1e-13)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------- layouts, dtype


@pytest.mark.parametrize("layer, input_shape, params, out", [
    (jaxbp.layer_norm(), (3, 4), {"scale": (4,), "bias": (4,)}, (3, 4)),
    (jaxbp.batch_norm(), (5, 5, 2), {"scale": (2,), "bias": (2,)}, (5, 5, 2)),
    (jaxbp.embedding(9, 2), (3,), {"w": (9, 2)}, (3, 2)),
    (jaxbp.dropout(0.5), (3, 4), (), (3, 4)),
    (jaxbp.gelu(), (4,), (), (4,)), (jaxbp.leaky_relu(), (4,), (), (4,)),
    (jaxbp.avg_pool1d(2), (5, 3), (), (2, 3)),
    (jaxbp.avg_pool2d(2, 1), (4, 5, 3), (), (3, 4, 3)),
    (jaxbp.global_avg_pool(), (4, 5, 3), (), (3,)),
], ids=lambda v: getattr(v, "name", ""))
def test_param_layouts(layer, input_shape, params, out):
    got, shape = layer.init(KEY, input_shape)
    assert jax.tree.map(jnp.shape, got) == params
    assert shape == out
    if isinstance(params, dict) and "scale" in params:
        np.testing.assert_array_equal(got["scale"], np.ones(params["scale"]))
        np.testing.assert_array_equal(got["bias"], np.zeros(params["bias"]))


@pytest.mark.parametrize("layer, shape", [
    (jaxbp.layer_norm(), (3, 4)), (jaxbp.batch_norm(), (3, 3, 2)),
    (jaxbp.gelu(), (3,)), (jaxbp.gelu(False), (3,)), (jaxbp.leaky_relu(), (3,)),
    (jaxbp.avg_pool1d(2), (5, 2)), (jaxbp.avg_pool2d(2, 1), (4, 5, 1)),
    (jaxbp.global_avg_pool(), (3, 3, 2)), (jaxbp.dense(3), (2, 4)),
], ids=lambda v: getattr(v, "name", ""))
def test_float32_stays_float32_with_x64_enabled(layer, shape):
    assert_layer_stays_float32(layer, shape)


def test_dropout_stays_float32_with_x64_enabled():
    """y, dx and the uniform numbers behind the mask are float32. (Not the helper's
    no-f64-anywhere check: jax.random.bernoulli passes its bounds 0 and 1 as f64
    scalars to its uniform sampler under x64, converted before any array is made.)"""
    layer = jaxbp.dropout(0.5)
    with jax.enable_x64(True):
        def step(x, dy):
            y, residuals, _ = jaxbp.apply(layer, (), (), x, key=KEY, train=True)
            return y, layer.backward((), residuals, dy)[1]

        x = jnp.ones((2, 4), jnp.float32)
        y, dx = jax.eval_shape(step, x, x)
        text = jax.jit(step).lower(x, x).as_text()
    assert y.dtype == dx.dtype == jnp.float32
    assert "tensor<2x4xf64>" not in text
