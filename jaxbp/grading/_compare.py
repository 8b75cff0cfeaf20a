"""Comparing a learner's outputs with the expected ones, and naming the likely mistake.

Every output is compared leaf by leaf in float64 (numpy). A leaf that disagrees is
described in the learner's terms: which output, which entry, expected and got; then a
diagnosis tries the exercise's own wrong answers (computed from the same inputs: the
transposed weight gradient, the missing derivative, the unflipped kernel...) and a few
generic ones (sign flipped, transposed, a factor of 2, all zeros). Besides that line,
each output gets a comparison in the form learners know from checking against autograd:
exact / approximate / largest difference / shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

RTOL, ATOL = 1e-5, 1e-8  # float64 answers agree to ~1e-15; wrong ones by far more


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A likely mistake: a short key (tests assert it) and what to tell the learner."""

    key: str
    message: str


# Generic mistakes, tried after the exercise's own.
SIGN = Mistake("sign", "sign flipped: your answer is the negative of the right one")
TRANSPOSED = Mistake("transposed", "transposed: your answer is the transpose of the right "
                     "one (check which index is rows and which is columns)")
FACTOR_2 = Mistake("factor-2", "a factor of 2: your answer is twice the right one")
HALF = Mistake("factor-2", "a factor of 2: your answer is half the right one")
ZEROS = Mistake("zeros", "all zeros: your answer is zero everywhere (a placeholder "
                "left in?)")
NAN = Mistake("nan", "not finite: your answer holds NaN or inf (a division by zero, or "
              "the log of 0?)")


def close(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def as_array(leaf):
    """A learner's leaf as a float64 numpy array, or None if it is not numeric."""
    try:
        a = np.asarray(leaf)
    except Exception:  # noqa: BLE001 - anything the learner returned
        return None
    if a.dtype == object or np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.number)
                                                       or a.dtype == np.bool_):
        return None
    return a.astype(np.float64)


def index_str(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]" if len(index) else ""


@dataclasses.dataclass
class LeafComparison:
    """One output leaf, expected against got."""

    name: str
    expected: np.ndarray
    got: np.ndarray | None

    @property
    def shape_ok(self) -> bool:
        return self.got is not None and self.got.shape == self.expected.shape

    @property
    def exact(self) -> bool:
        return self.shape_ok and bool(np.array_equal(self.got, self.expected))

    @property
    def approx(self) -> bool:
        return self.shape_ok and close(self.got, self.expected)

    @property
    def max_diff(self) -> float | None:
        if not self.shape_ok or self.got.size == 0:
            return None
        return float(np.max(np.abs(self.got - self.expected)))

    def first_bad(self):
        """The first entry (row-major) outside the tolerance, and how many are."""
        bad = ~np.isclose(self.got, self.expected, rtol=RTOL, atol=ATOL)
        n_bad = int(bad.sum())
        if not n_bad:
            return None, 0
        return np.unravel_index(int(np.argmax(bad)), bad.shape), n_bad

    def line(self, width: int = 14) -> str:
        """``dw | exact: False | approximate: True | maxdiff: 2.2e-16 | shape: right``."""
        if self.got is None:
            return f"{self.name:<{width}} | not an array"
        diff = self.max_diff
        shape = ("right" if self.shape_ok else
                 f"WRONG {tuple(self.got.shape)}, expected {tuple(self.expected.shape)}")
        diff_s = f"{diff:.1e}" if diff is not None else "-"
        return (f"{self.name:<{width}} | exact: {self.exact!s:<5} | approximate: "
                f"{self.approx!s:<5} | maxdiff: {diff_s:<7} | shape: {shape}")

    def entry_message(self) -> str:
        """Where the values disagree: ``dw[0, 1]: expected 0.43, got -0.43 (6 of 20 wrong)``."""
        if self.got is None:
            return f"{self.name} is not an array of numbers"
        if not self.shape_ok:
            return (f"{self.name} has shape {tuple(self.got.shape)}, expected "
                    f"{tuple(self.expected.shape)}")
        index, n_bad = self.first_bad()
        if index is None:
            return f"{self.name} is right"
        e, g = self.expected[index], self.got[index]
        return (f"{self.name}{index_str(index)}: expected {e:.6g}, got {g:.6g} "
                f"({n_bad} of {self.expected.size} entries wrong)")


def diagnose(cmp: LeafComparison, candidates=()) -> Mistake | None:
    """The likely mistake behind a wrong leaf, or None.

    Args:
      cmp: the comparison of the wrong leaf.
      candidates: ``(Mistake, wrong_answer)`` pairs from the exercise, tried first; a
        wrong answer is what that mistake gives on the same inputs.
    """
    found = mistakes(cmp, candidates)
    return found[0] if found else None


def mistakes(cmp: LeafComparison, candidates=()) -> list[Mistake]:
    """Every mistake the evidence fits, the exercise's own first (:func:`diagnose`
    takes the first). A candidate's wrong answer may be a predicate on the learner's
    answer instead of an array."""
    got, exp = cmp.got, cmp.expected
    if got is None:
        return []
    found = []
    for mistake, wrong in candidates:
        if callable(wrong):
            if wrong(got):
                found.append(mistake)
            continue
        wrong = np.asarray(wrong, dtype=np.float64)
        if close(got, wrong) and not close(wrong, exp):
            found.append(mistake)
    if got.size and not np.all(np.isfinite(got)):
        return found + [NAN]
    nonzero = exp.size and np.any(np.abs(exp) > ATOL)
    if got.shape == exp.shape and nonzero:
        if not np.any(got):
            found.append(ZEROS)
        if close(got, -exp):
            found.append(SIGN)
        if close(got, 2 * exp):
            found.append(FACTOR_2)
        if close(got, exp / 2):
            found.append(HALF)
    if exp.ndim == 2 and got.shape == exp.T.shape and close(got, exp.T) and not close(
            exp, exp.T):
        found.append(TRANSPOSED)
    return found


def diagnose_across(evidence) -> Mistake | None:
    """The likely mistake behind one output that is wrong in several cases.

    ``evidence``: ``(comparison, candidates)`` for each case where it is wrong, the
    first case first. One case can fit two mistakes (on a ``(1, 2)`` input, dividing by
    ``pred.size`` and halving agree); the mistake named is the first of the first
    case's that fits every case, else the first case's first.
    """
    if not evidence:
        return None
    first = mistakes(*evidence[0])
    for m in first:
        if all(any(o.key == m.key and o.message == m.message for o in mistakes(*e))
               for e in evidence[1:]):
            return m
    return first[0] if first else None


# ----------------------------------------------------------------- output structure


class StructureError(Exception):
    """The learner returned something of the wrong kind; ``str`` says what and why."""


def _listless(tree):
    """Lists to tuples, recursively (a learner may return [dx, dw, db])."""
    if isinstance(tree, list):
        return tuple(_listless(t) for t in tree)
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_listless(t) for t in tree)
    if isinstance(tree, dict):
        return {k: _listless(v) for k, v in tree.items()}
    return tree


def describe(value) -> str:
    if hasattr(value, "what") and type(value).__name__ == "Opaque":
        return value.what
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    if hasattr(value, "shape"):
        return f"an array of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def leaves(value, names: tuple[str, ...]) -> list[tuple[str, Any]]:
    """``(name, leaf)`` for every leaf of an exercise's (expected) output.

    With several output names the value is a tuple with one entry per name; each entry
    may itself be a pytree, whose leaves are named by their paths (``dparams[1]['w']``).
    """
    parts = zip(names, value) if len(names) > 1 else [(names[0], value)]
    out = []
    for name, part in parts:
        for path, leaf in jax.tree_util.tree_flatten_with_path(part)[0]:
            out.append((name + jax.tree_util.keystr(path), leaf))
    return out


def match(got, expected, names: tuple[str, ...]) -> list[LeafComparison]:
    """Pairs the learner's output with the expected one, leaf by leaf.

    Raises:
      StructureError: the output has the wrong structure (None, a wrong number of
        outputs, different keys); the message says what came and what was expected.
    """
    if got is None:
        raise StructureError("returned None: did you forget the `return`?")
    got = _listless(got)
    if len(names) > 1:
        if not isinstance(got, tuple):
            raise StructureError(f"returned {describe(got)}; expected a tuple "
                                 f"({', '.join(names)})")
        if len(got) != len(names):
            raise StructureError(f"returned {len(got)} values; expected {len(names)}: "
                                 f"({', '.join(names)})")
    exp_tree = jax.tree.structure(expected)
    got_tree = jax.tree.structure(got)
    if got_tree != exp_tree:
        if len(names) == 1 and exp_tree.num_leaves == 1 and got_tree.num_leaves == 1:
            pass  # a bare array where a 1-leaf tree is expected is fine below
        else:
            where = ""
            if len(names) > 1:
                for name, g, e in zip(names, got, expected):
                    if jax.tree.structure(g) != jax.tree.structure(e):
                        where = (f"{name} is {describe(g)}, expected "
                                 f"{_expected_desc(e)}")
                        break
            else:
                where = f"returned {describe(got)}, expected {_expected_desc(expected)}"
            raise StructureError(f"wrong structure: {where}")
    exp_leaves = leaves(expected, names)
    got_leaves = leaves(got, names) if got_tree == exp_tree else [(exp_leaves[0][0], got)]
    return [LeafComparison(name, np.asarray(e, np.float64), as_array(g))
            for (name, e), (_, g) in zip(exp_leaves, got_leaves)]


def _expected_desc(e) -> str:
    if hasattr(e, "shape"):
        return f"an array of shape {tuple(e.shape)}"
    if isinstance(e, tuple):
        return f"a tuple of {len(e)} ({', '.join(_expected_desc(x) for x in e)})"
    if isinstance(e, dict):
        return f"a dict with keys {sorted(e)}"
    return describe(e)
