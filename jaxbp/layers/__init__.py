"""Layer families, one module each; every forward sits beside its hand-written backward."""

from jaxbp.layers.activations import relu, sigmoid, softmax, tanh
from jaxbp.layers.conv import conv1d, conv2d
from jaxbp.layers.dense import dense
from jaxbp.layers.pool import max_pool1d, max_pool2d
from jaxbp.layers.reshape import flatten

__all__ = ["conv1d", "conv2d", "dense", "flatten", "max_pool1d", "max_pool2d", "relu",
           "sigmoid", "softmax", "tanh"]
