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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbp import _random
from jaxbp._checks import (cast, check_dy, check_float_dtype, check_key, check_params,
                           check_residuals, compute_dtype, static_fields)
from jaxbp._core import Layer, as_dtype, check_array, check_input_shape, shape_str


@static_fields("x_dtype", "layer")
class LayerNormResiduals(NamedTuple):
    xhat: jax.Array  # x's shape: the normalized input (in the dtype computed in)
    rstd: jax.Array  # (..., 1): 1 / sqrt(var + eps), keepdims over the last axis
    x_dtype: Any     # static: x's dtype, the dtype of dx
    layer: str       # static: the name of the layer that made them


@static_fields("x_dtype", "layer")
class BatchNormResiduals(NamedTuple):
    """Training-mode arithmetic (the batch's statistics): the backward goes through
    the mean and the variance too."""

    xhat: jax.Array  # x's shape: the input normalized by the batch statistics
    rstd: jax.Array  # (1, ..., 1, features): 1 / sqrt(batch_var + eps)
    x_dtype: Any     # static: x's dtype, the dtype of dx
    layer: str       # static: the name of the layer that made them


@static_fields("x_dtype", "layer")
class BatchNormInferenceResiduals(NamedTuple):
    """Inference mode: the statistics were constants (the running ones), so the
    backward has no path through them."""

    xhat: jax.Array  # x's shape: the input normalized by the running statistics
    rstd: jax.Array  # (1, ..., 1, features): 1 / sqrt(running_var + eps)
    x_dtype: Any     # static: x's dtype, the dtype of dx
    layer: str       # static: the name of the layer that made them


def _check_eps(eps, where):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0 \
            or not math.isfinite(eps):
        raise ValueError(f"{where}: eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _features_params(key, input_shape, where, dtype):
    check_key(key, where)
    shape = check_input_shape(input_shape, None, where)
    if not shape:
        raise ValueError(f"{where}: input_shape must have at least 1 entry (the features "
                         f"axis, without the batch axis), got ()")
    dt = as_dtype(dtype)
    features = shape[-1]
    return {"scale": _random.ones((features,), dt), "bias": _random.zeros((features,), dt)}, shape


_AXES = {"scale": ("features",), "bias": ("features",)}


def _check_params(params, where, features=None):
    """``{"scale": (features,), "bias": (features,)}``; ``features=None`` leaves the
    length open (forward reads it from x)."""
    check_params(params, {"scale": (features,), "bias": (features,)}, where, _AXES)


def _check_x(x, params, where, min_rank, layout):
    """Checks ``params``, then ``x`` against them; returns ``x`` and the dtype to
    compute in (``x``'s promoted with the params')."""
    _check_params(params, where)
    x = check_array(x, "x", where)
    if x.ndim < min_rank:
        raise ValueError(f"{where}: x must have rank at least {min_rank} {layout}, got "
                         f"shape {shape_str(x.shape)} (rank {x.ndim})")
    scale = params["scale"]
    if scale.shape != x.shape[-1:]:
        raise ValueError(f"{where}: x must have {scale.shape[0]} features (params['scale'] "
                         f"has shape {shape_str(scale.shape)}), got x of shape "
                         f"{shape_str(x.shape)}")
    _check_params(params, where, x.shape[-1])  # bias as long as scale
    return x, compute_dtype(x, params)


def _check_backward(params, residuals, dy, where):
    """Checks ``params`` and ``dy`` against the residuals; returns ``dy``, ``scale``,
    ``xhat`` and ``rstd`` in the dtype to compute in (the forward's promoted with dy's)."""
    xhat, rstd = residuals.xhat, residuals.rstd
    _check_params(params, where, xhat.shape[-1])
    dy = check_dy(dy, xhat.shape, where)
    ct = jnp.result_type(compute_dtype(xhat, params), dy)
    return cast(dy, ct), cast(params["scale"], ct), cast(xhat, ct), cast(rstd, ct)


def _name(kind, defaults, values, dtype):
    """The name that rebuilds the layer, arguments at their default left out:
    ``batch_norm()``, ``batch_norm(momentum=0.8)``, ``layer_norm(eps=0.001)``."""
    args = [f"{k}={v!r}" for k, v in values.items() if v != defaults[k]]
    if dtype is not None:
        args.append(f"dtype='{dtype}'")
    return f"{kind}({', '.join(args)})"


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
    dtype = check_float_dtype(dtype, "dtype", "layer_norm")
    where = _name("layer_norm", {"eps": 1e-5}, {"eps": eps}, dtype)

    def init(key, input_shape):
        return _features_params(key, input_shape, where, dtype)

    def forward(params, x):
        # The dtype rule (jaxbp._checks): x's dtype promoted with the params'.
        x, ct = _check_x(x, params, where, 2, "(batch, ..., features)")
        x_dtype, x = x.dtype, cast(x, ct)
        scale, bias = cast(params["scale"], ct), cast(params["bias"], ct)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        centered = x - mean
        var = jnp.mean(centered * centered, axis=-1, keepdims=True)
        rstd = jax.lax.rsqrt(var + eps)
        xhat = centered * rstd
        y = xhat * _per_feature(scale, x.ndim) + _per_feature(bias, x.ndim)
        return y, LayerNormResiduals(xhat, rstd, x_dtype, where)

    def backward(params, residuals, dy):
        """Means over the last axis (``F`` features), sums over every other axis:

        ``dbias = sum dy``, ``dscale = sum dy * xhat``;
        ``g = dy * scale``,
        ``dx = rstd * (g - mean_F(g) - xhat * mean_F(g * xhat))``.

        Why: ``xhat = (x - mu) * rstd`` with ``mu`` and ``var`` functions of the whole
        row, so ``dx_i = rstd * (g_i - (1/F) sum_j g_j - xhat_i (1/F) sum_j g_j xhat_j)``
        (the second term is the path through ``mu``, the third through ``var``).
        """
        check_residuals(residuals, LayerNormResiduals, where)
        dy, scale, xhat, rstd = _check_backward(params, residuals, dy, where)
        lead = tuple(range(dy.ndim - 1))
        dparams = {"scale": cast(jnp.sum(dy * xhat, axis=lead), params["scale"].dtype),
                   "bias": cast(jnp.sum(dy, axis=lead), params["bias"].dtype)}
        g = dy * _per_feature(scale, dy.ndim)
        dx = rstd * (g - jnp.mean(g, axis=-1, keepdims=True)
                     - xhat * jnp.mean(g * xhat, axis=-1, keepdims=True))
        return dparams, cast(dx, residuals.x_dtype)

    return Layer(init, forward, backward, name=where)


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
    dtype = check_float_dtype(dtype, "dtype", "batch_norm")
    where = _name("batch_norm", {"momentum": 0.9, "eps": 1e-5},
                  {"momentum": momentum, "eps": eps}, dtype)
    layout = "(batch, ..., features)"

    def init(key, input_shape):
        return _features_params(key, input_shape, where, dtype)

    def init_state(params):
        _check_params(params, where)
        scale = params["scale"]
        return {"mean": _random.zeros(scale.shape, scale.dtype),
                "var": _random.ones(scale.shape, scale.dtype)}

    def _batch_forward(params, x):
        """Normalizes with the batch statistics: ``(y, residuals, mean, var)``, the
        mean and biased variance as ``(features,)``."""
        x, ct = _check_x(x, params, where, 2, layout)
        x_dtype, x = x.dtype, cast(x, ct)
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = jnp.mean(centered * centered, axis=axes, keepdims=True)
        rstd = jax.lax.rsqrt(var + eps)
        xhat = centered * rstd
        y = xhat * _per_feature(cast(params["scale"], ct), x.ndim) + _per_feature(
            cast(params["bias"], ct), x.ndim)
        return (y, BatchNormResiduals(xhat, rstd, x_dtype, where), mean.reshape(-1),
                var.reshape(-1))

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
        x, ct = _check_x(x, params, where, 2, layout)
        _check_state(state, x.shape[-1], "inference mode (train=False)")
        x_dtype, x = x.dtype, cast(x, ct)
        # jnp.asarray: a state of NumPy arrays (a user's, or one loaded by hand) must not
        # do the arithmetic in NumPy, where bfloat16 + eps is float32
        rstd = _per_feature(jax.lax.rsqrt(jnp.asarray(state["var"], ct) + eps), x.ndim)
        xhat = (x - _per_feature(jnp.asarray(state["mean"], ct), x.ndim)) * rstd
        y = xhat * _per_feature(cast(params["scale"], ct), x.ndim) + _per_feature(
            cast(params["bias"], ct), x.ndim)
        return y, BatchNormInferenceResiduals(xhat, rstd, x_dtype, where), state

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
        inference = isinstance(residuals, BatchNormInferenceResiduals)
        check_residuals(residuals, BatchNormInferenceResiduals if inference
                        else BatchNormResiduals, where)
        dy, scale, xhat, rstd = _check_backward(params, residuals, dy, where)
        axes = tuple(range(dy.ndim - 1))
        dbias = jnp.sum(dy, axis=axes)
        dscale = jnp.sum(dy * xhat, axis=axes)
        scale = _per_feature(scale, dy.ndim)
        if inference:
            dx = dy * scale * rstd
        else:
            n = math.prod(dy.shape[:-1])
            dx = scale * rstd * (dy - _per_feature(dbias, dy.ndim) / n
                                 - xhat * _per_feature(dscale, dy.ndim) / n)
        dparams = {"scale": cast(dscale, params["scale"].dtype),
                   "bias": cast(dbias, params["bias"].dtype)}
        return dparams, cast(dx, residuals.x_dtype)

    return Layer(init, forward, backward, name=where, apply=apply,
                 init_state=init_state)
