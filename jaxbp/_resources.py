"""Where the exercise set and the documents are: in the installed package, or in the
checkout.

A wheel carries the exercise stubs (``exercises/``, never ``solutions/``), the five
documents (``docs/documents/*.txt``) and the project's reading of them
(``docs/reading.md``) under ``jaxbp/_starter/`` (see ``pyproject.toml``). An editable
install or a checkout on ``PYTHONPATH`` has no ``_starter/``: the same files are read
from the repository beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_STARTER = _PACKAGE / "_starter"
_CHECKOUT = _PACKAGE.parent


def installed() -> bool:
    """True when the files come from the installed package (a wheel), not a checkout."""
    return (_STARTER / "exercises").is_dir()


def exercises_dir() -> Path:
    """The directory of the exercise files (``01_activations.py``, ...).

    In a checkout this is the repository's ``exercises/``, the learner's copy there;
    :func:`exercise_texts` gives the untouched stubs instead.
    """
    return _STARTER / "exercises" if installed() else _CHECKOUT / "exercises"


def documents_dir() -> Path:
    """The directory of the five documents, ``000.txt`` .. ``004.txt``."""
    return (_STARTER / "docs" / "documents" if installed()
            else _CHECKOUT / "docs" / "documents")


def reading_path() -> Path:
    """The project's reading of the documents (``docs/reading.md``)."""
    return (_STARTER / "docs" / "reading.md" if installed()
            else _CHECKOUT / "docs" / "reading.md")


def document_text(name: str) -> str:
    """One document's text, by name (``"000"`` .. ``"004"``).

    Raises:
      ValueError: no document of that name.
    """
    path = documents_dir() / f"{name}.txt"
    if not path.is_file():
        known = ", ".join(p.stem for p in document_files())
        raise ValueError(f"document_text: name must be one of {known}, got {name!r}")
    return path.read_text(encoding="utf-8")


def document_files() -> list[Path]:
    """The documents' files, in order."""
    return sorted(documents_dir().glob("*.txt"))


def exercise_texts() -> dict[str, str]:
    """File name -> text of each exercise file, as a learner first gets it (every
    region still holds its "not done yet" stub).

    From a wheel these are the packaged stubs. In a checkout they are generated from
    ``solutions/`` exactly as ``jaxbp exercises generate`` writes them, so that a
    learner's work in the checkout's ``exercises/`` never leaks into a fresh copy.

    Raises:
      FileNotFoundError: neither the package nor the checkout holds the exercises.
    """
    solutions = _CHECKOUT / "solutions"
    if not installed() and solutions.is_dir():
        from jaxbp.grading.generate import make_exercise

        return {p.name: make_exercise(p.read_text(encoding="utf-8"), str(p))
                for p in sorted(solutions.glob("*.py"))}
    files = sorted(exercises_dir().glob("*.py"))
    if not files:
        raise FileNotFoundError(f"no exercise files in {exercises_dir()}: this "
                                f"installation of jaxbp does not carry the exercises")
    return {p.name: p.read_text(encoding="utf-8") for p in files}
