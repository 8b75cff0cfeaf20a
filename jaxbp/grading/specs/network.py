"""Grading specs of ``08_network.py``: a network's backward, composed."""

from __future__ import annotations

import jax

from jaxbp.grading.spec import (Case, References, backward_matrices, case_rng, exercise, f64,
                                nonzero, out_shape, stand_ins)


def _serial_cases():
    import jaxbp

    nets = [
        ((jaxbp.dense(3), jaxbp.sigmoid(), jaxbp.dense(2)), (1, 4)),
        ((jaxbp.dense(5), jaxbp.tanh(), jaxbp.dense(4), jaxbp.relu(), jaxbp.dense(3),
          jaxbp.softmax()), (3, 4)),
        ((jaxbp.conv2d(2, 3), jaxbp.relu(), jaxbp.max_pool2d(2), jaxbp.flatten(),
          jaxbp.dense(3)), (2, 6, 6, 1)),
    ]
    rng = case_rng("serial_backward")
    tokens_rng = case_rng("serial_backward tokens")
    refs, drawn = References(), []
    for layers, shape in nets:
        # Parameter shapes from init, traced without running it; values from the rng.
        net = jaxbp.serial(*layers)
        shapes, _ = jax.eval_shape(lambda net=net, s=shape[1:]: net.init(jax.random.key(0), s))
        params = jax.tree.map(lambda s: f64(rng.normal(size=s.shape) / 2), shapes)
        x = f64(rng.normal(size=shape))

        def forward(params, x, layers=layers):
            residuals, xs = [], [x]
            for layer, p in zip(layers, params):
                x, r = layer.forward(p, x)
                residuals.append(r)
                xs.append(x)
            return x, tuple(residuals), tuple(xs)

        dy = f64(nonzero(rng, out_shape(lambda p, x: forward(p, x)[0], params, x)))

        def reference(params, x, dy, forward=forward):
            y, pullback = jax.vjp(lambda p, x: forward(p, x)[0], params, x)
            return forward(params, x)[1:], pullback(dy)

        drawn.append((layers, shape, params, dy, refs.call(reference, params, x, dy)))
    answers = refs.run()
    cases = []
    for layers, shape, params, dy, h in drawn:
        (residuals, xs), (dparams, dx) = answers[h]
        matrices = backward_matrices(layers, params, residuals, xs)
        label = "layers " + ", ".join(layer.name for layer in layers) + f"; x {shape}"
        # The worker gets stand-ins for jaxbp's layers (jaxbp never goes there).
        standins, tokens = stand_ins(layers, params, matrices, xs, tokens_rng)
        cases.append(Case(label, (tuple(layers), params, residuals, dy), (dparams, dx),
                          worker_args=(standins, params, tokens, dy)))
    return cases


MODULE = "08_network.py"

EXERCISES = (
    exercise("serial_backward", "a network's backward, composed", "000, 001",
             ("dparams", "dx"), _serial_cases, static_argnums=(0,), layers_arg=True),
)
