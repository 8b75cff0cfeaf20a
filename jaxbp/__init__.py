"""jaxbp: backpropagation written by hand, checked by JAX.

Layers are immutable bundles of pure functions (``init``, ``forward``, ``backward``)
over explicit parameter pytrees; every backward is written by hand and checked against
``jax.vjp``. See DESIGN in the project's README for the contract.
"""

from jaxbp._apply import apply, bind, init_state
from jaxbp._core import Layer, Loss
from jaxbp.check import GradientReport, check_gradients
from jaxbp.grad import differentiable, value_and_grad
from jaxbp.layers import (avg_pool1d, avg_pool2d, batch_norm, conv1d, conv2d, dense,
                          dropout, embedding, flatten, gelu, global_avg_pool, layer_norm,
                          leaky_relu, max_pool1d, max_pool2d, relu, sigmoid, softmax, tanh)
from jaxbp.losses import (binary_cross_entropy, half_mse, sigmoid_binary_cross_entropy,
                          softmax_cross_entropy)
from jaxbp.layers import causal_self_attention, lstm, position_embedding, rnn
from jaxbp.network import residual, serial
from jaxbp.models import transformer_block

__version__ = "0.1.0"

__all__ = [
    "GradientReport", "Layer", "Loss", "apply", "binary_cross_entropy", "bind",
    "check_gradients", "init_state", "residual",
    "conv1d", "conv2d", "dense", "differentiable", "flatten", "half_mse", "max_pool1d",
    "max_pool2d", "relu", "serial", "sigmoid", "sigmoid_binary_cross_entropy", "softmax",
    "softmax_cross_entropy", "tanh", "value_and_grad",
    "avg_pool1d", "avg_pool2d", "batch_norm", "dropout", "embedding", "gelu",
    "global_avg_pool", "layer_norm", "leaky_relu",
    "causal_self_attention", "lstm", "position_embedding", "rnn", "transformer_block",
]


def __getattr__(name):
    # Submodules with heavier imports load on first use: jaxbp.notes, jaxbp.train.
    if name in ("notes", "train"):
        import importlib
        return importlib.import_module(f"jaxbp.{name}")
    raise AttributeError(f"module 'jaxbp' has no attribute {name!r}")
