"""Every layer's hand-written backward against jax.vjp, finite differences and jit.

Each layer goes through :func:`helpers.assert_layer_matches_autodiff` on several shapes:
batch 1, odd sizes, every padding mode, strides 1 to 3, non-square kernels and windows.
Hypothesis draws further conv and pool geometries. Inputs never tie and never sit at
relu's kink (``relu'(0) = 0`` by convention, as ``jax.nn.relu``; pinned below).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import assert_layer_matches_autodiff, assert_layer_stays_float32

# Few examples, fixed seed: each new geometry costs one compilation.


def random_geometries(case, check):
    """Runs ``check(geometry)`` on 10 geometries that hypothesis draws (the same ones
    every run) with ``case(draw, st)``, the body of an ``@st.composite`` strategy.
    Hypothesis is imported here, by the tests that use it: it takes over a second, and
    every pytest-xdist worker collects every module."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    strategy = st.composite(lambda draw: case(draw, st))()
    settings(max_examples=10, deadline=None, derandomize=True)(given(strategy)(check))()


# ----------------------------------------------------------------------------- dense


@pytest.mark.parametrize("features, n_in, batch, bias, eager", [
    (1, 1, 1, True, True),
    (3, 5, 2, True, False),
    (4, 7, 3, False, True),
    (2, 2, 1, False, False),
])
def test_dense_matches_autodiff(features, n_in, batch, bias, eager):
    assert_layer_matches_autodiff(jaxbp.dense(features, bias=bias), (n_in,), batch=batch,
                                  eager=eager)


def test_dense_backward_formulas():
    """dx = dy @ w.T, dw = x.T @ dy, db = sum over the batch, computed in NumPy."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x, w, b, dy = (rng.normal(size=s) for s in [(3, 4), (4, 2), (2,), (3, 2)])
        layer = jaxbp.dense(2)

        @jax.jit  # forward and backward in one compiled program, NumPy arrays in
        def step(params, x, dy):
            y, residuals = layer.forward(params, x)
            return y, layer.backward(params, residuals, dy)

        y, (dparams, dx) = step({"w": w, "b": b}, x, dy)
        np.testing.assert_allclose(y, x @ w + b[None, :], rtol=1e-13)
        np.testing.assert_allclose(dx, dy @ w.T, rtol=1e-13)
        np.testing.assert_allclose(dparams["w"], x.T @ dy, rtol=1e-13)
        np.testing.assert_allclose(dparams["b"], dy.sum(axis=0), rtol=1e-13)


# ------------------------------------------------------------------------ activations

ACTIVATIONS = [jaxbp.sigmoid, jaxbp.tanh, jaxbp.relu, jaxbp.softmax]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape, batch, eager", [
    ((1,), 1, True), ((3, 5), 3, False), ((2, 3, 5), 1, False)])
def test_activation_matches_autodiff(make, shape, batch, eager):
    assert_layer_matches_autodiff(make(), shape, batch=batch, eager=eager)


@pytest.mark.parametrize("make, reference", [
    (jaxbp.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (jaxbp.tanh, np.tanh),
    (jaxbp.relu, lambda x: np.maximum(x, 0)),
    (jaxbp.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
], ids=["sigmoid", "tanh", "relu", "softmax"])
def test_activation_forward_values(make, reference):
    x = np.linspace(-3, 3, 12).reshape(3, 4) + 0.01  # no entry at 0
    with jax.enable_x64(True):
        y, _ = jax.jit(make().forward)((), x)  # one program, not one per operation
        np.testing.assert_allclose(y, reference(x), rtol=1e-13)


def test_sigmoid_derivative_is_f_minus_f_squared():
    """Documents 000, 001, 004: f'(z) = f - f^2 = f (1 - f)."""
    z = np.array([[-2.0, -0.3, 0.4, 1.7]])
    f = 1 / (1 + np.exp(-z))
    with jax.enable_x64(True):
        layer = jaxbp.sigmoid()

        @jax.jit  # forward and backward in one compiled program
        def dx_of(z, dy):
            _, residuals = layer.forward((), z)
            return layer.backward((), residuals, dy)[1]

        dx = dx_of(z, np.ones((1, 4)))
        np.testing.assert_allclose(dx, f - f ** 2, rtol=1e-13)


def test_relu_kink_convention_is_zero_like_jax():
    """relu'(0) = 0, the documented choice, and jax.nn.relu's."""
    layer = jaxbp.relu()

    @jax.jit  # the layer's dx and jax.nn.relu's gradient in one compiled program
    def gradients(x, dy, zero):
        _, residuals = layer.forward((), x)
        return layer.backward((), residuals, dy)[1], jax.grad(jax.nn.relu)(zero)

    dx, jax_grad_at_0 = gradients(np.array([[-1.0, 0.0, 1.0]], np.float32),
                                  np.ones((1, 3), np.float32), np.float32(0.0))
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 1.0]])
    assert float(jax_grad_at_0) == 0.0


# --------------------------------------------------------------------------- flatten


@pytest.mark.parametrize("shape, batch", [((3,), 1), ((3, 1, 2), 3)])
def test_flatten_matches_autodiff(shape, batch):
    assert_layer_matches_autodiff(jaxbp.flatten(), shape, batch=batch, eager=batch == 1)


# ------------------------------------------------------------------------------ conv

CONV1D_PADDINGS = ["VALID", "SAME", "same", 0, 2, (2, 1), ((1, 0),)]


@pytest.mark.parametrize("padding", CONV1D_PADDINGS, ids=repr)
def test_conv1d_every_padding_mode(padding):
    assert_layer_matches_autodiff(jaxbp.conv1d(2, 3, padding=padding), (7, 3), batch=2,
                                  eager=padding == "SAME")


@pytest.mark.parametrize("kernel, stride", [(1, 1), (2, 2), (4, 3), (4, 2), (1, 3)])
def test_conv1d_strides_and_kernels(kernel, stride):
    assert_layer_matches_autodiff(
        jaxbp.conv1d(3, kernel, stride=stride, padding="SAME" if kernel == 2 else "VALID"),
        (9, 2), batch=1, eager=False)


CONV2D_PADDINGS = ["VALID", "SAME", 1, ((0, 1), (2, 0)), ((1, 1), (0, 0))]


@pytest.mark.parametrize("padding", CONV2D_PADDINGS, ids=repr)
def test_conv2d_every_padding_mode(padding):
    assert_layer_matches_autodiff(jaxbp.conv2d(2, (2, 3), padding=padding), (5, 6, 2),
                                  batch=2, eager=padding == "SAME")


@pytest.mark.parametrize("kernel, stride", [((3, 1), (1, 2)), ((1, 2), 3), ((2, 3), (2, 1)),
                                            (3, 3)])
def test_conv2d_non_square_kernels_and_strides(kernel, stride):
    assert_layer_matches_autodiff(jaxbp.conv2d(3, kernel, stride=stride, padding="SAME"),
                                  (7, 5, 1), batch=1, eager=False)


@pytest.mark.parametrize("layer, shape", [
    (jaxbp.conv1d(2, 4, padding="SAME"), (2, 1)),             # kernel longer than input
    (jaxbp.conv1d(3, 2, stride=5, padding="SAME"), (11, 2)),  # stride > kernel: gaps
    (jaxbp.conv1d(1, 5, stride=3, padding=(3, 4)), (1, 2)),   # padding wider than input
    (jaxbp.conv2d(2, (5, 1), padding=((4, 0), (0, 0))), (1, 3, 2)),
], ids=["kernel > input", "stride > kernel", "padding > input", "one-sided padding"])
def test_conv_edge_geometry(layer, shape):
    assert_layer_matches_autodiff(layer, shape, batch=1, eager=False)


def test_explicit_params_and_input():
    """The helper also takes given params and x: a 2x2 kernel of document 004's kind on
    a 4x4 input with an exact-integer grid (no ties within any window)."""
    x = (np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1) - 7.5) / 4
    params = {"w": np.array([[1.0, -2.0], [0.5, 3.0]]).reshape(2, 2, 1, 1),
              "b": np.array([0.25])}
    net = jaxbp.serial(jaxbp.conv2d(1, 2), jaxbp.sigmoid(), jaxbp.max_pool2d(2, 1))
    got_params, got_x, _, _ = assert_layer_matches_autodiff(
        net, (4, 4, 1), params=(params, (), ()), x=x, eager=False)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_params[0]["w"], params["w"])


def test_conv_without_bias():
    layer = jaxbp.conv2d(2, 2, bias=False)
    params, _, _, (dparams, _) = assert_layer_matches_autodiff(layer, (3, 4, 1),
                                                               eager=False)
    assert set(params) == set(dparams) == {"w"}


def smallest_input(k, padding_pair, padding):
    """The smallest input size the kernel fits: SAME always fits."""
    if padding == "SAME":
        return 1
    return max(1, k - sum(padding_pair))


def conv1d_case(draw, st):
    k = draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["VALID", "SAME", 1, (2, 0), (0, 3)]))
    pair = {"VALID": (0, 0), "SAME": None, 1: (1, 1)}.get(padding, padding)
    length = draw(st.integers(smallest_input(k, pair, padding), 9))
    return dict(features=draw(st.integers(1, 3)), k=k, stride=draw(st.integers(1, 3)),
                padding=padding, length=length, channels=draw(st.integers(1, 3)),
                batch=draw(st.integers(1, 3)))


def test_conv1d_random_geometry():
    def check(case):
        layer = jaxbp.conv1d(case["features"], case["k"], stride=case["stride"],
                             padding=case["padding"])
        assert_layer_matches_autodiff(layer, (case["length"], case["channels"]),
                                      batch=case["batch"], eager=False)
    random_geometries(conv1d_case, check)


def conv2d_case(draw, st):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["VALID", "SAME", 1, ((1, 0), (0, 2))]))
    pairs = {"VALID": ((0, 0),) * 2, "SAME": (None, None),
             1: ((1, 1),) * 2}.get(padding, padding)
    h = draw(st.integers(smallest_input(kh, pairs[0], padding), 6))
    w = draw(st.integers(smallest_input(kw, pairs[1], padding), 6))
    return dict(features=draw(st.integers(1, 3)), kernel=(kh, kw),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                padding=padding, shape=(h, w, draw(st.integers(1, 2))),
                batch=draw(st.integers(1, 2)))


def test_conv2d_random_geometry():
    def check(case):
        layer = jaxbp.conv2d(case["features"], case["kernel"], stride=case["stride"],
                             padding=case["padding"])
        assert_layer_matches_autodiff(layer, case["shape"], batch=case["batch"],
                                      eager=False)
    random_geometries(conv2d_case, check)


# ------------------------------------------------------------------------------ pool


@pytest.mark.parametrize("window, stride, length, eager", [
    (2, None, 8, True), (2, None, 7, False), (3, 1, 7, False), (2, 3, 9, False),
    (3, 2, 8, False), (1, None, 4, False)])
def test_max_pool1d_matches_autodiff(window, stride, length, eager):
    assert_layer_matches_autodiff(jaxbp.max_pool1d(window, stride), (length, 2), batch=2,
                                  eager=eager)


@pytest.mark.parametrize("window, stride, shape, eager", [
    (2, None, (4, 4, 1), True), ((2, 3), None, (5, 7, 2), False),
    (2, 1, (5, 4, 2), False), ((3, 2), (1, 2), (6, 5, 1), False),
    (3, 3, (7, 8, 1), False), ((1, 2), (2, 3), (5, 9, 2), False)])
def test_max_pool2d_matches_autodiff(window, stride, shape, eager):
    assert_layer_matches_autodiff(jaxbp.max_pool2d(window, stride), shape, batch=1,
                                  eager=eager)


def pool2d_case(draw, st):
    window = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, 3, (1, 2), (3, 1)]))
    shape = (draw(st.integers(window[0], 7)), draw(st.integers(window[1], 7)),
             draw(st.integers(1, 2)))
    return dict(window=window, stride=stride, shape=shape,
                batch=draw(st.integers(1, 2)))


def test_max_pool2d_random_geometry():
    def check(case):
        layer = jaxbp.max_pool2d(case["window"], case["stride"])
        assert_layer_matches_autodiff(layer, case["shape"], batch=case["batch"],
                                      eager=False)
    random_geometries(pool2d_case, check)


# ---------------------------------------------------------------------------- serial


def test_serial_cnn_matches_autodiff():
    net = jaxbp.serial(jaxbp.conv2d(3, (3, 2), padding="SAME"), jaxbp.relu(),
                       jaxbp.max_pool2d(2), jaxbp.flatten(), jaxbp.dense(4), jaxbp.tanh(),
                       jaxbp.dense(3), jaxbp.softmax())
    assert_layer_matches_autodiff(net, (6, 5, 2), batch=2, eager=False)


def test_serial_1d_matches_autodiff():
    net = jaxbp.serial(jaxbp.conv1d(2, 3, stride=2, padding=1), jaxbp.sigmoid(),
                       jaxbp.max_pool1d(2, 1), jaxbp.flatten(), jaxbp.dense(1, bias=False))
    assert_layer_matches_autodiff(net, (9, 1), batch=1, eager=False)


# --------------------------------------------------------------------- float32 stays


FLOAT32_CASES = [
    (jaxbp.dense(3), (4,)), (jaxbp.dense(2, bias=False), (3,)), (jaxbp.sigmoid(), (3,)),
    (jaxbp.tanh(), (3,)), (jaxbp.relu(), (2, 3)), (jaxbp.softmax(), (4,)),
    (jaxbp.flatten(), (2, 3)), (jaxbp.conv1d(2, 3, stride=2, padding="SAME"), (7, 2)),
    (jaxbp.conv2d(2, (2, 3), padding=((1, 0), (0, 1))), (4, 5, 1)),
    (jaxbp.max_pool1d(2), (5, 2)), (jaxbp.max_pool1d(3, 1), (6, 1)),
    (jaxbp.max_pool2d(2), (4, 5, 1)), (jaxbp.max_pool2d((2, 3), 1), (4, 5, 1)),
    (jaxbp.serial(jaxbp.conv2d(2, 2), jaxbp.relu(), jaxbp.flatten(), jaxbp.dense(2)),
     (3, 3, 1)),
]


@pytest.mark.parametrize("layer, shape", FLOAT32_CASES,
                         ids=lambda v: getattr(v, "name", ""))
def test_float32_stays_float32_with_x64_enabled(layer, shape):
    assert_layer_stays_float32(layer, shape)


# ------------------------------------------------------- the helper itself can fail


def _slipped(layer, slip):
    def backward(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return slip(dparams, dx, dy)
    return jaxbp.Layer(layer.init, layer.forward, backward, name=f"slipped {layer.name}")


@pytest.mark.parametrize("slip, phrase", [
    (lambda dp, dx, dy: (dp, -dx), "dx (jit) vs jax.vjp"),
    (lambda dp, dx, dy: ({**dp, "w": dp["w"] * 1.001}, dx), "dparams['w'] (jit)"),
    (lambda dp, dx, dy: ({"w": dp["w"]}, dx), "dparams has the structure"),
    (lambda dp, dx, dy: ({**dp, "b": dp["b"][:, None]}, dx), "dparams['b'] shape"),
    (lambda dp, dx, dy: (dp, dx.astype(jnp.float32)), "dx dtype float32"),
    (lambda dp, dx, dy: (dp, dx * 0.5 if isinstance(dy, jax.core.Tracer) else dx),
     "dx (jit) vs jax.vjp"),
    (lambda dp, dx, dy: (dp, dx * 0.5 if not isinstance(dy, jax.core.Tracer) else dx),
     "dx (eager) vs jax.vjp"),
], ids=["sign", "0.1% off", "missing leaf", "shape", "dtype", "jit only", "eager only"])
def test_the_helper_catches_slips(slip, phrase):
    with pytest.raises(AssertionError, match=re.escape(phrase)):
        assert_layer_matches_autodiff(_slipped(jaxbp.dense(2), slip), (3,))


def test_the_float32_helper_catches_a_silent_float64():
    def backward(params, residuals, dy):
        del params
        return (), jnp.zeros(residuals.x.shape) + dy  # no dtype: float64 under x64

    leaky = jaxbp.Layer(jaxbp.relu().init, jaxbp.relu().forward, backward, name="leaky")
    with pytest.raises(AssertionError, match="float64 appears in the lowered"):
        assert_layer_stays_float32(leaky, (3,))
