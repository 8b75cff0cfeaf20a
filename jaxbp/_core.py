"""The two contracts everything in jaxbp is built on, and the checks that guard them.

A :class:`Layer` is an immutable bundle of three pure functions over a parameter pytree
(``init``, ``forward``, ``backward``); a :class:`Loss` is a pair (``forward``,
``backward``). Both are ``NamedTuple``s, as optax's ``GradientTransformation`` is, so
they can be unpacked, compared and passed through ``jax.jit`` as static closures.

The validation helpers raise ``ValueError``/``TypeError`` whose messages name the
argument and give the expected and the received value, shapes written as Python tuples.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Shape = tuple[int, ...]
Params = Any  # a pytree of arrays; () for a layer without parameters


class Layer(NamedTuple):
    """A layer: pure functions over an explicit parameter pytree.

    Attributes:
      init: ``init(key, input_shape) -> (params, output_shape)``; shapes exclude the
        batch axis.
      forward: ``forward(params, x) -> (y, residuals)``; ``x`` has a leading batch axis.
      backward: ``backward(params, residuals, dy) -> (dparams, dx)``; ``dparams`` has
        the tree structure of ``params``. Written by hand, without JAX's autodiff.
      name: a short name used in reports and error messages.
      layers: the sub-layers of a composite layer (``serial``), else ``()``.
      apply: for a layer that uses randomness, a mode or state (``dropout``,
        ``batch_norm`` and any composite holding one), the extended forward
        ``apply(params, state, x, *, key=None, train=False) -> (y, residuals, state)``;
        ``None`` for every other layer. Call it through :func:`jaxbp.apply`, which
        works for every layer.
      init_state: for a layer with state (``batch_norm``), ``init_state(params) ->
        state``, the initial non-parameter state; ``None`` otherwise. Call it through
        :func:`jaxbp.init_state`.

    **Randomness, mode and state** (the extended contract, all optional):

    * ``forward(params, x)`` is the plain form every layer has: no key and no state.
      Dropout is then the identity, and batch norm normalizes with the batch's own
      statistics (training-mode arithmetic) and updates nothing.
    * ``jaxbp.apply(layer, params, state, x, key=key, train=True)`` is training mode:
      dropout draws its mask from ``key`` (required), batch norm normalizes with the
      batch statistics and returns the updated running statistics in the new
      ``state``. ``train=False`` is inference mode: dropout is the identity, batch norm
      uses the running statistics from ``state``.
    * State is a pytree apart from ``params`` (the optimizer never sees it), made by
      ``jaxbp.init_state(layer, params)``; composites keep one entry per sub-layer, as
      their params do; a stateless layer's state is ``()``.
    * ``backward(params, residuals, dy)`` never changes: what it needs (a dropout mask,
      the statistics a batch norm used) travels in the residuals.
    * A layer whose input is integer (``embedding``) returns ``dx = None``.
    """

    def __repr__(self) -> str:  # the name rebuilds the layer; the functions say nothing
        return f"<jaxbp.Layer {self.name}>"

    init: Callable[[jax.Array, Shape], tuple[Params, Shape]]
    forward: Callable[[Params, jax.Array], tuple[jax.Array, Any]]
    backward: Callable[[Params, Any, jax.Array], tuple[Params, jax.Array]]
    name: str = "layer"
    layers: tuple = ()
    apply: Callable | None = None
    init_state: Callable | None = None


class Loss(NamedTuple):
    """A loss: ``forward(pred, target) -> (value, residuals)``, ``backward(residuals) -> dpred``.

    The value is the mean over the batch (leading axis) of the per-example loss (for
    ``softmax_cross_entropy`` on ``(batch, ..., classes)`` logits, the mean over every
    position), and ``backward`` returns the gradient of that mean with respect to
    ``pred``.
    """

    def __repr__(self) -> str:
        return f"<jaxbp.Loss {self.name}>"

    forward: Callable[[jax.Array, jax.Array], tuple[jax.Array, Any]]
    backward: Callable[[Any], jax.Array]
    name: str = "loss"


# --------------------------------------------------------------------------- checks


def shape_str(shape) -> str:
    """A shape as a Python tuple, e.g. ``(2, 3)`` and ``(4,)``."""
    return str(tuple(int(d) for d in shape))


def check_positive_int(value, argument: str, where: str) -> int:
    """Returns ``value`` as an int, or raises if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {argument} must be a positive int, got {value!r} "
                        f"of type {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{where}: {argument} must be a positive int, got {value!r}")
    return int(value)


def check_int_tuple(value, n: int, argument: str, where: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` positive ints, as a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * n
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise ValueError(f"{where}: {argument} must be a positive int or a sequence of "
                         f"{n} positive ints, got {value!r}")
    return tuple(check_positive_int(v, argument, where) for v in value)


def check_input_shape(input_shape, rank: int | None, where: str) -> Shape:
    """Validates ``init``'s ``input_shape`` (no batch axis) and returns it as a tuple."""
    if isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{where}: input_shape must be a tuple of ints (without the batch "
                        f"axis), got {input_shape!r} of type {type(input_shape).__name__}")
    shape = tuple(check_positive_int(d, "input_shape entries", where) for d in input_shape)
    if rank is not None and len(shape) != rank:
        raise ValueError(f"{where}: input_shape must have {rank} entries (without the "
                         f"batch axis), got {shape_str(shape)} with {len(shape)}")
    return shape


def to_device(a) -> jax.Array:
    """``a`` as a JAX array; a NumPy array is put on the device without compiling.

    ``jnp.asarray(numpy_array)`` compiles a small XLA program for every new shape (it
    stages the value through ``lax.stage``): ``jax.device_put`` does not.
    """
    if isinstance(a, (np.ndarray, np.generic)):
        return jax.device_put(a)
    return jnp.asarray(a)


# XLA options for programs that run once or twice on small arrays (gradient checks,
# the grader's references, a learner's function in the grading worker): compiling fast
# matters there, running fast does not. XLA's cheapest LLVM optimization level and its
# elemental emitters instead of the MLIR fusion emitters compile such programs about
# twice as fast on CPU (the grader's references: 16.5 s of compilation down to 8.1 s);
# results agree with the default compilation to a few units in the last place
# (tests/test_compile_options.py). Generating the machine code in one piece instead of
# splitting it across threads takes a fifth less time again for such small programs
# (and no threads away from the other core's work). Training steps keep XLA's defaults:
# they run thousands of times, and run slower compiled so.
_RUN_ONCE = ({"xla_backend_optimization_level": 0},
             {"xla_cpu_use_fusion_emitters": False},
             {"xla_cpu_parallel_codegen_split_count": 1})


@functools.cache
def run_once_options() -> dict:
    """The ``compiler_options`` for a program that runs once (see ``_RUN_ONCE``): each
    option this jaxlib knows (an older one may not have every option)."""
    options = {}
    for extra in _RUN_ONCE:
        trial = {**options, **extra}
        try:
            jax.jit(lambda v: v + 1, compiler_options=trial).lower(
                np.float32(0)).compile()
        except Exception:  # noqa: BLE001 - an option this XLA does not have
            continue
        options = trial
    return options


def jit_once(f, **kwargs):
    """``jax.jit(f, **kwargs)`` compiled with :func:`run_once_options`."""
    return jax.jit(f, compiler_options=run_once_options(), **kwargs)


def check_array(x, argument: str, where: str) -> jax.Array:
    """Raises ``TypeError`` unless ``x`` is an array of a floating dtype.

    JAX and NumPy arrays pass; lists and Python numbers are converted. An array of
    another library (a ``torch.Tensor``) is refused with the conversion to use: its
    dtype is not a NumPy dtype, and converting it silently would hide a device copy.
    """
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        if isinstance(x, (list, tuple, numbers.Number)) and not isinstance(x, bool):
            x = jnp.asarray(x)
        elif hasattr(x, "shape") and hasattr(x, "dtype"):
            kind = f"{type(x).__module__.split('.')[0]}.{type(x).__name__}"
            how = ("jnp.asarray(x.detach().cpu().numpy())" if kind.startswith("torch.")
                   else "jnp.asarray(x)")
            raise TypeError(f"{where}: {argument} must be a JAX or NumPy array, got "
                            f"{kind}: convert it first, e.g. with {how}")
        else:
            raise TypeError(f"{where}: {argument} must be an array, got "
                            f"{type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{where}: {argument} must have a floating dtype, got {x.dtype}")
    return x


def check_rank(x, rank: int, argument: str, where: str, layout: str) -> None:
    """Raises ``ValueError`` unless ``x.ndim == rank``; ``layout`` names the axes."""
    if x.ndim != rank:
        raise ValueError(f"{where}: {argument} must have rank {rank} {layout}, got shape "
                         f"{shape_str(x.shape)} (rank {x.ndim})")


def is_concrete(x) -> bool:
    """True when ``x``'s values are known now (not a tracer under ``jit``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def default_float_dtype():
    """float64 when x64 is enabled, else float32: the dtype of ``jnp.zeros(())``."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def as_dtype(dtype):
    return default_float_dtype() if dtype is None else jnp.dtype(dtype)
