"""Grading specs of ``06_documents.py``: documents 002 and 000 worked by hand."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (MISSING_DERIVATIVE, Case, DocCase, References, case_rng,
                                 exercise, f64, grad_of, mistake, nonzero, notes_example, np64,
                                 param_value, printed_number, quick_jit, sigmoid_np)


def _doc002_forward(w, x):
    s = jax.nn.sigmoid
    h1, h2 = s(w[0] * x[0] + w[2] * x[1]), s(w[1] * x[0] + w[3] * x[1])
    return s(w[4] * h1 + w[6] * h2), s(w[5] * h1 + w[7] * h2)


def _doc002_error(w, x, y):
    o1, o2 = _doc002_forward(w, x)
    return 0.5 * (o1 - y[0]) ** 2 + 0.5 * (o2 - y[1]) ** 2


def _doc002_np(w, x, y, *, slip=False, no_derivative=False, numbering="document"):
    """Document 002's gradients in numpy, right or with a named mistake."""
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    if numbering != "document":  # w1, w2 into h1; w5, w6 into o1 (the other habit)
        w1, w2, w3, w4, w5, w6, w7, w8 = w1, w3, w2, w4, w5, w7, w6, w8
    h1, h2 = sigmoid_np(w1 * x[0] + w3 * x[1]), sigmoid_np(w2 * x[0] + w4 * x[1])
    o1, o2 = sigmoid_np(w5 * h1 + w7 * h2), sigmoid_np(w6 * h1 + w8 * h2)
    s1, s2 = o1 - y[0], o2 - y[1]
    if not no_derivative:
        s1, s2 = s1 * o1 * (1 - o1), s2 * o2 * (1 - o2)
    d5, d7, d6, d8 = s1 * h1, s1 * h2, s2 * h1, s2 * h2
    if slip:  # 002's formula: δ1 = (δ5 + δ6) h1 (1 - h1) x1
        e1, e2 = (d5 + d6) * h1 * (1 - h1), (d7 + d8) * h2 * (1 - h2)
    else:
        e1 = (s1 * w5 + s2 * w6) * h1 * (1 - h1)
        e2 = (s1 * w7 + s2 * w8) * h2 * (1 - h2)
    g = np.array([e1 * x[0], e2 * x[0], e1 * x[1], e2 * x[1], d5, d6, d7, d8])
    if numbering != "document":
        g = g[[0, 2, 1, 3, 4, 6, 5, 7]]
    return g


def _doc002_mistakes(w, x, y, lr):
    slip = _doc002_np(w, x, y, slip=True)
    nod = _doc002_np(w, x, y, no_derivative=True)
    other = _doc002_np(w, x, y, numbering="other")
    right = _doc002_np(w, x, y)
    return {
        "grads": [
            (mistake("doc002-slip", "document 002's slip: δ1 = (δ5 + δ6) h1 (1 - h1) x1 "
                     "adds weight gradients; the chain rule needs the error signals times "
                     "the weights, (δ_o1 o1 (1 - o1) w5 + δ_o2 o2 (1 - o2) w6) h1 (1 - "
                     "h1) x1"), slip),
            (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: ∂o/∂In_o = "
                     "o (1 - o) belongs in every δ"), nod),
            (mistake("numbering", "the weights' numbering: in 002, w1 and w3 feed h1, w2 "
                     "and w4 feed h2, w5 and w7 feed o1, w6 and w8 feed o2"), other),
        ],
        "new_w": [
            (mistake("ascent", "moved up the gradient: the step subtracts lr * δ"), w + lr * right),
            (mistake("doc002-slip", "document 002's slip (δ1..δ4 from δ5 + δ6): see grads"),
             w - lr * slip),
        ],
    }


def _doc002_cases():
    rng = case_rng("doc002_step")
    refs, drawn = References(), []
    for lr in (1.0, 0.5, 2.0):
        w, x, y = nonzero(rng, (8,), 0.1, 1.0), nonzero(rng, (2,), 0.1, 1.0), rng.uniform(
            -0.5, 1.0, size=(2,))
        drawn.append((lr, w, x, y, refs.grad(_doc002_error, f64(w), f64(x), f64(y))))
    answers = refs.run()
    cases = []
    for lr, w, x, y, h in drawn:
        grads = answers[h]
        cases.append(Case(f"random w (8,), x (2,), y (2,), lr {lr}",
                          (f64(w), f64(x), f64(y), lr), (grads, f64(np64(w) - lr * np64(grads))),
                          lambda w=w, x=x, y=y, lr=lr: _doc002_mistakes(w, x, y, lr)))
    return cases


def _doc002_doc():
    # 002: w1..w8 = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8; x = (0.5, 0.3); labels
    # (0.23, -0.07); η = 1. Printed δ5..δ8 = 0.03, 0.08, 0.03, 0.07. Its δ1..δ4 lines print
    # 0.01 from the wrong formula (δ5 + δ6) h1 (1 - h1) x1; the chain rule gives -0.0084,
    # 0.0126, -0.0051, 0.0076: -0.01, 0.01, -0.01, 0.01 at the document's two decimals.
    ex = notes_example("002")
    w = np.array([param_value(ex, f"w{i}") for i in range(1, 9)])
    x, y, lr = np64(ex.x)[0], np64(ex.target)[0], ex.learning_rate
    grads = grad_of(_doc002_error, f64(w), f64(x), f64(y))
    printed = [printed_number(ex, f"delta{i}", "grads", (i - 1,), f"δ{i} = ∂Error/∂w{i}")
               for i in (5, 6, 7, 8, 1, 2, 3, 4)]
    return DocCase("002: w1..w8 = (0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8), x = (0.5, "
                   "0.3), labels (0.23, -0.07), η = 1",
                   (f64(w), f64(x), f64(y), lr), (grads, f64(np64(w) - lr * np64(grads))), printed,
                   lambda: _doc002_mistakes(w, x, y, lr))


def _doc000_layer(a, w, b):
    return jax.nn.sigmoid(a @ w + b)


def _doc000_reference(params, x, target, lr, convention):
    """The expected step: autodiff for "standard", per-layer ``jax.vjp`` for "notes"."""
    if convention == "standard":
        def error(params):
            a = x
            for layer in params:
                a = _doc000_layer(a, layer["w"], layer["b"])
            return 0.5 * jnp.sum((a - target) ** 2)
        grads = jax.grad(error)(params)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads)
    # The notes' convention: update a layer, then carry the error down through the
    # updated weights: each layer's vjp taken at its new weights, at the forward's input.
    inputs, a = [], x
    for layer in params:
        inputs.append(a)
        a = _doc000_layer(a, layer["w"], layer["b"])
    da = a - target  # ∂E/∂out
    new = [None] * len(params)
    for i in reversed(range(len(params))):
        w, b = params[i]["w"], params[i]["b"]
        _, pullback = jax.vjp(lambda w, b: _doc000_layer(inputs[i], w, b), w, b)
        dw, db = pullback(da)
        new[i] = {"w": w - lr * dw, "b": b - lr * db}
        if i > 0:
            # out = sigmoid(a_in @ W + b): the error's route through the *new* W, with
            # the sigmoid's derivative taken at the forward's values.
            out_i = _doc000_layer(inputs[i], w, b)
            coef = da * out_i * (1 - out_i)
            _, pull_in = jax.vjp(lambda a_in: a_in @ new[i]["w"], inputs[i])
            (da,) = pull_in(coef)
    return tuple(new)


@functools.cache
def _doc000_reference_jit():
    return quick_jit(_doc000_reference, static_argnums=(4,))


def _doc000_np(params, x, target, lr, convention):
    """The same step in numpy (for the mistakes' wrong answers)."""
    acts = [x]
    for layer in params:
        acts.append(sigmoid_np(acts[-1] @ layer["w"] + layer["b"]))
    coef = (acts[-1] - target) * acts[-1] * (1 - acts[-1])
    new = [None] * len(params)
    for i in reversed(range(len(params))):
        w, b = params[i]["w"], params[i]["b"]
        new_w = w - lr * np.outer(acts[i], coef)
        new[i] = {"w": new_w, "b": b - lr * coef}
        if i > 0:
            coef = ((new_w if convention == "notes" else w) @ coef) * acts[i] * (1 - acts[i])
    return tuple(new)


def _doc000_mistakes(params, x, target, lr, convention):
    params = jax.tree.map(np64, params)
    x, target = np64(x), np64(target)
    other = "standard" if convention == "notes" else "notes"
    wrong = _doc000_np(params, x, target, lr, other)
    right = _doc000_np(params, x, target, lr, convention)
    ascent = jax.tree.map(lambda p, n: 2 * p - n, params, right)
    if convention == "standard":
        mix = mistake("updated-weights", "updated weights used where the old ones belong: "
                      "textbook backprop (convention 'standard') carries the error down "
                      "through the weights of the forward pass, not the just-updated ones")
    else:
        mix = mistake("old-weights", "old weights used where the updated ones belong: the "
                      "documents' convention ('notes') updates a layer first and carries "
                      "the error down through its new weights (000: coef_hh1 uses w13 = "
                      "0.962)")
    out = {}
    for (path, w_leaf), a_leaf in zip(jax.tree_util.tree_flatten_with_path(wrong)[0],
                                      jax.tree.leaves(ascent)):
        out["new_params" + jax.tree_util.keystr(path)] = [
            (mix, w_leaf),
            (mistake("ascent", "moved up the gradient: each update subtracts lr * "
                     "gradient"),
             a_leaf)]
    return out


def _doc000_random(rng, sizes):
    params = tuple({"w": nonzero(rng, (n_in, n_out), 0.3, 1.5),
                    "b": nonzero(rng, (n_out,), 0.1, 1.0)}
                   for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    x = rng.uniform(0.1, 1.0, size=(sizes[0],))
    target = rng.uniform(0.0, 1.0, size=(sizes[-1],))
    return params, x, target


def _doc000_cases():
    rng = case_rng("doc000_step")
    refs, drawn = References(), []
    for sizes, convention, lr in [((3, 2, 3, 2), "standard", 0.7), ((3, 2, 3, 2), "notes", 0.7),
                                  ((2, 4, 3), "notes", 1.5), ((1, 3, 1, 2, 2), "standard", 2.0)]:
        params, x, target = _doc000_random(rng, sizes)
        pj = jax.tree.map(f64, params)
        f = lambda p, x, t, lr, c=convention: _doc000_reference(p, x, t, lr, c)  # noqa: E731
        drawn.append((sizes, convention, lr, params, x, target, pj,
                      refs.call(f, pj, f64(x), f64(target), lr)))
    answers = refs.run()
    cases = []
    for sizes, convention, lr, params, x, target, pj, h in drawn:
        expected = answers[h]
        label = f"layers {'-'.join(map(str, sizes))}, lr {lr}, convention {convention!r}"
        cases.append(Case(label, (pj, f64(x), f64(target), lr, convention), expected,
                          lambda p=params, x=x, t=target, lr=lr, c=convention:
                          _doc000_mistakes(p, x, t, lr, c)))
    return cases


def _doc000_doc():
    # 000's network as jaxbp.notes holds it (dense layers 0, 2, 4 of its serial net), one
    # step in the document's convention. Every updated parameter the document prints
    # whose exact value rounds to it, plus w8 corrected (printed 0.551, a slip: 0.56 -
    # 0.7 · 0.01 · 0.655 = 0.555, which the next page uses). Not w9 = 0.739 and w11 =
    # 0.088: those come from the one-figure coef_hh2 = 0.009 and coef_hh3 = 0.003 the
    # document carries (exactly: 0.740 and 0.089). w12 = 0.809 tells the conventions
    # apart: textbook backprop gives 0.808.
    from jaxbp import notes

    ex = notes_example("000")
    dense = [i for i, p in enumerate(ex.params) if p != ()]
    params = tuple({k: f64(v) for k, v in ex.params[i].items()} for i in dense)
    x, target, lr = f64(ex.x[0]), f64(ex.target[0]), ex.learning_rate
    expected = _doc000_reference_jit()(params, x, target, lr, "notes")
    exact = {row.name: row.notes for row in notes.compare(ex)}
    printed = []
    for ref in ex.param_table:
        rec = next((p for p in ex.printed if p.name == f"{ref.name}_new"), None)
        if rec is None:
            continue
        record = printed_number(ex, rec.name, f"new_params[{dense.index(ref.layer)}]['{ref.key}']",
                          ref.index, ref.name)
        if rec.erratum is None and abs(exact[rec.name] - rec.value) > 0.5 * 10.0 ** -rec.decimals:
            continue  # carried rounding, not exact arithmetic, gives this one
        printed.append(record)
    return DocCase("000: the 3-2-3-2 network, x = (0.1, 0.2, 0.3), target (0.01, 0.99), "
                   "α = 0.7, convention 'notes'",
                   (params, x, target, lr, "notes"), expected, printed,
                   lambda: _doc000_mistakes(params, x, target, lr, "notes"))


MODULE = "06_documents.py"

EXERCISES = (
    exercise("doc002_step", "document 002's step by the chain rule, scalar by scalar", "002",
             ("grads", "new_w"), _doc002_cases,
             [("doc002", "document 002's δ5..δ8 and the true δ1..δ4", _doc002_doc)]),
    exercise("doc000_step", "document 000's full step, in both conventions", "000",
             ("new_params",), _doc000_cases,
             [("doc000", "document 000's updated weights (its own convention)", _doc000_doc)],
             static_argnums=(4,)),
)
