"""The checks every layer and loss runs on its arguments, from static shapes only.

A layer's ``forward`` checks its ``params`` against its own configuration; its
``backward`` checks that ``residuals`` came from a forward of the same kind (and, for a
layer with a configuration, of the same configuration), ``params`` again, and that
``dy`` has the shape of the forward's output. Every check reads types and static
shapes, never values: under ``jax.jit`` they run once, at trace time, and add nothing
to the compiled step.

**The dtype rule.** A layer computes in the dtype of its input promoted with its
parameters' dtypes (``jnp.result_type(x, *params)``, as ``x @ w`` would); ``backward``
returns every gradient in the dtype of what it is the gradient of (``dw`` in ``w``'s
dtype, ``dx`` in ``x``'s), as JAX's autodiff does. A loss computes in ``pred``'s dtype
(the target is data, cast to it) and returns ``dpred`` in ``pred``'s dtype.

**Residuals.** Each layer kind has its own residual ``NamedTuple`` type; those of a
layer with a configuration (dense, convolutions, pools, normalizations, dropout, the
sequence layers, ``residual``) carry, in a field named ``layer``, the name of the layer
that made them (``conv2d(8, 3, stride=1, padding='SAME')``). A layer that keeps no
array of its input (dropout, ``position_embedding``, ``residual``) or keeps it only in
the dtype it computed in (the normalizations) also carries the input's shape and/or
dtype, for ``dy``'s check and ``dx``'s dtype. Those fields are static pytree data, not
array leaves, so residuals pass through ``jit``, ``vmap``, ``custom_vjp`` and ``scan``
unchanged.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp._core import Layer, shape_str


# ------------------------------------------------------------------ constructor args


def check_layer(layer, argument: str, where: str) -> Layer:
    """Raises ``TypeError`` unless ``layer`` is a :class:`~jaxbp.Layer`; a constructor
    passed uncalled (``jaxbp.relu`` for ``jaxbp.relu()``) is named as such."""
    if isinstance(layer, Layer):
        return layer
    hint = ""
    if callable(layer):
        name = getattr(layer, "__name__", None)
        example = f"jaxbp.{name}()" if name and getattr(
            layer, "__module__", "").startswith("jaxbp") else "jaxbp.relu()"
        hint = f" (did you forget to call the constructor, e.g. {example}?)"
    raise TypeError(f"{where}: {argument} must be a jaxbp.Layer, got "
                    f"{type(layer).__name__}{hint}")


def check_bool(value, argument: str, where: str) -> bool:
    """Raises ``TypeError`` unless ``value`` is ``True`` or ``False`` (not ``"no"``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {argument} must be True or False, got {value!r} of "
                        f"type {type(value).__name__}")
    return bool(value)


def check_float_dtype(dtype, argument: str, where: str):
    """``None`` (JAX's default float) or a floating dtype, as a NumPy dtype."""
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: {argument} must be a floating dtype such as "
                        f"jnp.float32, or None, got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{where}: {argument} must be a floating dtype such as "
                        f"jnp.float32, or None for JAX's default, got {dt}")
    return dt


def check_key(key, where: str):
    """Raises ``TypeError`` unless ``key`` is a ``jax.random.key`` (or a legacy uint32
    key array of shape ``(2,)``)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and hasattr(key, "shape"):
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if dtype == jnp.uint32 and tuple(key.shape) == (2,):
            return key
        got = f"an array of shape {shape_str(key.shape)} and dtype {dtype}"
    else:
        got = f"{type(key).__name__} {key!r}"
    raise TypeError(f"{where}: key must be a single jax.random.key, e.g. "
                    f"jax.random.key(0), got {got}")


# ------------------------------------------------------------------------ params


def _expected_str(shape, names) -> str:
    """A shape pattern, ``None`` entries written as the axis name: ``(in, 2)``."""
    parts = [n if d is None else str(d) for d, n in zip(shape, names)]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def describe(value) -> str:
    """A short description of what was received, for error messages."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {shape_str(value.shape)}"
    if isinstance(value, Mapping):
        return f"a dict with the keys {sorted(map(str, value))}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} entries" if value else repr(value)
    return f"{type(value).__name__} {value!r}" if isinstance(value, numbers.Number) \
        else type(value).__name__


def _want_str(expected: dict, axes: dict) -> str:
    """The expected params as text, nested dicts included: ``{'w': (in, 2), 'b': (2,)}``."""
    return "{" + ", ".join(
        f"{k!r}: " + (_want_str(s, axes[k]) if isinstance(s, dict)
                      else _expected_str(s, axes[k]))
        for k, s in expected.items()) + "}"


def check_params(params, expected: dict, where: str, axes: dict, *,
                 path: str = "params") -> None:
    """Checks a layer's parameter dict against its configuration.

    Args:
      params: the params given to ``forward`` or ``backward``.
      expected: key -> shape, with ``None`` for a size the configuration leaves open
        (the input's width), e.g. ``{"w": (None, 2), "b": (2,)}``; a dict instead of a
        shape for a nested dict of params (attention's ``{"qkv": {"w": ..., "b": ...}}``).
      where: the layer's name, which starts the message.
      axes: key -> axis names, used for the open sizes, e.g. ``{"w": ("in", "out")}``
        (nested as ``expected`` is).
      path: how the message names ``params`` (``params['qkv']`` for a nested dict).

    Raises:
      TypeError: ``params`` is not a dict, or a leaf is not a floating array.
      ValueError: a key is missing or unexpected, or a leaf has the wrong shape.
    """
    want = _want_str(expected, axes)
    if not isinstance(params, Mapping):
        raise TypeError(f"{where}: {path} must be a dict {want}, got {describe(params)}")
    missing = [k for k in expected if k not in params]
    extra = [k for k in params if k not in expected]
    if missing or extra:
        what = [f"{path}[{k!r}] is missing" for k in missing]
        what += [f"{path}[{k!r}] is not one of its parameters" for k in extra]
        raise ValueError(f"{where}: {path} must be {want}, got the keys "
                         f"{sorted(map(str, params))}: " + "; ".join(what))
    for k, shape in expected.items():
        leaf = params[k]
        if isinstance(shape, dict):
            check_params(leaf, shape, where, axes[k], path=f"{path}[{k!r}]")
            continue
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(f"{where}: {path}[{k!r}] must be an array of shape "
                            f"{_expected_str(shape, axes[k])}, got {describe(leaf)}")
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(f"{where}: {path}[{k!r}] must have a floating dtype, got "
                            f"{leaf.dtype}")
        if len(leaf.shape) != len(shape) or any(
                d is not None and d != g for d, g in zip(shape, leaf.shape)):
            raise ValueError(f"{where}: {path}[{k!r}] must have shape "
                             f"{_expected_str(shape, axes[k])}, got "
                             f"{shape_str(leaf.shape)}")


def check_no_params(params, where: str) -> None:
    """A layer without parameters takes ``()`` (any pytree without arrays passes)."""
    if jax.tree.leaves(params):
        raise ValueError(f"{where}: params must be () ({where} has no parameters), got "
                         f"{describe(params)}")


# --------------------------------------------------------------------- backward


def check_dy(dy, shape, where: str):
    """Raises unless ``dy`` is a floating array of ``shape``, the forward output's."""
    if not hasattr(dy, "shape") or not hasattr(dy, "dtype"):
        raise TypeError(f"{where}: dy must be an array of shape {shape_str(shape)} (the "
                        f"forward output's), got {describe(dy)}")
    if not jnp.issubdtype(dy.dtype, jnp.floating):
        raise TypeError(f"{where}: dy must have a floating dtype, got {dy.dtype}")
    if tuple(dy.shape) != tuple(shape):
        raise ValueError(f"{where}: dy must have the shape of the forward's output "
                         f"{shape_str(shape)}, got {shape_str(dy.shape)}")
    return dy


def check_residuals(residuals, kind: type, where: str) -> None:
    """Raises unless ``residuals`` are a ``kind`` made by a layer named ``where``.

    Residual types without a ``layer`` field are checked by type alone (their layers
    have no configuration).
    """
    if not isinstance(residuals, kind):
        made = getattr(residuals, "layer", None)
        source = f" (from {made}'s forward)" if isinstance(made, str) else ""
        raise TypeError(f"{where}: residuals must be the {kind.__name__} that "
                        f"{where}'s forward returned, got {type(residuals).__name__}"
                        f"{source}")
    made = getattr(residuals, "layer", where)
    if made != where:
        raise ValueError(f"{where}: residuals come from {made}'s forward, not from "
                         f"{where}'s: pass each layer the residuals its own forward "
                         f"returned")


def static_fields(*names: str):
    """A class decorator: registers a residual ``NamedTuple`` whose fields ``names`` (its
    last fields, in order) are static pytree data.

    The array fields stay leaves (so ``jit``, ``vmap`` and ``custom_vjp`` see them);
    the static ones (the name of the layer that made them, and for a layer that keeps
    no array of its input, the input's shape and dtype) travel in the tree structure,
    so they must be hashable (ints, tuples, strings, NumPy dtypes).
    """
    def register(cls):
        assert tuple(cls._fields[len(cls._fields) - len(names):]) == names, cls._fields
        fields = cls._fields[:len(cls._fields) - len(names)]

        def flatten_with_keys(r):
            return ([(jax.tree_util.GetAttrKey(f), getattr(r, f)) for f in fields],
                    tuple(getattr(r, n) for n in names))

        def flatten(r):
            return [getattr(r, f) for f in fields], tuple(getattr(r, n) for n in names)

        def unflatten(static, children):
            return cls(*children, *static)

        jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten,
                                                flatten_func=flatten)
        return cls

    return register


def static_layer_field(cls):
    """Registers a residual ``NamedTuple`` whose ``layer`` field (its last) is static
    pytree data: the name of the layer that made them (see :func:`static_fields`)."""
    return static_fields("layer")(cls)


# ------------------------------------------------------------------------ dtypes


def compute_dtype(x, params):
    """The dtype a layer computes in: ``x``'s promoted with every parameter's."""
    return jnp.result_type(x, *jax.tree.leaves(params))


def cast(a, dtype):
    """``a`` in ``dtype``; no operation at all when it already is."""
    return a if a.dtype == dtype else a.astype(dtype)


def cast_like(grads, primals):
    """Each gradient in the dtype of its primal (a pytree of the same structure)."""
    return jax.tree.map(lambda g, p: cast(g, p.dtype), grads, primals)


@contextlib.contextmanager
def inside(prefix: str):
    """Prefixes a ``ValueError``/``TypeError`` raised inside with ``prefix``, so that an
    error deep in a network says where it happened (``serial: layers[2]: ...``).

    Only those two exact types are re-raised (with the original traceback): any other
    exception, a JAX error included, passes through untouched.
    """
    try:
        yield
    except (ValueError, TypeError) as e:
        if type(e) not in (ValueError, TypeError) or len(e.args) != 1:
            raise
        raise type(e)(f"{prefix}: {e.args[0]}").with_traceback(e.__traceback__) from None
