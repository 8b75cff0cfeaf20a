"""A learner's backward passes inside jaxbp layers: the solutions' functions train a
network and give jaxbp's own gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.grading.plug import NotDoneYet, learner_layers


@pytest.fixture(scope="module")
def L():
    return learner_layers("solutions")


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = rng.integers(0, 3, size=n)
    x = centers[labels] + 0.6 * rng.normal(size=(n, 2))
    return jnp.asarray(x, jnp.float32), jnp.asarray(labels, jnp.int32)


def test_a_network_of_the_solutions_functions_trains(L):
    net = L["serial"](L["dense"](16), L["tanh"](), L["dense"](3))
    loss = L["softmax_cross_entropy"]()
    sgd = L["sgd"](0.5)
    params, _ = net.init(jax.random.key(0), (2,))
    opt_state = sgd.init(params)
    x, y = _blobs()
    grad_fn = jaxbp.value_and_grad(net, loss)

    @jax.jit
    def step(params, opt_state):
        value, grads = grad_fn(params, x, y)
        updates, opt_state = sgd.update(grads, opt_state, params)
        return jax.tree.map(lambda p, u: p + u, params, updates), opt_state, value

    losses = []
    for _ in range(50):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert all(np.isfinite(losses))


def _max_diff(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda u, v: float(jnp.max(jnp.abs(u - v))), a, b)))


@pytest.mark.parametrize("build, shape, loss_name, target", [
    (lambda m: m["serial"](m["conv2d"](3, 3, padding="SAME"), m["relu"](), m["max_pool2d"](2),
                           m["flatten"](), m["dense"](4), m["sigmoid"](), m["dense"](2)),
     (6, 6, 1), "half_mse", "real"),
    (lambda m: m["serial"](m["conv1d"](2, 3, stride=2, padding=1), m["sigmoid"](),
                           m["max_pool1d"](2), m["flatten"](), m["dense"](3), m["softmax"]()),
     (7, 2), "binary_cross_entropy", "prob"),
    (lambda m: m["serial"](m["dense"](5), m["relu"](), m["dense"](1)), (3,),
     "sigmoid_binary_cross_entropy", "binary"),
], ids=["cnn-half-mse", "conv1d-bce", "mlp-sigmoid-bce"])
def test_the_learners_layers_give_jaxbps_gradients(L, build, shape, loss_name, target, x64):
    mine, ref = build(L), build(vars(jaxbp))
    params, out = jax.jit(ref.init, static_argnums=1)(jax.random.key(1), shape)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(4, *shape)), jnp.float64)
    t = {"real": rng.normal(size=(4, *out)), "binary": rng.integers(0, 2, size=(4, *out)),
         "prob": rng.uniform(0.1, 0.9, size=(4, *out))}[target]
    t = jnp.asarray(t, jnp.float64)
    v1, g1 = jax.jit(jaxbp.value_and_grad(mine, L[loss_name]()))(params, x, t)
    v2, g2 = jax.jit(jaxbp.value_and_grad(ref, getattr(jaxbp, loss_name)()))(params, x, t)

    def autodiff_loss(p):
        return getattr(jaxbp, loss_name)().forward(ref.forward(p, x)[0], t)[0]

    g3 = jax.jit(jax.grad(autodiff_loss))(params)
    assert float(v1) == pytest.approx(float(v2), rel=1e-12)
    assert _max_diff(g1, g2) < 1e-10
    assert _max_diff(g1, g3) < 1e-10


def test_an_unfinished_exercise_is_named_when_a_layer_needs_it():
    layers = learner_layers("exercises")
    with pytest.raises(NotDoneYet, match="dense_backward is not done yet: write it in"):
        layers["dense"](3)
    with pytest.raises(NotDoneYet, match="softmax_cross_entropy_backward"):
        layers["softmax_cross_entropy"]()
    assert layers["flatten"]().name == "flatten()"  # no exercise: jaxbp's own


def test_cases_without_an_exercise_fall_back_to_jaxbps_backward(L):
    assert L["conv2d"](2, 3, stride=2).backward.__qualname__.startswith("_conv")
    assert L["max_pool2d"](2, stride=1).backward.__qualname__.startswith("_pool")
    assert L["conv2d"](2, 3).backward.__qualname__.startswith("learner_layers")
