"""``jaxbp notes``: the documents' numbers beside the library's, for a terminal or a machine.

``jaxbp notes`` lists the five documents. ``jaxbp notes 000`` prints every number the
document prints beside the exact replay under both conventions, whether it agrees (and
how: exactly, or through the rounding the writer carried), and the errata with their
evidence. ``001`` and ``004`` print each formula with its check against ``jax.grad``.
Colour (rich) only when stdout is a terminal; ``--json`` for machines; ``--plot`` draws
the network; ``--lang zh`` adds Chinese beside the English: the documents' headings, the
table's column names, the footnotes' and the summary's fixed words (the explanations
themselves stay in English).
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata

# ------------------------------------------------------------------------ plain data


def _erratum_dict(e):
    return None if e is None else {"kind": e.kind, "what": e.what, "corrected": e.corrected,
                                   "evidence": e.evidence, "quantity": e.quantity,
                                   "written": e.written}


def _row_dict(r):
    return {"name": r.name, "label": r.label, "printed": r.printed, "text": r.text,
            "decimals": r.decimals, "notes": r.notes, "standard": r.standard,
            "carried": r.carried, "convention": r.convention, "judged_by": r.judged_by,
            "agrees": r.agrees, "path": r.path, "erratum": _erratum_dict(r.erratum),
            "slips": [_erratum_dict(s) for s in r.slips],
            "found_slips": [s._asdict() for s in r.found_slips],
            "doc_formula": r.doc_formula, "section": r.section,
            "section_zh": r.section_zh, "line": r.line, "note": r.note, "kind": r.kind}


def _summary(rows):
    return {"numbers": len(rows), "agree": sum(r.agrees for r in rows),
            "exact": sum(r.path == "exact" for r in rows),
            "carried": sum(r.path == "carried" for r in rows),
            "errata": sum(r.erratum is not None for r in rows),
            "unexplained": sum(not r.agrees and r.erratum is None for r in rows),
            "line_slips": sum(len(r.slips) for r in rows)}


# ------------------------------------------------------------------------ rendering


class _Out:
    """Writes plain text, or rich markup when stdout is a terminal."""

    def __init__(self, stream):
        self.stream = stream
        self.console = None
        if stream.isatty():
            try:
                from rich.console import Console
                self.console = Console(file=stream, highlight=False)
            except ImportError:  # rich is optional
                self.console = None

    @property
    def rich(self):
        return self.console is not None

    def line(self, text="", style=None):
        if self.console is not None:
            from rich.text import Text
            self.console.print(Text(text, style=style) if style else Text(text))
        else:
            print(text, file=self.stream)


def _fmt(v, decimals):
    if v is None:
        return ""
    return f"{v:.{min(max(decimals + 2, 4), 8)}f}"


def _heading(en, zh, lang):
    return f"{en} / {zh}" if lang == "zh" and zh else en


# --lang zh: the table's column names and the fixed words of footnotes and summaries.
_COLUMNS_ZH = {"name": "名称", "printed": "文档值", "notes": "笔记顺序", "standard": "标准反传",
               "agrees": "是否一致", "see": "脚注"}
_KIND_ZH = {"erratum": "勘误", "operand": "运算数笔误", "label": "名称笔误",
            "formula": "公式错误", "note": "说明"}
_WORDS_ZH = (("; it should be ", "; 应为 it should be "), ("Evidence: ", "依据 Evidence: "),
             ("(right value ", "(正确值 right value "), ("(right: ", "(正确 right: "))


def _width(text):
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text, width, right=False):
    space = " " * max(0, width - _width(text))
    return space + text if right else text + space


def _zh_words(text, lang):
    if lang != "zh":
        return text
    for en, both in _WORDS_ZH:
        text = text.replace(en, both)
    return text


def _print_listing(ex_list, out, lang):
    out.line("The five documents (jaxbp notes NNN for one of them):", "bold")
    for ex in ex_list:
        kind = "worked example" if ex.kind == "worked" else "formulas"
        out.line(f"  {ex.name}  {ex.title}  [{kind}]", "bold" if out.rich else None)
        if lang == "zh":
            out.line(f"       {ex.title_zh}")
        out.line(f"       {ex.summary}")
        if lang == "zh":
            out.line(f"       {ex.summary_zh}")


_SHORT = {"erratum": "err", "operand": "op", "label": "lbl", "formula": "fml", "note": ""}


def _agree_text(r):
    """``exact`` / ``carried`` (agrees, and how), ``ERRATUM``, or ``NO``."""
    if r.agrees:
        return r.path
    return "ERRATUM" if r.erratum is not None else "NO"


def _notes_for(r):
    """Footnotes for a row: its erratum, its line's slips, and its reading note."""
    items = []
    if r.erratum is not None:
        e = r.erratum
        items.append(("erratum", f"{e.what}; it should be {e.corrected}. "
                                 f"Evidence: {e.evidence}."))
    for s in r.slips:
        if s.kind == "operand":
            items.append(("operand", f"{s.what} (right value {s.corrected:g}). "
                                     f"Evidence: {s.evidence}."))
        elif s.kind == "formula":
            computed = ("" if r.doc_formula is None else
                        f" (the document's formula, recomputed: {r.doc_formula:.4g})")
            items.append(("formula", f"{s.what}. Evidence: {s.evidence}{computed}."))
        else:
            items.append((s.kind, f"{s.what} (right: {s.corrected}). {s.evidence}."))
    if r.note:
        items.append(("note", r.note))
    return items


def _rich_section(out, heading, cells_list, lang="en"):
    """One section as a rich table: fixed column widths, so sections line up."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(heading), title_justify="left", title_style="bold cyan",
                  header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    for col, just, width in (("name", "left", 18), ("printed", "right", 8),
                             ("notes", "right", 10), ("standard", "right", 10),
                             ("agrees", "left", 8), ("see", "left", 8)):
        title = f"{col}\n{_COLUMNS_ZH[col]}" if lang == "zh" else col
        table.add_column(title, justify=just, min_width=width, no_wrap=col != "see")
    for r, cells in cells_list:
        style = "green" if r.agrees else ("yellow" if r.erratum is not None else "red")
        row = [escape(c) for c in cells]
        row[4] = f"[{style}]{row[4]}[/]"
        table.add_row(*row)
    out.console.print(table)


def _print_worked(ex, rows, notes_operands, out, lang, judged):
    out.line(f"{ex.name}  {_heading(ex.title, ex.title_zh, lang)}", "bold")
    out.line(f"     the document's convention: {ex.convention}"
             + ("  (update a layer, then pass the error down through its updated "
                "weights)" if ex.convention == "notes" else "  (textbook backprop)"))
    out.line(f"     agreement judged by: "
             f"{'each number by its own convention' if judged == 'doc' else judged}")
    out.line("     agrees: exact = the float64 replay rounds to the printed number; carried = "
             "the line's own arithmetic on the document's rounded operands does; "
             "see: [n] footnotes (err: wrong printed value, op: a wrong operand on the "
             "line, lbl: a wrong name, fml: a wrong formula)")
    if lang == "zh":
        out.line("     是否一致：exact = float64 精确重算按印出的位数舍入后相同；carried = 用文档"
                 "自己舍入后的运算数重算这一行得到印出的数；ERRATUM = 勘误；脚注 [n]（err 勘误，"
                 "op 运算数笔误，lbl 名称笔误，fml 公式错误）")
    footnotes = []
    header = (f"{'name':<18s} {'printed':>9s} {'notes':>12s} {'standard':>12s}  "
              f"{'agrees':<8s} see")
    if not out.rich:
        out.line()
        out.line(header)
        if lang == "zh":
            z = _COLUMNS_ZH
            out.line(f"{_pad(z['name'], 18)} {_pad(z['printed'], 9, True)} "
                     f"{_pad(z['notes'], 12, True)} {_pad(z['standard'], 12, True)}  "
                     f"{_pad(z['agrees'], 8)} {z['see']}")
    sections = []  # (heading, [cells...]) in document order
    for r in rows:
        heading = _heading(r.section, r.section_zh, lang)
        if not sections or sections[-1][0] != heading:
            sections.append((heading, []))
        refs = []
        name = r.name if r.label == r.name else f"{r.name} ({r.label})"
        for kind, text in _notes_for(r):
            footnotes.append((kind, name, text))
            refs.append(f"[{len(footnotes)}]{_SHORT.get(kind, kind)}")
        sections[-1][1].append((r, [name, r.text, _fmt(r.notes, r.decimals),
                                    _fmt(r.standard, r.decimals), _agree_text(r),
                                    " ".join(refs)]))
    for heading, cells_list in sections:
        if out.rich:
            _rich_section(out, heading, cells_list, lang)
            continue
        out.line(f"-- {heading} --")
        for _, cells in cells_list:
            out.line(f"{cells[0]:<18s} {cells[1]:>9s} {cells[2]:>12s} {cells[3]:>12s}  "
                     f"{cells[4]:<8s} {cells[5]}".rstrip())
    out.line()
    out.line(_heading("Numbers printed only inside other lines (parameters, inputs, "
                      "forward values)", "仅作为运算数出现的数字", lang), "bold")
    for o in notes_operands:
        status = "ok" if o.agrees else f"SLIP, right value {o.corrected:g}"
        where = ", ".join(o.lines[:4]) + (f" +{len(o.lines) - 4} more" if len(o.lines) > 4
                                          else "")
        out.line(f"  {o.quantity:<10s} {o.written:>7s}  exact {o.value:<10.6g} "
                 f"{status:<24s} in: {where}", None if o.agrees else "yellow")
    out.line()
    for i, (kind, label, text) in enumerate(footnotes, 1):
        style = None if kind == "note" else "yellow"
        kind_zh = f"{_KIND_ZH.get(kind, kind)} " if lang == "zh" else ""
        out.line(f"[{i}] {kind_zh}{label}: {_zh_words(text, lang)}", style)
    s = _summary(rows)
    out.line()
    other = ("unexplained" if judged == "doc" else
             f"disagree under '{judged}' without an erratum")
    out.line(f"{s['numbers']} printed numbers: {s['agree']} agree ({s['exact']} exactly, "
             f"{s['carried']} through the carried rounding), {s['errata']} errata, "
             f"{s['unexplained']} {other}; {s['line_slips']} other slips on the lines.",
             "bold")
    if lang == "zh":
        out.line(f"共 {s['numbers']} 个印出的数字：{s['agree']} 个一致（{s['exact']} 个精确一致，"
                 f"{s['carried']} 个按文档的舍入一致），{s['errata']} 处勘误，"
                 f"{s['unexplained']} 个无法解释；另有 {s['line_slips']} 处行内笔误。", "bold")
    if ex.reading:
        out.line()
        out.line(_reading_heading(lang), "bold")
        for para in ex.reading.replace("``", "").split("\n* "):
            out.line("  * " + " ".join(para.lstrip("* ").split()))


def _reading_heading(lang):
    """Where the whole reading is: docs/reading.md, in the checkout or the package."""
    from jaxbp import _resources

    path = _resources.reading_path()
    try:
        shown = os.path.relpath(path)
        if shown.startswith(".."):
            shown = str(path)
    except ValueError:  # another drive
        shown = str(path)
    return _heading(f"Finer points of this reading (all of it: {shown})",
                    f"本解读的细节（完整解读：{shown}）", lang) + ":"


def _print_formulas(ex, results, out, lang):
    out.line(f"{ex.name}  {_heading(ex.title, ex.title_zh, lang)}", "bold")
    out.line(f"     {ex.summary}")
    out.line("     each closed form, as the document writes it, against jax.grad "
             "(float64, random inputs):")
    out.line()
    for f, r in zip(ex.entries, results):
        status = "pass" if r.passed else "FAIL"
        out.line(f"  {status}  {f.name}   (max error {r.max_error:.1e})",
                 "green" if r.passed else "red")
        out.line(f"        {f.expression}")
        if f.note:
            out.line(f"        {'note / 注' if lang == 'zh' else 'note'}: {f.note}")
    out.line()
    passed = sum(r.passed for r in results)
    out.line(f"{passed} of {len(results)} formulas agree with jax.grad."
             + (f" / {len(results)} 个公式中有 {passed} 个与 jax.grad 一致。"
                if lang == "zh" else ""), "bold")
    if ex.reading:
        out.line(_reading_heading(lang), "bold")
        out.line(f"  {ex.reading}.")


# ------------------------------------------------------------------------ entry point


def run(args) -> int:
    """``jaxbp notes``; returns the exit status (0: all agree or are explained)."""
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (``jaxbp notes 000 | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args) -> int:
    from jaxbp import notes

    out = _Out(sys.stdout)
    if args.document is None:
        docs = notes.documents()
        if args.json:
            print(json.dumps([{"name": d.name, "title": d.title, "title_zh": d.title_zh,
                               "summary": d.summary, "summary_zh": d.summary_zh,
                               "kind": d.kind} for d in docs], ensure_ascii=False, indent=1))
        else:
            _print_listing(docs, out, args.lang)
        return 0
    try:
        ex = notes.load(args.document)
    except (ValueError, TypeError) as e:
        print(f"jaxbp notes: {e}", file=sys.stderr)
        return 2
    code = 0
    if ex.kind == "formulas":
        results = notes.check(ex)
        if args.json:
            print(json.dumps({"document": ex.name, "title": ex.title,
                              "title_zh": ex.title_zh, "kind": ex.kind,
                              "formulas": [{"name": f.name, "expression": f.expression,
                                            "note": f.note, "max_error": r.max_error,
                                            "passed": r.passed}
                                           for f, r in zip(ex.entries, results)],
                              "reading": ex.reading}, ensure_ascii=False, indent=1))
        else:
            _print_formulas(ex, results, out, args.lang)
        code = 0 if all(r.passed for r in results) else 1
    else:
        judged = None if args.convention == "doc" else args.convention
        rows = notes.compare(ex, judged)
        operand_rows = notes.operands(ex)
        if args.json:
            print(json.dumps({"document": ex.name, "title": ex.title,
                              "title_zh": ex.title_zh, "kind": ex.kind,
                              "convention": ex.convention,
                              "judged_by": args.convention,
                              "rows": [_row_dict(r) for r in rows],
                              "operands": [o._asdict() for o in operand_rows],
                              "summary": _summary(rows), "reading": ex.reading},
                             ensure_ascii=False, indent=1))
        else:
            _print_worked(ex, rows, operand_rows, out, args.lang, args.convention)
        # Under the document's own convention every number must agree or be an
        # erratum; under the other one, disagreements are the lesson, not a failure.
        if judged is None and any(not r.agrees and r.erratum is None for r in rows):
            code = 1
    if args.plot:
        from jaxbp.notes.plot import plot
        convention = None if args.convention == "doc" else args.convention
        try:
            path = plot(ex, args.plot, convention=convention, lang=args.lang)
        except (ValueError, OSError) as e:
            print(f"jaxbp notes: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return code
