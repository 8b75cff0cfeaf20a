"""``check_gradients``: passes right backwards, catches wrong ones, raises nothing.

The wrong backwards below are the learner's classic slips: a transposed ``dW``, a
missing ``f'``, a wrong sign, a factor 2, a forgotten batch sum for the bias.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.check import GradientReport, LeafReport


def with_backward(layer, backward, name):
    return jaxbp.Layer(layer.init, layer.forward, backward, name=name)


def dense_case(n_in=3, n_out=3, batch=2, seed=0):
    layer = jaxbp.dense(n_out)
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=(n_out,)), jnp.float32)}
    x = jnp.asarray(rng.normal(size=(batch, n_in)), jnp.float32)
    return layer, params, x


def test_right_backward_passes_with_a_readable_report():
    layer, params, x = dense_case()
    report = jaxbp.check_gradients(layer, params, x)
    assert isinstance(report, GradientReport)
    assert report.passed and bool(report)
    assert [leaf.name for leaf in report.leaves] == ["x", "params['b']", "params['w']"]
    assert all(isinstance(leaf, LeafReport) and leaf.passed for leaf in report.leaves)
    assert [leaf.shape for leaf in report.leaves] == [(2, 3), (3,), (3, 3)]
    assert report.max_error < 1e-12
    assert all(leaf.fd_rel_error < 1e-6 for leaf in report.leaves)
    assert report.jit_max_abs_error < 1e-12
    text = str(report)
    assert "gradient check of dense(3)" in text and "float64" in text
    for word in ("params['w']", "params['b']", "(3, 3)", "PASSED", "ok"):
        assert word in text
    assert "FAIL" not in text


def transposed_dw(params, residuals, dy):
    dparams, dx = jaxbp.dense(3).backward(params, residuals, dy)
    return {**dparams, "w": dparams["w"].T}, dx


def bias_not_summed(params, residuals, dy):
    dparams, dx = jaxbp.dense(3).backward(params, residuals, dy)
    return {**dparams, "b": dy[0]}, dx


def wrong_sign_dx(params, residuals, dy):
    dparams, dx = jaxbp.dense(3).backward(params, residuals, dy)
    return dparams, -dx


@pytest.mark.parametrize("backward, bad_leaf", [
    (transposed_dw, "params['w']"), (bias_not_summed, "params['b']"), (wrong_sign_dx, "x")],
    ids=["transposed dW", "bias not summed", "wrong sign"])
def test_wrong_dense_backward_is_caught_on_the_right_leaf(backward, bad_leaf):
    layer, params, x = dense_case()
    report = jaxbp.check_gradients(with_backward(layer, backward, "slipped"), params, x)
    assert not report.passed and not bool(report)
    failed = {leaf.name for leaf in report.leaves if not leaf.passed}
    assert failed == {bad_leaf}
    leaf = next(leaf for leaf in report.leaves if leaf.name == bad_leaf)
    assert leaf.max_rel_error > 1e-3 and leaf.fd_rel_error > 1e-3
    text = str(report)
    assert "FAIL" in text and "FAILED" in text.splitlines()[-1]
    assert "slipped" in text


def missing_f_prime(params, residuals, dy):
    del params, residuals
    return (), dy


def factor_two(params, residuals, dy):
    _, dx = jaxbp.sigmoid().backward(params, residuals, dy)
    return (), 2 * dx


@pytest.mark.parametrize("backward", [missing_f_prime, factor_two],
                         ids=["missing f'", "factor 2"])
def test_wrong_activation_backward_is_caught(backward):
    x = jnp.asarray([[0.3, -1.2, 2.0]], jnp.float32)
    report = jaxbp.check_gradients(with_backward(jaxbp.sigmoid(), backward, "bad sigmoid"),
                                   (), x)
    assert not report.passed
    assert [leaf.name for leaf in report.leaves] == ["x"]
    assert report.leaves[0].max_rel_error > 1e-2


def test_backward_that_raises_is_reported_not_raised():
    def broken(params, residuals, dy):
        raise ValueError("not done yet")

    report = jaxbp.check_gradients(with_backward(jaxbp.tanh(), broken, "unfinished"), (),
                                   jnp.ones((1, 2), jnp.float32))
    assert not report.passed
    assert "backward raised ValueError: not done yet" in report.error
    assert "FAILED" in str(report) and "not done yet" in str(report)


def test_wrong_tree_structure_is_reported():
    layer, params, x = dense_case()

    def forgets_bias(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return {"w": dparams["w"]}, dx

    report = jaxbp.check_gradients(with_backward(layer, forgets_bias, "no db"), params, x)
    assert not report.passed
    assert "dparams has the structure" in report.error


def test_wrong_gradient_shape_is_reported():
    layer, params, x = dense_case()

    def flat_dx(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return dparams, dx.reshape(-1)

    report = jaxbp.check_gradients(with_backward(layer, flat_dx, "flat"), params, x)
    assert not report.passed
    assert "x: the gradient has shape (6,), expected (2, 3)" in report.error


def test_runs_in_float64_whatever_comes_in():
    """float32 params and input are cast: float32 arithmetic (relative error ~1e-7)
    would not reach 1e-10."""
    layer, params, x = dense_case(seed=3)
    report = jaxbp.check_gradients(layer, params, x, tolerance=1e-10)
    assert report.passed, str(report)
    assert "tolerance 1e-10" in str(report)
    assert report.max_error < 1e-13


def test_tolerance_and_explicit_dy():
    """A tiny error passes a loose tolerance and fails a tight one."""
    layer, params, x = dense_case()

    def nearly(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return dparams, dx * (1 + 1e-7)

    slightly_off = with_backward(layer, nearly, "nearly")
    dy = jnp.ones((2, 3), jnp.float32)
    assert jaxbp.check_gradients(slightly_off, params, x, dy=dy, tolerance=1e-4).passed
    assert not jaxbp.check_gradients(slightly_off, params, x, dy=dy, tolerance=1e-9).passed


def test_jit_only_difference_is_caught():
    """A backward that depends on being traced or not (here: a Python-side cache keyed on
    the array type) shows up in the jit-vs-eager figure."""
    layer = jaxbp.tanh()

    def eager_right_jit_wrong(params, residuals, dy):
        _, dx = layer.backward(params, residuals, dy)
        return (), dx * 0.5 if isinstance(dy, jax.core.Tracer) else dx

    report = jaxbp.check_gradients(with_backward(layer, eager_right_jit_wrong, "jit"), (),
                                   jnp.asarray([[0.5, -0.25]], jnp.float32))
    assert not report.passed
    assert report.jit_max_abs_error > 1e-3
    assert all(leaf.passed for leaf in report.leaves)


def test_nan_under_jit_is_caught():
    """A NaN in the jitted gradient must fail the check (a plain max() would skip it)."""
    layer = jaxbp.tanh()

    def nan_under_jit(params, residuals, dy):
        _, dx = layer.backward(params, residuals, dy)
        return (), dx * jnp.nan if isinstance(dy, jax.core.Tracer) else dx

    report = jaxbp.check_gradients(with_backward(layer, nan_under_jit, "nan"), (),
                                   jnp.asarray([[0.5, -0.25]], jnp.float32))
    assert not report.passed
    assert not report.jit_max_abs_error <= report.tolerance
