"""``jaxbp notes``: listing, tables, JSON and pictures, run in-process (one subprocess
proves the console script)."""

from __future__ import annotations

import json
import pathlib
import shutil
import struct
import subprocess
import sys

import pytest

from helpers import PNG_SIGNATURE
from jaxbp.cli import main
from jaxbp.notes._records import rounds_to


def _run(capsys, *argv):
    code = main(["notes", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _png_size(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24]), len(data)


def test_listing(capsys):
    code, out, _ = _run(capsys)
    assert code == 0
    for name in ("000", "001", "002", "003", "004"):
        assert f"  {name}  " in out
    code, out_zh, _ = _run(capsys, "--lang", "zh")
    assert code == 0 and "BP 算法模型总览" in out_zh


@pytest.mark.parametrize("name", ["000", "002", "003"])
def test_table_prints_every_printed_number(capsys, name):
    from jaxbp import notes
    code, out, _ = _run(capsys, name)
    assert code == 0
    lines = out.splitlines()
    for p in notes.load(name).printed:
        assert any(line.split()[:1] == [p.name] and p.text in line.split()
                   for line in lines), p.name
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal
    assert "0 unexplained" in out
    # numbers printed only inside other lines are listed too
    for o in notes.operands(notes.load(name)):
        assert any(line.split()[:2] == [o.quantity, o.written] for line in lines), o


def test_table_marks_errata_and_lists_their_evidence(capsys):
    code, out, _ = _run(capsys, "000")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("out_hh1"))
    assert "ERRATUM" in row
    # 000, line "out_{h_3} = ... = 0.789": the footnote gives the corrected 0.759
    assert "should be 0.759" in out
    assert "Finer points of this reading (all of it: docs/reading.md)" in out


def test_lang_zh_adds_the_documents_headings(capsys):
    code, out, _ = _run(capsys, "002", "--lang", "zh")
    assert code == 0
    assert "Forward pass / 正向传播" in out and "参数初始化" in out


def test_json_parses_and_carries_the_numbers(capsys):
    code, out, _ = _run(capsys, "003", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["document"] == "003" and data["convention"] == "notes"
    rows = {r["name"]: r for r in data["rows"]}
    # 003, line "coef_{o_1} = ... = 0.706 - 1 = -0.294"
    assert rows["coef_o1"]["text"] == "-0.294" and rows["coef_o1"]["agrees"]
    assert rounds_to(rows["coef_o1"]["notes"], "-0.294")
    assert rows["b2_f_new"]["erratum"]["corrected"] == -0.282
    assert data["summary"]["unexplained"] == 0


def test_convention_standard_shows_where_textbook_backprop_disagrees(capsys):
    code, out, _ = _run(capsys, "003", "--convention", "standard", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["coef_o1"]["agrees"] and not rows["coef_f1"]["agrees"]
    assert rows["coef_f1"]["judged_by"] == "standard"


@pytest.mark.parametrize("name", ["001", "004"])
def test_formula_documents(capsys, name):
    code, out, _ = _run(capsys, name)
    assert code == 0
    assert "pass" in out and "FAIL" not in out and "agree with jax.grad" in out
    code, out, _ = _run(capsys, name, "--json")
    assert code == 0
    formulas = json.loads(out)["formulas"]
    assert formulas and all(f["passed"] for f in formulas)


@pytest.mark.parametrize("name", ["000", "001", "002", "003", "004"])
def test_plot_writes_a_png(capsys, tmp_path, name):
    path = tmp_path / f"notes{name}.png"
    code, out, _ = _run(capsys, name, "--plot", str(path))
    assert code == 0 and f"wrote {path}" in out
    (width, height), size = _png_size(path)
    assert width >= 800 and height >= 400 and size > 20_000


def test_plot_explains_itself_and_draws_003_in_the_documents_order(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from jaxbp import notes
    from jaxbp.notes.plot import plot

    drawn = []
    save = Figure.savefig

    def keep(fig, *args, **kwargs):
        drawn.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    plot(notes.load("003"), str(tmp_path / "003.png"))
    fig = drawn[-1]
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    for words in ("∇", "its gradient dE/dw", "→", "after the step", "red, ✗",
                  "max-pool", "a zero of the input signal"):
        assert words in legend, words
    ax = fig.axes[0]
    where = {t.get_text(): t.get_position()[1] for t in ax.texts}
    heights = [where[f"out_c{i}"] for i in (1, 2, 3, 4)]
    assert heights == sorted(heights, reverse=True)  # C1..C4 from the top
    assert min(t.get_fontsize() for t in ax.texts) >= 8.5  # readable when scaled down


def test_bad_arguments_exit_2_without_traceback(capsys, tmp_path):
    code, _, err = _run(capsys, "007")
    assert code == 2 and "000, 001, 002, 003, 004" in err
    code, _, err = _run(capsys, "000", "--plot", str(tmp_path / "missing" / "x.png"))
    assert code == 2 and "does not exist" in err
    with pytest.raises(SystemExit):
        main(["notes", "000", "--convention", "textbook"])
    capsys.readouterr()


def test_console_script_runs():
    script = pathlib.Path(sys.executable).with_name("jaxbp")
    command = [str(script)] if script.exists() else [shutil.which("jaxbp") or "jaxbp"]
    done = subprocess.run([*command, "notes", "002", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["document"] == "002"
