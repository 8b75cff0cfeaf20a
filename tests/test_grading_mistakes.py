"""The grader's diagnoses: deliberately wrong answers, each failed with its mistake named.

Every implementation here is a small learner's file written into a temporary directory
(the layout of ``exercises/``) and graded like any other copy. Each test asserts that
the grader fails the answer on the right check and names the mistake, in the learner's
terms, and that the rest of what the grader promises holds: the comparison per output,
"not done yet", refusal of autodiff, the time limit, the learner's own frame.
"""

import textwrap

import pytest

from jaxbp import grading

HEADER = "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"


def grade(tmp_path, exercise, source, **kw):
    """Writes ``source`` as the exercise's module in ``tmp_path`` and grades it."""
    module = grading.BY_NAME[exercise].module
    (tmp_path / module).write_text(HEADER + textwrap.dedent(source), encoding="utf-8")
    kw.setdefault("documents", False)
    return grading.evaluate(grading.Impl(tmp_path), exercise, **kw)


DENSE = """
def dense_backward(x, w, dy):
    dx = {dx}
    dw = {dw}
    db = {db}
    return dx, dw, db
"""


def dense(dx="dy @ w.T", dw="x.T @ dy", db="jnp.sum(dy, axis=0)"):
    return DENSE.format(dx=dx, dw=dw, db=db)


CONV2D_UNFLIPPED = """
def conv2d_backward(x, w, dy):
    kh, kw = w.shape[0], w.shape[1]
    # the full correlation of dy with the kernel, in/out swapped, but NOT flipped
    dx = lax.conv_general_dilated(dy, jnp.swapaxes(w, 2, 3), (1, 1),
                                  [(kh - 1, kh - 1), (kw - 1, kw - 1)],
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
    oh, ow = dy.shape[1], dy.shape[2]
    dw = jnp.stack([jnp.stack([jnp.einsum("nrci,nrco->io", x[:, i:i + oh, j:j + ow, :], dy)
                               for j in range(kw)]) for i in range(kh)])
    return dx, dw, jnp.sum(dy, axis=(0, 1, 2))
"""

CONV1D_UNFLIPPED = """
def conv1d_backward(x, w, dy, stride=1, padding=0):
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    k = w.shape[0]
    span = (dy.shape[1] - 1) * stride + 1
    xpad = jnp.pad(x, ((0, 0), (lo, hi), (0, 0)))
    dxpad = jnp.zeros(xpad.shape, dy.dtype)
    dw = []
    for j in range(k):
        dw.append(jnp.einsum("nli,nlo->io", xpad[:, j:j + span:stride, :], dy))
        # the tap's kernel entry taken from the other end: an unflipped full correlation
        dxpad = dxpad.at[:, j:j + span:stride, :].add(jnp.einsum("nlo,io->nli", dy, w[k - 1 - j]))
    return dxpad[:, lo:lo + x.shape[1], :], jnp.stack(dw), jnp.sum(dy, axis=(0, 1))
"""

DOC000 = """
def doc000_step(params, x, target, lr, convention):
    acts = [x]
    for layer in params:
        acts.append(jax.nn.sigmoid(acts[-1] @ layer["w"] + layer["b"]))
    coef = (acts[-1] - target) * acts[-1] * (1 - acts[-1])
    new = [None] * len(params)
    for i in reversed(range(len(params))):
        w, b = params[i]["w"], params[i]["b"]
        new[i] = {{"w": w - lr * jnp.outer(acts[i], coef), "b": b - lr * coef}}
        if i > 0:
            carrier = {carrier}
            coef = (carrier @ coef) * acts[i] * (1 - acts[i])
    return tuple(new)
"""

DOC002_SLIP = """
def doc002_step(w, x, y, lr):
    s = jax.nn.sigmoid
    h1, h2 = s(w[0] * x[0] + w[2] * x[1]), s(w[1] * x[0] + w[3] * x[1])
    o1, o2 = s(w[4] * h1 + w[6] * h2), s(w[5] * h1 + w[7] * h2)
    e1, e2 = (o1 - y[0]) * o1 * (1 - o1), (o2 - y[1]) * o2 * (1 - o2)
    d5, d7, d6, d8 = e1 * h1, e1 * h2, e2 * h1, e2 * h2
    # the document's own formula: delta1 = (delta5 + delta6) h1 (1 - h1) x1
    d1, d3 = (d5 + d6) * h1 * (1 - h1) * x[0], (d5 + d6) * h1 * (1 - h1) * x[1]
    d2, d4 = (d7 + d8) * h2 * (1 - h2) * x[0], (d7 + d8) * h2 * (1 - h2) * x[1]
    g = jnp.stack([d1, d2, d3, d4, d5, d6, d7, d8])
    return g, w - lr * g
"""

POOL_EVERY_TIED = """
def max_pool2d_backward(x, dy, window):
    wh, ww = (window, window) if isinstance(window, int) else window
    oh, ow = dy.shape[1], dy.shape[2]
    xc = x[:, :oh * wh, :ow * ww, :]
    top = jnp.repeat(jnp.repeat(lax.reduce_window(xc, -jnp.inf, lax.max, (1, wh, ww, 1),
                                                   (1, wh, ww, 1), "VALID"), wh, 1), ww, 2)
    up = jnp.repeat(jnp.repeat(dy, wh, axis=1), ww, axis=2)
    dx = jnp.where(xc == top, up, 0.0)  # every entry equal to the maximum
    return jnp.pad(dx, ((0, 0), (0, x.shape[1] - oh * wh), (0, x.shape[2] - ow * ww), (0, 0)))
"""

SIGMOID_THEN_BCE = """
def sigmoid_binary_cross_entropy_backward(logits, target):
    p = jax.nn.sigmoid(logits)
    dp = (-target / p + (1 - target) / (1 - p)) / logits.shape[0]
    return dp * p * (1 - p)
"""

CONV1D_UNCROPPED = """
def conv1d_backward(x, w, dy, stride=1, padding=0):
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    k = w.shape[0]
    span = (dy.shape[1] - 1) * stride + 1
    xpad = jnp.pad(x, ((0, 0), (lo, hi), (0, 0)))
    dxpad = jnp.zeros(xpad.shape, dy.dtype)
    dw = []
    for j in range(k):
        dw.append(jnp.einsum("nli,nlo->io", xpad[:, j:j + span:stride, :], dy))
        dxpad = dxpad.at[:, j:j + span:stride, :].add(jnp.einsum("nlo,io->nli", dy, w[j]))
    return dxpad, jnp.stack(dw), jnp.sum(dy, axis=(0, 1))  # the padding left on dx
"""

# (exercise, wrong source, the check that must fail, the mistake it must name)
MISTAKES = [
    ("sigmoid_backward", "def sigmoid_backward(y, dy):\n    return -dy * y * (1 - y)\n",
     "values", "sign"),
    ("sigmoid_backward", "def sigmoid_backward(y, dy):\n    return dy\n", "values",
     "missing-derivative"),
    ("sigmoid_backward", "def sigmoid_backward(y, dy):\n    return y * (1 - y)\n", "values",
     "missing-dy"),
    ("tanh_backward", "def tanh_backward(y, dy):\n    return dy * (1 - y)\n", "values",
     "missing-square"),
    ("relu_backward", "def relu_backward(x, dy):\n    return jnp.maximum(dy, 0)\n", "values",
     "mask-from-dy"),
    ("softmax_backward", "def softmax_backward(y, dy):\n    return dy * y * (1 - y)\n",
     "values", "diagonal-only"),
    ("half_mse_backward",
     "def half_mse_backward(pred, target):\n    return 2 * (pred - target) / pred.shape[0]\n",
     "values", "factor-2"),
    ("half_mse_backward", "def half_mse_backward(pred, target):\n    return pred - target\n",
     "values", "batch-mean"),
    ("softmax_cross_entropy_backward",
     "def softmax_cross_entropy_backward(logits, target):\n"
     "    return jax.nn.softmax(logits, axis=-1) - target\n", "values", "batch-mean"),
    ("binary_cross_entropy_backward",
     "def binary_cross_entropy_backward(prob, target):\n"
     "    return (prob - target) / prob.shape[0]\n", "values", "simplified-too-early"),
    ("sigmoid_binary_cross_entropy_backward",
     "def sigmoid_binary_cross_entropy_backward(logits, target):\n"
     "    p = jax.nn.sigmoid(logits)\n"
     "    return (-target / p + (1 - target) / (1 - p)) / logits.shape[0]\n",
     "values", "missing-derivative"),
    ("dense_backward", dense(dw="dy.T @ x"), "values_dw", "transposed"),
    ("dense_backward", dense(dw="dy.T @ x"), "shapes", "transposed"),
    ("dense_backward", dense(db="jnp.sum(dy, axis=1)"), "values_db", "bias-axis"),
    ("dense_backward", dense(dx="jnp.zeros_like(dy @ w.T)"), "values_dx", "zeros"),
    ("sgd_update", "def sgd_update(params, grads, lr):\n"
     "    return jax.tree.map(lambda p, g: p + lr * g, params, grads)\n", "values", "ascent"),
    ("max_pool2d_backward", """
def max_pool2d_backward(x, dy, window):
    wh, ww = (window, window) if isinstance(window, int) else window
    up = jnp.repeat(jnp.repeat(dy, wh, axis=1), ww, axis=2)
    h, w = up.shape[1], up.shape[2]
    return jnp.pad(up, ((0, 0), (0, x.shape[1] - h), (0, x.shape[2] - w), (0, 0)))
""", "values", "every-entry"),
    ("doc002_step", DOC002_SLIP, "values_grads", "doc002-slip"),
    ("doc000_step", DOC000.format(carrier='new[i]["w"]'), "values", "updated-weights"),
    ("doc000_step", DOC000.format(carrier="w"), "values", "old-weights"),
    ("conv2d_backward", CONV2D_UNFLIPPED, "values_dx", "kernel-not-flipped"),
    ("conv1d_backward", CONV1D_UNFLIPPED, "values_dx", "kernel-not-flipped"),
    ("sigmoid_backward",
     "def sigmoid_backward(y, dy):\n    return jnp.sum(dy * y * (1 - y), axis=0)\n",
     "shapes", "shape"),
    # Mistakes the first grader's data hid, or left unnamed.
    ("relu_backward", "def relu_backward(x, dy):\n    return jnp.where(x >= 0, dy, 0.0)\n",
     "values", "kink"),
    ("relu_backward", "def relu_backward(x, dy):\n    return dy * jnp.maximum(x, 0.0)\n",
     "values", "times-x"),
    ("max_pool2d_backward", POOL_EVERY_TIED, "values", "every-tied"),
    ("sigmoid_binary_cross_entropy_backward", SIGMOID_THEN_BCE, "values", "unstable"),
    ("sigmoid_binary_cross_entropy_backward",
     "def sigmoid_binary_cross_entropy_backward(logits, target):\n"
     "    p = jax.nn.sigmoid(logits)\n"
     "    return (p - target) * p * (1 - p) / logits.shape[0]\n", "values", "extra-derivative"),
    ("half_mse_backward",
     "def half_mse_backward(pred, target):\n    return (pred - target) / pred.size\n",
     "values", "size-mean"),
    ("half_mse_backward",
     "def half_mse_backward(pred, target):\n    return (pred - target) / pred.shape[1]\n",
     "values", "feature-mean"),
    ("half_mse_backward",
     "def half_mse_backward(pred, target):\n    return 0.5 * (pred - target) / pred.shape[0]\n",
     "values", "factor-2"),
    ("sigmoid_backward", "def sigmoid_backward(y, dy):\n    return dy * y\n", "values",
     "one-factor"),
    ("tanh_backward", "def tanh_backward(y, dy):\n    return dy * y * (1 - y)\n", "values",
     "sigmoid-derivative"),
    ("softmax_backward",
     "def softmax_backward(y, dy):\n    return dy - jnp.sum(dy * y, axis=-1, keepdims=True)\n",
     "values", "missing-y"),
    ("softmax_backward",
     "def softmax_backward(y, dy):\n    return y * (dy - jnp.sum(dy, axis=-1, keepdims=True))\n",
     "values", "unweighted-sum"),
    ("softmax_cross_entropy_backward",
     "def softmax_cross_entropy_backward(logits, target):\n"
     "    return -target / jax.nn.softmax(logits, axis=-1) / logits.shape[0]\n",
     "values", "probs-gradient"),
    ("softmax_cross_entropy_backward",
     "def softmax_cross_entropy_backward(logits, target):\n"
     "    return (jax.nn.softmax(logits, axis=0) - target) / logits.shape[0]\n",
     "values", "softmax-axis"),
    ("binary_cross_entropy_backward",
     "def binary_cross_entropy_backward(prob, target):\n"
     "    return (-target / prob - (1 - target) / (1 - prob)) / prob.shape[0]\n",
     "values", "second-term-sign"),
    ("binary_cross_entropy_backward",
     "def binary_cross_entropy_backward(prob, target):\n"
     "    return -target / prob / prob.shape[0]\n", "values", "one-term"),
    ("dense_backward", dense(dw="x.T @ dy / x.shape[0]"), "values_dw", "dw-mean"),
    ("sgd_update", "def sgd_update(params, grads, lr):\n"
     "    return jax.tree.map(lambda p, g: p - g / lr, params, grads)\n", "values",
     "lr-divided"),
    ("conv1d_backward", CONV1D_UNCROPPED, "shapes", "padding-not-cropped"),
]


@pytest.mark.parametrize("exercise, source, check, mistake", MISTAKES,
                         ids=[f"{m[0]}-{m[3]}-{m[2]}" for m in MISTAKES])
def test_the_grader_names_the_mistake(tmp_path, exercise, source, check, mistake):
    result = grade(tmp_path, exercise, source)
    failed = result.check(check)
    assert failed.status == "failed" and failed.points == 0, failed
    assert failed.mistake == mistake, failed.feedback
    assert result.status in ("partial", "failed")
    assert "Traceback" not in failed.feedback


def test_a_values_failure_says_which_entry_and_shows_each_output(tmp_path):
    result = grade(tmp_path, "dense_backward", dense(dw="dy.T @ x"))
    feedback = result.check("values_dw").feedback
    first = feedback.splitlines()[0]
    assert first.startswith("transposed: your dw is dy.T @ x")
    assert "dw has shape (2, 3), expected (3, 2)" in first  # case 1: batch 1, 3 -> 2
    for output in ("dx", "dw", "db"):  # the autograd-style comparison, one per output
        assert any(line.strip().startswith(output) and "exact:" in line and
                   "approximate:" in line and "maxdiff:" in line and "shape:" in line
                   for line in feedback.splitlines()[1:])
    assert result.check("values_dx").passed and result.check("values_db").passed
    assert result.points == 2  # dx and db: partial credit


def test_a_wrong_entry_is_located_with_expected_and_got(tmp_path):
    result = grade(tmp_path, "sigmoid_backward",
                   "def sigmoid_backward(y, dy):\n    return -dy * y * (1 - y)\n")
    first = result.check("values").feedback.splitlines()[0]
    assert first.startswith("sign flipped")
    assert "dx[0, 0]: expected " in first and ", got " in first
    assert "case 1 of 3: y (1, 3), dy (1, 3)" in first
    assert result.check("shapes").passed  # shapes right, values wrong


def test_the_documents_numbers_name_002s_slip(tmp_path):
    result = grade(tmp_path, "doc002_step", DOC002_SLIP, documents=True)
    doc = result.check("doc002")
    assert doc.status == "failed" and doc.mistake == "doc002-slip"
    assert "δ1 = ∂Error/∂w1: the document's value is -0.01" in doc.feedback
    assert "0.01" in doc.feedback


def test_the_documents_numbers_tell_the_conventions_apart(tmp_path):
    # 000's w12 = 0.809 needs the notes' convention; textbook backprop gives 0.808.
    result = grade(tmp_path, "doc000_step", DOC000.format(carrier="w"), documents=True)
    doc = result.check("doc000")
    assert doc.status == "failed" and doc.mistake == "old-weights", doc.feedback
    assert "w12" in doc.feedback.splitlines()[0]


def test_a_networks_backward_names_the_first_layer_that_disagrees(tmp_path):
    source = """
def serial_backward(layers, params, residuals, dy):
    grads = [()] * len(layers)
    for i in reversed(range(len(layers))):
        if params[i] == ():  # wrongly skips the layers without parameters
            continue
        grads[i], dy = layers[i].backward(params[i], residuals[i], dy)
    return tuple(grads), dy
"""
    result = grade(tmp_path, "serial_backward", source)
    first = result.check("values_dparams").feedback.splitlines()[0]
    assert "the first whose gradient disagrees is layer 0, dense(3); layers 1..2 agree" \
        in first, first


def test_a_networks_dx_alone_wrong_is_named(tmp_path):
    source = """
def serial_backward(layers, params, residuals, dy):
    grads = [None] * len(layers)
    for i in reversed(range(len(layers))):
        grads[i], dx = layers[i].backward(params[i], residuals[i], dy)
        if i > 0:
            dy = dx
    return tuple(grads), dy  # the last dx is not handed out
"""
    result = grade(tmp_path, "serial_backward", source)
    assert result.check("values_dparams").passed
    assert "every layer's parameter gradient agrees, but dx" in result.check(
        "values_dx").feedback


def test_untouched_exercises_score_zero_and_say_not_done_yet():
    impl = grading.Impl("exercises")
    results = grading.evaluate_all(impl)
    assert len(results) == len(grading.EXERCISES) >= 14
    for r in results:
        assert r.points == 0 and r.status == "not done yet", (r.name, r.status)
        assert r.feedback.startswith("not done yet") and "Traceback" not in r.feedback


def test_a_stub_left_after_some_code_is_still_not_done_yet(tmp_path):
    source = """
def tanh_backward(y, dy):
    local = 1 - y * y
    raise NotImplementedError("not done yet: tanh_backward")
"""
    result = grade(tmp_path, "tanh_backward", source)
    assert result.status == "not done yet" and result.points == 0


@pytest.mark.parametrize("source, what", [
    ("def sigmoid_backward(y, dy):\n"
     "    return jax.vjp(lambda t: t, y)[1](dy)[0]\n", "jax.vjp"),
    ("from jax import grad as g\n\n\ndef sigmoid_backward(y, dy):\n"
     "    return dy * g(lambda t: t * t)(1.0)\n", "jax.grad"),
    ("def _helper(f, x):\n    return jax.jacrev(f)(x)\n\n\n"
     "def sigmoid_backward(y, dy):\n    return dy * _helper(jnp.sum, y)\n", "jax.jacrev"),
    ("import jaxbp\n\n\ndef sigmoid_backward(y, dy):\n"
     "    return jaxbp.sigmoid().backward((), None, dy)[1]\n", "jaxbp"),
], ids=["vjp", "from-import", "helper", "jaxbp"])
def test_autodiff_and_jaxbp_in_the_source_are_refused(tmp_path, source, what):
    result = grade(tmp_path, "sigmoid_backward", source)
    assert result.status == "refused" and result.points == 0
    assert f"uses {what}" in result.feedback and "by hand" in result.feedback or \
        "jaxbp's layers" in result.feedback


def test_autodiff_reached_at_run_time_is_refused(tmp_path):
    source = """
def sigmoid_backward(y, dy):
    name = "v" + "jp"
    f = getattr(jax, name)
    return f(lambda t: t * 1.0, y)[1](dy)[0]
"""
    scanned = grade(tmp_path, "sigmoid_backward", source)  # getattr with a computed name
    assert scanned.status == "refused" and "uses getattr()" in scanned.feedback
    result = grade(tmp_path, "sigmoid_backward", source, scan=False)  # the run-time lock
    assert result.status == "refused"
    assert "called jax.vjp at run time" in result.feedback
    import jax
    assert jax.vjp.__module__.startswith("jax")  # this process's jax is untouched


def test_an_infinite_loop_is_stopped_and_reported(tmp_path):
    source = """
def relu_backward(x, dy):
    n = 0
    while True:
        n += 1
"""
    result = grade(tmp_path, "relu_backward", source, time_limit=0.5)
    assert result.status == "timeout" and result.points == 0
    assert result.feedback.startswith("stopped after 0.5 s (an infinite loop?)")
    assert "not JAX's compilation" in result.feedback


def test_an_exception_in_the_learners_code_shows_the_learners_frame(tmp_path):
    source = """
def relu_backward(x, dy):
    mask = x > 0
    return dy * mask.no_such_thing
"""
    result = grade(tmp_path, "relu_backward", source)
    feedback = result.check("values").feedback
    assert "your code raised AttributeError" in feedback
    assert "(at 01_activations.py, line 9, in relu_backward: return dy * mask.no_such_thing)" \
        in feedback
    assert "Traceback" not in feedback and "jaxbp/" not in feedback


def test_code_that_only_jit_rejects_loses_only_the_jit_point(tmp_path):
    source = """
def sigmoid_backward(y, dy):
    if float(jnp.sum(y)) > -1.0:  # a Python branch on a value: fine eagerly, not under jit
        return dy * y * (1 - y)
    return dy
"""
    result = grade(tmp_path, "sigmoid_backward", source)
    assert result.check("values").passed and result.check("shapes").passed
    jit = result.check("jit")
    assert jit.status == "failed" and jit.feedback.startswith("under jax.jit: your code raised")
    assert "use jnp.where" in jit.feedback


@pytest.mark.parametrize("source, text", [
    (dense().replace("return dx, dw, db", "return dx, dw"),
     "returned 2 values; expected 3: (dx, dw, db)"),
    (dense().replace("return dx, dw, db", "pass"), "returned None"),
    ("def dense_backward(x, w, dy)\n    return 1\n", "does not parse"),
    ("raise RuntimeError('broken at import')\n", "does not import: RuntimeError"),
    ("def not_the_name(x, w, dy):\n    return 1\n", "has no function dense_backward()"),
], ids=["two-values", "none", "syntax", "import", "missing"])
def test_broken_answers_are_explained(tmp_path, source, text):
    result = grade(tmp_path, "dense_backward", source)
    assert result.points == 0
    assert text in result.feedback, result.feedback
    assert "Traceback" not in result.feedback


def test_an_sgd_that_updates_its_input_in_place_loses_the_values_points(tmp_path):
    source = """
def sgd_update(params, grads, lr):
    def step(p, g):
        p -= lr * g  # on numpy arrays: in place; on jax arrays: a new array
        return p
    return jax.tree.map(step, params, grads)
"""
    result = grade(tmp_path, "sgd_update", source)
    values = result.check("values")
    assert values.status == "failed" and values.mistake == "in-place", values.feedback
    assert "after the call, argument 1['b'] was not what it had been" in values.feedback
    assert result.check("shapes").passed and result.check("jit").passed
    assert result.points == 2 and result.status == "partial"


def test_an_sgd_that_assigns_into_params_is_caught_too(tmp_path):
    source = """
def sgd_update(params, grads, lr):
    if isinstance(params, dict):
        for key in params:
            params[key] = params[key] - lr * grads[key]
        return params
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)
"""
    values = grade(tmp_path, "sgd_update", source).check("values")
    assert values.mistake == "in-place" and "argument 1['b']" in values.feedback


def test_the_pool_case_with_ties_is_graded_by_the_first_maximum_rule(tmp_path):
    result = grade(tmp_path, "max_pool2d_backward", POOL_EVERY_TIED)
    first = result.check("values").feedback.splitlines()[0]
    assert "case 1 of 3" in first and "with tied maxima" in first
    assert first.startswith("gradient copied to every tied entry")
