"""A learner's backward passes inside real jaxbp layers, so that their own code trains.

``learner_layers("exercises")`` returns layer and loss constructors with jaxbp's names
and signatures (``dense``, ``sigmoid``, ``conv2d``, ``serial``, ``half_mse``...). Each
uses jaxbp's ``init`` and ``forward`` and the learner's exercise function as its
``backward``; a network built from them trains with :func:`jaxbp.value_and_grad` or
:mod:`jaxbp.train` exactly like one built from jaxbp's own layers::

    L = learner_layers("exercises")
    net = L["serial"](L["dense"](32), L["tanh"](), L["dense"](10))
    loss_fn = jaxbp.value_and_grad(net, L["softmax_cross_entropy"]())

Where the exercise set has no function for a case, jaxbp's own backward is used:
``flatten``; ``conv2d`` with a stride other than 1 (``conv2d_backward`` handles stride 1,
and any padding through an explicitly padded input); pools whose stride differs from
their window. A constructor whose exercise is still unfinished raises
:class:`NotDoneYet`, naming the exercise.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

import jaxbp
from jaxbp._core import Loss, check_int_tuple
from jaxbp.grading.registry import BY_NAME
from jaxbp.grading._impl import Impl, ImplError
from jaxbp.grading.generate import NOT_DONE
from jaxbp.layers.conv import explicit_padding, normalize_padding


class NotDoneYet(NotImplementedError):
    """The learner's exercise function that a layer needs is not written yet."""


def learner_layers(impl="exercises") -> dict[str, Callable]:
    """jaxbp-compatible constructors whose backward passes are the learner's functions.

    Args:
      impl: ``"exercises"``, ``"solutions"`` or the path to a learner's copy.

    Returns:
      A dict from jaxbp's constructor names (``"dense"``, ``"sigmoid"``, ``"tanh"``,
      ``"relu"``, ``"softmax"``, ``"conv1d"``, ``"conv2d"``, ``"max_pool1d"``,
      ``"max_pool2d"``, ``"flatten"``, ``"serial"``, ``"half_mse"``,
      ``"softmax_cross_entropy"``, ``"binary_cross_entropy"``,
      ``"sigmoid_binary_cross_entropy"``) to constructors with jaxbp's signatures, and
      ``"sgd"``: ``sgd(learning_rate)``, an optax ``GradientTransformation`` that applies
      the learner's ``sgd_update`` (its ``update`` needs ``params``).

    Raises:
      ImplError: ``impl`` names no directory.
    """
    impl = impl if isinstance(impl, Impl) else Impl(impl)

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
                             f"with `jaxbp grade {name}`) before training with it")

        def call(*args):
            try:
                return f(*args)
            except NotImplementedError as e:
                if str(e).startswith(NOT_DONE):
                    raise NotDoneYet(f"{name} is not done yet: finish it in {where}") from e
                raise
        return call

    def activation(base, name, field):
        backward_fn = fn(name)

        def backward(params, residuals, dy):
            del params
            return (), backward_fn(getattr(residuals, field), dy)
        return base._replace(backward=backward)

    def dense(features, bias=True, *, dtype=None):
        base = jaxbp.dense(features, bias, dtype=dtype)
        backward_fn = fn("dense_backward")

        def backward(params, residuals, dy):
            dx, dw, db = backward_fn(residuals.x, params["w"], dy)
            dparams = {"w": dw, "b": db} if "b" in params else {"w": dw}
            return dparams, dx
        return base._replace(backward=backward)

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
        return base._replace(backward=backward)

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
        return base._replace(backward=backward)

    def max_pool2d(window, stride=None):
        base = jaxbp.max_pool2d(window, stride)
        win = check_int_tuple(window, 2, "window", "max_pool2d")
        if stride is not None and check_int_tuple(stride, 2, "stride", "max_pool2d") != win:
            return base  # max_pool2d_backward is the stride = window case
        backward_fn = fn("max_pool2d_backward")

        def backward(params, residuals, dy):
            del params
            return (), backward_fn(residuals.x, dy, win)
        return base._replace(backward=backward)

    def max_pool1d(window, stride=None):
        base = jaxbp.max_pool1d(window, stride)
        (k,) = check_int_tuple(window, 1, "window", "max_pool1d")
        if stride is not None and check_int_tuple(stride, 1, "stride", "max_pool1d") != (k,):
            return base
        backward_fn = fn("max_pool2d_backward")

        def backward(params, residuals, dy):
            # A 1-D pool is a 2-D pool over one row with a (1, k) window.
            del params
            x = residuals.x
            dx = backward_fn(x[:, None], dy[:, None], (1, k))
            return (), dx[:, 0]
        return base._replace(backward=backward)

    def serial(*layers):
        base = jaxbp.serial(*layers)
        backward_fn = fn("serial_backward")

        def backward(params, residuals, dy):
            return backward_fn(tuple(layers), params, residuals, dy)
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
            return backward_fn(*residuals)
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

    return {
        "dense": dense,
        "sigmoid": lambda: activation(jaxbp.sigmoid(), "sigmoid_backward", "y"),
        "tanh": lambda: activation(jaxbp.tanh(), "tanh_backward", "y"),
        "relu": lambda: activation(jaxbp.relu(), "relu_backward", "x"),
        "softmax": lambda: activation(jaxbp.softmax(), "softmax_backward", "y"),
        "conv1d": conv1d,
        "conv2d": conv2d,
        "max_pool1d": max_pool1d,
        "max_pool2d": max_pool2d,
        "flatten": jaxbp.flatten,
        "serial": serial,
        "half_mse": lambda: loss(jaxbp.half_mse(), "half_mse_backward"),
        "softmax_cross_entropy": lambda: loss(jaxbp.softmax_cross_entropy(),
                                              "softmax_cross_entropy_backward", one_hot=True),
        "binary_cross_entropy": lambda: loss(jaxbp.binary_cross_entropy(),
                                             "binary_cross_entropy_backward"),
        "sigmoid_binary_cross_entropy": lambda: loss(
            jaxbp.sigmoid_binary_cross_entropy(), "sigmoid_binary_cross_entropy_backward"),
        "sgd": sgd,
    }


__all__ = ["NotDoneYet", "learner_layers"]
