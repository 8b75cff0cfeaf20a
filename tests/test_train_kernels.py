"""The convolution and pooling formulations chosen for training speed stay correct.

``jaxbp.layers.conv`` runs its forward pass as ``lax.conv_general_dilated`` or as
patches and one matmul (small windows), and computes the kernel gradient on explicitly
transposed operands; both forward paths are checked here on every geometry, by forcing
each in turn. Pools are checked on
overlapping and gapped windows. Inputs have no ties (distinct values) so that max-pool
gradients are unambiguous.
"""

import jax
import numpy as np
import pytest

import jaxbp
from helpers import assert_layer_matches_autodiff
from jaxbp.layers import conv as conv_module

GEOMETRIES_2D = [  # kernel, stride, padding, input shape (h, w, c)
    ((3, 3), 1, "SAME", (7, 7, 2)),
    ((2, 3), 2, "VALID", (7, 8, 3)),
    ((3, 2), 3, "SAME", (8, 7, 1)),
    ((3, 3), (1, 2), 1, (6, 7, 2)),
    ((1, 4), (3, 1), ((2, 0), (1, 3)), (5, 6, 2)),
    ((4, 4), 2, ((1, 2), (0, 1)), (9, 8, 1)),
]
GEOMETRIES_1D = [(3, 1, "SAME", (9, 2)), (4, 3, "VALID", (11, 1)), (2, 2, (1, 2), (7, 3)),
                 (5, 1, 2, (6, 2))]


def distinct(shape, seed=0):
    """Values that never tie, away from 0, in float64 (a NumPy array: nothing compiled)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    values = (rng.permutation(size) + 1.0) / size * rng.choice([-1.0, 1.0], size)
    return values.reshape(shape).astype(np.float64)


def check(layer, input_shape, batch=2):
    # backward vs jax.vjp in float64, jitted (one fast compile per case); finite
    # differences and eager runs are test_layers' business.
    assert_layer_matches_autodiff(layer, input_shape, batch=batch, eager=False,
                                  fd=False)


@pytest.fixture(params=["patches", "convolution"])
def forward_path(request, monkeypatch):
    """Forces the conv forward pass down one formulation."""
    monkeypatch.setattr(conv_module, "forward_formulation",
                        lambda ksize, c_in: request.param)
    return request.param


@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES_2D)
def test_conv2d_every_forward_path_every_geometry(forward_path, kernel, stride, padding,
                                                  shape):
    check(jaxbp.conv2d(3, kernel, stride=stride, padding=padding), shape)


@pytest.mark.parametrize("kernel, stride, padding, shape", GEOMETRIES_1D)
def test_conv1d_every_forward_path_every_geometry(forward_path, kernel, stride, padding,
                                                  shape):
    check(jaxbp.conv1d(2, kernel, stride=stride, padding=padding), shape)


def test_the_forward_paths_agree_and_the_choice_follows_the_shapes(monkeypatch):
    layer = jaxbp.conv2d(4, (3, 2), stride=(2, 1), padding="SAME")
    with jax.enable_x64(True):
        params, _ = layer.init(jax.random.key(0), (6, 5, 1))
        x = distinct((2, 6, 5, 1))
        outs = []
        for how in ("patches", "convolution"):
            monkeypatch.setattr(conv_module, "forward_formulation",
                                lambda ksize, c_in, how=how: how)
            # A fresh jit traces with the formulation just set: one program per path
            # (op by op, the patches alone compile a dozen).
            outs.append(np.asarray(jax.jit(lambda p, x: layer.forward(p, x)[0])(params, x)))
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-12, atol=1e-12)
    monkeypatch.undo()
    choose = conv_module.forward_formulation
    assert choose((3, 3), 1) == "patches" and choose((3, 3), 3) == "patches"
    assert choose((3, 3), 8) == "convolution" and choose((5,), 4) == "patches"


@pytest.mark.parametrize("window, stride, shape", [
    (2, None, (6, 7, 2)), ((2, 3), None, (5, 7, 1)), (3, 1, (6, 6, 2)),
    ((3, 2), (2, 1), (7, 6, 1)), (2, 3, (8, 8, 2)), (3, 2, (7, 7, 1))])
def test_max_pool2d_overlapping_gapped_and_non_square(window, stride, shape):
    check(jaxbp.max_pool2d(window, stride), shape)


def test_kernel_gradient_is_the_same_inside_lax_scan():
    # The kernel gradient is laid out for XLA inside loops too; it must also be right
    # there, not only fast.
    layer = jaxbp.conv2d(4, 3, padding="SAME")
    params, _ = layer.init(jax.random.key(0), (8, 8, 3))
    rng = np.random.default_rng(1)  # drawn by NumPy: nothing compiled
    xs = rng.standard_normal((3, 2, 8, 8, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)

    def grad_w(x):
        _, res = layer.forward(params, x)
        return layer.backward(params, res, dy)[0]["w"]

    def vjp_w(x):  # the reference: jax.vjp of the forward
        _, vjp = jax.vjp(lambda w: layer.forward({**params, "w": w}, x)[0], params["w"])
        return vjp(dy)[0]

    # One program: the hand-written gradient inside lax.scan, and the reference on each
    # slice outside any loop (op by op, the references compiled some 25 programs).
    @jax.jit
    def scanned_and_reference(xs):
        scanned = jax.lax.scan(lambda c, x: (c, grad_w(x)), 0, xs)[1]
        return scanned, [vjp_w(xs[i]) for i in range(3)]

    scanned, reference = jax.tree.map(np.asarray, scanned_and_reference(xs))
    for i in range(3):
        np.testing.assert_allclose(scanned[i], reference[i], rtol=2e-5, atol=2e-5)
