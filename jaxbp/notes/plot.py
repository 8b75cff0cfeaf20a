"""Draws a document's example: the network, each unit with its forward value, each edge
with its weight, gradient and new value, the document's slips marked in red.

Matplotlib is imported here, lazily, with the Agg backend (no display needed). Labels
keep the documents' names. Chinese appears only where a CJK font is installed.
"""

from __future__ import annotations

import os

from jaxbp.notes._example import Example, FormulaExample

_RED = "#c0392b"
_BLUE = "#1f4e79"
_GREY = "#7f8c8d"
# Sizes in points, for a figure shown scaled to a screen's width (about 1500 pixels):
# nothing below 8.5 pt, which still reads as about 10 pixels there.
_EDGE_FONT = 8.5
_NODE_FONT = 10.5
_NOTE_FONT = 8.5
_LEGEND_FONT = 9.5
_TITLE_FONT = 13
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
              "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC",
              "Heiti SC", "AR PL UMing CN")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _cjk_font():
    from matplotlib import font_manager
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in _CJK_FONTS if n in names), None)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _marks(example, rows):
    """name -> the document's slips about that quantity, as short strings."""
    marks = {}
    for r in rows:
        if r.erratum is not None:
            marks.setdefault(r.name, []).append(
                f"✗ {r.label} printed {r.text}, should be {r.erratum.corrected:g}")
        for s in r.found_slips:
            line = f"✗ {s.quantity} written {s.written} ({r.label} line)"
            if line not in marks.get(s.quantity, []):
                marks.setdefault(s.quantity, []).append(line)
    return marks


def _title(example, lang):
    title = f"{example.name}: {example.title}"
    if lang == "zh" and _cjk_font():
        title += f"\n{example.title_zh}"
    return title


def plot_worked(example: Example, path: str, convention: str | None = None,
                lang: str = "en") -> str:
    """Draws a worked example's network after one replayed step; returns ``path``.

    ``convention=None`` replays under the document's own convention. Below the drawing
    a legend says what the edge labels (weight, ∇ gradient, → new value), the red marks
    and the grey edges mean.
    """
    convention = convention or example.convention
    from jaxbp.notes.compare import compare
    from jaxbp.notes.replay import replay

    plt = _pyplot()
    values = replay(example, convention)
    rows = compare(example)
    marks = _marks(example, rows)
    nodes, edges = example.graph()
    pos = {n[0]: (n[1] * 4.2, -n[2] * 2.3) for n in nodes}
    n_cols = max(n[1] for n in nodes) + 1
    n_rows = max(n[2] for n in nodes) + 1
    legend_h = 0.75 if not any(e[2] is None for e in edges) else 1.0
    fig_w, fig_h = 3.5 * n_cols + 1.0, 2.0 * n_rows + 1.4 + legend_h
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=110)
    if lang == "zh" and _cjk_font():
        plt.rcParams["font.sans-serif"] = [_cjk_font(), "DejaVu Sans"]
    lo_x = min(p[0] for p in pos.values()) - 1.0
    hi_x = max(p[0] for p in pos.values()) + 1.0
    lo_y = min(p[1] for p in pos.values()) - 1.4
    hi_y = max(p[1] for p in pos.values()) + 0.8
    # The drawing's share of the figure (the rest: title and legend), and points per
    # data unit (equal aspect: the tighter direction), to size the edge labels' boxes and
    # place them where they overlap nothing already drawn.
    share_h = (fig_h - 1.1 - legend_h) / fig_h
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 1.1 / fig_h,
                        bottom=legend_h / fig_h)
    scale = min(72 * fig_w * 0.98 / (hi_x - lo_x), 72 * fig_h * share_h / (hi_y - lo_y))
    taken = [(4.0, (x - 0.7, y - 0.7, x + 0.7, y + 0.7)) for x, y in pos.values()]

    def place(x0, y0, x1, y1, text):
        lines = text.split("\n")
        half_w = max(len(s) for s in lines) * 0.62 * _EDGE_FONT / scale / 2 + 0.06
        half_h = len(lines) * 1.35 * _EDGE_FONT / scale / 2 + 0.05
        best = None
        # Along the edge first, then nudged up or down off it; covering a unit costs
        # more than covering another label.
        for dy in (0.0, 0.3, -0.3):
            for t in (0.25, 0.5, 0.75, 0.38, 0.62, 0.31, 0.69, 0.44, 0.56, 0.2, 0.8):
                cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0) + dy
                box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
                overlap = sum(weight * max(0.0, min(box[2], b[2]) - max(box[0], b[0]))
                              * max(0.0, min(box[3], b[3]) - max(box[1], b[1]))
                              for weight, b in taken) + 0.05 * abs(dy)
                if best is None or overlap < best[0]:
                    best = (overlap, cx, cy, box)
                if overlap == 0:
                    break
            if best[0] == 0:
                break
        taken.append((1.0, best[3]))
        return best[1], best[2]

    # What is written under each unit: its bias before and after, the document's slips
    # about the unit; reserved first, so that the edge labels keep clear of it.
    below_node = {}
    for name, col, row, value_name, bias in nodes:
        below = []
        if bias:
            below.append(f"{bias} {_fmt(values[bias])} → {_fmt(values[bias + '_new'])}")
            below += marks.get(f"{bias}_new", []) + marks.get(bias, [])
        if value_name:
            below += marks.get(value_name, [])
            # the unit's input (in_h2 for out_h2), where the document prints it
            if value_name.startswith("out_"):
                below += marks.get("in_" + value_name[4:], [])
        below_node[name] = below
        if below:
            x, y = pos[name]
            half_w = max(len(s) for s in below) * 0.62 * _NOTE_FONT / scale / 2
            bottom = y - 0.7 - len(below) * 1.35 * _NOTE_FONT / scale
            taken.append((2.0, (x - half_w, bottom, x + half_w, y - 0.6)))

    def slipped(weight):
        return weight is not None and any(
            n in marks for n in (weight, f"{weight}_new",
                                 *(r for r, w in example.grad_names if w == weight)))

    routing = False
    for src, dst, weight in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        color = _RED if slipped(weight) else (_GREY if weight is None else _BLUE)
        routed = weight is None and values.get(f"route_{src.lower()}", 1.0) > 0
        routing = routing or weight is None
        ax.plot([x0, x1], [y0, y1], color=color, lw=2.6 if routed else 1.1,
                alpha=0.9 if weight or routed else 0.5, zorder=1)
    for src, dst, weight in edges:
        if weight is None:
            continue
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        text = (f"{weight} {_fmt(values[weight])}\n∇ {_fmt(values['grad_' + weight])}"
                f"  → {_fmt(values[weight + '_new'])}")
        grad_records = [r for r, w in example.grad_names if w == weight]
        for m in (marks.get(weight, []) + marks.get(f"{weight}_new", [])
                  + [m for r in grad_records for m in marks.get(r, [])]):
            text += f"\n{m}"
        lx, ly = place(x0, y0, x1, y1, text)
        ax.text(lx, ly, text, fontsize=_EDGE_FONT, ha="center", va="center",
                color=_RED if slipped(weight) else _BLUE, zorder=3,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))

    zeros = False
    for name, col, row, value_name, bias in nodes:
        x, y = pos[name]
        if value_name is None:  # a constant zero of the input (003's padded signal)
            zeros = True
            ax.add_patch(plt.Circle((x, y), 0.45, fc="white", ec=_GREY, lw=1.3,
                                    ls="--", zorder=2))
            ax.text(x, y, "0", fontsize=_NODE_FONT, ha="center", va="center",
                    color=_GREY, zorder=4)
            continue
        wrong = value_name in marks or value_name.replace("out_", "in_", 1) in marks
        ax.add_patch(plt.Circle((x, y), 0.55, fc="#fdecea" if wrong else "#eaf2fb",
                                ec=_RED if wrong else _BLUE, lw=1.6, zorder=2))
        ax.text(x, y + 0.15, value_name, fontsize=_NODE_FONT, ha="center", va="center",
                zorder=4, weight="bold")
        ax.text(x, y - 0.19, _fmt(values.get(value_name, 0.0)), fontsize=_NODE_FONT,
                ha="center", va="center", zorder=4)
        below = below_node[name]
        if below:
            slip = any(b.startswith("✗") for b in below)
            ax.text(x, y - 0.7, "\n".join(below), fontsize=_NOTE_FONT, ha="center",
                    va="top", color=_RED if slip else _BLUE, zorder=4,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.9))
    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(lo_y, hi_y)
    ax.set_aspect("equal")
    ax.axis("off")
    n_err = sum(r.erratum is not None for r in rows)
    how = ("each layer updated before the error passes down through it"
           if convention == "notes" else "textbook backprop, old weights throughout")
    fig.suptitle(f"{_title(example, lang)}\nconvention: {convention} ({how}); values exact "
                 f"(float64); {n_err} wrong printed values", fontsize=_TITLE_FONT,
                 y=1 - 0.12 / fig_h, va="top")
    first = next(w for _, _, w in edges if w is not None)
    sample = (f"{first} {_fmt(values[first])}  ∇ {_fmt(values['grad_' + first])}  → "
              f"{_fmt(values[first + '_new'])}")
    _worked_legend(fig, plt, sample, any(n[4] for n in nodes), routing, zeros)
    fig.savefig(path)
    plt.close(fig)
    return path


def _worked_legend(fig, plt, sample, biases, routing, zeros):
    """What the labels, colours and line styles of :func:`plot_worked` mean; ``sample``
    is one edge's label, on one line."""
    from matplotlib.lines import Line2D

    unit = Line2D([], [], ls="none", marker="o", ms=13, mfc="#eaf2fb", mec=_BLUE)
    entries = [
        (Line2D([], [], color=_BLUE, lw=1.4),
         f"edge: {sample} = the weight before the step, its gradient dE/dw (as applied), "
         f"the weight after the step"),
        (unit, "unit: its name and exact forward value"
               + ("; under it: its bias → the bias after the step" if biases else "")),
        (Line2D([], [], color=_RED, lw=1.4),
         "red, ✗: the document printed or wrote a wrong value here (what it wrote, and the "
         "right value)"),
    ]
    if routing:
        entries.append((Line2D([], [], color=_GREY, lw=2.6),
                        "grey, no weight: max-pool; the error flows back along the thick "
                        "edge only (the larger input)"))
    if zeros:
        entries.append((Line2D([], [], ls="none", marker="o", ms=13, mfc="white",
                               mec=_GREY, mew=1.2),
                        "dashed 0: a zero of the input signal (0, i1, 0), which the "
                        "kernels also see"))
    fig.legend([h for h, _ in entries], [t for _, t in entries], loc="lower left",
               bbox_to_anchor=(0.01, 0.01), ncol=1 if len(entries) < 4 else 2,
               fontsize=_LEGEND_FONT, frameon=False, handlelength=2.2,
               borderaxespad=0.2)


def plot_formulas(example: FormulaExample, path: str, lang: str = "en") -> str:
    """Draws a formula document: its network (001) or its convolution (004), and the
    check of each formula against jax.grad; returns ``path``."""
    from jaxbp.notes.compare import check

    plt = _pyplot()
    results = check(example)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.8), dpi=110,
                                 gridspec_kw={"width_ratios": [1.15, 1]})
    if lang == "zh" and _cjk_font():
        plt.rcParams["font.sans-serif"] = [_cjk_font(), "DejaVu Sans"]
    if example.name == "001":
        _draw_001(plt, ax)
    else:
        _draw_004(plt, ax)
    ax.axis("off")
    bx.axis("off")
    lines = [f"{'pass' if r.passed else 'FAIL'}  {r.max_error:7.1e}  {f.name}"
             for f, r in zip(example.entries, results)]
    passed = sum(r.passed for r in results)
    bx.text(0.0, 1.0, "each formula as the document writes it,\nagainst jax.grad "
            "(float64, random inputs)\n\n      max error  formula\n" + "\n".join(lines)
            + f"\n\n{passed} of {len(results)} agree",
            family="monospace", fontsize=10, va="top", ha="left", transform=bx.transAxes)
    fig.suptitle(_title(example, lang), fontsize=_TITLE_FONT)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_001(plt, ax):
    cols = {"x": (0, [f"x{i}" for i in (1, 2, 3)]), "a2": (1, ["a²₁", "a²₂"]),
            "Y": (2, ["Y₁ = a³₁", "Y₂ = a³₂"])}
    pos = {}
    for key, (c, labels) in cols.items():
        off = (3 - len(labels)) / 2
        for r, label in enumerate(labels):
            pos[(key, r)] = (c * 3.2, -(r + off) * 1.7)
    for (src, n_src, dst, n_dst, layer) in (("x", 3, "a2", 2, 2), ("a2", 2, "Y", 2, 3)):
        for j in range(n_src):
            for k in range(n_dst):
                (x0, y0), (x1, y1) = pos[(src, j)], pos[(dst, k)]
                ax.plot([x0, x1], [y0, y1], color=_BLUE, lw=1, zorder=1)
                t = 0.3 + 0.2 * k
                ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0), f"w{layer}_{j + 1}{k + 1}",
                        fontsize=9, color=_BLUE, ha="center", va="center",
                        bbox=dict(fc="white", ec="none", alpha=0.85, pad=0.5))
    for (key, r), (x, y) in pos.items():
        ax.add_patch(plt.Circle((x, y), 0.5, fc="#eaf2fb", ec=_BLUE, lw=1.4, zorder=2))
        ax.text(x, y, cols[key][1][r], ha="center", va="center", fontsize=10, zorder=3)
    ax.text(7.0, -1.7, "E = ½ Σ (Y - Ŷ)²", fontsize=11, va="center")
    ax.text(-0.5, -4.3, "w2_jk joins input j to hidden unit k, w3_jk hidden unit j to "
            "output k\n(the library's w[j, k]); sigmoid units, no biases",
            fontsize=9.5, va="top")
    ax.set_xlim(-0.8, 9.2)
    ax.set_ylim(-5.2, 0.8)
    ax.set_aspect("equal")


def _draw_004(plt, ax):
    """The 4x4 input with pixel a21, the 3x3 kernel with the entries it meets, s0..s3."""
    meets = {(2, 1): "W21", (2, 0): "W20", (1, 1): "W11", (1, 0): "W10"}

    def grid(x0, y0, n, label_fn, hi):
        for i in range(n):
            for j in range(n):
                lab = label_fn(i, j)
                ax.add_patch(plt.Rectangle((x0 + j, y0 - i), 1, 1,
                                           fc="#fdecea" if (i, j) in hi else "#eaf2fb",
                                           ec=_BLUE, lw=1))
                ax.text(x0 + j + 0.5, y0 - i + 0.5, lab, ha="center", va="center",
                        fontsize=9.5, color=_RED if (i, j) in hi else "black")

    grid(0, 0, 4, lambda i, j: f"a{i}{j}", {(2, 1)})
    grid(5, 0, 3, lambda i, j: f"W{i}{j}", set(meets))
    grid(9.5, 0, 2, lambda i, j: f"s{2 * i + j}", set())
    ax.text(2, 1.4, "input a (4x4)", ha="center", fontsize=10)
    ax.text(6.5, 1.4, "kernel W (3x3)", ha="center", fontsize=10)
    ax.text(10.5, 1.4, "s = a ⋆ W (2x2)", ha="center", fontsize=10)
    ax.text(0, -3.6, "red: the pixel a21 and the kernel entries it meets, one per window:\n"
            "W21 in s0, W20 in s1, W11 in s2, W10 in s3.\n"
            "dL/da = full correlation of dL/ds with the flipped kernel\n"
            "BCE after a sigmoid: dL/dα = y_out - y", fontsize=10, va="top",
            linespacing=1.5)
    ax.set_xlim(-0.5, 12)
    ax.set_ylim(-6.4, 2)
    ax.set_aspect("equal")


def plot(example, path: str, convention: str | None = None, lang: str = "en") -> str:
    """Writes the example's picture to ``path`` (PNG); returns ``path``.

    Args:
      example: from :func:`jaxbp.notes.load`.
      path: the file to write; its folder must exist.
      convention: for worked examples, the replay's convention (``None``: the
        document's own).
      lang: ``"en"`` or ``"zh"`` (adds the Chinese title where a CJK font exists).
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"plot: the folder of path {path!r} does not exist")
    if isinstance(example, FormulaExample):
        return plot_formulas(example, path, lang)
    return plot_worked(example, path, convention, lang)
