"""A learner's backward passes inside jaxbp layers: the solutions' functions train a
network and give jaxbp's own gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import cli, grading, models
from jaxbp.grading.generate import project_root
from jaxbp.grading.plug import (DEMO_EXERCISES, LearnerTimeout, NotDoneYet, learner_layers,
                                unfinished)

ROOT = project_root()


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


# ------------------------------------------------------------------ beyond the documents


@pytest.mark.parametrize("build", [
    lambda m: m["gpt"](11, context=6, features=8, blocks=1, heads=2),
    lambda m: m["lstm_language_model"](11, features=5, embed=4),
], ids=["gpt", "lstm"])
def test_the_learners_sequence_models_give_jaxbps_gradients(L, build, x64):
    """The GPT (embedding, layer norm, attention, GELU, residual, dense, serial, the
    sequence loss) and the LSTM (the learner's one-step backward, through time)."""
    mine, ref = build(L), build({"gpt": models.gpt,
                                 "lstm_language_model": models.lstm_language_model})
    params, _ = jax.jit(ref.init, static_argnums=1)(jax.random.key(0), (6,))
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.integers(0, 11, (3, 6)), jnp.int32)
    y = jnp.asarray(rng.integers(0, 11, (3, 6)), jnp.int32)
    v1, g1 = jax.jit(jaxbp.value_and_grad(mine, L["softmax_cross_entropy"]()))(params, x, y)
    v2, g2 = jax.jit(jaxbp.value_and_grad(ref, jaxbp.softmax_cross_entropy()))(params, x, y)
    assert float(v1) == pytest.approx(float(v2), rel=1e-12)
    assert _max_diff(g1, g2) < 1e-10


def test_the_learners_other_new_layers_give_jaxbps_gradients(L, x64):
    def build(m):
        return m["serial"](
            m["conv2d"](3, 3, padding="SAME"), m["batch_norm"](), m["leaky_relu"](0.2),
            m["avg_pool2d"](2), m["flatten"](), m["dense"](6), m["dropout"](0.5),
            m["residual"](m["layer_norm"](), m["dense"](6), m["gelu"]()), m["dense"](2))
    mine, ref = build(L), build(vars(jaxbp))
    params, _ = jax.jit(ref.init, static_argnums=1)(jax.random.key(1), (4, 4, 2))
    state = jaxbp.init_state(ref, params)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(5, 4, 4, 2)), jnp.float64)
    t = jnp.asarray(np.random.default_rng(5).normal(size=(5, 2)), jnp.float64)
    key = jax.random.key(6)  # training mode: batch statistics and a dropout mask

    def grads(net):
        @jax.jit
        def run(params):
            y, residuals, _ = jaxbp.apply(net, params, state, x, key=key, train=True)
            dy = jaxbp.half_mse().backward(jaxbp.half_mse().forward(y, t)[1])
            return net.backward(params, residuals, dy)
        return run(params)

    assert _max_diff(grads(mine), grads(ref)) < 1e-10
    rnn_mine, rnn_ref = L["rnn"](3), jaxbp.rnn(3)
    p, _ = rnn_ref.init(jax.random.key(2), (4, 2))
    xs = jnp.asarray(np.random.default_rng(7).normal(size=(2, 4, 2)), jnp.float64)
    y, r = rnn_ref.forward(p, xs)
    assert _max_diff(rnn_mine.backward(p, r, y), rnn_ref.backward(p, r, y)) < 1e-10


def test_the_learners_adam_follows_optax_adam_on_a_schedule(L, x64):
    import optax

    schedule = optax.cosine_decay_schedule(0.1, 10)
    mine, ref = L["adam"](schedule, b1=0.8), optax.adam(schedule, b1=0.8)
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros((2,))}
    p1 = p2 = params
    s1, s2 = mine.init(params), ref.init(params)
    rng = np.random.default_rng(8)
    for _ in range(4):
        g = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
        u1, s1 = jax.jit(mine.update)(g, s1, p1)
        u2, s2 = ref.update(g, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    assert _max_diff(p1, p2) < 1e-12


def test_a_learners_infinite_loop_is_stopped_at_the_time_limit(tmp_path):
    assert cli.main(["exercises", "generate", "--out", str(tmp_path)]) == 0
    path = tmp_path / "01_activations.py"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'raise NotImplementedError("not done yet: relu_backward")', "while True:\n        pass"),
        encoding="utf-8")
    for name in ("03_dense.py", "08_network.py", "02_losses.py"):
        (tmp_path / name).write_text((ROOT / "solutions" / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    layers = learner_layers(tmp_path, time_limit=1.0)
    net = layers["serial"](layers["dense"](4), layers["relu"](), layers["dense"](3))
    params, _ = net.init(jax.random.key(0), (2,))
    grad_fn = jax.jit(jaxbp.value_and_grad(net, layers["softmax_cross_entropy"]()))
    with pytest.raises(LearnerTimeout, match="relu_backward was stopped after 1 s"):
        grad_fn(params, jnp.ones((5, 2)), jnp.zeros((5,), jnp.int32))


def test_each_demo_needs_exactly_the_exercises_it_lists(tmp_path):
    """Built from a copy where only the listed exercises are done, each demo's model,
    loss and optimizer construct; and an untouched copy lists them all as unfinished."""
    assert cli.main(["exercises", "generate", "--out", str(tmp_path)]) == 0
    untouched = {d: [n for n, _ in unfinished(tmp_path, names)]
                 for d, names in DEMO_EXERCISES.items()}
    assert untouched == {d: sorted(names, key=lambda n: grading.BY_NAME[n].number)
                         for d, names in DEMO_EXERCISES.items()}
    for demo, names in DEMO_EXERCISES.items():
        work = tmp_path / demo
        assert cli.main(["exercises", "generate", "--out", str(work)]) == 0
        solve(work, names)
        layers = learner_layers(work)
        if demo == "gpt":
            layers["gpt"](11, context=6)
        elif demo == "lstm":
            layers["lstm_language_model"](11)
        if demo in ("gpt", "lstm"):
            layers["softmax_cross_entropy"](), layers["adam"](1e-3)
        else:
            from jaxbp import demo as demo_module

            build = {"cnn": demo_module.cnn, "mlp": demo_module.mlp}.get(demo)
            if build:
                build(layers, (8, 8, 1), 10), layers["softmax_cross_entropy"]()
            else:
                layers["serial"](layers["dense"](2), layers["sigmoid"]())
                layers["half_mse"](), layers["sgd"](0.7)
        assert unfinished(work, names) == []


def solve(folder, names):
    """Copies the solutions' bodies of ``names`` into the exercise copy ``folder``."""
    from jaxbp.grading import generate

    for module in {grading.BY_NAME[n].module for n in names}:
        solution = (ROOT / "solutions" / module).read_text(encoding="utf-8")
        mine = (folder / module).read_text(encoding="utf-8").splitlines(keepends=True)
        sol_lines = solution.splitlines(keepends=True)
        regions = {r.function: r for r in generate.regions(solution)}
        out, start = [], 0
        for r in generate.regions("".join(mine)):
            out += mine[start:r.begin + 1]
            src = regions[r.function]
            out += (sol_lines[src.begin + 1:src.end] if r.function in names
                    else mine[r.begin + 1:r.end])
            start = r.end
        (folder / module).write_text("".join(out + mine[start:]), encoding="utf-8")


def test_the_readme_table_says_which_exercises_each_demo_needs():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = text[text.index("| # | exercise | file | documents | demos that need it |"):]
    text = text[:text.index("\n\n")]
    table = {}
    for number, name, demos in re.findall(r"^\| (\d+) \| `(\w+)`[^|]*\|[^|]*\|[^|]*\| ([^|]*)\|$",
                                          text, re.M):
        demos = demos.strip()
        table[name] = set(DEMO_EXERCISES) if demos == "all five" else {
            d.strip() for d in demos.split(",") if d.strip()}
        assert grading.BY_NAME[name].number == int(number)
    assert list(table) == [e.name for e in grading.EXERCISES]
    needs = {e.name: {d for d, names in DEMO_EXERCISES.items() if e.name in names}
             for e in grading.EXERCISES}
    assert table == needs
