"""A learner's backward passes inside real jaxbp layers, so that their own code trains.

``learner_layers("exercises")`` returns layer and loss constructors with jaxbp's names
and signatures (``dense``, ``sigmoid``, ``conv2d``, ``serial``, ``layer_norm``,
``causal_self_attention``, ``lstm``, ``half_mse``...), and the optimizers ``sgd`` and
``adam``. Each layer uses jaxbp's ``init`` and ``forward`` and the learner's exercise
functions as its ``backward``; a network built from them trains with
:func:`jaxbp.value_and_grad` or :mod:`jaxbp.train` exactly like one built from jaxbp's
own layers::

    L = learner_layers("exercises")
    net = L["serial"](L["dense"](32), L["tanh"](), L["dense"](10))
    loss_fn = jaxbp.value_and_grad(net, L["softmax_cross_entropy"]())

Whole models too: ``L["gpt"](vocab_size, context=64)`` is :func:`jaxbp.models.gpt` built
from the learner's layers (embedding, layer norm, attention, GELU, residual, dense,
serial), ``L["lstm_language_model"](vocab_size)`` the LSTM one.

Where the exercise set has no function for a case, jaxbp's own backward is used:
``flatten``, ``position_embedding``, ``global_avg_pool``; ``conv2d`` with a stride other
than 1 (``conv2d_backward`` handles stride 1, and any padding through an explicitly
padded input); pools whose stride differs from their window; ``gelu(approximate=False)``
(the exercise is the tanh form); batch norm in inference mode (the exercise is training
mode). A constructor whose exercise is still unfinished raises :class:`NotDoneYet`,
naming the exercise; :func:`unfinished` lists every unfinished exercise of a set at once
(:data:`DEMO_EXERCISES`: what each ``jaxbp demo`` needs).

The learner's code runs under the grader's time limit: a call of one of their functions
that runs longer (an infinite loop while ``jax.jit`` traces it) is stopped and raises
:class:`LearnerTimeout`.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import threading
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

import jaxbp
from jaxbp._core import Loss, check_int_tuple
from jaxbp.grading._impl import Impl, ImplError
from jaxbp.grading._sandbox import DEFAULT_TIME_LIMIT
from jaxbp.grading.generate import NOT_DONE
from jaxbp.grading.registry import BY_NAME
from jaxbp.layers.conv import explicit_padding, normalize_padding

# What each demo's network, loss and optimizer need from the exercise set, by demo
# (``jaxbp demo NAME --impl DIR``; "lstm" is ``jaxbp demo gpt --model lstm``).
DEMO_EXERCISES: dict[str, tuple[str, ...]] = {
    "cnn": ("relu_backward", "softmax_cross_entropy_backward", "dense_backward",
            "max_pool2d_backward", "conv2d_backward", "serial_backward"),
    "mlp": ("relu_backward", "softmax_cross_entropy_backward", "dense_backward",
            "serial_backward"),
    "doc000": ("sigmoid_backward", "half_mse_backward", "dense_backward", "sgd_update",
               "serial_backward"),
    "gpt": ("dense_backward", "serial_backward", "gelu_backward", "layer_norm_backward",
            "embedding_backward", "residual_backward", "attention_backward",
            "sequence_cross_entropy_backward", "adam_update"),
    "lstm": ("dense_backward", "serial_backward", "embedding_backward",
             "lstm_cell_backward", "sequence_cross_entropy_backward", "adam_update"),
}


class NotDoneYet(NotImplementedError):
    """The learner's exercise function that a layer needs is not written yet."""


class LearnerTimeout(RuntimeError):
    """A learner's function ran past the time limit (an infinite loop?)."""


def grade_command(impl: Impl, names) -> str:
    """``jaxbp grade NAME [--impl DIR]``: the command that grades the same folder."""
    try:
        default = Impl("exercises").root
    except ImplError:  # no exercises/ here (a wheel install, another folder)
        default = None
    target = "" if impl.root == default else f" --impl {impl.label}"
    return f"`jaxbp grade {' '.join(names)}{target}`"


def unfinished(impl="exercises", names=None) -> list[tuple[str, str]]:
    """The exercises among ``names`` (default: all) that ``impl`` has not finished.

    An exercise is unfinished when its function is still the "not done yet" stub, is
    missing, uses autodiff or jaxbp (the grader refuses it), or its file does not
    import. Returns ``(name, description)`` pairs in the set's order, e.g.
    ``("gelu_backward", "17 gelu_backward (exercises/09_activations_more.py)")``; ``[]``
    when every one is written.
    """
    impl = impl if isinstance(impl, Impl) else Impl(impl)
    names = sorted(names or BY_NAME, key=lambda n: BY_NAME[n].number)
    out = []
    for name in names:
        exercise = BY_NAME[name]
        loaded = impl.module(exercise.module)
        where = impl.display(loaded.path)
        if loaded.error:
            why = f": {loaded.error}"
        elif not callable(getattr(loaded.module, name, None)):
            why = ": the function is missing"
        elif name in loaded.stubs:
            why = ""
        elif name in loaded.refusals:
            why = f": {loaded.refusals[name].message(name, where)}"
        else:
            continue
        out.append((name, f"{exercise.number} {name} ({where}){why}"))
    return out


# ------------------------------------------------------------------ the time limit
#
# The learner's functions run while jax.jit traces a training step, in the caller's
# thread (a tracer cannot move to another thread). A watchdog thread measures each
# stretch of the learner's own code (time inside jaxbp's plumbing, which a learner's
# serial_backward or residual_backward calls, is not counted; nor is compilation) and
# stops one that runs past the limit by raising an exception in that thread.


class _Stop(BaseException):
    """Thrown into a thread whose learner code ran past the limit."""


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_lock = threading.Lock()
_compiled = [0.0]  # seconds JAX has spent lowering and compiling, once listening


def _on_duration(event, duration, **kwargs):
    del kwargs
    if event in _COMPILE_EVENTS:
        with _lock:
            _compiled[0] += duration


class _Stretch:
    def __init__(self, name, limit):
        self.name, self.limit = name, limit
        self.since, self.compiled = time.monotonic(), _compiled[0]
        self.fired = False


_local = threading.local()
_running: dict[int, _Stretch] = {}
_watchdog: threading.Thread | None = None


def _watch():
    while True:
        time.sleep(0.05)
        with _lock:
            now, compiled = time.monotonic(), _compiled[0]
            for ident, s in _running.items():
                if not s.fired and now - s.since - (compiled - s.compiled) > s.limit:
                    s.fired = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                               ctypes.py_object(_Stop))


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _resume(ident):
    """Starts timing the innermost open learner call of this thread, if the innermost
    frame of the stack is one."""
    stack = _stack()
    if stack and stack[-1] is not None:
        _running[ident] = _Stretch(*stack[-1])


@contextlib.contextmanager
def _learner(name, limit):
    """The learner's ``name`` runs inside: timed, and stopped past ``limit`` seconds."""
    global _watchdog
    if limit is None:
        yield
        return
    ident = threading.get_ident()
    with _lock:
        if _watchdog is None:
            # Compilation is counted, to leave it out of the learner's time.
            jax.monitoring.register_event_duration_secs_listener(_on_duration)
            _watchdog = threading.Thread(target=_watch, name="jaxbp-plug-watchdog",
                                         daemon=True)
            _watchdog.start()
        _stack().append((name, limit))
        _running[ident] = _Stretch(name, limit)
    stopped = False
    try:
        yield
    except _Stop:
        stopped = True
    finally:
        with _lock:
            s = _running.pop(ident, None)
            if s is not None and s.fired and not stopped:
                # Fired as the call returned: cancel the exception not yet delivered.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
            _stack().pop()
            _resume(ident)
    if stopped:
        raise LearnerTimeout(f"{name} was stopped after {limit:g} s (an infinite loop?): "
                             f"the limit counts your code's running time, not JAX's "
                             f"compilation") from None


@contextlib.contextmanager
def _ours():
    """jaxbp's own code runs inside (a layer's plumbing around the learner's function):
    the learner's clock, if one runs in this thread, pauses."""
    ident = threading.get_ident()
    with _lock:
        _running.pop(ident, None)
        _stack().append(None)
    try:
        yield
    finally:
        with _lock:
            _stack().pop()
            _resume(ident)


def _jaxbp_side(backward):
    """A layer's backward written by jaxbp (around the learner's functions): untimed."""
    def wrapped(params, residuals, dy):
        with _ours():
            return backward(params, residuals, dy)
    wrapped.__qualname__ = backward.__qualname__
    return wrapped


# ------------------------------------------------------------------ the constructors


class AdamState(NamedTuple):
    """The learner's Adam's state: updates done so far, and the two running means."""

    count: jax.Array  # () int32
    m: object         # like params: the running mean of the gradients
    v: object         # like params: the running mean of their squares


def learner_layers(impl="exercises", time_limit=DEFAULT_TIME_LIMIT) -> dict[str, Callable]:
    """jaxbp-compatible constructors whose backward passes are the learner's functions.

    Args:
      impl: ``"exercises"``, ``"solutions"`` or the path to a learner's copy.
      time_limit: seconds one stretch of the learner's code may run (compilation and
        jaxbp's own code not counted) before :class:`LearnerTimeout`; ``None``: no limit.

    Returns:
      A dict from jaxbp's constructor names to constructors with jaxbp's signatures:
      layers ``"dense"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"softmax"``,
      ``"gelu"``, ``"leaky_relu"``, ``"conv1d"``, ``"conv2d"``, ``"max_pool1d"``,
      ``"max_pool2d"``, ``"avg_pool1d"``, ``"avg_pool2d"``, ``"global_avg_pool"``,
      ``"flatten"``, ``"layer_norm"``, ``"batch_norm"``, ``"dropout"``, ``"embedding"``,
      ``"position_embedding"``, ``"causal_self_attention"``, ``"rnn"``, ``"lstm"``,
      ``"serial"``, ``"residual"``; models ``"transformer_block"``, ``"gpt"``,
      ``"lstm_language_model"``; losses ``"half_mse"``, ``"softmax_cross_entropy"``
      (``(batch, classes)`` logits: exercise 6; ``(batch, time, classes)`` with integer
      labels: exercise 29), ``"binary_cross_entropy"``,
      ``"sigmoid_binary_cross_entropy"``; and the optax ``GradientTransformation``\\ s
      ``"sgd"`` (``sgd(learning_rate)``: the learner's ``sgd_update``) and ``"adam"``
      (``adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)``, ``learning_rate`` a float or
      an optax schedule: the learner's ``adam_update``). Both ``update``\\ s need
      ``params``.

    Raises:
      ImplError: ``impl`` names no directory.
    """
    impl = impl if isinstance(impl, Impl) else Impl(impl)
    ctors: dict[str, Callable] = {}

    def fn(name):
        """The learner's function ``name``, wrapped; raises if it is unfinished."""
        exercise = BY_NAME[name]
        f, refusal = impl.function(exercise.module, name)
        loaded = impl.module(exercise.module)
        where = impl.display(loaded.path)
        if refusal:
            raise ImplError(refusal.message(name, where))
        if name in loaded.stubs:
            raise NotDoneYet(f"{name} is not done yet: write it in {where} (and check it "
                             f"with {grade_command(impl, [name])}) before training with it")

        def call(*args):
            try:
                with _learner(name, time_limit):
                    return f(*args)
            except NotImplementedError as e:
                if str(e).startswith(NOT_DONE):
                    raise NotDoneYet(f"{name} is not done yet: finish it in {where}") from e
                raise
        return call

    def layer(base, backward):
        return base._replace(backward=_jaxbp_side(backward))

    def activation(base, name, field, *extra):
        backward_fn = fn(name)

        def backward(params, residuals, dy):
            del params
            return (), backward_fn(getattr(residuals, field), dy, *extra)
        return layer(base, backward)

    def _dense_grads(params, x, dy, backward_fn):
        # The exercise is the (batch, in) case: more leading axes are more rows.
        n_in, n_out = params["w"].shape
        dx, dw, db = backward_fn(x.reshape(-1, n_in), params["w"], dy.reshape(-1, n_out))
        dparams = {"w": dw, "b": db} if "b" in params else {"w": dw}
        return dparams, dx.reshape(x.shape)

    def dense(features, bias=True, *, dtype=None):
        base = jaxbp.dense(features, bias, dtype=dtype)
        backward_fn = fn("dense_backward")

        def backward(params, residuals, dy):
            return _dense_grads(params, residuals.x, dy, backward_fn)
        return layer(base, backward)

    def conv1d(features, kernel_size, stride=1, padding="VALID", bias=True, *, dtype=None):
        base = jaxbp.conv1d(features, kernel_size, stride, padding, bias, dtype=dtype)
        backward_fn = fn("conv1d_backward")
        (k,) = check_int_tuple(kernel_size, 1, "kernel_size", "conv1d")
        (s,) = check_int_tuple(stride, 1, "stride", "conv1d")
        pad = normalize_padding(padding, 1, "conv1d")

        def backward(params, residuals, dy):
            x = residuals.x
            (pair,) = explicit_padding(pad, x.shape[1:2], (k,), (s,))
            dx, dw, db = backward_fn(x, params["w"], dy, s, tuple(pair))
            return ({"w": dw, "b": db} if "b" in params else {"w": dw}), dx
        return layer(base, backward)

    def conv2d(features, kernel_size, stride=1, padding="VALID", bias=True, *, dtype=None):
        base = jaxbp.conv2d(features, kernel_size, stride, padding, bias, dtype=dtype)
        strides = check_int_tuple(stride, 2, "stride", "conv2d")
        if strides != (1, 1):
            return base  # conv2d_backward is the stride-1 case
        backward_fn = fn("conv2d_backward")
        ksize = check_int_tuple(kernel_size, 2, "kernel_size", "conv2d")
        pad = normalize_padding(padding, 2, "conv2d")

        def backward(params, residuals, dy):
            # A padded convolution is a VALID one of the zero-padded input: pad, call the
            # learner's stride-1 backward, crop dx back to x.
            x = residuals.x
            pads = explicit_padding(pad, x.shape[1:3], ksize, strides)
            xpad = jnp.pad(x, ((0, 0), *pads, (0, 0)))
            dxpad, dw, db = backward_fn(xpad, params["w"], dy)
            (t, _), (left, _) = pads
            dx = dxpad[:, t:t + x.shape[1], left:left + x.shape[2], :]
            return ({"w": dw, "b": db} if "b" in params else {"w": dw}), dx
        return layer(base, backward)

    def pool2d(kind, exercise):
        def make(window, stride=None):
            base = getattr(jaxbp, kind)(window, stride)
            win = check_int_tuple(window, 2, "window", kind)
            if stride is not None and check_int_tuple(stride, 2, "stride", kind) != win:
                return base  # the exercise is the stride = window case
            backward_fn = fn(exercise)

            def backward(params, residuals, dy):
                del params
                return (), backward_fn(residuals.x, dy, win)
            return layer(base, backward)
        return make

    def pool1d(kind, exercise):
        def make(window, stride=None):
            base = getattr(jaxbp, kind)(window, stride)
            (k,) = check_int_tuple(window, 1, "window", kind)
            if stride is not None and check_int_tuple(stride, 1, "stride", kind) != (k,):
                return base
            backward_fn = fn(exercise)

            def backward(params, residuals, dy):
                # A 1-D pool is a 2-D pool over one row with a (1, k) window.
                del params
                x = residuals.x
                dx = backward_fn(x[:, None], dy[:, None], (1, k))
                return (), dx[:, 0]
            return layer(base, backward)
        return make

    def gelu(approximate=True):
        base = jaxbp.gelu(approximate)
        if not approximate:
            return base  # the exercise is the tanh form
        return activation(base, "gelu_backward", "x")

    def leaky_relu(negative_slope=0.01):
        return activation(jaxbp.leaky_relu(negative_slope), "leaky_relu_backward", "x",
                          float(negative_slope))

    def _norm_input(residuals):
        # The exercises take the forward's input x; the layers keep xhat and rstd. Any x
        # with that row's xhat and variance gives the same gradients (they do not depend
        # on the mean): x = xhat / rstd.
        return residuals.xhat / residuals.rstd

    def layer_norm(eps=1e-5, *, dtype=None):
        base = jaxbp.layer_norm(eps, dtype=dtype)
        backward_fn = fn("layer_norm_backward")

        def backward(params, residuals, dy):
            dx, dscale, dbias = backward_fn(_norm_input(residuals), params["scale"], dy,
                                            float(eps))
            return {"scale": dscale, "bias": dbias}, dx
        return layer(base, backward)

    def batch_norm(momentum=0.9, eps=1e-5, *, dtype=None):
        from jaxbp.layers.norm import BatchNormInferenceResiduals

        base = jaxbp.batch_norm(momentum, eps, dtype=dtype)
        backward_fn = fn("batch_norm_backward")

        def backward(params, residuals, dy):
            if isinstance(residuals, BatchNormInferenceResiduals):
                return base.backward(params, residuals, dy)  # constants: not the exercise
            dx, dscale, dbias = backward_fn(_norm_input(residuals), params["scale"], dy,
                                            float(eps))
            return {"scale": dscale, "bias": dbias}, dx
        return layer(base, backward)

    def dropout(rate):
        base = jaxbp.dropout(rate)
        backward_fn = fn("dropout_backward")

        def backward(params, residuals, dy):
            del params
            if residuals.keep is None:  # inference mode, or rate 0: the identity
                return (), dy
            return (), backward_fn(residuals.keep, dy, float(rate))
        return layer(base, backward)

    def embedding(vocab_size, features, *, dtype=None):
        base = jaxbp.embedding(vocab_size, features, dtype=dtype)
        backward_fn = fn("embedding_backward")

        def backward(params, residuals, dy):
            del params
            return {"w": backward_fn(residuals.ids, dy, int(vocab_size))}, None
        return layer(base, backward)

    def causal_self_attention(heads, *, dtype=None):
        base = jaxbp.causal_self_attention(heads, dtype=dtype)
        dense_fn, attention_fn = fn("dense_backward"), fn("attention_backward")

        def backward(params, residuals, dy):
            # The layer's residuals are heads-major: q (scaled by 1/sqrt(D)), k, v are
            # (B, H, T, D); o is (B*T, F). The exercise is one head: (batch, T, D) with
            # the heads as more examples of the batch, and q unscaled.
            x, q, k, v, p, o = residuals[:6]  # the arrays, not the static name
            batch, time, features = x.shape
            d = features // heads
            rows = batch * time
            dy2 = dy.reshape(rows, features)
            do, dw_proj, db_proj = dense_fn(o, params["proj"]["w"], dy2)
            do = do.reshape(batch, time, heads, d).transpose(0, 2, 1, 3)

            def one_head(a):
                return a.reshape(batch * heads, time, d)
            dq, dk, dv = attention_fn(one_head(q * math.sqrt(d)), one_head(k),
                                      one_head(v), one_head(do))
            dqkv = jnp.stack([dq, dk, dv]).reshape(3, batch, heads, time, d)
            dqkv = dqkv.transpose(1, 3, 0, 2, 4).reshape(rows, 3 * features)
            dx, dw_qkv, db_qkv = dense_fn(x.reshape(rows, features), params["qkv"]["w"],
                                          dqkv)
            return ({"qkv": {"w": dw_qkv, "b": db_qkv},
                     "proj": {"w": dw_proj, "b": db_proj}}, dx.reshape(x.shape))
        return layer(base, backward)

    def rnn(features, *, dtype=None):
        base = jaxbp.rnn(features, dtype=dtype)
        backward_fn = fn("rnn_backward")

        def backward(params, residuals, dy):
            x, hs = residuals[:2]  # hs time-major
            dx, dwx, dwh, db = backward_fn(x, jnp.swapaxes(hs, 0, 1), params["wx"],
                                           params["wh"], params["b"], dy)
            return {"wx": dwx, "wh": dwh, "b": db}, dx
        return layer(base, backward)

    def lstm(features, *, dtype=None):
        base = jaxbp.lstm(features, dtype=dtype)
        cell_fn = fn("lstm_cell_backward")

        def backward(params, residuals, dy):
            # Backpropagation through time: the learner's one-step backward, from the
            # last step to the first, carrying dh and dc, summing the weights' gradients.
            x, hs, cs, _ = residuals[:4]  # hs, cs time-major; x batch-major
            wx, wh, b = params["wx"], params["wh"], params["b"]
            h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]])
            c_prev = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]])

            def step(carry, inputs):
                dh, dc, dwx, dwh, db = carry
                x_t, hp, cp, dy_t = inputs
                dx_t, dh, dc, gwx, gwh, gb = cell_fn(x_t, hp, cp, wx, wh, b, dy_t + dh, dc)
                return (dh, dc, dwx + gwx, dwh + gwh, db + gb), dx_t

            zeros = jnp.zeros(hs.shape[1:], hs.dtype)
            carry = (zeros, zeros, jnp.zeros_like(wx), jnp.zeros_like(wh),
                     jnp.zeros_like(b))
            (_, _, dwx, dwh, db), dx = jax.lax.scan(
                step, carry, (jnp.swapaxes(x, 0, 1), h_prev, c_prev, jnp.swapaxes(dy, 0, 1)),
                reverse=True)
            return {"wx": dwx, "wh": dwh, "b": db}, jnp.swapaxes(dx, 0, 1)
        return layer(base, backward)

    def serial(*layers):
        base = jaxbp.serial(*layers)
        backward_fn = fn("serial_backward")

        def backward(params, residuals, dy):
            return backward_fn(tuple(layers), params, residuals, dy)
        return base._replace(backward=backward)

    def residual(*layers):
        base = jaxbp.residual(*layers)
        backward_fn = fn("residual_backward")
        branch = serial(*layers)

        def backward(params, residuals, dy):
            return backward_fn(branch, params, residuals.branch, dy)
        return base._replace(backward=backward)

    def loss(base, name, one_hot=False):
        backward_fn = fn(name)

        def forward(pred, target):
            value, _ = base.forward(pred, target)
            target = jnp.asarray(target)
            if one_hot and jnp.issubdtype(target.dtype, jnp.integer):
                target = jax.nn.one_hot(target, pred.shape[-1], dtype=pred.dtype)
            return value, (pred, target.astype(pred.dtype))

        def backward(residuals):
            with _ours():
                return backward_fn(*residuals)
        return Loss(forward, backward, name=base.name)

    def softmax_cross_entropy():
        """Exercise 6 for ``(batch, classes)`` logits; exercise 29 for a class per
        position with integer labels (``(batch, time, classes)``, more axes flattened
        into time). Each exercise is looked up when a loss of its kind is traced."""
        base = jaxbp.softmax_cross_entropy()

        def forward(pred, target):
            value, _ = base.forward(pred, target)
            target = jnp.asarray(target)
            if pred.ndim > 2 and jnp.issubdtype(target.dtype, jnp.integer):
                return value, (pred, target)
            if jnp.issubdtype(target.dtype, jnp.integer):
                target = jax.nn.one_hot(target, pred.shape[-1], dtype=pred.dtype)
            return value, (pred, target.astype(pred.dtype))

        def backward(residuals):
            pred, target = residuals
            with _ours():
                if pred.ndim > 2 and jnp.issubdtype(target.dtype, jnp.integer):
                    flat = pred.reshape(pred.shape[0], -1, pred.shape[-1])
                    labels = target.reshape(target.shape[0], -1)
                    grad = fn("sequence_cross_entropy_backward")(flat, labels)
                    return grad.reshape(pred.shape)
                # one-hot targets: every position is one more example of exercise 6
                rows = pred.reshape(-1, pred.shape[-1])
                grad = fn("softmax_cross_entropy_backward")(rows, target.reshape(rows.shape))
                return grad.reshape(pred.shape)
        try:
            fn("softmax_cross_entropy_backward")
        except NotDoneYet as unfinished_6:
            try:
                fn("sequence_cross_entropy_backward")  # enough for sequences
            except NotDoneYet:
                raise unfinished_6 from None
        return Loss(forward, backward, name=base.name)

    def sgd(learning_rate):
        import optax

        update_fn = fn("sgd_update")

        def init(params):
            del params
            return optax.EmptyState()

        def update(grads, state, params=None):
            if params is None:
                raise ValueError("sgd: update needs params (the learner's sgd_update "
                                 "returns the new params), got params=None")
            new = update_fn(params, grads, learning_rate)
            return jax.tree.map(lambda n, p: n - p, new, params), state
        return optax.GradientTransformation(init, update)

    def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
        import optax

        update_fn = fn("adam_update")

        def init(params):
            # Two trees of zeros, not one twice: a training step may donate the state's
            # buffers, and a buffer cannot be donated twice.
            return AdamState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params),
                             jax.tree.map(jnp.zeros_like, params))

        def update(grads, state, params=None):
            if params is None:
                raise ValueError("adam: update needs params (the learner's adam_update "
                                 "returns the new params), got params=None")
            # As optax.adam: a schedule reads the count of the updates done before.
            lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
            new, m, v = update_fn(params, grads, state.m, state.v, state.count + 1, lr,
                                  b1, b2, eps)
            updates = jax.tree.map(lambda n, p: n - p, new, params)
            return updates, AdamState(optax.safe_int32_increment(state.count), m, v)
        return optax.GradientTransformation(init, update)

    def model(name):
        def make(*args, **kwargs):
            from jaxbp import models

            return getattr(models, name)(*args, layers=ctors, **kwargs)
        return make

    ctors.update({
        "dense": dense,
        "sigmoid": lambda: activation(jaxbp.sigmoid(), "sigmoid_backward", "y"),
        "tanh": lambda: activation(jaxbp.tanh(), "tanh_backward", "y"),
        "relu": lambda: activation(jaxbp.relu(), "relu_backward", "x"),
        "softmax": lambda: activation(jaxbp.softmax(), "softmax_backward", "y"),
        "gelu": gelu,
        "leaky_relu": leaky_relu,
        "conv1d": conv1d,
        "conv2d": conv2d,
        "max_pool1d": pool1d("max_pool1d", "max_pool2d_backward"),
        "max_pool2d": pool2d("max_pool2d", "max_pool2d_backward"),
        "avg_pool1d": pool1d("avg_pool1d", "avg_pool2d_backward"),
        "avg_pool2d": pool2d("avg_pool2d", "avg_pool2d_backward"),
        "global_avg_pool": jaxbp.global_avg_pool,
        "flatten": jaxbp.flatten,
        "layer_norm": layer_norm,
        "batch_norm": batch_norm,
        "dropout": dropout,
        "embedding": embedding,
        "position_embedding": jaxbp.position_embedding,
        "causal_self_attention": causal_self_attention,
        "rnn": rnn,
        "lstm": lstm,
        "serial": serial,
        "residual": residual,
        "transformer_block": model("transformer_block"),
        "gpt": model("gpt"),
        "lstm_language_model": model("lstm_language_model"),
        "half_mse": lambda: loss(jaxbp.half_mse(), "half_mse_backward"),
        "softmax_cross_entropy": softmax_cross_entropy,
        "binary_cross_entropy": lambda: loss(jaxbp.binary_cross_entropy(),
                                             "binary_cross_entropy_backward"),
        "sigmoid_binary_cross_entropy": lambda: loss(
            jaxbp.sigmoid_binary_cross_entropy(), "sigmoid_binary_cross_entropy_backward"),
        "sgd": sgd,
        "adam": adam,
    })
    return ctors


__all__ = ["DEMO_EXERCISES", "LearnerTimeout", "NotDoneYet", "grade_command",
           "learner_layers", "unfinished"]
