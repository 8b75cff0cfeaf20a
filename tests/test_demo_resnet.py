"""``jaxbp demo resnet``: the residual CNN with batch norm and dropout trains both ways
(hand-written backward and jax.grad, the same keys), evaluates in inference mode, plots,
saves its running statistics, and takes a user's ``.npz``.
"""

import importlib.util
import re

import jax
import numpy as np
import pytest

from helpers import PNG_SIGNATURE, held_out_accuracy, run_as_a_user
from jaxbp import cli, train

# The demo extra, looked up without importing it (scikit-learn takes seconds to import,
# and every pytest worker collects this module).
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("sklearn", "matplotlib")),
    reason="the demo extra (scikit-learn, matplotlib) is not installed")

def run_demo(capsys, *argv):
    code = cli.main(["demo", "resnet", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_resnet_demo_trains_both_ways_plots_and_saves_state(capsys, tmp_path):
    code, out, err = run_demo(capsys, "--epochs", "2", "--out", str(tmp_path), "--save",
                              str(tmp_path / "model.npz"))
    assert code == 0, err
    assert "batch_norm" in out and "dropout(0.2)" in out and "residual(" in out
    assert "hand-written backward" in out and "jax.grad (autodiff)" in out
    assert "inference mode" in out
    assert held_out_accuracy(out) > 0.7
    first = float(re.search(r"differ by ([\d.e+-]+) \(relative\) after epoch 1", out).group(1))
    assert first < 1e-3  # the same minibatches and dropout masks: float32 rounding only
    for name in ("resnet_curves.png", "resnet_predictions.png", "resnet_confusion.png"):
        head = (tmp_path / name).read_bytes()[:8]
        assert head == PNG_SIGNATURE, name
    params, state = train.load(tmp_path / "model.npz", with_state=True)
    means = [leaf for path, leaf in jax.tree.leaves_with_path(state)
             if "mean" in jax.tree_util.keystr(path)]
    assert len(means) == 6  # six batch norms, each with its running statistics
    assert all(np.any(np.asarray(m) != 0) for m in means)  # updated during training


def test_resnet_demo_on_a_users_npz_file(capsys, tmp_path):
    # A bright bar in the left or the right half of 10x6 images.
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = rng.integers(0, 60, (n, 10, 6)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, :, rng.integers(0, 3) + 3 * label] = 255
        return x, y

    (x_train, y_train), (x_test, y_test) = make(192), make(64)
    path = tmp_path / "bars.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    code, out, err = run_demo(capsys, "--data", str(path), "--epochs", "3",
                              "--no-autodiff", "--no-plots")
    assert code == 0, err
    assert "bars.npz, 192 training and 64 held-out" in out
    assert held_out_accuracy(out) >= 0.9


def test_resnet_demo_rejects_flat_data_in_one_line(capsys, tmp_path):
    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=np.zeros((4, 3)), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 3)), y_test=np.zeros(2, int))
    code, _, err = run_demo(capsys, "--data", str(flat), "--no-plots")
    assert code == 2 and "the residual CNN needs images" in err and "Traceback" not in err


@pytest.mark.slow
def test_resnet_demo_default_schedule_reaches_98_percent(tmp_path):
    # the command as a user runs it, compiled with XLA's defaults
    proc = run_as_a_user("demo", "resnet", "--no-autodiff", "--no-plots", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert held_out_accuracy(out) >= 0.98
    assert "goal >= 98%: met" in out


def test_demo_help_gives_the_resnet_default_epochs(capsys):
    from jaxbp import cli, demo_resnet

    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"resnet {demo_resnet.DEFAULT_EPOCHS}" in help_text
