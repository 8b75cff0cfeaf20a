"""Re-measures the README's timing claims, each in a fresh process, as a user meets them.

    python benchmarks/readme_claims.py                 # demo, grading, one MNIST-sized epoch
    python benchmarks/readme_claims.py --tests         # ... and the whole test suite
    python benchmarks/readme_claims.py --only demo grade

Each claim runs as the README's command does, in a new Python process (JAX's import
and compilation included), from a scratch folder. The table gives the wall-clock time,
the CPU time the process used (user + system, all its threads), and the README's
figure. Wall time well above CPU time / cores means the machine was busy with other
work: the load averages before and after are printed with the machine, and only a
quiet machine's wall times are the ones to put in the README.

The MNIST-sized epoch trains the demo's CNN on random 28x28 images (60000 training,
10000 held-out, 10 classes; the time does not depend on the pixels) for two epochs:
the first includes compilation, the second is the steady state. Each epoch also
evaluates the training and held-out sets, as ``jaxbp demo`` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ("demo", "grade", "grade_one", "epoch", "tests")


def _env():
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _timed(command, cwd):
    """(wall seconds, CPU seconds of the child, completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def _jaxbp(*args):
    return [sys.executable, "-m", "jaxbp", *args]


def _check(done, what):
    if done.returncode not in (0, 1):
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{tail}")


def measure_demo(scratch):
    wall, cpu, done = _timed(_jaxbp("demo", "--out", str(scratch / "plots")), scratch)
    _check(done, "jaxbp demo")
    runs = re.findall(r"\(([\d.]+) s with compilation", done.stdout)
    acc = re.search(r"hand-written backward: ([\d.]+%)", done.stdout)
    detail = (f"training runs {', '.join(r + ' s' for r in runs)}; held-out "
              f"{acc.group(1) if acc else '?'}")
    return [("jaxbp demo (whole command)", "about 10 s (each run 3 s)", wall, cpu, detail)]


def measure_grade(scratch):
    wall, cpu, done = _timed(_jaxbp("grade", "--impl", "solutions"), scratch)
    _check(done, "jaxbp grade")
    score = re.search(r"(\d+/\d+) points", done.stdout)
    return [("jaxbp grade --impl solutions (all)", "about 10 s", wall, cpu,
             f"{score.group(1) if score else '?'} points")]


def measure_grade_one(scratch):
    wall, cpu, done = _timed(_jaxbp("grade", "1", "--impl", "solutions"), scratch)
    _check(done, "jaxbp grade 1")
    return [("jaxbp grade 1 --impl solutions", "a second or two", wall, cpu,
             "one exercise; the process's start and JAX's import included")]


def measure_epoch(scratch):
    import numpy as np

    rng = np.random.default_rng(0)
    path = scratch / "mnist_sized.npz"
    np.savez(path, x_train=rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 60000), x_test=rng.integers(
                 0, 256, (10000, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 10000))
    wall, cpu, done = _timed(_jaxbp("demo", "cnn", "--data", str(path), "--epochs", "2",
                                    "--no-autodiff", "--no-plots", "--verbose"), scratch)
    _check(done, "jaxbp demo --data")
    marks = {int(e): float(s) for e, s in re.findall(
        r"epoch (\d+)/2 .*\((?:elapsed )?([\d.]+) s\)", done.stdout)}
    if set(marks) != {1, 2}:
        raise SystemExit(f"could not read the epochs' times from:\n{done.stdout}")
    return [("MNIST-sized CNN epoch, first (compiles)", "about 20 s", marks[1], None,
             "60000 28x28 images, batch 32; train and held-out evaluation included"),
            ("MNIST-sized CNN epoch, second", "about 20 s", marks[2] - marks[1], None,
             f"whole process: {wall:.1f} s wall, {cpu:.1f} s CPU")]


def measure_tests(scratch):
    wall, cpu, done = _timed([sys.executable, "-m", "pytest", "-q", "-p",
                              "no:cacheprovider", str(ROOT / "tests")], ROOT)
    summary = (done.stdout.strip().splitlines() or ["?"])[-1]
    return [("python -m pytest -q (whole suite)", "about 2 minutes", wall, cpu, summary)]


def machine():
    lines = [f"{platform.platform()}, Python {platform.python_version()}, "
             f"{os.cpu_count()} CPU cores"]
    try:
        import jax
        lines.append(f"jax {jax.__version__}, {jax.devices()[0].platform} "
                     f"(a fresh process per claim)")
    except ImportError:
        pass
    return lines


def _uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=CLAIMS, default=None,
                        help="measure only these claims")
    parser.add_argument("--tests", action="store_true",
                        help="also time the whole test suite (minutes)")
    args = parser.parse_args(argv)
    chosen = args.only or [c for c in CLAIMS if c != "tests" or args.tests]
    for line in machine():
        print(line)
    print(f"before: {_uptime()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="jaxbp-claims-") as tmp:
        for claim in chosen:
            scratch = Path(tmp) / claim
            scratch.mkdir()
            rows += globals()[f"measure_{claim}"](scratch)
            print(f"  measured {claim}", flush=True)
    print(f"after:  {_uptime()}")
    print()
    print(f"{'claim':<42s} {'README':<26s} {'wall':>8s} {'CPU':>8s}  notes")
    for name, readme, wall, cpu, detail in rows:
        cpu_text = "" if cpu is None else f"{cpu:.1f} s"
        print(f"{name:<42s} {readme:<26s} {wall:>6.1f} s {cpu_text:>8s}  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
