"""The named mistakes of exercises 17-30: each wrong answer is graded like a learner's
copy, fails on the right check with its mistake named, and keeps the points of what it
got right.

Each answer is a solution with one deliberate mistake, written into a temporary
directory laid out as ``exercises/``.
"""

import textwrap

import pytest

from jaxbp import grading

HEADER = "import jax\nimport jax.numpy as jnp\nfrom jax import lax\n\n\n"


def grade(tmp_path, exercise, source):
    module = grading.BY_NAME[exercise].module
    (tmp_path / module).write_text(HEADER + textwrap.dedent(source), encoding="utf-8")
    return grading.evaluate(grading.Impl(tmp_path), exercise, documents=False)


# ------------------------------------------------------------------ wrong answers

GELU = """
def gelu_backward(x, dy):
    c = jnp.sqrt(2.0 / jnp.pi)
    t = jnp.tanh(c * (x + 0.044715 * x ** 3))
    du = {du}
    return {ret}
"""


def gelu(du="c * (1 + 3 * 0.044715 * x * x)",
         ret="dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)"):
    return GELU.format(du=du, ret=ret)


LEAKY = "def leaky_relu_backward(x, dy, negative_slope=0.01):\n    return {}\n"

AVG_POOL = """
def avg_pool2d_backward(x, dy, window):
    wh, ww = (window, window) if isinstance(window, int) else window
    oh, ow = dy.shape[1], dy.shape[2]
    {body}
    return jnp.pad(dx, ((0, 0), (0, x.shape[1] - oh * wh), (0, x.shape[2] - ow * ww), (0, 0)))
"""

AVG_POOL_TO_MAX = """
def avg_pool2d_backward(x, dy, window):
    wh, ww = (window, window) if isinstance(window, int) else window
    batch, h, w, channels = x.shape
    oh, ow = dy.shape[1], dy.shape[2]
    blocks = x[:, :oh * wh, :ow * ww, :].reshape(batch, oh, wh, ow, ww, channels)
    blocks = blocks.transpose(0, 1, 3, 5, 2, 4).reshape(batch, oh, ow, channels, wh * ww)
    winner = jax.nn.one_hot(jnp.argmax(blocks, axis=-1), wh * ww, dtype=dy.dtype)
    routed = (winner * dy[..., None]).reshape(batch, oh, ow, channels, wh, ww)
    dx = routed.transpose(0, 1, 4, 2, 5, 3).reshape(batch, oh * wh, ow * ww, channels)
    return jnp.pad(dx, ((0, 0), (0, h - oh * wh), (0, w - ow * ww), (0, 0)))
"""

LAYER_NORM = """
def layer_norm_backward(x, scale, dy, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    xc = x - mean
    var = jnp.sum(xc * xc, axis=-1, keepdims=True) / ({nvar})
    rstd = lax.rsqrt(var + eps)
    xhat = xc * rstd
    lead = {lead}
    g = dy * scale.reshape((1,) * (x.ndim - 1) + scale.shape)
    dx = {dx}
    return dx, jnp.sum(dy * {xhat}, axis=lead), jnp.sum(dy, axis=lead)
"""


def layer_norm(dx="rstd * (g - jnp.mean(g, axis=-1, keepdims=True) "
                  "- xhat * jnp.mean(g * xhat, axis=-1, keepdims=True))",
               lead="tuple(range(x.ndim - 1))", xhat="xhat", nvar="x.shape[-1]"):
    return LAYER_NORM.format(dx=dx, lead=lead, xhat=xhat, nvar=nvar)


BN_STEPS = """
def batch_norm_backward_steps(x, scale, dy, eps=1e-5):
    axes = {axes}
    n = x.size // x.shape[-1] if axes == tuple(range(x.ndim - 1)) else x.shape[-1]
    mean = jnp.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = jnp.sum(xc * xc, axis=axes, keepdims=True) / ({nvar})
    rstd = (var + eps) ** -0.5
    xhat = xc * rstd
    dbias = jnp.sum(dy, axis=tuple(range(x.ndim - 1)))
    dscale = jnp.sum(dy * {xhat}, axis=tuple(range(x.ndim - 1)))
    dxhat = dy * scale.reshape((1,) * (x.ndim - 1) + scale.shape)
    drstd = jnp.sum(dxhat * xc, axis=axes, keepdims=True)
    dvar = drstd * -0.5 * (var + eps) ** -1.5
    dxc = {dxc}
    dmean = -jnp.sum(dxc, axis=axes, keepdims=True)
    dx = {dx}
    steps = {{"dxhat": dxhat, "drstd": drstd, "dvar": dvar, "dxc": dxc, "dmean": dmean}}
    return dx, dscale, dbias, steps
"""


def bn_steps(axes="tuple(range(x.ndim - 1))", nvar="n", dxc="dxhat * rstd + dvar * 2 * xc / n",
             dx="dxc + dmean / n", xhat="xhat"):
    return BN_STEPS.format(axes=axes, nvar=nvar, dxc=dxc, dx=dx, xhat=xhat)


BN = """
def batch_norm_backward(x, scale, dy, eps=1e-5):
    axes = tuple(range(x.ndim - 1))
    n = x.size // x.shape[-1]
    mean = jnp.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    rstd = lax.rsqrt(jnp.sum(xc * xc, axis=axes, keepdims=True) / ({nvar}) + eps)
    xhat = xc * rstd
    dbias = jnp.sum(dy, axis={sum_axes})
    dscale = jnp.sum(dy * {xhat}, axis={sum_axes})
    per = mean.shape
    s = scale.reshape(per) * rstd / n
    db, ds = jnp.sum(dy, axis=axes, keepdims=True), jnp.sum(dy * xhat, axis=axes, keepdims=True)
    dx = {dx}
    return dx, dscale, dbias
"""


def bn(nvar="n", sum_axes="axes", dx="s * (n * dy - db - xhat * ds)", xhat="xhat"):
    return BN.format(nvar=nvar, sum_axes=sum_axes, dx=dx, xhat=xhat)


DROPOUT = "def dropout_backward(mask, dy, rate):\n    return {}\n"

EMBEDDING = """
def embedding_backward(ids, dy, vocab_size):
    features = dy.shape[-1]
    dw = jnp.zeros((vocab_size, features), dy.dtype)
    return {}
"""

RESIDUAL = """
def residual_backward(branch, params, residuals, dy):
    dparams, dx_branch = branch.backward(params, residuals, dy)
    return dparams, {}
"""

ATTENTION = """
def attention_backward(q, k, v, dy):
    time, depth = q.shape[1], q.shape[2]
    c = 1.0 / jnp.sqrt(jnp.asarray(depth, q.dtype))
    mask = jnp.tril(jnp.ones((time, time), dtype=bool))[None]
    s = c * jnp.einsum("btd,bud->btu", q, k)
    s = {masked}
    e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
    p = e / jnp.sum(e, axis=-1, keepdims=True)
    dv = jnp.einsum("btu,btd->bud", p, dy)
    dp = jnp.einsum("btd,bud->btu", dy, v)
    ds = {ds}
    dq = {dq}
    dk = {dk}
    return dq, dk, dv
"""


def attention(masked="jnp.where(mask, s, jnp.finfo(s.dtype).min)",
              ds="p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))",
              dq='c * jnp.einsum("btu,bud->btd", ds, k)',
              dk='c * jnp.einsum("btu,btd->bud", ds, q)'):
    return ATTENTION.format(masked=masked, ds=ds, dq=dq, dk=dk)


RNN = """
def rnn_backward(x, h, wx, wh, b, dh):
    time = x.shape[1]
    h_prev = jnp.concatenate([jnp.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    back = jnp.zeros_like(h[:, 0])
    das = []
    for t in reversed(range(time)):
        deriv = {deriv}
        da = (dh[:, t] + {carry}) * deriv
        back = da @ {wh}
        das.append(da)
    da = jnp.stack(das[::-1], axis=1)
    w = {window}
    dx = jnp.einsum("bth,ih->bti", da, wx)
    dwx = jnp.einsum("bti,bth->ih", x[:, w:], da[:, w:])
    dwh = jnp.einsum("btg,bth->gh", h_prev[:, w:], da[:, w:])
    return dx, dwx, dwh, jnp.sum(da[:, w:], axis=(0, 1))
"""


def rnn(deriv="1 - h[:, t] ** 2", carry="back", wh="wh.T", window="0"):
    return RNN.format(deriv=deriv, carry=carry, wh=wh, window=window)


RNN_PREACT = ("(lambda a: 1 - a * a)(x[:, t] @ wx + h_prev[:, t] @ wh + b[None, :])")

LSTM = """
def lstm_cell_backward(x, h_prev, c_prev, wx, wh, b, dh, dc):
    H = h_prev.shape[1]
    z = x @ wx + h_prev @ wh + b[None, :]
    {gates}
    i, f, o, g = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo), jnp.tanh(zg)
    c = f * c_prev + i * g
    tc = jnp.tanh(c)
    dct = {dct}
    di, df, dg, do = dct * g, dct * c_prev, dct * i, dh * tc
    parts = {{"i": di * i * (1 - i), "f": df * f * (1 - f), "g": dg * (1 - g * g),
             "o": do * o * (1 - o)}}
    dz = jnp.concatenate([parts[n] for n in {order}], axis=1)
    return dz @ wx.T, dz @ wh.T, dct * f, x.T @ dz, h_prev.T @ dz, jnp.sum(dz, axis=0)
"""

LSTM_IFGO = "zi, zf, zg, zo = (z[:, j * H:(j + 1) * H] for j in range(4))"
LSTM_IFOG = "zi, zf, zo, zg = (z[:, j * H:(j + 1) * H] for j in range(4))"


def lstm(gates=LSTM_IFGO, order='"ifgo"', dct="dc + dh * o * (1 - tc * tc)"):
    return LSTM.format(gates=gates, order=order, dct=dct)


SEQ_XENT = """
def sequence_cross_entropy_backward(logits, labels):
    batch, time, classes = logits.shape
    p = jax.nn.softmax(logits, axis=-1)
    y = jax.nn.one_hot(labels, classes, dtype=logits.dtype)
    return {}
"""

ADAM = """
def adam_update(params, grads, m, v, step, lr, b1=0.9, b2=0.999, eps=1e-8):
    new_m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    new_v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    use_m, use_v = {use}
    c1, c2 = {corrections}

    def update(p, m, v):
        return p - lr * (m / c1) / {denominator}
    return jax.tree.map(update, params, use_m, use_v), {returned}
"""


def adam(use="new_m, new_v", corrections="1 - b1 ** step, 1 - b2 ** step",
         denominator="(jnp.sqrt(v / c2) + eps)", returned="new_m, new_v"):
    return ADAM.format(use=use, corrections=corrections, denominator=denominator,
                       returned=returned)


# (exercise, wrong source, the check that must fail, the mistake it must name)
MISTAKES = [
    ("gelu_backward", gelu(ret="dy * (0.5 * (1 + lax.erf(x / jnp.sqrt(2.0))) + x * "
                               "jnp.exp(-x * x / 2) / jnp.sqrt(2 * jnp.pi))"),
     "values", "erf-form"),
    ("gelu_backward", gelu(du="c * (1 + 0.044715 * x * x)"), "values", "inner-derivative"),
    ("gelu_backward", gelu(du="c"), "values", "inner-derivative"),
    ("gelu_backward", gelu(ret="dy * 0.5 * (1 + t)"), "values", "product-rule"),
    ("gelu_backward", gelu(ret="dy"), "values", "missing-derivative"),
    ("leaky_relu_backward", LEAKY.format("jnp.where(x >= 0, negative_slope * dy, dy)"),
     "values", "slope-wrong-side"),
    ("leaky_relu_backward", LEAKY.format("jnp.where(x >= 0, dy, 0.0)"), "values",
     "missing-slope"),
    ("leaky_relu_backward", LEAKY.format("jnp.where(dy >= 0, dy, negative_slope * dy)"),
     "values", "mask-from-dy"),
    ("leaky_relu_backward", LEAKY.format("dy"), "values", "missing-derivative"),
    ("avg_pool2d_backward", AVG_POOL_TO_MAX, "values", "routed"),
    ("avg_pool2d_backward", AVG_POOL.format(
        body="dx = jnp.zeros((dy.shape[0], oh * wh, ow * ww, dy.shape[3]), dy.dtype)"
             ".at[:, ::wh, ::ww, :].set(dy)"), "values", "routed"),
    ("avg_pool2d_backward", AVG_POOL.format(
        body="dx = jnp.repeat(jnp.repeat(dy, wh, axis=1), ww, axis=2)"), "values",
     "not-averaged"),
    ("layer_norm_backward", layer_norm(dx="rstd * (g - xhat * jnp.mean(g * xhat, axis=-1, "
                                          "keepdims=True))"),
     "values_dx", "no-mean-gradient"),
    ("layer_norm_backward", layer_norm(dx="rstd * (g - jnp.mean(g, axis=-1, keepdims=True))"),
     "values_dx", "no-variance-gradient"),
    ("layer_norm_backward", layer_norm(dx="rstd * g"), "values_dx", "constant-statistics"),
    ("layer_norm_backward", layer_norm(xhat="x"), "values_dscale", "x-for-xhat"),
    ("layer_norm_backward", layer_norm(lead="(0,)"), "shapes", "wrong-axes"),
    ("layer_norm_backward", layer_norm(nvar="x.shape[-1] - 1"), "values_dx",
     "unbiased-variance"),
    ("batch_norm_backward_steps", bn_steps(dx="dxc"), "values_dx", "no-mean-gradient"),
    ("batch_norm_backward_steps", bn_steps(dxc="dxhat * rstd"), "values_dx",
     "no-variance-gradient"),
    ("batch_norm_backward_steps", bn_steps(dxc="dxhat * rstd"), "values_steps",
     "no-variance-gradient"),
    ("batch_norm_backward_steps", bn_steps(nvar="n - 1", dxc="dxhat * rstd + dvar * 2 * xc "
                                                             "/ (n - 1)"),
     "values_dx", "unbiased-variance"),
    ("batch_norm_backward_steps", bn_steps(axes="(x.ndim - 1,)"), "values_dx", "wrong-axes"),
    ("batch_norm_backward_steps", bn_steps(dxc="dxhat * rstd", dx="dxc"), "values_dx",
     "constant-statistics"),
    ("batch_norm_backward_steps", bn_steps(xhat="x"), "values_dscale", "x-for-xhat"),
    ("batch_norm_backward", bn(dx="s * (n * dy - xhat * ds)"), "values_dx",
     "no-mean-gradient"),
    ("batch_norm_backward", bn(dx="s * (n * dy - db)"), "values_dx", "no-variance-gradient"),
    ("batch_norm_backward", bn(nvar="n - 1"), "values_dx", "unbiased-variance"),
    ("batch_norm_backward", bn(sum_axes="x.ndim - 1"), "shapes", "wrong-axes"),
    ("batch_norm_backward", bn(dx="scale.reshape(per) * rstd * dy"), "values_dx",
     "constant-statistics"),
    ("batch_norm_backward", bn(xhat="x"), "values_dscale", "x-for-xhat"),
    ("dropout_backward", DROPOUT.format("jnp.where(mask, dy, 0.0)"), "values",
     "missing-scale"),
    ("dropout_backward", DROPOUT.format("jnp.where(mask, dy * (1 - rate), 0.0)"), "values",
     "scale-inverted"),
    ("dropout_backward", DROPOUT.format("jnp.where(mask, 0.0, dy / (1 - rate))"), "values",
     "inverted-mask"),
    ("dropout_backward", DROPOUT.format("dy / (1 - rate)"), "values", "no-mask"),
    ("embedding_backward", EMBEDDING.format(
        "dw.at[ids.reshape(-1)].set(dy.reshape(-1, features))"), "values", "assignment"),
    ("embedding_backward", EMBEDDING.format(
        "dw.at[ids.reshape(-1)].add(dy.reshape(-1, features)) / jnp.maximum(jnp.zeros("
        "vocab_size, dy.dtype).at[ids.reshape(-1)].add(1.0), 1.0)[:, None]"), "values",
     "mean-of-repeats"),
    ("residual_backward", RESIDUAL.format("dx_branch"), "values_dx", "identity-forgotten"),
    ("residual_backward", RESIDUAL.format("dy"), "values_dx", "branch-forgotten"),
    ("attention_backward", attention(ds="p * (1 - p) * dp"), "values_dq",
     "softmax-elementwise"),
    ("attention_backward", attention(masked="s"), "values_dq", "mask-gets-gradient"),
    ("attention_backward", attention(masked="jnp.where(mask, s, 0.0)"), "values_dq",
     "mask-gets-gradient"),
    ("attention_backward", attention(dq='jnp.einsum("btu,bud->btd", ds, k)',
                                     dk='jnp.einsum("btu,btd->bud", ds, q)'),
     "values_dq", "scale-forgotten"),
    ("attention_backward", attention(dq='c * jnp.einsum("but,bud->btd", ds, k)',
                                     dk='c * jnp.einsum("but,btd->bud", ds, q)'),
     "values_dq", "transposed-scores"),
    ("rnn_backward", rnn(carry="0.0"), "values_dx", "not-carried"),
    ("rnn_backward", rnn(deriv=RNN_PREACT), "values_dx", "tanh-prime-preactivation"),
    ("rnn_backward", rnn(window="time - 1"), "values_dwx", "last-step-only"),
    ("rnn_backward", rnn(wh="wh"), "values_dx", "wh-not-transposed"),
    ("lstm_cell_backward", lstm(gates=LSTM_IFOG, order='"ifog"'), "values_dx", "gate-order"),
    ("lstm_cell_backward", lstm(dct="dc"), "values_dx", "cell-path-missing"),
    ("lstm_cell_backward", lstm(dct="dh * o * (1 - tc * tc)"), "values_dx",
     "incoming-dc-ignored"),
    ("lstm_cell_backward", lstm(dct="dc + dh * o"), "values_dx", "missing-derivative"),
    ("sequence_cross_entropy_backward", SEQ_XENT.format("(p - y) / batch"), "values",
     "mean-over-batch-only"),
    ("sequence_cross_entropy_backward", SEQ_XENT.format("(p - y) / time"), "values",
     "mean-over-time-only"),
    ("sequence_cross_entropy_backward", SEQ_XENT.format("p - y"), "values", "no-mean"),
    ("sequence_cross_entropy_backward", SEQ_XENT.format("(logits - y) / (batch * time)"),
     "values", "logits-for-probs"),
    ("adam_update", adam(corrections="1.0, 1.0"), "values_new_params", "no-bias-correction"),
    ("adam_update", adam(denominator="jnp.sqrt(v / c2 + eps)"), "values_new_params",
     "eps-inside-sqrt"),
    ("adam_update", adam(use="m, v"), "values_new_params", "moments-not-updated"),
    ("adam_update", adam(returned="m, v"), "values_new_m", "moments-not-updated"),
    ("adam_update", adam(corrections="1 - b1 ** (step + 1), 1 - b2 ** (step + 1)"),
     "values_new_params", "step-off-by-one"),
]


@pytest.mark.parametrize("exercise, source, check, mistake", MISTAKES,
                         ids=[f"{e}-{m}-{i}" for i, (e, _, _, m) in enumerate(MISTAKES)])
def test_each_named_mistake_is_diagnosed_and_scores_partially(tmp_path, exercise, source,
                                                              check, mistake):
    result = grade(tmp_path, exercise, source)
    failed = result.check(check)
    assert failed.status == "failed", (check, failed)
    assert failed.mistake == mistake, failed.feedback
    assert failed.feedback.split(":")[0] in failed.feedback  # a sentence, then details
    # What the answer got right still counts: a partial score, never full marks.
    assert 0 < result.points < result.max_points, [(c.name, c.points) for c in result.checks]
    assert result.status == "partial"


# Mistakes that give outputs of the wrong shape: every check fails (0 points).
SHAPE_MISTAKES = [
    ("avg_pool2d_backward", AVG_POOL.format(
        body="dx = jnp.repeat(jnp.repeat(dy / (wh * ww), wh, axis=1), ww, axis=2)").replace(
        "return jnp.pad(dx, ((0, 0), (0, x.shape[1] - oh * wh), (0, x.shape[2] - ow * ww), "
        "(0, 0)))", "return dx"), "shapes", "crop"),
]


@pytest.mark.parametrize("exercise, source, check, mistake", SHAPE_MISTAKES,
                         ids=[f"{e}-{m}" for e, _, _, m in SHAPE_MISTAKES])
def test_a_shape_mistake_is_named_and_fails_every_check(tmp_path, exercise, source, check,
                                                        mistake):
    result = grade(tmp_path, exercise, source)
    assert result.check(check).mistake == mistake, result.check(check).feedback
    assert result.points == 0 and result.status == "failed"


def test_every_named_mistake_of_the_new_exercises_has_a_test():
    """Each mistake key the specs of exercises 17-30 can name appears in MISTAKES."""
    tested = {(e, m) for e, _, _, m in MISTAKES + SHAPE_MISTAKES}
    beyond = [e for e in grading.EXERCISES if e.number >= 17]
    assert [e.name for e in beyond][:1] == ["gelu_backward"] and len(beyond) >= 14
    for exercise in beyond:
        named = set()
        for case in exercise.cases():
            if case.candidates is None:
                continue
            for pairs in case.candidates().values():
                named |= {m.key for m, _ in pairs}
        assert named, exercise.name
        untested = {m for m in named if (exercise.name, m) not in tested}
        assert not untested, (exercise.name, untested)


# ------------------------------------------------------------------ max pooling's ties

MAX_POOL_TIES = """
def max_pool2d_backward(x, dy, window):
    wh, ww = (window, window) if isinstance(window, int) else window
    oh, ow = dy.shape[1], dy.shape[2]
    xc = x[:, :oh * wh, :ow * ww, :]
    y = lax.reduce_window(xc, -jnp.inf, lax.max, (1, wh, ww, 1), (1, wh, ww, 1), "VALID")
    up = lambda a: jnp.repeat(jnp.repeat(a, wh, axis=1), ww, axis=2)
    tied = (xc == up(y)).astype(dy.dtype)
    {route}
    return jnp.pad(dx, ((0, 0), (0, x.shape[1] - oh * wh), (0, x.shape[2] - ow * ww), (0, 0)))
"""

LAST_MAX = """
    b, h, w, c = xc.shape
    blocks = tied.reshape(b, oh, wh, ow, ww, c).transpose(0, 1, 3, 5, 2, 4)
    blocks = blocks.reshape(b, oh, ow, c, wh * ww)[..., ::-1]
    last = jax.nn.one_hot(wh * ww - 1 - jnp.argmax(blocks, axis=-1), wh * ww, dtype=dy.dtype)
    dx = (last * dy[..., None]).reshape(b, oh, ow, c, wh, ww).transpose(0, 1, 4, 2, 5, 3)
    dx = dx.reshape(b, h, w, c)"""


@pytest.mark.parametrize("route, mistake", [
    ("dx = tied * up(dy)", "every-tied"),
    ("dx = tied * up(dy / lax.reduce_window(tied, 0.0, lax.add, (1, wh, ww, 1), "
     "(1, wh, ww, 1), 'VALID'))", "split-ties"),
    (LAST_MAX, "last-tie"),
])
def test_max_pool_ties_are_graded_by_the_documented_rule(tmp_path, route, mistake):
    """Right on data without ties, wrong on the case with ties: values fail there, with
    the tie mistake named; shapes and the document's numbers keep their points."""
    result = grade(tmp_path, "max_pool2d_backward", MAX_POOL_TIES.format(route=route))
    values = result.check("values")
    assert values.status == "failed" and values.mistake == mistake, values.feedback
    assert "with tied maxima" in values.feedback
    assert result.check("shapes").passed
    assert 0 < result.points < result.max_points


# ------------------------------------------------------------------ a learner's copy

RNN_BY_HAND = """
    time = x.shape[1]
    carried = jnp.zeros_like(h[:, 0])
    dx, dwx, dwh, db = [None] * time, jnp.zeros_like(wx), jnp.zeros_like(wh), 0.0
    for t in reversed(range(time)):
        da = (dh[:, t] + carried) * (1 - h[:, t] ** 2)
        h_prev = h[:, t - 1] if t > 0 else jnp.zeros_like(h[:, 0])
        dx[t] = da @ wx.T
        dwx = dwx + x[:, t].T @ da
        dwh = dwh + h_prev.T @ da
        db = db + jnp.sum(da, axis=0)
        carried = da @ wh.T
    return jnp.stack(dx, axis=1), dwx, dwh, db
"""


@pytest.mark.slow
def test_a_copy_with_one_new_exercise_solved_by_hand_passes_it_and_not_the_others(tmp_path):
    """The README's path: copy exercises/, write rnn_backward (a loop, not the
    solution's scan), grade the new exercises: that one passes with full marks, the
    others say "not done yet" and score 0."""
    import json
    import shutil
    import subprocess
    import sys

    from jaxbp.grading import generate

    root = generate.project_root()
    mine = tmp_path / "my_exercises"
    shutil.copytree(root / "exercises", mine)
    path = mine / "14_recurrent.py"
    text = path.read_text(encoding="utf-8")
    stub = '    raise NotImplementedError("not done yet: rnn_backward")\n'
    assert stub in text
    body = textwrap.indent(textwrap.dedent(RNN_BY_HAND).strip("\n") + "\n", "    ")
    path.write_text(text.replace(stub, body), encoding="utf-8")
    beyond = [str(e.number) for e in grading.EXERCISES if e.number >= 17]
    # one worker: a second one would import JAX for the one exercise that runs
    proc = subprocess.run([sys.executable, "-m", "jaxbp", "grade", *beyond, "--impl",
                           str(mine), "--workers", "1", "--json", str(tmp_path / "g.json")],
                          cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    report = {e["name"]: e for e in
              json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))["exercises"]}
    assert report["rnn_backward"]["status"] == "passed", proc.stdout + proc.stderr
    assert report["rnn_backward"]["points"] == report["rnn_backward"]["max_points"] == 6
    others = [e for name, e in report.items() if name != "rnn_backward"]
    assert len(others) == len(beyond) - 1
    assert all(e["status"] == "not done yet" and e["points"] == 0 for e in others)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
