"""Convolutions whose input gradient made XLA's CPU compiler abort compute it correctly.

On these geometries ``jax.vjp`` of ``lax.conv_general_dilated`` (and jaxbp's input
gradient before it routed them elsewhere) kill the process while compiling: a failed
check in XLA's algebraic simplifier, SIGABRT. They run here in one child process, so
that a regression fails the test instead of killing pytest; the child writes its
gradients to a file, compared here with ``jax.vjp`` of the forward's patches
formulation (slices and a matmul, no convolution for XLA to rewrite) and with PyTorch
when it is installed. ``benchmarks/conv_sweep.py`` finds such geometries.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.layers import conv as conv_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# conv{n}d(3 features, kernel, stride, padding) on x of shape (2, *sizes, c_in).
# The first is the one reported; all aborted through jax.vjp with jax 0.10.2.
ABORTING = [
    ((5, 6), (6, 2), (4, 2), 1, 2),
    ((4, 4), (2, 6), (2, 2), 1, 2),
    ((5, 8), (5, 2), (1, 2), ((2, 0), (1, 2)), 1),
    ((6, 4), (2, 5), (2, 3), ((1, 2), (2, 0)), 5),
    ((8, 5), (2, 4), (2, 2), ((1, 2), (0, 0)), 2),
]
# Geometries the usual formulation handles: the scatter formulation must agree there.
ORDINARY = [
    ((7, 8), (2, 3), (2, 2), "VALID", 2),
    ((6, 5), (3, 2), (2, 1), ((1, 2), (0, 1)), 1),
    ((9,), (4,), (3,), ((2, 1),), 2),
]

CHILD = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_numpy_rank_promotion", "raise")
import jaxbp
from jaxbp.layers import conv as C

cases, out = json.loads(sys.argv[1]), sys.argv[2]

# The reported reproduction, verbatim: float32, eager.
layer = jaxbp.conv2d(4, (6, 2), stride=(4, 2), padding=1)
p, _ = layer.init(jax.random.key(0), (5, 6, 2))
y, r = layer.forward(p, jnp.ones((3, 5, 6, 2)))
grads, dx = layer.backward(p, r, jnp.ones_like(y))
results = {"repro_dx": np.asarray(dx, np.float64),
           "repro_dw": np.asarray(grads["w"], np.float64),
           "repro_x": np.ones((3, 5, 6, 2)), "repro_w": np.asarray(p["w"], np.float64)}

# The sample, jitted as in training, in float64 for a tight comparison.
jax.config.update("jax_enable_x64", True)

def patches_conv(x, w, strides, pads):
    # The forward as slices and one matmul: its vjp has no convolution in it.
    p = jnp.concatenate(C.window_slices(x, w.shape[:-2], strides, pads), axis=-1)
    return p @ w.reshape(-1, w.shape[-1])

for i, (sizes, kernel, stride, padding, c_in) in enumerate(cases):
    n = len(sizes)
    padding = padding if isinstance(padding, (str, int)) else [tuple(q) for q in padding]
    make = jaxbp.conv1d if n == 1 else jaxbp.conv2d
    layer = make(3, tuple(kernel), stride=tuple(stride), padding=padding)
    rng = np.random.default_rng(i)
    x = jnp.asarray(rng.standard_normal((2, *sizes, c_in)), jnp.float64)
    params, out_shape = layer.init(jax.random.key(i), tuple(sizes) + (c_in,))
    dy = jnp.asarray(rng.standard_normal((2, *out_shape)), jnp.float64)

    pads = C.explicit_padding(C.normalize_padding(padding, n, "test"), tuple(sizes),
                              tuple(kernel), tuple(stride))

    def step(params, x, dy):
        y, res = layer.forward(params, x)
        grads, dx = layer.backward(params, res, dy)
        # the reference in the same program (one compilation a geometry)
        ref = jax.vjp(lambda x, w: patches_conv(x, w, tuple(stride), pads),
                      x, params["w"])[1](dy)
        return y, grads, dx, ref

    y, grads, dx, (ref_dx, ref_dw) = jax.jit(step)(params, x, dy)
    results.update({f"{i}_x": x, f"{i}_w": params["w"], f"{i}_b": params["b"],
                    f"{i}_dy": dy, f"{i}_y": y, f"{i}_dx": dx, f"{i}_dw": grads["w"],
                    f"{i}_db": grads["b"], f"{i}_ref_dx": ref_dx, f"{i}_ref_dw": ref_dw,
                    f"{i}_pads": np.asarray(pads)})
np.savez(out, **{k: np.asarray(v) for k, v in results.items()})
"""


@pytest.fixture(scope="module")
def child_results(tmp_path_factory):
    """Runs every aborting geometry in one child process and loads its gradients."""
    out = tmp_path_factory.mktemp("conv_abort") / "results.npz"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(ABORTING), str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        lines = [s for s in proc.stderr.splitlines() if not s.lstrip().startswith("@")]
        why = " (SIGABRT: XLA aborted while compiling)" if proc.returncode == -6 else ""
        pytest.fail(f"the child process exited with {proc.returncode}{why}:\n"
                    + "\n".join(lines[-15:]))
    with np.load(out) as data:
        return dict(data)


def test_the_reported_convolution_backward_runs(child_results):
    # dy is all ones: dw[j] = sum over the windows of the input under offset j.
    dx, dw = child_results["repro_dx"], child_results["repro_dw"]
    assert dx.shape == (3, 5, 6, 2) and dw.shape == (6, 2, 2, 4)
    x, w = child_results["repro_x"], child_results["repro_w"]
    with jax.enable_x64(True):
        ref_dx, ref_dw = jax.vjp(
            lambda x, w: jnp.concatenate(conv_module.window_slices(
                x, (6, 2), (4, 2), ((1, 1), (1, 1))), axis=-1) @ w.reshape(-1, 4),
            jnp.asarray(x), jnp.asarray(w))[1](jnp.ones((3, 1, 4, 4), jnp.float64))
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("i", range(len(ABORTING)))
def test_aborting_geometries_match_the_patches_vjp(child_results, i):
    r = child_results
    np.testing.assert_allclose(r[f"{i}_dx"], r[f"{i}_ref_dx"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r[f"{i}_dw"], r[f"{i}_ref_dw"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r[f"{i}_db"], r[f"{i}_dy"].sum(axis=tuple(
        range(r[f"{i}_dy"].ndim - 1))), rtol=1e-12)


@pytest.mark.parametrize("i", range(len(ABORTING)))
def test_aborting_geometries_match_torch(child_results, i):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    r = child_results
    n = r[f"{i}_x"].ndim - 2
    stride = ABORTING[i][2]
    xt = torch.tensor(np.moveaxis(r[f"{i}_x"], -1, 1), requires_grad=True)
    wt = torch.tensor(np.moveaxis(np.moveaxis(r[f"{i}_w"], -1, 0), -1, 1),
                      requires_grad=True)
    bt = torch.tensor(r[f"{i}_b"], requires_grad=True)
    flat = [int(v) for lo_hi in r[f"{i}_pads"][::-1] for v in lo_hi]
    yt = (F.conv1d if n == 1 else F.conv2d)(F.pad(xt, flat), wt, bt, stride=stride)
    yt.backward(torch.tensor(np.moveaxis(r[f"{i}_dy"], -1, 1)))
    np.testing.assert_allclose(r[f"{i}_y"], np.moveaxis(yt.detach().numpy(), 1, -1),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r[f"{i}_dx"], np.moveaxis(xt.grad.numpy(), 1, -1),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        r[f"{i}_dw"], np.moveaxis(np.moveaxis(wt.grad.numpy(), 0, -1), 0, -2),
        rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sizes, kernel, stride, padding, c_in", ABORTING)
def test_aborting_geometries_take_the_scatter_formulation(sizes, kernel, stride, padding,
                                                          c_in):
    n = len(sizes)
    padding = padding if isinstance(padding, (str, int)) else tuple(map(tuple, padding))
    pads = conv_module.explicit_padding(conv_module.normalize_padding(padding, n, "test"),
                                        sizes, kernel, stride)
    outs = conv_module.output_sizes(sizes, kernel, stride, pads)
    assert conv_module.input_grad_formulation(kernel, stride, pads, sizes,
                                              outs) == "scatter"


def test_ordinary_geometries_keep_the_convolution():
    # W4's layers (3x3 SAME, stride 1), a strided 2x2 kernel with padding, conv1d.
    assert conv_module.input_grad_formulation((3, 3), (1, 1), ((1, 1), (1, 1)), (28, 28),
                                              (28, 28)) == "convolution"
    assert conv_module.input_grad_formulation((2, 2), (2, 2), ((0, 0), (0, 0)), (8, 8),
                                              (4, 4)) == "convolution"
    assert conv_module.input_grad_formulation((2,), (2,), ((1, 1),), (6,),
                                              (4,)) == "convolution"


@pytest.mark.parametrize("sizes, kernel, stride, padding, c_in", ORDINARY)
def test_scatter_and_convolution_formulations_agree(sizes, kernel, stride, padding, c_in):
    pads = conv_module.explicit_padding(padding, sizes, kernel, stride)
    outs = conv_module.output_sizes(sizes, kernel, stride, pads)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        w = jnp.asarray(rng.standard_normal((*kernel, c_in, 3)), jnp.float64)
        dy = jnp.asarray(rng.standard_normal((2, *outs, 3)), jnp.float64)
        got = [np.asarray(conv_module.conv_input_grad(dy, w, sizes, stride, pads, how=how))
               for how in ("scatter", "convolution")]
    assert got[0].shape == (2, *sizes, c_in)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12, atol=1e-12)


def test_an_unknown_formulation_is_refused():
    dy, w = jnp.zeros((1, 2, 2, 1), jnp.float32), jnp.zeros((2, 2, 1, 1), jnp.float32)
    with pytest.raises(ValueError, match="'convolution' or 'scatter', got 'col2im'"):
        conv_module.conv_input_grad(dy, w, (3, 3), (1, 1), ((0, 0), (0, 0)), how="col2im")
