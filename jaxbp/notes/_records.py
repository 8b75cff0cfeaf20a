"""The records a worked example is made of, and the decimal arithmetic that checks them.

A document's worked example is stored as data: the network and its starting values, and
one :class:`Printed` record per number the document prints as the result of a line
(``coef_o1 = ... = 0.0628``), with the line's arithmetic (``expr``) and every operand
the line writes (``operands``, as written). Numbers printed only as operands of a later
line (003 prints its forward values that way) are checked as operands.

Two ways a printed number can be right, both modelled explicitly (never a wider
tolerance):

* **exact**: the float64 replay of the network rounds to it (half a unit of its last
  digit, round-half-up as by hand);
* **carried**: the line's own arithmetic, evaluated in exact decimal arithmetic on the
  rounded operands the writer carried forward, rounds to it. An operand is what the line
  writes, unless that is a slip (then the value the writer carried: the document's own
  printed, or corrected, figure for that quantity).

Operands that are structural constants (the ``1`` of ``1 - out``, a padding ``0``, the
bias input ``1``) are not transcribed; every other number on a line is.
"""

from __future__ import annotations

import dataclasses
import decimal
import inspect
import math
from decimal import Decimal
from typing import Callable

# Enough digits that decimal evaluation of a line is exact for our purposes: the inputs
# have at most 4 decimals, and exp() is correctly rounded to this precision.
_PRECISION = 40


@dataclasses.dataclass(frozen=True)
class Erratum:
    """A slip in a document, with the evidence for the reading.

    Attributes:
      what: what is wrong, in a sentence.
      corrected: for ``kind="value"``, the value the line should print, at the printed
        precision (a float); for ``"operand"`` the operand's right value (a float); for
        ``"label"`` the right name (a str); for ``"formula"`` the right result (a float).
      evidence: the arithmetic that shows it, e.g. "the forward line prints 0.378 for
        b2; the update line and in_h2 need 0.398".
      kind: ``"value"`` (the printed result is wrong), ``"operand"`` (a number written
        on the line is wrong, whatever the result), ``"formula"`` (the line's formula is
        wrong) or ``"label"`` (a name is wrong; the number is right).
      quantity: for ``"operand"`` slips, the quantity the operand stands for.
      written: for ``"operand"`` slips, the operand as the document writes it.
    """

    what: str
    corrected: float | str | None
    evidence: str
    kind: str = "value"
    quantity: str = ""
    written: str = ""


@dataclasses.dataclass(frozen=True)
class Printed:
    """One number a document prints, with the line it stands on.

    Attributes:
      name: the document's name for it, unique in the example (a layer suffix is added
        where the document reuses a name, e.g. 003's ``w1_M`` and ``w1_f``; an updated
        parameter is ``w13_new``). The key of :func:`jaxbp.notes.replay`'s values.
      value: the number as printed.
      decimals: digits after the point as printed (``"0.39"`` -> 2, ``"0"`` -> 0).
      line: the beginning of the document's line, quoted from the text.
      convention: the backward convention the document's value follows: ``"notes"``,
        ``"standard"``, or ``"both"`` where the two give the same exact value.
      erratum: ``None``, or the :class:`Erratum` when the printed value is wrong.
      text: the number as printed, a string (keeps trailing zeros).
      label: the name as the document writes it on that line, when it differs.
      kind: ``"result"`` (a line's result) or ``"given"`` (a stated value).
      expr: the line's arithmetic as a function of quantities, argument names being
        quantity names; ``None`` for given values. It is the right formula; where the
        document's formula differs, ``doc_expr`` holds the document's.
      operands: ``(quantity, written)`` pairs in the line's order: every number the line
        writes (structural constants excepted).
      doc_expr: the document's own formula, when it is wrong (002's ``d1``).
      slips: the line's slips that are not its printed value: operands, labels, formula.
      section: the English heading the number falls under.
      section_zh: the Chinese heading (the document's own where it has one).
      note: a reading note for learners (a label drift, a harmless shortcut).
    """

    name: str
    value: float
    decimals: int
    line: str
    convention: str
    erratum: Erratum | None = None
    text: str = ""
    label: str = ""
    kind: str = "result"
    expr: Callable | None = None
    operands: tuple[tuple[str, str], ...] = ()
    doc_expr: Callable | None = None
    slips: tuple[Erratum, ...] = ()
    section: str = ""
    section_zh: str = ""
    note: str = ""

    @property
    def args(self) -> tuple[str, ...]:
        """The quantity names ``expr`` takes, in order."""
        return tuple(inspect.signature(self.expr).parameters) if self.expr else ()


def parse_operands(spec: str) -> tuple[tuple[str, str], ...]:
    """``"t_o1=0.01 out_o1=0.916"`` -> ``(("t_o1", "0.01"), ("out_o1", "0.916"))``."""
    pairs = []
    for item in spec.split():
        quantity, _, written = item.partition("=")
        if not written:
            raise ValueError(f"operands: each item must be quantity=number, got {item!r}")
        Decimal(written)  # raises on a typo
        pairs.append((quantity, written))
    return tuple(pairs)


def decimals_of(text: str) -> int:
    """Digits after the point: ``"0.0628"`` -> 4, ``"-0.5"`` -> 1, ``"0"`` -> 0."""
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -int(exponent))


def record(name, text, line, *, expr=None, ops="", convention="both", section="",
           section_zh="", **kwargs) -> Printed:
    """Builds a :class:`Printed` from the printed string and the operands' spec."""
    return Printed(name=name, value=float(Decimal(text)), decimals=decimals_of(text),
                   line=line, convention=convention, text=text, expr=expr,
                   operands=parse_operands(ops), section=section, section_zh=section_zh,
                   **kwargs)


def given(name, text, line, *, section="", section_zh="", **kwargs) -> Printed:
    """A value the document states (an initial parameter, an input, a label)."""
    return record(name, text, line, kind="given", section=section, section_zh=section_zh,
                  **kwargs)


def operand_slip(quantity, written, corrected, what, evidence) -> Erratum:
    return Erratum(what=what, corrected=float(corrected), evidence=evidence,
                   kind="operand", quantity=quantity, written=written)


# ------------------------------------------------------------------- decimal arithmetic


def context() -> decimal.Context:
    return decimal.Context(prec=_PRECISION, rounding=decimal.ROUND_HALF_EVEN)


def sigmoid(z):
    """The logistic function on a Decimal (exact to 40 digits) or on a float."""
    if isinstance(z, Decimal):
        with decimal.localcontext(context()):
            return 1 / (1 + (-z).exp())
    return 1.0 / (1.0 + math.exp(-z))


def exp(z):
    if isinstance(z, Decimal):
        with decimal.localcontext(context()):
            return z.exp()
    return math.exp(z)


def evaluate(fn: Callable, values: dict) -> Decimal:
    """``fn(**values)`` in 40-digit decimal arithmetic (values are Decimals)."""
    with decimal.localcontext(context()):
        return +fn(**values)


def rounded(value, decimals: int) -> Decimal:
    """``value`` (a float, taken exactly, or a Decimal) rounded half-up to ``decimals``."""
    d = value if isinstance(value, Decimal) else Decimal(float(value))
    with decimal.localcontext(context()):
        return d.quantize(Decimal(1).scaleb(-decimals), rounding=decimal.ROUND_HALF_UP)


def rounds_to(value, text: str) -> bool:
    """Whether ``value`` rounds (half-up) to the printed ``text`` at its precision.

    ``-0`` equals ``0``: a tiny negative number printed ``0`` agrees.
    """
    return rounded(value, decimals_of(text)) == Decimal(text)
