"""Parameter initialisation (jaxbp._random): the same values eagerly, under jit and
under vmap; the documented scales; and no compilation per new parameter shape."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

LAYERS = [
    (lambda: jaxbp.dense(5), (7,)),
    (lambda: jaxbp.conv2d(4, 3, padding="SAME"), (6, 6, 2)),
    (lambda: jaxbp.conv1d(3, 2), (9, 2)),
    (lambda: jaxbp.causal_self_attention(2), (5, 8)),
    (lambda: jaxbp.lstm(4), (5, 3)),
    (lambda: jaxbp.rnn(4), (5, 3)),
    (lambda: jaxbp.embedding(11, 6), (5,)),
    (lambda: jaxbp.position_embedding(9), (5, 6)),
    (lambda: jaxbp.layer_norm(), (5, 6)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_init_is_the_same_eagerly_under_jit_and_under_vmap(make, shape):
    layer = make()
    keys = jax.random.split(jax.random.key(3), 2)
    eager = [layer.init(k, shape)[0] for k in keys]

    # Under jit, and vmapped, in one compiled program: the vmapped init run eagerly
    # would compile each of its (batched) operations on its own.
    @jax.jit
    def jitted_and_mapped(keys):
        init = lambda k: layer.init(k, shape)[0]  # noqa: E731
        return init(keys[0]), jax.vmap(init)(keys)

    jitted, mapped = jax.tree.map(np.asarray, jitted_and_mapped(keys))  # index in NumPy
    for a, b in zip(jax.tree.leaves(eager[0]), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_equal(a, b)
    for i in range(2):
        for a, b in zip(jax.tree.leaves(eager[i]), jax.tree.leaves(mapped), strict=True):
            np.testing.assert_array_equal(a, b[i])
    random = [leaf for leaf in jax.tree.leaves(eager[0]) if np.unique(leaf).size > 1]
    if random:  # another key, other values
        other = jax.tree.leaves(layer.init(jax.random.key(4), shape)[0])
        assert any(not np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(eager[0]), other))


def test_scales_and_independent_streams():
    w = jaxbp.dense(512).init(jax.random.key(0), (400,))[0]["w"]
    assert w.dtype == jnp.float32
    w = np.asarray(w)  # statistics in NumPy: jnp's would compile a program each
    assert float(np.std(w)) == pytest.approx(1 / np.sqrt(400), rel=0.02)
    assert abs(float(np.mean(w))) < 3e-3
    p = jaxbp.lstm(64).init(jax.random.key(0), (3, 64))[0]
    bound = 1 / np.sqrt(64)
    for leaf in jax.tree.leaves(p):
        assert float(np.max(np.abs(np.asarray(leaf)))) <= bound
    # wx and wh have the same shape here: distinct streams, not the same draw
    assert not np.array_equal(p["wx"], p["wh"])
    with jax.enable_x64(True):
        w64 = jaxbp.dense(3, dtype=jnp.float64).init(jax.random.key(0), (4,))[0]["w"]
        assert w64.dtype == jnp.float64
    w16 = jaxbp.dense(3, dtype=jnp.bfloat16).init(jax.random.key(0), (4,))[0]["w"]
    assert w16.dtype == jnp.bfloat16


def test_a_new_parameter_shape_compiles_nothing(caplog):
    # the one compiled draw and the key derivation, once per process
    jaxbp.serial(jaxbp.dense(3)).init(jax.random.key(0), (2,))
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING, logger="jax"):
            net = jaxbp.serial(jaxbp.conv2d(7, 3, padding="SAME"), jaxbp.relu(),
                               jaxbp.flatten(), jaxbp.dense(13))
            net.init(jax.random.key(1), (5, 5, 3))
    finally:
        jax.config.update("jax_log_compiles", False)
    compiled = [r.getMessage() for r in caplog.records if "ompil" in r.getMessage()]
    assert compiled == []
