"""Bad input to the layers beyond the documents: the same checks as the original layers.

Each layer's ``init`` checks its key and input shape, ``forward`` its params against the
configuration and its input, ``backward`` that the residuals came from its own forward
(and, where the configuration matters, from a layer configured the same way), its params
and that ``dy`` has the shape of the forward's output. Every case is traced only
(``jax.eval_shape``: nothing compiles) unless it needs concrete values (ids out of range).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import init_shapes

KEY = jax.random.key(0)
F32 = jnp.float32


def raises(kind, *phrases):
    """pytest.raises matching every phrase, literally, in order."""
    return pytest.raises(kind, match=".*".join(re.escape(p) for p in phrases))


def struct(*shape, dtype=F32):
    return jax.ShapeDtypeStruct(shape, dtype)


# (layer, the shape of x with its batch axis, x's dtype); one cheap shape each.
LAYERS = {
    "layer_norm": (jaxbp.layer_norm(), (2, 3), F32),
    "batch_norm": (jaxbp.batch_norm(), (4, 3), F32),
    "dropout": (jaxbp.dropout(0.5), (2, 3), F32),
    "embedding": (jaxbp.embedding(7, 3), (2, 4), jnp.int32),
    "avg_pool1d": (jaxbp.avg_pool1d(2), (1, 4, 2), F32),
    "avg_pool2d": (jaxbp.avg_pool2d(2, stride=1), (1, 3, 3, 2), F32),
    "global_avg_pool": (jaxbp.global_avg_pool(), (2, 3, 3, 2), F32),
    "causal_self_attention": (jaxbp.causal_self_attention(2), (2, 3, 4), F32),
    "rnn": (jaxbp.rnn(3), (2, 3, 2), F32),
    "lstm": (jaxbp.lstm(3), (2, 3, 2), F32),
    "position_embedding": (jaxbp.position_embedding(5), (2, 3, 4), F32),
    "residual": (jaxbp.residual(jaxbp.dense(3), jaxbp.relu()), (2, 3), F32),
}
KINDS = list(LAYERS)


def setup(kind):
    """``(layer, params struct, x struct, y struct)``."""
    layer, x_shape, x_dtype = LAYERS[kind]
    params, out = init_shapes(layer, x_shape[1:])
    x = struct(*x_shape, dtype=x_dtype)
    y = jax.eval_shape(lambda p, x_: layer.forward(p, x_)[0], params, x)
    assert y.shape == (x_shape[0], *out)
    return layer, params, x, y


def backward_of(layer, params, x, dy, *, source=None, source_params=None):
    """Traces ``layer.backward`` on the residuals of ``source``'s forward (by default
    ``layer``'s own)."""
    source = layer if source is None else source
    source_params = params if source_params is None else source_params

    def run(params, source_params, x, dy):
        _, residuals = source.forward(source_params, x)
        return layer.backward(params, residuals, dy)

    return jax.eval_shape(run, params, source_params, x, dy)


# --------------------------------------------------------------------------- names


REBUILT = [  # (layer, the name that rebuilds it): defaults left out, as dense's
    (jaxbp.layer_norm(), "layer_norm()"),
    (jaxbp.layer_norm(eps=1e-3), "layer_norm(eps=0.001)"),
    (jaxbp.batch_norm(), "batch_norm()"),
    (jaxbp.batch_norm(momentum=0.8, eps=1e-3), "batch_norm(momentum=0.8, eps=0.001)"),
    (jaxbp.batch_norm(dtype=jnp.bfloat16), "batch_norm(dtype='bfloat16')"),
    (jaxbp.dropout(0.25), "dropout(0.25)"),
    (jaxbp.embedding(7, 3), "embedding(7, 3)"),
    (jaxbp.embedding(7, 3, dtype=jnp.float16), "embedding(7, 3, dtype='float16')"),
    (jaxbp.avg_pool1d(3, 2), "avg_pool1d(3, stride=2)"),
    (jaxbp.avg_pool2d(2), "avg_pool2d(2)"),
    (jaxbp.avg_pool2d((2, 3), stride=1), "avg_pool2d((2, 3), stride=1)"),
    (jaxbp.global_avg_pool(), "global_avg_pool()"),
    (jaxbp.causal_self_attention(4), "causal_self_attention(4)"),
    (jaxbp.rnn(8), "rnn(8)"),
    (jaxbp.lstm(8, dtype=jnp.bfloat16), "lstm(8, dtype='bfloat16')"),
    (jaxbp.position_embedding(16), "position_embedding(16)"),
    (jaxbp.residual(jaxbp.layer_norm(), jaxbp.dense(4)),
     "residual(layer_norm(), dense(4))"),
]


@pytest.mark.parametrize("layer, name", REBUILT, ids=[name for _, name in REBUILT])
def test_every_name_rebuilds_its_layer(layer, name):
    assert layer.name == name
    qualified = re.sub(r"\b([a-z_0-9]+)\(", r"jaxbp.\1(", name)
    rebuilt = eval(qualified, {"jaxbp": jaxbp})
    assert isinstance(rebuilt, jaxbp.Layer) and rebuilt.name == name


@pytest.mark.parametrize("make, kind, phrase", [
    (lambda: jaxbp.layer_norm(dtype=jnp.int32), TypeError,
     "layer_norm: dtype must be a floating dtype"),
    (lambda: jaxbp.batch_norm(eps=0), ValueError,
     "batch_norm: eps must be a positive finite number, got 0"),
    (lambda: jaxbp.batch_norm(momentum=1.5), ValueError,
     "batch_norm: momentum must be a number in [0, 1], got 1.5"),
    (lambda: jaxbp.dropout(1.0), ValueError, "dropout: rate must be in [0, 1)"),
    (lambda: jaxbp.dropout("0.5"), TypeError, "dropout: rate must be a number in [0, 1)"),
    (lambda: jaxbp.embedding(0, 3), ValueError,
     "embedding: vocab_size must be a positive int, got 0"),
    (lambda: jaxbp.embedding(5, 3, dtype=jnp.int8), TypeError,
     "embedding: dtype must be a floating dtype"),
    (lambda: jaxbp.avg_pool2d((2, 2, 2)), ValueError,
     "avg_pool2d: window must be a positive int or a sequence of 2 positive ints"),
    (lambda: jaxbp.causal_self_attention(2, dtype="int32"), TypeError,
     "causal_self_attention: dtype must be a floating dtype"),
    (lambda: jaxbp.lstm(-1), ValueError, "lstm: features must be a positive int, got -1"),
    (lambda: jaxbp.position_embedding(3.5), TypeError,
     "position_embedding: max_len must be a positive int, got 3.5"),
    (lambda: jaxbp.residual(jaxbp.relu), TypeError,
     "residual: layers[0] must be a jaxbp.Layer, got function"),
], ids=["layer_norm dtype", "batch_norm eps", "batch_norm momentum", "dropout rate 1",
        "dropout rate str", "embedding vocab", "embedding dtype", "avg_pool window",
        "attention dtype", "lstm features", "position max_len", "residual ctor"])
def test_constructor_arguments(make, kind, phrase):
    with raises(kind, phrase):
        make()


# ----------------------------------------------------------------------------- init


@pytest.mark.parametrize("kind", KINDS)
def test_init_checks_the_key(kind):
    layer, x_shape, _ = LAYERS[kind]
    with raises(TypeError, f"{layer.name}: key must be a single jax.random.key, e.g. "
                           f"jax.random.key(0), got int 0"):
        layer.init(0, x_shape[1:])


@pytest.mark.parametrize("kind, input_shape, phrase", [
    ("layer_norm", (), "layer_norm(): input_shape must have at least 1 entry"),
    ("batch_norm", (0,), "batch_norm(): input_shape entries must be a positive int, got 0"),
    ("dropout", "3", "dropout(0.5): input_shape must be a tuple of ints"),
    ("embedding", (2, -1), "embedding(7, 3): input_shape entries must be a positive int"),
    ("avg_pool1d", (4,), "avg_pool1d(2): input_shape must have 2 entries"),
    ("avg_pool2d", (1, 3, 1), "avg_pool2d(2, stride=1): the window (2, 2) is larger than "
                              "the input (1, 3)"),
    ("global_avg_pool", (3,), "global_avg_pool(): input_shape must be (*spatial, "
                              "channels)"),
    ("causal_self_attention", (3, 5), "causal_self_attention(2): the features must be "
                                      "divisible by heads = 2, got input_shape (3, 5)"),
    ("rnn", (3,), "rnn(3): input_shape must have 2 entries (without the batch axis), got "
                  "(3,)"),
    ("lstm", (3, 2, 1), "lstm(3): input_shape must have 2 entries"),
    ("position_embedding", (6, 4), "position_embedding(5): the sequence length must be at "
                                   "most max_len = 5, got input_shape (6, 4)"),
    ("residual", (2, 0), "input_shape entries must be a positive int, got 0"),
], ids=KINDS)
def test_init_checks_the_input_shape(kind, input_shape, phrase):
    layer = LAYERS[kind][0]
    with raises(TypeError if isinstance(input_shape, str) else ValueError, phrase):
        layer.init(KEY, input_shape)


def test_residual_init_checks_that_the_branch_keeps_the_shape():
    with raises(ValueError, "residual(dense(4)): the branch must keep the input's shape, "
                            "got input_shape (3,) and branch output (4,)"):
        jaxbp.residual(jaxbp.dense(4)).init(KEY, (3,))


# ------------------------------------------------------------------- backward: dy


@pytest.mark.parametrize("kind", KINDS)
def test_backward_checks_dy_against_the_forwards_output(kind):
    layer, params, x, y = setup(kind)
    wrong = (*y.shape[:-1], y.shape[-1] + 1)
    with raises(ValueError, f"{layer.name}: dy must have the shape of the forward's output "
                            f"{y.shape}, got {wrong}"):
        backward_of(layer, params, x, struct(*wrong))
    # A dy that would broadcast is refused as well.
    with raises(ValueError, f"got {(*y.shape[:-1], 1)}"):
        backward_of(layer, params, x, struct(*y.shape[:-1], 1))


@pytest.mark.parametrize("kind", ["layer_norm", "dropout", "embedding", "residual"])
def test_dy_of_the_wrong_kind(kind):
    layer, params, x, y = setup(kind)
    with raises(TypeError, f"{layer.name}: dy must have a floating dtype, got int32"):
        backward_of(layer, params, x, struct(*y.shape, dtype=jnp.int32))


def test_dropouts_mask_residuals_check_dy_too():
    """Training mode keeps a mask; inference mode nothing but the shape: both check."""
    layer = jaxbp.bind(jaxbp.dropout(0.5), key=KEY, train=True)
    with raises(ValueError, "dropout(0.5): dy must have the shape of the forward's output "
                            "(2, 3), got (3, 2)"):
        backward_of(layer, (), struct(2, 3), struct(3, 2))


def test_batch_norm_inference_residuals_check_dy_too():
    # Put on the device from NumPy: jnp.zeros/ones would compile a program each.
    state = {"mean": jax.device_put(np.zeros(3, F32)),
             "var": jax.device_put(np.ones(3, F32))}
    layer = jaxbp.bind(jaxbp.batch_norm(), state=state, train=False)
    params, _ = init_shapes(layer, (3,))
    with raises(ValueError, "batch_norm(): dy must have the shape of the forward's output "
                            "(4, 3), got (4, 1)"):
        backward_of(layer, params, struct(4, 3), struct(4, 1))


def test_residual_checks_dy_before_its_branch():
    """The message names the residual block, not a layer deep in its branch."""
    layer, params, x, _ = setup("residual")
    with raises(ValueError, "residual(dense(3), relu()): dy must have the shape of the "
                            "forward's output (2, 3), got (2, 4)"):
        backward_of(layer, params, x, struct(2, 4))


# ------------------------------------------------------------ params vs the layer


def _without(params, *path):
    """A copy of the params dict without the entry at ``path``."""
    out = dict(params)
    if len(path) == 1:
        del out[path[0]]
    else:
        out[path[0]] = _without(params[path[0]], *path[1:])
    return out


def _with(params, value, *path):
    out = dict(params)
    out[path[0]] = value if len(path) == 1 else _with(params[path[0]], value, *path[1:])
    return out


PARAMS_CASES = [
    # (kind, change to the params, the phrases of the message)
    ("layer_norm", lambda p: _without(p, "bias"),
     ("layer_norm(): params must be {'scale': (features,), 'bias': (features,)}, got the "
      "keys ['scale']: params['bias'] is missing",)),
    ("layer_norm", lambda p: _with(p, struct(4), "bias"),
     ("layer_norm(): params['bias'] must have shape (3,), got (4,)",)),
    ("batch_norm", lambda p: {**p, "mean": struct(3)},
     ("batch_norm(): params must be", "params['mean'] is not one of its parameters",)),
    ("batch_norm", lambda p: _with(p, struct(3, 1), "scale"),
     ("batch_norm(): params['scale'] must have shape (features,), got (3, 1)",)),
    ("embedding", lambda p: _with(p, struct(7, 4), "w"),
     ("embedding(7, 3): params['w'] must have shape (7, 3), got (7, 4)",)),
    ("embedding", lambda p: {"W": p["w"]},
     ("embedding(7, 3): params must be {'w': (7, 3)}, got the keys ['W']: params['w'] is "
      "missing; params['W'] is not one of its parameters",)),
    ("embedding", lambda p: p["w"],
     ("embedding(7, 3): params must be a dict {'w': (7, 3)}, got an array of shape "
      "(7, 3)",)),
    ("causal_self_attention", lambda p: _without(p, "proj", "b"),
     ("causal_self_attention(2): params['proj'] must be {'w': (F, F), 'b': (F,)}, got the "
      "keys ['w']: params['proj']['b'] is missing",)),
    ("causal_self_attention", lambda p: _with(p, struct(11), "qkv", "b"),
     ("causal_self_attention(2): params['qkv']['b'] must have shape (12,), got (11,)",)),
    ("causal_self_attention", lambda p: _with(p, struct(4, 5), "proj", "w"),
     ("causal_self_attention(2): params['proj']['w'] must have shape (4, 4), got (4, 5)",)),
    ("causal_self_attention", lambda p: p["qkv"],
     ("causal_self_attention(2): params must be {'qkv': {'w': (F, 3F), 'b': (3F,)}, "
      "'proj': {'w': (F, F), 'b': (F,)}}, got the keys ['b', 'w']",)),
    ("rnn", lambda p: _with(p, struct(3, 4), "wh"),
     ("rnn(3): params['wh'] must have shape (3, 3), got (3, 4)",)),
    ("lstm", lambda p: _with(p, struct(3), "b"),
     ("lstm(3): params['b'] must have shape (12,), got (3,)",)),
    ("lstm", lambda p: _with(p, struct(2, 12, dtype=jnp.int32), "wx"),
     ("lstm(3): params['wx'] must have a floating dtype, got int32",)),
    ("position_embedding", lambda p: _with(p, struct(6, 4), "w"),
     ("position_embedding(5): params['w'] must have shape (5, features), got (6, 4)",)),
    ("position_embedding", lambda p: (),
     ("position_embedding(5): params must be a dict {'w': (5, features)}, got ()",)),
    ("residual", lambda p: p[:1],
     ("serial: params must be a tuple of 2 entries, one per layer, got 1",)),
]


@pytest.mark.parametrize("kind, change, phrases", PARAMS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(PARAMS_CASES)])
def test_forward_checks_params_against_the_configuration(kind, change, phrases):
    layer, params, x, _ = setup(kind)
    bad = change(params)
    error = TypeError if "must be a dict" in phrases[0] or "floating dtype" in \
        phrases[0] else ValueError
    with raises(error, *phrases):
        jax.eval_shape(layer.forward, bad, x)


@pytest.mark.parametrize("kind, change, phrase", [
    ("layer_norm", lambda p: _with(p, struct(4), "scale"),
     "layer_norm(): params['scale'] must have shape (3,), got (4,)"),
    ("batch_norm", lambda p: _without(p, "scale"), "params['scale'] is missing"),
    ("embedding", lambda p: _with(p, struct(8, 3), "w"),
     "embedding(7, 3): params['w'] must have shape (7, 3), got (8, 3)"),
    ("causal_self_attention", lambda p: _with(p, struct(6, 18), "qkv", "w"),
     "causal_self_attention(2): params['qkv']['w'] must have shape (4, 12), got (6, 18)"),
    ("rnn", lambda p: _with(p, struct(5, 3), "wx"),
     "rnn(3): params['wx'] must have shape (2, 3), got (5, 3)"),
    ("position_embedding", lambda p: _with(p, struct(5, 6), "w"),
     "position_embedding(5): params['w'] must have shape (5, 4), got (5, 6)"),
], ids=["layer_norm", "batch_norm", "embedding", "attention", "rnn", "position"])
def test_backward_checks_params_too(kind, change, phrase):
    """backward knows the input's width from the residuals: params of another input
    width are refused even where the configuration leaves it open."""
    layer, params, x, y = setup(kind)
    with raises(ValueError, phrase):
        backward_of(layer, change(params), x, y, source_params=params)


@pytest.mark.parametrize("kind", ["dropout", "avg_pool1d", "avg_pool2d", "global_avg_pool"])
def test_layers_without_params_refuse_params(kind):
    layer, _, x, y = setup(kind)
    with raises(ValueError, f"{layer.name}: params must be () ({layer.name} has no "
                            f"parameters), got a dict with the keys ['w']"):
        jax.eval_shape(layer.forward, {"w": struct(2)}, x)
    with raises(ValueError, f"{layer.name}: params must be ()"):
        backward_of(layer, {"w": struct(2)}, x, y, source_params=())


@pytest.mark.parametrize("kind, x, phrase", [
    ("layer_norm", struct(3), "layer_norm(): x must have rank at least 2 (batch, ..., "
                              "features), got shape (3,) (rank 1)"),
    ("layer_norm", struct(2, 4), "layer_norm(): x must have 3 features (params['scale'] "
                                 "has shape (3,)), got x of shape (2, 4)"),
    ("batch_norm", struct(4, 3, dtype=jnp.int32), "batch_norm(): x must have a floating "
                                                  "dtype, got int32"),
    ("avg_pool2d", struct(1, 3, 3), "avg_pool2d(2, stride=1): x must have rank 4 (batch, "
                                    "height, width, channels), got shape (1, 3, 3)"),
    ("global_avg_pool", struct(2, 3), "global_avg_pool(): x must have rank at least 3"),
    ("causal_self_attention", struct(2, 3, 6),
     "causal_self_attention(2): params['qkv']['w'] must have shape (6, 18) for x of shape "
     "(2, 3, 6), got (4, 12)"),
    ("rnn", struct(2, 3, 5), "rnn(3): params['wx'] must have shape (5, 3) for x of shape "
                             "(2, 3, 5), got (2, 3)"),
    ("position_embedding", struct(2, 3, 5), "position_embedding(5): x must have 4 features "
                                            "(params['w'] has shape (5, 4)), got x of "
                                            "shape (2, 3, 5)"),
    ("position_embedding", struct(2, 6, 4), "position_embedding(5): the sequence length "
                                            "must be at most max_len = 5, got x of shape "
                                            "(2, 6, 4)"),
    ("residual", struct(2, 4), "serial: layers[0]: dense(3): x must have 3 features"),
], ids=["layer_norm rank", "layer_norm features", "batch_norm int", "avg_pool2d rank",
        "global_avg_pool rank", "attention features", "rnn features", "position features",
        "position length", "residual features"])
def test_forward_checks_x(kind, x, phrase):
    layer, params, _, _ = setup(kind)
    with raises(TypeError if "dtype" in phrase else ValueError, phrase):
        jax.eval_shape(layer.forward, params, x)


# ---------------------------------------------------------------------- residuals


OTHER = {  # a layer whose forward takes the same x, and the residual type it returns
    "layer_norm": ("batch_norm", "BatchNormResiduals"),
    "batch_norm": ("layer_norm", "LayerNormResiduals"),
    "dropout": ("layer_norm", "LayerNormResiduals"),
    "avg_pool1d": (jaxbp.max_pool1d(2), "PoolResiduals"),
    "avg_pool2d": (jaxbp.max_pool2d(2, stride=1), "PoolResiduals"),
    "global_avg_pool": (jaxbp.conv2d(2, 1), "ConvResiduals"),
    "causal_self_attention": ("position_embedding", "PositionResiduals"),
    "rnn": ("lstm", "LSTMResiduals"),
    "lstm": ("rnn", "RNNResiduals"),
    "position_embedding": ("causal_self_attention", "AttentionResiduals"),
    "residual": ("layer_norm", "LayerNormResiduals"),
}
TYPES = {"layer_norm": "LayerNormResiduals", "batch_norm": "BatchNormResiduals",
         "dropout": "DropoutResiduals", "avg_pool1d": "AvgPoolResiduals",
         "avg_pool2d": "AvgPoolResiduals", "global_avg_pool": "GlobalAvgPoolResiduals",
         "causal_self_attention": "AttentionResiduals", "rnn": "RNNResiduals",
         "lstm": "LSTMResiduals", "position_embedding": "PositionResiduals",
         "residual": "ResidualResiduals"}


@pytest.mark.parametrize("kind", list(OTHER))
def test_backward_refuses_another_layers_residuals(kind):
    layer, params, x, y = setup(kind)
    other, got = OTHER[kind]
    if isinstance(other, str):
        other = LAYERS[other][0]
    other_params, _ = init_shapes(other, x.shape[1:])
    with raises(TypeError, f"{layer.name}: residuals must be the {TYPES[kind]} that "
                           f"{layer.name}'s forward returned, got {got}"):
        backward_of(layer, params, x, y, source=other, source_params=other_params)


def test_embedding_refuses_another_layers_residuals():
    layer, params, x, y = setup("embedding")
    other = jaxbp.embedding(9, 3)
    other_params, _ = init_shapes(other, (4,))
    with raises(ValueError, "embedding(7, 3): residuals come from embedding(9, 3)'s "
                            "forward"):
        backward_of(layer, params, x, y, source=other, source_params=other_params)


@pytest.mark.parametrize("layer, other, x_shape", [
    # Each backward uses its configuration: the scale 1 / (1 - rate), the window, the
    # number of heads, so another configuration's residuals would be a wrong gradient.
    (jaxbp.bind(jaxbp.dropout(0.5), key=KEY, train=True), jaxbp.dropout(0.2), (2, 3)),
    (jaxbp.avg_pool2d(2), jaxbp.avg_pool2d(2, stride=1), (1, 4, 4, 1)),
    (jaxbp.causal_self_attention(2), jaxbp.causal_self_attention(1), (1, 2, 4)),
    (jaxbp.batch_norm(), jaxbp.batch_norm(momentum=0.5), (4, 3)),
    (jaxbp.residual(jaxbp.relu()), jaxbp.residual(jaxbp.tanh()), (2, 3)),
], ids=["dropout rate", "avg_pool stride", "attention heads", "batch_norm momentum",
        "residual branch"])
def test_backward_refuses_the_residuals_of_another_configuration(layer, other, x_shape):
    name = layer.name.removeprefix("bind(").removesuffix(", train=True)")
    params, out = init_shapes(other, x_shape[1:])
    with raises(ValueError, f"{name}: residuals come from {other.name}'s forward, not "
                            f"from {name}'s"):
        backward_of(layer, params, struct(*x_shape), struct(x_shape[0], *out),
                    source=other)


def test_residuals_with_static_fields_pass_through_jit():
    """The shape, dtype and name travel as static pytree data: jit returns the residuals
    intact, and their only leaves are arrays."""
    layer = jaxbp.residual(jaxbp.dropout(0.5))
    y, residuals, _ = jax.jit(lambda x: jaxbp.apply(layer, ((),), ((),), x, key=KEY,
                                                    train=True))(np.ones((2, 3), F32))
    assert residuals.shape == (2, 3) and residuals.x_dtype == F32
    assert residuals.layer == "residual(dropout(0.5))"
    assert [leaf.dtype for leaf in jax.tree.leaves(residuals)] == [jnp.bool_]
    # The returned residuals go back into a compiled backward (one program, where the
    # eager backward would compile each of its operations).
    _, dx = jax.jit(layer.backward)(((),), residuals, np.ones(y.shape, y.dtype))
    keep = jax.tree.leaves(residuals)[0]
    np.testing.assert_array_equal(dx, 1.0 + 2.0 * np.asarray(keep))


# ------------------------------------------------------------- embedding, dropout


def test_embedding_takes_integer_ids_only():
    layer, params, _, _ = setup("embedding")
    # JAX arrays put on the device from NumPy (jnp.zeros would compile a program each).
    params = jax.tree.map(lambda s: jax.device_put(np.zeros(s.shape, s.dtype)), params)
    with raises(TypeError, "embedding(7, 3): x must be integer ids (an integer dtype), got "
                           "float32"):
        layer.forward(params, jax.device_put(np.zeros((2, 4), F32)))
    with raises(TypeError, "embedding(7, 3): x must be integer ids (an integer dtype), got "
                           "bool"):
        layer.forward(params, jax.device_put(np.zeros((2, 4), bool)))
    with raises(TypeError, "embedding(7, 3): x must be an array of integer ids, got str"):
        layer.forward(params, "0 1 2")
    with raises(ValueError, "embedding(7, 3): x must have a batch axis (batch, ...), got "
                            "shape ()"):
        layer.forward(params, jax.device_put(np.int32(3)))
    with raises(ValueError, "embedding(7, 3): ids must be in [0, 6], got x[1, 2] = 9"):
        layer.forward(params, np.array([[0, 1, 2], [3, 4, 9]], np.int32))
    y, residuals = layer.forward(params, [[0, 1], [6, 6]])  # a list of ints is fine
    # The backward compiled as one program; its result read in NumPy.
    grads, dx = jax.jit(layer.backward)(params, residuals, np.ones(y.shape, y.dtype))
    assert dx is None and grads["w"].shape == (7, 3)
    np.testing.assert_array_equal(np.asarray(grads["w"])[:, 0], [1, 1, 0, 0, 0, 0, 2])


def test_embedding_refuses_a_torch_tensor():
    torch = pytest.importorskip("torch")
    layer = jaxbp.embedding(7, 3)
    with raises(TypeError, "embedding(7, 3): x must be a JAX or NumPy array of integer "
                           "ids, "
                           "got torch.Tensor"):
        layer.forward({"w": jax.device_put(np.zeros((7, 3), F32))},
                      torch.zeros((2, 4), dtype=torch.int64))


def test_dropout_in_training_mode_needs_a_key():
    layer = jaxbp.dropout(0.5)
    with raises(ValueError, "dropout(0.5): key must be a jax.random.key in training mode "
                            "(train=True), got None"):
        jax.eval_shape(lambda x: layer.apply((), (), x, train=True), struct(2, 3))
    # Its own apply checks the key too (jaxbp.apply checks it before any layer runs).
    with raises(TypeError, "dropout(0.5): key must be a single jax.random.key, e.g. "
                           "jax.random.key(0), got int 3"):
        jax.eval_shape(lambda x: layer.apply((), (), x, key=3, train=True), struct(2, 3))
    with raises(ValueError, "dropout(0.5): params must be ()"):
        jax.eval_shape(lambda x: layer.apply((jnp.ones(1, F32),), (), x, key=KEY,
                                             train=True), struct(2, 3))


# ------------------------------------------------------------------------ summary


def test_summary_of_a_gpt():
    net = jaxbp.models.gpt(11, context=8, features=16, blocks=2, heads=2)
    text = jaxbp.summary(net, (8,), print_fn=None)
    lines = text.splitlines()
    rows = {line.split("  ")[0].strip(): line.split() for line in lines}
    # embedding 11 * 16; position 8 * 16; a block: 2 layer norms (2 * 32), attention
    # 16 * 48 + 48 + 16 * 16 + 16, MLP 16 * 64 + 64 + 64 * 16 + 16; norm 32; head
    # 16 * 11 + 11.
    block = 2 * 32 + (16 * 48 + 48 + 16 * 16 + 16) + (16 * 64 + 64 + 64 * 16 + 16)
    assert rows["embedding(11, 16)"][-3:] == ["(8,", "16)", f"{11 * 16:,}"]
    assert rows["position_embedding(8)"][-1] == f"{8 * 16:,}"
    assert rows["transformer_block(2, mlp_ratio=4)"][-1] == f"{block:,}"
    assert rows["dense(11)"][-3:] == ["(8,", "11)", "187"]
    total = 11 * 16 + 8 * 16 + 2 * block + 32 + 187
    assert lines[-1].startswith(f"total: {total:,} parameters")
    params, _ = net.init(KEY, (8,))
    assert sum(a.size for a in jax.tree.leaves(params)) == total


def test_summary_of_a_resnet_with_batch_norm():
    block = jaxbp.residual(jaxbp.conv2d(4, 3, padding="SAME"), jaxbp.batch_norm(),
                           jaxbp.relu(), jaxbp.conv2d(4, 3, padding="SAME"),
                           jaxbp.batch_norm())
    net = jaxbp.serial(jaxbp.conv2d(4, 3, padding="SAME"), jaxbp.batch_norm(),
                       jaxbp.relu(), block, jaxbp.avg_pool2d(2), jaxbp.dropout(0.2),
                       jaxbp.global_avg_pool(), jaxbp.dense(10))
    text = jaxbp.summary(net, (8, 8, 1), print_fn=None)
    conv_in, conv, bn = 3 * 3 * 1 * 4 + 4, 3 * 3 * 4 * 4 + 4, 2 * 4
    rows = [line.split() for line in text.splitlines()]
    by_name = {}
    for line in text.splitlines():
        by_name.setdefault(line.split("  ")[0].strip(), line.split())
    assert by_name["batch_norm()"][-4:] == ["(8,", "8,", "4)", f"{bn}"]
    assert by_name[block.name][-1] == f"{2 * conv + 2 * bn:,}"
    assert by_name["avg_pool2d(2)"][-4:] == ["(4,", "4,", "4)", "0"]
    assert by_name["global_avg_pool()"][-2:] == ["(4,)", "0"]
    assert by_name["dropout(0.2)"][-1] == "0"
    total = conv_in + bn + 2 * conv + 2 * bn + 4 * 10 + 10
    assert rows[-1][:2] == ["total:", f"{total:,}"]
