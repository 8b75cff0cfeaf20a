"""The wheel, as a learner who never clones gets it: built from the project's files,
installed (not editable) into a fresh virtual environment, run from a folder outside
the checkout.

The fresh environment has no pip and downloads nothing: the wheel goes in with this
interpreter's pip (``pip --python``), and the dependencies (JAX, optax, ...) come from
this interpreter's site-packages through a ``.pth`` line, which puts that folder on
``sys.path`` after the environment's own, without running its ``.pth`` files (so a
development install of jaxbp there stays invisible).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "jaxbp", "exercises", "docs")

pytestmark = pytest.mark.slow


def _run(command, cwd, env, timeout=240):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, the fresh environment's bin folder, a learner's folder, env)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    unset = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    done = _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                 "-w", str(tmp / "dist"), str(src)], tmp, env)
    assert done.returncode == 0, done.stdout + done.stderr
    wheel = next((tmp / "dist").glob("jaxbp-*.whl"))

    venv = tmp / "venv"
    done = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    done = _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                 str(wheel)], tmp, env)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = _run([str(python), "-c", "import sysconfig; "
                    "print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip()
    Path(purelib, "_jaxbp_test_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    learner = tmp / "learner"
    learner.mkdir()
    return wheel, venv / "bin", learner, env


def test_the_wheel_carries_the_exercises_and_documents_not_the_solutions(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted((ROOT / "exercises").glob("*.py")):
        assert f"jaxbp/_starter/exercises/{path.name}" in names
    for path in sorted((ROOT / "docs" / "documents").glob("*.txt")):
        assert f"jaxbp/_starter/docs/documents/{path.name}" in names
    assert "jaxbp/_starter/docs/reading.md" in names
    assert not any("solutions" in n for n in names)
    # Every module of the package made it (setup.py finds the packages).
    for path in (ROOT / "jaxbp").rglob("*.py"):
        assert path.relative_to(ROOT).as_posix() in names, path


def test_init_notes_and_grade_from_outside_the_checkout(installed):
    _, bin_dir, learner, env = installed
    jaxbp = str(bin_dir / "jaxbp")
    done = _run([jaxbp, "exercises", "init", "work"], learner, env)
    assert done.returncode == 0, done.stderr
    work = learner / "work"
    assert (work / "01_activations.py").read_text(encoding="utf-8") == \
        (ROOT / "exercises" / "01_activations.py").read_text(encoding="utf-8")
    assert (work / "documents" / "000.txt").exists()
    assert "jaxbp grade" in (work / "README.md").read_text(encoding="utf-8")

    # A learner's work is never overwritten without --force.
    with open(work / "01_activations.py", "a", encoding="utf-8") as f:
        f.write("# my work\n")
    done = _run([jaxbp, "exercises", "init", "work"], learner, env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "01_activations.py" in done.stderr
    assert "Traceback" not in done.stderr

    done = _run([jaxbp, "notes", "000"], learner, env)
    assert done.returncode == 0, done.stderr
    assert "0 unexplained" in done.stdout
    # The reading it points to is the installed package's copy: the wheel runs, not the
    # checkout (whose development install shares the dependencies' folder).
    assert f"{bin_dir.parent}/lib/" in done.stdout
    assert "site-packages/jaxbp/_starter/docs/reading.md" in done.stdout

    # Training with the learner's unfinished copy says which exercise, before training.
    done = _run([jaxbp, "demo", "doc000", "--impl", "work", "--no-plots"], learner, env)
    assert done.returncode == 2 and "not done yet" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    done = _run([jaxbp, "grade", "relu_backward", "--impl", "work"], learner, env)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stdout + done.stderr  # not done yet: no full marks
    assert "not done yet" in done.stdout
