"""Layer families, one module each; every forward sits beside its hand-written backward."""

from jaxbp.layers.activations import gelu, leaky_relu, relu, sigmoid, softmax, tanh
from jaxbp.layers.attention import causal_self_attention
from jaxbp.layers.conv import conv1d, conv2d
from jaxbp.layers.dense import dense
from jaxbp.layers.dropout import dropout
from jaxbp.layers.embedding import embedding
from jaxbp.layers.norm import batch_norm, layer_norm
from jaxbp.layers.pool import (avg_pool1d, avg_pool2d, global_avg_pool, max_pool1d,
                               max_pool2d)
from jaxbp.layers.position import position_embedding
from jaxbp.layers.recurrent import lstm, rnn
from jaxbp.layers.reshape import flatten

__all__ = ["avg_pool1d", "avg_pool2d", "batch_norm", "causal_self_attention", "conv1d",
           "conv2d", "dense", "dropout", "embedding", "flatten", "gelu", "global_avg_pool",
           "layer_norm", "leaky_relu", "lstm", "max_pool1d", "max_pool2d",
           "position_embedding", "relu", "rnn", "sigmoid", "softmax", "tanh"]
