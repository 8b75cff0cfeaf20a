"""``jaxbp notes``'s arguments, checked before anything imports JAX.

The documents' printing and checking live in :mod:`jaxbp.notes.cli`, whose package
imports JAX (the examples are replayed by the library); a usage error (an unknown
document, a ``--plot`` path that cannot be written) is answered from here in a few
hundredths of a second. The documents' names are defined here for the same reason.
"""

from __future__ import annotations

import numbers
import sys

NAMES = ("000", "001", "002", "003", "004")

_CONVENTIONS = ("doc", "notes", "standard")


def add_arguments(parser):
    parser.add_argument("document", nargs="?",
                        help="000, 001, 002, 003 or 004 (or 0-4); omit to list them")
    parser.add_argument("--convention", choices=_CONVENTIONS, default="doc",
                        help="judge agreement by the document's own convention (doc, the "
                             "default), by the notes' update-as-you-go, or by textbook "
                             "backprop (standard)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw the example (network, values, weights, gradients, "
                             "errata) to FILE.png")
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="zh: Chinese beside the English for the documents' headings, "
                             "the column names and the footnotes' fixed words (the "
                             "footnotes' explanations stay in English)")


def normalize(name) -> str:
    """``"000"`` .. ``"004"`` from a name or an int (``2``, ``"2"``); else ``ValueError``
    (``TypeError`` for neither a str nor an int)."""
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):
        text = f"{int(name):03d}"
    elif isinstance(name, str):
        text = name.strip()
        if text.isdigit() and len(text) <= 3:
            text = text.zfill(3)
    else:
        raise TypeError(f"load: name must be a str or an int, one of {', '.join(NAMES)}, "
                        f"got {type(name).__name__}")
    if text not in NAMES:
        raise ValueError(f"load: name must be one of {', '.join(NAMES)} (or the ints "
                         f"0-4), got {name!r}")
    return text


def _plot_problem(args):
    """Why ``--plot`` cannot be drawn, checked before anything is printed; or None."""
    from jaxbp import _extras, _paths

    if args.document is None:
        return "--plot needs a document, e.g. jaxbp notes 000 --plot net.png"
    problem = _paths.file_problem(args.plot, "--plot")
    if problem:
        return problem
    if not _extras.available("matplotlib"):
        return "--plot: " + _extras.message(["matplotlib"], "or leave out --plot")
    return None


def run(args) -> int:
    if args.document is not None:
        try:
            normalize(args.document)
        except (ValueError, TypeError) as e:
            print(f"jaxbp notes: {e}", file=sys.stderr)
            return 2
    if args.plot:
        problem = _plot_problem(args)
        if problem:
            print(f"jaxbp notes: {problem}", file=sys.stderr)
            return 2
    from jaxbp.notes import cli

    return cli.run(args)
