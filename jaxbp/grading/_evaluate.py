"""Grading one exercise of one implementation: every check, its points and feedback.

:func:`evaluate` calls the learner's function once per case (random shapes, the
documents' inputs, once under ``jax.jit``) and turns what came back into one
:class:`CheckResult` per check. The pytest grading tests and ``jaxbp grade`` both read
these results, so the points are the same whichever runs them.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from jaxbp.grading import _guard
from jaxbp.grading._compare import (LeafComparison, StructureError, diagnose, match)
from jaxbp.grading.registry import BY_NAME, EXERCISES
from jaxbp.grading.spec import Case, Exercise, quick_jit
from jaxbp.grading._impl import Impl, ImplError


@dataclasses.dataclass
class CheckResult:
    """One check of one exercise.

    Attributes:
      name: e.g. ``"shapes"``, ``"values_dw"``, ``"doc002"``, ``"jit"``.
      points, max_points: what it earned, out of what.
      status: ``"passed"``, ``"failed"``, ``"not done yet"``, ``"refused"``,
        ``"timeout"`` or ``"error"``.
      feedback: first line a summary; further lines the comparison per output.
      mistake: the key of the diagnosed mistake (``"sign"``, ``"transposed"``...), if any.
    """

    name: str
    points: int
    max_points: int
    status: str
    feedback: str = ""
    mistake: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ExerciseResult:
    """Every check of one exercise."""

    exercise: Exercise
    checks: list[CheckResult]

    @property
    def name(self) -> str:
        return self.exercise.name

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def max_points(self) -> int:
        return sum(c.max_points for c in self.checks)

    @property
    def status(self) -> str:
        return summarize([c.to_dict() for c in self.checks])[0]

    @property
    def feedback(self) -> str:
        return summarize([c.to_dict() for c in self.checks])[1]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)


def summarize(checks: list[dict]) -> tuple[str, str]:
    """An exercise's status and feedback from its checks' (as dicts)."""
    if checks and all(c["status"] == "passed" for c in checks):
        return "passed", ""
    failed = [c for c in checks if c["status"] != "passed"]
    first = failed[0]
    if first["status"] in ("not done yet", "refused", "timeout") or (
            first["status"] == "error" and all(c["status"] == "error" for c in checks)):
        status = first["status"]
    else:
        status = "partial" if any(c["points"] for c in checks) else "failed"
    return status, f"{first['name']}: {first['feedback']}" if status in (
        "partial", "failed") else first["feedback"]


class _Stop(Exception):
    """Every check fails for one reason (not done yet, refused, timed out, no file)."""

    def __init__(self, status, feedback):
        super().__init__(feedback)
        self.status, self.feedback = status, feedback


def evaluate(impl: Impl, exercise: Exercise | str,
             time_limit: float | None = _guard.DEFAULT_TIME_LIMIT,
             documents: bool = True) -> ExerciseResult:
    """Runs every check of ``exercise`` on ``impl``'s function.

    Args:
      impl: the implementation.
      exercise: an :class:`Exercise` or its name.
      time_limit: seconds one call may run, compilation not counted; None: no limit.
      documents: False skips the document checks (they then fail, unrun): a faster
        run for tests that look at other checks.
    """
    if isinstance(exercise, str):
        exercise = BY_NAME[exercise]
    try:
        return ExerciseResult(exercise,
                              _Grader(impl, exercise, time_limit, documents).run())
    except _Stop as stop:
        return ExerciseResult(exercise, [CheckResult(name, 0, pts, stop.status, stop.feedback)
                                         for name, pts in exercise.checks])


def evaluate_all(impl: Impl, names=None, time_limit=_guard.DEFAULT_TIME_LIMIT):
    names = names or [e.name for e in EXERCISES]
    return [evaluate(impl, name, time_limit) for name in names]


def _leaf_of(name: str, output: str) -> bool:
    return name == output or (name.startswith(output) and name[len(output)] == "[")


class _Grader:
    def __init__(self, impl: Impl, exercise: Exercise, time_limit, documents=True):
        self.impl, self.ex, self.time_limit = impl, exercise, time_limit
        self.documents = documents
        try:
            self.fn, refusal = impl.function(exercise.module, exercise.name)
        except ImplError as e:
            raise _Stop("error", str(e)) from None
        loaded = impl.module(exercise.module)
        self.where = impl.display(loaded.path)
        self.module = loaded.module
        if refusal:
            raise _Stop("refused", refusal.message(exercise.name, self.where))
        if exercise.name in loaded.stubs:  # no need to run it (nor to build the cases)
            raise _Stop("not done yet", f"not done yet: write it in {self.where}")
        # Compiled at XLA's cheapest level: each case runs once (see spec.QUICK_COMPILE).
        self.jitted = quick_jit(self.fn, static_argnums=exercise.static_argnums)
        self.jit_failure = None  # the first error that only jax.jit raised

    def call(self, args, jit=True):
        """The learner's answer, computed under ``jax.jit`` where that works.

        One compilation per case costs far less than compiling each operation of an
        eager call. An error under ``jit`` is retried eagerly: if the eager call works,
        only the ``jit`` check fails (with the jit error), and the other checks grade
        the eager answer.
        """
        if jit:
            try:
                return self._call(self.jitted, args)
            except _guard.LearnerError as e:
                out = self._call(self.fn, args)  # eager: raises the learner's own error
                self.jit_failure = self.jit_failure or e
                return out
        return self._call(self.fn, args)

    def _call(self, fn, args):
        # Fresh containers (the leaves are immutable arrays): an answer that assigns into
        # a params dict cannot change the cases, which are shared between gradings.
        args = jax.tree.map(lambda a: a, args)
        try:
            return _guard.call(fn, args, name=self.ex.name, root=self.impl.root,
                               time_limit=self.time_limit, modules=(self.module,))
        except _guard.NotDone:
            raise _Stop("not done yet", f"not done yet: write it in {self.where}") from None
        except (_guard.Refused, _guard.TimedOut) as f:
            raise _Stop(f.status, str(f)) from None

    # ------------------------------------------------------------------ checks

    def run(self) -> list[CheckResult]:
        ex = self.ex
        cases = ex.cases()
        outcomes = []  # (case, list[LeafComparison] | Exception)
        for case in cases:
            try:
                got = self.call(case.args)
                outcomes.append((case, match(got, case.expected, ex.outputs)))
            except (_guard.LearnerError, StructureError) as e:
                outcomes.append((case, e))
        results = [self.shapes(outcomes, cases)]
        points = dict(ex.checks)
        for name, pts in ex.checks:
            if name == "values" or name.startswith("values_"):
                output = None if name == "values" else name[len("values_"):]
                results.append(self.values(name, pts, output, outcomes, cases))
            elif name.startswith("doc"):
                results.append(self.document(name, points[name]) if self.documents else
                               CheckResult(name, 0, points[name], "failed", "not run"))
        results.append(self.jit(outcomes, cases))
        return results

    def _case_label(self, case: Case, cases) -> str:
        return f"case {cases.index(case) + 1} of {len(cases)}: {case.label}"

    def shapes(self, outcomes, cases) -> CheckResult:
        for case, out in outcomes:
            where = self._case_label(case, cases)
            if isinstance(out, Exception):
                return CheckResult("shapes", 0, 1, "failed", f"{out} ({where})")
            for cmp in out:
                if not cmp.shape_ok:
                    mistake = diagnose(cmp, self._candidates(case, cmp.name))
                    text = cmp.entry_message()
                    if mistake:
                        text = f"{mistake.message}: {text}"
                    return CheckResult("shapes", 0, 1, "failed", f"{text} ({where})",
                                       mistake.key if mistake else "shape")
        return CheckResult("shapes", 1, 1, "passed")

    def _candidates(self, case, leaf_name):
        if case.candidates is None:
            return []
        return case.candidates().get(leaf_name, [])

    def values(self, name, pts, output, outcomes, cases) -> CheckResult:
        for case, out in outcomes:
            where = self._case_label(case, cases)
            if isinstance(out, Exception):
                return CheckResult(name, 0, pts, "failed", f"{out} ({where})")
            mine = [c for c in out if output is None or _leaf_of(c.name, output)]
            bad = [c for c in mine if not c.approx]
            if not bad:
                continue
            if self.ex.layers_arg:
                first, text = self._walk_layers(case, out)
            else:
                first, text = bad[0], bad[0].entry_message()
            return _failed(name, pts, f"{text} ({where})", first,
                           self._candidates(case, first.name), out)
        return CheckResult(name, pts, pts, "passed")

    def _walk_layers(self, case, out):
        """The first layer, in the order backward visits them, whose gradient disagrees."""
        layers = case.args[0]
        by_name = {c.name: c for c in out}
        for i in reversed(range(len(layers))):
            mine = [c for n, c in by_name.items() if n.startswith(f"dparams[{i}]")]
            bad = [c for c in mine if not c.approx]
            if bad:
                after = (f"; layers {i + 1}..{len(layers) - 1} agree" if i + 1 < len(layers)
                         else "")
                return bad[0], (f"walking the layers as backward does (output first), the "
                                f"first whose gradient disagrees is layer {i}, "
                                f"{layers[i].name}{after}: {bad[0].entry_message()}")
        cmp = by_name["dx"]
        return cmp, (f"every layer's parameter gradient agrees, but dx, the gradient "
                     f"handed out of layer 0 ({layers[0].name}), does not: "
                     f"{cmp.entry_message()}")

    def document(self, name, pts) -> CheckResult:
        try:
            doc = self.ex.doc_case(name)
        except Exception as e:  # noqa: BLE001 - jaxbp.notes is another part of jaxbp
            return CheckResult(name, 0, pts, "error", f"the grader could not build this "
                               f"check from jaxbp.notes ({type(e).__name__}: {e}); a bug "
                               f"in jaxbp, not in your code")
        try:
            got = self.call(doc.args)
            out = match(got, doc.expected, self.ex.outputs)
        except (_guard.LearnerError, StructureError) as e:
            return CheckResult(name, 0, pts, "failed", f"{e} (on {doc.label})")
        by_name = {c.name: c for c in out}
        for p in doc.printed:
            cmp = by_name[p.leaf]
            if not cmp.shape_ok:
                return CheckResult(name, 0, pts, "failed",
                                   f"{cmp.entry_message()} (on {doc.label})", "shape")
            value = p.offset + p.scale * float(cmp.got[p.index])
            if math.isfinite(value) and abs(value - p.value) <= 0.5 * 10.0 ** -p.decimals + 1e-12:
                continue
            entry = f"{p.leaf}[{', '.join(map(str, p.index))}]" if p.index else p.leaf
            if p.scale != 1.0 or p.offset:
                entry = f"{p.offset:g} {'-' if p.scale < 0 else '+'} {abs(p.scale):g} · {entry}"
            note = f" ({p.note})" if p.note else ""
            text = (f"{p.label}: the document's value is {p.value:.{p.decimals}f}{note}; "
                    f"your {entry} gives {value:.{p.decimals + 3}g} ({p.source}; on "
                    f"{doc.label})")
            candidates = doc.candidates().get(p.leaf, []) if doc.candidates else []
            return _failed(name, pts, text, cmp, candidates, out)
        return CheckResult(name, pts, pts, "passed")

    def jit(self, outcomes, cases) -> CheckResult:
        """Right under ``jax.jit`` on every case (the cases ran jitted where they could)."""
        if self.jit_failure is not None:
            return CheckResult("jit", 0, 1, "failed", f"under jax.jit: {self.jit_failure}")
        for case, out in outcomes:
            where = self._case_label(case, cases)
            if isinstance(out, Exception):
                return CheckResult("jit", 0, 1, "failed", f"under jax.jit: {out} ({where})")
            if not all(c.approx for c in out):
                return CheckResult("jit", 0, 1, "failed", "under jax.jit: your function "
                                   "compiles, but its answer is wrong (see values)")
        return CheckResult("jit", 1, 1, "passed")


def _failed(name, pts, text, compared, candidates, out) -> CheckResult:
    """A failed check: the diagnosed mistake (if the evidence names one) before ``text``,
    then the comparison of every output, one line each."""
    mistake = diagnose(compared, candidates)
    if mistake:
        text = f"{mistake.message}: {text}"
    table = "\n".join("  " + c.line(_width(out)) for c in out)
    return CheckResult(name, 0, pts, "failed", f"{text}\n{table}",
                       mistake.key if mistake else None)


def _width(out: list[LeafComparison]) -> int:
    return max(len(c.name) for c in out)
