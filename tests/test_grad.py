"""``value_and_grad`` and ``differentiable``: three routes to one gradient.

``jax.grad`` through ``differentiable(net)`` (hand-written backward inside JAX's
autodiff), ``value_and_grad(net, loss)`` (hand-written passes alone) and plain autodiff
of the forward must agree; a deliberately wrong backward must show up in the first two
and not in the third, which proves they really run the hand-written code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import distinct_inputs, random_init


def cnn():
    return jaxbp.serial(jaxbp.conv2d(3, (3, 2), stride=(1, 2), padding="SAME"),
                        jaxbp.relu(), jaxbp.max_pool2d(2), jaxbp.flatten(),
                        jaxbp.dense(4), jaxbp.sigmoid(), jaxbp.dense(3))


def mlp():
    return jaxbp.serial(jaxbp.dense(5), jaxbp.tanh(), jaxbp.dense(2, bias=False),
                        jaxbp.sigmoid())


CASES = {
    "cnn+softmax_xent(labels)": (
        cnn, jaxbp.softmax_cross_entropy, (6, 6, 1),
        lambda rng, b: rng.integers(0, 3, size=b).astype(np.int32)),
    "mlp+half_mse": (mlp, jaxbp.half_mse, (3,), lambda rng, b: rng.normal(size=(b, 2))),
    "mlp+bce": (mlp, jaxbp.binary_cross_entropy, (3,),
                lambda rng, b: rng.uniform(size=(b, 2))),
}


def three_gradients(net, loss, params, x, target):
    """(value, grads) from value_and_grad, from jax.grad via differentiable, and from
    plain autodiff of the forward, all jitted."""
    f = jaxbp.differentiable(net)

    def through_custom_vjp(p):
        return loss.forward(f(p, x), target)[0]

    def plain(p):
        return loss.forward(net.forward(p, x)[0], target)[0]

    manual = jax.jit(jaxbp.value_and_grad(net, loss))(params, x, target)
    custom = jax.jit(jax.value_and_grad(through_custom_vjp))(params)
    auto = jax.jit(jax.value_and_grad(plain))(params)
    return manual, custom, auto


def assert_trees_close(a, b, rtol=1e-10):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("name", list(CASES))
def test_three_routes_agree(name):
    make_net, make_loss, shape, make_target = CASES[name]
    net, loss = make_net(), make_loss()
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        params, _ = random_init(net, shape, rng)
        # device_put, not jnp.asarray: no program compiled per shape
        x = jax.device_put(distinct_inputs(rng, (3, *shape)))
        target = jax.device_put(make_target(rng, 3))
        manual, custom, auto = three_gradients(net, loss, params, x, target)
    np.testing.assert_allclose(manual[0], auto[0], rtol=1e-13)
    np.testing.assert_allclose(custom[0], auto[0], rtol=1e-13)
    assert_trees_close(manual[1], auto[1])
    assert_trees_close(custom[1], auto[1])


def test_grad_with_respect_to_input_through_differentiable():
    net = mlp()
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        params, _ = random_init(net, (3,), rng)
        x = jax.device_put(distinct_inputs(rng, (2, 3)))
        f = jaxbp.differentiable(net)
        dx = jax.jit(jax.grad(lambda x_: jnp.sum(f(params, x_) ** 2)))(x)
        dx_ref = jax.jit(jax.grad(lambda x_: jnp.sum(net.forward(params, x_)[0] ** 2)))(x)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12)


def test_differentiable_forward_value_is_the_layers():
    net = mlp()
    params, _ = random_init(net, (3,), np.random.default_rng(3), np.float32)
    x = jax.device_put(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(jaxbp.differentiable(net)(params, x),
                                  net.forward(params, x)[0])


def doubled_backward(layer):
    """The layer with a backward that returns twice the right gradients."""
    def backward(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return jax.tree.map(lambda g: 2 * g, dparams), 2 * dx
    return jaxbp.Layer(layer.init, layer.forward, backward, name="doubled")


def test_a_wrong_backward_shows_in_hand_routes_only():
    """differentiable and value_and_grad run the hand-written backward; autodiff does
    not."""
    net = jaxbp.serial(doubled_backward(jaxbp.dense(2)), jaxbp.sigmoid())
    loss = jaxbp.half_mse()
    with jax.enable_x64(True):
        params, _ = random_init(net, (3,), np.random.default_rng(4))
        x = jax.device_put(np.array([[0.1, -0.5, 0.9]]))
        target = jax.device_put(np.array([[0.2, 0.7]]))
        manual, custom, auto = jax.tree.map(
            np.asarray, three_gradients(net, loss, params, x, target))
    for route in (manual, custom):
        np.testing.assert_allclose(route[1][0]["w"], 2 * auto[1][0]["w"], rtol=1e-12)
        np.testing.assert_allclose(route[1][0]["b"], 2 * auto[1][0]["b"], rtol=1e-12)
    assert np.max(np.abs(auto[1][0]["w"])) > 1e-3  # the factor 2 is visible


def test_value_and_grad_and_differentiable_reject_non_layers():
    with pytest.raises(TypeError, match=r"value_and_grad: net must be a jaxbp.Layer, got "
                                        r"function \(did you forget to call"):
        jaxbp.value_and_grad(jaxbp.relu, jaxbp.half_mse())
    with pytest.raises(TypeError, match=r"value_and_grad: loss must be a jaxbp.Loss, got "
                                        r"function"):
        jaxbp.value_and_grad(jaxbp.relu(), jaxbp.half_mse)
    with pytest.raises(TypeError, match=r"differentiable: layer must be a jaxbp.Layer, got "
                                        r"int"):
        jaxbp.differentiable(3)
