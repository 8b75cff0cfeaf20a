"""What a grading spec is made of, and the helpers spec modules share.

The exercise set is graded from one *spec module* per exercise module, in
``jaxbp/grading/specs/``: ``specs/activations.py`` grades ``01_activations.py``,
``specs/dense.py`` grades ``03_dense.py``, and so on (the module's name without its
number). A spec module holds that module's exercises, each with its random cases (the
inputs, the answer autodiff gives, and the wrong answers common mistakes give on the same
inputs, so that feedback can name the mistake) and its document checks (the numbers a
document prints, which the learner's output must reproduce). It declares::

    MODULE = "01_activations.py"          # the exercise module it grades
    EXERCISES = (exercise("sigmoid_backward", ...), ...)   # in the module's order

:mod:`jaxbp.grading.registry` finds every spec module and numbers the exercises in the
modules' order. This module is the data model (:class:`Case`, :class:`DocCase`,
:class:`Printed`, :class:`Exercise`) and the helpers the specs share.

Checks and points, per exercise: ``shapes`` (1: every output has the right structure
and shapes), ``values`` (2, or 1 per output when there are several: equal to autodiff
on every case), one per document (1: the printed numbers at their printed precision),
``jit`` (1: still right under ``jax.jit``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp._core import jit_once
from jaxbp.grading._compare import Mistake

# ------------------------------------------------------------------ the data model


@dataclasses.dataclass
class Case:
    """One call of a learner's function, with the answer autodiff gives."""

    label: str                 # the inputs' shapes, for messages
    args: tuple
    expected: Any              # pytree, the exercise's outputs
    candidates: Callable[[], dict[str, list[tuple[Mistake, np.ndarray]]]] | None = None
    # What the worker gets, where ``args`` holds more than arrays (jaxbp's layers):
    # the same call, with stand-ins the worker can rebuild (see LayerStandIns).
    worker_args: tuple | None = None


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
    """One exercise: a function the learner writes, and its checks.

    ``number`` and ``module`` are filled in by the registry (the spec module's
    ``MODULE`` and the exercise's place in the set).
    """

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
    inputs_unchanged: bool = False   # the values check also fails a change in place

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
        """The random cases (built once per process and seed)."""
        key = (self.name, "cases", _SEED)
        if key not in _CACHE:
            with jax.enable_x64(True):
                _CACHE[key] = self.make_cases()
        return _CACHE[key]

    def doc_case(self, key: str) -> DocCase:
        """The document check ``key``'s case (built once per process)."""
        cache_key = (self.name, key, None)
        if cache_key not in _CACHE:
            with jax.enable_x64(True):
                _CACHE[cache_key] = next(d for d in self.docs if d.key == key).make()
        return _CACHE[cache_key]


_CACHE: dict[tuple, Any] = {}
_SEED: int | None = None


def use_seed(seed: int | None) -> None:
    """Changes every random case (None: the published cases). An instructor's seed makes
    answers tuned to the published cases fail; the documents' cases stay as printed."""
    global _SEED
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    _SEED = seed


def current_seed() -> int | None:
    return _SEED


def exercise(name: str, title: str, documents: str, outputs: tuple[str, ...],
             make_cases: Callable[[], list[Case]], docs=(), **kw) -> Exercise:
    """An exercise of a spec module.

    Args:
      name: the learner's function, e.g. ``"dense_backward"``.
      title: one line, e.g. ``"the dense layer: dx, dw, db"``.
      documents: the documents it comes from, e.g. ``"000, 001, 002"`` (``"-"``: none).
      outputs: the names of its outputs, e.g. ``("dx", "dw", "db")``.
      make_cases: returns its random cases.
      docs: ``(key, title, make)`` triples, one per document check; ``make`` returns
        a :class:`DocCase`.
      **kw: ``static_argnums`` (arguments ``jax.jit`` keeps static), ``layers_arg``,
        ``inputs_unchanged`` (each case is also called on numpy arrays in mutable
        containers, and the values check fails if they changed).
    """
    return Exercise(0, name, "", title, documents, tuple(outputs), make_cases,
                    tuple(DocCheck(*d) for d in docs), **kw)


# ------------------------------------------------------------------ helpers for specs


def case_rng(name: str) -> np.random.Generator:
    """The random generator of one exercise's cases: the same every run, and another
    one under an instructor's seed (:func:`use_seed`)."""
    base = zlib.crc32(name.encode())
    return np.random.default_rng(base if _SEED is None else [base, _SEED])


def nonzero(rng, shape, lo=0.2, hi=1.5) -> np.ndarray:
    """Random entries bounded away from zero, of both signs (a zero hides mistakes)."""
    return rng.choice(np.array([-1.0, 1.0]), size=shape) * rng.uniform(lo, hi, size=shape)


def f64(a) -> jax.Array:
    """``a`` as a float64 JAX array (in the cases' x64 block). Put on the device from
    numpy, which compiles nothing (``jnp.asarray`` compiles a conversion per shape)."""
    if isinstance(a, jax.core.Tracer):
        return jnp.asarray(a, dtype=jnp.float64)
    return jax.device_put(np.asarray(a, dtype=np.float64))


def np64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def quick_jit(f, **kwargs):
    """``jax.jit`` for a function that runs once or twice: a reference runs once per
    case, and compiled with :func:`jaxbp._core.run_once_options` it compiles about
    twice as fast (float64 results agree to rounding)."""
    return jit_once(f, **kwargs)


def vjp_of(f, primals, cotangent):
    """``jax.vjp`` of ``f`` at ``primals``, applied to ``cotangent``, in one compiled call
    (a case costs one compilation instead of one per operation)."""
    refs = References()
    refs.vjp(f, primals, cotangent)
    return refs.run()[0]


def grad_of(f, *args):
    refs = References()
    refs.grad(f, *args)
    return refs.run()[0]


class References:
    """Autodiff's answers for several cases, computed in one compiled call.

    A spec draws every case's inputs first, asking for each case's answer as it goes
    (:meth:`vjp`, :meth:`value_and_vjp`, :meth:`grad` and :meth:`call` each return a
    handle), then :meth:`run` computes them all in one program: one compilation an
    exercise instead of one a case (compiling the references is most of the grader's
    wait). Each answer is what ``jax.vjp``'s pullback, ``(value, pullback's answer)``,
    ``jax.grad`` or the function itself returns (:func:`vjp_of` and :func:`grad_of` are
    the one-case forms)::

        refs = References()
        drawn = [(x, dy, refs.vjp(f, (f64(x),), f64(dy))) for x, dy in inputs]
        answers = refs.run()
        cases = [Case(..., answers[h]) for x, dy, h in drawn]

    Every argument is traced: whatever must stay a Python value (a static shape, a
    rate) goes into ``f``'s closure.
    """

    def __init__(self):
        self._calls: list[tuple[str, Callable, tuple]] = []

    def _add(self, kind, f, args) -> int:
        self._calls.append((kind, f, args))
        return len(self._calls) - 1

    def vjp(self, f, primals, cotangent) -> int:
        return self._add("vjp", f, (tuple(primals), cotangent))

    def value_and_vjp(self, f, primals, cotangent) -> int:
        return self._add("value_and_vjp", f, (tuple(primals), cotangent))

    def grad(self, f, *args) -> int:
        return self._add("grad", f, args)

    def call(self, f, *args) -> int:
        return self._add("call", f, args)

    def run(self) -> list:
        """Every answer, in the order asked for (index them with the handles)."""
        kinds = [(kind, f) for kind, f, _ in self._calls]

        def program(all_args):
            out = []
            for (kind, f), args in zip(kinds, all_args):
                if kind == "vjp":
                    primals, cotangent = args
                    out.append(jax.vjp(f, *primals)[1](cotangent))
                elif kind == "value_and_vjp":
                    primals, cotangent = args
                    y, pullback = jax.vjp(f, *primals)
                    out.append((y, pullback(cotangent)))
                elif kind == "grad":
                    out.append(jax.grad(f)(*args))
                else:
                    out.append(f(*args))
            return out

        if not self._calls:
            return []
        return quick_jit(program)([args for _, _, args in self._calls])


def out_shape(f, *args):
    return jax.eval_shape(f, *args).shape


def shape_label(**arrays) -> str:
    """``x (2, 3), dy (2, 4)``: a case's inputs, for messages."""
    return ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in arrays.items())


def sigmoid_np(z):
    return 1 / (1 + np.exp(-z))


def per_feature(v, ndim):
    """``(features,)`` as ``(1, ..., 1, features)``, to broadcast explicitly against a
    rank-``ndim`` array."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


def in_x64(make):
    """A case's ``candidates`` computed on first use, in float64.

    ``make() -> {leaf: [(Mistake, wrong answer)]}`` may use ``jnp`` and ``jax.vjp``: it
    runs once, under ``jax.enable_x64`` (a failing answer's diagnosis runs after the
    cases were built, outside their x64 block), and its wrong answers become numpy
    arrays. Only a failing answer needs them, so they cost nothing otherwise.
    """
    @functools.cache
    def run():
        with jax.enable_x64(True):
            return {leaf: [(m, np.asarray(w, np.float64)) for m, w in pairs]
                    for leaf, pairs in make().items()}
    return run


def mistake(key: str, message: str) -> Mistake:
    """A named mistake: ``key`` (tests assert it) and what the learner reads."""
    return Mistake(key, message)


# Mistakes named alike in several modules.
MISSING_DERIVATIVE = "missing-derivative"
BIAS_AXIS = "bias-axis"


# ------------------------------------------------------------------ the documents' numbers


def notes_example(name):
    from jaxbp import notes

    return notes.load(name)


def printed_record(example, name):
    """The record of a number the document prints, by its name in jaxbp.notes."""
    return next(p for p in example.printed if p.name == name)


def operand(example, record, quantity) -> float:
    """A number as a document's line writes it (the first operand of that quantity)."""
    return float(dict(printed_record(example, record).operands)[quantity])


def param_ref(example, name):
    return next(r for r in example.param_table if r.name == name)


def param_value(example, name) -> float:
    ref = param_ref(example, name)
    return float(np.asarray(example.params[ref.layer][ref.key])[ref.index])


def printed_number(example, name, leaf, index, label=None) -> Printed:
    """A printed number from jaxbp.notes; where it is a slip, the corrected value."""
    rec = printed_record(example, name)
    value, note = rec.value, ""
    err = rec.erratum
    if err is not None and err.kind == "value" and isinstance(err.corrected, float):
        value, note = err.corrected, f"corrected: {err.what}"
    return Printed(label or rec.label or rec.name, leaf, tuple(index), float(value),
                   rec.decimals, source_of(example, rec), note)


def source_of(example, rec) -> str:
    """``document 002, Backward: gradients of w5..w8: "δ5 = ... = 0.03"``."""
    return (f'document {example.name}, {rec.section}: "{rec.label or rec.name} = ... = '
            f'{rec.text}"')


# ------------------------------------------------------------------ layers, as the worker sees them


@dataclasses.dataclass
class LayerStandIn:
    """One layer as the grading worker rebuilds it: its backward at one case's params and
    residuals, as the matrix ``m`` (``backward`` is linear in ``dy``) from ``dy`` (flat)
    to ``(dparams leaves..., dx)`` (flat), and a token that stands for its residuals."""

    name: str
    m: np.ndarray
    token: np.ndarray
    params: Any
    dy_shape: tuple
    dx_shape: tuple


@dataclasses.dataclass
class LayerStandIns:
    """``layers`` for the worker (jaxbp's layers never go there); see :func:`stand_ins`.
    ``single``: the argument is one layer (``residual_backward``'s ``branch``), not a
    tuple of them."""

    layers: tuple[LayerStandIn, ...]
    single: bool = False


def backward_matrices(layers, params, residuals, xs) -> tuple:
    """Each layer's backward at these params and residuals as a matrix from ``dy`` (flat)
    to ``(dparams leaves..., dx)`` (flat): ``backward`` is linear in ``dy``, so its
    matrix is its answer on each basis vector (every layer's, vmapped over the basis
    vectors, in one compiled call)."""
    shapes = [tuple(xs[i + 1].shape) for i in range(len(layers))]

    @quick_jit
    def matrices(params, residuals):
        out = []
        for layer, p, r, shape in zip(layers, params, residuals, shapes):
            def flat(dy, layer=layer, p=p, r=r, shape=shape):
                dparams, dx = layer.backward(p, r, dy.reshape(shape))
                return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(dparams)]
                                       + [jnp.ravel(dx)])
            out.append(jax.vmap(flat)(jnp.eye(math.prod(shape), dtype=jnp.float64)))
        return out

    return tuple(np64(m) for m in matrices(tuple(params), tuple(residuals)))


def stand_ins(layers, params, matrices, xs, rng) -> tuple[LayerStandIns, tuple]:
    """Stand-ins for ``layers`` at one case, and the residual tokens to pass for them.

    Args:
      layers: jaxbp layers, input side first.
      params: their params.
      matrices: :func:`backward_matrices` at this case.
      xs: every layer's input, then the network's output (for the shapes).
      rng: a numpy generator (the tokens).

    A learner's ``serial_backward`` calls ``layers[i].backward(params[i], residuals[i],
    dy)`` in the worker exactly as it would jaxbp's layer, and gets the same answer (to
    rounding); wrong params or residuals give a wrong answer, a wrong ``dy`` an error.
    """
    out, tokens = [], []
    for i, layer in enumerate(layers):
        token = rng.normal(size=(4,))
        tokens.append(f64(token))
        out.append(LayerStandIn(layer.name, np64(matrices[i]), token, params[i],
                                tuple(xs[i + 1].shape), tuple(xs[i].shape)))
    return LayerStandIns(tuple(out)), tuple(tokens)
