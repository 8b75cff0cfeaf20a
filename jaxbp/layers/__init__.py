"""Layer families, one module each; every forward sits beside its hand-written backward."""

from jaxbp.layers.activations import relu, sigmoid, softmax, tanh
from jaxbp.layers.attention import causal_self_attention
from jaxbp.layers.conv import conv1d, conv2d
from jaxbp.layers.dense import dense
from jaxbp.layers.pool import max_pool1d, max_pool2d
from jaxbp.layers.position import position_embedding
from jaxbp.layers.recurrent import lstm, rnn
from jaxbp.layers.reshape import flatten

__all__ = ["causal_self_attention", "conv1d", "conv2d", "dense", "flatten", "lstm",
           "max_pool1d", "max_pool2d", "position_embedding", "relu", "rnn", "sigmoid",
           "softmax", "tanh"]
