"""Whole models built from the library's own layers: a transformer block, a GPT, an
LSTM language model.

Nothing here has a backward of its own: every gradient comes from the layers'
hand-written passes, chained by ``serial`` and forked by ``residual``. A GPT is::

    serial(embedding(vocab, F), position_embedding(context),
           transformer_block(heads), ..., transformer_block(heads),
           layer_norm(), dense(vocab))

mapping integer ids ``(batch, time)`` to next-token logits ``(batch, time, vocab)``,
trained with ``softmax_cross_entropy`` against the ids shifted by one.
"""

from __future__ import annotations

import functools
import numbers
from typing import Callable, Mapping

import jax

from jaxbp._apply import apply as apply_layer
from jaxbp._core import Layer, check_input_shape, check_positive_int, check_rank
from jaxbp.layers import (causal_self_attention, dense, dropout as dropout_layer,
                          embedding, gelu, layer_norm, lstm, position_embedding)
from jaxbp.network import residual, serial

Constructors = Mapping[str, Callable]


def _constructors(layers: Constructors | None) -> dict[str, Callable]:
    """jaxbp's layer constructors, with ``layers``' in place of any of them (e.g. a
    learner's, from :func:`jaxbp.grading.plug.learner_layers`)."""
    own = {"serial": serial, "residual": residual, "layer_norm": layer_norm,
           "causal_self_attention": causal_self_attention, "dense": dense, "gelu": gelu,
           "dropout": dropout_layer, "embedding": embedding,
           "position_embedding": position_embedding, "lstm": lstm}
    return {**own, **{k: v for k, v in (layers or {}).items() if k in own}}


def transformer_block(heads: int, mlp_ratio: int = 4, *, dropout: float = 0.0,
                      layers: Constructors | None = None) -> Layer:
    """A pre-norm transformer block (GPT-2's), built from the library's layers::

        x = x + attention(layer_norm(x))
        x = x + W2 gelu(W1 layer_norm(x) + b1) + b2

    that is ``serial(residual(layer_norm(), causal_self_attention(heads)),
    residual(layer_norm(), dense(mlp_ratio * F), gelu(), dense(F)))``.

    Args:
      heads: attention heads, dividing the features ``F``.
      mlp_ratio: the MLP's hidden width as a multiple of ``F`` (GPT-2: 4).
      dropout: if positive, a ``dropout(rate)`` ends each branch (GPT-2's residual
        dropout), active only in training mode through :func:`jaxbp.apply`.
      layers: constructors to build it from in place of jaxbp's, by name (``"serial"``,
        ``"residual"``, ``"layer_norm"``, ``"causal_self_attention"``, ``"dense"``,
        ``"gelu"``, ``"dropout"``); ``None``: jaxbp's own.

    Returns:
      A :class:`~jaxbp.Layer` mapping ``(batch, time, F)`` to the same shape. Its params
      are those of ``serial(residual(...attention...), residual(...mlp...))``:
      ``((ln1, attention), (ln2, dense1, (), dense2))`` (plus ``()`` for each dropout).
      ``F`` is read from the input shape at ``init``, which sizes the MLP.
    """
    heads = check_positive_int(heads, "heads", "transformer_block")
    mlp_ratio = check_positive_int(mlp_ratio, "mlp_ratio", "transformer_block")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or \
            not 0.0 <= dropout < 1.0:
        raise ValueError(f"transformer_block: dropout must be a rate in [0, 1), got "
                         f"{dropout!r}")
    where = f"transformer_block({heads}, mlp_ratio={mlp_ratio})"
    causal_self_attention(heads)  # validates heads before any shape is known
    c = _constructors(layers)

    @functools.lru_cache(maxsize=None)
    def build(features: int) -> Layer:
        drop = [c["dropout"](dropout)] if dropout else []
        return c["serial"](
            c["residual"](c["layer_norm"](), c["causal_self_attention"](heads), *drop),
            c["residual"](c["layer_norm"](), c["dense"](mlp_ratio * features), c["gelu"](),
                          c["dense"](features), *drop))

    def _features(x, what):
        check_rank(x, 3, what, where, "(batch, time, features)")
        return int(x.shape[-1])

    def init(key, input_shape):
        shape = check_input_shape(input_shape, 2, where)
        return build(shape[-1]).init(key, shape)

    def forward(params, x):
        return build(_features(x, "x")).forward(params, x)

    def backward(params, residuals, dy):
        """The residual blocks' backward: ``dx = dy + branch.backward(dy)`` for each of
        the two, the MLP's first (see :func:`jaxbp.residual`)."""
        return build(_features(dy, "dy")).backward(params, residuals, dy)

    def apply(params, state, x, *, key=None, train=False):
        # The block keeps no state (dropout has none): its state is () throughout.
        y, residuals, _ = apply_layer(build(_features(x, "x")), params, None, x, key=key,
                                      train=train)
        return y, residuals, state

    return Layer(init, forward, backward, name=where, apply=apply if dropout else None)


def gpt(vocab_size: int, *, context: int, features: int = 128, blocks: int = 2,
        heads: int = 4, mlp_ratio: int = 4, dropout: float = 0.0,
        layers: Constructors | None = None) -> Layer:
    """A GPT: token and position embeddings, transformer blocks, a final layer norm and a
    dense head to next-token logits.

    Args:
      vocab_size: the number of token ids.
      context: the longest sequence (the position table's rows).
      features: the model width ``F``.
      blocks: the number of :func:`transformer_block`.
      heads: attention heads per block (dividing ``features``).
      mlp_ratio: each block's MLP width over ``F``.
      dropout: the blocks' residual dropout rate (training mode only).
      layers: constructors to build it from in place of jaxbp's (see
        :func:`transformer_block`; also ``"embedding"``, ``"position_embedding"``).

    Returns:
      ``serial(embedding, position_embedding, block * blocks, layer_norm, dense)``,
      ids ``(batch, time)`` (``time <= context``) to logits ``(batch, time, vocab_size)``;
      ``init`` takes the input shape ``(time,)``.
    """
    vocab_size = check_positive_int(vocab_size, "vocab_size", "gpt")
    context = check_positive_int(context, "context", "gpt")
    features = check_positive_int(features, "features", "gpt")
    blocks = check_positive_int(blocks, "blocks", "gpt")
    if features % check_positive_int(heads, "heads", "gpt"):
        raise ValueError(f"gpt: features must be divisible by heads = {heads}, got "
                         f"features = {features}")
    c = _constructors(layers)
    return c["serial"](c["embedding"](vocab_size, features), c["position_embedding"](context),
                       *[transformer_block(heads, mlp_ratio, dropout=dropout, layers=layers)
                         for _ in range(blocks)],
                       c["layer_norm"](), c["dense"](vocab_size))


def lstm_language_model(vocab_size: int, *, features: int = 256, embed: int = 64,
                        layers: Constructors | None = None) -> Layer:
    """An LSTM language model: ``serial(embedding(vocab, embed), lstm(features),
    dense(vocab))``, ids ``(batch, time)`` to logits ``(batch, time, vocab_size)``;
    ``layers``: constructors in place of jaxbp's, as for :func:`gpt`."""
    c = _constructors(layers)
    return c["serial"](c["embedding"](vocab_size, embed), c["lstm"](features),
                       c["dense"](vocab_size))


def count_params(params) -> int:
    """The number of scalars in a parameter pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


__all__ = ["count_params", "gpt", "lstm_language_model", "transformer_block"]
