"""``jaxbp demo resnet``: a small residual CNN with batch norm and dropout, trained by
the hand-written backward passes.

The network (on the 8x8 digits; any ``(h, w, c)`` images with ``--data``)::

    conv 3x3x16 SAME, batch norm, relu,
    residual(conv 3x3x16, batch norm, relu, conv 3x3x16, batch norm), relu,
    max-pool 2,
    conv 3x3x32 SAME, batch norm, relu,
    residual(conv 3x3x32, batch norm, relu, conv 3x3x32, batch norm), relu,
    global average pool, dropout 0.2, dense 10

The convolutions before a batch norm have no bias (the norm's own bias replaces it).
Training is in training mode (dropout draws a fresh mask every step, batch norm uses
the batch statistics and updates its running ones in the state); evaluation and the
held-out predictions are in inference mode (no dropout, the running statistics). As in
``jaxbp demo``, the same network trains a second time with ``jax.grad`` from the same
weights, minibatches and dropout keys, and the two runs' curves overlap.
"""

from __future__ import annotations

import os
import time

from jaxbp.demo import DemoError, _positive, _predict, prepare_classifier, train_runs

DEFAULT_EPOCHS = 25


def resnet(ctors, input_shape, classes, width=16, rate=0.2):
    """The residual CNN above; ``ctors`` supplies the plain layers (jaxbp's, or a
    learner's with ``--impl``), jaxbp the combinators and the layers beyond the
    documents."""
    import jaxbp

    if len(input_shape) != 3 or min(input_shape[:2]) < 2:
        raise DemoError(f"the residual CNN needs images (height, width, channels) of at "
                        f"least 2x2, got examples of shape {tuple(input_shape)}; try "
                        f"'jaxbp demo mlp'")
    c = ctors

    def conv(features):
        return c["conv2d"](features, 3, padding="SAME", bias=False)

    def block(features):
        return jaxbp.residual(conv(features), jaxbp.batch_norm(), c["relu"](),
                              conv(features), jaxbp.batch_norm())

    return c["serial"](
        conv(width), jaxbp.batch_norm(), c["relu"](),
        block(width), c["relu"](),
        c["max_pool2d"](2),
        conv(2 * width), jaxbp.batch_norm(), c["relu"](),
        block(2 * width), c["relu"](),
        jaxbp.global_avg_pool(), jaxbp.dropout(rate), c["dense"](classes))


def run_resnet(args) -> int:
    import jax
    import numpy as np

    import jaxbp
    from jaxbp import train
    from jaxbp.demo import TARGET_ACCURACY

    start = time.perf_counter()
    epochs = _positive(args.epochs if args.epochs is not None else DEFAULT_EPOCHS,
                       "--epochs")
    ds, batch_size, net, loss, lr, optimizer, params, shuffle_key = prepare_classifier(
        args, epochs, None, resnet)
    state = jaxbp.init_state(net, params)
    n_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))

    print("jaxbp demo resnet: a residual CNN with batch norm and dropout, "
          f"{n_params} parameters")
    print(f"  {net.name}")
    print(f"  data: {ds.name}, {len(ds.x_train)} training and {len(ds.x_test)} held-out "
          f"examples of shape {ds.input_shape}, {ds.classes} classes")
    print(f"  training: Adam lr {lr:g} (cosine decay), batch {batch_size}, {epochs} epochs, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s); training mode "
          f"(dropout on, batch statistics), evaluation in inference mode"
          + (f"; layers from --impl {args.impl}" if args.impl else ""))

    runs = ["manual"] + ([] if args.no_autodiff else ["autodiff"])
    results = train_runs(args, net, loss, optimizer, params, ds, shuffle_key, epochs,
                         batch_size, runs, args.verbose, state=state)
    manual = results["hand-written backward"]

    pred = _predict(net, manual.params, ds.x_test, state=manual.state)
    accuracy = float(np.mean(pred == ds.y_test))
    verdict = ""
    if not args.data:
        verdict = "  (goal >= 98%: " + ("met)" if accuracy >= TARGET_ACCURACY
                                         else "not met)")
    print(f"held-out accuracy with the hand-written backward: {100 * accuracy:.2f}% "
          f"({int(np.sum(pred == ds.y_test))}/{len(pred)}), inference mode{verdict}")

    if args.save:
        train.save(args.save, manual.params, manual.state)
        print(f"  parameters and batch-norm running statistics saved to {args.save} "
              f"(jaxbp.train.load(path, with_state=True))")
    if not args.no_plots:
        from jaxbp import plots

        out = args.out
        written = [
            plots.training_curves({k: r.history for k, r in results.items()},
                                  os.path.join(out, "resnet_curves.png"),
                                  title=f"residual CNN on {ds.name}: hand-written "
                                        f"backward and jax.grad"),
            plots.prediction_grid(ds.x_test, ds.y_test, pred,
                                  os.path.join(out, "resnet_predictions.png")),
            plots.confusion_matrix(ds.y_test, pred, ds.classes,
                                   os.path.join(out, "resnet_confusion.png")),
        ]
        print("plots: " + ", ".join(written))
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
