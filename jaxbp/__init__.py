"""jaxbp: backpropagation written by hand, checked by JAX.

Layers are immutable bundles of pure functions (``init``, ``forward``, ``backward``)
over explicit parameter pytrees; every backward is written by hand and checked against
``jax.vjp``. See the README for the contract.

Public names load on first use (PEP 562), so that ``import jaxbp`` and ``jaxbp --help``
do not pay for importing JAX until something needs it.
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Layer": "jaxbp._core", "Loss": "jaxbp._core",
    "apply": "jaxbp._apply", "bind": "jaxbp._apply", "init_state": "jaxbp._apply",
    "GradientReport": "jaxbp.check", "check_gradients": "jaxbp.check",
    "differentiable": "jaxbp.grad", "value_and_grad": "jaxbp.grad",
    "residual": "jaxbp.network", "serial": "jaxbp.network",
    "summary": "jaxbp._summary",
    "binary_cross_entropy": "jaxbp.losses", "half_mse": "jaxbp.losses",
    "sigmoid_binary_cross_entropy": "jaxbp.losses", "softmax_cross_entropy": "jaxbp.losses",
    # layers
    "dense": "jaxbp.layers.dense",
    "gelu": "jaxbp.layers.activations", "leaky_relu": "jaxbp.layers.activations",
    "relu": "jaxbp.layers.activations", "sigmoid": "jaxbp.layers.activations",
    "softmax": "jaxbp.layers.activations", "tanh": "jaxbp.layers.activations",
    "conv1d": "jaxbp.layers.conv", "conv2d": "jaxbp.layers.conv",
    "avg_pool1d": "jaxbp.layers.pool", "avg_pool2d": "jaxbp.layers.pool",
    "global_avg_pool": "jaxbp.layers.pool", "max_pool1d": "jaxbp.layers.pool",
    "max_pool2d": "jaxbp.layers.pool",
    "flatten": "jaxbp.layers.reshape",
    "dropout": "jaxbp.layers.dropout", "embedding": "jaxbp.layers.embedding",
    "batch_norm": "jaxbp.layers.norm", "layer_norm": "jaxbp.layers.norm",
    "causal_self_attention": "jaxbp.layers.attention",
    "lstm": "jaxbp.layers.recurrent", "rnn": "jaxbp.layers.recurrent",
    "position_embedding": "jaxbp.layers.position",
    "transformer_block": "jaxbp.models",
}
# submodules reachable as attributes: jaxbp.notes, jaxbp.train, ...
_SUBMODULES = ("check", "grad", "layers", "losses", "models", "network", "notes", "train")

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxbp.{name}")
    raise AttributeError(f"module 'jaxbp' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
