"""The optional ``demo`` extra (matplotlib, scikit-learn, tqdm, rich): what is missing.

Commands that need a package of the extra ask :func:`missing` before they start any
work, and report what is missing in one line with the command that installs it.
"""

from __future__ import annotations

import importlib.util

INSTALL = 'pip install "jaxbp[demo]"'

# import name -> (distribution name, what jaxbp uses it for)
PACKAGES = {
    "matplotlib": ("matplotlib", "the plots"),
    "sklearn": ("scikit-learn", "the 8x8 digits"),
    "tqdm": ("tqdm", "the progress bar"),
    "rich": ("rich", "colour in the terminal"),
}


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked
        return False


def missing(*modules: str) -> list[str]:
    """The modules of ``modules`` that cannot be imported."""
    return [m for m in modules if not available(m)]


def message(modules, instead: str = "") -> str:
    """One line: what is missing, what for, and the command that installs it.

    Args:
      modules: import names from :data:`PACKAGES`.
      instead: how to do without, e.g. ``"or add --no-plots"``.
    """
    parts = [f"{PACKAGES[m][0]} ({PACKAGES[m][1]})" for m in modules]
    what = " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + \
        f" and {parts[-1]}"
    verb = "is" if len(parts) == 1 else "are"
    return (f"{what} {verb} not installed: {INSTALL} to run it"
            + (f", {instead}" if instead else ""))
