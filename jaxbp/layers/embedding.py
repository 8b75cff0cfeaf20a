"""The embedding layer: a lookup of one row of a table per integer id, the forward
beside its hand-written backward.

``y[..., :] = w[ids[...], :]`` is a matrix product in disguise: with ``onehot(ids)`` of
shape ``(..., vocab_size)``, ``y = onehot(ids) @ w``, so the weight gradient is
``onehot(ids).T @ dy``: each row of ``dy`` added into the row of ``dw`` its id picked.
An id that occurs twice gets both rows added (a scatter-*add*, never an overwrite).
The input is integer, so there is no input gradient: ``dx = None``, and an embedding can
only be a network's first layer.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _random
from jaxbp._checks import (cast, check_dy, check_float_dtype, check_key, check_params,
                           check_residuals, static_layer_field)
from jaxbp._core import (Layer, as_dtype, check_input_shape, check_positive_int,
                         is_concrete, shape_str)


@static_layer_field
class EmbeddingResiduals(NamedTuple):
    ids: jax.Array  # the input's shape, int32: the ids, out-of-range ones set to vocab_size
    layer: str      # static: the name of the embedding that made them


def embedding(vocab_size: int, features: int, *, dtype=None) -> Layer:
    """A table of ``vocab_size`` learned vectors of ``features`` entries, looked up by id.

    Params ``{"w": (vocab_size, features)}``, initialised ``N(0, 1)`` as
    ``torch.nn.Embedding``. Ids out of ``[0, vocab_size)`` are a ``ValueError`` when
    they are concrete; under ``jit``, where they cannot be checked, their output rows are
    NaN (never a silent row of another id) and they get no gradient.

    Args:
      vocab_size: the number of ids, a positive int.
      features: the length of each vector, a positive int.
      dtype: the parameters' dtype; ``None`` is JAX's default float dtype.

    Returns:
      A :class:`~jaxbp.Layer` mapping integer ids ``(batch, ...)`` to
      ``(batch, ..., features)``; its backward returns ``dx = None``.
    """
    vocab_size = check_positive_int(vocab_size, "vocab_size", "embedding")
    features = check_positive_int(features, "features", "embedding")
    dtype = check_float_dtype(dtype, "dtype", "embedding")
    where = f"embedding({vocab_size}, {features}" + (
        "" if dtype is None else f", dtype='{dtype}'") + ")"
    expected = {"w": (vocab_size, features)}
    axes = {"w": ("vocab_size", "features")}

    def init(key, input_shape):
        check_key(key, where)
        shape = check_input_shape(input_shape, None, where)
        dt = as_dtype(dtype)
        return {"w": _random.normal(key, (vocab_size, features), dt)}, (*shape, features)

    def forward(params, x):
        check_params(params, expected, where, axes)
        x = _check_ids(x, where)
        w = params["w"]
        if is_concrete(x):
            ids = np.asarray(x)
            bad = (ids < 0) | (ids >= vocab_size)
            if bad.any():
                i = np.unravel_index(int(np.argmax(bad)), ids.shape)
                raise ValueError(f"{where}: ids must be in [0, {vocab_size - 1}], got "
                                 f"x[{', '.join(str(int(j)) for j in i)}] = {int(ids[i])}")
        # Out-of-range ids (possible only under jit) go to row vocab_size, which does not
        # exist: the lookup fills NaN and the scatter-add drops it. (A negative id would
        # otherwise wrap around to a real row, as NumPy indexing does.)
        valid = (x >= 0) & (x < vocab_size)
        ids = jnp.where(valid, x.astype(jnp.int32), jnp.asarray(vocab_size, jnp.int32))
        y = jnp.take(w, ids, axis=0, mode="fill", fill_value=jnp.nan)
        return y, EmbeddingResiduals(ids, where)

    def backward(params, residuals, dy):
        """``dw = onehot(ids).T @ dy``, as a scatter-add: ``dw[ids[i]] += dy[i]`` for
        every position ``i`` (ids that repeat accumulate); ``dx = None`` (integer
        input)."""
        check_residuals(residuals, EmbeddingResiduals, where)
        check_params(params, expected, where, axes)
        dy = check_dy(dy, (*residuals.ids.shape, features), where)
        ids = residuals.ids.reshape(-1)
        rows = dy.reshape(-1, dy.shape[-1])
        dw = jnp.zeros(params["w"].shape, dy.dtype).at[ids].add(rows, mode="drop")
        return {"w": cast(dw, params["w"].dtype)}, None

    return Layer(init, forward, backward, name=where)


def _check_ids(x, where):
    """Integer ids with a batch axis; a float array (or another library's) is a
    ``TypeError``."""
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            kind = f"{type(x).__module__.split('.')[0]}.{type(x).__name__}"
            raise TypeError(f"{where}: x must be a JAX or NumPy array of integer ids, got "
                            f"{kind}: convert it first, e.g. with jnp.asarray")
        if not isinstance(x, (list, tuple, numbers.Number)) or isinstance(x, bool):
            raise TypeError(f"{where}: x must be an array of integer ids, got "
                            f"{type(x).__name__}")
        x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{where}: x must be integer ids (an integer dtype), got "
                        f"{x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"{where}: x must have a batch axis (batch, ...), got shape "
                         f"{shape_str(x.shape)}")
    return x
