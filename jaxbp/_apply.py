"""Randomness, mode and state: the extended forward pass, for every layer.

Most layers are pure functions of ``(params, x)``. A few need more: dropout needs a
random key and a mode (training or inference), batch norm keeps running statistics that
are not parameters. Their :class:`~jaxbp.Layer` carries an ``apply`` (and, with state,
an ``init_state``); the functions here call it when present and fall back to the plain
``forward`` otherwise, so one call works for any layer and any nesting::

    net = jaxbp.serial(jaxbp.dense(64), jaxbp.batch_norm(), jaxbp.relu(),
                       jaxbp.dropout(0.1), jaxbp.dense(10))
    params, _ = net.init(key, (784,))
    state = jaxbp.init_state(net, params)          # running statistics, apart from params
    y, residuals, state = jaxbp.apply(net, params, state, x, key=k, train=True)
    grads, dx = net.backward(params, residuals, dy) # unchanged: masks travel in residuals
    y, _, _ = jaxbp.apply(net, params, state, x)    # inference: no key, running stats

Composites (``serial``, ``residual``) split ``key`` so that no two layers share one, and
keep one state entry per sub-layer.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxbp._core import Layer


def _check_layer(layer, where):
    if not isinstance(layer, Layer):
        hint = " (did you forget to call the constructor, e.g. jaxbp.dropout(0.5)?)" \
            if callable(layer) else ""
        raise TypeError(f"{where}: layer must be a jaxbp.Layer, got "
                        f"{type(layer).__name__}{hint}")


def _check_key(key, where):
    if key is None:
        return
    if not isinstance(key, jax.Array) or not (
            jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or
            (key.dtype == "uint32" and key.shape == (2,))):
        raise TypeError(f"{where}: key must be a jax.random.key(...) or None, got "
                        f"{type(key).__name__}"
                        + (f" of dtype {key.dtype}" if hasattr(key, "dtype") else ""))


def apply(layer: Layer, params: Any, state: Any, x, *, key=None, train: bool = False):
    """The forward pass with an explicit key, mode and state, for any layer.

    Args:
      layer: any :class:`~jaxbp.Layer`.
      params: its parameters.
      state: its state from :func:`init_state` (``()`` for a stateless layer), or
        ``None`` in training mode to keep no running statistics.
      x: the input, with a leading batch axis.
      key: a ``jax.random.key`` for the layers that draw random numbers (dropout);
        required by them in training mode, ignored in inference mode.
      train: ``True`` for training mode (dropout drops, batch norm uses and updates the
        batch statistics), ``False`` for inference mode (the default).

    Returns:
      ``(y, residuals, new_state)``; ``layer.backward(params, residuals, dy)`` takes
      the residuals as from ``forward``.
    """
    _check_layer(layer, "apply")
    _check_key(key, f"apply({layer.name})")
    if not isinstance(train, bool):
        raise TypeError(f"apply({layer.name}): train must be True or False, got "
                        f"{train!r}")
    if layer.apply is None:
        y, residuals = layer.forward(params, x)
        return y, residuals, state
    return layer.apply(params, state, x, key=key, train=train)


def init_state(layer: Layer, params: Any) -> Any:
    """The layer's initial non-parameter state (``()`` when it has none).

    For ``batch_norm``: ``{"mean": zeros, "var": ones}`` of shape ``(features,)``.
    Composites return one entry per sub-layer, as their params.
    """
    _check_layer(layer, "init_state")
    if layer.init_state is None:
        return ()
    return layer.init_state(params)


def has_extended_forward(layer: Layer) -> bool:
    """True when ``layer`` (or a layer inside it) uses a key, a mode or state."""
    _check_layer(layer, "has_extended_forward")
    return layer.apply is not None


def bind(layer: Layer, *, key=None, state=None, train: bool = False) -> Layer:
    """A plain layer whose ``forward(params, x)`` is ``apply`` with a fixed key, mode
    and state (the new state is dropped).

    Useful to check or differentiate one draw of a random layer, e.g.
    ``jaxbp.check_gradients(jaxbp.bind(jaxbp.dropout(0.5), key=k, train=True), (), x)``
    checks the backward against the very mask the forward drew.
    """
    _check_layer(layer, "bind")
    _check_key(key, f"bind({layer.name})")

    def forward(params, x):
        y, residuals, _ = apply(layer, params, state, x, key=key, train=train)
        return y, residuals

    return Layer(layer.init, forward, layer.backward,
                 name=f"bind({layer.name}, train={train})")


def split_key(key, n: int):
    """``n`` keys from ``key`` (or ``n`` Nones when ``key`` is None): one per sub-layer."""
    if key is None:
        return [None] * n
    return list(jax.random.split(key, n))
