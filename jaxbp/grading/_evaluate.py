"""Grading one exercise of one implementation: every check, its points and feedback.

:func:`evaluate` builds the exercise's cases (random shapes, the documents' inputs) with
the answers autodiff gives, sends the inputs to the grading worker, where the learner's
function runs (``_sandbox``, ``_worker``), and turns what came back into one
:class:`CheckResult` per check. The comparison, the diagnosis and the points are made
here, from plain arrays; ``jaxbp grade`` and the pytest grading tests both read these
results.
"""

from __future__ import annotations

import concurrent.futures
import queue
import dataclasses
import math
import time

import numpy as np

from jaxbp._core import run_once_options
from jaxbp.grading import _sandbox
from jaxbp.grading._compare import (LeafComparison, Mistake, StructureError, diagnose,
                                    diagnose_across, match)
from jaxbp.grading._impl import Impl
from jaxbp.grading._worker import Refusal
from jaxbp.grading.registry import BY_NAME, EXERCISES
from jaxbp.grading.spec import Case, Exercise

IN_PLACE = Mistake("in-place", "changed its input in place: the docstring asks for a new "
                   "pytree and nothing changed where it was given (build the new one with "
                   "jax.tree.map; don't assign into params or update its arrays)")


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
    seconds: float = 0.0  # the wall time this exercise took to grade
    landlock: int = 0     # the Landlock ABI that confined the learner's code (0: none)

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


class _Failed(Exception):
    """A case that gave no answer; ``str(self)`` is the feedback."""


def evaluate(impl: Impl, exercise: Exercise | str,
             time_limit: float | None = _sandbox.DEFAULT_TIME_LIMIT,
             documents: bool = True, *, sandbox: _sandbox.Sandbox | None = None,
             scan: bool = True, scanned: dict | None = None) -> ExerciseResult:
    """Runs every check of ``exercise`` on ``impl``'s function, in the grading worker.

    Args:
      impl: the implementation.
      exercise: an :class:`Exercise` or its name.
      time_limit: seconds the import or one call may run, compilation not counted;
        None: no limit.
      documents: False skips the document checks (they then fail, unrun): a faster
        run for tests that look at other checks.
      sandbox: the worker to use (default: this process's shared one).
      scan: False skips the source scan, so that only the worker's run-time locks
        stand (for the grader's own tests of those locks).
      scanned: what the worker's source checks already found for this exercise
        (``Sandbox.scan``): a stub or a refusal is then reported without building the
        cases.
    """
    if isinstance(exercise, str):
        exercise = BY_NAME[exercise]
    start = time.perf_counter()
    grader = _Grader(impl, exercise, time_limit, documents, sandbox or _sandbox.shared(),
                     scan)
    try:
        if scanned:
            raise _Stop(*grader._stopped({"kind": next(iter(scanned)), **scanned}, 0))
        checks = grader.run()
    except _Stop as stop:
        checks = [CheckResult(name, 0, pts, stop.status, stop.feedback)
                  for name, pts in exercise.checks]
    return ExerciseResult(exercise, checks, time.perf_counter() - start, grader.landlock)


def _prepare(exercise: Exercise, documents: bool = True):
    """Builds an exercise's cases ahead of grading it (errors surface when graded)."""
    try:
        exercise.cases()
        if documents:
            for d in exercise.docs:
                exercise.doc_case(d.key)
    except Exception:  # noqa: BLE001 - evaluate reports them in the exercise's checks
        pass


def evaluate_all(impl: Impl, names=None, time_limit=_sandbox.DEFAULT_TIME_LIMIT,
                 *, workers: int = 1, **kw) -> list[ExerciseResult]:
    """:func:`evaluate` for each exercise named (default: all), in order. The worker
    first checks every exercise's source at once (unfinished and refused ones need no
    cases); then, while it runs one exercise, this process builds the next one's.

    ``workers``: how many exercises run at once, each in a worker of its own (the
    sandbox given, or this process's shared one, and ``workers - 1`` more, started
    here and stopped at the end): on a machine with more than one core the learner's
    code, which runs in the workers, is most of a whole set's time."""
    names = names or [e.name for e in EXERCISES]
    kw.setdefault("sandbox", _sandbox.shared())
    # The other workers start first: they import JAX while the first one scans.
    extra = [_sandbox.Sandbox() for _ in range(min(workers, len(names)) - 1)]
    for sb in extra:
        sb.start()
    try:
        return _evaluate_all(impl, names, time_limit, workers, extra, kw)
    finally:
        for sb in extra:
            sb.close()


def _evaluate_all(impl, names, time_limit, workers, extra, kw):
    sandbox = kw["sandbox"]
    documents = kw.get("documents", True)
    found = {}
    if kw.get("scan", True):  # stubs and refusals first: their cases are never built
        present = [n for n in names if (impl.root / BY_NAME[n].module).is_file()]
        # While the worker starts and scans, this process builds the first exercise's
        # cases (wasted only when the scan finds it unfinished).
        with concurrent.futures.ThreadPoolExecutor(1) as early:
            ahead = early.submit(_prepare, BY_NAME[names[0]], documents)
            found = sandbox.scan(impl.root, [(BY_NAME[n].module, n) for n in present])
            ahead.result()
    to_run = [n for n in names if not found.get(n)]
    if workers > 1 and len(to_run) > 1:
        return _evaluate_parallel(impl, names, time_limit, found, to_run,
                                  extra[:min(workers, len(to_run)) - 1], documents, kw)
    out = {}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(_prepare, BY_NAME[to_run[0]], documents) if to_run else None
        for name in names:
            if found.get(name):
                out[name] = evaluate(impl, name, time_limit, scanned=found[name], **kw)
                continue
            ahead.result()
            i = to_run.index(name)
            if i + 1 < len(to_run):
                ahead = pool.submit(_prepare, BY_NAME[to_run[i + 1]], documents)
            out[name] = evaluate(impl, name, time_limit, **kw)
    return [out[name] for name in names]


def _evaluate_parallel(impl, names, time_limit, found, to_run, extra, documents, kw):
    """:func:`evaluate_all`'s exercises on the shared sandbox and ``extra`` ones at once.
    Two pools of threads: one builds the exercises' cases in order, without waiting for
    the sandboxes (XLA compiles one exercise's references while Python traces the
    next's); the other runs each exercise on a free sandbox as soon as its cases are
    built."""
    sandboxes = queue.Queue()
    for sb in [kw["sandbox"], *extra]:
        sandboxes.put(sb)
    workers = 1 + len(extra)
    out = {name: evaluate(impl, name, time_limit, scanned=found[name], **kw)
           for name in names if found.get(name)}
    with concurrent.futures.ThreadPoolExecutor(workers) as builders, \
            concurrent.futures.ThreadPoolExecutor(workers) as runners:
        built = {name: builders.submit(_prepare, BY_NAME[name], documents)
                 for name in to_run}

        def one(name):
            built[name].result()
            sb = sandboxes.get()
            try:
                return evaluate(impl, name, time_limit, **{**kw, "sandbox": sb})
            finally:
                sandboxes.put(sb)

        futures = {name: runners.submit(one, name) for name in to_run}
        for name in to_run:
            out[name] = futures[name].result()
    return [out[name] for name in names]


def _leaf_of(name: str, output: str) -> bool:
    return name == output or (name.startswith(output) and name[len(output)] == "[")


class _Grader:
    def __init__(self, impl: Impl, exercise: Exercise, time_limit, documents, sandbox,
                 scan):
        self.impl, self.ex, self.time_limit = impl, exercise, time_limit
        self.documents, self.sandbox, self.scan = documents, sandbox, scan
        self.path = impl.root / exercise.module
        self.where = impl.display(self.path)
        self.jit_failure = None  # the first error that only jax.jit raised
        self.mutated: dict[int, str] = {}
        self.landlock = 0

    def _answers(self, calls, mutation_cases=()):
        """Runs the learner's function on every call in the worker: ``[output or
        exception]``, one per call; raises :class:`_Stop` when nothing can be graded."""
        if not self.path.is_file():
            raise _Stop("error", f"no file {self.path}")
        job = _sandbox.Job(self.ex.name, self.ex.module, self.impl.root, calls,
                           self.ex.static_argnums, self.time_limit, scan=self.scan,
                           mutation_cases=tuple(mutation_cases),
                           compiler_options=run_once_options())
        outcome = self.sandbox.run(job)
        self.landlock = outcome.landlock
        if outcome.stop is not None:
            raise _Stop(*self._stopped(outcome.stop, len(calls)))
        if outcome.jit_error:
            self.jit_failure = _Failed(outcome.jit_error.get("text", "an error"))
        self.mutated = outcome.mutated
        answers = []
        for i in range(len(calls)):
            if i in outcome.errors:
                answers.append(_Failed(outcome.errors[i].get("text", "an error")))
            elif i in outcome.outputs:
                answers.append(outcome.outputs[i])
            else:
                answers.append(_Failed("no answer came back from this call"))
        return answers

    def _stopped(self, stop: dict, n_calls: int) -> tuple[str, str]:
        """The status and feedback of a job that stopped before its cases were graded."""
        kind, name, module = stop.get("kind"), self.ex.name, self.ex.module
        error = stop.get("error") or {}
        if kind == "import" and error.get("kind") in ("not_done", "refused"):
            kind = error["kind"]
        if kind in ("stub", "not_done"):
            return "not done yet", f"not done yet: write it in {self.where}"
        if kind == "refused" and "refused" in stop:
            fields = {k: v for k, v in stop["refused"].items()
                      if k in ("what", "line", "via", "kind", "file")}
            return "refused", Refusal(**fields).message(name, self.where)
        if kind == "refused":
            return "refused", (f"refused: {name} called {error.get('what')} at run time; "
                               f"the exercise is to write the backward pass by hand, and "
                               f"the grader checks it against JAX's autodiff, so calling "
                               f"it proves nothing")
        if kind == "syntax":
            s = stop["syntax"]
            return "error", f"{s.get('file')} does not parse: {s.get('msg')} (line {s.get('line')})"
        if kind == "import":
            return "error", (f"{module} does not import: {error.get('type')}: "
                             f"{error.get('message', '')}{error.get('frame', '')}")
        if kind == "missing":
            return "error", (f"{self.where} has no function {name}(): keep the function's "
                             f"name and signature as given")
        if kind == "timeout":
            limit = self.time_limit
            if stop.get("why") == "compile":
                what = (f"{name}'s {n_calls} cases" if stop.get("case") == _sandbox.ALL_CASES
                        else name)
                return "timeout", (f"stopped: JAX took more than "
                                   f"{_sandbox.compile_limit(n_calls, stop.get('case')):g} "
                                   f"s to compile {what} (a long Python loop unrolled under "
                                   f"jax.jit? lax.fori_loop or vectorized code compiles "
                                   f"faster)")
            if stop.get("phase") == "import":
                return "timeout", (f"stopped after {limit:g} s: importing {module} ran "
                                   f"longer than the limit (the top level of your file runs "
                                   f"when it is imported; JAX's compilation is not counted)")
            return "timeout", (f"stopped after {limit:g} s (an infinite loop?): {name} ran "
                               f"longer than the limit, which counts your code's running "
                               f"time, not JAX's compilation")
        if kind == "crash":
            doing = "setting up"
            if stop.get("phase") == "import":
                doing = f"importing {module}"
            elif stop.get("case") == _sandbox.ALL_CASES:
                doing = f"running the program compiled from {name}'s {n_calls} cases"
            elif stop.get("case") is not None:
                doing = f"running {name} on case {int(stop['case']) + 1} of {n_calls}"
            return "error", (f"the process running your code ended {stop.get('how')} while "
                             f"{doing}; no points for this exercise (a function must return "
                             f"its answer: no exit, no signals, no crash)")
        if kind == "too_big":
            return "error", stop.get("text", "")
        if kind == "protocol":
            return "error", ("the grading process's messages came back garbled (did your "
                             "code write to a file descriptor it does not own?)")
        return "error", (f"the grader's worker failed ({stop.get('text', kind)}); a bug in "
                         f"jaxbp's grader, not in your code")

    # ------------------------------------------------------------------ checks

    def run(self) -> list[CheckResult]:
        ex = self.ex
        cases = ex.cases()
        docs = []  # (name, points, DocCase or the exception that building it raised)
        for name, pts in ex.checks:
            if name.startswith("doc") and self.documents:
                try:
                    docs.append((name, pts, ex.doc_case(name)))
                except Exception as e:  # noqa: BLE001 - jaxbp.notes is another part of jaxbp
                    docs.append((name, pts, e))
        calls = [c.worker_args or c.args for c in cases]
        calls += [d.args for _, _, d in docs if not isinstance(d, Exception)]
        mutation = range(len(cases)) if ex.inputs_unchanged else ()
        answers = iter(self._answers(calls, mutation))
        outcomes = []  # (case, list[LeafComparison] | Exception)
        for case in cases:
            outcomes.append((case, self._compare(next(answers), case.expected)))
        results = [self.shapes(outcomes, cases)]
        for name, pts in ex.checks:
            if name == "values" or name.startswith("values_"):
                output = None if name == "values" else name[len("values_"):]
                results.append(self.values(name, pts, output, outcomes, cases))
            elif name.startswith("doc"):
                doc = next((d for n, _, d in docs if n == name), None)
                if doc is None:
                    results.append(CheckResult(name, 0, pts, "failed", "not run"))
                elif isinstance(doc, Exception):
                    results.append(CheckResult(
                        name, 0, pts, "error", f"the grader could not build this check "
                        f"from jaxbp.notes ({type(doc).__name__}: {doc}); a bug in jaxbp, "
                        f"not in your code"))
                else:
                    results.append(self.document(name, pts, doc, next(answers)))
        results.append(self.jit(outcomes, cases))
        return results

    def _compare(self, answer, expected):
        if isinstance(answer, Exception):
            return answer
        try:
            return match(answer, expected, self.ex.outputs)
        except StructureError as e:
            return e
        except Exception as e:  # noqa: BLE001 - a tree too odd to compare (mixed keys...)
            return StructureError(f"returned something the grader cannot compare "
                                  f"({type(e).__name__}: {e})")

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
        with np.errstate(all="ignore"):  # a mistake's answer may divide by zero (z = 50)
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
                           self._candidates(case, first.name), out,
                           self._evidence(first.name, case, outcomes))
        for i, changed in sorted(self.mutated.items()):
            where = self._case_label(cases[i], cases)
            return CheckResult(name, 0, pts, "failed", f"{IN_PLACE.message}: after the "
                               f"call, {changed} was not what it had been ({where})",
                               IN_PLACE.key)
        return CheckResult(name, pts, pts, "passed")

    def _evidence(self, leaf, case, outcomes):
        """``(comparison, candidates)`` of ``leaf`` in every case from ``case`` on where it
        is wrong (for a diagnosis that fits them all)."""
        out, started = [], False
        for c, compared in outcomes:
            started = started or c is case
            if not started or isinstance(compared, Exception):
                continue
            cmp = next((x for x in compared if x.name == leaf), None)
            if cmp is not None and not cmp.approx:
                out.append((cmp, self._candidates(c, leaf)))
        return out

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

    def document(self, name, pts, doc, answer) -> CheckResult:
        out = self._compare(answer, doc.expected)
        if isinstance(out, Exception):
            return CheckResult(name, 0, pts, "failed", f"{out} (on {doc.label})")
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
            with np.errstate(all="ignore"):
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


def _failed(name, pts, text, compared, candidates, out, evidence=None) -> CheckResult:
    """A failed check: the diagnosed mistake (if the evidence names one) before ``text``,
    then the comparison of every output, one line each. ``evidence``: the same output
    in every case where it is wrong, for a diagnosis that fits them all."""
    mistake = diagnose_across(evidence) if evidence else diagnose(compared, candidates)
    if mistake:
        text = f"{mistake.message}: {text}"
    table = "\n".join("  " + c.line(_width(out)) for c in out)
    return CheckResult(name, 0, pts, "failed", f"{text}\n{table}",
                       mistake.key if mistake else None)


def _width(out: list[LeafComparison]) -> int:
    return max(len(c.name) for c in out)
