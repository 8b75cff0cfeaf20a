"""Combinators: ``serial`` (layers in sequence, as ``stax.serial``) and ``residual``
(``x + f(x)``, the fork every residual network needs). Each is itself a layer."""

from __future__ import annotations

from typing import Any, NamedTuple


from jaxbp import _checks, _random
from jaxbp._apply import apply, init_state, split_key
from jaxbp._core import Layer, shape_str


def _check_layers(layers, where):
    if not layers:
        raise ValueError(f"{where}: layers must hold at least one layer, got none")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = " (did you forget to call the constructor, e.g. jaxbp.relu()?)" \
                if callable(layer) else ""
            raise TypeError(f"{where}: layers[{i}] must be a jaxbp.Layer, got "
                            f"{type(layer).__name__}{hint}")


def serial(*layers: Layer) -> Layer:
    """Composes layers in sequence; the result is itself a :class:`~jaxbp.Layer`.

    Params are a tuple with one entry per layer; residuals likewise (and state, for
    :func:`jaxbp.apply`). ``backward`` walks the layers in reverse, handing each one's
    ``dx`` to the layer below as its ``dy``: the chain rule, one layer at a time, with
    the *old* (forward-time) parameters. A first layer with integer input (an
    embedding) returns ``dx = None``, and so does the network.

    Args:
      *layers: the layers, input side first.

    Returns:
      A layer whose ``init`` threads shapes through every layer (keys split, one each).
      When a layer inside uses a key, a mode or state, the result has ``apply`` too: the
      key is split into one key per layer, the state is a tuple with one entry per layer.
    """
    _check_layers(layers, "serial")

    def init(key, input_shape):
        _checks.check_key(key, "serial")
        keys = _random.split(key, len(layers))
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

    extended = any(layer.apply is not None for layer in layers)

    def apply_(params, state, x, *, key=None, train=False):
        _check_params(params)
        states = (None,) * len(layers) if state is None else state
        if len(states) != len(layers):
            raise ValueError(f"serial: state must be a tuple of {len(layers)} entries, one "
                             f"per layer (from jaxbp.init_state), got {len(states)}")
        residuals, new_states = [], []
        for i, (layer, p, s, k) in enumerate(zip(layers, params, states,
                                                 split_key(key, len(layers)))):
            with _checks.inside(f"serial: layers[{i}]"):
                x, r, s = apply(layer, p, s, x, key=k, train=train)
            residuals.append(r)
            new_states.append(s)
        return x, tuple(residuals), None if state is None else tuple(new_states)

    def init_state_(params):
        _check_params(params)
        return tuple(init_state(layer, p) for layer, p in zip(layers, params))

    stateful = any(layer.init_state is not None for layer in layers)
    name = "serial(" + ", ".join(layer.name for layer in layers) + ")"
    return Layer(init, forward, backward, name=name, layers=tuple(layers),
                 apply=apply_ if extended else None,
                 init_state=init_state_ if stateful else None)


@_checks.static_fields("shape", "x_dtype", "layer")
class ResidualResiduals(NamedTuple):
    branch: tuple  # the residuals of the branch serial(*layers)
    shape: tuple   # static: x's shape, that of y, dy and dx
    x_dtype: Any   # static: x's dtype, the dtype of dx
    layer: str     # static: the name of the residual block that made them


def residual(*layers: Layer) -> Layer:
    """A residual block: ``y = x + f(x)`` with ``f = serial(*layers)``.

    Params (and state) are those of ``serial(*layers)``: a tuple, one entry per layer.
    The branch must keep the input's shape.

    Backward, the fork rule: ``x`` feeds two paths (the identity and ``f``), so its
    gradient is the sum of the two paths' gradients, ``dx = dy + f.backward(dy)``;
    ``dparams`` are the branch's.
    """
    _check_layers(layers, "residual")
    branch = serial(*layers)
    where = "residual(" + ", ".join(layer.name for layer in layers) + ")"

    def init(key, input_shape):
        _checks.check_key(key, where)
        params, shape = branch.init(key, input_shape)
        if tuple(shape) != tuple(input_shape):
            raise ValueError(f"{where}: the branch must keep the input's shape, got "
                             f"input_shape {shape_str(input_shape)} and branch output "
                             f"{shape_str(shape)}")
        return params, tuple(shape)

    def _add(x, f):
        if f.shape != x.shape:
            raise ValueError(f"{where}: the branch must keep the input's shape, got x "
                             f"{shape_str(x.shape)} and branch output {shape_str(f.shape)}")
        return x + f

    def forward(params, x):
        f, r = branch.forward(params, x)
        return _add(x, f), ResidualResiduals(r, tuple(x.shape), x.dtype, where)

    def backward(params, residuals, dy):
        """``dx = dy + f.backward(dy)`` (the identity path plus the branch), in ``x``'s
        dtype."""
        _checks.check_residuals(residuals, ResidualResiduals, where)
        dy = _checks.check_dy(dy, residuals.shape, where)
        dparams, dx_branch = branch.backward(params, residuals.branch, dy)
        return dparams, _checks.cast(dy + dx_branch, residuals.x_dtype)

    def apply_(params, state, x, *, key=None, train=False):
        f, r, state = apply(branch, params, state, x, key=key, train=train)
        return _add(x, f), ResidualResiduals(r, tuple(x.shape), x.dtype, where), state

    return Layer(init, forward, backward, name=where, layers=tuple(layers),
                 apply=apply_ if branch.apply is not None else None,
                 init_state=branch.init_state)
