"""Grading specs of ``15_sequence_loss_adam.py``: sequence cross-entropy, Adam (against optax)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (Case, References, case_rng, exercise, f64, mistake, nonzero,
                                np64, shape_label)


def _sequence_xent(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def _sequence_xent_cases():
    rng = case_rng("sequence_cross_entropy_backward")
    refs, drawn = References(), []
    for batch, time, classes in [(3, 5, 6), (1, 4, 3), (4, 3, 5)]:
        logits = 2 * rng.normal(size=(batch, time, classes))
        labels = rng.integers(0, classes, size=(batch, time))
        lj, yj = f64(logits), jax.device_put(labels.astype(np.int32))
        drawn.append((logits, labels, lj, yj,
                      refs.vjp(lambda z, yj=yj: _sequence_xent(z, yj), (lj,), f64(1.0))))
    answers = refs.run()
    cases = []
    for logits, labels, lj, yj, h in drawn:
        (dlogits,) = answers[h]

        def candidates(logits=logits, labels=labels):
            b, t, c = logits.shape
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            diff = e / e.sum(axis=-1, keepdims=True) - np.eye(c)[labels]
            return {"dlogits": [
                (mistake("mean-over-batch-only", "the mean over the batch only: the loss "
                         "averages over the batch and the time steps, batch · time terms"),
                 diff / b),
                (mistake("mean-over-time-only", "the mean over the time steps only: the loss "
                         "averages over the batch and the time steps, batch · time terms"),
                 diff / t),
                (mistake("no-mean", "missing the mean: the loss is the mean over batch · time "
                         "positions, so its gradient carries 1 / (batch · time)"), diff),
                (mistake("logits-for-probs", "used the logits where the softmax probabilities "
                         "belong: the gradient is (softmax(logits) - one_hot(labels)) / "
                         "(batch · time)"), (logits - np.eye(c)[labels]) / (b * t)),
            ]}
        cases.append(Case(shape_label(logits=logits, labels=labels), (lj, yj), dlogits,
                          candidates))
    return cases


ADAM_OUTPUTS = ("new_params", "new_m", "new_v")


def _adam_np(p, g, m, v, step, lr, b1, b2, eps, *, correct=True, eps_inside=False,
             update_moments=True):
    new_m = b1 * m + (1 - b1) * g
    new_v = b2 * v + (1 - b2) * g * g
    um, uv = (new_m, new_v) if update_moments else (m, v)
    if correct:
        um, uv = um / (1 - b1 ** step), uv / (1 - b2 ** step)
    denom = np.sqrt(uv + eps) if eps_inside else np.sqrt(uv) + eps
    return p - lr * um / denom, new_m, new_v


def _adam_mistakes(params, grads, m, v, step, lr, b1, b2, eps):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    leaves = [jax.tree.leaves(t) for t in (grads, m, v)]
    out = {}
    no_correction = mistake("no-bias-correction", "no bias correction: m and v start at 0, so "
                            "early on they are too small by the factors 1 - b1^step and "
                            "1 - b2^step; divide by them")
    inside = mistake("eps-inside-sqrt", "epsilon inside the square root: the step is "
                     "m_hat / (sqrt(v_hat) + eps), eps outside (as in the paper and in optax)")
    not_updated = mistake("moments-not-updated", "the moments are not updated: first "
                          "m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g², then the step with "
                          "the new m and v (and return the new ones)")
    off = mistake("step-off-by-one", "the bias correction uses the wrong step count: step is "
                  "the number of this update (1 for the first), and the factors are 1 - b1^step, "
                  "1 - b2^step")
    for (path, p), g, mm, vv in zip(flat, *leaves):
        key = jax.tree_util.keystr(path)
        p, g, mm, vv = np64(p), np64(g), np64(mm), np64(vv)
        args = (p, g, mm, vv, step, lr, b1, b2, eps)
        out["new_params" + key] = [
            (no_correction, _adam_np(*args, correct=False)[0]),
            (inside, _adam_np(*args, eps_inside=True)[0]),
            (not_updated, _adam_np(*args, update_moments=False)[0]),
            (off, _adam_np(p, g, mm, vv, step + 1, lr, b1, b2, eps)[0]),
        ]
        out["new_m" + key] = [(not_updated, mm)]
        out["new_v" + key] = [(not_updated, vv)]
    return out


def _adam_cases():
    import optax

    rng = case_rng("adam_update")
    refs, drawn = References(), []
    trees = [
        ({"w": (3, 2), "b": (2,)}, 1, (0.1, 0.9, 0.999, 1e-8)),
        (({"w": (2, 3)}, (), {"w": (3, 1), "b": (1,)}), 3, (0.05, 0.8, 0.9, 0.1)),
        ((5,), 4, (0.2, 0.5, 0.7, 1e-3)),
    ]
    is_shape = lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s)  # noqa: E731
    for shapes, step, (lr, b1, b2, eps) in trees:
        def draw(scale=1.0, shapes=shapes):
            return jax.tree.map(lambda s: f64(scale * nonzero(rng, s)), shapes,
                                is_leaf=is_shape)
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps)

        def run(params, all_grads, opt=opt):  # optax's own steps up to this one
            state = opt.init(params)
            seen = []
            for g in all_grads:
                seen.append((params, state[0].mu, state[0].nu))
                updates, state = opt.update(g, state, params)
                params = optax.apply_updates(params, updates)
            return seen[-1], (params, state[0].mu, state[0].nu)

        all_grads = [draw(0.3) for _ in range(step)]
        drawn.append((step, lr, b1, b2, eps, all_grads[-1], refs.call(run, draw(), all_grads)))
    answers = refs.run()
    cases = []
    for step, lr, b1, b2, eps, grads, h in drawn:
        (params, mu, nu), expected = answers[h]
        label = (f"params {jax.tree.map(lambda a: tuple(a.shape), params)}, step {step}, "
                 f"lr {lr}, b1 {b1}, b2 {b2}, eps {eps:g}")
        args = (params, grads, mu, nu, step, lr, b1, b2, eps)
        cases.append(Case(label, args, expected,
                          functools.cache(lambda a=args: _adam_mistakes(*a))))
    return cases


MODULE = "15_sequence_loss_adam.py"

EXERCISES = (
    exercise("sequence_cross_entropy_backward", "cross-entropy over batch and time", "-",
             ("dlogits",), _sequence_xent_cases),
    exercise("adam_update", "Adam, with bias correction (against optax)", "-", ADAM_OUTPUTS,
             _adam_cases),
)
