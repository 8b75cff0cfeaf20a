"""``jaxbp demo``: trains, reports, plots; on the digits, on a user's .npz, on document
000's network; and the learner's implementations plugged in with ``--impl``.

The demos run in-process through ``jaxbp.cli.main`` (as the ``jaxbp`` command does)
with few epochs; one test runs the CNN demo's default schedule to its accuracy goal,
as a user's command in a child process (XLA's default compilation: conftest.py
compiles the test processes for speed, and 20 epochs then run slower).
"""

import importlib.util
import re

import numpy as np
import pytest

from helpers import PNG_SIGNATURE, held_out_accuracy, run_as_a_user
from jaxbp import cli, data

# The demo extra, looked up without importing it (scikit-learn takes seconds to import,
# and every pytest worker collects this module).
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("sklearn", "matplotlib")),
    reason="the demo extra (scikit-learn, matplotlib) is not installed")

def run_demo(capsys, *argv):
    code = cli.main(["demo", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_png(path):
    assert path.exists(), path
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width >= 300 and height >= 300


def test_cnn_demo_trains_both_ways_and_writes_three_plots(capsys, tmp_path):
    code, out, err = run_demo(capsys, "--epochs", "2", "--out", str(tmp_path))
    assert code == 0, err
    assert "hand-written backward" in out and "jax.grad (autodiff)" in out
    assert held_out_accuracy(out) > 0.5  # two epochs already learn a lot
    for name in ("cnn_curves.png", "cnn_predictions.png", "cnn_confusion.png"):
        assert_png(tmp_path / name)
    first = float(re.search(r"differ by ([\d.e+-]+) \(relative\) after epoch 1", out).group(1))
    assert first < 1e-4  # one epoch in, the runs agree to float32 rounding
    # stdout is not a terminal here (a log): a line per epoch, its seconds labelled
    for label in ("hand-written backward", "jax.grad (autodiff)"):
        assert f"{label} epoch 1/2" in out and f"{label} epoch 2/2" in out
    assert "(N s) is the time elapsed since that run's training started" in out
    # the two runs trained side by side (threads); alone, the hand-written run's
    # numbers are the same
    assert "side by side with the other run" in out
    code, alone, err = run_demo(capsys, "--epochs", "2", "--no-autodiff", "--no-plots")
    assert code == 0, err

    def result(text):
        return re.search(r"hand-written backward +held-out accuracy +([\d.]+)% +loss "
                         r"([\d.]+) +train loss ([\d.]+)", text).groups()
    assert result(alone) == result(out)
    assert "side by side" not in alone


@pytest.mark.slow
def test_cnn_demo_default_schedule_reaches_98_percent(tmp_path):
    # the command as a user runs it, compiled with XLA's defaults
    proc = run_as_a_user("demo", "--no-autodiff", "--no-plots", "--save",
                         str(tmp_path / "params.npz"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert held_out_accuracy(out) >= 0.98
    assert "goal >= 98%: met" in out
    assert (tmp_path / "params.npz").exists()


def test_mlp_demo_on_a_users_npz_file(capsys, tmp_path):
    # Two classes a network must learn: a bright bar in the top or the bottom half.
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        for i, label in enumerate(y):
            row = rng.integers(0, 4) + 4 * label
            x[i, row, :] = 255
        return x, y

    (x_train, y_train), (x_test, y_test) = make(256), make(64)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = data.load_npz(path)
    assert ds.x_train.shape == (256, 8, 8, 1) and ds.classes == 2
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0
    code, out, err = run_demo(capsys, "mlp", "--data", str(path), "--epochs", "5",
                              "--no-autodiff", "--out", str(tmp_path / "plots"))
    assert code == 0, err
    assert "mine.npz, 256 training and 64 held-out" in out
    assert held_out_accuracy(out) >= 0.9
    assert_png(tmp_path / "plots" / "mlp_confusion.png")


def test_demo_reports_a_bad_data_file_in_one_line(capsys, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 3)), y_train=np.zeros(4))
    code, out, err = run_demo(capsys, "--data", str(path), "--no-plots")
    assert code == 2
    assert "missing ['x_test', 'y_test']" in err and "Traceback" not in err
    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=np.zeros((4, 3)), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 3)), y_test=np.zeros(2, int))
    code, _, err = run_demo(capsys, "cnn", "--data", str(flat), "--no-plots")
    assert code == 2 and "the CNN needs images" in err


def test_doc000_demo_trains_the_documents_network_to_its_targets(capsys, tmp_path):
    code, out, err = run_demo(capsys, "doc000", "--out", str(tmp_path))
    assert code == 0, err
    start = float(re.search(r"E = ([\d.]+) at the start", out).group(1))
    # 000, the line "E = ... = 0.422": the loss of the document's initial weights.
    assert round(start, 3) == 0.422
    final = re.search(r"outputs after \d+ steps: \(([\d.]+), ([\d.]+)\)", out)
    o1, o2 = float(final.group(1)), float(final.group(2))
    # 000's targets: 0.01 and 0.99.
    assert abs(o1 - 0.01) < 0.005 and abs(o2 - 0.99) < 0.005
    assert "reached" in out
    assert "hand-written backward: step 3000/3000" in out and "(elapsed " in out
    assert_png(tmp_path / "doc000_convergence.png")


def test_impl_trains_document_000_with_the_solutions_backward_passes(capsys):
    code, out, err = run_demo(capsys, "doc000", "--impl", "solutions", "--epochs", "200",
                              "--no-plots", "--no-autodiff")
    assert code == 0, err
    # 000, the line "E = ... = 0.422": the same start through the plugged-in layers.
    assert "E = 0.4225 at the start" in out


def test_impl_with_unfinished_exercises_says_which_in_one_line(capsys, tmp_path):
    # A fresh, untouched exercise set (whatever state the learner's own copy is in).
    assert cli.main(["exercises", "generate", "--out", str(tmp_path / "ex")]) == 0
    capsys.readouterr()
    code, out, err = run_demo(capsys, "mlp", "--impl", str(tmp_path / "ex"), "--epochs",
                              "1", "--no-plots")
    assert code == 2
    assert "not done yet" in err and "Traceback" not in err


def _tick_labels(ax):
    low, high = ax.get_xlim()
    x = [t for t in ax.get_xticks() if low <= t <= high]
    return x, [t.get_text() for t in ax.get_yticklabels() if t.get_text()]


def test_training_plots_have_whole_epochs_and_plain_tick_labels():
    from jaxbp import plots

    short = {"epoch": [1, 2], "loss": [1.31, 0.43], "val_loss": [0.62, 0.44],
             "accuracy": [0.87, 0.92], "val_accuracy": [0.85, 0.89]}
    long = {"epoch": list(range(1, 41)), "loss": list(np.geomspace(2.0, 1e-3, 40)),
            "val_loss": list(np.geomspace(1.0, 0.05, 40)),
            "accuracy": list(np.linspace(0.8, 1.0, 40)),
            "val_accuracy": list(np.linspace(0.8, 0.98, 40))}
    for history, scale in ((short, "linear"), (long, "log")):
        fig = plots.curves_figure({"hand-written backward": history})
        fig.canvas.draw()
        assert fig.axes[0].get_yscale() == scale  # log only over more than a decade
        for ax in fig.axes:
            x, y = _tick_labels(ax)
            assert x and all(float(t).is_integer() for t in x)  # epochs, no 1.5
            assert y and not any("times" in s or "^" in s for s in y), y  # no 2.36 x 10^0
            assert ax.yaxis.get_offset_text().get_text() == ""
        if scale == "log":
            assert {"1", "0.1", "0.01"} <= set(_tick_labels(fig.axes[0])[1])


def test_gpt_impl_with_unfinished_exercises_names_them_all_in_one_line(capsys, tmp_path):
    assert cli.main(["exercises", "generate", "--out", str(tmp_path / "ex")]) == 0
    capsys.readouterr()
    for model, names in [("gpt", ["dense_backward", "serial_backward", "gelu_backward",
                                  "layer_norm_backward", "embedding_backward",
                                  "residual_backward", "attention_backward",
                                  "sequence_cross_entropy_backward", "adam_update"]),
                         ("lstm", ["dense_backward", "serial_backward",
                                   "embedding_backward", "lstm_cell_backward",
                                   "sequence_cross_entropy_backward", "adam_update"])]:
        code, out, err = run_demo(capsys, "gpt", "--model", model, "--impl",
                                  str(tmp_path / "ex"), "--steps", "1", "--no-plots")
        assert code == 2 and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert f"needs {len(names)} more exercises, not done yet" in err
        for name in names:
            assert f" {name} (" in err, name
        # the hint grades the folder the demo read, not exercises/
        assert f"--impl {tmp_path / 'ex'}`" in err


def test_gpt_trains_with_the_solutions_functions_plugged_in(capsys, tmp_path):
    text = tmp_path / "text.txt"
    rng = np.random.default_rng(0)
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "x", "y"]
    text.write_text(" ".join(rng.choice(words, size=3000)), encoding="utf-8")
    code, out, err = run_demo(capsys, "gpt", "--impl", "solutions", "--data", str(text),
                              "--steps", "3", "--batch-size", "4", "--no-plots",
                              "--json", str(tmp_path / "out.json"))
    assert code == 0, err
    assert "layers, loss gradient and Adam from --impl solutions" in out
    # the hand-written run and jax.grad's agree, step by step
    match = re.search(r"differ from the hand-written run's by ([\d.e+-]+) \(relative\) at "
                      r"the first step", out)
    assert match and float(match.group(1)) < 1e-5, out


def test_digits_read_from_scikit_learns_file_are_load_digits():
    """The demo reads the digits from the CSV scikit-learn ships (importing
    ``sklearn.datasets`` takes seconds): the same images and labels."""
    datasets = pytest.importorskip("sklearn.datasets")
    from jaxbp import data

    images, labels = data._digits_arrays()
    bunch = datasets.load_digits()
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)
