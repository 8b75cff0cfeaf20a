"""``serial``: layers composed in sequence, itself a layer (as ``stax.serial``)."""

from __future__ import annotations

import jax

from jaxbp import _checks
from jaxbp._core import Layer


def serial(*layers: Layer) -> Layer:
    """Composes layers in sequence; the result is itself a :class:`~jaxbp.Layer`.

    Params are a tuple with one entry per layer; residuals likewise. ``backward`` walks
    the layers in reverse, handing each one's ``dx`` to the layer below as its ``dy``:
    the chain rule, one layer at a time, with the *old* (forward-time) parameters.

    Args:
      *layers: the layers, input side first.

    Returns:
      A layer whose ``init`` threads shapes through every layer (keys split, one each).
    """
    if not layers:
        raise ValueError("serial: layers must hold at least one layer, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = " (did you forget to call the constructor, e.g. jaxbp.relu()?)" \
                if callable(layer) else ""
            raise TypeError(f"serial: layers[{i}] must be a jaxbp.Layer, got "
                            f"{type(layer).__name__}{hint}")

    def init(key, input_shape):
        keys = jax.random.split(key, len(layers))
        params, shape = [], input_shape
        for layer, k in zip(layers, keys):
            p, shape = layer.init(k, shape)
            params.append(p)
        return tuple(params), shape

    def _check_params(params):
        if not isinstance(params, (tuple, list)) or len(params) != len(layers):
            got = (f"{len(params)}" if isinstance(params, (tuple, list))
                   else _checks.describe(params))
            raise ValueError(f"serial: params must be a tuple of {len(layers)} entries, one "
                             f"per layer, got {got}")

    def forward(params, x):
        _check_params(params)
        residuals = []
        for i, (layer, p) in enumerate(zip(layers, params)):
            with _checks.inside(f"serial: layers[{i}]"):
                x, r = layer.forward(p, x)
            residuals.append(r)
        return x, tuple(residuals)

    def backward(params, residuals, dy):
        """``dparams[i], dy = layers[i].backward(params[i], residuals[i], dy)`` for
        ``i`` from the last layer down."""
        _check_params(params)
        if type(residuals) not in (tuple, list) or len(residuals) != len(layers):
            got = (f"{len(residuals)}" if type(residuals) in (tuple, list)
                   else _checks.describe(residuals))
            raise ValueError(f"serial: residuals must be the tuple of {len(layers)} "
                             f"entries, one per layer, that serial's forward returned, "
                             f"got {got}")
        grads = [None] * len(layers)
        for i in reversed(range(len(layers))):
            # Each layer checks its own residuals, params and dy; for i below the last,
            # dy is the dx that layers[i + 1]'s backward returned.
            with _checks.inside(f"serial: layers[{i}]"):
                grads[i], dy = layers[i].backward(params[i], residuals[i], dy)
        return tuple(grads), dy

    name = "serial(" + ", ".join(layer.name for layer in layers) + ")"
    return Layer(init, forward, backward, name=name, layers=tuple(layers))
