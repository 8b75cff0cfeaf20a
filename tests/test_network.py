"""``serial``: composition, parameter structure, and document 002's network by hand.

Document 002's 2-2-2 sigmoid network without biases, built with ``serial``, must give
the forward values and gradients of an independent NumPy computation to 1e-12, and the
figures the document prints at its printed precision.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import assert_layer_matches_autodiff, init_shapes

# Document 002: x = (0.5, 0.3), labels (0.23, -0.07); w1..w8 = 0.2, -0.4, 0.5, 0.6, 0.1,
# -0.5, -0.3, 0.8, with In_h1 = w1 x1 + w3 x2, In_h2 = w2 x1 + w4 x2,
# In_o1 = w5 h1 + w7 h2, In_o2 = w6 h1 + w8 h2.
W1, W2, W3, W4, W5, W6, W7, W8 = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8
X = np.array([[0.5, 0.3]])
Y = np.array([[0.23, -0.07]])
# dense's w[j, k] joins input j to output k: row j holds the weights leaving input j.
HIDDEN_W = np.array([[W1, W2], [W3, W4]])
OUTPUT_W = np.array([[W5, W6], [W7, W8]])


def doc002_net():
    return jaxbp.serial(jaxbp.dense(2, bias=False), jaxbp.sigmoid(),
                        jaxbp.dense(2, bias=False), jaxbp.sigmoid())


def doc002_params():
    # device_put, not jnp.asarray: no program compiled (float64 under enable_x64)
    return ({"w": jax.device_put(HIDDEN_W)}, (), {"w": jax.device_put(OUTPUT_W)}, ())


def sig(z):
    return 1 / (1 + np.exp(-z))


def by_hand():
    """The document's chain rule, scalar by scalar, in NumPy (no matrices, no JAX)."""
    x1, x2 = X[0]
    y1, y2 = Y[0]
    h1 = sig(W1 * x1 + W3 * x2)
    h2 = sig(W2 * x1 + W4 * x2)
    o1 = sig(W5 * h1 + W7 * h2)
    o2 = sig(W6 * h1 + W8 * h2)
    error = 0.5 * (o1 - y1) ** 2 + 0.5 * (o2 - y2) ** 2
    delta_o1, delta_o2 = o1 - y1, o2 - y2          # dError/do
    s_o1, s_o2 = delta_o1 * o1 * (1 - o1), delta_o2 * o2 * (1 - o2)  # dError/dIn_o
    d5, d7 = s_o1 * h1, s_o1 * h2
    d6, d8 = s_o2 * h1, s_o2 * h2
    s_h1 = (s_o1 * W5 + s_o2 * W6) * h1 * (1 - h1)  # the error signals times the weights
    s_h2 = (s_o1 * W7 + s_o2 * W8) * h2 * (1 - h2)
    d1, d3 = s_h1 * x1, s_h1 * x2
    d2, d4 = s_h2 * x1, s_h2 * x2
    return dict(h=(h1, h2), o=(o1, o2), error=error, delta_o=(delta_o1, delta_o2),
                d=(d1, d2, d3, d4, d5, d6, d7, d8))


def test_doc002_forward_equals_numpy_to_1e_12():
    ref = by_hand()
    net = doc002_net()
    loss = jaxbp.half_mse()

    @jax.jit  # one program (op by op, every operation compiles on its own)
    def forward(params, x, y):
        out, residuals = net.forward(params, x)
        return out, residuals, loss.forward(out, y)[0]

    with jax.enable_x64(True):
        out, residuals, value = forward(doc002_params(), X, Y)
        # residuals[1] are the hidden sigmoid's: its output h.
        np.testing.assert_allclose(residuals[1].y, [ref["h"]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out, [ref["o"]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(value, ref["error"], rtol=0, atol=1e-12)


def test_doc002_gradients_equal_hand_chain_rule_to_1e_12():
    ref = by_hand()
    d1, d2, d3, d4, d5, d6, d7, d8 = ref["d"]
    with jax.enable_x64(True):
        value, grads = jax.jit(jaxbp.value_and_grad(doc002_net(), jaxbp.half_mse()))(
            doc002_params(), X, Y)
    assert isinstance(grads, tuple) and grads[1] == () and grads[3] == ()
    np.testing.assert_allclose(value, ref["error"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads[0]["w"], [[d1, d2], [d3, d4]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads[2]["w"], [[d5, d6], [d7, d8]], rtol=0, atol=1e-12)


def test_doc002_printed_figures():
    """The document's printed numbers at its printed precision (two decimals)."""
    ref = by_hand()
    # 002, lines "h1 = sigmoid(...) = 0.56", "h2 = ... = 0.50", "o1 = ... = 0.48",
    # "o2 = ... = 0.53", "Error = ... = 0.21".
    np.testing.assert_allclose(ref["h"], (0.56, 0.50), atol=0.005)
    np.testing.assert_allclose(ref["o"], (0.48, 0.53), atol=0.005)
    np.testing.assert_allclose(ref["error"], 0.21, atol=0.005)
    # 002, "delta_o1 = o1 - 0.23 = 0.25", "delta_o2 = o2 - (-0.07) = 0.60".
    np.testing.assert_allclose(ref["delta_o"], (0.25, 0.60), atol=0.005)
    # 002, "delta5 = ... = 0.03", "delta7 = 0.03", "delta6 = 0.08", "delta8 = 0.07".
    d1, d2, d3, d4, d5, d6, d7, d8 = ref["d"]
    np.testing.assert_allclose((d5, d7, d6, d8), (0.03, 0.03, 0.08, 0.07), atol=0.005)
    # 002 prints d1..d4 = 0.01 from the slip "(delta5 + delta6) * h1 (1 - h1) * x1"; the
    # chain rule gives -0.0084, 0.0126, -0.0051, 0.0076: the magnitudes round to 0.01,
    # but d1 and d3 are negative (READING.md, document 002).
    np.testing.assert_allclose(np.abs((d1, d2, d3, d4)), 0.01, atol=0.005)
    assert d1 < 0 and d3 < 0 and d2 > 0 and d4 > 0
    np.testing.assert_allclose((d1, d2, d3, d4), (-0.0084, 0.0126, -0.0051, 0.0076),
                               atol=0.00005)


def test_serial_params_are_a_tuple_and_shapes_thread_through_init():
    net = jaxbp.serial(jaxbp.conv2d(4, 3), jaxbp.relu(), jaxbp.max_pool2d(2),
                       jaxbp.flatten(), jaxbp.dense(5), jaxbp.softmax())
    params, out_shape = init_shapes(net, (8, 9, 2))  # traced: shapes only
    assert isinstance(params, tuple) and len(params) == 6
    assert params[1] == params[2] == params[3] == params[5] == ()
    assert params[0]["w"].shape == (3, 3, 2, 4) and params[0]["b"].shape == (4,)
    # conv VALID: (6, 7, 4); pool 2 (floor): (3, 3, 4); flatten: 36.
    assert params[4]["w"].shape == (36, 5)
    assert out_shape == (5,)
    assert net.layers[0].name.startswith("conv2d") and len(net.layers) == 6
    y, _ = jax.eval_shape(net.forward, params, jax.ShapeDtypeStruct((2, 8, 9, 2), jnp.float32))
    assert y.shape == (2, 5)


def test_serial_init_gives_each_layer_its_own_key():
    net = jaxbp.serial(jaxbp.dense(3), jaxbp.dense(3))
    params, _ = net.init(jax.random.key(0), (3,))
    assert not np.allclose(params[0]["w"], params[1]["w"])


def test_serial_backward_uses_forward_time_params_in_reverse_order():
    """serial's backward equals composing the layers' backwards by hand."""
    a, b = jaxbp.dense(3), jaxbp.tanh()
    net = jaxbp.serial(a, b)

    @jax.jit  # one program (op by op, every operation compiles on its own)
    def both_ways(x, dy):
        params, _ = net.init(jax.random.key(1), (2,))
        _, residuals = net.forward(params, x)
        grads, dx = net.backward(params, residuals, dy)
        h, ra = a.forward(params[0], x)
        _, rb = b.forward((), h)
        _, dh = b.backward((), rb, dy)
        ga, dx_ref = a.backward(params[0], ra, dh)
        return grads, dx, ga, dx_ref

    with jax.enable_x64(True):
        grads, dx, ga, dx_ref = both_ways(np.array([[0.3, -0.7]]), np.array([[1.0, -2.0, 0.5]]))
        assert dx.dtype == np.float64
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-14)
        np.testing.assert_allclose(grads[0]["w"], ga["w"], rtol=1e-14)
        np.testing.assert_allclose(grads[0]["b"], ga["b"], rtol=1e-14)


def test_nested_serial_is_a_layer():
    inner = jaxbp.serial(jaxbp.dense(3), jaxbp.sigmoid())
    net = jaxbp.serial(inner, jaxbp.dense(2))
    params, out_shape = net.init(jax.random.key(0), (4,))
    assert isinstance(params[0], tuple) and out_shape == (2,)
    assert_layer_matches_autodiff(net, (4,), batch=2, eager=False)


@pytest.mark.parametrize("bad", [(), ({"w": 1},)])
def test_serial_wrong_number_of_params(bad):
    net = doc002_net()
    with pytest.raises(ValueError, match=r"params must be a tuple of 4 entries"):
        net.forward(bad, np.ones((1, 2), np.float32))


# ------------------------------------------------------ names, repr and summary

REBUILT = [  # (layer, the name that rebuilds it)
    (jaxbp.dense(3), "dense(3)"), (jaxbp.dense(3, bias=False), "dense(3, bias=False)"),
    (jaxbp.dense(2, dtype=jnp.bfloat16), "dense(2, dtype='bfloat16')"),
    (jaxbp.conv2d(8, 3, padding="same"), "conv2d(8, 3, stride=1, padding='SAME')"),
    (jaxbp.conv2d(8, (2, 3), stride=(1, 2), padding=((1, 0), (0, 1))),
     "conv2d(8, (2, 3), stride=(1, 2), padding=((1, 0), (0, 1)))"),
    (jaxbp.conv2d(4, 3, padding=1, bias=False),
     "conv2d(4, 3, stride=1, padding=1, bias=False)"),
    (jaxbp.conv1d(4, 5, stride=2, padding=(1, 2)), "conv1d(4, 5, stride=2, padding=(1, 2))"),
    (jaxbp.max_pool2d(2), "max_pool2d(2)"),
    (jaxbp.max_pool2d((2, 3), stride=1), "max_pool2d((2, 3), stride=1)"),
    (jaxbp.max_pool1d(3, 2), "max_pool1d(3, stride=2)"),
    (jaxbp.relu(), "relu()"), (jaxbp.sigmoid(), "sigmoid()"), (jaxbp.tanh(), "tanh()"),
    (jaxbp.softmax(), "softmax()"), (jaxbp.flatten(), "flatten()"),
    (jaxbp.serial(jaxbp.conv1d(2, 3), jaxbp.relu(),
                  jaxbp.serial(jaxbp.flatten(), jaxbp.dense(1))),
     "serial(conv1d(2, 3, stride=1, padding='VALID'), relu(), serial(flatten(), "
     "dense(1)))"),
]


def _qualify(name):
    """'serial(dense(2), relu())' -> 'jaxbp.serial(jaxbp.dense(2), jaxbp.relu())'."""
    return re.sub(r"\b(serial|dense|conv1d|conv2d|max_pool1d|max_pool2d|relu|sigmoid|"
                  r"tanh|softmax|flatten)\(", r"jaxbp.\1(", name)


@pytest.mark.parametrize("layer, name", REBUILT, ids=[name for _, name in REBUILT])
def test_every_name_rebuilds_its_layer(layer, name):
    assert layer.name == name
    rebuilt = eval(_qualify(name), {"jaxbp": jaxbp})
    assert isinstance(rebuilt, jaxbp.Layer) and rebuilt.name == name


def test_the_name_in_errors_has_stride_and_padding():
    """conv2d(8, 3, padding="SAME") used to be called conv2d(8, 3) in its errors."""
    with pytest.raises(ValueError, match=re.escape(
            "conv2d(8, 3, stride=1, padding='SAME'): input_shape must have 3 entries")):
        jaxbp.conv2d(8, 3, padding="SAME").init(jax.random.key(0), (5, 5))


def test_repr_is_readable():
    """repr(net) used to print raw function objects."""
    net = jaxbp.serial(jaxbp.conv2d(8, 3, padding="SAME"), jaxbp.relu())
    assert repr(net) == ("<jaxbp.Layer serial(conv2d(8, 3, stride=1, padding='SAME'), "
                         "relu())>")
    assert "function" not in repr(net) and "function" not in str([net])
    assert repr(jaxbp.half_mse()) == "<jaxbp.Loss half_mse>"


def test_summary_prints_shapes_and_parameter_counts(capsys):
    net = jaxbp.serial(jaxbp.conv2d(8, 3, padding="SAME"), jaxbp.relu(), jaxbp.max_pool2d(2),
                       jaxbp.serial(jaxbp.flatten(), jaxbp.dense(10)), jaxbp.softmax())
    text = jaxbp.summary(net, (28, 28, 1))
    assert capsys.readouterr().out == text + "\n"
    rows = {line.split("  ")[0].strip(): line.split() for line in text.splitlines()}
    # conv: 3 * 3 * 1 * 8 + 8 = 80; dense: 14 * 14 * 8 * 10 + 10 = 15,690.
    assert rows["conv2d(8, 3, stride=1, padding='SAME')"][-4:] == ["(28,", "28,", "8)",
                                                                    "80"]
    assert rows["max_pool2d(2)"][-4:] == ["(14,", "14,", "8)", "0"]
    assert rows["serial(flatten(), dense(10))"][-2:] == ["(10,)", "15,690"]
    assert "  dense(10)" in text  # the inner network's layers, indented
    assert text.splitlines()[-1] == "total: 15,770 parameters (61.60 KB)"
    params, _ = net.init(jax.random.key(0), (28, 28, 1))
    assert sum(a.size for a in jax.tree.leaves(params)) == 15_770


def test_summary_of_one_layer_and_of_a_wrong_shape():
    text = jaxbp.summary(jaxbp.dense(4), (3,), print_fn=None)
    assert "dense(4)" in text and text.endswith("total: 16 parameters (64 B)")
    # dense takes any rank >= 1 (the last axis); conv2d needs (height, width, channels).
    with pytest.raises(ValueError, match=re.escape("input_shape must have 3 entries")):
        jaxbp.summary(jaxbp.serial(jaxbp.dense(4), jaxbp.conv2d(2, 3)), (3, 3),
                      print_fn=None)
