"""The two kinds of example: a worked example (000, 002, 003) and checked formulas (001, 004)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import numpy as np

from jaxbp._core import Layer, Loss
from jaxbp.notes._records import Printed


class ParamRef(NamedTuple):
    """Where a document's parameter lives in the params pytree.

    ``params[layer][key][index]``; e.g. 000's ``w13`` is ``("w13", 4, "w", (0, 0))``.
    """

    name: str
    layer: int
    key: str
    index: tuple


class Trace(NamedTuple):
    """Everything one replayed training step computed, layer by layer.

    Attributes:
      acts: ``acts[0]`` is the input, ``acts[i + 1]`` the output of layer ``i``; each
        ``(1, ...)``.
      dys: ``dys[i]`` is the upstream gradient handed to layer ``i``'s backward, i.e.
        the gradient of the loss with respect to ``acts[i + 1]`` (under the convention).
      grads: ``grads[i]``, the gradient layer ``i``'s backward returned for its params.
      params: the parameters before the step (a tuple, one entry per layer).
      new_params: ``params - learning_rate * grads``.
      loss: the loss value (a scalar).
      loss_dy: the loss's gradient with respect to the network's output.
      residuals: ``residuals[i]``, what layer ``i``'s forward saved for its backward.
    """

    acts: tuple
    dys: tuple
    grads: tuple
    params: tuple
    new_params: tuple
    loss: Any
    loss_dy: Any
    residuals: tuple = ()


@dataclasses.dataclass(frozen=True)
class Example:
    """A document's worked example (000, 002, 003) as data.

    Attributes:
      name: ``"000"``, ``"002"`` or ``"003"``.
      title: one line in English; ``title_zh`` the same in Chinese.
      summary: a few sentences for learners; ``summary_zh`` a line in Chinese.
      net: the network, a ``jaxbp.serial`` of library layers.
      params: the initial parameters, a tuple (one entry per layer) of dicts of float64
        numpy arrays, or ``()`` for a layer without parameters.
      x: the input, ``(1, ...)`` float64. ``target``: ``(1, ...)`` float64.
      loss: the :class:`jaxbp.Loss` the document minimises.
      learning_rate: the step size the document uses.
      printed: one :class:`Printed` per number the document prints, in document order.
      convention: the backward convention the document follows, ``"notes"`` (update a
        layer, then pass the error down through its updated weights) or ``"standard"``.
      param_table: the document's name for each parameter entry (:class:`ParamRef`).
      values: ``values(trace) -> dict`` of the document's names for activations and
        error coefficients, computed from a replayed step (:class:`Trace`).
      graph: ``graph() -> (nodes, edges)`` for the picture: nodes are
        ``(name, column, row, label)``, edges ``(src, dst, weight name)``.
      grad_names: ``(record name, parameter name)`` pairs where the document prints a
        parameter's gradient under its own name (002's ``delta5`` is ``grad_w5``).
      stated: the names of the data the document states (inputs, targets, the rate),
        besides the parameters: values taken as they are, never rounded.
      reading: the finer points of this reading (the section of the document module's
        docstring after :data:`READING_HEADING`; docs/reading.md has the whole reading).
    """

    name: str
    title: str
    title_zh: str
    summary: str
    summary_zh: str
    net: Layer
    params: tuple
    x: np.ndarray
    target: np.ndarray
    loss: Loss
    learning_rate: float
    printed: tuple[Printed, ...]
    convention: str
    param_table: tuple[ParamRef, ...]
    values: Callable[[Trace], dict]
    graph: Callable[[], tuple]
    stated: tuple[str, ...] = ()
    grad_names: tuple[tuple[str, str], ...] = ()
    reading: str = ""
    kind: str = "worked"

    def is_stated(self, quantity: str) -> bool:
        """Whether ``quantity`` is a starting value (a parameter, input, target, rate)."""
        return quantity in self.stated or any(r.name == quantity for r in self.param_table)

    def record(self, name: str) -> Printed:
        """The printed record called ``name``; ``KeyError`` if there is none."""
        for p in self.printed:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} prints no number called {name!r}")


@dataclasses.dataclass(frozen=True)
class Formula:
    """One closed form a document derives, and the autodiff reference it is checked by.

    Attributes:
      name: the derivative's name, e.g. ``"dE/dw3"``.
      expression: the document's expression, in plain text.
      fn: the expression as a function (mirrors the document term by term).
      reference: the same quantity from ``jax.grad`` (or ``jax.nn``), same signature.
      sample: ``sample(key) -> dict`` of keyword arguments for ``fn`` and ``reference``,
        random float64 arrays.
      note: where the expression simplifies, or how it reads.
    """

    name: str
    expression: str
    fn: Callable
    reference: Callable
    sample: Callable
    note: str = ""


@dataclasses.dataclass(frozen=True)
class FormulaExample:
    """A symbolic document (001, 004): its closed forms, each checked against jax.grad.

    Attributes:
      name, title, title_zh, summary, summary_zh: as :class:`Example`.
      formulas: name -> function mirroring the document's expression.
      entries: the :class:`Formula` records, in document order (expression text, the
        autodiff reference and the sampler for each).
      reading: the finer points of this reading (the section of the document module's
        docstring after :data:`READING_HEADING`; docs/reading.md has the whole reading).
    """

    name: str
    title: str
    title_zh: str
    summary: str
    summary_zh: str
    entries: tuple[Formula, ...]
    reading: str = ""
    kind: str = "formulas"

    @property
    def formulas(self) -> dict:
        return {f.name: f.fn for f in self.entries}


READING_HEADING = "Finer points of this reading (all of it: docs/reading.md):"


def reading_section(docstring: str | None) -> str:
    """The part of a document module's docstring after :data:`READING_HEADING`."""
    return (docstring or "").split(READING_HEADING)[-1].strip()


def frozen(a) -> np.ndarray:
    """A read-only float64 copy, so that a cached example cannot be changed by a caller."""
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def build_params(template: tuple, table: tuple[ParamRef, ...], values: dict) -> tuple:
    """Fills a params tuple from the document's names.

    Args:
      template: per layer, ``()`` or a dict ``{key: shape}``.
      table: where each named parameter lives.
      values: name -> float, one per entry of ``table``.

    Returns:
      A tuple of dicts of read-only float64 arrays (``()`` for parameterless layers).
    """
    arrays = [({k: np.zeros(s, np.float64) for k, s in t.items()} if t else ())
              for t in template]
    seen = set()
    for ref in table:
        arrays[ref.layer][ref.key][ref.index] = values[ref.name]
        seen.add((ref.layer, ref.key, ref.index))
    total = sum(a.size for layer in arrays if layer for a in layer.values())
    if len(seen) != total or len(table) != total:
        raise ValueError(f"build_params: the table must name every parameter entry once, "
                         f"got {len(table)} names for {total} entries")
    return tuple(({k: frozen(v) for k, v in layer.items()} if layer else ())
                 for layer in arrays)
