"""The grade report: a table for people, a JSON document for CI autograders."""

from __future__ import annotations

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
    """Every check of each exercise that did not pass, with its full feedback (the
    comparison per output included).

    Checks whose feedback is the same are listed together on one line
    (``name [values, jit] 0/3: ...``), so no check is hidden. ``everything`` (``-v``)
    adds the exercises not done yet and the checks that passed.
    """
    out = []
    for r in rows:
        if not everything and r.status in ("passed", "not done yet"):
            continue
        groups: dict[tuple[str, str], list[dict]] = {}
        for c in r.checks:
            if c["status"] == "passed" and not everything:
                continue
            feedback = "passed" if c["status"] == "passed" else c["feedback"]
            groups.setdefault((c["status"] == "passed", feedback), []).append(c)
        # failing checks first, in the order they were graded; then those that passed
        for (_, feedback), checks in sorted(groups.items(), key=lambda g: g[0][0]):
            names = ", ".join(c["name"] for c in checks)
            points = sum(c["points"] for c in checks)
            max_points = sum(c["max_points"] for c in checks)
            body = feedback.replace("\n", "\n    ")
            out.append(f"{r.name} [{names}] {points}/{max_points}: {body}")
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
