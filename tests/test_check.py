"""``check_gradients``: passes right backwards, catches wrong ones, raises nothing.

The wrong backwards below are the learner's classic slips: a transposed ``dW``, a
missing ``f'``, a wrong sign, a factor 2, a forgotten batch sum for the bias.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
import jaxbp.check
from helpers import on_device
from jaxbp import cli
from jaxbp.check import GradientReport, LeafReport


def with_backward(layer, backward, name):
    return jaxbp.Layer(layer.init, layer.forward, backward, name=name)


def f32(a):
    """A float32 jax.Array made from NumPy values, compiling nothing (jnp.asarray(a,
    jnp.float32) compiles a conversion program per shape)."""
    return on_device(a, np.float32)


def dense_case(n_in=3, n_out=3, batch=2, seed=0):
    layer = jaxbp.dense(n_out)
    rng = np.random.default_rng(seed)
    params = {"w": f32(rng.normal(size=(n_in, n_out))), "b": f32(rng.normal(size=(n_out,)))}
    x = f32(rng.normal(size=(batch, n_in)))
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
    x = f32([[0.3, -1.2, 2.0]])
    report = jaxbp.check_gradients(with_backward(jaxbp.sigmoid(), backward, "bad sigmoid"),
                                   (), x)
    assert not report.passed
    assert [leaf.name for leaf in report.leaves] == ["x"]
    assert report.leaves[0].max_rel_error > 1e-2


def test_backward_that_raises_is_reported_not_raised():
    def broken(params, residuals, dy):
        raise ValueError("not done yet")

    report = jaxbp.check_gradients(with_backward(jaxbp.tanh(), broken, "unfinished"), (),
                                   f32(np.ones((1, 2))))
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
    dy = f32(np.ones((2, 3)))
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
                                   f32([[0.5, -0.25]]))
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
                                   f32([[0.5, -0.25]]))
    assert not report.passed
    assert not report.jit_max_abs_error <= report.tolerance


# ------------------------------------------- shapes and dtypes first, never a crash


def bias_of_the_wrong_size(params, residuals, dy):
    """The learner's most common slip: the bias gradient not summed over the batch."""
    dparams, dx = jaxbp.dense(3).backward(params, residuals, dy)
    return {**dparams, "b": dy}, dx


def test_a_wrong_size_gradient_is_a_failed_check_before_finite_differences(monkeypatch):
    """It used to crash with a 28-line traceback ending in a dot_general error, from
    the finite-difference pass that ran before the shape check."""
    def no_finite_differences(*args):
        raise AssertionError("finite differences ran on a wrong-shaped gradient")

    monkeypatch.setattr(jaxbp.check, "_finite_difference_errors", no_finite_differences)
    layer, params, x = dense_case()
    report = jaxbp.check_gradients(with_backward(layer, bias_of_the_wrong_size, "unsummed"),
                                   params, x)
    assert not report.passed
    assert report.error == ("params['b']: the gradient has shape (2, 3), expected (3,) "
                            "(not summed over the batch axis?)")
    assert "FAILED: params['b']: the gradient has shape (2, 3)" in str(report)


def test_every_wrong_leaf_is_named():
    layer, params, x = dense_case(n_in=2, n_out=3)

    def two_slips(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return {"w": dparams["w"].T, "b": dy}, dx[:, :1]

    report = jaxbp.check_gradients(with_backward(layer, two_slips, "slips"), params, x)
    assert report.error.splitlines() == [
        "x: the gradient has shape (2, 1), expected (2, 2)",
        "params['b']: the gradient has shape (2, 3), expected (3,) (not summed over the "
        "batch axis?)",
        "params['w']: the gradient has shape (3, 2), expected (2, 3) (transposed?)"]


def test_the_dtype_of_each_gradient_is_checked():
    """A backward returning float32 gradients for float64 inputs used to pass."""
    layer, params, x = dense_case()

    def float32_dw(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return {**dparams, "w": dparams["w"].astype(jnp.float32)}, dx

    report = jaxbp.check_gradients(with_backward(layer, float32_dw, "f32"), params, x)
    assert not report.passed
    assert report.error == ("params['w']: the gradient has dtype float32, expected "
                            "float64 (the dtype of params['w'])")


def test_the_error_is_relative_at_any_scale():
    """A dW 1% wrong used to pass on inputs of scale 1e-5: the error was divided by
    max(1, max |ref|), an absolute error for small gradients."""
    layer, params, x = dense_case()
    x = f32(np.asarray(x) * 1e-5)

    def one_percent_off(params, residuals, dy):
        dparams, dx = layer.backward(params, residuals, dy)
        return {**dparams, "w": dparams["w"] * 1.01}, dx

    report = jaxbp.check_gradients(with_backward(layer, one_percent_off, "1%"), params, x)
    assert not report.passed
    leaf = next(leaf for leaf in report.leaves if leaf.name == "params['w']")
    assert leaf.max_abs_error < 1e-6 and 5e-3 < leaf.max_rel_error < 2e-2
    assert not leaf.passed
    # The right backward passes at the same scale, and at a large one.
    assert jaxbp.check_gradients(layer, params, x).passed
    assert jaxbp.check_gradients(layer, params, f32(np.asarray(x) * 1e10)).passed


def test_a_leaf_whose_gradient_is_zero_is_compared_absolutely():
    """relu on negative inputs: dx is exactly 0, the floor keeps 0 / 0 out."""
    report = jaxbp.check_gradients(jaxbp.relu(), (), f32(-np.ones((2, 3))))
    assert report.passed, str(report)
    assert report.leaves[0].max_rel_error == 0.0


def test_a_batch_of_one_is_noted():
    layer, params, x = dense_case(batch=1)
    report = jaxbp.check_gradients(with_backward(layer, bias_not_summed, "batch 1"),
                                   params, x)
    assert report.passed  # at batch 1, dy[0] is the sum over the batch
    assert "note: x has a batch of 1: a gradient not summed over the batch goes " \
           "unnoticed; check with a batch of at least 2" in str(report)
    _, _, x2 = dense_case(batch=2)
    assert not jaxbp.check_gradients(with_backward(layer, bias_not_summed, "batch 2"),
                                     params, x2).passed


def test_a_forward_that_raises_is_reported_not_raised():
    layer, params, x = dense_case()
    report = jaxbp.check_gradients(layer, params, x[:, :2])
    assert not report.passed
    assert report.error.startswith("forward raised ValueError: dense(3): x must have 3 "
                                   "features")


def test_an_explicit_dy_of_the_wrong_shape_is_reported():
    layer, params, x = dense_case()
    report = jaxbp.check_gradients(layer, params, x, dy=f32(np.ones((2, 4))))
    assert report.error == "dy must have the shape of the forward's output (2, 3), got (2, 4)"


# ------------------------------------------------------------------- jaxbp check

USER_FILE = '''
import jaxbp
import jaxbp.check
from jaxbp import cli

_dense = jaxbp.dense(3)


def _unsummed(params, residuals, dy):
    dparams, dx = _dense.backward(params, residuals, dy)
    return {**dparams, "b": dy}, dx


unsummed_bias = jaxbp.Layer(_dense.init, _dense.forward, _unsummed, name="unsummed")


def _first_row(params, residuals, dy):
    dparams, dx = _dense.backward(params, residuals, dy)
    return {**dparams, "b": dy[0]}, dx


first_row_bias = jaxbp.Layer(_dense.init, _dense.forward, _first_row, name="first row")


def _broken_init(key, input_shape):
    raise NameError("name 'w' is not defined")


broken_init = jaxbp.Layer(_broken_init, _dense.forward, _dense.backward, name="broken")
'''


@pytest.fixture
def user_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "learner.py"
    path.write_text(USER_FILE, encoding="utf-8")
    yield path
    sys.modules.pop("_jaxbp_user_module", None)


def test_jaxbp_check_reports_a_wrong_size_gradient(user_file, capsys):
    """It used to crash with a traceback; now a failed check, exit 1."""
    code = cli.main(["check", f"{user_file}:unsummed_bias", "--shape", "4"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "FAILED: params['b']: the gradient has shape (3, 3), expected (3,) (not summed " \
           "over the batch axis?)" in out
    assert "Traceback" not in out + err


def test_jaxbp_check_default_batch_catches_a_batch_reduction_bug(user_file, capsys):
    """db = dy[0] has the right shape; only a batch above 1 shows its values are wrong."""
    code = cli.main(["check", f"{user_file}:first_row_bias", "--shape", "4"])
    out, _ = capsys.readouterr()
    assert code == 1 and "params['b']" in out and "FAIL" in out
    code = cli.main(["check", f"{user_file}:first_row_bias", "--shape", "4", "--batch", "1"])
    out, _ = capsys.readouterr()
    assert code == 0 and "note: x has a batch of 1" in out


def test_jaxbp_check_init_that_raises_is_one_line(user_file, capsys):
    code = cli.main(["check", f"{user_file}:broken_init", "--shape", "4"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == ("jaxbp check: " + f"{user_file}:broken_init: init raised NameError: "
                   "name 'w' is not defined\n")


def test_jaxbp_check_rejects_a_batch_below_one(user_file, capsys):
    code = cli.main(["check", f"{user_file}:unsummed_bias", "--batch", "0"])
    assert code == 2
    assert "--batch must be a positive int, got 0" in capsys.readouterr()[1]


def test_a_network_too_large_for_one_batch_of_directions_is_checked_one_at_a_time(
        monkeypatch):
    """Past SPREAD_LIMIT the directions run one by one (the op-by-op check): the same
    verdict, for the right and for a wrong backward."""
    from jaxbp import check as check_module

    net = jaxbp.serial(jaxbp.dense(3), jaxbp.tanh(), jaxbp.dense(2))
    params, _ = net.init(jax.random.key(0), (4,))
    x = f32(np.random.default_rng(0).standard_normal((5, 4)))
    fast = jaxbp.check_gradients(net, params, x)
    monkeypatch.setattr(check_module, "SPREAD_LIMIT", 0)
    slow = jaxbp.check_gradients(net, params, x)
    assert fast.passed and slow.passed
    assert [leaf.name for leaf in fast.leaves] == [leaf.name for leaf in slow.leaves]
    for a, b in zip(fast.leaves, slow.leaves):
        assert a.max_abs_error == pytest.approx(b.max_abs_error, abs=1e-14)

    def half_dx(params, residuals, dy):
        grads, dx = net.backward(params, residuals, dy)
        return grads, 0.5 * dx

    wrong = jaxbp.check_gradients(with_backward(net, half_dx, "half"), params, x)
    assert not wrong.passed
    assert [leaf.name for leaf in wrong.leaves if not leaf.passed] == ["x"]


def test_without_the_eager_pass_the_jitted_backward_is_what_is_checked():
    layer = jaxbp.tanh()

    def eager_right_jit_wrong(params, residuals, dy):
        _, dx = layer.backward(params, residuals, dy)
        return (), dx * 0.5 if isinstance(dy, jax.core.Tracer) else dx

    x = f32([[0.5, -0.25], [0.1, 0.3]])
    good = jaxbp.check_gradients(layer, (), x, eager=False)
    assert good.passed and "jit vs eager: not run" in str(good)
    bad = jaxbp.check_gradients(with_backward(layer, eager_right_jit_wrong, "jit"), (), x,
                                eager=False)
    assert not bad.passed and not bad.leaves[0].passed
