"""Bad input and extreme input.

Bad input raises ``ValueError`` (wrong shape or value) or ``TypeError`` (wrong kind)
early: at construction, at ``init``, or at trace time from static shapes. The message
names the argument and gives the expected and the received value, shapes as Python
tuples. Each test asserts the type and the words. Nothing silently broadcasts.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import on_device

KEY = jax.random.key(0)


def raises(kind, *phrases):
    """pytest.raises matching every phrase, literally, in order."""
    return pytest.raises(kind, match=".*".join(re.escape(p) for p in phrases))


# The tests' arrays are JAX arrays, as a user's, put on the device from NumPy:
# jnp.ones/zeros/full/asarray would compile a small XLA program for every new shape and
# dtype (the messages under test do not depend on how the array was made).
def ones(*shape, dtype=np.float32):
    return jax.device_put(np.ones(shape, dtype))


def zeros(*shape, dtype=np.float32):
    return jax.device_put(np.zeros(shape, dtype))


def full(shape, value, dtype=np.float32):
    return jax.device_put(np.full(shape, value, dtype))


def traced_forward(layer, params, x):
    """``layer.forward(params, x)``'s output and residuals for a backward that must
    raise: traced (``jax.eval_shape``), not run, and filled with zeros. A backward's
    checks see what tracing gives exactly as a forward's run would (the residuals' tree,
    their static fields naming the layer and its configuration, every shape and dtype);
    running the forward eagerly would compile each of its operations on its own."""
    traced = jax.eval_shape(layer.forward, params, x)
    return jax.tree.map(lambda s: zeros(*s.shape, dtype=s.dtype), traced)


# ---------------------------------------------------------------------- construction


@pytest.mark.parametrize("make, argument, value", [
    (lambda: jaxbp.dense(0), "features", "0"),
    (lambda: jaxbp.dense(-1), "features", "-1"),
    (lambda: jaxbp.conv1d(0, 3), "features", "0"),
    (lambda: jaxbp.conv1d(2, -3), "kernel_size", "-3"),
    (lambda: jaxbp.conv2d(2, (3, 0)), "kernel_size", "0"),
    (lambda: jaxbp.conv2d(2, 3, stride=0), "stride", "0"),
    (lambda: jaxbp.conv1d(2, 3, stride=-2), "stride", "-2"),
    (lambda: jaxbp.max_pool1d(0), "window", "0"),
    (lambda: jaxbp.max_pool2d((2, -1)), "window", "-1"),
    (lambda: jaxbp.max_pool2d(2, stride=0), "stride", "0"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_non_positive_sizes(make, argument, value):
    with raises(ValueError, f"{argument} must be a positive int, got {value}"):
        make()


@pytest.mark.parametrize("make, phrase", [
    (lambda: jaxbp.dense(2.5), "features must be a positive int, got 2.5 of type float"),
    (lambda: jaxbp.dense(True), "features must be a positive int, got True of type bool"),
    (lambda: jaxbp.conv2d("3", 2), "features must be a positive int, got '3' of type str"),
])
def test_sizes_of_the_wrong_kind(make, phrase):
    with raises(TypeError, phrase):
        make()


@pytest.mark.parametrize("make, phrase", [
    (lambda: jaxbp.conv2d(2, (2, 2, 2)), "kernel_size must be a positive int or a sequence "
                                         "of 2 positive ints, got (2, 2, 2)"),
    (lambda: jaxbp.max_pool2d((2, 2, 2)),
     "window must be a positive int or a sequence of 2 positive ints, got (2, 2, 2)"),
    (lambda: jaxbp.conv1d(2, 3, stride=(1, 1)), "stride must be a positive int or a "
                                                "sequence of 1 positive ints, got (1, 1)"),
])
def test_sizes_of_the_wrong_length(make, phrase):
    with raises(ValueError, phrase):
        make()


@pytest.mark.parametrize("make, padding", [
    (jaxbp.conv1d, "FULL"), (jaxbp.conv2d, "full"), (jaxbp.conv2d, "valid_"),
    (jaxbp.conv1d, ""),
])
def test_unknown_padding_strings(make, padding):
    n = 1 if make is jaxbp.conv1d else 2
    with raises(ValueError, f"padding must be 'VALID', 'SAME', an int or {n} (low, high) "
                            f"pairs", f"got {padding!r}"):
        make(2, 2, padding=padding)


@pytest.mark.parametrize("make, padding, phrase", [
    (jaxbp.conv2d, -1, "must be >= 0, got -1"),
    (jaxbp.conv1d, (-1, 2), "got (-1, 2)"),
    (jaxbp.conv1d, (1, 2, 3), "got (1, 2, 3)"),
    (jaxbp.conv2d, ((1, 1),), "got ((1, 1),)"),
    (jaxbp.conv2d, ((1, 1), (0, 1, 2)), "got ((1, 1), (0, 1, 2))"),
    (jaxbp.conv1d, None, "got None"),
])
def test_malformed_padding(make, padding, phrase):
    with raises(ValueError, "padding", phrase):
        make(2, 2, padding=padding)


# ----------------------------------------------------------------------------- init


@pytest.mark.parametrize("layer, input_shape, phrase", [
    (jaxbp.dense(2), (), "input_shape must have at least 1 entry (the features, without "
                         "the batch axis), got ()"),
    (jaxbp.conv2d(2, 3), (5, 5), "input_shape must have 3 entries (without the batch "
                                 "axis), got (5, 5)"),
    (jaxbp.conv1d(2, 3), (5, 5, 1), "input_shape must have 2 entries (without the batch "
                                    "axis), got (5, 5, 1)"),
    (jaxbp.max_pool2d(2), (4, 4), "input_shape must have 3 entries"),
    (jaxbp.dense(2), (0,), "input_shape entries must be a positive int, got 0"),
    (jaxbp.conv2d(2, 3), (2, 5, 1), "the kernel (3, 3) does not fit the padded input "
                                    "(2, 5)"),
    (jaxbp.conv1d(2, 4, stride=2, padding=(1, 0)), (2, 1), "the kernel (4,) does not fit "
                                                           "the padded input (2,)"),
    (jaxbp.max_pool2d(3), (2, 5, 1), "the window (3, 3) is larger than the input (2, 5)"),
])
def test_init_rejects_bad_input_shapes(layer, input_shape, phrase):
    with raises(ValueError, phrase):
        layer.init(KEY, input_shape)


def test_init_rejects_an_input_shape_of_the_wrong_kind():
    with raises(TypeError, "input_shape must be a tuple of ints", "got '3' of type str"):
        jaxbp.dense(2).init(KEY, "3")


# ----------------------------------------------------------------- forward: shapes


@pytest.fixture(scope="module")
def dense_params():
    return {"w": zeros(3, 2), "b": zeros(2)}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_dense_wrong_feature_count(dense_params, jit):
    forward = jax.jit(jaxbp.dense(2).forward) if jit else jaxbp.dense(2).forward
    with raises(ValueError, "dense(2): x must have 3 features", "params['w'] has shape "
                            "(3, 2)", "got x of shape (4, 5)"):
        forward(dense_params, ones(4, 5))


def test_dense_missing_batch_axis(dense_params):
    with raises(ValueError, "x must have rank 2 (batch, features), got shape (3,) "
                            "(rank 1)"):
        jaxbp.dense(2).forward(dense_params, ones(3))


@pytest.mark.parametrize("layer, params_shape, x_shape, rank, layout", [
    (jaxbp.conv2d(2, 3), (3, 3, 1, 2), (2, 5, 5), 4, "(batch, height, width, channels)"),
    (jaxbp.conv2d(2, 3), (3, 3, 1, 2), (5, 5, 1, 1, 1), 4, "(batch, height, width, "
                                                           "channels)"),
    (jaxbp.conv1d(2, 3), (3, 1, 2), (2, 5, 5, 1), 3, "(batch, length, channels)"),
    (jaxbp.conv1d(2, 3), (3, 1, 2), (5, 1), 3, "(batch, length, channels)"),
    (jaxbp.max_pool2d(2), None, (4, 4, 1), 4, "(batch, height, width, channels)"),
    (jaxbp.max_pool1d(2), None, (1, 4, 4, 1), 3, "(batch, length, channels)"),
], ids=["conv2d rank 3", "conv2d rank 5", "conv1d rank 4", "conv1d rank 2",
        "max_pool2d rank 3", "max_pool1d rank 4"])
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_wrong_rank(layer, params_shape, x_shape, rank, layout, jit):
    params = () if params_shape is None else conv_params(params_shape)
    forward = jax.jit(layer.forward) if jit else layer.forward
    with raises(ValueError, f"x must have rank {rank} {layout}, got shape {x_shape} "
                            f"(rank {len(x_shape)})"):
        forward(params, ones(*x_shape))


def conv_params(w_shape, dtype=np.float32):
    return {"w": zeros(*w_shape, dtype=dtype), "b": zeros(*w_shape[-1:], dtype=dtype)}


def test_conv_wrong_channel_count():
    params = conv_params((3, 3, 1, 2))
    with raises(ValueError, "x must have 1 channels", "(3, 3, 1, 2)",
                "got x of shape (2, 5, 5, 3)"):
        jaxbp.conv2d(2, 3).forward(params, ones(2, 5, 5, 3))


def test_conv_and_pool_too_small_at_trace_time():
    params = conv_params((3, 3, 1, 2))
    with raises(ValueError, "the kernel (3, 3) does not fit x of shape (2, 2, 5, 1)"):
        jax.jit(jaxbp.conv2d(2, 3).forward)(params, ones(2, 2, 5, 1))
    with raises(ValueError, "the window (3, 3) is larger than x's spatial shape (2, 5)"):
        jax.jit(jaxbp.max_pool2d(3).forward)((), ones(1, 2, 5, 1))


@pytest.mark.parametrize("x, kind, phrase", [
    (ones(2, 3, dtype=np.int32), TypeError, "x must have a floating dtype, got int32"),
    ("abc", TypeError, "x must be an array, got str"),
    (None, TypeError, "x must be an array, got NoneType"),
])
def test_input_of_the_wrong_kind(dense_params, x, kind, phrase):
    with raises(kind, phrase):
        jaxbp.dense(2).forward(dense_params, x)
    with raises(kind, phrase):
        jaxbp.relu().forward((), x)


def test_flatten_needs_a_batch_axis():
    with raises(ValueError, "flatten(): x must have a batch axis, got shape ()"):
        jaxbp.flatten().forward((), ones())


# ------------------------------------------------------------------------- losses


@pytest.mark.parametrize("make", [jaxbp.half_mse, jaxbp.binary_cross_entropy,
                                  jaxbp.sigmoid_binary_cross_entropy],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("pred_shape, target_shape", [
    ((3, 1), (3,)), ((3,), (3, 1)), ((3, 2), (2,)), ((1, 4), (4,)), ((2, 3), (3, 2))])
def test_loss_mismatched_shapes_never_broadcast(make, pred_shape, target_shape):
    pred = full(pred_shape, 0.5)
    with raises(ValueError, f"{make.__name__}: target must have the shape of pred "
                            f"{pred_shape}, got {target_shape}"):
        make().forward(pred, zeros(*target_shape))


def test_loss_needs_a_batch_axis_and_floating_pred():
    with raises(ValueError, "half_mse: pred must have a batch axis, got shape ()"):
        jaxbp.half_mse().forward(ones(), ones())
    with raises(TypeError, "half_mse: pred must have a floating dtype, got int32"):
        jaxbp.half_mse().forward(ones(2, dtype=np.int32), ones(2))


@pytest.mark.parametrize("target, phrase", [
    (np.ones((3, 5), np.float32), "target must be one-hot of shape (3, 4) or integer "
                                  "labels of shape (3,), got (3, 5)"),
    (np.ones((4,), np.float32), "got (4,)"),
    (np.zeros((3, 1), np.int32), "integer labels must have shape (3,) (one per example), "
                                 "got (3, 1)"),
    (np.zeros((4,), np.int32), "integer labels must have shape (3,)"),
], ids=["one-hot", "float labels", "labels (3, 1)", "labels (4,)"])
def test_softmax_cross_entropy_target_shapes(target, phrase):
    with raises(ValueError, phrase):
        jaxbp.softmax_cross_entropy().forward(ones(3, 4), jax.device_put(target))


def test_softmax_cross_entropy_float_labels_are_a_type_error():
    """Float labels of shape (batch,) are labels of the wrong kind, not a shape slip."""
    with raises(TypeError, "integer labels must have an integer dtype, got float32"):
        jaxbp.softmax_cross_entropy().forward(ones(3, 4), zeros(3))


def test_softmax_cross_entropy_pred_rank():
    with raises(ValueError, "pred must be logits of shape (batch, classes), got (4,)"):
        jaxbp.softmax_cross_entropy().forward(ones(4), zeros(4, dtype=np.int32))


@pytest.mark.parametrize("labels, phrase", [
    ([0, 4, 1], "got labels[1] = 4"), ([0, 1, -1], "got labels[2] = -1"),
    ([7, 0, 0], "got labels[0] = 7")])
def test_out_of_range_labels_when_concrete(labels, phrase):
    loss = jaxbp.softmax_cross_entropy()
    labels = on_device(labels, np.int32)
    with raises(ValueError, "softmax_cross_entropy: labels must be in [0, 3] for 4 "
                            "classes", phrase):
        loss.forward(ones(3, 4), labels)
    # Concrete labels closed over by a jitted function are still checked.
    with raises(ValueError, phrase):
        jax.jit(lambda z: loss.forward(z, labels)[0])(ones(3, 4))


# -------------------------------------------------------------------------- serial


def test_serial_rejects_what_is_not_a_layer():
    with raises(TypeError, "serial: layers[1] must be a jaxbp.Layer, got function",
                "did you forget to call the constructor"):
        jaxbp.serial(jaxbp.dense(2), jaxbp.relu)
    with raises(TypeError, "serial: layers[0] must be a jaxbp.Layer, got int"):
        jaxbp.serial(3)
    with raises(ValueError, "serial: layers must hold at least one layer, got none"):
        jaxbp.serial()


def test_serial_shape_errors_name_the_layer():
    net = jaxbp.serial(jaxbp.dense(4), jaxbp.relu(), jaxbp.conv1d(2, 3))
    with raises(ValueError, "conv1d(2, 3, stride=1, padding='VALID'): input_shape must "
                            "have 2 entries", "got (4,)"):
        net.init(KEY, (3,))


# ------------------------------------------------------------------ extreme inputs


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_activations_at_extreme_inputs(dtype):
    x = np.array([[-1e4, -100.0, 100.0, 1e4]])
    with jax.enable_x64(True):
        xj = jax.device_put(x.astype(dtype))
        dy = jax.device_put(np.ones(x.shape, dtype))
        layers = [jaxbp.sigmoid(), jaxbp.tanh(), jaxbp.relu(), jaxbp.softmax()]

        # The four layers' forward and backward in one compiled program.
        @jax.jit
        def run(x, dy):
            out = []
            for layer in layers:
                y, residuals = layer.forward((), x)
                out.append((y, layer.backward((), residuals, dy)[1]))
            return out

        results = run(xj, dy)
        (y, dx), (y_tanh, dx_tanh), (y_relu, dx_relu), (y_soft, dx_soft) = results
        np.testing.assert_allclose(y, [[0, 0, 1, 1]], atol=1e-30)
        np.testing.assert_allclose(dx, [[0, 0, 0, 0]], atol=1e-30)
        np.testing.assert_array_equal(y_tanh, [[-1, -1, 1, 1]])
        np.testing.assert_array_equal(dx_tanh, [[0, 0, 0, 0]])
        np.testing.assert_array_equal(y_relu, [[0, 0, 100, 1e4]])
        np.testing.assert_array_equal(dx_relu, [[0, 0, 1, 1]])
        np.testing.assert_allclose(y_soft, [[0, 0, 0, 1]], atol=1e-30)
        np.testing.assert_allclose(dx_soft, [[0, 0, 0, 0]], atol=1e-30)
        for a in jax.tree.leaves(results):
            assert a.dtype == dtype and np.all(np.isfinite(a))


def test_softmax_of_huge_equal_logits_is_uniform():
    x = full((1, 4), 1e4)
    y, _ = jax.jit(jaxbp.softmax().forward)((), x)  # one program, not five operations
    np.testing.assert_allclose(y, np.full((1, 4), 0.25), rtol=1e-6)


def test_dense_with_huge_and_tiny_but_finite_values():
    # Powers of two: exact in float32 (and in any reduced matmul precision), so every
    # product and sum below is exact and nothing overflows on the way.
    big, tiny = 2.0 ** 100, 2.0 ** -100
    x = full((1, 3), big)
    params = {"w": full((3, 1), tiny), "b": zeros(1)}
    layer = jaxbp.dense(1)

    @jax.jit  # forward and backward in one compiled program
    def step(params, x, dy):
        y, residuals = layer.forward(params, x)
        return y, layer.backward(params, residuals, dy)

    y, (dparams, dx) = step(params, x, ones(1, 1))
    np.testing.assert_array_equal(y, [[3.0]])
    np.testing.assert_array_equal(dparams["w"], np.full((3, 1), big))
    np.testing.assert_array_equal(dparams["b"], [1.0])
    np.testing.assert_array_equal(dx, np.full((1, 3), tiny))


# ------------------------------------------------------------------ backward: dy
#
# backward checks dy against the shape of the forward's output, derived from the
# residuals: a dy that would broadcast, or that fits the matmul but not the layer, is a
# ValueError naming dy, never a silently wrong or a bare XLA error.

DY_CASES = [
    # layer, input shape (with batch), wrong dy shape, the output shape
    (jaxbp.relu(), (4, 3), (1, 3), (4, 3)),        # used to broadcast silently
    (jaxbp.sigmoid(), (4, 3), (2, 4, 3), (4, 3)),  # used to return a (2, 4, 3) dx
    (jaxbp.tanh(), (4, 3), (4, 1), (4, 3)),
    (jaxbp.softmax(), (4, 3), (3,), (4, 3)),
    (jaxbp.dense(2), (4, 3), (4, 3), (4, 2)),       # used to be a dot_general error
    (jaxbp.dense(2), (4, 3), (1, 2), (4, 2)),
    (jaxbp.conv2d(2, 3), (2, 6, 6, 1), (2, 3, 3, 2), (2, 4, 4, 2)),  # wrong spatial
    (jaxbp.conv2d(2, 3), (2, 6, 6, 1), (2, 4, 4, 3), (2, 4, 4, 2)),  # wrong channels
    (jaxbp.conv1d(2, 3, stride=2), (2, 7, 1), (2, 2, 2), (2, 3, 2)),
    (jaxbp.max_pool2d(2), (2, 4, 4, 1), (2, 3, 3, 1), (2, 2, 2, 1)),
    (jaxbp.max_pool1d(2, stride=1), (2, 5, 1), (2, 5, 1), (2, 4, 1)),
    (jaxbp.flatten(), (2, 3, 2), (2, 5), (2, 6)),
    (jaxbp.serial(jaxbp.dense(3), jaxbp.relu()), (2, 4), (2, 4), (2, 3)),
]


def _params_for(layer, x_shape):
    params, _ = layer.init(KEY, x_shape[1:])
    return params


@pytest.mark.parametrize("layer, x_shape, dy_shape, y_shape", DY_CASES,
                         ids=[f"{c[0].name} dy {c[2]}" for c in DY_CASES])
def test_backward_checks_dy_against_the_output_shape(layer, x_shape, dy_shape, y_shape):
    params = _params_for(layer, x_shape)
    y, residuals = traced_forward(layer, params, ones(*x_shape))
    assert y.shape == y_shape
    where = "serial: layers[1]: relu()" if layer.layers else layer.name
    with raises(ValueError, f"{where}: dy must have the shape of the forward's output "
                            f"{y_shape}, got {dy_shape}"):
        layer.backward(params, residuals, ones(*dy_shape))


def test_dy_is_checked_at_trace_time_under_jit():
    layer = jaxbp.conv2d(2, 3, stride=2, padding="SAME")
    params = _params_for(layer, (2, 6, 6, 1))

    @jax.jit
    def step(params, x, dy):
        _, residuals = layer.forward(params, x)
        return layer.backward(params, residuals, dy)

    with raises(ValueError, "dy must have the shape of the forward's output (2, 3, 3, 2), "
                            "got (2, 6, 6, 2)"):
        step(params, ones(2, 6, 6, 1), ones(2, 6, 6, 2))


def test_dy_of_the_wrong_kind():
    layer = jaxbp.relu()
    _, residuals = traced_forward(layer, (), ones(2, 3))
    with raises(TypeError, "relu(): dy must have a floating dtype, got int32"):
        layer.backward((), residuals, ones(2, 3, dtype=np.int32))
    with raises(TypeError, "relu(): dy must be an array of shape (2, 3)", "got NoneType"):
        layer.backward((), residuals, None)


# ------------------------------------------------------------ params vs the layer


def test_conv_kernel_size_is_checked_against_the_configuration():
    """A 5x5 kernel for conv2d(2, 3, padding='SAME') used to run, give a (2, 4, 4, 2)
    output where SAME promises (2, 6, 6, 2), and a (3, 3, 1, 2) dw for a (5, 5, 1, 2) w."""
    layer = jaxbp.conv2d(2, 3, padding="SAME")
    params = conv_params((5, 5, 1, 2))
    message = "conv2d(2, 3, stride=1, padding='SAME'): params['w'] must have shape "
    with raises(ValueError, message + "(3, 3, in, 2), got (5, 5, 1, 2)"):
        layer.forward(params, ones(2, 6, 6, 1))
    good = conv_params((3, 3, 1, 2))
    _, residuals = traced_forward(layer, good, ones(2, 6, 6, 1))
    # backward knows the input's channels from the residuals.
    with raises(ValueError, message + "(3, 3, 1, 2), got (5, 5, 1, 2)"):
        layer.backward(params, residuals, ones(2, 6, 6, 2))


@pytest.mark.parametrize("layer, params, kind, phrase", [
    (jaxbp.dense(2), {"w": ones(3, 5), "b": ones(2)}, ValueError,
     "dense(2): params['w'] must have shape (in, 2), got (3, 5)"),
    (jaxbp.dense(2), {"w": ones(3, 2)}, ValueError,
     "dense(2): params must be {'w': (in, 2), 'b': (2,)}, got the keys ['w']: "
     "params['b'] is missing"),
    (jaxbp.dense(2), {"W": ones(3, 2), "b": ones(2)}, ValueError,
     "got the keys ['W', 'b']: params['w'] is missing; params['W'] is not one of its "
     "parameters"),
    (jaxbp.dense(2, bias=False), {"w": ones(3, 2), "b": ones(2)}, ValueError,
     "dense(2, bias=False): params must be {'w': (in, 2)}, got the keys ['b', 'w']: "
     "params['b'] is not one of its parameters"),
    (jaxbp.dense(2), ones(3, 2), TypeError,
     "dense(2): params must be a dict {'w': (in, 2), 'b': (2,)}, got an array of shape "
     "(3, 2)"),
    (jaxbp.dense(2), (), TypeError, ("dense(2): params must be a dict", "got ()")),
    (jaxbp.dense(2), {"w": ones(3, 2), "b": ones(3)}, ValueError,
     "dense(2): params['b'] must have shape (2,), got (3,)"),
    (jaxbp.dense(2), {"w": ones(3, 2), "b": 0.0}, TypeError,
     "dense(2): params['b'] must be an array of shape (2,), got float 0.0"),
    (jaxbp.dense(2), {"w": ones(3, 2, dtype=np.int32), "b": ones(2)}, TypeError,
     "dense(2): params['w'] must have a floating dtype, got int32"),
    (jaxbp.conv2d(2, 3), conv_params((3, 1, 2)), ValueError,
     "params['w'] must have shape (3, 3, in, 2), got (3, 1, 2)"),
    (jaxbp.conv1d(2, 3), conv_params((3, 1, 4)), ValueError,
     "conv1d(2, 3, stride=1, padding='VALID'): params['w'] must have shape (3, in, 2), "
     "got (3, 1, 4)"),
    (jaxbp.relu(), {"w": ones(3, 2)}, ValueError,
     "relu(): params must be () (relu() has no parameters), got a dict with the keys "
     "['w']"),
    (jaxbp.max_pool2d(2), (ones(2),), ValueError,
     ("max_pool2d(2): params must be ()", "got a tuple of 1 entries")),
], ids=["dense features", "missing b", "key W", "unexpected b", "bare array",
        "empty tuple", "b length", "b a float", "int w", "conv2d rank-3 kernel",
        "conv1d features", "relu with params", "pool with params"])
def test_forward_checks_params_against_the_configuration(layer, params, kind, phrase):
    x = ones(2, 6, 6, 1) if layer.name.startswith(("conv2d", "max_pool2d")) else \
        ones(2, 6, 1) if layer.name.startswith("conv1d") else ones(2, 3)
    with raises(kind, *([phrase] if isinstance(phrase, str) else phrase)):
        layer.forward(params, x)


def test_backward_checks_params_too():
    """A conv's backward given () used to end in a tuple-index error; dense's given
    params without "b" silently dropped the bias gradient."""
    conv = jaxbp.conv2d(2, 3)
    params = conv_params((3, 3, 1, 2))
    _, residuals = traced_forward(conv, params, ones(2, 5, 5, 1))
    with raises(TypeError, "conv2d(2, 3, stride=1, padding='VALID'): params must be a dict "
                           "{'w': (3, 3, 1, 2), 'b': (2,)}, got ()"):
        conv.backward((), residuals, ones(2, 3, 3, 2))
    dense = jaxbp.dense(2)
    full = {"w": ones(3, 2), "b": ones(2)}
    _, residuals = traced_forward(dense, full, ones(4, 3))
    with raises(ValueError, "params['b'] is missing"):
        dense.backward({"w": full["w"]}, residuals, ones(4, 2))
    with raises(ValueError, "dense(2): params['w'] must have shape (3, 2), got (4, 2)"):
        dense.backward({"w": ones(4, 2), "b": ones(2)}, residuals, ones(4, 2))


def test_serial_rejects_the_params_of_another_network():
    """serial(dense(2), dense(4)) used to run on the params of serial(dense(4), dense(2))."""
    params, _ = jaxbp.serial(jaxbp.dense(4), jaxbp.dense(2)).init(KEY, (3,))
    with raises(ValueError, "serial: layers[0]: dense(2): params['w'] must have shape "
                            "(in, 2), got (3, 4)"):
        jaxbp.serial(jaxbp.dense(2), jaxbp.dense(4)).forward(params, ones(5, 3))


def test_serial_params_shifted_by_one_layer():
    net = jaxbp.serial(jaxbp.dense(3), jaxbp.relu(), jaxbp.dense(2))
    params, _ = net.init(KEY, (4,))
    shifted = (params[0], params[2], ())
    with raises(ValueError, "serial: layers[1]: relu(): params must be () (relu() has no "
                            "parameters), got a dict with the keys ['b', 'w']"):
        net.forward(shifted, ones(2, 4))


# ---------------------------------------------------------------------- residuals


def _forward(layer, x_shape):
    params = _params_for(layer, x_shape)
    y, residuals = traced_forward(layer, params, ones(*x_shape))
    return params, y, residuals


@pytest.mark.parametrize("make, other, got", [
    (jaxbp.tanh, jaxbp.sigmoid, "SigmoidResiduals"),   # tanh's formula on sigmoid's y
    (jaxbp.sigmoid, jaxbp.softmax, "SoftmaxResiduals"),
    (jaxbp.relu, jaxbp.tanh, "TanhResiduals"),
    (jaxbp.flatten, jaxbp.relu, "ReluResiduals"),
])
def test_one_activation_refuses_anothers_residuals(make, other, got):
    _, _, residuals = _forward(other(), (2, 3))
    layer = make()
    with raises(TypeError, f"{layer.name}: residuals must be the", f"that {layer.name}'s "
                           f"forward returned, got {got}"):
        layer.backward((), residuals, ones(2, 3))


def test_dense_refuses_relus_residuals():
    _, _, residuals = _forward(jaxbp.relu(), (2, 3))
    params = {"w": ones(3, 2), "b": ones(2)}
    with raises(TypeError, "dense(2): residuals must be the DenseResiduals that dense(2)'s "
                           "forward returned, got ReluResiduals"):
        jaxbp.dense(2).backward(params, residuals, ones(2, 2))


def test_conv_refuses_the_residuals_of_another_configuration():
    """A stride-1 conv's backward used to run on a stride-2 conv's residuals."""
    strided = jaxbp.conv2d(2, 3, stride=2, padding="SAME")
    params, y, residuals = _forward(strided, (2, 6, 6, 1))
    plain = jaxbp.conv2d(2, 3, padding="SAME")
    with raises(ValueError, "conv2d(2, 3, stride=1, padding='SAME'): residuals come from "
                            "conv2d(2, 3, stride=2, padding='SAME')'s forward"):
        plain.backward(params, residuals, ones(2, 6, 6, 2))
    # And a pool's backward refuses those of a pool with another window.
    _, _, pooled = _forward(jaxbp.max_pool2d(3), (1, 6, 6, 1))
    with raises(ValueError, "max_pool2d(2): residuals come from max_pool2d(3)'s forward"):
        jaxbp.max_pool2d(2).backward((), pooled, ones(1, 2, 2, 1))
    with raises(TypeError, "residuals must be the PoolResiduals", "got ConvResiduals (from "
                           "conv2d(2, 3, stride=2, padding='SAME')'s forward)"):
        jaxbp.max_pool2d(2).backward((), residuals, ones(1, 2, 2, 1))


def test_residuals_with_their_layer_name_pass_through_jit_and_vmap():
    """The configuration travels as static pytree data: jit returns the residuals intact,
    and vmap over forward and backward sees the same layer."""
    layer = jaxbp.conv1d(2, 2, stride=2)
    params = _params_for(layer, (2, 6, 1))
    x = ones(2, 6, 1)
    y, residuals = jax.jit(layer.forward)(params, x)
    assert residuals.layer == layer.name and len(jax.tree.leaves(residuals)) == 1

    def per_example(x, dy):
        _, r = layer.forward(params, x[None])
        return layer.backward(params, r, dy[None])[1][0]

    # The residuals jit returned go back into a (second) compiled program, which runs
    # the backward on them and the vmapped forward and backward: one compilation
    # instead of each of their operations compiled on its own.
    @jax.jit
    def backward_and_vmapped(residuals, x, dy):
        return layer.backward(params, residuals, dy), jax.vmap(per_example)(x, dy)

    (grads, dx), dxs = backward_and_vmapped(residuals, x, ones(*y.shape))
    assert dx.shape == (2, 6, 1)
    np.testing.assert_allclose(dxs, dx, rtol=1e-6)


@pytest.mark.parametrize("params_short", [True, False], ids=["params", "residuals"])
def test_serial_backward_with_an_entry_missing(params_short):
    """Used to raise IndexError from inside serial."""
    net = jaxbp.serial(jaxbp.dense(3), jaxbp.relu(), jaxbp.dense(2))
    params, y, residuals = _forward(net, (2, 4))
    if params_short:
        with raises(ValueError, "serial: params must be a tuple of 3 entries, one per "
                                "layer, got 2"):
            net.backward(params[:2], residuals, ones(*y.shape))
    else:
        with raises(ValueError, "serial: residuals must be the tuple of 3 entries, one per "
                                "layer, that serial's forward returned, got 2"):
            net.backward(params, residuals[:2], ones(*y.shape))


@pytest.mark.parametrize("make, other, got", [
    (jaxbp.half_mse, jaxbp.binary_cross_entropy, "BCEResiduals"),
    (jaxbp.binary_cross_entropy, jaxbp.sigmoid_binary_cross_entropy, "SigmoidBCEResiduals"),
    (jaxbp.softmax_cross_entropy, jaxbp.half_mse, "HalfMSEResiduals"),
    (jaxbp.sigmoid_binary_cross_entropy, jaxbp.softmax_cross_entropy,
     "SoftmaxXentResiduals"),
])
def test_a_loss_refuses_another_losss_residuals(make, other, got):
    """Used to raise AttributeError (or compute with the wrong fields)."""
    pred, target = full((2, 3), 0.5), zeros(2, 3)
    _, residuals = traced_forward(other(), pred, target)
    loss = make()
    with raises(TypeError, f"{loss.name}: residuals must be the", f"got {got}"):
        loss.backward(residuals)


# -------------------------------------------------------------- misuse, clearly said


@pytest.mark.parametrize("make", [jaxbp.half_mse, jaxbp.binary_cross_entropy,
                                  jaxbp.sigmoid_binary_cross_entropy,
                                  jaxbp.softmax_cross_entropy], ids=lambda f: f.__name__)
def test_losses_refuse_an_empty_batch(make):
    """softmax_cross_entropy used to give NaN with zero gradients, the others a bare
    ZeroDivisionError from reshape(0, -1)."""
    with raises(ValueError, f"{make.__name__}: pred must hold at least one example (the "
                            f"loss is a mean over the batch), got shape (0, 3)"):
        make().forward(zeros(0, 3), zeros(0, 3))


def test_binary_cross_entropy_given_logits_suggests_the_logit_loss():
    pred = on_device([[0.2, 0.7], [2.3, -1.0]], np.float32)
    with raises(ValueError, "binary_cross_entropy: pred must be probabilities in [0, 1], "
                            "got pred[1, 0] = 2.3: for logits use "
                            "sigmoid_binary_cross_entropy"):
        jaxbp.binary_cross_entropy().forward(pred, zeros(2, 2))


def test_integer_one_hot_targets_must_be_floating():
    one_hot = jax.device_put(np.eye(3, 4, dtype=np.int32))
    with raises(TypeError, "softmax_cross_entropy: one-hot targets must be floating, got "
                           "target of shape (3, 4) and dtype int32: use "
                           "target.astype(pred.dtype), or integer labels of shape (3,)"):
        jaxbp.softmax_cross_entropy().forward(ones(3, 4), one_hot)


@pytest.mark.parametrize("call, kind, phrase", [
    (lambda: jaxbp.half_mse().forward(ones(2, 3), None), TypeError,
     "half_mse: target must be an array, got NoneType"),
    (lambda: jaxbp.dense(3, dtype=jnp.int32), TypeError,
     "dense: dtype must be a floating dtype such as jnp.float32, or None for JAX's "
     "default, got int32"),
    (lambda: jaxbp.conv2d(3, 2, dtype="float"), None, None),
    (lambda: jaxbp.dense(3, bias="no"), TypeError,
     "dense: bias must be True or False, got 'no' of type str"),
    (lambda: jaxbp.conv1d(3, 2, bias=None), TypeError,
     "conv1d: bias must be True or False, got None"),
    (lambda: jaxbp.dense(3).init(0, (2,)), TypeError,
     "dense(3): key must be a single jax.random.key, e.g. jax.random.key(0), got int 0"),
    (lambda: jaxbp.relu().init(0, (2,)), TypeError, "relu(): key must be"),
    (lambda: jaxbp.conv2d(2, 3).init(jax.random.split(KEY, 2), (5, 5, 1)), TypeError,
     ("key must be a single jax.random.key", "got an array of shape (2,) and dtype key")),
    (lambda: jaxbp.check_gradients(jaxbp.relu, (), ones(2, 3)), TypeError,
     "check_gradients: layer must be a jaxbp.Layer, got function (did you forget to call "
     "the constructor, e.g. jaxbp.relu()?)"),
    (lambda: jaxbp.summary(jaxbp.dense, (3,)), TypeError,
     "summary: net must be a jaxbp.Layer, got function (did you forget to call the "
     "constructor, e.g. jaxbp.dense()?)"),
], ids=["target None", "int dtype", "float dtype string", "bias 'no'", "bias None",
        "int key", "int key, relu", "two keys", "uncalled constructor",
        "summary of a constructor"])
def test_misuse_gets_a_clear_message(call, kind, phrase):
    if kind is None:
        call()  # a dtype name NumPy understands is fine
        return
    with raises(kind, *([phrase] if isinstance(phrase, str) else phrase)):
        call()


def test_a_torch_tensor_is_refused_with_the_conversion_to_use():
    torch = pytest.importorskip("torch")
    x = torch.ones((2, 3))
    with raises(TypeError, "dense(2): x must be a JAX or NumPy array, got torch.Tensor: "
                           "convert it first, e.g. with jnp.asarray(x.detach().cpu().numpy())"):
        jaxbp.dense(2).forward({"w": ones(3, 2), "b": ones(2)}, x)
    with raises(TypeError, "half_mse: target must be a JAX or NumPy array, got "
                           "torch.Tensor"):
        jaxbp.half_mse().forward(ones(2, 3), x)
