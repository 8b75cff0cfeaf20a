"""Grading specs of ``02_losses.py``: the losses' gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.grading.spec import (MISSING_DERIVATIVE, Case, DocCase, References, case_rng,
                                 exercise, f64, grad_of, mistake, nonzero, notes_example, np64,
                                 operand, printed_number, printed_record, shape_label,
                                 sigmoid_np)


BATCH_MEAN = ("batch-mean", "missing the batch mean: the loss is the mean over the batch, "
              "so its gradient carries a factor 1/batch")


def _loss_cases(name, output, loss, make_inputs, shapes, extra):
    rng = case_rng(name)
    refs, drawn = References(), []
    for shape in shapes:
        pred, target = make_inputs(rng, shape)
        pj, tj = f64(pred), f64(target)
        drawn.append((pred, target, pj, tj, refs.grad(loss, pj, tj)))
    answers = refs.run()
    cases = []
    for pred, target, pj, tj, h in drawn:
        label = shape_label(pred=pred, target=target)
        if np.max(np.abs(pred)) >= 50:
            label += f", entries up to ±{np.max(np.abs(pred)):g}"
        expected = answers[h]

        def candidates(pred=pred, target=target, expected=np64(expected)):
            batch = pred.shape[0]
            out = list(extra(pred, target, expected))
            if batch > 1:
                out.append((mistake(*BATCH_MEAN), expected * batch))
            return {output: out}

        cases.append(Case(label, (pj, tj), expected, candidates))
    return cases


def _half_mse(pred, target):
    return jnp.mean(0.5 * jnp.sum((pred - target) ** 2, axis=1))


def _half_mse_mistakes(pred, target, expected):
    batch, n = pred.shape
    diff = pred - target
    out = [(mistake("factor-2", "a factor of 2: that is the gradient of the squared error "
                    "without the 1/2; half-MSE's 1/2 cancels the square's 2"), 2 * expected),
           (mistake("size-mean", "divided by pred.size (batch × n): the loss is the mean "
                    "over the batch of a sum over the n entries, so divide by the batch "
                    "size alone"), diff / pred.size),
           (mistake("feature-mean", "divided by the number of entries per example n, "
                    "where the batch size belongs: the mean runs over the batch (axis 0)"),
            diff / n)]
    if batch > 1:
        out.append((mistake("factor-2", "a factor of 2 (the squared error without the "
                            "1/2) and missing the batch mean (divide by the batch size)"),
                    2 * expected * batch))
    return out


def _half_mse_cases():
    def inputs(rng, shape):
        return nonzero(rng, shape), nonzero(rng, shape)
    return _loss_cases("half_mse_backward", "dpred", _half_mse, inputs, [(1, 2), (3, 4), (5, 1)],
                       _half_mse_mistakes)


def _half_mse_doc002():
    # 002: "δ_o1 = ∂Error/∂o_1 = o_1 - 0.23 = 0.25", "δ_o2 = o_2 - (-0.07) = 0.60", with
    # the printed o1 = 0.48, o2 = 0.53 (one example: the batch mean divides by 1).
    ex = notes_example("002")
    pred = f64([[printed_record(ex, "o1").value, printed_record(ex, "o2").value]])
    target = f64(ex.target)
    printed = [printed_number(ex, "delta_o1", "dpred", (0, 0)),
               printed_number(ex, "delta_o2", "dpred", (0, 1))]
    return DocCase("002: o = (0.48, 0.53), labels (0.23, -0.07)", (pred, target),
                   f64(np64(pred) - np64(target)), printed,
                   lambda: {"dpred": _half_mse_mistakes(np64(pred), np64(target),
                                                        np64(pred - target))})


def _softmax_xent(logits, target):
    return jnp.mean(-jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))


def _softmax_np(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _xent_mistakes(logits, target, expected):
    batch = logits.shape[0]
    a = _softmax_np(logits)
    return [(mistake("logits-for-probs", "used the logits z where the softmax "
                     "probabilities a = softmax(z) belong: the gradient is a - y"),
             (logits - target) / batch),
            (mistake("probs-gradient", "that is ∂L/∂a, the gradient with respect to the "
                     "probabilities; through the softmax's Jacobian it simplifies to a - "
                     "y (003)"), -target / a / batch),
            (mistake("softmax-axis", "the softmax ran over the wrong axis: over the "
                     "classes (the last axis) of each example, not over the batch"),
             (_softmax_np(logits, axis=0) - target) / batch)]


def _softmax_xent_cases():
    def inputs(rng, shape):
        logits = 2 * rng.normal(size=shape)
        if shape[0] == 4:  # probability rows
            t = rng.uniform(0.1, 1.0, size=shape)
            return logits, t / t.sum(axis=1, keepdims=True)
        return logits, np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
    return _loss_cases("softmax_cross_entropy_backward", "dlogits", _softmax_xent, inputs,
                       [(1, 3), (4, 5), (3, 2)], _xent_mistakes)


def _xent_doc003():
    # 003's output layer: M = f @ W_M + b_M with the printed f = (0.608, 0.392) (operands of
    # the coef_f lines) and the initial output weights; target (1, 0);
    # "coef_o1 = 0.706 - 1 = -0.294".
    ex = notes_example("003")
    f = np.array([operand(ex, "coef_f1", "out_f1"), operand(ex, "coef_f2", "out_f2")])
    layer = ex.params[6]
    logits = f64((f @ np64(layer["w"]) + np64(layer["b"]))[None, :])
    target = f64(ex.target)
    printed = [printed_number(ex, "coef_o1", "dlogits", (0, 0)),
               printed_number(ex, "coef_o2", "dlogits", (0, 1))]
    expected = grad_of(_softmax_xent, logits, target)
    return DocCase("003's output layer: M from f = (0.608, 0.392), target (1, 0)",
                   (logits, target), expected, printed,
                   lambda: {"dlogits": _xent_mistakes(np64(logits), np64(target),
                                                      np64(expected))})


def _bce(prob, target):
    per = -(target * jnp.log(prob) + (1 - target) * jnp.log1p(-prob))
    return jnp.mean(jnp.sum(per, axis=1))


def _bce_cases():
    def inputs(rng, shape):
        p = rng.uniform(0.05, 0.95, size=shape)
        t = rng.integers(0, 2, size=shape).astype(np.float64)
        if shape[0] == 3:
            t = rng.uniform(0.0, 1.0, size=shape)
        return p, t

    def extra(p, t, expected):
        batch = p.shape[0]
        return [(mistake("simplified-too-early", "that is the gradient with respect to "
                         "the sigmoid's input, p - y (exercise 8); with respect to the "
                         "probability p it is -y/p + (1 - y)/(1 - p)"), (p - t) / batch),
                (mistake("second-term-sign", "the sign of the second term: the derivative "
                         "of -(1 - y) ln(1 - p) is +(1 - y)/(1 - p)"),
                 (-t / p - (1 - t) / (1 - p)) / batch),
                (mistake("one-term", "only the y = 1 term: the loss also has -(1 - y) "
                         "ln(1 - p), whose derivative is (1 - y)/(1 - p)"),
                 -t / p / batch)]
    return _loss_cases("binary_cross_entropy_backward", "dprob", _bce, inputs,
                       [(1, 3), (3, 4), (4, 1)], extra)


def _sigmoid_bce(logits, target):
    # -[y ln σ(z) + (1 - y) ln(1 - σ(z))] = softplus(z) - y z: the same loss, finite for
    # any z (through σ(z) first, z = 50 rounds σ to 1 and ln(1 - σ) to -inf).
    return jnp.mean(jnp.sum(jax.nn.softplus(logits) - target * logits, axis=1))


UNSTABLE = ("unstable", "not finite where the logits are large: computing p = sigmoid(z) and "
            "then dividing by p or 1 - p fails when p rounds to 1 (z = 50); simplify "
            "∂L/∂z to sigmoid(z) - y first: it needs no division")


def _sigmoid_bce_cases():
    def inputs(rng, shape):
        z = 1.5 * nonzero(rng, shape, 0.1, 1.5)
        t = rng.integers(0, 2, size=shape).astype(np.float64)
        if shape[0] == 5:  # logits as a confident network gives them
            z[0, 0], z[1, 1] = 50.0, -50.0
        return z, t

    def extra(z, t, expected):
        batch = z.shape[0]
        p = sigmoid_np(z)
        return [
            (mistake(MISSING_DERIVATIVE, "missing the sigmoid's derivative: that is "
                     "∂L/∂p; ∂L/∂z multiplies it by ∂p/∂z = p (1 - p), and 004's product "
                     "simplifies to p - y"), (-t / p + (1 - t) / (1 - p)) / batch),
            (mistake("logits-for-probs", "used the logit z where p = sigmoid(z) belongs: "
                     "the gradient is sigmoid(z) - y"), (z - t) / batch),
            (mistake("extra-derivative", "multiplied by σ'(z) once more: ∂L/∂p · ∂p/∂z "
                     "already simplifies to p - y"), (p - t) * p * (1 - p) / batch),
            (mistake(*UNSTABLE), lambda got: not np.all(np.isfinite(got))),
        ]
    return _loss_cases("sigmoid_binary_cross_entropy_backward", "dlogits", _sigmoid_bce, inputs,
                       [(1, 2), (3, 3), (5, 2)], extra)


MODULE = "02_losses.py"

EXERCISES = (
    exercise("half_mse_backward", "half squared error", "001, 002", ("dpred",),
             _half_mse_cases, [("doc002", "document 002's δ_o1 and δ_o2", _half_mse_doc002)]),
    exercise("softmax_cross_entropy_backward", "softmax with cross-entropy: a - y", "003",
             ("dlogits",), _softmax_xent_cases,
             [("doc003", "document 003's coef_o1 and coef_o2", _xent_doc003)]),
    exercise("binary_cross_entropy_backward", "binary cross-entropy", "004", ("dprob",),
             _bce_cases),
    exercise("sigmoid_binary_cross_entropy_backward",
             "a sigmoid with binary cross-entropy: p - y", "004", ("dlogits",),
             _sigmoid_bce_cases),
)
