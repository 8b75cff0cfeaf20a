"""Sequence layers: causal self-attention, the RNN and the LSTM, the position embedding
and the transformer block.

Each goes through :func:`helpers.assert_layer_matches_autodiff` (float64, ``jax.vjp``
eager and jitted, central differences) on a few shapes including batch 1 and time 1,
and against PyTorch in float64 where torch is installed (``nn.MultiheadAttention`` with
a causal mask, ``nn.RNN`` and ``nn.LSTM`` with their weights mapped). Further tests pin
the causal mask (a future input never changes a past output, in value or gradient), the
masked softmax's stability (huge, infinite and NaN masked logits give no NaN in either
pass, nor in ``jax.grad``), and that backpropagation through time is a ``lax.scan``,
not a Python loop over time steps.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import (PNG_SIGNATURE, assert_layer_matches_autodiff, assert_layer_stays_float32,
                     forward_backward, init_shapes, numpy_init)
from jaxbp.layers.attention import causal_mask, masked_softmax, masked_softmax_backward


# ------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", ["causal_self_attention", "rnn", "lstm",
                                  "position_embedding", "transformer_block"])
def test_sequence_layers_are_exported(name):
    assert callable(getattr(jaxbp, name)) and name in jaxbp.__all__


@pytest.mark.parametrize("layer, shape", [
    (jaxbp.causal_self_attention(2), (3, 4)), (jaxbp.lstm(2), (3, 2)),
    (jaxbp.position_embedding(4), (3, 2))], ids=["attention", "lstm", "position"])
def test_sequence_layers_plug_into_jax_grad(x64, layer, shape):
    """jaxbp.differentiable: jax.grad through the layer runs its hand-written backward
    (its residuals are valid custom_vjp residuals)."""
    rng = np.random.default_rng(7)
    params, _ = numpy_init(layer, shape, rng)
    x = rng.normal(size=(2, *shape))
    f = jaxbp.differentiable(layer)

    @jax.jit  # both gradients in one compiled program
    def both(params, x):
        grads = jax.grad(lambda p, x_: jnp.sum(jnp.sin(f(p, x_))), argnums=(0, 1))(params, x)
        y, residuals = layer.forward(params, x)
        return grads, layer.backward(params, residuals, jnp.cos(y))

    grads, want = both(params, x)
    assert jax.tree.structure(grads) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-12)


# ------------------------------------------------------------------------- attention


@pytest.mark.parametrize("heads, shape, batch, eager", [
    (1, (1, 3), 1, True),    # time 1: each query sees only itself
    (2, (5, 4), 2, False),
    (3, (4, 6), 1, True),
])
def test_attention_matches_autodiff(heads, shape, batch, eager):
    assert_layer_matches_autodiff(jaxbp.causal_self_attention(heads), shape, batch=batch,
                                  eager=eager)


def test_attention_stays_float32():
    assert_layer_stays_float32(jaxbp.causal_self_attention(2), (3, 4))


def test_attention_is_causal_in_value_and_gradient(x64):
    """Changing the input at time s leaves every output before s unchanged, and the
    gradient of an output at time t reaches no input after t (exactly zero)."""
    layer = jaxbp.causal_self_attention(2)
    rng = np.random.default_rng(1)
    params, _ = numpy_init(layer, (6, 4), rng)
    x = rng.normal(size=(2, 6, 4))
    x2 = x.copy()
    x2[:, 4] = 100.0
    dy = np.zeros((2, 6, 4))
    dy[:, 2] = 1.0
    # One compiled program runs both inputs: the outputs before time 4 are computed by
    # the same code, so they must agree exactly.
    run = forward_backward(layer)
    y, (_, dx) = run(params, x, dy)
    y2, _ = run(params, x2, dy)
    y, y2, dx = np.asarray(y), np.asarray(y2), np.asarray(dx)
    np.testing.assert_array_equal(y2[:, :4], y[:, :4])
    assert not np.allclose(y2[:, 4:], y[:, 4:])
    assert np.all(dx[:, 3:] == 0.0)
    assert np.all(np.abs(dx[:, :3]) > 0)


def test_attention_weights_are_zero_above_the_diagonal_and_rows_sum_to_one(x64):
    layer = jaxbp.causal_self_attention(2)
    rng = np.random.default_rng(2)
    params, _ = numpy_init(layer, (5, 4), rng)
    weights = jax.jit(lambda p_, x_: layer.forward(p_, x_)[1].p)
    p = np.asarray(weights(params, rng.normal(size=(3, 5, 4))))  # (batch, heads, time, time)
    assert p.shape == (3, 2, 5, 5)
    assert np.all(p[..., ~np.tril(np.ones((5, 5), bool))] == 0.0)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)


def test_masked_logits_never_give_nan():
    """Masked scores that are huge, +inf or NaN (a naive ``s - 1e9`` mask or a mask
    added as ``-inf`` would turn them into NaN) give finite weights, exactly 0 where
    masked, and a finite gradient that is exactly 0 there: by hand and by jax.grad."""
    # Run op by op, as written (the NaN claims are about these operations themselves);
    # the inputs go to the device with device_put, which compiles nothing.
    mask = np.asarray(causal_mask(4))[None]
    device_mask = jax.device_put(mask)
    scores = np.where(mask, [[0.5, -1.0, 2.0, 0.1]], 0.0).astype(np.float32)
    scores = np.broadcast_to(scores, (3, 4, 4)).copy()
    scores[0][~mask[0]] = 1e38
    scores[1][~mask[0]] = np.inf
    scores[2][~mask[0]] = np.nan
    scores = jax.device_put(scores)
    p = masked_softmax(scores, device_mask)
    assert np.all(np.isfinite(p))
    assert np.all(np.asarray(p)[:, ~mask[0]] == 0.0)
    np.testing.assert_allclose(np.asarray(p).sum(-1), 1.0, rtol=1e-6)
    dp = jax.device_put(np.random.default_rng(0).normal(size=(3, 4, 4)).astype(np.float32))
    ds = masked_softmax_backward(p, dp)
    assert np.all(np.isfinite(ds)) and np.all(np.asarray(ds)[:, ~mask[0]] == 0.0)
    auto = jax.grad(lambda s: jnp.sum(masked_softmax(s, device_mask) * dp))(scores)
    assert np.all(np.isfinite(auto))
    np.testing.assert_allclose(ds, auto, rtol=1e-5, atol=1e-7)


def test_attention_is_stable_for_large_scores():
    """Scores of order 1e5 (exp overflows float32 beyond 88): float32 forward and
    backward stay finite and match float64."""
    layer = jaxbp.causal_self_attention(2)
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        params, _ = numpy_init(layer, (5, 4), rng)
        params = jax.tree.map(lambda a: 30.0 * a, params)
        x = 30.0 * rng.normal(size=(2, 5, 4))
        dy = rng.normal(size=(2, 5, 4))

        @jax.jit  # both precisions in one compiled program
        def both(params, x, dy):
            out = []
            for dt in (jnp.float32, jnp.float64):
                p = jax.tree.map(lambda a: a.astype(dt), params)
                y, residuals = layer.forward(p, x.astype(dt))
                out.append((y, layer.backward(p, residuals, dy.astype(dt))))
            return out

        out32, out64 = both(params, x, dy)
        assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(out32))
        assert float(np.max(np.abs(out64[1][0]["qkv"]["w"]))) > 0
        for a, b in zip(jax.tree.leaves(out32), jax.tree.leaves(out64)):
            a, b = np.asarray(a), np.asarray(b)
            assert np.all(np.isfinite(a))
            scale = max(1.0, float(np.max(np.abs(b))))
            # Scores near 1e5 in float32 carry absolute errors of order 1e-2, which
            # moves a softmax weight by ~1e-2: a loose bound, but far below NaN or inf.
            assert float(np.max(np.abs(np.asarray(a, np.float64) - b))) <= 0.1 * scale


def test_attention_rejects_features_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"divisible by heads = 3.*\(4, 5\)"):
        jaxbp.causal_self_attention(3).init(jax.random.key(0), (4, 5))
    with pytest.raises(ValueError, match="heads"):
        jaxbp.causal_self_attention(0)
    with pytest.raises(TypeError, match="heads"):
        jaxbp.causal_self_attention(2.0)


def test_attention_rejects_wrong_input_rank_and_width():
    layer = jaxbp.causal_self_attention(2)
    params, _ = layer.init(jax.random.key(0), (3, 4))
    # Eager, on JAX arrays (device_put: no transfer program compiled).
    with pytest.raises(ValueError, match=r"rank 3.*\(2, 4\)"):
        layer.forward(params, jax.device_put(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"\(6, 18\).*\(2, 3, 6\).*\(4, 12\)"):
        layer.forward(params, jax.device_put(np.zeros((2, 3, 6), np.float32)))
    with pytest.raises(ValueError, match="input_shape"):
        layer.init(jax.random.key(0), (4,))


def test_attention_matches_pytorch_multihead_attention(x64):
    torch = pytest.importorskip("torch")
    heads, time, features = 2, 5, 6
    layer = jaxbp.causal_self_attention(heads)
    rng = np.random.default_rng(4)
    params, _ = numpy_init(layer, (time, features), rng)
    x = rng.normal(size=(3, time, features))
    dy = rng.normal(size=(3, time, features))
    y, (grads, dx) = forward_backward(layer)(params, x, dy)

    mha = torch.nn.MultiheadAttention(features, heads, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():  # PyTorch stores (out, in) weights: ours transposed
        mha.in_proj_weight.copy_(torch.tensor(np.asarray(params["qkv"]["w"]).T))
        mha.in_proj_bias.copy_(torch.tensor(np.asarray(params["qkv"]["b"])))
        mha.out_proj.weight.copy_(torch.tensor(np.asarray(params["proj"]["w"]).T))
        mha.out_proj.bias.copy_(torch.tensor(np.asarray(params["proj"]["b"])))
    xt = torch.tensor(x, requires_grad=True)
    future = torch.triu(torch.ones(time, time, dtype=torch.bool), diagonal=1)
    yt, _ = mha(xt, xt, xt, attn_mask=future, need_weights=False)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(grads["qkv"]["w"], mha.in_proj_weight.grad.numpy().T,
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(grads["qkv"]["b"], mha.in_proj_bias.grad.numpy(),
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(grads["proj"]["w"], mha.out_proj.weight.grad.numpy().T,
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(grads["proj"]["b"], mha.out_proj.bias.grad.numpy(),
                               rtol=1e-11, atol=1e-12)


# ------------------------------------------------------------------------- recurrent


@pytest.mark.parametrize("make", [jaxbp.rnn, jaxbp.lstm], ids=["rnn", "lstm"])
@pytest.mark.parametrize("features, shape, batch, eager", [
    (1, (1, 1), 1, True),    # one step, one unit, batch 1
    (3, (5, 2), 2, False),
    (4, (3, 5), 1, True),
])
def test_recurrent_matches_autodiff(make, features, shape, batch, eager):
    assert_layer_matches_autodiff(make(features), shape, batch=batch, eager=eager)


@pytest.mark.parametrize("make", [jaxbp.rnn, jaxbp.lstm], ids=["rnn", "lstm"])
def test_recurrent_stays_float32(make):
    assert_layer_stays_float32(make(3), (4, 2))


@pytest.mark.parametrize("make, gates", [(jaxbp.rnn, 1), (jaxbp.lstm, 4)],
                         ids=["rnn", "lstm"])
def test_recurrent_param_layout(make, gates):
    params, out = init_shapes(make(5), (7, 3))  # init traced, not compiled
    assert out == (7, 5)
    assert {k: v.shape for k, v in params.items()} == {
        "wx": (3, gates * 5), "wh": (5, gates * 5), "b": (gates * 5,)}


def _jaxpr_size(layer, time):
    params, _ = init_shapes(layer, (time, 2))  # shapes are all make_jaxpr needs
    x = jax.ShapeDtypeStruct((2, time, 2), jnp.float32)

    def step(params, x):
        y, residuals = layer.forward(params, x)
        return layer.backward(params, residuals, jnp.ones_like(y))

    jaxpr = jax.make_jaxpr(step)(params, x)
    return len(jaxpr.jaxpr.eqns), str(jaxpr)


@pytest.mark.parametrize("make", [jaxbp.rnn, jaxbp.lstm], ids=["rnn", "lstm"])
def test_backpropagation_through_time_is_a_scan_not_a_python_loop(make):
    """The traced program of forward + backward has the same size for 2 and for 50
    time steps, and holds two scans (forward and the reverse scan of BPTT)."""
    small, text = _jaxpr_size(make(3), 2)
    large, _ = _jaxpr_size(make(3), 50)
    assert small == large
    assert text.count("scan[") == 2 and "reverse=True" in text


@pytest.mark.parametrize("make, torch_name", [(jaxbp.rnn, "RNN"), (jaxbp.lstm, "LSTM")],
                         ids=["rnn", "lstm"])
def test_recurrent_matches_pytorch(x64, make, torch_name):
    torch = pytest.importorskip("torch")
    features, time, n_in = 4, 6, 3
    layer = make(features)
    rng = np.random.default_rng(5)
    params, _ = numpy_init(layer, (time, n_in), rng)
    x = rng.normal(size=(2, time, n_in))
    dy = rng.normal(size=(2, time, features))
    y, (grads, dx) = forward_backward(layer)(params, x, dy)

    module = getattr(torch.nn, torch_name)(n_in, features, batch_first=True,
                                           dtype=torch.float64)
    b = np.asarray(params["b"])
    split = rng.uniform(size=b.shape)  # PyTorch's two biases: any split of our one
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(np.asarray(params["wx"]).T))
        module.weight_hh_l0.copy_(torch.tensor(np.asarray(params["wh"]).T))
        module.bias_ih_l0.copy_(torch.tensor(split * b))
        module.bias_hh_l0.copy_(torch.tensor((1 - split) * b))
    xt = torch.tensor(x, requires_grad=True)
    yt, _ = module(xt)
    yt.backward(torch.tensor(dy))
    tol = {"rtol": 1e-11, "atol": 1e-12}
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(grads["wx"], module.weight_ih_l0.grad.numpy().T, **tol)
    np.testing.assert_allclose(grads["wh"], module.weight_hh_l0.grad.numpy().T, **tol)
    np.testing.assert_allclose(grads["b"], module.bias_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(grads["b"], module.bias_hh_l0.grad.numpy(), **tol)


def test_recurrent_rejects_bad_input():
    layer = jaxbp.lstm(4)
    params, _ = layer.init(jax.random.key(0), (3, 2))
    # Eager, on JAX arrays (device_put: no transfer program compiled).
    with pytest.raises(ValueError, match=r"rank 3.*\(2, 3\)"):
        layer.forward(params, jax.device_put(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"\(5, 16\).*\(2, 3, 5\)"):
        layer.forward(params, jax.device_put(np.zeros((2, 3, 5), np.float32)))
    with pytest.raises(TypeError, match="floating"):
        layer.forward(params, jax.device_put(np.zeros((2, 3, 2), np.int32)))
    with pytest.raises(ValueError, match="features"):
        jaxbp.rnn(0)


# ------------------------------------------------------------------------- position


@pytest.mark.parametrize("max_len, shape, batch", [(1, (1, 2), 1), (7, (4, 3), 2)])
def test_position_embedding_matches_autodiff(max_len, shape, batch):
    assert_layer_matches_autodiff(jaxbp.position_embedding(max_len), shape, batch=batch)


def test_position_embedding_adds_the_first_rows(x64):
    layer = jaxbp.position_embedding(6)
    params, out = layer.init(jax.random.key(0), (4, 3))
    assert out == (4, 3) and params["w"].shape == (6, 3)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    y, (grads, dx) = forward_backward(layer)(params, x, np.ones((2, 4, 3)))
    w = np.asarray(params["w"])
    np.testing.assert_array_equal(y, x + w[None, :4])
    np.testing.assert_array_equal(grads["w"][:4], 2.0)  # two examples in the batch
    np.testing.assert_array_equal(grads["w"][4:], 0.0)
    with pytest.raises(ValueError, match=r"max_len = 6.*\(2, 7, 3\)"):
        layer.forward(params, jax.device_put(np.zeros((2, 7, 3))))
    with pytest.raises(ValueError, match="max_len = 6"):
        layer.init(jax.random.key(0), (7, 3))


# ------------------------------------------------------------------ transformer, GPT


@pytest.mark.parametrize("heads, shape, batch, eager", [
    (1, (1, 2), 1, False),   # time 1, batch 1
    (2, (3, 4), 2, True),
])
def test_transformer_block_matches_autodiff(heads, shape, batch, eager):
    assert_layer_matches_autodiff(jaxbp.transformer_block(heads, mlp_ratio=2), shape,
                                  batch=batch, eager=eager)


def test_transformer_block_is_made_of_the_library_layers():
    block = jaxbp.transformer_block(2, mlp_ratio=3)
    params, out = block.init(jax.random.key(0), (5, 4))
    assert out == (5, 4)
    (ln1, attention), (ln2, up, gelu, down) = params
    assert set(ln1) == set(ln2) == {"scale", "bias"}
    assert attention["qkv"]["w"].shape == (4, 12) and attention["proj"]["w"].shape == (4, 4)
    assert up["w"].shape == (4, 12) and down["w"].shape == (12, 4) and gelu == ()
    with pytest.raises(ValueError, match="divisible by heads = 3"):
        jaxbp.transformer_block(3).init(jax.random.key(0), (5, 4))


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_language_models_hand_written_gradient_is_jax_grad(x64, kind):
    """The whole model, ids to next-token loss over every position: the chained
    hand-written backward passes against jax.grad, float64."""
    from jaxbp import models

    vocab, time = 7, 5
    net = (models.gpt(vocab, context=6, features=8, blocks=2, heads=2) if kind == "gpt"
           else models.lstm_language_model(vocab, features=6, embed=4))
    loss = jaxbp.softmax_cross_entropy()
    rng = np.random.default_rng(6)
    params, out = numpy_init(net, (time,), rng)
    assert out == (time, vocab)
    ids = rng.integers(0, vocab, (3, time + 1)).astype(np.int32)
    x, y = ids[:, :-1], ids[:, 1:]

    @jax.jit  # both gradients in one compiled program
    def both(params, x, y):
        ref = jax.value_and_grad(lambda p: loss.forward(net.forward(p, x)[0], y)[0])(params)
        return jaxbp.value_and_grad(net, loss)(params, x, y), ref

    (value, grads), (ref_value, ref) = both(params, x, y)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    assert jax.tree.structure(grads) == jax.tree.structure(ref)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------- data parallel

# ------------------------------------------------------------------- demo and bench


def test_stdlib_text_is_split_by_file_and_the_same_every_time():
    from jaxbp import demo_gpt

    a = demo_gpt.stdlib_text(train_chars=50_000, held_out_chars=10_000)
    b = demo_gpt.stdlib_text(train_chars=50_000, held_out_chars=10_000)
    assert len(a.train) == 50_000 and len(a.held_out) == 10_000
    np.testing.assert_array_equal(a.train, b.train)
    assert a.chars == b.chars and a.chars[-1] == demo_gpt.UNKNOWN
    assert a.vocab_size <= demo_gpt.MAX_VOCAB
    # Held out by whole files: the held-out text is no slice of the training text.
    snippet = a.decode(a.held_out[2000:2200])
    assert snippet not in a.decode(a.train)


def test_baselines_are_the_counted_probabilities():
    from jaxbp import demo_gpt

    data = demo_gpt.TextData("toy", "abababac", "abca")
    x, y = demo_gpt.windows(data.held_out, 3, 3)  # one window: "abc" -> "bca"
    assert x.tolist() == [data.encode("abc").tolist()]
    got = demo_gpt.baselines(data, x, y)
    v = data.vocab_size  # a, b, c and the unknown symbol
    counts = {"a": 4, "b": 3, "c": 1}
    uni = {c: (n + 1) / (8 + v) for c, n in counts.items()}
    # Training pairs: ab ba ab ba ab ba ac; add-one over v symbols per row.
    big = {("a", "b"): (3 + 1) / (4 + v), ("b", "c"): (0 + 1) / (3 + v),
           ("c", "a"): (0 + 1) / (0 + v)}
    assert got["unigram_bpc"] == pytest.approx(-np.mean(np.log2([uni[c] for c in "bca"])))
    assert got["bigram_bpc"] == pytest.approx(-np.mean(np.log2(list(big.values()))))


def test_gpt_demo_on_a_users_text(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    from jaxbp import cli

    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    text = "\n".join(" ".join(rng.choice(words, 8)) for _ in range(400))
    path = tmp_path / "mine.txt"
    path.write_text(text)
    out_json = tmp_path / "r.json"
    # Only the hand-written run: test_demo's GPT run compares it with jax.grad's.
    code = cli.main(["demo", "gpt", "--data", str(path), "--steps", "30", "--batch-size",
                     "8", "--out", str(tmp_path), "--json", str(out_json),
                     "--no-autodiff"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(out_json.read_text())
    assert {"val_bpc", "unigram_bpc", "bigram_bpc", "seconds", "samples"} <= set(result)
    assert len(result["samples"]) == 3 and all(len(s) > 200 for s in result["samples"])
    assert 0 < result["val_bpc"] < result["unigram_bpc"]  # 30 steps learn something
    assert "jax.grad" not in captured.out
    png = tmp_path / "gpt_curves.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("argv, message", [
    (["--data", "/no/such/file.txt"], "--data: cannot read"),
    (["--epochs", "3"], "--steps"),
    (["--impl", "exercises"], "needs 9 more exercises, not done yet"),
    (["--steps", "0"], "--steps must be a positive int"),
])
def test_gpt_demo_user_mistakes_are_one_line(capsys, argv, message):
    from jaxbp import cli

    assert cli.main(["demo", "gpt", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_sequence_workloads_are_the_pytorch_models():
    """W5 and W6 time the same networks in PyTorch: same parameter counts (PyTorch's
    LSTM keeps two biases where jaxbp keeps their sum) and output shapes."""
    torch = pytest.importorskip("torch")
    from jaxbp import bench, models

    for w in bench.build_workloads(["W5", "W6"]):
        module, loss_fn, _ = w.torch_model(torch, False)
        extra = 4 * 256 if w.name == "W6" else 0
        assert sum(p.numel() for p in module.parameters()) == \
            models.count_params(w.params) + extra
        x, y = (np.array(a) for a in w.make_batches(jax.random.key(0), 1))
        logits = module(torch.from_numpy(x[0]))
        assert tuple(logits.shape) == (w.batch, 64, bench.VOCAB)
        assert np.isfinite(loss_fn(logits, torch.from_numpy(y[0])).item())
