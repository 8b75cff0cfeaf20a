"""Random and constant parameter values without a compilation per shape.

``jax.random.normal(key, shape)`` compiles a new XLA program for every new shape, and so
does every eager ``jnp`` operation (``w / jnp.sqrt(n)``, ``jnp.zeros(n)``): initialising
a network of a few layers cost 0.5-1.3 s per parameter shape on a 2-core machine, most
of ``jaxbp demo``'s and ``jaxbp check``'s waiting. Here every draw is made of fixed-size
blocks from one compiled program (one per distribution, for all shapes and dtypes),
and the slicing, reshaping, scaling and casting is done in NumPy, then put on the device
once. Under ``jit``/``vmap`` (a traced key) the same blocks are drawn and the same
arithmetic is done in ``jnp``, so ``jax.jit(layer.init)`` gives the same parameters.

Streams: a draw is identified by its key and a ``stream`` number, so one key gives
several independent parameters (``stream=0, 1, ...``) without ``jax.random.split``
(another compilation per count).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

BLOCK = 1 << 14          # values per compiled draw
_STREAM_BITS = 20        # block index = stream << 20 | block (1 << 20 blocks: 17e9 values)


@functools.partial(jax.jit, static_argnames="kind")
def _block(key, index, kind):
    k = jax.random.fold_in(key, index)
    if kind == "normal":
        return jax.random.normal(k, (BLOCK,), jnp.float32)
    return jax.random.uniform(k, (BLOCK,), jnp.float32)


def flat(draw, key, shape, *args):
    """``draw(key, shape, *args)`` (a ``jax.random`` function taking the shape second)
    drawn flat and reshaped: the same numbers (JAX's random bits depend on the flat
    index), but XLA on CPU compiles a multi-axis draw many times slower (a
    ``(32, 8, 8, 16)`` bernoulli mask: 3 s, flat 0.15 s)."""
    return draw(key, (math.prod(shape),), *args).reshape(shape)


def _concrete(key) -> bool:
    return not isinstance(key, jax.core.Tracer)


def _draw(key, shape, kind, stream):
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    indices = [np.uint32((stream << _STREAM_BITS) | i) for i in range(max(1, -(-n // BLOCK)))]
    if _concrete(key):
        flat = np.concatenate([np.asarray(_block(key, i, kind)) for i in indices])
        return flat[:n].reshape(shape), np
    flat = jnp.concatenate([_block(key, i, kind) for i in indices])
    return flat[:n].reshape(shape), jnp


def _finish(values, xp, dtype, scale, shift):
    dt = jnp.dtype(dtype)
    out = values.astype(dt) * xp.asarray(scale, dt)
    if shift:
        out = out + xp.asarray(shift, dt)
    return jax.device_put(out) if xp is np else out


def normal(key, shape, dtype, *, scale: float = 1.0, stream: int = 0):
    """``scale * N(0, 1)`` of ``shape`` and ``dtype``, drawn from ``key``'s ``stream``."""
    values, xp = _draw(key, shape, "normal", stream)
    return _finish(values, xp, dtype, scale, 0.0)


def uniform(key, shape, dtype, low: float, high: float, *, stream: int = 0):
    """Uniform in ``[low, high)`` of ``shape`` and ``dtype``, from ``key``'s ``stream``."""
    values, xp = _draw(key, shape, "uniform", stream)
    return _finish(values, xp, dtype, high - low, low)


def full(shape, value, dtype):
    """A constant array, made in NumPy and put on the device (no compilation)."""
    return jax.device_put(np.full(tuple(shape), value, dtype=jnp.dtype(dtype)))


def zeros(shape, dtype):
    return full(shape, 0, dtype)


def ones(shape, dtype):
    return full(shape, 1, dtype)


def split(key, n: int):
    """``n`` keys from ``key`` by ``fold_in`` (one compilation for every ``n``)."""
    return [jax.random.fold_in(key, np.uint32(i)) for i in range(n)]
