"""Replays a worked example's training step with the library's hand-written backward passes.

Two conventions:

* ``"standard"``: textbook backprop. Every layer's backward runs with the parameters of
  the forward pass; the gradients equal ``jax.grad`` of the loss.
* ``"notes"``: the documents' order (000 and 003). Walking down from the loss, each
  layer's parameters are updated first (``p - learning_rate * dp``), and the error
  passed to the layer below is that layer's ``backward`` run again with the *updated*
  parameters. Only ``dx`` differs: ``dp`` always comes from the forward-time values.

Both call ``layer.backward`` of the library's layers; nothing here repeats their
arithmetic.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxbp._core import jit_once
from jaxbp.notes._example import Example, Trace

CONVENTIONS = ("notes", "standard")


def _check_convention(convention, where):
    if convention not in CONVENTIONS:
        raise ValueError(f"{where}: convention must be 'notes' or 'standard', got "
                         f"{convention!r}")


def _check_worked(example, where):
    if not isinstance(example, Example):
        if getattr(example, "kind", None) == "formulas":
            raise TypeError(f"{where}: example must be a worked example (000, 002, 003), "
                            f"got document {example.name}, which derives formulas; use "
                            f"jaxbp.notes.check for it")
        raise TypeError(f"{where}: example must be a jaxbp.notes Example (from "
                        f"jaxbp.notes.load), got {type(example).__name__}")


def trace(example: Example, convention: str = "notes") -> Trace:
    """One training step of ``example``, layer by layer, in float64.

    Args:
      example: a worked example from :func:`jaxbp.notes.load`.
      convention: ``"notes"`` or ``"standard"`` (see the module docstring).

    Returns:
      A :class:`~jaxbp.notes._example.Trace` of float64 jax arrays.
    """
    _check_convention(convention, "trace")
    _check_worked(example, "trace")
    layers = tuple(example.net.layers or (example.net,))

    def step(params, x, target):
        return _step(layers, example.loss, example.learning_rate, convention, params, x,
                     target)

    with jax.enable_x64(True):
        as64 = lambda a: jax.device_put(np.asarray(a, dtype=np.float64))  # noqa: E731
        args = (jax.tree.map(as64, example.params), as64(example.x), as64(example.target))
        try:
            # One compiled program (run once): op by op, each operation on each new
            # shape would compile a program of its own.
            return jit_once(step)(*args)
        except TypeError:  # a layer whose residuals are not all arrays: op by op
            return step(*args)


def _step(layers, loss_fn, lr, convention, params, x, target) -> Trace:
    acts, residuals = [x], []
    for layer, p in zip(layers, params):
        y, r = layer.forward(p, acts[-1])
        acts.append(y)
        residuals.append(r)
    loss, loss_residuals = loss_fn.forward(acts[-1], target)
    dy = loss_dy = loss_fn.backward(loss_residuals)
    n = len(layers)
    dys, grads, new_params = [None] * n, [None] * n, [None] * n
    for i in reversed(range(n)):
        dys[i] = dy
        grads[i], dx = layers[i].backward(params[i], residuals[i], dy)
        new_params[i] = jax.tree.map(lambda p, g: p - lr * g, params[i], grads[i])
        if convention == "notes" and jax.tree.leaves(params[i]):
            # The documents' order: pass the error down through the updated weights.
            _, dx = layers[i].backward(new_params[i], residuals[i], dy)
        dy = dx
    return Trace(tuple(acts), tuple(dys), tuple(grads), tuple(params), tuple(new_params),
                 loss, loss_dy, tuple(residuals))


def _param_values(example, tree, suffix):
    return {ref.name + suffix: float(np.asarray(tree[ref.layer][ref.key])[ref.index])
            for ref in example.param_table}


def replay_step(example: Example, convention: str = "notes"):
    """Replays one step; returns ``(values, grads, new_params)``.

    Args:
      example: a worked example from :func:`jaxbp.notes.load`.
      convention: ``"notes"`` or ``"standard"``.

    Returns:
      ``values``: ``dict[str, float]`` from the document's names to exact float64 values:
      every name in ``example.printed``, every quantity a printed line uses (activations,
      error coefficients, inputs, targets, the learning rate), each parameter's initial
      value (``w13``), its updated value (``w13_new``) and the gradient applied to it
      (``grad_w13``). ``grads`` and ``new_params`` are float64 pytrees shaped like
      ``example.params``; under ``"standard"``, ``grads`` equals ``jax.grad`` of the loss.
    """
    t = trace(example, convention)
    with jax.enable_x64(True):
        values = {k: float(v) for k, v in example.values(t).items()}
    values.update(_param_values(example, t.params, ""))
    values.update(_param_values(example, t.new_params, "_new"))
    values.update({"grad_" + k: v for k, v in _param_values(example, t.grads, "").items()})
    return values, t.grads, t.new_params


def replay(example: Example, convention: str = "notes") -> dict[str, float]:
    """The document's numbers, computed exactly (float64, no rounding).

    Args:
      example: a worked example from :func:`jaxbp.notes.load`.
      convention: ``"notes"`` (the documents' order) or ``"standard"`` (textbook
        backprop, equal to ``jax.grad``).

    Returns:
      ``dict[str, float]`` keyed by the names in ``example.printed`` (and the other
      quantities listed in :func:`replay_step`), e.g. ``"coef_o1"``, ``"w13_new"``.
    """
    return replay_step(example, convention)[0]
