"""``summary(net, input_shape)``: each layer's output shape and parameter count.

As Keras's ``model.summary()`` and flax's ``tabulate``: one row per layer, the shapes
threaded through the layers' ``init`` functions, traced with ``jax.eval_shape`` so
that no parameter is computed. A composite layer (a ``serial`` inside a network) gets
its own row, with its sub-layers indented below it.
"""

from __future__ import annotations

import math

import jax

from jaxbp._checks import check_layer
from jaxbp._core import Layer, check_input_shape, shape_str


def _init_shapes(layer: Layer, input_shape):
    """``(params, output_shape)`` of ``layer.init``, params as ShapeDtypeStructs."""
    box = {}

    def params_only(key):
        params, box["out"] = layer.init(key, tuple(input_shape))
        return params

    params = jax.eval_shape(params_only, jax.random.key(0))
    return params, tuple(box["out"])


def _count(params) -> tuple[int, int]:
    """``(number of parameters, bytes)`` of a params pytree."""
    leaves = jax.tree.leaves(params)
    return (sum(math.prod(leaf.shape) for leaf in leaves),
            sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in leaves))


def _rows(layers, shape, depth):
    """One ``(indented name, output shape, parameter count)`` per layer, recursively."""
    rows = []
    for layer in layers:
        params, out = _init_shapes(layer, shape)
        rows.append(("  " * depth + layer.name, out, _count(params)[0]))
        if layer.layers:
            rows += _rows(layer.layers, shape, depth + 1)
        shape = out
    return rows


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""


def summary(net: Layer, input_shape, *, print_fn=print) -> str:
    """Prints (and returns) a table of each layer's output shape and parameter count.

    A ``serial`` network shows one row per layer; a single layer shows one row. Output
    shapes exclude the batch axis, as ``init``'s do. Nothing is computed: the shapes come
    from tracing ``init``.

    Args:
      net: a layer, usually a ``serial`` network.
      input_shape: the input shape without the batch axis, e.g. ``(28, 28, 1)``.
      print_fn: called with the table's text; ``None`` prints nothing.

    Returns:
      The table, e.g.::

        layer                                        output shape      params
        conv2d(8, 3, stride=1, padding='SAME')       (28, 28, 8)           80
        ...
        total: 7,850 parameters (30.66 KB)

    Raises:
      TypeError: ``net`` is not a layer.
      ValueError: ``input_shape`` does not fit the network (the layer's own message).
    """
    check_layer(net, "net", "summary")
    input_shape = check_input_shape(input_shape, None, "summary")
    top = list(net.layers) if net.layers and net.name.startswith("serial(") else [net]
    rows = _rows(top, input_shape, 0)
    total, n_bytes = _count(_init_shapes(net, input_shape)[0])
    name_w = max([len("layer")] + [len(r[0]) for r in rows])
    shape_w = max([len("output shape")] + [len(shape_str(r[1])) for r in rows])
    count_w = max([len("params")] + [len(f"{r[2]:,}") for r in rows])
    rule = "-" * (name_w + shape_w + count_w + 4)
    lines = [f"input shape {shape_str(input_shape)} (without the batch axis)", rule,
             f"{'layer':<{name_w}}  {'output shape':<{shape_w}}  {'params':>{count_w}}",
             rule]
    lines += [f"{name:<{name_w}}  {shape_str(out):<{shape_w}}  {count:>{count_w},}"
              for name, out, count in rows]
    lines += [rule, f"total: {total:,} parameters ({_size(n_bytes)})"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
