"""Grading specs of ``09_activations_more.py``: GELU (tanh form) and leaky relu."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (Case, MISSING_DERIVATIVE, References, case_rng, exercise, f64,
                                mistake, nonzero, shape_label)


GELU_C, GELU_A = math.sqrt(2 / math.pi), 0.044715


def _gelu(x):
    return 0.5 * x * (1 + jnp.tanh(GELU_C * (x + GELU_A * x ** 3)))


def _gelu_mistakes(x, dy):
    t = np.tanh(GELU_C * (x + GELU_A * x ** 3))
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))

    def with_inner(du):
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

    inner = mistake("inner-derivative", "the inner polynomial's derivative is wrong: u = c (x + "
                    "0.044715 x³), so du/dx = c (1 + 3 · 0.044715 x²)")
    return {"dx": [
        (mistake("erf-form", "that is the derivative of the erf form, Φ(x) + x φ(x): this "
                 "exercise's GELU is the tanh form, 0.5 x (1 + tanh(c (x + 0.044715 x³)))"),
         dy * (cdf + x * phi)),
        (inner, with_inner(GELU_C * (1 + GELU_A * x * x))),
        (inner, with_inner(GELU_C)),
        (inner, with_inner(1.0)),
        (inner, with_inner(GELU_C * (x + GELU_A * x ** 3))),
        (mistake("product-rule", "half of the product rule: y = (0.5 x) · (1 + tanh(u)); its "
                 "derivative has a term for each factor"),
         dy * 0.5 * (1 + t)),
        (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: you returned dy "
                 "unchanged; multiply it by GELU's derivative"), dy),
    ]}


def _gelu_cases():
    rng = case_rng("gelu_backward")
    refs, drawn = References(), []
    for shape in [(1, 4), (3, 5), (2, 3, 4)]:
        x, dy = 1.5 * nonzero(rng, shape, 0.1, 2.0), nonzero(rng, shape)
        drawn.append((x, dy, refs.vjp(_gelu, (f64(x),), f64(dy))))
    answers = refs.run()
    cases = []
    for x, dy, h in drawn:
        (dx,) = answers[h]
        cases.append(Case(shape_label(x=x, dy=dy), (f64(x), f64(dy)), dx,
                          lambda x=x, dy=dy: _gelu_mistakes(x, dy)))
    return cases


def _leaky_cases():
    rng = case_rng("leaky_relu_backward")
    refs, drawn = References(), []
    for shape, slope in [((1, 5), 0.01), ((4, 3), 0.2), ((2, 3, 3), 0.1)]:
        x, dy = nonzero(rng, shape, 0.1, 2.0), nonzero(rng, shape)
        f = lambda x, s=slope: jnp.where(x >= 0, x, s * x)  # noqa: E731
        drawn.append((slope, x, dy, refs.vjp(f, (f64(x),), f64(dy))))
    answers = refs.run()
    cases = []
    for slope, x, dy, h in drawn:
        (dx,) = answers[h]

        def candidates(x=x, dy=dy, s=slope):
            return {"dx": [
                (mistake("slope-wrong-side", "the slope is on the wrong side: dy passes "
                         "unchanged where x >= 0 and is multiplied by negative_slope where "
                         "x < 0"), np.where(x >= 0, s * dy, dy)),
                (mistake("missing-slope", "that is relu's backward: where x < 0 leaky relu "
                         "passes negative_slope * dy, not 0"), np.where(x >= 0, dy, 0.0)),
                (mistake("mask-from-dy", "masked by the sign of dy: the two sides are those of "
                         "the forward's input x"), np.where(dy >= 0, dy, s * dy)),
                (mistake(MISSING_DERIVATIVE, "missing the activation's derivative: you returned "
                         "dy unchanged"), dy),
            ]}
        cases.append(Case(shape_label(x=x, dy=dy) + f", negative_slope {slope}",
                          (f64(x), f64(dy), slope), dx, candidates))
    return cases


MODULE = "09_activations_more.py"

EXERCISES = (
    exercise("gelu_backward", "GELU (tanh form): a composite", "-", ("dx",), _gelu_cases),
    exercise("leaky_relu_backward", "leaky relu", "-", ("dx",), _leaky_cases),
)
