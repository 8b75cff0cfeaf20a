"""``jaxbp check``: gradient-check a built-in network, or a layer from the user's own file.

``jaxbp check`` with no target checks document 002's network and a small CNN.
``jaxbp check path/to/file.py:NAME`` (or ``package.module:NAME``) loads ``NAME``, a
:class:`jaxbp.Layer` or a function of no arguments returning one, and checks it on
random input of ``--shape``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback


def add_arguments(parser):
    parser.add_argument("target", nargs="?", help="MODULE:NAME or path/to/file.py:NAME; "
                        "omit to check the built-in networks")
    parser.add_argument("--shape", default=None,
                        help="input shape without the batch axis, e.g. 8 or 6,6,1 "
                             "(default 8 for a user's layer)")
    parser.add_argument("--batch", type=int, default=3,
                        help="batch size (default 3; at 1 a gradient not summed over the "
                             "batch goes unnoticed)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="relative error that passes (default 1e-6)")
    parser.add_argument("--eager", action="store_true",
                        help="also run the backward op by op outside jax.jit and compare "
                             "(slower: a compilation per operation)")


def load_target(target: str):
    """Resolves ``MODULE:NAME`` or ``FILE.py:NAME`` to a Layer."""
    import jaxbp

    if ":" not in target:
        raise ValueError(f"target must be MODULE:NAME or FILE.py:NAME, got {target!r}")
    where, name = target.rsplit(":", 1)
    if where.endswith(".py") or os.path.sep in where:
        if not os.path.isfile(where):
            raise ValueError(f"target: no file {where!r}")
        spec = importlib.util.spec_from_file_location("_jaxbp_user_module", where)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # the user's file: report any error where it happened
            raise ValueError(_import_failure(e, where, os.path.abspath(where))) from e
    else:
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            if e.name and (where == e.name or where.startswith(e.name + ".")):
                raise ValueError(f"target: no module named {e.name!r} (looked in the "
                                 f"current folder and the installed packages; for a file "
                                 f"elsewhere give path/to/file.py:{name})") from e
            raise ValueError(_import_failure(e, where, None)) from e
        except Exception as e:  # the user's module: report any error where it happened
            raise ValueError(_import_failure(e, where, None)) from e
    if not hasattr(module, name):
        raise ValueError(f"target: {where!r} has no attribute {name!r}")
    obj = getattr(module, name)
    if not isinstance(obj, jaxbp.Layer) and callable(obj):
        obj = obj()
    if not isinstance(obj, jaxbp.Layer):
        raise TypeError(f"target: {target} must be a jaxbp.Layer or a function returning "
                        f"one, got {type(obj).__name__}")
    return obj


def _import_failure(error, where, filename):
    """One line: which file and line of the user's code failed to import, and why.

    ``filename`` is the user's file (absolute) for FILE.py:NAME, None for MODULE:NAME.
    """
    def shown(path):
        return where if filename is not None and os.path.abspath(path) == filename else path

    if isinstance(error, SyntaxError) and error.lineno:
        return (f"{shown(error.filename or where)}, line {error.lineno}: {error.msg} (the "
                f"file does not parse)")
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames
            if filename is None or os.path.abspath(f.filename) == filename]
    # The deepest frame in the user's code (for a module: outside importlib and jaxbp).
    mine = [f for f in mine if "importlib" not in f.filename
            and not f.filename.startswith(os.path.dirname(__file__))] or mine
    at = f"{shown(mine[-1].filename)}, line {mine[-1].lineno}: " if mine else f"{where}: "
    if isinstance(error, ModuleNotFoundError) and error.name:
        return f"{at}importing it needs the module {error.name!r}, which is not installed"
    return f"{at}importing it raised {type(error).__name__}: {' '.join(str(error).split())}"


def _parse_shape(text):
    try:
        shape = tuple(int(s) for s in text.replace("(", "").replace(")", "").split(",")
                      if s.strip())
    except ValueError:
        raise ValueError(f"--shape must be integers separated by commas, got {text!r}")
    if not shape or min(shape) < 1:  # an empty input would pass every check vacuously
        raise ValueError(f"--shape must be positive integers separated by commas, e.g. 8 "
                         f"or 6,6,1, got {text!r}")
    return shape


def builtin_networks():
    """(name, layer, input shape) for the showcase: document 002's net and a small CNN."""
    import jaxbp

    return [
        ("document 002: 2-2-2 sigmoid, no biases",
         jaxbp.serial(jaxbp.dense(2, bias=False), jaxbp.sigmoid(),
                      jaxbp.dense(2, bias=False), jaxbp.sigmoid()), (2,)),
        ("document 000: 3-2-3-2 sigmoid with biases",
         jaxbp.serial(jaxbp.dense(2), jaxbp.sigmoid(), jaxbp.dense(3), jaxbp.sigmoid(),
                      jaxbp.dense(2), jaxbp.sigmoid()), (3,)),
        ("a small CNN: conv, relu, max-pool, dense, softmax",
         jaxbp.serial(jaxbp.conv2d(4, 3, padding="SAME"), jaxbp.relu(),
                      jaxbp.max_pool2d(2), jaxbp.flatten(), jaxbp.dense(10),
                      jaxbp.softmax()), (8, 8, 1)),
    ]


def run(args) -> int:
    # Usage errors first, before anything imports JAX (they are answered at once).
    if args.batch < 1:
        print(f"jaxbp check: --batch must be a positive int, got {args.batch}",
              file=sys.stderr)
        return 2
    if args.tolerance is not None and not args.tolerance > 0:
        print(f"jaxbp check: --tolerance must be a positive number, got {args.tolerance}",
              file=sys.stderr)
        return 2
    if args.shape is not None and not args.target:
        print("jaxbp check: --shape is the input shape of a layer of yours (give "
              "MODULE:NAME); the built-in networks have their own", file=sys.stderr)
        return 2
    try:
        shape = _parse_shape("8" if args.shape is None else args.shape)
        if args.target:
            layer = load_target(args.target)
            targets = [(args.target, layer, shape)]
        else:
            targets = builtin_networks()
    except (ValueError, TypeError) as e:
        print(f"jaxbp check: {e}", file=sys.stderr)
        return 2
    import jax

    import jaxbp
    from jaxbp.check import DEFAULT_TOLERANCE

    tolerance = args.tolerance or DEFAULT_TOLERANCE
    import numpy as np

    rng = np.random.default_rng(args.seed)  # data without compiling a program per shape
    ok = True
    for i, (title, layer, shape) in enumerate(targets):
        k_init = jax.random.key(args.seed * 1000 + 2 * i)
        k_check = jax.random.key(args.seed * 1000 + 2 * i + 1)
        try:
            params, _ = layer.init(k_init, shape)
            x = jax.device_put(rng.standard_normal((args.batch, *shape)).astype(np.float32))
        except (ValueError, TypeError) as e:
            print(f"jaxbp check: {title}: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # a user's own init: a failed check, not a traceback
            print(f"jaxbp check: {title}: init raised {type(e).__name__}: {e}",
                  file=sys.stderr)
            return 1
        # check_gradients raises nothing for a wrong or raising forward/backward: a
        # wrong-shaped gradient is a failed check in the report.
        report = jaxbp.check_gradients(layer, params, x, key=k_check, tolerance=tolerance,
                                       eager=args.eager)
        print(f"== {title}")
        print(report)
        print()
        ok = ok and report.passed
    return 0 if ok else 1
