"""Grading specs of ``01_activations.py``: sigmoid, tanh, relu and softmax backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (MISSING_DERIVATIVE, Case, DocCase, References, exercise, f64,
                                 mistake, nonzero, notes_example, np64, operand, printed_number,
                                 printed_record, shape_label, sigmoid_np, case_rng)


def _activation_cases(name, forward, shapes, keep, extra, kinks=False):
    """Random cases; ``kinks``: some entries of x exactly 0 (a kink's derivative is a
    stated rule: relu'(0) = 0, as jax.nn.relu), in every case."""
    rng = case_rng(name)
    refs, drawn = References(), []
    for shape in shapes:
        x = nonzero(rng, shape, 0.2, 2.0)
        dy = nonzero(rng, shape)
        if kinks:
            x[0, 0] = x[-1, -1] = 0.0
        xj, dyj = f64(x), f64(dy)
        drawn.append((x, dy, xj, dyj, refs.value_and_vjp(forward, (xj,), dyj)))
    answers = refs.run()
    cases = []
    for x, dy, xj, dyj, h in drawn:
        y, (dx,) = answers[h]
        first = xj if keep == "x" else y
        args = (first, dyj)

        def candidates(x=x, y=np64(y), dy=dy):
            return {"dx": extra(x, y, dy)}

        cases.append(Case(shape_label(**{keep: x, "dy": dy}), args, dx, candidates))
    return cases


def _sigmoid_mistakes(x, y, dy):
    del x
    return [
        (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: you returned "
                 "dy unchanged; the chain rule multiplies it by the sigmoid's derivative"), dy),
        (mistake("missing-dy", "missing dy: you returned the sigmoid's derivative alone; "
                 "the chain rule multiplies it by the upstream gradient dy"), y * (1 - y)),
        (mistake("one-factor", "half the sigmoid's derivative: σ'(x) = y (1 - y) has two "
                 "factors, and you used one"), dy * y),
        (mistake("one-factor", "half the sigmoid's derivative: σ'(x) = y (1 - y) has two "
                 "factors, and you used one"), dy * (1 - y)),
        (mistake("output-as-input", "you applied the sigmoid to y again: y is already the "
                 "sigmoid's output, so the derivative is y (1 - y) itself"),
         dy * sigmoid_np(y) * (1 - sigmoid_np(y))),
    ]


def _sigmoid_cases():
    return _activation_cases("sigmoid_backward", jax.nn.sigmoid,
                             [(1, 3), (3, 5), (4, 2)], "y", _sigmoid_mistakes)


def _sigmoid_doc000():
    # 000's output layer: out_o = (0.926, 0.919), targets (0.01, 0.99); the coef_o1 line
    # writes out_o1 as 0.916 (a slip: its result 0.0628 needs 0.926), so dy = out - target.
    ex = notes_example("000")
    out = np.array([printed_record(ex, "out_o1").value, printed_record(ex, "out_o2").value])
    y, dy = f64(out[None, :]), f64((out - np64(ex.target)[0])[None, :])
    printed = [printed_number(ex, "coef_o1", "dx", (0, 0)),
               printed_number(ex, "coef_o2", "dx", (0, 1))]
    return DocCase("000's output layer: y = out_o = (0.926, 0.919), dy = out_o - target",
                   (y, dy), f64(np64(dy) * np64(y) * (1 - np64(y))), printed,
                   lambda: {"dx": _sigmoid_mistakes(None, np64(y), np64(dy))})


def _tanh_cases():
    def extra(x, y, dy):
        del x
        return [
            (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: you "
                     "returned dy unchanged; multiply it by tanh's derivative"), dy),
            (mistake("missing-dy", "missing dy: you returned tanh's derivative alone; the "
                     "chain rule multiplies it by dy"), 1 - y * y),
            (mistake("missing-square", "tanh's derivative is 1 - y², not 1 - y"), dy * (1 - y)),
            (mistake("output-as-input", "you applied tanh to y again: y is already tanh's "
                     "output, so the derivative is 1 - y² itself"), dy * (1 - np.tanh(y) ** 2)),
            (mistake("sigmoid-derivative", "that is the sigmoid's derivative, y (1 - y); "
                     "tanh's is 1 - y²"), dy * y * (1 - y)),
        ]
    return _activation_cases("tanh_backward", jnp.tanh, [(1, 4), (3, 5), (5, 2)], "y", extra)


def _relu_cases():
    def extra(x, y, dy):
        del y
        return [
            (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: you "
                     "returned dy unchanged; relu passes dy only where x > 0"), dy),
            (mistake("inverted-mask", "the mask is inverted: relu passes dy where x > 0 "
                     "and blocks it where x < 0"), np.where(x < 0, dy, 0.0)),
            (mistake("mask-from-dy", "masked by the sign of dy: the mask comes from the "
                     "forward's input x (where x > 0)"), np.maximum(dy, 0.0)),
            (mistake("missing-dy", "missing dy: you returned relu's derivative (0 or 1) "
                     "alone; multiply it by dy"), (x > 0).astype(np.float64)),
            (mistake("kink", "at the kink x = 0 the docstring's rule is relu'(0) = 0 (as "
                     "jax.nn.relu): your mask passes dy where x is exactly 0 (use x > 0, "
                     "not x >= 0)"), np.where(x >= 0, dy, 0.0)),
            (mistake("times-x", "multiplied by x: relu's derivative is 0 or 1, not x"),
             dy * np.maximum(x, 0.0)),
        ]
    return _activation_cases("relu_backward", jax.nn.relu, [(1, 3), (3, 6), (4, 5)], "x",
                             extra, kinks=True)


def _softmax_mistakes(y, dy):
    return [
        (mistake("diagonal-only", "only the Jacobian's diagonal: you used ∂a_i/∂z_i = a_i "
                 "(1 - a_i) and left out the terms i ≠ j, -a_i a_j (003)"),
         dy * y * (1 - y)),
        (mistake("wrong-axis", "summed over the wrong axis: the sum runs over the classes "
                 "(the last axis) of each example, not over the batch"),
         y * (dy - np.sum(dy * y, axis=0, keepdims=True))),
        (mistake("missing-dy", "missing dy: the vector-Jacobian product multiplies the "
                 "Jacobian by dy"), y * (1 - y)),
        (mistake("missing-y", "the outer factor is missing: dx_i = y_i (dy_i - Σ_j dy_j "
                 "y_j)"),
         dy - np.sum(dy * y, axis=-1, keepdims=True)),
        (mistake("unweighted-sum", "the sum is Σ_j dy_j y_j, each dy_j weighted by y_j: "
                 "you summed dy alone"), y * (dy - np.sum(dy, axis=-1, keepdims=True))),
    ]


def _softmax_cases():
    rng = case_rng("softmax_backward")
    refs, drawn = References(), []
    for shape in [(1, 4), (3, 5), (2, 3)]:
        x = rng.normal(size=shape)
        dy = nonzero(rng, shape)
        f = lambda z: jax.nn.softmax(z, axis=-1)  # noqa: E731
        dyj = f64(dy)
        drawn.append((x, dy, dyj, refs.value_and_vjp(f, (f64(x),), dyj)))
    answers = refs.run()
    cases = []
    for x, dy, dyj, h in drawn:
        y, (dx,) = answers[h]
        cases.append(Case(shape_label(y=x, dy=dy), (y, dyj), dx,
                          lambda y=np64(y), dy=dy: {"dx": _softmax_mistakes(y, dy)}))
    return cases


def _softmax_doc003():
    # 003: softmax output a = (0.706, 0.294) (the coef_o lines' operands), target (1, 0);
    # dy = ∂C/∂a = -target / a; "coef_o1 = out_1 - o_1 = 0.706 - 1 = -0.294".
    ex = notes_example("003")
    a = np.array([operand(ex, "coef_o1", "out_1"), operand(ex, "coef_o2", "out_2")])
    y, dy = f64(a[None, :]), f64((-np64(ex.target)[0] / a)[None, :])
    printed = [printed_number(ex, "coef_o1", "dx", (0, 0)),
               printed_number(ex, "coef_o2", "dx", (0, 1))]
    yn, dyn = np64(y), np64(dy)
    expected = f64(yn * (dyn - np.sum(dyn * yn, axis=-1, keepdims=True)))
    return DocCase("003's softmax output (0.706, 0.294), dy = ∂C/∂a for target (1, 0)",
                   (y, dy), expected, printed,
                   lambda: {"dx": _softmax_mistakes(np64(y), np64(dy))})


MODULE = "01_activations.py"

EXERCISES = (
    exercise("sigmoid_backward", "the sigmoid's backward pass", "000, 001, 004", ("dx",),
             _sigmoid_cases,
             [("doc000", "document 000's coef_o1 and coef_o2", _sigmoid_doc000)]),
    exercise("tanh_backward", "tanh's backward pass", "-", ("dx",), _tanh_cases),
    exercise("relu_backward", "relu's backward pass", "-", ("dx",), _relu_cases),
    exercise("softmax_backward", "softmax's backward pass, a vector-Jacobian product", "003",
             ("dx",), _softmax_cases,
             [("doc003", "document 003's coef_o through the softmax", _softmax_doc003)]),
)
