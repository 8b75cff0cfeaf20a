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

KEY = jax.random.key(0)


def raises(kind, *phrases):
    """pytest.raises matching every phrase, literally, in order."""
    return pytest.raises(kind, match=".*".join(re.escape(p) for p in phrases))


def ones(*shape, dtype=jnp.float32):
    return jnp.ones(shape, dtype)


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
    return {"w": jnp.zeros((3, 2), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}


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
    params = () if params_shape is None else {"w": jnp.zeros(params_shape, jnp.float32)}
    forward = jax.jit(layer.forward) if jit else layer.forward
    with raises(ValueError, f"x must have rank {rank} {layout}, got shape {x_shape} "
                            f"(rank {len(x_shape)})"):
        forward(params, jnp.ones(x_shape, jnp.float32))


def test_conv_wrong_channel_count():
    params = {"w": jnp.zeros((3, 3, 1, 2), jnp.float32)}
    with raises(ValueError, "x must have 1 channels", "(3, 3, 1, 2)",
                "got x of shape (2, 5, 5, 3)"):
        jaxbp.conv2d(2, 3).forward(params, ones(2, 5, 5, 3))


def test_conv_and_pool_too_small_at_trace_time():
    params = {"w": jnp.zeros((3, 3, 1, 2), jnp.float32)}
    with raises(ValueError, "the kernel (3, 3) does not fit x of shape (2, 2, 5, 1)"):
        jax.jit(jaxbp.conv2d(2, 3).forward)(params, ones(2, 2, 5, 1))
    with raises(ValueError, "the window (3, 3) is larger than x's spatial shape (2, 5)"):
        jax.jit(jaxbp.max_pool2d(3).forward)((), ones(1, 2, 5, 1))


@pytest.mark.parametrize("x, kind, phrase", [
    (jnp.ones((2, 3), jnp.int32), TypeError, "x must have a floating dtype, got int32"),
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
        jaxbp.flatten().forward((), jnp.ones((), jnp.float32))


# ------------------------------------------------------------------------- losses


@pytest.mark.parametrize("make", [jaxbp.half_mse, jaxbp.binary_cross_entropy,
                                  jaxbp.sigmoid_binary_cross_entropy],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("pred_shape, target_shape", [
    ((3, 1), (3,)), ((3,), (3, 1)), ((3, 2), (2,)), ((1, 4), (4,)), ((2, 3), (3, 2))])
def test_loss_mismatched_shapes_never_broadcast(make, pred_shape, target_shape):
    pred = jnp.full(pred_shape, 0.5, jnp.float32)
    with raises(ValueError, f"{make.__name__}: target must have the shape of pred "
                            f"{pred_shape}, got {target_shape}"):
        make().forward(pred, jnp.zeros(target_shape, jnp.float32))


def test_loss_needs_a_batch_axis_and_floating_pred():
    with raises(ValueError, "half_mse: pred must have a batch axis, got shape ()"):
        jaxbp.half_mse().forward(jnp.ones((), jnp.float32), jnp.ones((), jnp.float32))
    with raises(TypeError, "half_mse: pred must have a floating dtype, got int32"):
        jaxbp.half_mse().forward(jnp.ones((2,), jnp.int32), jnp.ones((2,), jnp.float32))


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
        jaxbp.softmax_cross_entropy().forward(ones(3, 4), jnp.asarray(target))


def test_softmax_cross_entropy_float_labels_are_a_type_error():
    """Float labels of shape (batch,) are labels of the wrong kind, not a shape slip."""
    with raises(TypeError, "integer labels must have an integer dtype, got float32"):
        jaxbp.softmax_cross_entropy().forward(ones(3, 4), jnp.zeros((3,), jnp.float32))


def test_softmax_cross_entropy_pred_rank():
    with raises(ValueError, "pred must be logits of shape (batch, classes), got (4,)"):
        jaxbp.softmax_cross_entropy().forward(ones(4), jnp.zeros((4,), jnp.int32))


@pytest.mark.parametrize("labels, phrase", [
    ([0, 4, 1], "got labels[1] = 4"), ([0, 1, -1], "got labels[2] = -1"),
    ([7, 0, 0], "got labels[0] = 7")])
def test_out_of_range_labels_when_concrete(labels, phrase):
    loss = jaxbp.softmax_cross_entropy()
    labels = jnp.asarray(labels, jnp.int32)
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
    with raises(ValueError, "conv1d(2, 3): input_shape must have 2 entries", "got (4,)"):
        net.init(KEY, (3,))


# ------------------------------------------------------------------ extreme inputs


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_activations_at_extreme_inputs(dtype):
    x = np.array([[-1e4, -100.0, 100.0, 1e4]])
    with jax.enable_x64(True):
        xj = jnp.asarray(x, dtype)
        dy = jnp.ones(x.shape, dtype)

        def run(layer):
            y, residuals = layer.forward((), xj)
            return y, layer.backward((), residuals, dy)[1]

        y, dx = jax.jit(lambda: run(jaxbp.sigmoid()))()
        np.testing.assert_allclose(y, [[0, 0, 1, 1]], atol=1e-30)
        np.testing.assert_allclose(dx, [[0, 0, 0, 0]], atol=1e-30)
        y, dx = jax.jit(lambda: run(jaxbp.tanh()))()
        np.testing.assert_array_equal(y, [[-1, -1, 1, 1]])
        np.testing.assert_array_equal(dx, [[0, 0, 0, 0]])
        y, dx = jax.jit(lambda: run(jaxbp.relu()))()
        np.testing.assert_array_equal(y, [[0, 0, 100, 1e4]])
        np.testing.assert_array_equal(dx, [[0, 0, 1, 1]])
        y, dx = jax.jit(lambda: run(jaxbp.softmax()))()
        np.testing.assert_allclose(y, [[0, 0, 0, 1]], atol=1e-30)
        np.testing.assert_allclose(dx, [[0, 0, 0, 0]], atol=1e-30)
        for a in (y, dx):
            assert a.dtype == dtype and np.all(np.isfinite(a))


def test_softmax_of_huge_equal_logits_is_uniform():
    x = jnp.full((1, 4), 1e4, jnp.float32)
    y, _ = jaxbp.softmax().forward((), x)
    np.testing.assert_allclose(y, np.full((1, 4), 0.25), rtol=1e-6)


def test_dense_with_huge_and_tiny_but_finite_values():
    # Powers of two: exact in float32 (and in any reduced matmul precision), so every
    # product and sum below is exact and nothing overflows on the way.
    big, tiny = 2.0 ** 100, 2.0 ** -100
    x = jnp.full((1, 3), big, jnp.float32)
    params = {"w": jnp.full((3, 1), tiny, jnp.float32), "b": jnp.zeros((1,), jnp.float32)}
    y, residuals = jaxbp.dense(1).forward(params, x)
    np.testing.assert_array_equal(y, [[3.0]])
    dparams, dx = jaxbp.dense(1).backward(params, residuals, jnp.ones((1, 1), jnp.float32))
    np.testing.assert_array_equal(dparams["w"], np.full((3, 1), big))
    np.testing.assert_array_equal(dparams["b"], [1.0])
    np.testing.assert_array_equal(dx, np.full((1, 3), tiny))
