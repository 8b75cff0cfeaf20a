"""Normalization layers: ``layer_norm`` (over the last axis) and ``batch_norm`` (over
every axis but the last), each forward beside its hand-written backward.

Both compute ``xhat = (x - mean) / sqrt(var + eps)`` and ``y = scale * xhat + bias``;
they differ in which axes the statistics are taken over. Layer norm's statistics belong
to one example (one position), so training and inference are the same computation.
Batch norm's belong to the batch: in training mode it normalizes with the batch's own
mean and (biased) variance and keeps running averages of them in its *state*; in
inference mode it normalizes with those running averages (see :class:`jaxbp.Layer` for
the extended contract, ``jaxbp.apply`` and ``jaxbp.init_state``).

The backward passes use the compact form of the normalization's gradient (CS231n's
batch norm assignment, Karpathy's "Backprop Ninja"): with ``g = dy * scale`` and means
over the normalized axes,

    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),    rstd = 1 / sqrt(var + eps)

the chain rule through the mean and the variance folded into two reductions.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp._core import Layer, as_dtype, check_array, check_input_shape, shape_str


class NormResiduals(NamedTuple):
    xhat: jax.Array  # x's shape: the normalized input
    rstd: jax.Array  # 1 / sqrt(var + eps), keepdims over the normalized axes


class BatchNormInferenceResiduals(NamedTuple):
    """Inference mode: the statistics were constants (the running ones), so the
    backward has no path through them."""

    xhat: jax.Array  # x's shape: the input normalized by the running statistics
    rstd: jax.Array  # (1, ..., 1, features): 1 / sqrt(running_var + eps)


def _check_eps(eps, where):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0 \
            or not math.isfinite(eps):
        raise ValueError(f"{where}: eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _features_params(input_shape, where, dtype):
    shape = check_input_shape(input_shape, None, where)
    if not shape:
        raise ValueError(f"{where}: input_shape must have at least 1 entry (the features "
                         f"axis, without the batch axis), got ()")
    dt = as_dtype(dtype)
    features = shape[-1]
    return {"scale": jnp.ones((features,), dt), "bias": jnp.zeros((features,), dt)}, shape


def _check_x(x, params, where, min_rank, layout):
    x = check_array(x, "x", where)
    if x.ndim < min_rank:
        raise ValueError(f"{where}: x must have rank at least {min_rank} {layout}, got "
                         f"shape {shape_str(x.shape)} (rank {x.ndim})")
    for name in ("scale", "bias"):
        if name not in params:
            raise ValueError(f"{where}: params must be a dict with 'scale' and 'bias', got "
                             f"keys {sorted(params) if isinstance(params, dict) else params!r}")
        if params[name].shape != x.shape[-1:]:
            raise ValueError(f"{where}: params['{name}'] must have shape "
                             f"{shape_str(x.shape[-1:])} (x's last axis), got "
                             f"{shape_str(params[name].shape)}")
    return x


def _per_feature(v, ndim):
    """``(features,)`` as ``(1, ..., 1, features)`` for an explicit broadcast against a
    rank-``ndim`` array (implicit rank promotion is an error in the tests)."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


# ------------------------------------------------------------------------- layer norm


def layer_norm(eps: float = 1e-5, *, dtype=None) -> Layer:
    """Layer normalization over the last axis (Ba et al. 2016), any rank.

    ``y = scale * (x - mean) / sqrt(var + eps) + bias`` with the mean and the biased
    variance of each example's (each position's) last axis, as ``torch.nn.LayerNorm``.

    Args:
      eps: added to the variance, a positive number.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, ..., features)`` to the same shape, with
      params ``{"scale": (features,), "bias": (features,)}`` (ones, zeros).
    """
    eps = _check_eps(eps, "layer_norm")
    where = "layer_norm()"

    def init(key, input_shape):
        del key
        return _features_params(input_shape, where, dtype)

    def forward(params, x):
        x = _check_x(x, params, where, 2, "(batch, ..., features)")
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        var = jnp.mean(centered * centered, axis=-1, keepdims=True)
        rstd = jax.lax.rsqrt(var + eps)
        xhat = centered * rstd
        y = xhat * _per_feature(params["scale"], x.ndim) + _per_feature(params["bias"],
                                                                        x.ndim)
        return y, NormResiduals(xhat, rstd)

    def backward(params, residuals, dy):
        """Means over the last axis (``F`` features), sums over every other axis:

        ``dbias = sum dy``, ``dscale = sum dy * xhat``;
        ``g = dy * scale``,
        ``dx = rstd * (g - mean_F(g) - xhat * mean_F(g * xhat))``.

        Why: ``xhat = (x - mu) * rstd`` with ``mu`` and ``var`` functions of the whole
        row, so ``dx_i = rstd * (g_i - (1/F) sum_j g_j - xhat_i (1/F) sum_j g_j xhat_j)``
        (the second term is the path through ``mu``, the third through ``var``).
        """
        xhat, rstd = residuals
        lead = tuple(range(dy.ndim - 1))
        dparams = {"scale": jnp.sum(dy * xhat, axis=lead), "bias": jnp.sum(dy, axis=lead)}
        g = dy * _per_feature(params["scale"], dy.ndim)
        dx = rstd * (g - jnp.mean(g, axis=-1, keepdims=True)
                     - xhat * jnp.mean(g * xhat, axis=-1, keepdims=True))
        return dparams, dx

    return Layer(init, forward, backward, name="layer_norm")


# ------------------------------------------------------------------------- batch norm


def batch_norm(momentum: float = 0.9, eps: float = 1e-5, *, dtype=None) -> Layer:
    """Batch normalization (Ioffe and Szegedy 2015) over every axis but the last.

    ``(batch, features)`` and ``(batch, height, width, channels)`` alike: the statistics
    of each feature (channel) are taken over the batch and every spatial position.

    * ``forward(params, x)``: the batch's statistics (training-mode arithmetic); no
      running statistics are read or updated.
    * ``jaxbp.apply(layer, params, state, x, train=True)``: the same normalization, and
      the new state ``momentum * old + (1 - momentum) * batch`` for the mean and for the
      variance. The batch is normalized with its *biased* variance (divided by ``n``),
      the running variance is updated with the *unbiased* one (divided by ``n - 1``),
      as PyTorch does (``torch.nn.BatchNorm2d(momentum=1 - momentum)`` is the same
      layer: PyTorch's momentum is the weight of the new batch). ``state=None`` keeps
      no running statistics.
    * ``jaxbp.apply(layer, params, state, x, train=False)``: inference mode, normalizes
      with the running statistics from ``state`` (required).

    Args:
      momentum: the running averages' decay, in [0, 1].
      eps: added to the variance, a positive number.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, ..., features)`` to the same shape; params
      ``{"scale": (features,), "bias": (features,)}`` (ones, zeros); state from
      ``jaxbp.init_state``: ``{"mean": zeros (features,), "var": ones (features,)}``.
    """
    eps = _check_eps(eps, "batch_norm")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) \
            or not 0 <= momentum <= 1:
        raise ValueError(f"batch_norm: momentum must be a number in [0, 1], got "
                         f"{momentum!r}")
    momentum = float(momentum)
    where = "batch_norm()"
    layout = "(batch, ..., features)"

    def init(key, input_shape):
        del key
        return _features_params(input_shape, where, dtype)

    def init_state(params):
        scale = params["scale"]
        return {"mean": jnp.zeros(scale.shape, scale.dtype),
                "var": jnp.ones(scale.shape, scale.dtype)}

    def _batch_forward(params, x):
        """Normalizes with the batch statistics: ``(y, residuals, mean, var)``, the
        mean and biased variance as ``(features,)``."""
        x = _check_x(x, params, where, 2, layout)
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = jnp.mean(centered * centered, axis=axes, keepdims=True)
        rstd = jax.lax.rsqrt(var + eps)
        xhat = centered * rstd
        y = xhat * _per_feature(params["scale"], x.ndim) + _per_feature(params["bias"],
                                                                        x.ndim)
        return y, NormResiduals(xhat, rstd), mean.reshape(-1), var.reshape(-1)

    def forward(params, x):
        y, residuals, _, _ = _batch_forward(params, x)
        return y, residuals

    def _check_state(state, features, mode):
        if state is None:
            raise ValueError(f"{where}: state must hold the running statistics "
                             f"{{'mean', 'var'}} in {mode}, got None (make it with "
                             f"jaxbp.init_state(layer, params))")
        if not isinstance(state, dict) or set(state) != {"mean", "var"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{where}: state must be a dict {{'mean', 'var'}} (from "
                             f"jaxbp.init_state), got {got}")
        for name in ("mean", "var"):
            if getattr(state[name], "shape", None) != (features,):
                raise ValueError(f"{where}: state['{name}'] must have shape "
                                 f"{shape_str((features,))}, got "
                                 f"{shape_str(jnp.shape(state[name]))}")

    def apply(params, state, x, *, key=None, train=False):
        del key  # batch norm draws nothing
        if train:
            y, residuals, mean, var = _batch_forward(params, x)
            if state is None:
                return y, residuals, None
            _check_state(state, x.shape[-1], "training mode")
            n = math.prod(x.shape[:-1])
            if n < 2:
                raise ValueError(f"{where}: training mode needs more than one value per "
                                 f"feature to update the running variance (unbiased, "
                                 f"divided by n - 1), got x of shape {shape_str(x.shape)}")
            unbiased = var * (n / (n - 1))
            old_mean, old_var = state["mean"], state["var"]
            new_state = {
                "mean": (momentum * old_mean + (1 - momentum) * mean).astype(old_mean.dtype),
                "var": (momentum * old_var + (1 - momentum) * unbiased).astype(old_var.dtype),
            }
            return y, residuals, new_state
        x = _check_x(x, params, where, 2, layout)
        _check_state(state, x.shape[-1], "inference mode (train=False)")
        rstd = _per_feature(jax.lax.rsqrt(state["var"].astype(x.dtype) + eps), x.ndim)
        xhat = (x - _per_feature(state["mean"].astype(x.dtype), x.ndim)) * rstd
        y = xhat * _per_feature(params["scale"], x.ndim) + _per_feature(params["bias"],
                                                                        x.ndim)
        return y, BatchNormInferenceResiduals(xhat, rstd), state

    def backward(params, residuals, dy):
        """Sums over every axis but the last (``n`` values per feature):

        ``dbias = sum dy``, ``dscale = sum dy * xhat``.

        Training mode (batch statistics), with ``g = dy * scale``:
        ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``
        ``   = scale * rstd * (dy - dbias / n - xhat * dscale / n)``:
        the same two reductions give the parameter gradients and the paths through the
        batch mean and variance.

        Inference mode (running statistics, constants): ``dx = dy * scale * rstd``.
        """
        xhat, rstd = residuals
        axes = tuple(range(dy.ndim - 1))
        dbias = jnp.sum(dy, axis=axes)
        dscale = jnp.sum(dy * xhat, axis=axes)
        scale = _per_feature(params["scale"], dy.ndim)
        if isinstance(residuals, BatchNormInferenceResiduals):
            dx = dy * scale * rstd
        else:
            n = math.prod(dy.shape[:-1])
            dx = scale * rstd * (dy - _per_feature(dbias, dy.ndim) / n
                                 - xhat * _per_feature(dscale, dy.ndim) / n)
        return {"scale": dscale, "bias": dbias}, dx

    return Layer(init, forward, backward, name="batch_norm", apply=apply,
                 init_state=init_state)
