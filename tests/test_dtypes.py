"""One dtype rule, in every layer and loss.

A layer computes in its input's dtype promoted with its parameters' dtypes; ``backward``
returns every gradient in the dtype of what it is the gradient of, as JAX's autodiff
does (``jax.vjp`` of the forward is the reference). A loss computes in ``pred``'s dtype
and returns ``dpred`` in it.

Every combination of float32, bfloat16 and float16 for the input and the parameters
(and float64 with each, under x64) is checked by tracing only (``jax.eval_shape``:
nothing compiles); a few mixed combinations are also run and compared with
``jax.vjp`` in numbers.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import distinct_inputs, init_shapes

HALF = [jnp.float32, jnp.bfloat16, jnp.float16]
WITH_X64 = HALF + [jnp.float64]

# conv2d(3, 3) on 4 channels has a 36-value window: the convolution formulation, where
# mixed dtypes used to raise from lax.conv_general_dilated; (2, 2) on 1 channel runs
# as patches and a matmul, where they used to raise from the backward.
PARAM_LAYERS = [
    (jaxbp.dense(3), (5,)),
    (jaxbp.dense(2, bias=False), (3,)),
    (jaxbp.conv1d(2, 3, stride=2, padding="SAME"), (7, 2)),
    (jaxbp.conv2d(2, 2), (4, 4, 1)),
    (jaxbp.conv2d(3, 3, padding=1), (5, 5, 4)),
    # The layers beyond the documents.
    (jaxbp.layer_norm(), (3,)),
    (jaxbp.batch_norm(), (2, 3)),
    (jaxbp.bind(jaxbp.batch_norm(), train=False,
                state={"mean": jnp.zeros(3, jnp.float32), "var": jnp.ones(3, jnp.float32)}),
     (3,)),
    (jaxbp.causal_self_attention(2), (3, 4)),
    (jaxbp.rnn(3), (2, 2)),
    (jaxbp.lstm(2), (2, 3)),
    (jaxbp.position_embedding(4), (3, 2)),
    (jaxbp.residual(jaxbp.dense(3), jaxbp.relu()), (3,)),
]
PARAMLESS_LAYERS = [
    (jaxbp.relu(), (3,)), (jaxbp.sigmoid(), (3,)), (jaxbp.tanh(), (3,)),
    (jaxbp.softmax(), (3,)), (jaxbp.flatten(), (2, 3)),
    (jaxbp.max_pool1d(2), (4, 2)), (jaxbp.max_pool2d(2, stride=1), (3, 3, 1)),
    # The layers beyond the documents.
    (jaxbp.gelu(), (3,)), (jaxbp.leaky_relu(), (3,)),
    (jaxbp.dropout(0.5), (3,)),
    (jaxbp.bind(jaxbp.dropout(0.5), key=jax.random.key(0), train=True), (3,)),
    (jaxbp.avg_pool1d(2), (4, 2)), (jaxbp.avg_pool2d(2, stride=1), (3, 3, 1)),
    (jaxbp.global_avg_pool(), (2, 2, 1)),
]


def _structs(layer, input_shape, x_dtype, p_dtype, batch=2):
    params, out = init_shapes(layer, input_shape)
    params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, p_dtype), params)
    x = jax.ShapeDtypeStruct((batch, *input_shape), x_dtype)
    return params, x


def _traced_dtypes(layer, params, x, dy_dtype=None):
    """(y, backward's (dparams, dx), jax.vjp's (dparams, dx)), all traced only."""
    def run(params, x):
        y, residuals = layer.forward(params, x)
        dy = jnp.ones(y.shape, y.dtype if dy_dtype is None else dy_dtype)
        manual = layer.backward(params, residuals, dy)
        _, vjp = jax.vjp(lambda p, x_: layer.forward(p, x_)[0], params, x)
        return y, manual, vjp(jnp.ones(y.shape, y.dtype))

    return jax.eval_shape(run, params, x)


def _assert_rule(layer, params, x, dy_dtype=None):
    y, (dparams, dx), (ref_params, ref_x) = _traced_dtypes(layer, params, x, dy_dtype)
    want = jnp.result_type(x.dtype, *[p.dtype for p in jax.tree.leaves(params)])
    assert y.dtype == want, f"{layer.name}: y is {y.dtype}, want {want}"
    assert dx.dtype == x.dtype == ref_x.dtype, f"{layer.name}: dx is {dx.dtype}"
    for g, r, p in zip(jax.tree.leaves(dparams), jax.tree.leaves(ref_params),
                       jax.tree.leaves(params)):
        assert g.dtype == r.dtype == p.dtype, f"{layer.name}: a dparams leaf is {g.dtype}"


@pytest.mark.parametrize("layer, shape", PARAM_LAYERS, ids=lambda v: getattr(v, "name", ""))
def test_every_combination_of_input_and_param_dtypes(layer, shape):
    for x_dt, p_dt in itertools.product(HALF, HALF):
        _assert_rule(layer, *_structs(layer, shape, x_dt, p_dt))
    with jax.enable_x64(True):
        for x_dt, p_dt in itertools.product(WITH_X64, WITH_X64):
            if jnp.float64 in (x_dt, p_dt):
                _assert_rule(layer, *_structs(layer, shape, x_dt, p_dt))


@pytest.mark.parametrize("layer, shape", PARAMLESS_LAYERS,
                         ids=lambda v: getattr(v, "name", ""))
def test_layers_without_params_keep_the_input_dtype(layer, shape):
    """Whatever the dtype of dy, dx comes back in x's dtype."""
    for x_dt, dy_dt in itertools.product(HALF, HALF):
        _assert_rule(layer, (), _structs(layer, shape, x_dt, x_dt)[1], dy_dt)
    with jax.enable_x64(True):
        for x_dt in WITH_X64:
            _assert_rule(layer, (), _structs(layer, shape, x_dt, x_dt)[1], jnp.float64)


def test_embedding_computes_in_the_tables_dtype():
    """Integer ids: the output and the table's gradient in the table's dtype, no dx."""
    layer = jaxbp.embedding(5, 3)
    ids = jax.ShapeDtypeStruct((2, 4), jnp.int32)

    def run(params, ids, dy_dtype):
        y, residuals = layer.forward(params, ids)
        grads, dx = layer.backward(params, residuals, jnp.ones(y.shape, dy_dtype))
        _, vjp = jax.vjp(lambda p: layer.forward(p, ids)[0], params)
        return y, grads, dx, vjp(jnp.ones(y.shape, y.dtype))[0]

    for p_dt, dy_dt in itertools.product(HALF, HALF):
        params = {"w": jax.ShapeDtypeStruct((5, 3), p_dt)}
        y, grads, dx, ref = jax.eval_shape(lambda p, i: run(p, i, dy_dt), params, ids)
        assert y.dtype == grads["w"].dtype == ref["w"].dtype == p_dt, (p_dt, dy_dt)
        assert dx is None


@pytest.mark.parametrize("layer, shape", [PARAM_LAYERS[0], PARAM_LAYERS[4],
                                          PARAM_LAYERS[5], PARAM_LAYERS[8]],
                         ids=["dense", "conv2d convolution", "layer_norm", "attention"])
@pytest.mark.parametrize("x_dt, p_dt", [(jnp.float32, jnp.bfloat16),
                                        (jnp.float16, jnp.bfloat16)])
def test_mixed_dtypes_in_numbers(layer, shape, x_dt, p_dt):
    """Mixed bfloat16/float32 conv used to raise 'lax.conv_general_dilated requires
    arguments to have the same dtypes'; now backward equals jax.vjp's."""
    rng = np.random.default_rng(0)
    struct, _ = init_shapes(layer, shape)
    # NumPy arrays of the narrow dtypes (ml_dtypes' bfloat16) go into the jitted
    # function as they are: no transfer or conversion program compiled per shape.
    params = jax.tree.map(lambda s: (rng.normal(size=s.shape) / 2).astype(p_dt), struct)
    x = distinct_inputs(rng, (2, *shape)).astype(x_dt)

    @jax.jit
    def both(params, x):
        y, residuals = layer.forward(params, x)
        dy = jnp.cos(y)  # deterministic, not constant
        _, vjp = jax.vjp(lambda p, x_: layer.forward(p, x_)[0], params, x)
        return layer.backward(params, residuals, dy), vjp(dy)

    manual, reference = both(params, x)
    for g, r in zip(jax.tree.leaves(manual), jax.tree.leaves(reference)):
        assert g.dtype == r.dtype
        eps = float(jnp.finfo(g.dtype).eps)  # the leaf's own dtype
        g, r = np.asarray(g, np.float32), np.asarray(r, np.float32)  # on the host
        # Both round to the leaf's dtype once at the end; allow a couple of its ulps.
        tol = 4 * eps * max(1.0, float(np.max(np.abs(r))))
        np.testing.assert_allclose(g, r, atol=tol)


def test_jax_grad_through_differentiable_returns_the_params_dtype():
    """jax.grad through differentiable(dense) used to return float32 gradients for
    bfloat16 params; JAX's own autodiff returns bfloat16."""
    layer = jaxbp.dense(3)
    params = {"w": np.ones((4, 3), jnp.bfloat16), "b": np.zeros((3,), jnp.bfloat16)}
    x = np.ones((2, 4), np.float32)
    f = jaxbp.differentiable(layer)

    @jax.jit  # both gradients in one compiled program
    def both(params, x):
        return (jax.grad(lambda p: jnp.sum(f(p, x)))(params),
                jax.grad(lambda p: jnp.sum(layer.forward(p, x)[0]))(params))

    grads, auto = both(params, x)
    assert grads["w"].dtype == grads["b"].dtype == auto["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(grads["w"], np.float32),
                                  np.asarray(auto["w"], np.float32))


def test_serial_of_mixed_layers_follows_the_rule():
    net = jaxbp.serial(jaxbp.conv2d(2, 2, dtype=jnp.bfloat16), jaxbp.relu(),
                       jaxbp.flatten(), jaxbp.dense(2, dtype=jnp.float16))
    params, x = _structs(net, (3, 3, 1), jnp.float32, jnp.float32)
    params = (jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, jnp.bfloat16),
                           params[0]), (), (),
              jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, jnp.float16), params[3]))
    y, (dparams, dx), (ref_params, ref_x) = _traced_dtypes(net, params, x)
    assert y.dtype == jnp.float32 and dx.dtype == jnp.float32
    assert jax.tree.map(lambda a: a.dtype, dparams) == jax.tree.map(lambda a: a.dtype,
                                                                     ref_params)
    assert dparams[0]["w"].dtype == jnp.bfloat16 and dparams[3]["w"].dtype == jnp.float16


@pytest.mark.parametrize("make, target", [
    (jaxbp.half_mse, "float"), (jaxbp.binary_cross_entropy, "float"),
    (jaxbp.sigmoid_binary_cross_entropy, "float"), (jaxbp.softmax_cross_entropy, "float"),
    (jaxbp.softmax_cross_entropy, "labels"),
], ids=["half_mse", "bce", "sigmoid_bce", "softmax_xent", "softmax_xent labels"])
def test_losses_compute_in_preds_dtype(make, target):
    loss = make()

    def run(pred, t):
        value, residuals = loss.forward(pred, t)
        return value, loss.backward(residuals)

    for pred_dt, target_dt in itertools.product(HALF, HALF):
        pred = jax.ShapeDtypeStruct((2, 3), pred_dt)
        t = (jax.ShapeDtypeStruct((2,), jnp.int32) if target == "labels"
             else jax.ShapeDtypeStruct((2, 3), target_dt))
        value, dpred = jax.eval_shape(run, pred, t)
        assert value.dtype == dpred.dtype == pred_dt, (pred_dt, target_dt)
