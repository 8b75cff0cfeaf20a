"""``jaxbp demo``: the hand-written backward passes train real networks.

* ``jaxbp demo`` (or ``jaxbp demo cnn``): a small CNN on scikit-learn's 8x8 digits,
  trained twice from the same initial weights and the same shuffling, once with the
  hand-written backward and once with ``jax.grad``; prints the held-out accuracy and
  writes PNGs: both runs' training curves on the same axes (they overlap), a grid of
  held-out predictions and the confusion matrix.
* ``jaxbp demo mlp``: the same with an MLP 64-128-64-10.
* ``jaxbp demo doc000``: document 000's 3-2-3-2 sigmoid network, from the document's
  initial weights, trained on its one example with its learning rate 0.7 until the
  outputs reach the targets 0.01 and 0.99.
* ``jaxbp demo gpt``: a character-level GPT on the Python standard library's source
  (``--data FILE.txt``: your text; ``--model lstm``: an LSTM), see ``jaxbp.demo_gpt``.

``--data FILE.npz`` trains on your own arrays (``x_train, y_train, x_test, y_test``,
e.g. MNIST); ``--impl exercises`` builds the network from your completed exercises.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, NamedTuple

DEMOS = ("cnn", "mlp", "doc000", "resnet", "gpt")
DEFAULT_OUT = "jaxbp-demo-out"
DEFAULT_EPOCHS = {"cnn": 20, "mlp": 60, "doc000": 3000}
TARGET_ACCURACY = 0.98  # the CNN demo's goal on the digits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", nargs="?", default="cnn", choices=DEMOS,
                        help="cnn (default): a CNN on 8x8 digits; mlp: an MLP on the "
                             "same; doc000: document 000's network trained to convergence; "
                             "resnet: a residual CNN with batch norm and dropout on the "
                             "digits; gpt: a character-level GPT on Python's own source")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training data (doc000: steps); default "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items())
                             + ", resnet 25 (gpt: see --steps)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default: Adam from 3e-3 with cosine "
                             "decay to 0; doc000: SGD 0.7, the document's)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, shuffling "
                        "and the digits' train/test split (default 0)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"folder for the PNG plots (default ./{DEFAULT_OUT}/)")
    parser.add_argument("--data", default=None, metavar="FILE.npz",
                        help="your own data: an .npz with x_train, y_train, x_test, y_test "
                             "(gpt: a text file, FILE.txt)")
    parser.add_argument("--impl", default=None, metavar="IMPL",
                        help="build the network from these layer implementations, e.g. "
                             "'exercises' (your completed exercises) or 'solutions'")
    parser.add_argument("--no-autodiff", action="store_true",
                        help="skip the comparison run with jax.grad")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    parser.add_argument("--per-step", action="store_true",
                        help="one compiled call per minibatch instead of one per epoch")
    parser.add_argument("--save", default=None, metavar="PARAMS.npz",
                        help="save the trained parameters (hand-written backward run)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print one line per epoch (always, when the output is not a "
                             "terminal), with the seconds elapsed since training started")
    from jaxbp import demo_gpt

    demo_gpt.add_arguments(parser)


class DemoError(Exception):
    """A problem to report in one line, exit status 2."""


def run(args) -> int:
    try:
        _check_extras(args)
        # the numbers every run reads, before anything imports JAX (a usage error is
        # answered at once)
        if args.epochs is not None and args.which != "gpt":
            _positive(args.epochs, "--epochs")
        _positive(args.batch_size, "--batch-size")
        if getattr(args, "steps", None) is not None:
            _positive(args.steps, "--steps")
        _check_numbers_and_files(args)
        if args.which == "doc000":
            return _run_doc000(args)
        if args.which == "resnet":
            from jaxbp.demo_resnet import run_resnet

            return run_resnet(args)
        if args.which == "gpt":
            from jaxbp import demo_gpt

            return demo_gpt.run(args)
        return _run_classifier(args)
    except DemoError as e:
        print(f"jaxbp demo: {e}", file=sys.stderr)
        return 2


def _check_numbers_and_files(args):
    """The rest of what a run reads, before JAX is imported: a usage error is told at
    once, not as a traceback after training."""
    if args.lr is not None and not 0 < args.lr < float("inf"):
        raise DemoError(f"--lr must be a positive number, got {args.lr:g}")
    if args.seed < 0:
        raise DemoError(f"--seed must be a non-negative int, got {args.seed}")
    if args.which != "gpt":
        given = [flag for flag, value in (("--model", args.model), ("--steps", args.steps),
                                          ("--json", args.json)) if value is not None]
        if given:
            raise DemoError(f"{' and '.join(given)}: only the gpt demo reads "
                            f"{'it' if len(given) == 1 else 'them'} (jaxbp demo gpt ...)")
    if args.data:
        _readable(args.data)
    from jaxbp import _paths

    problem = ((_paths.file_problem(args.save, "--save") if args.save else None)
               or (_paths.file_problem(args.json, "--json") if args.json else None)
               or (None if args.no_plots else _paths.folder_problem(args.out, "--out")))
    if problem:
        raise DemoError(problem)
    if args.impl is not None:
        from jaxbp.grading import _impl

        try:
            _impl.Impl(args.impl)
        except _impl.ImplError as e:
            raise DemoError(str(e)) from None


def _readable(path):
    """``--data`` names a file this process can read (told before JAX is imported;
    what the file holds is checked when it is loaded)."""
    if os.path.isdir(path):
        raise DemoError(f"--data: {path!r} is a folder, not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise DemoError(f"--data: cannot read {path!r}: {e.strerror or e}") from None


def _check_extras(args):
    """Before any work: the packages of the ``demo`` extra this run needs."""
    from jaxbp import _extras

    needed, instead = [], []
    if not args.no_plots:
        needed.append("matplotlib")
        instead.append("--no-plots")
    if args.which != "doc000" and not args.data:
        needed.append("sklearn")
        instead.append("--data FILE.npz")
    missing = _extras.missing(*needed)
    if missing:
        ways = [w for m, w in zip(needed, instead) if m in missing]
        raise DemoError(_extras.message(missing, "or add " + " and ".join(ways)))


def _progress_lines(args) -> bool:
    """A line per epoch: asked for, or the output is a log (CI, a notebook, a pipe)
    where no progress bar shows."""
    return bool(args.verbose) or not _isatty(sys.stdout)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- layers


def layer_constructors(impl, demo=None):
    """Name -> layer/loss constructor: jaxbp's own, or those of ``impl``.

    With ``impl``, every exercise the demo ``demo`` needs is checked first, and all the
    unfinished ones are named in one message (:data:`jaxbp.grading.plug.DEMO_EXERCISES`).
    """
    import jaxbp

    names = ("dense", "relu", "sigmoid", "tanh", "softmax", "conv1d", "conv2d",
             "max_pool1d", "max_pool2d", "flatten", "serial", "softmax_cross_entropy",
             "half_mse")
    ctors = {name: getattr(jaxbp, name) for name in names}
    if impl is None:
        return ctors
    try:
        from jaxbp.grading import plug
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("jaxbp.grading"):
            raise DemoError(f"--impl {impl}: plugging in exercise implementations needs "
                            f"jaxbp.grading.plug, which this installation does not have")
        raise
    try:
        if demo is not None:
            needs_exercises(impl, demo)
        theirs = plug.learner_layers(impl)
    except DemoError:
        raise
    except Exception as e:  # the learner's code: report it, whatever it raised
        raise DemoError(f"--impl {impl}: {e}") from e
    ctors.update(theirs)
    return ctors


def needs_exercises(impl, demo):
    """Raises DemoError naming every exercise the demo needs that ``impl`` has not
    finished (one message), with the command that grades them in that folder."""
    from jaxbp.grading import plug
    from jaxbp.grading._impl import Impl

    impl_ = Impl(impl)
    missing = plug.unfinished(impl_, plug.DEMO_EXERCISES[demo])
    if missing:
        what = "gpt --model lstm" if demo == "lstm" else demo
        raise DemoError(f"--impl {impl}: the {what} demo needs {len(missing)} more "
                        f"exercise{'s' if len(missing) > 1 else ''}, not done yet: "
                        + "; ".join(line for _, line in missing) + ". Write them, check "
                        "them with " + plug.grade_command(impl_, [n for n, _ in missing])
                        + ", and run the demo again")


def build_with(impl, build, *args):
    """``build(*args)``; with ``--impl``, a learner's unfinished exercise (the
    constructors raise) is reported in one line instead of a traceback."""
    if impl is None:
        return build(*args)
    try:
        return build(*args)
    except DemoError:
        raise
    except Exception as e:
        raise DemoError(f"--impl {impl}: {e}") from e


def cnn(ctors, input_shape, classes):
    """conv 3x3x32 SAME, relu, max-pool 2, conv 3x3x64 SAME, relu, max-pool 2, dense."""
    if len(input_shape) != 3 or min(input_shape[:2]) < 4:
        raise DemoError(f"the CNN needs images (height, width, channels) of at least 4x4, "
                        f"got examples of shape {tuple(input_shape)}; try 'jaxbp demo mlp'")
    c = ctors
    return c["serial"](c["conv2d"](32, 3, padding="SAME"), c["relu"](), c["max_pool2d"](2),
                       c["conv2d"](64, 3, padding="SAME"), c["relu"](), c["max_pool2d"](2),
                       c["flatten"](), c["dense"](classes))


def mlp(ctors, input_shape, classes):
    """flatten, dense 128, relu, dense 64, relu, dense (64-128-64-10 on the digits)."""
    c = ctors
    return c["serial"](c["flatten"](), c["dense"](128), c["relu"](), c["dense"](64),
                       c["relu"](), c["dense"](classes))


# --------------------------------------------------------------------------- classifiers


def _run_classifier(args) -> int:
    import jax
    import numpy as np

    from jaxbp import train

    start = time.perf_counter()
    epochs = _positive(args.epochs if args.epochs is not None else
                       DEFAULT_EPOCHS[args.which], "--epochs")
    ds, batch_size, net, loss, lr, optimizer, params, shuffle_key = prepare_classifier(
        args, epochs, args.which, cnn if args.which == "cnn" else mlp)

    print(f"jaxbp demo {args.which}: {net.name}")
    print(f"  data: {ds.name}, {len(ds.x_train)} training and {len(ds.x_test)} held-out "
          f"examples of shape {ds.input_shape}, {ds.classes} classes")
    for note in ds.notes:
        print(f"  note: {note}")
    print(f"  training: Adam lr {lr:g} (cosine decay), batch {batch_size}, {epochs} epochs, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
          + (f", layers from --impl {args.impl}" if args.impl else ""))

    runs = ["manual"] + ([] if args.no_autodiff else ["autodiff"])
    verbose = _progress_lines(args)
    if verbose:
        print("  one line per epoch; (N s) is the time elapsed since that run's training "
              "started, compilation included", flush=True)
    results = train_runs(args, net, loss, optimizer, params, ds, shuffle_key, epochs,
                         batch_size, runs, verbose)
    manual = results["hand-written backward"]

    x_test = ds.x_test
    pred = _predict(net, manual.params, x_test)
    accuracy = float(np.mean(pred == ds.y_test))
    verdict = ""
    if not args.data and args.which == "cnn":
        verdict = "  (goal >= 98%: " + ("met)" if accuracy >= TARGET_ACCURACY
                                         else "not met)")
    print(f"held-out accuracy with the hand-written backward: {100 * accuracy:.2f}% "
          f"({int(np.sum(pred == ds.y_test))}/{len(pred)}){verdict}")

    if args.save:
        train.save(args.save, manual.params)
        print(f"  parameters saved to {args.save}")
    if not args.no_plots:
        from jaxbp import plots

        out = args.out
        name = args.which
        written = _draw(lambda: [
            plots.training_curves({k: r.history for k, r in results.items()},
                                  os.path.join(out, f"{name}_curves.png"),
                                  title=f"{args.which.upper()} on {ds.name}: hand-written "
                                        f"backward and jax.grad"),
            plots.prediction_grid(x_test, ds.y_test, pred,
                                  os.path.join(out, f"{name}_predictions.png")),
            plots.confusion_matrix(ds.y_test, pred, ds.classes,
                                   os.path.join(out, f"{name}_confusion.png")),
        ])
        print("plots: " + ", ".join(written))
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _draw(draw):
    """``draw()``; a plot that cannot be written (matplotlib gone since the start, an
    unwritable --out) is reported in one line."""
    from jaxbp import _extras

    try:
        return draw()
    except ImportError as e:
        raise DemoError(_extras.message(["matplotlib"], "or add --no-plots")) from e
    except OSError as e:
        raise DemoError(f"--out: cannot write the plots: {e}") from e



class ClassifierSetup(NamedTuple):
    ds: Any
    batch_size: int
    net: Any
    loss: Any
    lr: float
    optimizer: Any
    params: Any
    shuffle_key: Any


def prepare_classifier(args, epochs, demo, build) -> ClassifierSetup:
    """What a digits (or ``--data``) classifier demo trains with: the data, the network
    ``build(constructors, input_shape, classes)`` (from ``--impl`` when given, checked
    for the exercises the demo ``demo`` needs), its loss, Adam from ``--lr`` with cosine
    decay to 0 over ``epochs``, the initial parameters and the shuffling key."""
    import jax
    import optax

    from jaxbp import data as data_lib

    batch_size = _positive(args.batch_size, "--batch-size")
    if args.data:
        try:
            ds = data_lib.load_npz(args.data)
        except (ValueError, TypeError) as e:
            raise DemoError(f"--data: {e}") from e
    else:
        ds = data_lib.digits(seed=args.seed)
    batch_size = min(batch_size, len(ds.x_train))
    ctors = layer_constructors(args.impl, demo)
    net, loss = build_with(args.impl, lambda: (build(ctors, ds.input_shape, ds.classes),
                                               ctors["softmax_cross_entropy"]()))
    lr = 3e-3 if args.lr is None else args.lr
    # Cosine decay to 0 over the run: the last epochs settle instead of jittering.
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, epochs * (len(ds.x_train)
                                                                     // batch_size)))
    init_key, shuffle_key = jax.random.split(jax.random.key(args.seed))
    try:
        params, _ = net.init(init_key, ds.input_shape)
    except (ValueError, TypeError) as e:
        raise DemoError(f"the network does not fit the data: {e}") from e
    return ClassifierSetup(ds, batch_size, net, loss, lr, optimizer, params, shuffle_key)


def train_runs(args, net, loss, optimizer, params, ds, shuffle_key, epochs, batch_size,
               runs, verbose, state=None) -> dict:
    """Trains ``net`` once per entry of ``runs`` ("manual", "autodiff") from the same
    params, keys and minibatches, side by side in threads (one after the other with
    ``--impl``); prints each run's held-out result and how far the two runs' losses
    drift apart. Returns ``{label: FitResult}``, the hand-written run first.

    jax.grad runs one call per minibatch: inside lax.scan, XLA on CPU compiles the
    convolution kernel gradient that jax.grad emits about 10x slower (the hand-written
    one is laid out to avoid that; see jaxbp/layers/conv.py). Both loops draw the same
    minibatches in the same order.
    """
    import numpy as np

    from jaxbp import train

    import concurrent.futures

    def one(grads):
        label = "hand-written backward" if grads == "manual" else "jax.grad (autodiff)"
        fused = grads == "manual" and not args.per_step
        t0 = time.perf_counter()
        try:
            result = train.fit(net, loss, optimizer, params, ds.x_train, ds.y_train,
                               key=shuffle_key, epochs=epochs, batch_size=batch_size,
                               grads=grads, validation_data=(ds.x_test, ds.y_test),
                               fused=fused, verbose=verbose, desc=label,
                               **({} if state is None else {"state": state}))
        except Exception as e:
            if args.impl is None:
                raise
            raise DemoError(f"training with --impl {args.impl} failed: "
                            f"{type(e).__name__}: {e}") from e
        return label, fused, result, time.perf_counter() - t0

    # The two runs train side by side, one thread each: XLA releases the GIL while it
    # compiles and computes, so on two cores the comparison run costs little extra
    # wall time. With --impl they run one after the other: a learner's failing layer
    # is reported as soon as its run fails.
    side_by_side = len(runs) > 1 and args.impl is None
    with concurrent.futures.ThreadPoolExecutor(len(runs) if side_by_side else 1) as pool:
        done = [f.result() for f in [pool.submit(one, g) for g in runs]]
    results = {}
    for label, fused, result, seconds in done:
        results[label] = result
        h = result.history
        print(f"  {label:22s} held-out accuracy {100 * h['val_accuracy'][-1]:5.1f}%  "
              f"loss {h['val_loss'][-1]:.4f}  train loss {h['loss'][-1]:.4f}  "
              f"({seconds:.1f} s with compilation"
              f"{', side by side with the other run' if side_by_side else ''}; "
              f"{'one compiled call per epoch' if fused else 'one call per minibatch'})")
    labels = list(results)
    if len(labels) == 2:
        a, b = (np.asarray(results[k].history["loss"]) for k in labels)
        gaps = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        print(f"  the two runs' training losses differ by {gaps[0]:.1e} (relative) after "
              f"epoch 1 and by at most {gaps.max():.1e} over {len(gaps)} epochs: float32 "
              f"rounding, compounded step after step")
    return results


def _predict(net, params, x, state=None, batch_size=1024):
    """Class predictions, in inference mode for a network with state (no dropout,
    batch norm's running statistics)."""
    import numpy as np

    from jaxbp._apply import apply
    from jaxbp._core import jit_once

    # runs once per chunk
    forward = jit_once(lambda p, s, xb: apply(net, p, s, xb, train=False)[0])
    out = [np.asarray(forward(params, state, x[i:i + batch_size]))
           for i in range(0, len(x), batch_size)]
    return np.argmax(np.concatenate(out), axis=-1)


def _positive(value, flag):
    if value is None or value < 1:
        raise DemoError(f"{flag} must be a positive int, got {value}")
    return value


# --------------------------------------------------------------------------- document 000


def _run_doc000(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import jaxbp
    from jaxbp import train

    if args.data:
        raise DemoError("--data does not apply to doc000 (document 000 trains on its "
                        "one example)")
    start = time.perf_counter()
    steps = _positive(args.epochs if args.epochs is not None else
                      DEFAULT_EPOCHS["doc000"], "--epochs")
    ex = jaxbp.notes.load("000")
    ctors = layer_constructors(args.impl, "doc000")
    c = ctors
    lr = ex.learning_rate if args.lr is None else args.lr
    if args.impl is None:
        net, loss, optimizer = ex.net, ex.loss, optax.sgd(lr)
    else:
        # The learner's backward passes, loss gradient and SGD update, all of them.
        net, loss, optimizer = build_with(args.impl, lambda: (
            c["serial"](c["dense"](2), c["sigmoid"](), c["dense"](3), c["sigmoid"](),
                        c["dense"](2), c["sigmoid"]()),
            c["half_mse"](), c["sgd"](lr) if "sgd" in c else optax.sgd(lr)))
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), ex.params)
    x = np.asarray(ex.x, np.float32)
    target = np.asarray(ex.target, np.float32)
    # Outputs are recorded every `every` steps (one compiled call of `every` steps each).
    every = max(1, steps // 300)
    chunks = [every] * (steps // every) + ([steps % every] if steps % every else [])

    print(f"jaxbp demo doc000: document 000's {net.name}")
    print(f"  one example x = {_fmt(ex.x[0])}, targets {_fmt(ex.target[0])}, SGD lr {lr:g} "
          f"(the document's alpha), {steps} steps from the document's initial weights")
    runs = ["manual"] + ([] if args.no_autodiff else ["autodiff"])
    forward = jax.jit(lambda p: net.forward(p, x)[0][0])
    verbose = _progress_lines(args)
    losses, outputs, finals = {}, {}, {}
    for grads in runs:
        label = "hand-written backward" if grads == "manual" else "jax.grad (autodiff)"
        compiled = {n: train.make_epoch(net, loss, optimizer, grads, batch_size=1, steps=n)
                    for n in set(chunks)}
        p = jax.tree.map(jnp.array, params)
        s = optimizer.init(p)
        key = jax.random.key(args.seed)
        trace_loss, trace_out = [], [np.asarray(forward(p))]
        t0 = shown = time.perf_counter()
        done = 0
        try:
            for n in chunks:
                key, sub = jax.random.split(key)
                p, s, chunk_losses = compiled[n](p, s, sub, x, target)
                trace_loss.append(np.asarray(chunk_losses))
                trace_out.append(np.asarray(forward(p)))
                done += n
                now = time.perf_counter()
                if verbose and (now - shown >= 2.0 or done == steps):
                    shown = now
                    print(f"  {label}: step {done}/{steps}  "
                          f"E {float(trace_loss[-1][-1]):.3e}  (elapsed {now - t0:.1f} s)",
                          flush=True)
        except Exception as e:
            if args.impl is None:
                raise
            raise DemoError(f"training with --impl {args.impl} failed: "
                            f"{type(e).__name__}: {e}") from e
        losses[label] = np.concatenate(trace_loss)
        outputs[label] = np.stack(trace_out)
        finals[label] = p
        out = outputs[label][-1]
        print(f"  {label:22s} E = {losses[label][0]:.4f} at the start (the document "
              f"prints 0.422), {_half_mse(out, target[0]):.2e} after {steps} steps")

    labels = list(losses)
    ref_out = outputs[labels[0]]
    out_steps = np.concatenate([[0], np.cumsum(chunks)])
    print("  after step        E     out_o1   out_o2")
    marks = [0] + [m for m in (1, 10, 100, 1000, 10000) if m < steps] + [steps]
    for m in marks:
        i = int(np.searchsorted(out_steps, m))
        if i < len(out_steps) and out_steps[i] == m:
            o = ref_out[i]
            print(f"  {m:10d}  {_half_mse(o, target[0]):.3e}   {o[0]:.4f}   {o[1]:.4f}")
    if len(labels) == 2:
        gap = float(np.max(np.abs(losses[labels[0]] - losses[labels[1]])
                           / np.maximum(losses[labels[1]], 1e-30)))
        print(f"  hand-written backward and jax.grad: the losses differ by at most "
              f"{gap:.1e} (relative) over {steps} steps")
    final = ref_out[-1]
    reached = bool(np.max(np.abs(final - target[0])) < 0.005)
    print(f"outputs after {steps} steps: ({final[0]:.4f}, {final[1]:.4f}); targets "
          f"(0.01, 0.99): {'reached (within 0.005)' if reached else 'not reached yet'}")
    if args.save:
        train.save(args.save, finals[labels[0]])
        print(f"  parameters saved to {args.save}")
    if not args.no_plots:
        from jaxbp import plots

        path = _draw(lambda: plots.convergence(
            np.arange(1, steps + 1), losses, out_steps, outputs,
            target[0], os.path.join(args.out, "doc000_convergence.png"),
            title="document 000's network, trained from its initial weights"))
        print(f"plots: {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _fmt(values):
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _half_mse(out, target):
    import numpy as np

    return float(0.5 * np.sum((np.asarray(out, np.float64) - target) ** 2))
