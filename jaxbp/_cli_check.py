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


def load_target(target: str):
    """Resolves ``MODULE:NAME`` or ``FILE.py:NAME`` to a Layer."""
    import jaxbp

    if ":" not in target:
        raise ValueError(f"target must be MODULE:NAME or FILE.py:NAME, got {target!r}")
    where, name = target.rsplit(":", 1)
    if where.endswith(".py") or os.path.sep in where:
        if not os.path.exists(where):
            raise ValueError(f"target: no file {where!r}")
        spec = importlib.util.spec_from_file_location("_jaxbp_user_module", where)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    if not hasattr(module, name):
        raise ValueError(f"target: {where!r} has no attribute {name!r}")
    obj = getattr(module, name)
    if not isinstance(obj, jaxbp.Layer) and callable(obj):
        obj = obj()
    if not isinstance(obj, jaxbp.Layer):
        raise TypeError(f"target: {target} must be a jaxbp.Layer or a function returning "
                        f"one, got {type(obj).__name__}")
    return obj


def _parse_shape(text):
    try:
        return tuple(int(s) for s in text.replace("(", "").replace(")", "").split(",") if s)
    except ValueError:
        raise ValueError(f"--shape must be integers separated by commas, got {text!r}")


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
    import jax

    import jaxbp
    from jaxbp.check import DEFAULT_TOLERANCE

    tolerance = args.tolerance or DEFAULT_TOLERANCE
    try:
        if args.target:
            layer = load_target(args.target)
            shape = _parse_shape(args.shape or "8")
            targets = [(args.target, layer, shape)]
        else:
            targets = builtin_networks()
    except (ValueError, TypeError) as e:
        print(f"jaxbp check: {e}", file=sys.stderr)
        return 2
    if args.batch < 1:
        print(f"jaxbp check: --batch must be a positive int, got {args.batch}",
              file=sys.stderr)
        return 2
    key = jax.random.key(args.seed)
    ok = True
    for title, layer, shape in targets:
        key, k_init, k_x, k_check = jax.random.split(key, 4)
        try:
            params, _ = layer.init(k_init, shape)
            x = jax.random.normal(k_x, (args.batch, *shape))
        except (ValueError, TypeError) as e:
            print(f"jaxbp check: {title}: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # a user's own init: a failed check, not a traceback
            print(f"jaxbp check: {title}: init raised {type(e).__name__}: {e}",
                  file=sys.stderr)
            return 1
        # check_gradients raises nothing for a wrong or raising forward/backward: a
        # wrong-shaped gradient is a failed check in the report.
        report = jaxbp.check_gradients(layer, params, x, key=k_check, tolerance=tolerance)
        print(f"== {title}")
        print(report)
        print()
        ok = ok and report.passed
    return 0 if ok else 1
