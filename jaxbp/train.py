"""Training with the hand-written backward passes: jit-compiled steps, whole epochs in
one compiled call, evaluation, a small ``fit`` loop, data parallelism, saving.

The gradient comes from the layers' own ``backward`` functions (``grads="manual"``,
through :func:`jaxbp.value_and_grad`) or, for comparison, from ``jax.grad`` of the
forward pass (``grads="autodiff"``). Both feed the same optax optimizer, so the two
runs differ only in who computed the gradient::

    step = jaxbp.train.make_step(net, jaxbp.softmax_cross_entropy(), optax.adam(1e-3))
    params, opt_state, loss = step(params, opt_state, x, y)

A network with dropout or batch norm (``net.apply is not None``: it needs a key, a mode
or state) trains with ``with_state=True``: the step takes and returns the state (batch
norm's running statistics, apart from the params: the optimizer never sees it) and a
fresh key for dropout; the fused epoch and :func:`fit` draw a new key for every step::

    step = jaxbp.train.make_step(net, loss, optimizer, with_state=True)
    state = jaxbp.init_state(net, params)
    params, state, opt_state, loss = step(params, state, opt_state, x, y, key)

Data parallelism uses JAX's own sharding: pass ``mesh=`` (a
:class:`jax.sharding.Mesh`, e.g. from :func:`data_mesh`) and the batch is split along
the mesh while the parameters and optimizer state are replicated. The compiled step is
the same program; XLA inserts the all-reduce that sums the per-device gradients (the
batch sums in ``dw = x.T @ dy`` and ``db = sum dy`` become a local sum plus an
all-reduce). Several hosts work the same way after ``jax.distributed.initialize()``:
the mesh then spans every host's devices and each process passes its own slice of the
batch (see the README, "Data parallelism").
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxbp._apply import apply, init_state
from jaxbp._core import Layer, Loss, jit_once, shape_str, to_device
from jaxbp.grad import value_and_grad

GRADS = ("manual", "autodiff")

__all__ = ["FitResult", "data_mesh", "evaluate", "fit", "gradient_fn", "load",
           "make_epoch", "make_step", "minibatch_indices", "save", "step_keys"]


# --------------------------------------------------------------------------- gradients


def gradient_fn(net: Layer, loss: Loss, grads: str = "manual", *,
                with_state: bool = False) -> Callable:
    """``f(params, x, y) -> (loss_value, grads)`` from the hand-written backward or autodiff.

    Args:
      net: the network, a :class:`~jaxbp.Layer`.
      loss: a :class:`~jaxbp.Loss`.
      grads: ``"manual"``: the layers' hand-written ``backward`` passes
        (:func:`jaxbp.value_and_grad`, no JAX autodiff); ``"autodiff"``:
        ``jax.value_and_grad`` of ``loss(net.forward(params, x), y)``.
      with_state: the training-mode forward :func:`jaxbp.apply` (dropout drops, batch
        norm updates its running statistics): ``f(params, state, x, y, key) ->
        ((loss_value, new_state), grads)``, as ``jax.value_and_grad(..., has_aux=True)``.

    Returns:
      A pure, jit-compatible function; ``grads`` has the tree structure of ``params``.
    """
    _check_net_and_loss(net, loss, "gradient_fn")
    if with_state:
        if grads == "manual":
            return value_and_grad(net, loss, with_state=True)
        if grads == "autodiff":
            def objective_state(params, state, x, y, key=None):
                pred, _, new_state = apply(net, params, state, x, key=key, train=True)
                return loss.forward(pred, y)[0], new_state

            return jax.value_and_grad(objective_state, has_aux=True)
        raise ValueError(f"gradient_fn: grads must be one of {GRADS}, got {grads!r}")
    if grads == "manual":
        return value_and_grad(net, loss)
    if grads == "autodiff":
        def objective(params, x, y):
            return loss.forward(net.forward(params, x)[0], y)[0]

        return jax.value_and_grad(objective)
    raise ValueError(f"gradient_fn: grads must be one of {GRADS}, got {grads!r}")


def _check_net_and_loss(net, loss, where):
    if not isinstance(net, Layer):
        raise TypeError(f"{where}: net must be a jaxbp.Layer, got {type(net).__name__}")
    if not isinstance(loss, Loss):
        raise TypeError(f"{where}: loss must be a jaxbp.Loss, got {type(loss).__name__}")


def _check_optimizer(optimizer, where):
    if not (callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))):
        raise TypeError(f"{where}: optimizer must be an optax.GradientTransformation "
                        f"(with init and update), got {type(optimizer).__name__}")


def _check_dataset(x, y, batch_size, where) -> int:
    """The number of examples, after checking ``y`` pairs with ``x`` and fills a batch."""
    n = x.shape[0]
    if y.shape[:1] != (n,):
        raise ValueError(f"{where}: y must have {n} rows, one per row of x "
                         f"{shape_str(x.shape)}, got {shape_str(y.shape)}")
    if n < batch_size:
        raise ValueError(f"{where}: x must hold at least batch_size = {batch_size} "
                         f"examples, got shape {shape_str(x.shape)}")
    return n


def _check_labels(net, loss, params, state, x, y, where, argument="y"):
    """Integer labels of ``softmax_cross_entropy`` index the classes (the network
    output's last axis). Out of range, an example's one-hot row is all zeros and the
    loss silently leaves it out, so they are checked here, on the host, where their
    values are known (never inside a compiled step). Other losses and floating targets
    pass unchecked."""
    if not loss.name.startswith("softmax_cross_entropy") or isinstance(y, jax.core.Tracer):
        return
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.size == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if net.apply is None:
        out = jax.eval_shape(lambda p, xb: net.forward(p, xb)[0], params, x[:1])
    else:
        out = jax.eval_shape(lambda p, s, xb: apply(net, p, s, xb, train=False)[0],
                             params, state, x[:1])
    classes = out.shape[-1]
    if lo < 0 or hi >= classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{where}: integer labels {argument} must be in [0, {classes}) "
                         f"(the network has {classes} outputs), got {bad}")


def _check_grads(grads, where):
    if grads not in GRADS:
        raise ValueError(f"{where}: grads must be one of {GRADS}, got {grads!r}")


def _extended_names(net) -> list[str]:
    """The names of the layers inside ``net`` that use a key, a mode or state."""
    if net.apply is None:
        return []
    inner = [name for layer in net.layers for name in _extended_names(layer)]
    return inner or [net.name]


def _check_with_state(net, with_state, where):
    if not isinstance(with_state, bool):
        raise TypeError(f"{where}: with_state must be True or False, got {with_state!r}")
    if net.apply is not None and not with_state:
        names = ", ".join(dict.fromkeys(_extended_names(net)))
        raise TypeError(f"{where}: net holds layers that need a key, a mode or state "
                        f"({names}); pass with_state=True and call step(params, state, "
                        f"opt_state, x, y, key) with state = jaxbp.init_state(net, params), "
                        f"so that dropout drops and batch norm keeps its running "
                        f"statistics")


def _update_fn(net, loss, optimizer, grads, where, with_state=False):
    """The un-jitted step: gradient, optimizer update, new params (and new state)."""
    import optax

    _check_net_and_loss(net, loss, where)
    _check_optimizer(optimizer, where)
    _check_grads(grads, where)
    _check_with_state(net, with_state, where)
    if with_state:
        vgs = gradient_fn(net, loss, grads, with_state=True)

        def update_state(params, state, opt_state, x, y, key):
            (value, state), g = vgs(params, state, x, y, key)
            updates, opt_state = optimizer.update(g, opt_state, params)
            return optax.apply_updates(params, updates), state, opt_state, value

        return update_state

    vg = gradient_fn(net, loss, grads)

    def update(params, opt_state, x, y):
        value, g = vg(params, x, y)
        updates, opt_state = optimizer.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return update


def _guard(fn, max_traces, where):
    """Wraps ``fn`` in ``chex.assert_max_traces`` (before ``jit``) when asked."""
    if max_traces is None:
        return fn
    import chex

    if isinstance(max_traces, bool) or not isinstance(max_traces, numbers.Integral) \
            or max_traces < 1:
        raise ValueError(f"{where}: max_traces must be None or a positive int, got "
                         f"{max_traces!r}")
    return chex.assert_max_traces(fn, n=int(max_traces))


# --------------------------------------------------------------------------- sharding


def data_mesh(devices=None, axis_name: str = "data") -> Mesh:
    """A one-axis :class:`~jax.sharding.Mesh` over ``devices`` for data parallelism.

    Args:
      devices: the devices; ``None`` means ``jax.devices()``: every device of every
        process once ``jax.distributed.initialize()`` has run.
      axis_name: the mesh axis the batch is split along.

    Returns:
      ``Mesh(devices, (axis_name,))``.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh: devices must hold at least one device, got none")
    return Mesh(np.array(devices, dtype=object), (axis_name,))


class _Shardings(NamedTuple):
    batch: NamedSharding       # leading axis split over every mesh axis
    replicated: NamedSharding  # the whole array on every device
    n_devices: int


def _shardings(mesh, where) -> _Shardings | None:
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{where}: mesh must be a jax.sharding.Mesh (see "
                        f"jaxbp.train.data_mesh), got {type(mesh).__name__}")
    return _Shardings(NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names))),
                      NamedSharding(mesh, PartitionSpec()), int(mesh.devices.size))


def _place(tree, sharding):
    """Puts every leaf on ``sharding`` (replicated) unless it is already there.

    On several processes each one holds the whole value (the same on all of them, e.g.
    parameters made from the same key) and contributes it as its local data.
    """
    def put(a):
        if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(sharding, a.ndim):
            return a
        if sharding.is_fully_addressable:
            return jax.device_put(a, sharding)
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(a)),
                                            impl=jax.random.key_impl(a))
        return jax.make_array_from_process_local_data(sharding, np.asarray(a))

    return jax.tree.map(put, tree)


def _place_batch(a, shardings, where, argument):
    """A batch as a global array split along the mesh.

    On several processes each passes its own rows (``make_array_from_process_local_data``
    assembles the global batch); on one process this is a plain ``device_put``.
    """
    if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(shardings.batch, a.ndim):
        return a
    a = np.asarray(a)
    local_devices = shardings.n_devices // max(jax.process_count(), 1)
    if a.ndim == 0 or a.shape[0] % max(local_devices, 1):
        raise ValueError(f"{where}: {argument} must have a batch axis divisible by the "
                         f"{local_devices} local devices of the mesh, got shape "
                         f"{shape_str(a.shape)}")
    return jax.make_array_from_process_local_data(shardings.batch, a)


# --------------------------------------------------------------------------- steps


def make_step(net: Layer, loss: Loss, optimizer, grads: str = "manual", *,
              mesh: Mesh | None = None, donate: bool = True,
              max_traces: int | None = None, with_state: bool = False) -> Callable:
    """A jit-compiled training step.

    Args:
      net: the network.
      loss: the loss.
      optimizer: an optax ``GradientTransformation`` (``optax.sgd``, ``optax.adam``...).
      grads: ``"manual"`` (the hand-written backward passes) or ``"autodiff"``
        (``jax.grad``), see :func:`gradient_fn`.
      mesh: a :class:`~jax.sharding.Mesh` for data parallelism: ``x`` and ``y`` are
        split along the batch axis over all its devices, ``params`` and ``opt_state``
        are replicated. The batch must divide evenly among the devices.
      donate: donate the ``params`` and ``opt_state`` buffers to the step, so that XLA
        updates them in place. The arrays passed in are then invalid after the call:
        use only the returned ones.
      max_traces: raise ``AssertionError`` (``chex.assert_max_traces``) if the step is
        traced more than this many times: a guard against silent recompilation. As in
        chex, traces are counted per place in the code where the step is made, so
        making a new step at the same place in a loop counts too
        (``chex.clear_trace_counter()`` resets).
      with_state: for a network with dropout or batch norm (``net.apply`` is not
        ``None``; such a network without it is a ``TypeError``): the step runs the
        training-mode forward (:func:`jaxbp.apply` with ``train=True``) and threads the
        state and a key, see Returns.

    Returns:
      ``step(params, opt_state, x, y) -> (params, opt_state, loss)``: ``x`` is
      ``(batch, *input_shape)``, ``y`` the matching targets, ``loss`` a scalar (the
      mean over the batch, computed before the update). With ``donate=True`` (the
      default) the step **donates** ``params`` and ``opt_state``.

      With ``with_state=True``: ``step(params, state, opt_state, x, y, key) ->
      (params, state, opt_state, loss)``, ``state`` from :func:`jaxbp.init_state`
      (replicated on a mesh, donated with the params) and ``key`` a
      ``jax.random.key`` for this step's dropout masks: pass a new one every step.
    """
    where = "make_step"
    update = _guard(_update_fn(net, loss, optimizer, grads, where, with_state), max_traces,
                    where)
    sh = _shardings(mesh, where)
    if with_state:
        donate_argnums = (0, 1, 2) if donate else ()
        if sh is None:
            return jax.jit(update, donate_argnums=donate_argnums)
        r = sh.replicated
        compiled = jax.jit(update, donate_argnums=donate_argnums,
                           in_shardings=(r, r, r, sh.batch, sh.batch, r),
                           out_shardings=(r, r, r, r))

        def step_state(params, state, opt_state, x, y, key):
            return compiled(_place(params, r), _place(state, r), _place(opt_state, r),
                            _place_batch(x, sh, where, "x"), _place_batch(y, sh, where, "y"),
                            _place(key, r))

        step_state.jitted = compiled
        return step_state
    donate_argnums = (0, 1) if donate else ()
    if sh is None:
        return jax.jit(update, donate_argnums=donate_argnums)

    compiled = jax.jit(update, donate_argnums=donate_argnums,
                       in_shardings=(sh.replicated, sh.replicated, sh.batch, sh.batch),
                       out_shardings=(sh.replicated, sh.replicated, sh.replicated))

    def step(params, opt_state, x, y):
        return compiled(_place(params, sh.replicated), _place(opt_state, sh.replicated),
                        _place_batch(x, sh, where, "x"), _place_batch(y, sh, where, "y"))

    step.jitted = compiled
    return step


def make_epoch(net: Layer, loss: Loss, optimizer, grads: str = "manual", *,
               batch_size: int, steps: int | None = None, mesh: Mesh | None = None,
               donate: bool = True, max_traces: int | None = None,
               with_state: bool = False) -> Callable:
    """Many training steps in one compiled call: ``lax.scan`` over shuffled minibatches.

    Each pass over the data draws a fresh permutation (``jax.random.permutation`` with
    its own key, split from ``key``); minibatches are consecutive slices of it, so
    within a pass no example repeats. The rows left over when ``batch_size`` does not
    divide ``len(x)`` are skipped in that pass (a new permutation next time).

    Args:
      net, loss, optimizer, grads, donate, max_traces, with_state: as in
        :func:`make_step`.
      batch_size: examples per step.
      steps: steps per call; ``None`` means one epoch, ``len(x) // batch_size``. More
        steps than one epoch holds take further passes, each newly shuffled.
      mesh: as in :func:`make_step`; the dataset is replicated on every device and
        each device takes its share of every minibatch, so only gradients travel.

    Returns:
      ``epoch(params, opt_state, key, x, y) -> (params, opt_state, losses)``, with
      ``x`` ``(n, *input_shape)``, ``y`` ``(n, ...)``, ``key`` a
      ``jax.random.key`` (use a new one for every call) and ``losses`` ``(steps,)``,
      each step's minibatch loss. Donates ``params`` and ``opt_state`` when ``donate``.

      With ``with_state=True``: ``epoch(params, state, opt_state, key, x, y) ->
      (params, state, opt_state, losses)``; ``key`` is split into the shuffling key and
      one dropout key per step (:func:`step_keys`), so no step reuses a key.
    """
    where = "make_epoch"
    batch_size = _positive(batch_size, "batch_size", where)
    if steps is not None:
        steps = _positive(steps, "steps", where)
    step = _update_fn(net, loss, optimizer, grads, where, with_state)
    sh = _shardings(mesh, where)
    if sh is not None and batch_size % sh.n_devices:
        raise ValueError(f"{where}: batch_size must be divisible by the mesh's "
                         f"{sh.n_devices} devices, got {batch_size}")
    if with_state:
        return _make_epoch_state(step, batch_size, steps, sh, donate, max_traces, where)

    def epoch(params, opt_state, key, x, y):
        n = _check_dataset(x, y, batch_size, where)
        batches = minibatch_indices(key, n, batch_size, steps)

        def body(carry, idx):
            p, s = carry
            xb, yb = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
            if sh is not None:
                xb = lax.with_sharding_constraint(xb, sh.batch)
                yb = lax.with_sharding_constraint(yb, sh.batch)
            p, s, value = step(p, s, xb, yb)
            return (p, s), value

        (params, opt_state), losses = lax.scan(body, (params, opt_state), batches)
        return params, opt_state, losses

    epoch = _guard(epoch, max_traces, where)
    donate_argnums = (0, 1) if donate else ()
    if sh is None:
        return jax.jit(epoch, donate_argnums=donate_argnums)
    r = sh.replicated
    compiled = jax.jit(epoch, donate_argnums=donate_argnums, in_shardings=(r, r, r, r, r),
                       out_shardings=(r, r, r))

    def run(params, opt_state, key, x, y):
        return compiled(_place(params, r), _place(opt_state, r), _place(key, r),
                        _place(x, r), _place(y, r))

    run.jitted = compiled
    return run


def _make_epoch_state(step, batch_size, steps, sh, donate, max_traces, where):
    """make_epoch for ``with_state=True``: the state rides in the scan's carry, one
    dropout key per step in its inputs."""

    def epoch(params, state, opt_state, key, x, y):
        n = _check_dataset(x, y, batch_size, where)
        n_steps = n // batch_size if steps is None else steps
        shuffle_key, keys = step_keys(key, n_steps)
        batches = minibatch_indices(shuffle_key, n, batch_size, steps)

        def body(carry, inputs):
            p, st, s = carry
            idx, k = inputs
            xb, yb = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
            if sh is not None:
                xb = lax.with_sharding_constraint(xb, sh.batch)
                yb = lax.with_sharding_constraint(yb, sh.batch)
            p, st, s, value = step(p, st, s, xb, yb, k)
            return (p, st, s), value

        (params, state, opt_state), losses = lax.scan(body, (params, state, opt_state),
                                                      (batches, keys))
        return params, state, opt_state, losses

    epoch = _guard(epoch, max_traces, where)
    donate_argnums = (0, 1, 2) if donate else ()
    if sh is None:
        return jax.jit(epoch, donate_argnums=donate_argnums)
    r = sh.replicated
    compiled = jax.jit(epoch, donate_argnums=donate_argnums,
                       in_shardings=(r,) * 6, out_shardings=(r,) * 4)

    def run(params, state, opt_state, key, x, y):
        return compiled(_place(params, r), _place(state, r), _place(opt_state, r),
                        _place(key, r), _place(x, r), _place(y, r))

    run.jitted = compiled
    return run


def step_keys(key, steps: int):
    """The keys of one epoch with state: ``(shuffle_key, keys)``, ``keys`` of shape
    ``(steps,)``, one per step for its dropout masks, all split from ``key`` (none
    reused). :func:`make_epoch` and ``fit(fused=False)`` both draw them here, so the two
    see the same minibatches and the same masks."""
    shuffle_key, dropout_key = jax.random.split(key)
    return shuffle_key, jax.random.split(dropout_key, steps)


def minibatch_indices(key, n: int, batch_size: int, steps: int | None = None) -> jax.Array:
    """The example indices of each minibatch, as :func:`make_epoch` draws them.

    Each pass over the ``n`` examples is a fresh permutation (one key per pass, split
    from ``key``), cut into ``n // batch_size`` minibatches; the rows left over are
    skipped in that pass. ``fit(fused=False)`` draws its minibatches here too, so the
    fused and the per-step loops see the same batches in the same order.

    Args:
      key: a ``jax.random.key``.
      n: the number of examples.
      batch_size: examples per minibatch, at most ``n``.
      steps: the number of minibatches; ``None`` means one pass, ``n // batch_size``.

    Returns:
      ``(steps, batch_size)`` int32 indices.
    """
    per_pass = n // batch_size
    n_steps = per_pass if steps is None else steps
    passes = -(-n_steps // per_pass)
    keys = jax.random.split(key, passes)
    order = jax.vmap(lambda k: jax.random.permutation(k, n)[:per_pass * batch_size])(keys)
    return order.reshape(passes * per_pass, batch_size)[:n_steps].astype(jnp.int32)


@functools.cache
def _epoch_order_fn():
    return jit_once(minibatch_indices, static_argnums=(1, 2, 3))


def _epoch_order(key, n, batch_size):
    """:func:`minibatch_indices` of one pass, for ``fit(fused=False)``: one compiled
    call (eagerly, the split, permutation and slicing each compile a program). Integer
    arithmetic: the same indices as ``make_epoch`` draws inside its program."""
    return _epoch_order_fn()(key, n, batch_size, None)


def _positive(value, argument, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {argument} must be a positive int, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- evaluation


def _chunked(chunk_fn, x, y, batch_size):
    """``(sum of the chunks' loss x rows, correct rows)`` over ``x``, ``y`` in chunks of
    ``batch_size`` rows: the full chunks under ``lax.map`` (one at a time, so memory
    holds one chunk's activations), then the remainder; one traced program for the
    whole dataset instead of one compiled call (and compilation) per chunk shape."""
    def wide(v):  # sums in at least float32 (a bfloat16 loss too)
        return v.astype(jnp.promote_types(v.dtype, jnp.float32))

    n = x.shape[0]
    full, rest = divmod(n, batch_size)
    totals, corrects = [], []
    if full == 1:
        value, right = chunk_fn(x[:batch_size], y[:batch_size])
        totals.append(wide(value) * batch_size)
        corrects.append(right)
    elif full:
        head = full * batch_size
        xs = x[:head].reshape(full, batch_size, *x.shape[1:])
        ys = y[:head].reshape(full, batch_size, *y.shape[1:])
        values, rights = jax.lax.map(lambda xy: chunk_fn(*xy), (xs, ys))
        totals.append(jnp.sum(wide(values)) * batch_size)
        corrects.append(jnp.sum(rights))
    if rest:
        value, right = chunk_fn(x[n - rest:], y[n - rest:])
        totals.append(wide(value) * rest)
        corrects.append(right)
    return sum(totals[1:], totals[0]), sum(corrects[1:], corrects[0])


@functools.lru_cache(maxsize=32)
def _eval_fn(net, loss):
    """The compiled evaluation of ``net`` (with its ``state``, in inference mode, for a
    network with ``apply``; ``state`` is ignored otherwise)."""
    def chunk(params, state, x, y):
        if net.apply is not None:
            pred, _, _ = apply(net, params, state, x, train=False)  # inference mode
        else:
            pred, _ = net.forward(params, x)
        value, _ = loss.forward(pred, y)
        return value, _correct(pred, y)

    def f(params, state, x, y, batch_size):
        return _chunked(functools.partial(chunk, params, state), x, y, batch_size)

    return jax.jit(f, static_argnums=4)


def _correct(pred, y):
    """How many rows' arg-max class matches the target; NaN when that means nothing."""
    if pred.ndim != 2 or pred.shape[-1] < 2:
        return jnp.asarray(jnp.nan, jnp.float32)
    guess = jnp.argmax(pred, axis=-1)
    if jnp.issubdtype(y.dtype, jnp.integer) and y.shape == pred.shape[:1]:
        truth = y
    elif y.shape == pred.shape:
        truth = jnp.argmax(y, axis=-1)
    else:
        return jnp.asarray(jnp.nan, jnp.float32)
    return jnp.sum(guess == truth).astype(jnp.float32)


EVAL_BATCH = 1024  # rows per chunk of an evaluation


def evaluate(net: Layer, loss: Loss, params, x, y, *, batch_size: int = EVAL_BATCH,
             mesh: Mesh | None = None, state=None) -> tuple[float, float]:
    """The loss and the accuracy of ``net`` on a dataset: one compiled call, which runs
    the network on ``batch_size`` rows at a time.

    Accuracy is the fraction of examples whose predicted class (arg-max over the last
    axis of the prediction ``(n, classes)``) equals the target's: the integer label, or
    the arg-max of a one-hot or probability target. It is NaN for predictions with a
    single column or more than two axes.

    Args:
      net, loss: the network and its loss.
      params: the network's parameters (not consumed).
      x: ``(n, *input_shape)``.
      y: targets, ``(n,)`` integer labels or ``(n, ...)`` arrays.
      batch_size: rows per chunk (memory, not results, depends on it).
      mesh: if given, the data are replicated on the mesh, where ``params`` live.
      state: for a network with dropout or batch norm, its state (from training, or
        :func:`jaxbp.init_state`): it runs in inference mode (``jaxbp.apply(...,
        train=False)``: dropout is the identity, batch norm uses the running
        statistics from ``state``). Ignored for other networks.

    Returns:
      ``(loss, accuracy)`` as Python floats; the loss is the mean over all ``n``.
    """
    where = "evaluate"
    _check_net_and_loss(net, loss, where)
    batch_size = _positive(batch_size, "batch_size", where)
    n = int(np.shape(x)[0])
    if np.shape(y)[:1] != (n,):
        raise ValueError(f"{where}: y must have {n} rows, one per row of x "
                         f"{shape_str(np.shape(x))}, got {shape_str(np.shape(y))}")
    if n == 0:
        raise ValueError(f"{where}: x must have at least one row, got shape "
                         f"{shape_str(np.shape(x))}")
    _check_labels(net, loss, params, state, x, y, where)
    return _evaluate(net, loss, params, x, y, batch_size, mesh, state, where)


def _evaluate(net, loss, params, x, y, batch_size, mesh, state, where):
    """:func:`evaluate` after its checks (``fit`` checks its data once, not per epoch)."""
    n = int(np.shape(x)[0])
    sh = _shardings(mesh, where)
    if sh is not None:
        x, y = _place(x, sh.replicated), _place(y, sh.replicated)
    else:
        x, y = to_device(x), to_device(y)
    batch_size = min(batch_size, n)
    if net.apply is None:
        state = None
    elif sh is not None and state is not None:
        state = _place(state, sh.replicated)
    total, correct = _eval_fn(net, loss)(params, state, x, y, batch_size)
    return float(total) / n, float(correct) / n


# --------------------------------------------------------------------------- fit


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the trained parameters.
      opt_state: the optimizer state after the last step.
      history: per-epoch lists: ``"epoch"``, ``"loss"`` (the mean minibatch loss during
        the epoch), ``"accuracy"`` (on the training set after the epoch, when
        ``train_accuracy``), ``"val_loss"`` and ``"val_accuracy"`` (when there is
        validation data), ``"seconds"`` (wall time since the start, compilation
        included).
      state: the network's state after training (batch norm's running statistics), for
        a network with dropout or batch norm; ``None`` for every other network.
    """

    params: Any
    opt_state: Any
    history: dict
    state: Any = None


def fit(net: Layer, loss: Loss, optimizer, params, x, y, *, key, epochs: int = 10,
        batch_size: int = 32, grads: str = "manual", validation_data=None,
        opt_state=None, fused: bool = True, mesh: Mesh | None = None,
        progress: bool | None = None, verbose: bool = False,
        train_accuracy: bool = True, desc: str | None = None, state=None) -> FitResult:
    """Trains ``net`` for ``epochs`` passes over ``(x, y)`` and records a history.

    The caller's ``params`` and ``opt_state`` are copied first, never consumed, so the
    same initial parameters can train twice (as the demo does, once per ``grads``).

    A network with dropout or batch norm (``net.apply`` is not ``None``) trains in
    training mode with its state threaded through every step and a fresh dropout key
    per step (both split from ``key``), and is evaluated in inference mode with the
    running statistics; the final state is in the result.

    Args:
      net, loss, optimizer, grads, mesh: as in :func:`make_step`.
      params: the initial parameters.
      x: ``(n, *input_shape)`` training inputs; ``y`` their targets.
      key: a ``jax.random.key`` for shuffling; split once per epoch, never reused.
      epochs: passes over the data.
      batch_size: examples per step.
      validation_data: ``(x_val, y_val)``, evaluated after every epoch.
      opt_state: the optimizer state to resume from; ``None`` means
        ``optimizer.init(params)``.
      fused: run each epoch as one compiled call (:func:`make_epoch`); ``False`` runs
        one compiled :func:`make_step` call per minibatch.
      progress: show a progress bar (tqdm) with loss and accuracy; ``None`` shows it
        only when stderr is a terminal and tqdm is installed.
      verbose: print a one-line summary after every epoch (also when no bar shows).
      train_accuracy: evaluate the training set after every epoch.
      desc: the progress bar's label.
      state: for a network with dropout or batch norm, the state to resume from;
        ``None`` means ``jaxbp.init_state(net, params)``.

    Returns:
      A :class:`FitResult` ``(params, opt_state, history, state)``.
    """
    where = "fit"
    epochs = _positive(epochs, "epochs", where)
    batch_size = _positive(batch_size, "batch_size", where)
    _check_key(key, where)
    x, y = np.asarray(x), np.asarray(y)
    n = _check_dataset(x, y, batch_size, where)
    params = _copy(params)  # a copy: the steps donate their inputs
    opt_state = _init_optimizer(optimizer, params) if opt_state is None else _copy(opt_state)
    sh = _shardings(mesh, where)
    stateful = net.apply is not None
    if stateful:
        state = (init_state(net, params) if state is None
                 else _copy(state))
    else:
        state = None

    def on_device(a):  # once, not every epoch: the data for the epochs and evaluation
        return _place(a, sh.replicated) if sh is not None else to_device(a)

    _check_labels(net, loss, params, state, x, y, where)
    if validation_data is not None:
        _check_labels(net, loss, params, state, x, np.asarray(validation_data[1]), where,
                      "validation_data[1]")
    xd, yd = on_device(x), on_device(y)
    if fused:
        run_epoch = make_epoch(net, loss, optimizer, grads, batch_size=batch_size,
                               mesh=mesh, with_state=stateful)
    else:
        step = make_step(net, loss, optimizer, grads, mesh=mesh, with_state=stateful)

    history = {"epoch": [], "loss": [], "seconds": []}
    if train_accuracy:
        history["accuracy"] = []
    if validation_data is not None:
        x_val, y_val = (on_device(np.asarray(a)) for a in validation_data)
        history["val_loss"], history["val_accuracy"] = [], []

    bar = _progress_bar(epochs, progress, desc or f"{grads} backward")
    start = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            key, sub = jax.random.split(key)
            if fused and stateful:
                params, state, opt_state, losses = run_epoch(params, state, opt_state,
                                                             sub, xd, yd)
                epoch_loss = float(np.mean(np.asarray(losses)))
            elif fused:
                params, opt_state, losses = run_epoch(params, opt_state, sub, xd, yd)
                epoch_loss = float(np.mean(np.asarray(losses)))
            else:
                losses = []
                if stateful:  # the minibatches and keys make_epoch would draw
                    shuffle_key, keys = step_keys(sub, n // batch_size)
                    order = np.asarray(_epoch_order(shuffle_key, n, batch_size))
                else:
                    order = np.asarray(_epoch_order(sub, n, batch_size))
                for i, idx in enumerate(order):
                    if mesh is not None and jax.process_count() > 1:
                        # Every process holds the whole dataset and passes its own
                        # block of each minibatch (see _place_batch).
                        idx = idx.reshape(jax.process_count(), -1)[jax.process_index()]
                    if stateful:
                        params, state, opt_state, value = step(params, state, opt_state,
                                                               x[idx], y[idx], keys[i])
                    else:
                        params, opt_state, value = step(params, opt_state, x[idx], y[idx])
                    losses.append(value)
                epoch_loss = float(np.mean(jax.device_get(losses)))
            history["epoch"].append(epoch)
            history["loss"].append(epoch_loss)
            line = {"loss": epoch_loss}
            if train_accuracy:
                _, acc = _evaluate(net, loss, params, xd, yd, EVAL_BATCH, mesh, state,
                                   where)
                history["accuracy"].append(acc)
                line["acc"] = acc
            if validation_data is not None:
                vl, va = _evaluate(net, loss, params, x_val, y_val, EVAL_BATCH, mesh,
                                   state, where)
                history["val_loss"].append(vl)
                history["val_accuracy"].append(va)
                line["val_loss"], line["val_acc"] = vl, va
            history["seconds"].append(time.perf_counter() - start)
            text = _summary(line)
            if bar is not None:
                short = {k: v for k, v in line.items() if k in ("loss", "acc", "val_acc")}
                bar.set_postfix_str(_summary(short), refresh=False)
                bar.update(1)
            if verbose:
                message = f"{desc or grads} epoch {epoch}/{epochs}  {text}  " \
                          f"(elapsed {history['seconds'][-1]:.1f} s)"
                if bar is not None:
                    bar.write(message)
                else:
                    print(message, flush=True)
    finally:
        if bar is not None:
            bar.close()
    return FitResult(params, opt_state, history, state)


def _init_optimizer(optimizer, params):
    """``optimizer.init(params)`` under jit: one compilation, not one per leaf shape
    (optax's zeros_like run eagerly compile a small program each); eagerly for an
    optimizer whose init cannot be traced."""
    try:
        return jax.jit(optimizer.init)(params)
    except Exception:  # noqa: BLE001 - e.g. an init with Python-side logic
        return optimizer.init(params)


def _copy(tree):
    """A copy of every array in ``tree`` on the device, without compiling anything
    (``jnp.array(a)`` compiles a copy program per shape)."""
    def one(a):
        if isinstance(a, jax.Array):
            try:
                return jax.device_put(a, may_alias=False)
            except TypeError:  # a JAX without may_alias
                return jnp.array(a)
        if isinstance(a, (np.ndarray, np.generic)):
            return jax.device_put(np.array(a))
        return jnp.array(a)
    return jax.tree.map(one, tree)


def _check_key(key, where):
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError(f"{where}: key must be a typed key from jax.random.key(seed), got "
                        f"{type(key).__name__} of dtype {getattr(key, 'dtype', None)}")


def _summary(line):
    parts = []
    for name, value in line.items():
        if name.endswith("acc"):
            parts.append(f"{name} {100 * value:.1f}%" if not math.isnan(value)
                         else f"{name} n/a")
        else:
            parts.append(f"{name} {value:.4f}")
    return "  ".join(parts)


def _progress_bar(total, progress, desc):
    if progress is None:
        progress = _isatty(sys.stderr)
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="epoch", dynamic_ncols=True, leave=True)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- save / load

_FORMAT = "jaxbp-params-1"


def save(path, params, state=None) -> str:
    """Saves a parameter pytree to one ``.npz`` file, with its tree structure.

    The structure (dicts with string keys, tuples, lists, ``None``) is stored as JSON
    beside the arrays, so :func:`load` rebuilds the same tree without pickle.

    Args:
      path: the file; ``.npz`` is appended if missing (as numpy does).
      params: a pytree of arrays (as ``net.init`` returns).
      state: the network's state (batch norm's running statistics, from
        ``FitResult.state`` or a step), saved beside the params; ``None`` saves none.

    Returns:
      The path written.
    """
    leaves = []

    def encode(node):
        if isinstance(node, dict):
            bad = [k for k in node if not isinstance(k, str)]
            if bad:
                raise TypeError(f"save: params dict keys must be str, got {bad[0]!r}")
            return {"dict": {k: encode(v) for k, v in node.items()}}
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            return {"tuple": [encode(v) for v in node]}
        if isinstance(node, list):
            return {"list": [encode(v) for v in node]}
        if node is None:
            return {"none": None}
        if hasattr(node, "shape") and hasattr(node, "dtype") or isinstance(
                node, numbers.Number):
            leaves.append(np.asarray(node))
            return {"leaf": len(leaves) - 1}
        raise TypeError(f"save: params must be a tree of dicts, tuples, lists and arrays, "
                        f"got a node of type {type(node).__name__}")

    header = {"format": _FORMAT, "tree": encode(params)}
    if state is not None:
        header["state"] = encode(state)
    arrays = {f"leaf_{i}": a for i, a in enumerate(leaves)}
    header = json.dumps(header)
    path = _npz_path(path)
    np.savez(path, __tree__=np.array(header), **arrays)
    return path


def _npz_path(path) -> str:
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def load(path, *, with_state: bool = False):
    """Loads parameters written by :func:`save`, as a pytree of ``jax.Array``.

    Args:
      path: the ``.npz`` file (the ``.npz`` may be left out, as for :func:`save`).
      with_state: also return the state saved beside the params.

    Returns:
      The tree :func:`save` was given, leaves as ``jnp`` arrays of their saved dtypes;
      with ``with_state=True``, ``(params, state)``, ``state`` ``None`` when the file
      holds none (files written without a state, or before states existed).
    """
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(_npz_path(path)):
        path = _npz_path(path)
    with np.load(path, allow_pickle=False) as data:
        if "__tree__" not in data.files:
            raise ValueError(f"load: {path!r} is not a jaxbp parameter file "
                             f"(no '__tree__' entry; found {sorted(data.files)[:5]})")
        header = json.loads(str(data["__tree__"]))
        if header.get("format") != _FORMAT:
            raise ValueError(f"load: expected format {_FORMAT!r}, got "
                             f"{header.get('format')!r}")
        arrays = {name: data[name] for name in data.files if name != "__tree__"}

    def decode(node):
        (kind, value), = node.items()
        if kind == "dict":
            return {k: decode(v) for k, v in value.items()}
        if kind == "tuple":
            return tuple(decode(v) for v in value)
        if kind == "list":
            return [decode(v) for v in value]
        if kind == "none":
            return None
        return to_device(arrays[f"leaf_{value}"])

    params = decode(header["tree"])
    if not with_state:
        return params
    return params, decode(header["state"]) if "state" in header else None
