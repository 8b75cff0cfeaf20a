"""The ``jaxbp`` command.

Each sub-command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up, importing a module when its
sub-command is used so that ``jaxbp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "check": ("jaxbp._cli_check", "gradient-check a layer (built in, or MODULE:NAME of yours)"),
    "notes": ("jaxbp._cli_notes", "the documents' worked examples: printed vs computed"),
    "grade": ("jaxbp.grading.cli", "grade the exercises (yours, or the solutions)"),
    "exercises": ("jaxbp.grading.generate", "init DIR: a fresh working copy of the "
                  "exercises; generate/check: exercises/ from solutions/"),
    "classroom": ("jaxbp.grading.classroom", "write the GitHub Classroom workflow that grades"),
    "demo": ("jaxbp.demo", "train networks with the hand-written backward, draw plots"),
    "bench": ("jaxbp.bench", "hand-written backward vs jax.grad (and PyTorch), side by side"),
}


# Commands whose compiled programs are kept in JAX's persistent cache (jaxbp._cache);
# not bench, which reports first-call compile times. For grade only the grader's own
# programs (the references) are cached: the learner's code runs in a sandboxed worker
# started with a clean environment, which never reads or writes the cache (a learner
# who could write compiled programs there could fake their own results).
CACHED = ("check", "notes", "demo", "grade")


def build_parser(argv=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbp", description="Backpropagation written by hand, checked by JAX.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == wanted:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name and e.name.startswith("jaxbp"):
                    p.set_defaults(_missing=f"'jaxbp {name}' is not available yet")
                    continue
                raise
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


# ``jaxbp exercises init`` lives outside the grading package: it is what a learner who
# installed a wheel runs first, and it needs only the packaged files.
_INIT = ("jaxbp.starter", "write a fresh working copy of the exercises and the documents "
         "to DIR")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["exercises", "init"]:
        module = importlib.import_module(_INIT[0])
        parser = argparse.ArgumentParser(prog="jaxbp exercises init", description=_INIT[1])
        module.add_arguments(parser)
        return int(module.run(parser.parse_args(argv[2:])) or 0)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(args._missing, file=sys.stderr)
        return 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv else 2
    if args.command in CACHED and args.command != "grade":  # grade: after its worker starts
        from jaxbp import _cache

        _cache.enable()
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
