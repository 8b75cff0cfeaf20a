"""Off the happy path: what a newcomer meets first, each mistake answered in one line.

The command-line cases run in a subprocess, as a user's shell would run them: a missing
optional package is simulated by ``sys.modules[name] = None`` (``import name`` then
fails as if it were not installed), and one subprocess runs several cases through
``jaxbp.cli.main`` so that JAX is imported once. Any exception that escaped ``main``
would end that subprocess with a traceback, which the tests refuse.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxbp import _resources, cli, data, starter

ROOT = Path(__file__).resolve().parents[1]

_CASES = r"""
import contextlib, io, json, sys
for name in filter(None, sys.argv[1].split(",")):
    sys.modules[name] = None          # as if the package were not installed
from jaxbp.cli import main
results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def run_cases(cases, cwd, blocked=()):
    """Runs each argv in ``cases`` through ``jaxbp.cli.main`` in one fresh process;
    returns ``[(exit code, stdout, stderr)]``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", _CASES, ",".join(blocked),
                           json.dumps([[str(a) for a in c] for c in cases])],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return [tuple(r) for r in json.loads(done.stdout.splitlines()[-1])]


def one_line(err, *phrases):
    """``err`` is exactly one line, naming the command, with every phrase in it."""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("jaxbp "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)


# --------------------------------------------------------------- missing optional extra

def test_missing_demo_extra_is_one_line_before_any_work(tmp_path):
    text_npz = tmp_path / "notes.npz"
    text_npz.write_text("x_train,y_train\n1,2\n", encoding="utf-8")
    (demo, doc000, plot, table, own_data) = run_cases([
        ["demo"],
        ["demo", "doc000"],
        ["notes", "000", "--plot", tmp_path / "net.png"],
        ["notes", "002"],
        ["demo", "--no-plots", "--data", text_npz],
    ], tmp_path, blocked=("matplotlib", "sklearn", "tqdm", "rich"))
    code, out, err = demo
    assert code == 2 and out == ""  # nothing trained, nothing printed
    one_line(err, "matplotlib (the plots)", "scikit-learn (the 8x8 digits)",
             'pip install "jaxbp[demo]"', "--no-plots", "--data FILE.npz")
    code, out, err = doc000
    assert code == 2 and out == ""
    one_line(err, "matplotlib", 'pip install "jaxbp[demo]"')
    assert "scikit-learn" not in err  # document 000's demo needs no digits
    code, out, err = plot
    assert code == 2 and out == ""  # checked before the table is printed
    one_line(err, "matplotlib", 'pip install "jaxbp[demo]"')
    assert not (tmp_path / "net.png").exists()
    code, out, _ = table  # the table itself needs no extra (rich is only colour)
    assert code == 0 and "0 unexplained" in out
    code, out, err = own_data  # --data and --no-plots need nothing of the extra
    assert code == 2 and out == ""
    one_line(err, "not an .npz archive", "np.savez")


# --------------------------------------------------------------- broken inputs, one line

def test_cli_mistakes_are_one_line_with_exit_2(tmp_path):
    (tmp_path / "syntax.py").write_text("import jaxbp\n\ndef layer(:\n    pass\n",
                                        encoding="utf-8")
    (tmp_path / "raises.py").write_text("import jaxbp\nx = 1\ny = undefined_name\n",
                                        encoding="utf-8")
    np.save(tmp_path / "single.npy", np.zeros((4, 8, 8), np.float32))
    rng = np.random.default_rng(0)
    x = rng.random((6, 4, 4)).astype(np.float32)
    x[2, 1, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=np.arange(6) % 2,
             x_test=x[:2], y_test=np.arange(2))
    starter_dir = tmp_path / "work"
    assert cli.main(["exercises", "init", str(starter_dir)]) == 0
    with open(starter_dir / "03_dense.py", "a", encoding="utf-8") as f:
        f.write("# my answer\n")
    results = run_cases([
        ["check", "syntax.py:layer"],
        ["check", "nosuchmodule:foo"],
        ["check", "raises.py:layer"],
        ["notes", "000", "--plot", tmp_path / "missing" / "net.png"],
        ["exercises", "init", "work"],
        ["demo", "mlp", "--no-plots", "--data", "single.npy"],
        ["demo", "mlp", "--no-plots", "--data", "nan.npz"],
    ], tmp_path)
    phrases = [
        ("syntax.py, line 3", "does not parse"),
        ("no module named 'nosuchmodule'",),
        ("raises.py, line 3", "NameError", "undefined_name"),
        ("does not exist",),
        ("03_dense.py", "--force"),
        ("single .npy array", "np.savez"),
        ("NaN", "x_train", "example 2"),
    ]
    for (code, out, err), wanted in zip(results, phrases):
        assert code == 2, (wanted, out, err)
        assert out == "", out  # checked before anything is printed or trained
        one_line(err, *wanted)
    kept = (starter_dir / "03_dense.py").read_text(encoding="utf-8")
    assert kept.endswith("# my answer\n")


# --------------------------------------------------------------- jaxbp exercises init

def test_exercises_init_writes_a_fresh_copy_and_keeps_a_learners_work(tmp_path, capsys):
    work = tmp_path / "mine"
    assert cli.main(["exercises", "init", str(work)]) == 0
    out = capsys.readouterr().out
    assert "jaxbp grade sigmoid_backward --impl ." in out
    for name, text in _resources.exercise_texts().items():
        assert (work / name).read_text(encoding="utf-8") == text
        assert 'raise NotImplementedError("not done yet' in text
    assert sorted(p.name for p in (work / "documents").iterdir()) == \
        ["000.txt", "001.txt", "002.txt", "003.txt", "004.txt", "reading.md"]
    readme = (work / "README.md").read_text(encoding="utf-8")
    assert "jaxbp notes 000" in readme and "jaxbp demo mlp --impl ." in readme
    assert "中文" in readme

    # Again, untouched: nothing to do.
    assert cli.main(["exercises", "init", str(work)]) == 0
    assert "already a fresh copy" in capsys.readouterr().out

    # A learner's work is kept; --force replaces it.
    mine = work / "01_activations.py"
    mine.write_text(mine.read_text(encoding="utf-8") + "# my answer\n", encoding="utf-8")
    assert cli.main(["exercises", "init", str(work)]) == 2
    err = capsys.readouterr().err
    assert "01_activations.py" in err and "nothing written" in err
    assert mine.read_text(encoding="utf-8").endswith("# my answer\n")
    assert cli.main(["exercises", "init", str(work), "--force"]) == 0
    assert not mine.read_text(encoding="utf-8").endswith("# my answer\n")

    # A file where the folder should be.
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    assert cli.main(["exercises", "init", str(tmp_path / "afile")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_resources_find_the_checkouts_files():
    assert not _resources.installed()  # the tests run on the checkout
    # The stubs a fresh copy gets are exactly the generated exercises/ (kept in sync).
    texts = _resources.exercise_texts()
    assert sorted(texts) == sorted(p.name for p in (ROOT / "exercises").glob("*.py"))
    assert "sigmoid" in _resources.document_text("000")
    assert _resources.reading_path() == ROOT / "docs" / "reading.md"
    with pytest.raises(ValueError, match="name must be one of 000, 001"):
        _resources.document_text("999")
    assert starter.README.count("jaxbp ") >= 6  # three commands, in two languages


# --------------------------------------------------------------- --data edge cases

def _npz(path, x_train, y_train, x_test=None, y_test=None):
    np.savez(path, x_train=x_train, y_train=y_train,
             x_test=x_train[:3] if x_test is None else x_test,
             y_test=y_train[:3] if y_test is None else y_test)
    return path


def _npy_bytes(a):
    buffer = io.BytesIO()
    np.save(buffer, a)
    return buffer.getvalue()


@pytest.mark.parametrize("make, phrase", [
    (lambda p: p.write_text("not an archive", encoding="utf-8"), "is not an .npz archive"),
    (lambda p: p.write_bytes(b""), "it is empty"),
    (lambda p: p.write_bytes(_npy_bytes(np.zeros(3))), "is a single .npy array"),
])
def test_load_npz_says_what_the_file_is(tmp_path, make, phrase):
    path = tmp_path / "data.npz"
    make(path)
    with pytest.raises(ValueError, match=phrase):
        data.load_npz(path)


def test_load_npz_refuses_nan_and_python_objects(tmp_path):
    x = np.ones((5, 4), np.float64)
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(the first at index "
                                         r"\(3, 1\), example 3\)"):
        data.load_npz(_npz(tmp_path / "inf.npz", x, np.arange(5) % 2))
    objects = np.array([[1, "a"]] * 5, dtype=object)
    np.savez(tmp_path / "obj.npz", x_train=objects, y_train=np.arange(5),
             x_test=objects, y_test=np.arange(5))
    with pytest.raises(ValueError, match="x_train .* holds Python objects"):
        data.load_npz(tmp_path / "obj.npz")


def test_load_npz_notes_an_unusual_pixel_range_and_unused_classes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, (20, 8, 8)).astype(np.float32)  # the digits' raw 0..16
    x[0, 0, 0] = 16.0
    y = 5 + np.arange(20) % 10                                # labels 5..14
    ds = data.load_npz(_npz(tmp_path / "digits16.npz", x, y))
    assert float(ds.x_train.max()) == 1.0 and ds.x_train.min() >= 0.0
    assert ds.classes == 15
    scale, classes = ds.notes
    assert "run from 0 to 16" in scale and "divided by 16" in scale
    assert "labels run from 5 to 14" in classes and "5 of those classes never occur" in \
        classes
    # 8-bit pixels and [0, 1] data need no note.
    plain = data.load_npz(_npz(tmp_path / "u8.npz", (x * 15).astype(np.uint8),
                               np.arange(20) % 10))
    assert plain.notes == () and plain.x_train.max() <= 1.0


# --------------------------------------------------------------- small CLI polish

def test_notes_lang_zh_translates_column_names_and_footnote_words(capsys):
    assert cli.main(["notes", "000", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("name ")))
    assert lines[header + 1].split() == ["名称", "文档值", "笔记顺序", "标准反传", "是否一致", "脚注"]
    assert "依据 Evidence:" in out and "应为 it should be" in out and "勘误 " in out
    assert "共 47 个印出的数字" in out
    with pytest.raises(SystemExit):
        cli.main(["notes", "--help"])
    assert "explanations stay in English" in " ".join(capsys.readouterr().out.split())
