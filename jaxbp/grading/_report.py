"""The grade report: a table for people; JSON for CI autograders, GitHub Classroom's
reporter and Gradescope.

Every report is written by the grader itself, from the results it computed, after the
learner's code has stopped running.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil

from jaxbp.grading._evaluate import summarize
from jaxbp.grading.registry import BY_NAME


@dataclasses.dataclass
class Row:
    """One exercise's grade, built from its checks (dicts, as the tests record them)."""

    name: str
    checks: list[dict]
    seconds: float = 0.0

    @property
    def number(self) -> int:
        return BY_NAME[self.name].number

    @property
    def points(self) -> int:
        return sum(c["points"] for c in self.checks)

    @property
    def max_points(self) -> int:
        return BY_NAME[self.name].max_points

    @property
    def status(self) -> str:
        if len(self.checks) < len(BY_NAME[self.name].checks):
            return "error"
        return summarize(self.checks)[0]

    @property
    def feedback(self) -> str:
        if len(self.checks) < len(BY_NAME[self.name].checks):
            return "the grading tests did not report every check (see the errors above)"
        return summarize(self.checks)[1]


def table(rows: list[Row], width: int | None = None) -> str:
    """exercise, points, status and the first line of feedback; the total at the end."""
    width = width or max(shutil.get_terminal_size((120, 24)).columns, 80)
    name_w = max([len(r.name) for r in rows] + [8])
    head = f"{'#':>2}  {'exercise':<{name_w}}  {'points':>6}  {'status':<12}  feedback"
    lines = [head, "-" * min(width, len(head) + 40)]
    for r in rows:
        first = r.feedback.splitlines()[0] if r.feedback else ""
        room = width - (2 + 2 + name_w + 2 + 6 + 2 + 12 + 2)
        if len(first) > room:
            first = first[:max(room - 1, 10)] + "…"
        pts = f"{r.points}/{r.max_points}"
        lines.append(f"{r.number:>2}  {r.name:<{name_w}}  {pts:>6}  {r.status:<12}  {first}")
    score, max_score = sum(r.points for r in rows), sum(r.max_points for r in rows)
    lines.append("-" * min(width, len(head) + 40))
    lines.append(f"{'':>2}  {'total':<{name_w}}  {f'{score}/{max_score}':>6}")
    return "\n".join(lines)


def details(rows: list[Row], everything: bool = False) -> str:
    """The full feedback of each failing check (comparison per output included)."""
    out = []
    for r in rows:
        if r.status == "passed" or (r.status == "not done yet" and not everything):
            continue
        shown = {}
        for c in r.checks:
            if c["status"] == "passed":
                continue
            head = f"{r.name} [{c['name']}] {c['points']}/{c['max_points']}"
            if c["feedback"] in shown:  # every check is listed; its text only once
                out.append(f"{head}: as [{shown[c['feedback']]}]")
                continue
            shown[c["feedback"]] = c["name"]
            body = c["feedback"].replace("\n", "\n    ")
            out.append(f"{head}: {body}")
    return "\n".join(out)


def to_json(rows: list[Row]) -> dict:
    """``{"score", "max_score", "exercises": [{"name", "points", "max_points", "status",
    "feedback", "checks"}]}``."""
    return {
        "score": sum(r.points for r in rows),
        "max_score": sum(r.max_points for r in rows),
        "exercises": [{"name": r.name, "points": r.points, "max_points": r.max_points,
                       "status": r.status, "feedback": r.feedback,
                       "checks": [{k: c[k] for k in ("name", "points", "max_points",
                                                     "status", "feedback")}
                                  for c in r.checks]}
                      for r in rows],
    }


def write_json(rows: list[Row], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_json(rows), f, indent=2, ensure_ascii=False)
        f.write("\n")


def _test_name(r: Row, check: dict) -> str:
    return f"{r.number:02d} {r.name} [{check['name']}]"


def classroom(rows: list[Row], error: str | None = None) -> dict:
    """GitHub Classroom's runner payload (what ``autograding-command-grader`` puts in its
    ``result`` output, base64-encoded, and ``autograding-grading-reporter`` reads from
    ``<RUNNER>_RESULTS``): ``{"version": 1, "status", "max_score", "tests": [{"name",
    "status", "score", "message", "test_code", "filename", "line_no", "duration"}]}``,
    one test per check, with its partial points. ``error``: the grading itself failed
    (status "error", whatever the points)."""
    tests = []
    for r in rows:
        per_check = r.seconds / max(len(r.checks), 1)
        for c in r.checks:
            status = ("pass" if c["status"] == "passed" else
                      "error" if c["status"] in ("error", "timeout") else "fail")
            tests.append({"name": _test_name(r, c), "status": status,
                          "score": c["points"], "message": c["feedback"],
                          "test_code": f"jaxbp grade {r.name}",
                          "filename": BY_NAME[r.name].module, "line_no": 0,
                          "duration": int(round(per_check * 1000))})
    score = sum(r.points for r in rows)
    max_score = sum(r.max_points for r in rows)
    status = "error" if error else ("pass" if score == max_score else "fail")
    out = {"version": 1, "status": status, "max_score": max_score, "tests": tests}
    if error:
        out["message"] = error
    return out


def classroom_base64(rows: list[Row], error: str | None = None) -> str:
    """:func:`classroom`'s payload as the reporter reads it: base64 of its JSON."""
    text = json.dumps(classroom(rows, error), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def gradescope(rows: list[Row], seconds: float, error: str | None = None) -> dict:
    """Gradescope's ``results.json``: ``{"score", "execution_time", "output", "tests":
    [{"name", "score", "max_score", "status", "output", "visibility"}]}``, one test per
    check."""
    tests = []
    for r in rows:
        for c in r.checks:
            tests.append({"name": _test_name(r, c), "score": c["points"],
                          "max_score": c["max_points"],
                          "status": "passed" if c["status"] == "passed" else "failed",
                          "output": c["feedback"], "visibility": "visible"})
    score = sum(r.points for r in rows)
    max_score = sum(r.max_points for r in rows)
    output = f"{score}/{max_score} points (jaxbp grade)"
    if error:
        output = f"{output}; the grading failed: {error}"
    return {"score": score, "execution_time": int(round(seconds)), "output": output,
            "tests": tests}
