"""Grading specs of ``04_sgd.py``: one SGD step."""

from __future__ import annotations

import jax
import numpy as np

from jaxbp.grading.spec import (Case, DocCase, References, case_rng, exercise, f64, mistake,
                                 nonzero, notes_example, np64, operand, param_ref,
                                 printed_number, printed_record)


def _sgd_mistakes(p, g, lr):
    return [
        (mistake("ascent", "moved up the gradient: gradient descent subtracts lr * grad"),
         p + lr * g),
        (mistake("missing-lr", "missing the learning rate: the step is lr * grad"), p - g),
        (mistake("step-only", "returned the step -lr * grad; return the updated "
                 "parameter, param - lr * grad"), -lr * g),
        (mistake("lr-divided", "divided by the learning rate: the step is lr * grad"),
         p - g / lr),
    ]


def _tree_candidates(name, params, grads, lr):
    """Per-leaf sgd mistakes, named as the comparison names the leaves."""
    out = {}
    flat_p = jax.tree_util.tree_flatten_with_path(params)[0]
    flat_g = jax.tree.leaves(grads)
    for (path, p), g in zip(flat_p, flat_g):
        out[name + jax.tree_util.keystr(path)] = _sgd_mistakes(np64(p), np64(g), lr)
    return out


def _sgd_cases():
    rng = case_rng("sgd_update")
    refs, drawn = References(), []
    trees = [
        ({"w": (3, 2), "b": (2,)}, 0.7),
        (({"w": (4, 3), "b": (3,)}, (), {"w": (3, 1)}), 0.05),
        ((5,), 1.5),
    ]
    for shapes, lr in trees:
        is_shape = lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s)  # noqa: E731
        params = jax.tree.map(lambda s: f64(nonzero(rng, s)), shapes, is_leaf=is_shape)
        grads = jax.tree.map(lambda s: f64(nonzero(rng, s)), shapes, is_leaf=is_shape)
        # compiled, not a program per operation and leaf shape
        drawn.append((lr, params, grads,
                      refs.call(lambda p, g, lr=lr: jax.tree.map(lambda a, b: a - lr * b, p, g),
                                params, grads)))
    answers = refs.run()
    cases = []
    for lr, params, grads, h in drawn:
        expected = answers[h]
        label = f"params {jax.tree.map(lambda a: tuple(a.shape), params)}, lr {lr}"
        cases.append(Case(label, (params, grads, lr), expected,
                          lambda params=params, grads=grads, lr=lr:
                          _tree_candidates("new_params", params, grads, lr)))
    return cases


def _sgd_doc000():
    # 000's output layer (w13..w18, b6, b7), α = 0.7. The gradients from the printed
    # coef_o1 = 0.0628, coef_o2 = -0.0053 and the out_hh the update lines write (0.759,
    # 0.806, 0.813): ∂E/∂w13 = coef_o1 · out_hh1 and so on, ∂E/∂b6 = coef_o1.
    ex = notes_example("000")
    layer = ex.params[4]
    params = {"w": f64(layer["w"]), "b": f64(layer["b"])}
    coef = np.array([printed_record(ex, "coef_o1").value, printed_record(ex, "coef_o2").value])
    out_hh = np.array([operand(ex, f"w{13 + i}_new", f"out_hh{i + 1}") for i in range(3)])
    grads = {"w": f64(np.outer(out_hh, coef)), "b": f64(coef)}
    lr = ex.learning_rate
    expected = jax.tree.map(lambda p, g: f64(np64(p) - lr * np64(g)), params, grads)
    printed = [printed_number(ex, f"{name}_new", f"new_params['{param_ref(ex, name).key}']",
                        param_ref(ex, name).index)
               for name in ("w13", "w14", "w15", "w16", "w17", "w18", "b6", "b7")]
    return DocCase("000's output layer, α = 0.7", (params, grads, lr), expected, printed,
                   lambda: _tree_candidates("new_params", params, grads, lr))


MODULE = "04_sgd.py"

EXERCISES = (
    exercise("sgd_update", "an SGD update", "000, 002, 003", ("new_params",), _sgd_cases,
             [("doc000", "document 000's updated output layer", _sgd_doc000)],
             inputs_unchanged=True),
)
