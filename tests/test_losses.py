"""Losses: values against NumPy, backward against jax.grad and finite differences,
the batch mean, labels in both forms, and stability at extreme inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import assert_loss_matches_autodiff, on_device


def np_log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def per_example(v):
    return v.reshape(v.shape[0], -1).sum(axis=1)


# Independent NumPy definitions of the per-entry losses (the documents' and PyTorch's).
def np_half_mse(p, t):
    return np.mean(per_example(0.5 * (p - t) ** 2))


def np_softmax_xent(z, t):
    return np.mean(-(t * np_log_softmax(z)).sum(axis=-1))


def np_bce(p, y):
    # PyTorch's BCELoss: logs clamped at -100 (log(0) = -inf is clamped too).
    with np.errstate(divide="ignore"):
        return np.mean(per_example(-(y * np.maximum(np.log(p), -100)
                                     + (1 - y) * np.maximum(np.log1p(-p), -100))))


def np_sigmoid_bce(z, y):
    return np.mean(per_example(np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))))


SHAPES = [(1, 1), (3, 2), (2, 3, 5)]


def _rng_case(seed, shape):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_half_mse(shape):
    rng, pred = _rng_case(0, shape)
    target = rng.normal(size=shape)
    value, dpred = assert_loss_matches_autodiff(jaxbp.half_mse(), pred, target,
                                                eager=shape == (3, 2))
    np.testing.assert_allclose(value, np_half_mse(pred, target), rtol=1e-13)
    # The 1/2 cancels the square's 2; the mean brings 1 / batch.
    np.testing.assert_allclose(dpred, (pred - target) / shape[0], rtol=1e-13)


@pytest.mark.parametrize("batch, classes", [(1, 2), (3, 5), (4, 1)])
def test_softmax_cross_entropy_one_hot_and_integer_labels(batch, classes):
    rng, logits = _rng_case(1, (batch, classes))
    labels = rng.integers(0, classes, size=batch)
    one_hot = np.eye(classes)[labels]
    loss = jaxbp.softmax_cross_entropy()
    v1, g1 = assert_loss_matches_autodiff(loss, logits, one_hot, eager=batch == 3)
    v2, g2 = assert_loss_matches_autodiff(loss, logits, labels.astype(np.int32),
                                          eager=batch == 3, fd=False)
    want = np_softmax_xent(logits, one_hot)
    np.testing.assert_allclose(v1, want, rtol=1e-13)
    np.testing.assert_allclose(v2, want, rtol=1e-13)
    # Document 003: dC/dz_i = a_i - y_i, divided by the batch for the mean.
    np.testing.assert_allclose(g1, (np_softmax(logits) - one_hot) / batch, atol=1e-15)
    np.testing.assert_allclose(g2, g1, atol=1e-15)


def test_softmax_cross_entropy_soft_targets():
    rng, logits = _rng_case(2, (3, 4))
    target = np_softmax(rng.normal(size=(3, 4)))
    value, _ = assert_loss_matches_autodiff(jaxbp.softmax_cross_entropy(), logits, target,
                                            eager=False)
    np.testing.assert_allclose(value, np_softmax_xent(logits, target), rtol=1e-13)


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_cross_entropy(shape):
    rng = np.random.default_rng(3)
    prob = rng.uniform(0.05, 0.95, size=shape)
    target = rng.uniform(0, 1, size=shape)
    value, dpred = assert_loss_matches_autodiff(jaxbp.binary_cross_entropy(), prob, target,
                                                eager=shape == (3, 2))
    np.testing.assert_allclose(value, np_bce(prob, target), rtol=1e-13)
    # Document 004: dL/dy_out = -y / y_out + (1 - y) / (1 - y_out).
    np.testing.assert_allclose(dpred, (-target / prob + (1 - target) / (1 - prob))
                               / shape[0], rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_binary_cross_entropy(shape):
    rng, logits = _rng_case(4, shape)
    target = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    value, dpred = assert_loss_matches_autodiff(jaxbp.sigmoid_binary_cross_entropy(),
                                                logits, target, eager=shape == (3, 2))
    np.testing.assert_allclose(value, np_sigmoid_bce(logits, target), rtol=1e-13)
    # Document 004: dL/dy_out * y_out (1 - y_out) simplifies to y_out - y.
    np.testing.assert_allclose(dpred, (1 / (1 + np.exp(-logits)) - target) / shape[0],
                               rtol=1e-12)


@pytest.mark.parametrize("make", [jaxbp.half_mse, jaxbp.softmax_cross_entropy,
                                  jaxbp.binary_cross_entropy,
                                  jaxbp.sigmoid_binary_cross_entropy],
                         ids=lambda f: f.__name__)
def test_value_is_batch_mean_and_backward_its_gradient(make):
    """Two examples together give the mean of their losses, and half of each gradient."""
    rng = np.random.default_rng(5)
    pred = rng.uniform(0.1, 0.9, size=(2, 3))
    target = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    loss = make()

    @jax.jit
    def value_and_dpred(p, t):
        value, residuals = loss.forward(p, t)
        return value, loss.backward(residuals)

    with jax.enable_x64(True):  # NumPy in: jnp.asarray would compile a program each
        v, g = map(np.asarray, value_and_dpred(pred, target))
        singles = [tuple(map(np.asarray, value_and_dpred(pred[i:i + 1], target[i:i + 1])))
                   for i in range(2)]
    np.testing.assert_allclose(v, (singles[0][0] + singles[1][0]) / 2, rtol=1e-13)
    for i, (_, gi) in enumerate(singles):
        np.testing.assert_allclose(g[i:i + 1], gi / 2, rtol=1e-13)


# ------------------------------------------------------------------- extreme inputs


def forward_and_backward(loss, pred, target):
    """``loss``'s value and dpred from one compiled program (NumPy arrays in: nothing
    compiled eagerly on the way)."""
    def step(pred, target):
        value, residuals = loss.forward(pred, target)
        return value, loss.backward(residuals)
    return jax.jit(step)(pred, target)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_cross_entropy_at_logits_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    labels = np.array([0, 1, 2], np.int32)
    # Exact: example 0 has loss log(1 + e^-1e4 + e^-2e4) = 0 (to any float), example 1
    # has 2e4, example 2 has 0; the softmax is one-hot at the largest logit.
    want_value = (0.0 + 2e4 + 0.0) / 3
    want_grad = (np.array([[1.0, 0, 0], [1, 0, 0], [0, 0, 1]]) - np.eye(3)[labels]) / 3
    with jax.enable_x64(True):
        value, grad = forward_and_backward(jaxbp.softmax_cross_entropy(),
                                           logits.astype(dtype), labels)
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(value, want_value, rtol=1e-6)
        np.testing.assert_allclose(grad, want_grad, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sigmoid_binary_cross_entropy_at_logits_1e4(dtype):
    z = np.array([[1e4, -1e4, 1e4, -1e4]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])
    with jax.enable_x64(True):
        value, grad = forward_and_backward(jaxbp.sigmoid_binary_cross_entropy(),
                                           z.astype(dtype), y.astype(dtype))
        assert value.dtype == dtype and grad.dtype == dtype
        # Right answers: 0 for the two confident right ones, 1e4 for each wrong one.
        np.testing.assert_allclose(value, 2e4, rtol=1e-6)
        np.testing.assert_allclose(grad, [[0.0, 0.0, 1.0, -1.0]], atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_binary_cross_entropy_at_probabilities_0_and_1(dtype):
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0]])
    with jax.enable_x64(True):
        value, grad = forward_and_backward(jaxbp.binary_cross_entropy(), p.astype(dtype),
                                           y.astype(dtype))
        grad = np.asarray(grad)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        # Right with certainty: loss 0, gradient 0. Wrong with certainty: the log is
        # clamped at -100 (PyTorch's BCELoss), so 100 each.
        np.testing.assert_allclose(value, np_bce(p, y), rtol=1e-6)
        np.testing.assert_allclose(value, 200.0, rtol=1e-6)
        np.testing.assert_array_equal(grad[0, :2], [0.0, 0.0])
        # The gradient points the right way: raise p where y = 1, lower it where y = 0.
        assert grad[0, 2] < 0 < grad[0, 3]


def test_softmax_cross_entropy_zero_target_entries_with_minus_inf_log_prob():
    """A zero target times a log-probability that underflows to -inf contributes 0."""
    logits = np.array([[0.0, -1e4]], np.float32)  # float32: log_softmax[1] = -1e4
    # Eagerly, op by op (as the masked-logit test below explains, jit could simplify a
    # 0 * -inf away); the inputs are put on the device without compiling anything.
    target = on_device([[1.0, 0.0]], np.float32)
    value, res = jaxbp.softmax_cross_entropy().forward(jax.device_put(logits), target)
    assert float(value) == 0.0
    assert np.all(np.isfinite(jaxbp.softmax_cross_entropy().backward(res)))


# ------------------------------------------------------------------------- labels


def test_out_of_range_labels_under_jit_give_nan():
    """Concrete labels are range-checked (test_errors); traced ones cannot be, and the
    documented behaviour is NaN, never a silent zero."""
    loss = jaxbp.softmax_cross_entropy()
    logits = np.zeros((2, 3), np.float32)  # NumPy in: one program for the three calls
    value_fn = jax.jit(lambda z, t: loss.forward(z, t)[0])
    assert np.isnan(value_fn(logits, np.array([0, 3], np.int32)))
    assert np.isnan(value_fn(logits, np.array([-1, 0], np.int32)))
    np.testing.assert_allclose(value_fn(logits, np.array([0, 2], np.int32)), np.log(3),
                               rtol=1e-6)


@pytest.mark.parametrize("make, pred", [
    (jaxbp.half_mse, np.ones((2, 3))),
    (jaxbp.softmax_cross_entropy, np.ones((2, 3))),
    (jaxbp.binary_cross_entropy, np.full((2, 3), 0.3)),
    (jaxbp.sigmoid_binary_cross_entropy, np.ones((2, 3))),
], ids=["half_mse", "softmax_cross_entropy", "binary_cross_entropy",
        "sigmoid_binary_cross_entropy"])
def test_losses_stay_float32_with_x64_enabled(make, pred):
    loss = make()
    target = np.array([[1.0, 0, 0], [0, 1, 0]])
    with jax.enable_x64(True):
        p, t = pred.astype(np.float32), target.astype(np.float32)  # traced only

        def step(p, t):
            value, res = loss.forward(p, t)
            return value, loss.backward(res)

        lowered = jax.jit(step).lower(p, t)
        assert "f64" not in lowered.as_text()
        value, grad = jax.eval_shape(step, p, t)
        assert value.dtype == grad.dtype == jnp.float32


def test_the_loss_helper_catches_a_missing_batch_factor():
    """The slip of forgetting that the mean brings 1 / batch."""
    right = jaxbp.half_mse()
    slipped = jaxbp.Loss(right.forward, lambda residuals: residuals.diff, name="slipped")
    pred, target = np.ones((3, 2)), np.zeros((3, 2))
    with pytest.raises(AssertionError, match=r"slipped: dpred \(jit\) vs jax.grad"):
        assert_loss_matches_autodiff(slipped, pred, target)
    assert_loss_matches_autodiff(right, pred, target, eager=False)


def test_out_of_range_labels_under_jit_poison_only_their_gradient_row():
    loss = jaxbp.softmax_cross_entropy()
    logits = np.asarray([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], np.float32)
    grad_fn = jax.jit(lambda z, t: loss.backward(loss.forward(z, t)[1]))
    grad = np.asarray(grad_fn(logits, np.array([0, 3], np.int32)))
    assert np.all(np.isnan(grad[1])), grad
    # The valid row is (softmax - one_hot) / batch, untouched by its neighbour.
    expected = (np_softmax(logits[0]) - np.array([1, 0, 0])) / 2
    np.testing.assert_allclose(grad[0], expected, rtol=1e-6)


@pytest.mark.parametrize("labels", ["integer", "one-hot"])
def test_softmax_cross_entropy_with_a_masked_minus_inf_logit(labels):
    """Logits (0, -inf, 1), class 0: the loss is log(1 + e) = 1.3133 (PyTorch's and
    optax's value), not NaN from 0 * -inf; the gradient is finite and right."""
    # JAX arrays put on the device from NumPy (jnp.asarray would compile a program each).
    logits = on_device([[0.0, -np.inf, 1.0]], np.float32)
    target = (on_device([0], np.int32) if labels == "integer"
              else on_device([[1.0, 0.0, 0.0]], np.float32))
    loss = jaxbp.softmax_cross_entropy()
    p = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    # Eagerly (op by op) the old product 0 * -inf gave NaN; under jit XLA happened to
    # simplify it away. Both must be finite.
    for forward in (loss.forward, jax.jit(loss.forward)):
        value, res = forward(logits, target)
        np.testing.assert_allclose(value, np.log1p(np.e), rtol=1e-6)
        assert abs(float(value) - 1.3133) < 1e-4
        grad = np.asarray(loss.backward(res))
        np.testing.assert_allclose(grad, [[p[0] - 1, 0.0, p[1]]], rtol=1e-6)


def test_softmax_cross_entropy_minus_inf_logit_matches_pytorch():
    torch = pytest.importorskip("torch")
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]], np.float32)
    labels = np.array([0, 1])
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    value, _ = jaxbp.softmax_cross_entropy().forward(
        jax.device_put(logits), jax.device_put(labels.astype(np.int32)))
    np.testing.assert_allclose(value, float(want), rtol=1e-6)


def test_binary_cross_entropy_out_of_range_under_jit_is_nan_not_silent():
    """Under jit pred cannot be range-checked; the documented result is NaN."""
    loss = jaxbp.binary_cross_entropy()
    value = jax.jit(lambda p: loss.forward(p, jnp.zeros_like(p))[0])(
        np.asarray([[1.5]], np.float32))
    assert np.isnan(value)
    # In range, the concrete check lets every value through, 0 and 1 included (eagerly:
    # the check runs on concrete values; the inputs are put on the device from NumPy).
    value, _ = loss.forward(on_device([[0.0, 1.0, 0.5]], np.float32),
                            on_device([[0.0, 1.0, 1.0]], np.float32))
    np.testing.assert_allclose(value, np.log(2), rtol=1e-6)
