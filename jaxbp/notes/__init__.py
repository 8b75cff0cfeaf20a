"""The five documents' worked examples as data, replayed by the library's backward passes.

Documents 000, 002 and 003 work one training step through by hand; here each is an
:class:`Example`: the network built from jaxbp layers, its starting values, and every
number the document prints (:class:`Printed`: name, value, precision, the line it
stands on, and an :class:`Erratum` where it is a slip). Documents 001 and 004 derive
closed forms; each is a :class:`FormulaExample` whose formulas are checked against
``jax.grad``.

    >>> ex = jaxbp.notes.load("000")
    >>> jaxbp.notes.replay(ex, "notes")["coef_o1"]      # exact, float64
    >>> [r for r in jaxbp.notes.compare(ex) if not r.agrees]   # the errata
    >>> jaxbp.notes.operands(ex)     # numbers printed only inside other lines, checked
    >>> jaxbp.notes.check(jaxbp.notes.load("004"))       # formulas vs jax.grad

Names in :func:`replay`'s values: the document's names for what it prints (``coef_o1``,
``out_h1``, ``delta_o1``, ``d5``), a parameter's initial value under its name (``w13``),
its updated value as ``w13_new`` and the gradient applied to it as ``grad_w13``. Where
a document reuses a name for different layers a suffix tells them apart (003:
``w1_M`` output layer, ``w1_f`` fully connected layer, ``b1_C`` convolution).
"""

from __future__ import annotations

import functools
import importlib

from jaxbp._cli_notes import NAMES, normalize as _normalize  # the names, without JAX
from jaxbp.notes._example import Example, Formula, FormulaExample, ParamRef, Trace
from jaxbp.notes._records import Erratum, Printed
from jaxbp.notes.compare import (CheckResult, FoundSlip, OperandRow, Row, check, compare,
                                 operands)
from jaxbp.notes.replay import replay, replay_step, trace

__all__ = ["NAMES", "CheckResult", "Erratum", "Example", "Formula", "FormulaExample",
           "FoundSlip", "OperandRow", "ParamRef", "Printed", "Row", "Trace", "check",
           "compare", "documents", "load", "names", "operands", "replay", "replay_step",
           "trace"]


def names() -> tuple[str, ...]:
    """The documents' names, ``("000", "001", "002", "003", "004")``."""
    return NAMES


@functools.lru_cache(maxsize=None)
def _load(text: str):
    return importlib.import_module(f"jaxbp.notes.doc{text}").example()


def load(name) -> Example | FormulaExample:
    """One document's example.

    Args:
      name: ``"000"`` .. ``"004"``; ints and short strings are accepted (``2``, ``"2"``).

    Returns:
      An :class:`Example` for 000, 002 and 003, a :class:`FormulaExample` for 001 and 004.
      Examples are immutable (their arrays are read-only) and cached.

    Raises:
      ValueError: for a name that is not one of the five documents.
    """
    return _load(_normalize(name))


def documents() -> list:
    """All five examples, in order."""
    return [load(n) for n in NAMES]
