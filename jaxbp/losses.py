"""Losses, each a forward beside its hand-written backward.

Every loss's value is the mean over the batch (leading axis) of the per-example loss;
the per-example loss sums over all other axes. ``backward`` returns the gradient of that
mean, so it carries the ``1 / batch`` factor.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxbp._core import Loss, check_array, is_concrete, shape_str

# Like PyTorch's BCELoss, logs are clamped at -100 so that a probability of exactly 0
# or 1 gives a finite loss, and the gradient's denominator p(1-p) at _BCE_EPS.
_LOG_FLOOR = -100.0
_BCE_EPS = 1e-12


def _check_same_shape(pred, target, where):
    pred = check_array(pred, "pred", where)
    if not hasattr(target, "shape"):
        target = jnp.asarray(target)
    if pred.ndim < 1:
        raise ValueError(f"{where}: pred must have a batch axis, got shape "
                         f"{shape_str(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"{where}: target must have the shape of pred "
                         f"{shape_str(pred.shape)}, got {shape_str(target.shape)}")
    return pred, target.astype(pred.dtype)


def _sum_per_example(v):
    return jnp.sum(v.reshape(v.shape[0], -1), axis=1)


class DiffResiduals(NamedTuple):
    diff: jax.Array  # (batch, ...) the quantity whose mean over the batch is dpred


def half_mse() -> Loss:
    """Half squared error, per example ``1/2 * sum (pred - target)^2`` (the documents').

    ``pred`` and ``target`` have the same shape ``(batch, ...)``.
    """
    where = "half_mse"

    def forward(pred, target):
        pred, target = _check_same_shape(pred, target, where)
        diff = pred - target
        value = jnp.mean(0.5 * _sum_per_example(diff * diff))
        return value, DiffResiduals(diff)

    def backward(residuals):
        """``dpred = (pred - target) / batch``: the 1/2 cancels the square's 2."""
        diff = residuals.diff
        return diff / diff.shape[0]

    return Loss(forward, backward, name=where)


def _labels_to_one_hot(logits, target, where):
    """Integer labels (batch, ...) -> one-hot (batch, ..., classes); range-checked if
    concrete."""
    n_classes = logits.shape[-1]
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"{where}: integer labels must have shape "
                         f"{shape_str(logits.shape[:-1])} (one per example), got "
                         f"{shape_str(target.shape)}")
    if is_concrete(target):
        t = np.asarray(target)
        bad = (t < 0) | (t >= n_classes)
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), t.shape)
            at = ", ".join(str(int(j)) for j in i)
            raise ValueError(f"{where}: labels must be in [0, {n_classes - 1}] for "
                             f"{n_classes} classes, got labels[{at}] = {int(t[i])}")
    return jax.nn.one_hot(target, n_classes, dtype=logits.dtype)


def _log_softmax_and_softmax(logits):
    """``(log_softmax(z), softmax(z))`` over the last axis, sharing one ``exp``.

    Shifting by the row maximum keeps every ``exp`` in [0, 1], so both are finite for
    any finite logits (log-probabilities of about -2e4 at logits of +-1e4).
    """
    shifted = logits - lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    e = jnp.exp(shifted)
    total = jnp.sum(e, axis=-1, keepdims=True)
    return shifted - jnp.log(total), e / total


class SoftmaxXentResiduals(NamedTuple):
    probs: jax.Array          # (batch, ..., classes) softmax of the logits
    target: jax.Array         # (batch, ..., classes) one-hot or probability targets
    target_sum: Any           # (batch, ..., 1) sum of each target row; None for labels
    poison: Any               # (batch, ..., 1) 0, or NaN for an out-of-range label; or None


def softmax_cross_entropy() -> Loss:
    """Softmax then cross-entropy, from logits (document 003).

    ``pred``: logits ``(batch, classes)``, or ``(batch, ..., classes)`` (a class per
    position, e.g. per time step). ``target``: one-hot or probabilities of the same
    shape, or integer labels ``(batch, ...)`` (``pred``'s shape without the classes).
    The value is the mean over every position (batch and the other leading axes), as
    ``torch.nn.CrossEntropyLoss``. Integer labels are range-checked when they are
    concrete; under ``jit`` an out-of-range label makes that position's loss and
    gradient NaN (never a silent zero).
    """
    where = "softmax_cross_entropy"

    def forward(pred, target):
        pred = check_array(pred, "pred", where)
        if pred.ndim < 2:
            raise ValueError(f"{where}: pred must be logits of shape (batch, classes), got "
                             f"{shape_str(pred.shape)} (or (batch, ..., classes), a class "
                             f"per position)")
        if not hasattr(target, "dtype"):
            target = jnp.asarray(target)
        log_probs, probs = _log_softmax_and_softmax(pred)
        if jnp.issubdtype(target.dtype, jnp.integer):
            valid = (target >= 0) & (target < pred.shape[-1])
            one_hot = _labels_to_one_hot(pred, target, where)
            # Out-of-range labels (only possible under jit, where they cannot be checked)
            # poison their example's loss and gradient with NaN instead of a silent 0.
            poison = jnp.where(valid, jnp.zeros((), pred.dtype),
                               jnp.asarray(jnp.nan, pred.dtype))[..., None]
            per_example = poison[..., 0] - jnp.sum(one_hot * log_probs, axis=-1)
            residuals = SoftmaxXentResiduals(probs, one_hot, None, poison)
            return jnp.mean(per_example), residuals
        if target.shape == pred.shape[:-1]:
            raise TypeError(f"{where}: integer labels must have an integer dtype, got "
                            f"{target.dtype} (target of shape {shape_str(target.shape)}; "
                            f"one-hot targets have shape {shape_str(pred.shape)})")
        if target.shape != pred.shape:
            raise ValueError(f"{where}: target must be one-hot of shape "
                             f"{shape_str(pred.shape)} or integer labels of shape "
                             f"{shape_str(pred.shape[:-1])}, got {shape_str(target.shape)}")
        target = target.astype(pred.dtype)
        per_example = -jnp.sum(target * log_probs, axis=-1)
        residuals = SoftmaxXentResiduals(probs, target,
                                         jnp.sum(target, axis=-1, keepdims=True), None)
        return jnp.mean(per_example), residuals

    def backward(residuals):
        """``dlogits = (softmax(z) * sum(y) - y) / batch``: document 003's ``a_i - y_i``
        when the target sums to 1 (one-hot, or integer labels). With more leading axes,
        ``batch`` is the number of positions averaged over (``batch * ...``)."""
        probs, target, target_sum, poison = residuals
        scaled = probs if target_sum is None else probs * target_sum
        grad = scaled - target
        if poison is not None:
            grad = grad + poison
        return grad / math.prod(probs.shape[:-1])

    return Loss(forward, backward, name=where)


class BCEResiduals(NamedTuple):
    prob: jax.Array    # (batch, ...) predicted probabilities
    target: jax.Array  # (batch, ...) targets in [0, 1]


def binary_cross_entropy() -> Loss:
    """Binary cross-entropy on probabilities (document 004), natural log.

    Per entry ``-[y log p + (1 - y) log(1 - p)]``, summed per example. ``pred`` are
    probabilities in [0, 1]; logs are clamped at -100 so that p = 0 or 1 stays finite.
    Prefer :func:`sigmoid_binary_cross_entropy` on logits: it is exact where this clamps.
    """
    where = "binary_cross_entropy"

    def forward(pred, target):
        pred, target = _check_same_shape(pred, target, where)
        log_p = jnp.maximum(jnp.log(pred), _LOG_FLOOR)
        log_1mp = jnp.maximum(jnp.log1p(-pred), _LOG_FLOOR)
        per_entry = -(target * log_p + (1 - target) * log_1mp)
        return jnp.mean(_sum_per_example(per_entry)), BCEResiduals(pred, target)

    def backward(residuals):
        """``dp = (-y / p + (1 - y) / (1 - p)) / batch = (p - y) / (p (1 - p)) / batch``,
        the denominator clamped at 1e-12."""
        p, y = residuals
        denom = jnp.maximum(p * (1 - p), jnp.asarray(_BCE_EPS, p.dtype))
        return (p - y) / denom / p.shape[0]

    return Loss(forward, backward, name=where)


class SigmoidBCEResiduals(NamedTuple):
    logits: jax.Array
    target: jax.Array


def sigmoid_binary_cross_entropy() -> Loss:
    """A sigmoid then binary cross-entropy, from logits, stable for any finite logit.

    Per entry ``max(z, 0) - y z + log(1 + exp(-|z|))``, summed per example.
    """
    where = "sigmoid_binary_cross_entropy"

    def forward(pred, target):
        pred, target = _check_same_shape(pred, target, where)
        per_entry = jnp.maximum(pred, 0) - target * pred + jnp.log1p(jnp.exp(-jnp.abs(pred)))
        return jnp.mean(_sum_per_example(per_entry)), SigmoidBCEResiduals(pred, target)

    def backward(residuals):
        """``dz = (sigmoid(z) - y) / batch``: BCE's derivative times the sigmoid's,
        ``(p - y) / (p (1 - p)) * p (1 - p)``, simplifies (document 004)."""
        z, y = residuals
        return (jax.nn.sigmoid(z) - y) / z.shape[0]

    return Loss(forward, backward, name=where)
