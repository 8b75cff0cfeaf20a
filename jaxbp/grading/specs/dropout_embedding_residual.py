"""Grading specs of ``12_dropout_embedding_residual.py``: dropout, embedding, the residual fork."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (Case, LayerStandIns, References, backward_matrices,
                                case_rng, exercise, f64, mistake, nonzero, np64, shape_label,
                                stand_ins)


def _dropout_cases():
    rng = case_rng("dropout_backward")
    refs, drawn = References(), []
    for shape, rate in [((1, 6), 0.5), ((4, 5), 0.25), ((2, 3, 4), 0.1)]:
        mask = rng.uniform(size=shape) >= rate
        mask.flat[0], mask.flat[1] = True, False  # both kinds, whatever the draw
        dy = nonzero(rng, shape)
        f = lambda x, m=jax.device_put(mask), r=rate: jnp.where(m, x / (1 - r), 0.0)  # noqa: E731
        drawn.append((rate, mask, dy, refs.vjp(f, (f64(np.ones(shape)),), f64(dy))))
    answers = refs.run()
    cases = []
    for rate, mask, dy, h in drawn:
        (dx,) = answers[h]

        def candidates(mask=mask, dy=dy, r=rate):
            return {"dx": [
                (mistake("missing-scale", "missing the scale: the kept entries were divided by "
                         "1 - rate in the forward, so their gradient is dy / (1 - rate)"),
                 np.where(mask, dy, 0.0)),
                (mistake("scale-inverted", "multiplied by 1 - rate: the forward divided the kept "
                         "entries by 1 - rate, so the backward divides too"),
                 np.where(mask, dy * (1 - r), 0.0)),
                (mistake("inverted-mask", "the mask is inverted: gradient flows through the kept "
                         "entries (mask True) and not through the dropped ones"),
                 np.where(mask, 0.0, dy / (1 - r))),
                (mistake("no-mask", "the mask is missing: a dropped entry did not reach the "
                         "output, so its gradient is 0"), dy / (1 - r)),
            ]}
        cases.append(Case(shape_label(mask=mask, dy=dy) + f", rate {rate}",
                          (jax.device_put(mask), f64(dy), rate), dx, candidates))
    return cases


def _embedding_cases():
    rng = case_rng("embedding_backward")
    refs, drawn = References(), []
    for ids_shape, vocab, features in [((1, 6), 4, 3), ((3, 4), 7, 2), ((2, 3, 2), 5, 4)]:
        ids = rng.integers(0, vocab - 1, size=ids_shape)  # the last row is never used
        ids.flat[1] = ids.flat[0]  # at least one id repeats
        dy = nonzero(rng, (*ids_shape, features))
        w = nonzero(rng, (vocab, features))
        idsj = jax.device_put(ids.astype(np.int32))
        drawn.append((vocab, ids, idsj, dy,
                      refs.vjp(lambda w, i=idsj: w[i], (f64(w),), f64(dy))))
    answers = refs.run()
    cases = []
    for vocab, ids, idsj, dy, h in drawn:
        (dw,) = answers[h]

        def candidates(ids=ids, dy=dy, vocab=vocab):
            flat_ids, rows = ids.reshape(-1), dy.reshape(-1, dy.shape[-1])
            last, first = np.zeros((vocab, rows.shape[1])), np.zeros((vocab, rows.shape[1]))
            last[flat_ids] = rows
            first[flat_ids[::-1]] = rows[::-1]
            summed = np.zeros_like(last)
            np.add.at(summed, flat_ids, rows)
            counts = np.bincount(flat_ids, minlength=vocab)[:, None]
            assigned = mistake("assignment", "assignment loses repeated ids: an id used at several "
                               "positions gets the sum of their dy (a.at[ids].add, not "
                               "a.at[ids].set)")
            return {"dw": [(assigned, last), (assigned, first),
                           (mistake("mean-of-repeats", "averaged over the repeats of an id: every "
                                    "use adds its dy, so the row gets their sum"),
                            summed / np.maximum(counts, 1))]}
        cases.append(Case(shape_label(ids=ids, dy=dy) + f", vocab_size {vocab}",
                          (idsj, f64(dy), vocab), dw, candidates))
    return cases


def _residual_cases():
    import jaxbp

    branches = [
        ((jaxbp.dense(4), jaxbp.tanh(), jaxbp.dense(3)), (1, 3)),
        ((jaxbp.dense(6), jaxbp.relu(), jaxbp.dense(5), jaxbp.sigmoid()), (3, 5)),
        ((jaxbp.conv2d(2, 3, padding="SAME"), jaxbp.tanh()), (2, 4, 5, 2)),
    ]
    rng = case_rng("residual_backward")
    tokens_rng = case_rng("residual_backward tokens")
    refs, drawn = References(), []
    for layers, shape in branches:
        branch = jaxbp.serial(*layers)
        shapes, _ = jax.eval_shape(lambda b=branch, s=shape[1:]: b.init(jax.random.key(0), s))
        params = jax.tree.map(lambda s: f64(rng.normal(size=s.shape) / 2), shapes)
        x = f64(rng.normal(size=shape))
        dy = f64(nonzero(rng, shape))

        def reference(params, x, dy, branch=branch):
            fx, residuals = branch.forward(params, x)
            _, pullback = jax.vjp(lambda p, x: x + branch.forward(p, x)[0], params, x)
            return fx, residuals, pullback(dy)

        drawn.append((layers, shape, branch, params, x, dy,
                      refs.call(reference, params, x, dy)))
    answers = refs.run()
    cases = []
    for layers, shape, branch, params, x, dy, h in drawn:
        fx, residuals, (dparams, dx) = answers[h]
        # The worker gets a stand-in for the branch (jaxbp never goes there).
        matrices = backward_matrices((branch,), (params,), (residuals,), (x, fx))
        standins, tokens = stand_ins((branch,), (params,), matrices, (x, fx), tokens_rng)
        worker_args = (LayerStandIns(standins.layers, single=True), params, tokens[0], dy)

        def candidates(dx=np64(dx), dy=np64(dy)):
            return {"dx": [
                (mistake("identity-forgotten", "the identity path is missing: x reaches y "
                         "directly (y = x + f(x)) as well as through the branch, so "
                         "dx = dy + the branch's dx"), dx - dy),
                (mistake("branch-forgotten", "the branch's path is missing: x also reaches "
                         "y through f, so dx = dy + the branch's dx"), dy),
            ]}
        label = "branch " + ", ".join(layer.name for layer in layers) + f"; x {shape}"
        cases.append(Case(label, (branch, params, residuals, dy), (dparams, dx), candidates,
                          worker_args=worker_args))
    return cases


MODULE = "12_dropout_embedding_residual.py"

EXERCISES = (
    exercise("dropout_backward", "inverted dropout: the forward's mask and scale", "-",
             ("dx",), _dropout_cases),
    exercise("embedding_backward", "embedding: scatter-add over repeated ids", "-", ("dw",),
             _embedding_cases, static_argnums=(2,)),
    exercise("residual_backward", "the residual fork: two paths add", "-",
             ("dparams", "dx"), _residual_cases, static_argnums=(0,)),
)
