"""Printed against computed: one row per number a document prints.

A printed number agrees when one of two explicit models of the writer's arithmetic gives
it at its printed precision (see :mod:`jaxbp.notes._records`):

* ``path="exact"``: the float64 replay (:func:`jaxbp.notes.replay`) rounds to it;
* ``path="carried"``: the line's arithmetic, in exact decimals on the rounded operands the
  writer carried forward, rounds to it.

Every operand a line writes is checked too: it must be the document's own figure for the
quantity it stands for (the printed value, or the corrected value where the printed one
is an erratum) or the exact value, at the operand's precision. An operand that is
neither is a slip; the row lists it (``found_slips``), and the carried model uses the
value the writer evidently carried instead.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import NamedTuple

import jax
import numpy as np

from jaxbp.notes._example import Example, FormulaExample
from jaxbp.notes._records import Erratum, Printed, decimals_of, evaluate, rounded, rounds_to
from jaxbp.notes.replay import CONVENTIONS, replay

# A formula agrees with jax.grad when the largest error, relative to max(1, |reference|),
# is below this: both are float64 evaluations of the same closed form.
FORMULA_TOLERANCE = 1e-10
FORMULA_SAMPLES = 5


class FoundSlip(NamedTuple):
    """An operand whose written value is not the quantity it stands for."""

    quantity: str
    written: str
    corrected: float


@dataclasses.dataclass(frozen=True)
class Row:
    """One printed number beside its computed values.

    Attributes:
      name: the record's name (``Printed.name``); ``label`` as the document writes it.
      printed: the number as printed; ``text`` as a string; ``decimals`` its precision.
      notes: the exact float64 value under the notes convention; ``standard`` likewise.
      carried: the line recomputed from the carried (rounded) operands, or ``None``.
      convention: the record's convention; ``judged_by`` the one ``agrees`` used.
      agrees: whether it agrees at its printed precision (exact or carried).
      path: ``"exact"``, ``"carried"`` or ``None`` (an erratum).
      erratum: the record's :class:`Erratum` when the printed value is wrong.
      slips: the line's other listed slips (operands, labels, formula).
      found_slips: operand slips the comparison found (must match the listed ones).
      doc_formula: where the document's formula is wrong, its value on the line's
        operands (what the writer computed), else ``None``.
    """

    name: str
    label: str
    printed: float
    text: str
    decimals: int
    notes: float
    standard: float
    carried: float | None
    convention: str
    judged_by: str
    agrees: bool
    path: str | None
    erratum: Erratum | None
    slips: tuple[Erratum, ...]
    found_slips: tuple[FoundSlip, ...]
    doc_formula: float | None
    section: str
    section_zh: str
    line: str
    note: str
    kind: str


class OperandRow(NamedTuple):
    """A number printed only as an operand (a parameter, an input, a forward value).

    Attributes:
      quantity: the quantity it stands for; ``written`` as the document writes it.
      value: the exact value (the document's convention).
      agrees: whether ``written`` is the quantity at its written precision.
      corrected: the right value where it does not agree, else ``None``.
      lines: the records whose lines write it, in document order.
    """

    quantity: str
    written: str
    value: float
    agrees: bool
    corrected: float | None
    lines: tuple[str, ...]


class CheckResult(NamedTuple):
    """A closed form against ``jax.grad``: ``(name, max_error, passed)``."""

    name: str
    max_error: float
    passed: bool


def _dec(x: float) -> Decimal:
    # The shortest decimal that round-trips: 0.1 -> Decimal("0.1"), not its binary value.
    return Decimal(repr(float(x)))


def intended(record: Printed) -> float:
    """The value the writer carried for a printed quantity: printed, or corrected."""
    if record.erratum is not None and isinstance(record.erratum.corrected, (int, float)):
        return float(record.erratum.corrected)
    return record.value


def _intended_text(example, by_name, values, quantity, decimals) -> Decimal:
    """The right value of an operand at ``decimals``: the record's figure, or exact."""
    rec = by_name.get(quantity)
    if rec is not None:
        return rounded(_dec(intended(rec)), max(decimals, rec.decimals))
    if example.is_stated(quantity):
        return _dec(values[quantity])
    return rounded(values[quantity], decimals)


def check_operand(example, by_name, values, quantity, written) -> FoundSlip | None:
    """``None`` when ``written`` is the document's or the exact figure for ``quantity``."""
    if quantity not in values:
        raise KeyError(f"{example.name}: an operand stands for {quantity!r}, which the "
                       f"replay does not compute")
    d = decimals_of(written)
    w = Decimal(written)
    rec = by_name.get(quantity)
    if rec is not None and w == rounded(_dec(intended(rec)), d):
        return None
    if w == rounded(values[quantity], d):
        return None
    return FoundSlip(quantity, written, float(_intended_text(example, by_name, values,
                                                             quantity, d)))


def carried_value(example, by_name, values, record, found) -> Decimal | None:
    """The line's ``expr`` in exact decimals on the operands the writer carried."""
    if record.expr is None:
        return None
    slipped = {s.quantity for s in found}
    written = {}
    for q, w in record.operands:
        written.setdefault(q, w)
    args = {}
    for q in record.args:
        if q in written and q not in slipped:
            args[q] = Decimal(written[q])
        elif q in by_name:
            args[q] = _dec(intended(by_name[q]))
        elif q in written:  # a slipped operand with no record: its right value
            args[q] = _intended_text(example, by_name, values, q, decimals_of(written[q]))
        else:  # not written on the line: a stated parameter or input, exactly
            args[q] = _dec(values[q])
    return evaluate(record.expr, args)


def _doc_formula(record) -> Decimal | None:
    if record.doc_expr is None:
        return None
    written = {}
    for q, w in record.operands:
        written.setdefault(q, Decimal(w))
    return evaluate(record.doc_expr, written)


def compare(example, convention: str | None = None) -> list:
    """One row per printed number: printed, computed under both conventions, agreement.

    Args:
      example: from :func:`jaxbp.notes.load`. For the formula documents (001, 004) this
        returns :func:`check`'s results.
      convention: ``None`` judges each number by the convention its document follows;
        ``"notes"`` or ``"standard"`` judges every number by that one (the carried model
        counts only where the record's convention is that one or ``"both"``).

    Returns:
      A list of :class:`Row`, in document order.
    """
    if isinstance(example, FormulaExample):
        return check(example)
    if not isinstance(example, Example):
        raise TypeError(f"compare: example must come from jaxbp.notes.load, got "
                        f"{type(example).__name__}")
    if convention is not None and convention not in CONVENTIONS:
        raise ValueError(f"compare: convention must be None, 'notes' or 'standard', got "
                         f"{convention!r}")
    computed = {c: replay(example, c) for c in CONVENTIONS}
    doc_values = computed[example.convention]
    by_name = {p.name: p for p in example.printed}
    rows = []
    for rec in example.printed:
        found = []
        for q, w in rec.operands:
            slip = check_operand(example, by_name, doc_values, q, w)
            if slip is not None and slip not in found:
                found.append(slip)
        carried = carried_value(example, by_name, doc_values, rec, found)
        judged = convention or (example.convention if rec.convention == "both"
                                else rec.convention)
        exact_ok = rounds_to(computed[judged][rec.name], rec.text)
        carried_ok = (carried is not None and rounds_to(carried, rec.text)
                      and rec.convention in (judged, "both"))
        path = "exact" if exact_ok else "carried" if carried_ok else None
        doc_formula = _doc_formula(rec)
        rows.append(Row(
            name=rec.name, label=rec.label or rec.name, printed=rec.value, text=rec.text,
            decimals=rec.decimals, notes=computed["notes"][rec.name],
            standard=computed["standard"][rec.name],
            carried=None if carried is None else float(carried),
            convention=rec.convention, judged_by=judged, agrees=path is not None,
            path=path, erratum=rec.erratum, slips=rec.slips, found_slips=tuple(found),
            doc_formula=None if doc_formula is None else float(doc_formula),
            section=rec.section, section_zh=rec.section_zh, line=rec.line, note=rec.note,
            kind=rec.kind))
    return rows


def operands(example: Example) -> list[OperandRow]:
    """The numbers a worked example prints only as operands, each checked.

    Every operand whose quantity has no :class:`Printed` record of its own (parameters,
    inputs, rates, and forward values the document prints only inside a later line, as
    003's ``0.706`` or ``0.608``), grouped by quantity and written form, in order of
    first appearance.
    """
    if not isinstance(example, Example):
        raise TypeError(f"operands: example must be a worked example, got "
                        f"{type(example).__name__}")
    values = replay(example, example.convention)
    by_name = {p.name: p for p in example.printed}
    groups: dict = {}
    for rec in example.printed:
        for q, w in rec.operands:
            if q in by_name:
                continue
            lines = groups.setdefault((q, w), [])
            if rec.name not in lines:
                lines.append(rec.name)
    out = []
    for (q, w), lines in groups.items():
        slip = check_operand(example, by_name, values, q, w)
        out.append(OperandRow(q, w, values[q], slip is None,
                              None if slip is None else slip.corrected, tuple(lines)))
    return out


def check(example: FormulaExample, samples: int = FORMULA_SAMPLES,
          seed: int = 0) -> list[CheckResult]:
    """Each closed form of 001 or 004 against ``jax.grad`` on random float64 inputs.

    Args:
      example: a formula document from :func:`jaxbp.notes.load` ("001" or "004").
      samples: how many random inputs per formula.
      seed: the seed of ``jax.random.key``.

    Returns:
      One :class:`CheckResult` ``(name, max_error, passed)`` per formula; the error is
      the largest ``|formula - reference| / max(1, |reference|)`` over entries and samples.
    """
    if not isinstance(example, FormulaExample):
        raise TypeError(f"check: example must be a formula document (001 or 004), got "
                        f"{type(example).__name__}")
    out = []
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        for f in example.entries:
            worst = 0.0
            fn, reference = jax.jit(f.fn), jax.jit(f.reference)
            for _ in range(samples):
                key, sub = jax.random.split(key)
                kwargs = f.sample(sub)
                got = np.asarray(fn(**kwargs), dtype=np.float64)
                want = np.asarray(reference(**kwargs), dtype=np.float64)
                if got.shape != want.shape:
                    raise ValueError(f"check: {example.name} {f.name}: the formula gives "
                                     f"shape {tuple(got.shape)}, jax.grad "
                                     f"{tuple(want.shape)}")
                scale = max(1.0, float(np.max(np.abs(want))))
                worst = max(worst, float(np.max(np.abs(got - want))) / scale)
            out.append(CheckResult(f.name, worst, bool(worst <= FORMULA_TOLERANCE)))
    return out
