"""The exercise set: what each exercise gets, what it must return, and how it is checked.

Each :class:`Exercise` names a function in ``solutions/`` (and ``exercises/``), builds
its random cases (float64, several shapes including batch 1 and odd sizes, non-zero
data) with the expected answer from ``jax.vjp``/``jax.grad`` of a forward written here,
and lists the documents' printed numbers it must reproduce. Each case also knows the
wrong answers that common mistakes give on the same inputs, so that feedback can name
the mistake.

Checks and points, per exercise: ``shapes`` (1: every output has the right structure
and shapes), ``values`` (2, or 1 per output when there are several: equal to autodiff
on every case), one per document (1: the printed numbers at their printed precision),
``jit`` (1: still right under ``jax.jit``).
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxbp.grading._compare import Mistake

# ------------------------------------------------------------------ the data model


@dataclasses.dataclass
class Case:
    """One call of a learner's function, with the answer autodiff gives."""

    label: str                 # the inputs' shapes, for messages
    args: tuple
    expected: Any              # pytree, the exercise's outputs
    candidates: Callable[[], dict[str, list[tuple[Mistake, np.ndarray]]]] | None = None


@dataclasses.dataclass(frozen=True)
class Printed:
    """A number a document prints, and where the learner's output must reproduce it."""

    label: str      # e.g. "δ5 = ∂Error/∂w5"
    leaf: str       # the output leaf's name, e.g. "grads" or "new_params[2]['w']"
    index: tuple    # the entry in that leaf
    value: float
    decimals: int   # the printed precision: agreement within half a unit of it
    source: str     # the document and its line
    note: str = ""  # where the value is a correction of the document's
    offset: float = 0.0  # the document's number is offset + scale * the entry (e.g. an
    scale: float = 1.0   # updated weight k - α dk, from the learner's gradient dk)


@dataclasses.dataclass
class DocCase:
    """The documents' own inputs, and the numbers they print."""

    label: str
    args: tuple
    expected: Any   # the exact answer on these inputs (for shapes and diagnosis)
    printed: list[Printed]
    candidates: Callable[[], dict[str, list[tuple[Mistake, np.ndarray]]]] | None = None


@dataclasses.dataclass(frozen=True)
class DocCheck:
    key: str        # the check's name, e.g. "doc002"
    title: str      # e.g. "document 002's δ5..δ8 and the true δ1..δ4"
    make: Callable[[], DocCase]


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: a function the learner writes, and its checks."""

    number: int
    name: str
    module: str                      # its file in solutions/ and exercises/
    title: str
    documents: str                   # the documents it comes from, e.g. "000, 001, 004"
    outputs: tuple[str, ...]         # the names of its outputs, e.g. ("dx", "dw", "db")
    make_cases: Callable[[], list[Case]]
    docs: tuple[DocCheck, ...] = ()
    static_argnums: tuple[int, ...] = ()
    jit_case: int = 1
    layers_arg: bool = False         # serial_backward: walk the layers in feedback

    @property
    def checks(self) -> list[tuple[str, int]]:
        """``(check name, points)``, in the order they are graded."""
        out = [("shapes", 1)]
        if len(self.outputs) > 1:
            out += [(f"values_{n}", 1) for n in self.outputs]
        else:
            out += [("values", 2)]
        out += [(d.key, 1) for d in self.docs]
        out.append(("jit", 1))
        return out

    @property
    def max_points(self) -> int:
        return sum(p for _, p in self.checks)

    def cases(self) -> list[Case]:
        return _cases(self.name)

    def doc_case(self, key: str) -> DocCase:
        return _doc_case(self.name, key)


@functools.cache
def _cases(name):
    with jax.enable_x64(True):
        return BY_NAME[name].make_cases()


@functools.cache
def _doc_case(name, key):
    with jax.enable_x64(True):
        return next(d for d in BY_NAME[name].docs if d.key == key).make()


# ------------------------------------------------------------------ helpers


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _nonzero(rng, shape, lo=0.2, hi=1.5) -> np.ndarray:
    """Random entries bounded away from zero, of both signs (a zero hides mistakes)."""
    return rng.choice(np.array([-1.0, 1.0]), size=shape) * rng.uniform(lo, hi, size=shape)


def _f64(a) -> jax.Array:
    return jnp.asarray(a, dtype=jnp.float64)


def _np(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _vjp(f, primals, cotangent):
    """``jax.vjp`` of ``f`` at ``primals``, applied to ``cotangent``, in one compiled call
    (a case costs one compilation instead of one per operation)."""
    return jax.jit(lambda p, c: jax.vjp(f, *p)[1](c))(tuple(primals), cotangent)


def _grad(f, *args):
    return jax.jit(jax.grad(f))(*args)


def _out_shape(f, *args):
    return jax.eval_shape(f, *args).shape


def _shapes(**arrays) -> str:
    return ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in arrays.items())


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _notes(name):
    from jaxbp import notes

    return notes.load(name)


def _rec(example, name):
    """The record of a number the document prints, by its name in jaxbp.notes."""
    return next(p for p in example.printed if p.name == name)


def _operand(example, record, quantity) -> float:
    """A number as a document's line writes it (the first operand of that quantity)."""
    return float(dict(_rec(example, record).operands)[quantity])


def _ref(example, name):
    return next(r for r in example.param_table if r.name == name)


def _param(example, name) -> float:
    ref = _ref(example, name)
    return float(np.asarray(example.params[ref.layer][ref.key])[ref.index])


def _printed(example, name, leaf, index, label=None) -> Printed:
    """A printed number from jaxbp.notes; where it is a slip, the corrected value."""
    rec = _rec(example, name)
    value, note = rec.value, ""
    err = rec.erratum
    if err is not None and err.kind == "value" and isinstance(err.corrected, float):
        value, note = err.corrected, f"corrected: {err.what}"
    return Printed(label or rec.label or rec.name, leaf, tuple(index), float(value),
                   rec.decimals, _source(example, rec), note)


def _source(example, rec) -> str:
    """``document 002, Backward: gradients of w5..w8: "δ5 = ... = 0.03"``."""
    return (f'document {example.name}, {rec.section}: "{rec.label or rec.name} = ... = '
            f'{rec.text}"')


# Mistakes named in the learner's terms, shared by several exercises.
MISSING_DERIVATIVE = "missing-derivative"


def _m(key, message):
    return Mistake(key, message)


# ------------------------------------------------------------------ 01 activations


def _activation_cases(name, forward, shapes, keep, extra):
    rng = _rng(name)
    cases = []
    for shape in shapes:
        x = _nonzero(rng, shape, 0.2, 2.0)
        dy = _nonzero(rng, shape)
        xj, dyj = _f64(x), _f64(dy)
        y = jax.jit(forward)(xj)
        (dx,) = _vjp(forward, (xj,), dyj)
        first = xj if keep == "x" else y
        args = (first, dyj)

        def candidates(x=x, y=_np(y), dy=dy):
            return {"dx": extra(x, y, dy)}

        cases.append(Case(_shapes(**{keep: x, "dy": dy}), args, dx, candidates))
    return cases


def _sigmoid_mistakes(x, y, dy):
    del x
    return [
        (_m(MISSING_DERIVATIVE, "missing the activation's derivative: you returned dy "
            "unchanged; the chain rule multiplies it by the sigmoid's derivative"), dy),
        (_m("missing-dy", "missing dy: you returned the sigmoid's derivative alone; the "
            "chain rule multiplies it by the upstream gradient dy"), y * (1 - y)),
        (_m("output-as-input", "you applied the sigmoid to y again: y is already the "
            "sigmoid's output, so the derivative is y (1 - y) itself"),
         dy * _sigmoid(y) * (1 - _sigmoid(y))),
    ]


def _sigmoid_cases():
    return _activation_cases("sigmoid_backward", jax.nn.sigmoid,
                             [(1, 3), (3, 5), (4, 2)], "y", _sigmoid_mistakes)


def _sigmoid_doc000():
    # 000's output layer: out_o = (0.926, 0.919), targets (0.01, 0.99); the coef_o1 line
    # writes out_o1 as 0.916 (a slip: its result 0.0628 needs 0.926), so dy = out - target.
    ex = _notes("000")
    out = np.array([_rec(ex, "out_o1").value, _rec(ex, "out_o2").value])
    y, dy = _f64(out[None, :]), _f64((out - _np(ex.target)[0])[None, :])
    printed = [_printed(ex, "coef_o1", "dx", (0, 0)), _printed(ex, "coef_o2", "dx", (0, 1))]
    return DocCase("000's output layer: y = out_o = (0.926, 0.919), dy = out_o - target",
                   (y, dy), dy * y * (1 - y), printed,
                   lambda: {"dx": _sigmoid_mistakes(None, _np(y), _np(dy))})


def _tanh_cases():
    def extra(x, y, dy):
        del x
        return [
            (_m(MISSING_DERIVATIVE, "missing the activation's derivative: you returned dy "
                "unchanged; multiply it by tanh's derivative"), dy),
            (_m("missing-dy", "missing dy: you returned tanh's derivative alone; the chain "
                "rule multiplies it by dy"), 1 - y * y),
            (_m("missing-square", "tanh's derivative is 1 - y², not 1 - y"), dy * (1 - y)),
            (_m("output-as-input", "you applied tanh to y again: y is already tanh's "
                "output, so the derivative is 1 - y² itself"), dy * (1 - np.tanh(y) ** 2)),
        ]
    return _activation_cases("tanh_backward", jnp.tanh, [(1, 4), (3, 5), (5, 2)], "y", extra)


def _relu_cases():
    def extra(x, y, dy):
        del y
        return [
            (_m(MISSING_DERIVATIVE, "missing the activation's derivative: you returned dy "
                "unchanged; relu passes dy only where x > 0"), dy),
            (_m("inverted-mask", "the mask is inverted: relu passes dy where x > 0 and "
                "blocks it where x < 0"), np.where(x < 0, dy, 0.0)),
            (_m("mask-from-dy", "masked by the sign of dy: the mask comes from the "
                "forward's input x (where x > 0)"), np.maximum(dy, 0.0)),
            (_m("missing-dy", "missing dy: you returned relu's derivative (0 or 1) alone; "
                "multiply it by dy"), (x > 0).astype(np.float64)),
        ]
    return _activation_cases("relu_backward", jax.nn.relu, [(1, 3), (3, 6), (4, 5)], "x", extra)


def _softmax_mistakes(y, dy):
    return [
        (_m("diagonal-only", "only the Jacobian's diagonal: you used ∂a_i/∂z_i = "
            "a_i (1 - a_i) and left out the terms i ≠ j, -a_i a_j (003)"),
         dy * y * (1 - y)),
        (_m("wrong-axis", "summed over the wrong axis: the sum runs over the classes "
            "(the last axis) of each example, not over the batch"),
         y * (dy - np.sum(dy * y, axis=0, keepdims=True))),
        (_m("missing-dy", "missing dy: the vector-Jacobian product multiplies the "
            "Jacobian by dy"), y * (1 - y)),
    ]


def _softmax_cases():
    rng = _rng("softmax_backward")
    cases = []
    for shape in [(1, 4), (3, 5), (2, 3)]:
        x = rng.normal(size=shape)
        dy = _nonzero(rng, shape)
        f = lambda z: jax.nn.softmax(z, axis=-1)  # noqa: E731
        xj, dyj = _f64(x), _f64(dy)
        y = jax.jit(f)(xj)
        (dx,) = _vjp(f, (xj,), dyj)
        cases.append(Case(_shapes(y=x, dy=dy), (y, dyj), dx,
                          lambda y=_np(y), dy=dy: {"dx": _softmax_mistakes(y, dy)}))
    return cases


def _softmax_doc003():
    # 003: softmax output a = (0.706, 0.294) (the coef_o lines' operands), target (1, 0);
    # dy = ∂C/∂a = -target / a; "coef_o1 = out_1 - o_1 = 0.706 - 1 = -0.294".
    ex = _notes("003")
    a = np.array([_operand(ex, "coef_o1", "out_1"), _operand(ex, "coef_o2", "out_2")])
    y, dy = _f64(a[None, :]), _f64((-_np(ex.target)[0] / a)[None, :])
    printed = [_printed(ex, "coef_o1", "dx", (0, 0)), _printed(ex, "coef_o2", "dx", (0, 1))]
    expected = y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))
    return DocCase("003's softmax output (0.706, 0.294), dy = ∂C/∂a for target (1, 0)",
                   (y, dy), expected, printed,
                   lambda: {"dx": _softmax_mistakes(_np(y), _np(dy))})


# ------------------------------------------------------------------ 02 losses


BATCH_MEAN = ("batch-mean", "missing the batch mean: the loss is the mean over the batch, "
              "so its gradient carries a factor 1/batch")


def _loss_cases(name, output, loss, make_inputs, shapes, extra):
    rng = _rng(name)
    cases = []
    for shape in shapes:
        pred, target = make_inputs(rng, shape)
        pj, tj = _f64(pred), _f64(target)
        expected = _grad(loss, pj, tj)

        def candidates(pred=pred, target=target, expected=_np(expected)):
            batch = pred.shape[0]
            out = list(extra(pred, target, expected))
            if batch > 1:
                out.append((_m(*BATCH_MEAN), expected * batch))
            return {output: out}

        cases.append(Case(_shapes(pred=pred, target=target), (pj, tj), expected, candidates))
    return cases


def _half_mse(pred, target):
    return jnp.mean(0.5 * jnp.sum((pred - target) ** 2, axis=1))


def _half_mse_mistakes(pred, target, expected):
    batch = pred.shape[0]
    out = [(_m("factor-2", "a factor of 2: that is the gradient of the squared error "
               "without the 1/2; half-MSE's 1/2 cancels the square's 2"), 2 * expected)]
    if batch > 1:
        out.append((_m("factor-2", "a factor of 2 (the squared error without the 1/2) and "
                       "missing the batch mean (divide by the batch size)"),
                    2 * expected * batch))
    return out


def _half_mse_cases():
    def inputs(rng, shape):
        return _nonzero(rng, shape), _nonzero(rng, shape)
    return _loss_cases("half_mse_backward", "dpred", _half_mse, inputs, [(1, 2), (3, 4), (5, 1)],
                       _half_mse_mistakes)


def _half_mse_doc002():
    # 002: "δ_o1 = ∂Error/∂o_1 = o_1 - 0.23 = 0.25", "δ_o2 = o_2 - (-0.07) = 0.60", with
    # the printed o1 = 0.48, o2 = 0.53 (one example: the batch mean divides by 1).
    ex = _notes("002")
    pred = _f64([[_rec(ex, "o1").value, _rec(ex, "o2").value]])
    target = _f64(ex.target)
    printed = [_printed(ex, "delta_o1", "dpred", (0, 0)),
               _printed(ex, "delta_o2", "dpred", (0, 1))]
    return DocCase("002: o = (0.48, 0.53), labels (0.23, -0.07)", (pred, target),
                   pred - target, printed,
                   lambda: {"dpred": _half_mse_mistakes(_np(pred), _np(target),
                                                        _np(pred - target))})


def _softmax_xent(logits, target):
    return jnp.mean(-jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def _xent_mistakes(logits, target, expected):
    batch = logits.shape[0]
    return [(_m("logits-for-probs", "used the logits z where the softmax probabilities "
                "a = softmax(z) belong: the gradient is a - y"), (logits - target) / batch)]


def _softmax_xent_cases():
    def inputs(rng, shape):
        logits = 2 * rng.normal(size=shape)
        if shape[0] == 4:  # probability rows
            t = rng.uniform(0.1, 1.0, size=shape)
            return logits, t / t.sum(axis=1, keepdims=True)
        return logits, np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
    return _loss_cases("softmax_cross_entropy_backward", "dlogits", _softmax_xent, inputs,
                       [(1, 3), (4, 5), (3, 2)], _xent_mistakes)


def _xent_doc003():
    # 003's output layer: M = f @ W_M + b_M with the printed f = (0.608, 0.392) (operands of
    # the coef_f lines) and the initial output weights; target (1, 0);
    # "coef_o1 = 0.706 - 1 = -0.294".
    ex = _notes("003")
    f = np.array([_operand(ex, "coef_f1", "out_f1"), _operand(ex, "coef_f2", "out_f2")])
    layer = ex.params[6]
    logits = _f64((f @ _np(layer["w"]) + _np(layer["b"]))[None, :])
    target = _f64(ex.target)
    printed = [_printed(ex, "coef_o1", "dlogits", (0, 0)),
               _printed(ex, "coef_o2", "dlogits", (0, 1))]
    expected = _grad(_softmax_xent, logits, target)
    return DocCase("003's output layer: M from f = (0.608, 0.392), target (1, 0)",
                   (logits, target), expected, printed,
                   lambda: {"dlogits": _xent_mistakes(_np(logits), _np(target),
                                                      _np(expected))})


def _bce(prob, target):
    per = -(target * jnp.log(prob) + (1 - target) * jnp.log1p(-prob))
    return jnp.mean(jnp.sum(per, axis=1))


def _bce_cases():
    def inputs(rng, shape):
        p = rng.uniform(0.05, 0.95, size=shape)
        t = rng.integers(0, 2, size=shape).astype(np.float64)
        if shape[0] == 3:
            t = rng.uniform(0.0, 1.0, size=shape)
        return p, t

    def extra(p, t, expected):
        batch = p.shape[0]
        return [(_m("simplified-too-early", "that is the gradient with respect to the "
                    "sigmoid's input, p - y (exercise 8); with respect to the probability "
                    "p it is -y/p + (1 - y)/(1 - p)"), (p - t) / batch)]
    return _loss_cases("binary_cross_entropy_backward", "dprob", _bce, inputs,
                       [(1, 3), (3, 4), (4, 1)], extra)


def _sigmoid_bce(logits, target):
    return _bce(jax.nn.sigmoid(logits), target)


def _sigmoid_bce_cases():
    def inputs(rng, shape):
        return 1.5 * _nonzero(rng, shape, 0.1, 1.5), rng.integers(0, 2, size=shape).astype(
            np.float64)

    def extra(z, t, expected):
        batch = z.shape[0]
        p = _sigmoid(z)
        return [
            (_m(MISSING_DERIVATIVE, "missing the sigmoid's derivative: that is ∂L/∂p; "
                "∂L/∂z multiplies it by ∂p/∂z = p (1 - p), and 004's product simplifies "
                "to p - y"), (-t / p + (1 - t) / (1 - p)) / batch),
            (_m("logits-for-probs", "used the logit z where p = sigmoid(z) belongs: the "
                "gradient is sigmoid(z) - y"), (z - t) / batch),
        ]
    return _loss_cases("sigmoid_binary_cross_entropy_backward", "dlogits", _sigmoid_bce, inputs,
                       [(1, 2), (3, 3), (5, 2)], extra)


# ------------------------------------------------------------------ 03 dense


BIAS_AXIS = "bias-axis"


def _dense_mistakes(x, w, dy):
    del w
    return {
        "dw": [(_m("transposed", "transposed: your dw is dy.T @ x, the transpose of the "
                   "right one; dw[j, k] pairs input unit j with output unit k, as w does"),
                dy.T @ x)],
        "db": [
            (_m(BIAS_AXIS, "bias gradient summed over the wrong axis: db has one entry per "
                "output unit, so sum dy over the batch axis (axis 0)"), dy.sum(axis=1)),
            (_m("bias-mean", "db averaged over the batch: sum it; the loss's 1/batch is "
                "already inside dy"), dy.mean(axis=0)),
        ],
    }


def _dense_cases():
    rng = _rng("dense_backward")
    cases = []
    for batch, n_in, n_out in [(1, 3, 2), (3, 5, 4), (4, 4, 4)]:
        x, w = _nonzero(rng, (batch, n_in)), _nonzero(rng, (n_in, n_out))
        b, dy = _nonzero(rng, (n_out,)), _nonzero(rng, (batch, n_out))
        f = lambda x, w, b: x @ w + b[None, :]  # noqa: E731
        expected = _vjp(f, (_f64(x), _f64(w), _f64(b)), _f64(dy))
        cases.append(Case(_shapes(x=x, w=w, dy=dy), (_f64(x), _f64(w), _f64(dy)),
                          tuple(expected),
                          lambda x=x, w=w, dy=dy: _dense_mistakes(x, w, dy)))
    return cases


def _dense_doc002():
    # 002's output layer: x = h = (0.56, 0.50) as printed; w[j, k] from h_j to o_k (w5,
    # w7 into o1; w6, w8 into o2); dy = ∂Error/∂In_o = δ_o · o (1 - o) on the printed
    # δ_o1 = 0.25, o1 = 0.48, δ_o2 = 0.60, o2 = 0.53. δ5..δ8 = ∂Error/∂w5..w8 are dw.
    ex = _notes("002")
    x = _f64([[_rec(ex, "h1").value, _rec(ex, "h2").value]])
    w = _f64(ex.params[2]["w"])
    o = np.array([_rec(ex, "o1").value, _rec(ex, "o2").value])
    delta_o = np.array([_rec(ex, "delta_o1").value, _rec(ex, "delta_o2").value])
    dy = _f64((delta_o * o * (1 - o))[None, :])
    expected = (dy @ w.T, x.T @ dy, jnp.sum(dy, axis=0))
    printed = [_printed(ex, f"delta{i}", "dw", _ref(ex, f"w{i}").index) for i in (5, 6, 7, 8)]
    return DocCase("002's output layer: x = h = (0.56, 0.50), w = (w5 w6; w7 w8)",
                   (x, w, dy), expected, printed,
                   lambda: _dense_mistakes(_np(x), _np(w), _np(dy)))


# ------------------------------------------------------------------ 04 sgd


def _sgd_mistakes(p, g, lr):
    return [
        (_m("ascent", "moved up the gradient: gradient descent subtracts lr * grad"),
         p + lr * g),
        (_m("missing-lr", "missing the learning rate: the step is lr * grad"), p - g),
        (_m("step-only", "returned the step -lr * grad; return the updated parameter, "
            "param - lr * grad"), -lr * g),
    ]


def _tree_candidates(name, params, grads, lr):
    """Per-leaf sgd mistakes, named as the comparison names the leaves."""
    out = {}
    flat_p = jax.tree_util.tree_flatten_with_path(params)[0]
    flat_g = jax.tree.leaves(grads)
    for (path, p), g in zip(flat_p, flat_g):
        out[name + jax.tree_util.keystr(path)] = _sgd_mistakes(_np(p), _np(g), lr)
    return out


def _sgd_cases():
    rng = _rng("sgd_update")
    cases = []
    trees = [
        ({"w": (3, 2), "b": (2,)}, 0.7),
        (({"w": (4, 3), "b": (3,)}, (), {"w": (3, 1)}), 0.05),
        ((5,), 1.5),
    ]
    for shapes, lr in trees:
        is_shape = lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s)  # noqa: E731
        params = jax.tree.map(lambda s: _f64(_nonzero(rng, s)), shapes, is_leaf=is_shape)
        grads = jax.tree.map(lambda s: _f64(_nonzero(rng, s)), shapes, is_leaf=is_shape)
        expected = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        label = f"params {jax.tree.map(lambda a: tuple(a.shape), params)}, lr {lr}"
        cases.append(Case(label, (params, grads, lr), expected,
                          lambda params=params, grads=grads, lr=lr:
                          _tree_candidates("new_params", params, grads, lr)))
    return cases


def _sgd_doc000():
    # 000's output layer (w13..w18, b6, b7), α = 0.7. The gradients from the printed
    # coef_o1 = 0.0628, coef_o2 = -0.0053 and the out_hh the update lines write (0.759,
    # 0.806, 0.813): ∂E/∂w13 = coef_o1 · out_hh1 and so on, ∂E/∂b6 = coef_o1.
    ex = _notes("000")
    layer = ex.params[4]
    params = {"w": _f64(layer["w"]), "b": _f64(layer["b"])}
    coef = np.array([_rec(ex, "coef_o1").value, _rec(ex, "coef_o2").value])
    out_hh = np.array([_operand(ex, f"w{13 + i}_new", f"out_hh{i + 1}") for i in range(3)])
    grads = {"w": _f64(np.outer(out_hh, coef)), "b": _f64(coef)}
    lr = ex.learning_rate
    expected = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    printed = [_printed(ex, f"{name}_new", f"new_params['{_ref(ex, name).key}']",
                        _ref(ex, name).index)
               for name in ("w13", "w14", "w15", "w16", "w17", "w18", "b6", "b7")]
    return DocCase("000's output layer, α = 0.7", (params, grads, lr), expected, printed,
                   lambda: _tree_candidates("new_params", params, grads, lr))


# ------------------------------------------------------------------ 05 pool


def _pool_forward(x, window):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *window, 1), "VALID")


def _pool_mistakes(x, dy, window, expected):
    wh, ww = window
    oh, ow = dy.shape[1], dy.shape[2]
    spread = np.zeros_like(x)
    spread[:, :oh * wh, :ow * ww, :] = np.repeat(np.repeat(dy, wh, axis=1), ww, axis=2)
    return {"dx": [
        (_m("every-entry", "sent dy to every entry of the window: only the window's "
            "maximum gets it (003: the error goes to C2 and C3 only)"), spread),
        (_m("average", "spread dy evenly over the window: that is average pooling's "
            "backward; max pooling gives all of it to the maximum"), spread / (wh * ww)),
        (_m("crop", "dx must have x's shape: the rows and columns no window covers get "
            "gradient 0 (pad them back)"), expected[:, :oh * wh, :ow * ww, :]),
    ]}


def _pool_cases():
    rng = _rng("max_pool2d_backward")
    cases = []
    for shape, window in [((1, 4, 4, 1), 2), ((2, 5, 7, 3), (2, 3)), ((3, 6, 4, 2), 3)]:
        win = (window, window) if isinstance(window, int) else window
        x = rng.normal(size=shape)
        xj = _f64(x)
        f = lambda x, win=win: _pool_forward(x, win)  # noqa: E731
        dy = _nonzero(rng, _out_shape(f, xj))
        (dx,) = _vjp(f, (xj,), _f64(dy))
        cases.append(Case(_shapes(x=x, dy=dy) + f", window {window!r}", (xj, _f64(dy), window),
                          dx, lambda x=x, dy=dy, win=win, dx=_np(dx):
                          _pool_mistakes(x, dy, win, dx)))
    return cases


def _pool_doc003():
    # 003's pooling: P1 = max(C1, C2), P2 = max(C3, C4), C = (0.625, 0.629, 0.384, 0.380)
    # as the coef_c lines write them; laid out as (batch 1, 1 row, 2 columns, 2
    # channels): column 0 holds (C1, C3), column 1 (C2, C4); window (1, 2). dy = coef_p =
    # (0.0004, 0.002). The coef_c lines route with a factor 1 to C2 and C3 and 0 to C1 and
    # C4 ("coeff_c1 = 0.0004 · 0 · ...", "coeff_c2 = ... · 1 · ...").
    ex = _notes("003")
    c = [_operand(ex, f"coef_c{k}", f"out_c{k}") for k in (1, 2, 3, 4)]
    p = [_rec(ex, "coef_p1"), _rec(ex, "coef_p2")]
    x = _f64([[[[c[0], c[2]], [c[1], c[3]]]]])
    dy = _f64([[[[p[0].value, p[1].value]]]])
    window = (1, 2)
    (expected,) = _vjp(lambda x: _pool_forward(x, window), (x,), dy)
    printed = []
    for k, index, pool in [(1, (0, 0, 0, 0), 0), (2, (0, 0, 1, 0), 0), (3, (0, 0, 0, 1), 1),
                           (4, (0, 0, 1, 1), 1)]:
        route = _operand(ex, f"coef_c{k}", f"route_c{k}")
        rec = _rec(ex, f"coef_c{k}")
        printed.append(Printed(f"C{k} gets coef_p{pool + 1} · {route:g}", "dx", index,
                               route * p[pool].value, p[pool].decimals,
                               _source(ex, rec) + f" (its routing factor {route:g})"))
    return DocCase("003: C = (0.625, 0.629, 0.384, 0.380), dy = coef_p = (0.0004, 0.002)",
                   (x, dy, window), expected, printed,
                   lambda: _pool_mistakes(_np(x), _np(dy), window, _np(expected)))


# ------------------------------------------------------------------ 06 documents


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
    h1, h2 = _sigmoid(w1 * x[0] + w3 * x[1]), _sigmoid(w2 * x[0] + w4 * x[1])
    o1, o2 = _sigmoid(w5 * h1 + w7 * h2), _sigmoid(w6 * h1 + w8 * h2)
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
            (_m("doc002-slip", "document 002's slip: δ1 = (δ5 + δ6) h1 (1 - h1) x1 adds "
                "weight gradients; the chain rule needs the error signals times the "
                "weights, (δ_o1 o1 (1 - o1) w5 + δ_o2 o2 (1 - o2) w6) h1 (1 - h1) x1"), slip),
            (_m(MISSING_DERIVATIVE, "missing the activation's derivative: ∂o/∂In_o = "
                "o (1 - o) belongs in every δ"), nod),
            (_m("numbering", "the weights' numbering: in 002, w1 and w3 feed h1, w2 and w4 "
                "feed h2, w5 and w7 feed o1, w6 and w8 feed o2"), other),
        ],
        "new_w": [
            (_m("ascent", "moved up the gradient: the step subtracts lr * δ"), w + lr * right),
            (_m("doc002-slip", "document 002's slip (δ1..δ4 from δ5 + δ6): see grads"),
             w - lr * slip),
        ],
    }


def _doc002_cases():
    rng = _rng("doc002_step")
    cases = []
    for lr in (1.0, 0.5, 2.0):
        w, x, y = _nonzero(rng, (8,), 0.1, 1.0), _nonzero(rng, (2,), 0.1, 1.0), rng.uniform(
            -0.5, 1.0, size=(2,))
        grads = _grad(_doc002_error, _f64(w), _f64(x), _f64(y))
        cases.append(Case(f"random w (8,), x (2,), y (2,), lr {lr}",
                          (_f64(w), _f64(x), _f64(y), lr), (grads, _f64(w) - lr * grads),
                          lambda w=w, x=x, y=y, lr=lr: _doc002_mistakes(w, x, y, lr)))
    return cases


def _doc002_doc():
    # 002: w1..w8 = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8; x = (0.5, 0.3); labels
    # (0.23, -0.07); η = 1. Printed δ5..δ8 = 0.03, 0.08, 0.03, 0.07. Its δ1..δ4 lines print
    # 0.01 from the wrong formula (δ5 + δ6) h1 (1 - h1) x1; the chain rule gives -0.0084,
    # 0.0126, -0.0051, 0.0076: -0.01, 0.01, -0.01, 0.01 at the document's two decimals.
    ex = _notes("002")
    w = np.array([_param(ex, f"w{i}") for i in range(1, 9)])
    x, y, lr = _np(ex.x)[0], _np(ex.target)[0], ex.learning_rate
    grads = _grad(_doc002_error, _f64(w), _f64(x), _f64(y))
    printed = [_printed(ex, f"delta{i}", "grads", (i - 1,), f"δ{i} = ∂Error/∂w{i}")
               for i in (5, 6, 7, 8, 1, 2, 3, 4)]
    return DocCase("002: w1..w8 = (0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8), x = (0.5, "
                   "0.3), labels (0.23, -0.07), η = 1",
                   (_f64(w), _f64(x), _f64(y), lr), (grads, _f64(w) - lr * grads), printed,
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


_DOC000_REFERENCE = jax.jit(_doc000_reference, static_argnums=(4,))


def _doc000_np(params, x, target, lr, convention):
    """The same step in numpy (for the mistakes' wrong answers)."""
    acts = [x]
    for layer in params:
        acts.append(_sigmoid(acts[-1] @ layer["w"] + layer["b"]))
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
    params = jax.tree.map(_np, params)
    x, target = _np(x), _np(target)
    other = "standard" if convention == "notes" else "notes"
    wrong = _doc000_np(params, x, target, lr, other)
    right = _doc000_np(params, x, target, lr, convention)
    ascent = jax.tree.map(lambda p, n: 2 * p - n, params, right)
    if convention == "standard":
        mix = _m("updated-weights", "updated weights used where the old ones belong: "
                 "textbook backprop (convention 'standard') carries the error down "
                 "through the weights of the forward pass, not the just-updated ones")
    else:
        mix = _m("old-weights", "old weights used where the updated ones belong: the "
                 "documents' convention ('notes') updates a layer first and carries the "
                 "error down through its new weights (000: coef_hh1 uses w13 = 0.962)")
    out = {}
    for (path, w_leaf), a_leaf in zip(jax.tree_util.tree_flatten_with_path(wrong)[0],
                                      jax.tree.leaves(ascent)):
        out["new_params" + jax.tree_util.keystr(path)] = [
            (mix, w_leaf),
            (_m("ascent", "moved up the gradient: each update subtracts lr * gradient"),
             a_leaf)]
    return out


def _doc000_random(rng, sizes):
    params = tuple({"w": _nonzero(rng, (n_in, n_out), 0.3, 1.5),
                    "b": _nonzero(rng, (n_out,), 0.1, 1.0)}
                   for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    x = rng.uniform(0.1, 1.0, size=(sizes[0],))
    target = rng.uniform(0.0, 1.0, size=(sizes[-1],))
    return params, x, target


def _doc000_cases():
    rng = _rng("doc000_step")
    cases = []
    for sizes, convention, lr in [((3, 2, 3, 2), "standard", 0.7), ((3, 2, 3, 2), "notes", 0.7),
                                  ((2, 4, 3), "notes", 1.5), ((1, 3, 1, 2, 2), "standard", 2.0)]:
        params, x, target = _doc000_random(rng, sizes)
        pj = jax.tree.map(_f64, params)
        expected = _DOC000_REFERENCE(pj, _f64(x), _f64(target), lr, convention)
        label = f"layers {'-'.join(map(str, sizes))}, lr {lr}, convention {convention!r}"
        cases.append(Case(label, (pj, _f64(x), _f64(target), lr, convention), expected,
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

    ex = _notes("000")
    dense = [i for i, p in enumerate(ex.params) if p != ()]
    params = tuple({k: _f64(v) for k, v in ex.params[i].items()} for i in dense)
    x, target, lr = _f64(ex.x[0]), _f64(ex.target[0]), ex.learning_rate
    expected = _DOC000_REFERENCE(params, x, target, lr, "notes")
    exact = {row.name: row.notes for row in notes.compare(ex)}
    printed = []
    for ref in ex.param_table:
        rec = next((p for p in ex.printed if p.name == f"{ref.name}_new"), None)
        if rec is None:
            continue
        record = _printed(ex, rec.name, f"new_params[{dense.index(ref.layer)}]['{ref.key}']",
                          ref.index, ref.name)
        if rec.erratum is None and abs(exact[rec.name] - rec.value) > 0.5 * 10.0 ** -rec.decimals:
            continue  # carried rounding, not exact arithmetic, gives this one
        printed.append(record)
    return DocCase("000: the 3-2-3-2 network, x = (0.1, 0.2, 0.3), target (0.01, 0.99), "
                   "α = 0.7, convention 'notes'",
                   (params, x, target, lr, "notes"), expected, printed,
                   lambda: _doc000_mistakes(params, x, target, lr, "notes"))


# ------------------------------------------------------------------ 07 conv


def _conv_forward(x, w, b, strides, pads):
    n = x.ndim - 2
    dims = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[n]
    y = lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=dims)
    return y + b.reshape((1,) * (n + 1) + (-1,))


def _np_conv_dx(w, dy, in_shape, strides, pads):
    """dx by scattering dy * w tap by tap (numpy), for the mistakes' wrong answers."""
    n = len(strides)
    ksize = w.shape[:n]
    padded = [s + lo + hi for s, (lo, hi) in zip(in_shape[1:1 + n], pads)]
    dxp = np.zeros((in_shape[0], *padded, in_shape[-1]))
    out = dy.shape[1:1 + n]
    for tap in np.ndindex(*ksize):
        sl = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(tap, out, strides))
        dxp[(slice(None), *sl, slice(None))] += np.einsum("...o,io->...i", dy, w[tap])
    crop = tuple(slice(lo, lo + s) for s, (lo, _) in zip(in_shape[1:1 + n], pads))
    return dxp[(slice(None), *crop, slice(None))]


def _conv_mistakes(x, w, dy, strides, pads, expected):
    n = len(strides)
    flipped = w[(slice(None, None, -1),) * n]
    dx_unflipped = _np_conv_dx(flipped, dy, x.shape, strides, pads)
    dx, dw, db = (_np(e) for e in expected)
    return {
        "dx": [(_m("kernel-not-flipped", "kernel not flipped: the input gradient is a full "
                   "convolution of dy with the flipped kernel (004: pixel a21 meets W21, "
                   "W20, W11, W10); or, tap by tap, each input entry gets dy * w at the "
                   "tap that saw it"), dx_unflipped)],
        "dw": [
            (_m("in-out-swapped", "the kernel's in and out channel axes are swapped: dw has "
                "w's shape (..., in, out)"), np.swapaxes(dw, -1, -2)),
            (_m("dw-flipped", "dw is reversed along the kernel's spatial axes: correlate x "
                "with dy (tap j sees x[o * stride + j]); don't convolve"),
             dw[(slice(None, None, -1),) * n]),
        ],
        "db": [
            (_m(BIAS_AXIS, "bias gradient summed over the wrong axes: db has one entry per "
                "output channel, so sum dy over the batch and every spatial axis"),
             dy.sum(axis=0)),
            (_m(BIAS_AXIS, "bias gradient summed over the wrong axes: sum dy over the batch "
                "as well as the spatial axes"), dy.sum(axis=tuple(range(1, n + 1)))),
        ],
    }


def _conv1d_cases():
    rng = _rng("conv1d_backward")
    cases = []
    for batch, length, c_in, c_out, k, stride, padding in [
            (1, 5, 1, 2, 3, 1, 0), (2, 7, 2, 3, 3, 2, 1), (3, 8, 2, 1, 2, 3, (1, 0))]:
        lo, hi = (padding, padding) if isinstance(padding, int) else padding
        x, w = _nonzero(rng, (batch, length, c_in)), _nonzero(rng, (k, c_in, c_out))
        b = _nonzero(rng, (c_out,))
        f = lambda x, w, b, s=stride, p=((lo, hi),): _conv_forward(x, w, b, (s,), p)  # noqa: E731
        dy = _nonzero(rng, _out_shape(f, _f64(x), _f64(w), _f64(b)))
        expected = _vjp(f, (_f64(x), _f64(w), _f64(b)), _f64(dy))
        label = _shapes(x=x, w=w, dy=dy) + f", stride {stride}, padding {padding!r}"
        cases.append(Case(label, (_f64(x), _f64(w), _f64(dy), stride, padding),
                          tuple(expected),
                          lambda x=x, w=w, dy=dy, s=stride, p=((lo, hi),), e=expected:
                          _conv_mistakes(x, w, dy, (s,), p, e)))
    return cases


def _conv1d_doc003():
    # 003's convolution as jaxbp.notes holds it: the input i1 = 0.1 seen as the signal
    # (0, i1, 0), padding 1, stride 2, kernels k1 = (0.1, 0.2, 0.3) (channel 0) and
    # k2 = (0.3, 0.2, 0.1) (channel 1), w[j, 0, c] = k_{c+1, j+1}. Under cross-correlation
    # the positions come out reversed with respect to the document's names: position 0
    # holds C2 and C4, position 1 holds C1 and C3. dy = the document's coef_c (one
    # figure): coef_c1 = 0, coef_c2 = 0.0001, coef_c3 = 0.0005, coef_c4 = 0. Its K lines:
    # ∂E/∂k11 = coef_c1 · i1 + coef_c2 · 0, ∂E/∂k13 = coef_c2 · i1, ∂E/∂k21 = coef_c3 · i1,
    # ∂E/∂k23 = coef_c4 · i1; b lines: ∂E/∂b1 = coef_c1 + coef_c2, ∂E/∂b2 = coef_c3 +
    # coef_c4; then K = k - α ∂E/∂k and b = b - α ∂E/∂b, printed to one decimal.
    ex = _notes("003")
    layer = ex.params[0]
    x, w = _f64(ex.x), _f64(layer["w"])
    coef = {k: _rec(ex, f"coef_c{k}").value for k in (1, 2, 3, 4)}
    dy = _f64([[[coef[2], coef[4]], [coef[1], coef[3]]]])
    i1, lr = float(_np(ex.x)[0, 1, 0]), ex.learning_rate
    f = lambda x, w, b: _conv_forward(x, w, b, (2,), ((1, 1),))  # noqa: E731
    expected = tuple(_vjp(f, (x, w, _f64(layer["b"])), dy))
    grads = [  # (kernel entry, its gradient by the document's K lines, label)
        ((0, 0, 0), coef[1] * i1 + coef[2] * 0, "∂E/∂k11 = coef_c1 · i1 + coef_c2 · 0"),
        ((1, 0, 0), coef[1] * 0 + coef[2] * 0, "∂E/∂k12 = coef_c1 · 0 + coef_c2 · 0"),
        ((2, 0, 0), coef[1] * 0 + coef[2] * i1, "∂E/∂k13 = coef_c1 · 0 + coef_c2 · i1"),
        ((0, 0, 1), coef[3] * i1 + coef[4] * 0, "∂E/∂k21 = coef_c3 · i1 + coef_c4 · 0"),
        ((1, 0, 1), coef[3] * 0 + coef[4] * 0, "∂E/∂k22 = coef_c3 · 0 + coef_c4 · 0"),
        ((2, 0, 1), coef[3] * 0 + coef[4] * i1, "∂E/∂k23 = coef_c3 · 0 + coef_c4 · i1"),
    ]
    k_lines = f"document 003, {_rec(ex, 'k11_new').section}: the K and b update lines"
    printed = [Printed(label, "dw", index, value, 6, k_lines) for index, value, label in grads]
    printed += [
        Printed("∂E/∂b1 = coef_c1 + coef_c2", "db", (0,), coef[1] + coef[2], 6, k_lines),
        Printed("∂E/∂b2 = coef_c3 + coef_c4", "db", (1,), coef[3] + coef[4], 6, k_lines),
    ]
    for ref in ex.param_table:  # the updated kernel and biases, as printed
        if ref.layer == 0:
            leaf = "dw" if ref.key == "w" else "db"
            old = float(_np(layer[ref.key])[ref.index])
            rec = _printed(ex, f"{ref.name}_new", leaf, ref.index,
                           f"{ref.name} - α · ∂E/∂{ref.name}")
            printed.append(dataclasses.replace(rec, offset=old, scale=-lr))
    return DocCase("003's conv layer: signal (0, i1, 0), stride 2, padding 1, dy = coef_c",
                   (x, w, dy, 2, 1), expected, printed,
                   lambda: _conv_mistakes(_np(x), _np(w), _np(dy), (2,), ((1, 1),),
                                          expected))


def _conv2d_cases():
    rng = _rng("conv2d_backward")
    cases = []
    for batch, h, wd, c_in, c_out, kh, kw in [(1, 4, 4, 1, 1, 3, 3), (2, 5, 6, 2, 3, 2, 3),
                                              (3, 3, 5, 3, 2, 3, 2)]:
        x, w = _nonzero(rng, (batch, h, wd, c_in)), _nonzero(rng, (kh, kw, c_in, c_out))
        b = _nonzero(rng, (c_out,))
        f = lambda x, w, b: _conv_forward(x, w, b, (1, 1), ((0, 0), (0, 0)))  # noqa: E731
        dy = _nonzero(rng, _out_shape(f, _f64(x), _f64(w), _f64(b)))
        expected = _vjp(f, (_f64(x), _f64(w), _f64(b)), _f64(dy))
        cases.append(Case(_shapes(x=x, w=w, dy=dy), (_f64(x), _f64(w), _f64(dy)),
                          tuple(expected),
                          lambda x=x, w=w, dy=dy, e=expected:
                          _conv_mistakes(x, w, dy, (1, 1), ((0, 0), (0, 0)), e)))
    return cases


def _conv2d_doc004():
    # 004: a 4x4 input a, a 3x3 kernel W, four positions s0..s3 (row-major over the 2x2
    # output). Its dL/dW00 line sums, over s0..s3, ∂L/∂s times the window entries a00,
    # a01, a10, a11; its pixel line: the pixel at row 2, column 1 meets W21, W20, W11,
    # W10 in s0..s3. 004 prints no numbers: these values are its formulas evaluated.
    a = np.arange(1, 17, dtype=np.float64).reshape(4, 4) / 10
    kernel = (np.arange(1, 10, dtype=np.float64).reshape(3, 3) - 5) / 10 + 0.05
    g = np.array([[0.3, -0.2], [0.5, 0.1]])
    x, w, dy = _f64(a[None, :, :, None]), _f64(kernel[:, :, None, None]), _f64(g[None, :, :, None])
    f = lambda x, w, b: _conv_forward(x, w, b, (1, 1), ((0, 0), (0, 0)))  # noqa: E731
    expected = tuple(_vjp(f, (x, w, _f64([0.0])), dy))
    g0, g1, g2, g3 = g.ravel()
    dw00 = g0 * a[0, 0] + g1 * a[0, 1] + g2 * a[1, 0] + g3 * a[1, 1]
    da21 = g0 * kernel[2, 1] + g1 * kernel[2, 0] + g2 * kernel[1, 1] + g3 * kernel[1, 0]
    printed = [
        Printed("∂L/∂W00 = Σ ∂L/∂s_k · (a00, a01, a10, a11)_k", "dw", (0, 0, 0, 0), dw00, 9,
           '004, "∂l/∂w00 = ... (w_a ... a00 + w_b ... a01 + w_c ... a10 + w_d ... a11)"'),
        Printed("∂L/∂a21 = Σ ∂L/∂s_k · (W21, W20, W11, W10)_k", "dx", (0, 2, 1, 0), da21, 9,
           '004, "∂l/∂a = ... (W_a ... W21 + W_b ... W20 + W_c ... W11 + W_d ... W10)"'),
    ]
    return DocCase("004: a 4x4 input, a 3x3 kernel, dy = ∂L/∂s (2x2)", (x, w, dy), expected,
                   printed,
                   lambda: _conv_mistakes(a[None, :, :, None], kernel[:, :, None, None],
                                          g[None, :, :, None], (1, 1), ((0, 0), (0, 0)),
                                          expected))


# ------------------------------------------------------------------ 08 network


def _serial_cases():
    import jaxbp

    nets = [
        ((jaxbp.dense(3), jaxbp.sigmoid(), jaxbp.dense(2)), (1, 4)),
        ((jaxbp.dense(5), jaxbp.tanh(), jaxbp.dense(4), jaxbp.relu(), jaxbp.dense(3),
          jaxbp.softmax()), (3, 4)),
        ((jaxbp.conv2d(2, 3), jaxbp.relu(), jaxbp.max_pool2d(2), jaxbp.flatten(),
          jaxbp.dense(3)), (2, 6, 6, 1)),
    ]
    rng = _rng("serial_backward")
    cases = []
    for layers, shape in nets:
        # Parameter shapes from init, traced without running it; values from the rng.
        net = jaxbp.serial(*layers)
        shapes, _ = jax.eval_shape(lambda k, net=net, s=shape[1:]: net.init(k, s),
                                   jax.random.key(0))
        params = jax.tree.map(lambda s: _f64(rng.normal(size=s.shape) / 2), shapes)
        x = _f64(rng.normal(size=shape))

        def forward(params, x, layers=layers):
            residuals = []
            for layer, p in zip(layers, params):
                x, r = layer.forward(p, x)
                residuals.append(r)
            return x, tuple(residuals)

        dy = _f64(_nonzero(rng, _out_shape(lambda p, x: forward(p, x)[0], params, x)))

        @jax.jit
        def reference(params, x, dy, forward=forward):
            y, pullback = jax.vjp(lambda p, x: forward(p, x)[0], params, x)
            return forward(params, x)[1], pullback(dy)

        residuals, (dparams, dx) = reference(params, x, dy)
        label = "layers " + ", ".join(layer.name for layer in layers) + f"; x {shape}"
        cases.append(Case(label, (tuple(layers), params, residuals, dy), (dparams, dx)))
    return cases


# ------------------------------------------------------------------ the registry


def _ex(number, name, module, title, documents, outputs, make_cases, docs=(), **kw):
    return Exercise(number, name, module, title, documents, outputs, make_cases,
                    tuple(DocCheck(*d) for d in docs), **kw)


EXERCISES: tuple[Exercise, ...] = (
    _ex(1, "sigmoid_backward", "01_activations.py", "the sigmoid's backward pass",
        "000, 001, 004", ("dx",), _sigmoid_cases,
        [("doc000", "document 000's coef_o1 and coef_o2", _sigmoid_doc000)]),
    _ex(2, "tanh_backward", "01_activations.py", "tanh's backward pass", "-", ("dx",),
        _tanh_cases),
    _ex(3, "relu_backward", "01_activations.py", "relu's backward pass", "-", ("dx",),
        _relu_cases),
    _ex(4, "softmax_backward", "01_activations.py",
        "softmax's backward pass, a vector-Jacobian product", "003", ("dx",),
        _softmax_cases,
        [("doc003", "document 003's coef_o through the softmax", _softmax_doc003)]),
    _ex(5, "half_mse_backward", "02_losses.py", "half squared error", "001, 002",
        ("dpred",), _half_mse_cases,
        [("doc002", "document 002's δ_o1 and δ_o2", _half_mse_doc002)]),
    _ex(6, "softmax_cross_entropy_backward", "02_losses.py",
        "softmax with cross-entropy: a - y", "003", ("dlogits",), _softmax_xent_cases,
        [("doc003", "document 003's coef_o1 and coef_o2", _xent_doc003)]),
    _ex(7, "binary_cross_entropy_backward", "02_losses.py", "binary cross-entropy", "004",
        ("dprob",), _bce_cases),
    _ex(8, "sigmoid_binary_cross_entropy_backward", "02_losses.py",
        "a sigmoid with binary cross-entropy: p - y", "004", ("dlogits",),
        _sigmoid_bce_cases),
    _ex(9, "dense_backward", "03_dense.py", "the dense layer: dx, dw, db", "000, 001, 002",
        ("dx", "dw", "db"), _dense_cases,
        [("doc002", "document 002's δ5..δ8 as the output layer's dw", _dense_doc002)]),
    _ex(10, "sgd_update", "04_sgd.py", "an SGD update", "000, 002, 003", ("new_params",),
        _sgd_cases, [("doc000", "document 000's updated output layer", _sgd_doc000)]),
    _ex(11, "max_pool2d_backward", "05_pool.py", "max pooling's routing", "003", ("dx",),
        _pool_cases, [("doc003", "document 003's routing to C2 and C3", _pool_doc003)],
        static_argnums=(2,)),
    _ex(12, "doc002_step", "06_documents.py",
        "document 002's step by the chain rule, scalar by scalar", "002",
        ("grads", "new_w"), _doc002_cases,
        [("doc002", "document 002's δ5..δ8 and the true δ1..δ4", _doc002_doc)]),
    _ex(13, "doc000_step", "06_documents.py",
        "document 000's full step, in both conventions", "000", ("new_params",),
        _doc000_cases,
        [("doc000", "document 000's updated weights (its own convention)", _doc000_doc)],
        static_argnums=(4,)),
    _ex(14, "conv1d_backward", "07_conv.py", "a 1-D convolution (stride, padding)", "003",
        ("dx", "dw", "db"), _conv1d_cases,
        [("doc003", "document 003's kernel and bias gradients", _conv1d_doc003)],
        static_argnums=(3, 4)),
    _ex(15, "conv2d_backward", "07_conv.py", "a 2-D convolution: dW and the pixel gradient",
        "004", ("dx", "dw", "db"), _conv2d_cases,
        [("doc004", "document 004's dL/dW00 and the pixel gradient", _conv2d_doc004)]),
    _ex(16, "serial_backward", "08_network.py", "a network's backward, composed", "000, 001",
        ("dparams", "dx"), _serial_cases, static_argnums=(0,), layers_arg=True),
)

# The exercises beyond the documents (17-30) are specified in their own module, which
# uses this module's data model (defined above, so the import below finds it).
from jaxbp.grading._exercises_beyond import BEYOND  # noqa: E402

EXERCISES = EXERCISES + BEYOND
BY_NAME: dict[str, Exercise] = {e.name: e for e in EXERCISES}
MODULES: tuple[str, ...] = tuple(dict.fromkeys(e.module for e in EXERCISES))
