"""The layers beyond the documents against PyTorch's autograd, in float64.

An independent implementation of the same layers: forward values, input gradients and
parameter gradients (and batch norm's running statistics, training and evaluation) must
agree. PyTorch is optional: the module is skipped when it is not installed. PyTorch's
layout is channels-first, jaxbp's channels-last; the tests transpose.
"""

import importlib
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

# PyTorch takes 1.5 s to import, and every pytest worker collects this module: it is
# looked up here and imported by the first test that uses it. Collection asks every
# module attribute for private names (pytest's fixture parsing: ``_mock_name``,
# ``__wrapped__``), which are answered without importing: the tests use public ones.
if importlib.util.find_spec("torch") is None:
    pytest.skip("PyTorch is not installed", allow_module_level=True)


class _Torch:
    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(importlib.import_module("torch"), name)


torch = _Torch()

RTOL = 1e-10
ATOL = 1e-12


def ours(layer, params, x, dy, *, state=None, train=None, key=None):
    """y, dx, dparams from jaxbp in float64 (apply when a mode is given)."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x = jnp.asarray(x)
        if train is None:
            y, residuals = layer.forward(params, x)
            new_state = None
        else:
            y, residuals, new_state = jaxbp.apply(layer, params, state, x, key=key,
                                                  train=train)
        dparams, dx = layer.backward(params, residuals, jnp.asarray(dy, jnp.float64))
    return np.asarray(y), None if dx is None else np.asarray(dx), dparams, new_state


def theirs(module, x, dy, *, channels_last=False):
    """y, dx and the module's parameter gradients by torch autograd (dy given)."""
    xt = torch.tensor(np.asarray(x))
    if channels_last:
        xt = xt.movedim(-1, 1)
    if xt.is_floating_point():
        xt.requires_grad_(True)
    y = module(xt)
    dyt = torch.tensor(np.asarray(dy))
    if channels_last:
        dyt = dyt.movedim(-1, 1)
    y.backward(dyt)
    yt = y.detach()
    dx = xt.grad if xt.is_floating_point() else None
    if channels_last:
        yt = yt.movedim(1, -1)
        dx = None if dx is None else dx.movedim(1, -1)
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return yt.numpy(), None if dx is None else dx.numpy(), grads


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


def test_layer_norm_against_torch():
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(2, 3, 6)), rng.normal(size=(2, 3, 6))
    scale, bias = rng.normal(size=6), rng.normal(size=6)
    module = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(scale))
        module.bias.copy_(torch.tensor(bias))
    y, dx, dparams, _ = ours(jaxbp.layer_norm(), {"scale": scale, "bias": bias}, x, dy)
    ty, tdx, tg = theirs(module, x, dy)
    close(y, ty)
    close(dx, tdx)
    close(dparams["scale"], tg["weight"])
    close(dparams["bias"], tg["bias"])


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2)], ids=["BatchNorm1d", "BatchNorm2d"])
def test_batch_norm_against_torch_training_then_evaluation(shape):
    """Three training steps (running statistics updated each time, PyTorch's momentum
    being 1 - ours), then evaluation with the running statistics."""
    rng = np.random.default_rng(1)
    c = shape[-1]
    module_cls = torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d
    module = module_cls(c, eps=1e-5, momentum=0.1, dtype=torch.float64)
    scale, bias = rng.normal(size=c), rng.normal(size=c)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(scale))
        module.bias.copy_(torch.tensor(bias))
    layer = jaxbp.batch_norm(momentum=0.9)
    params = {"scale": scale, "bias": bias}
    with jax.enable_x64(True):
        state = jaxbp.init_state(layer, jax.tree.map(jnp.asarray, params))
    channels_last = len(shape) == 4
    module.train()
    for step in range(3):
        x = rng.normal(size=shape) * (step + 1) + step
        dy = rng.normal(size=shape)
        module.zero_grad()
        y, dx, dparams, state = ours(layer, params, x, dy, state=state, train=True)
        ty, tdx, tg = theirs(module, x, dy, channels_last=channels_last)
        close(y, ty)
        close(dx, tdx)
        close(dparams["scale"], tg["weight"])
        close(dparams["bias"], tg["bias"])
        close(state["mean"], module.running_mean.numpy())
        close(state["var"], module.running_var.numpy())
    module.eval()
    module.zero_grad()
    x, dy = rng.normal(size=shape), rng.normal(size=shape)
    y, dx, dparams, _ = ours(layer, params, x, dy, state=state, train=False)
    ty, tdx, tg = theirs(module, x, dy, channels_last=channels_last)
    close(y, ty)
    close(dx, tdx)
    close(dparams["scale"], tg["weight"])
    close(dparams["bias"], tg["bias"])


@pytest.mark.parametrize("approximate", [True, False])
def test_gelu_against_torch(approximate):
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(3, 7)) * 2, rng.normal(size=(3, 7))
    module = torch.nn.GELU(approximate="tanh" if approximate else "none")
    y, dx, _, _ = ours(jaxbp.gelu(approximate), (), x, dy)
    ty, tdx, _ = theirs(module, x, dy)
    close(y, ty)
    close(dx, tdx)


def test_leaky_relu_against_torch():
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))  # no exact zeros
    y, dx, _, _ = ours(jaxbp.leaky_relu(0.2), (), x, dy)
    ty, tdx, _ = theirs(torch.nn.LeakyReLU(0.2), x, dy)
    close(y, ty)
    close(dx, tdx)


@pytest.mark.parametrize("n, window, stride, shape", [
    (1, 3, 2, (2, 8, 3)), (1, 2, None, (1, 7, 2)),
    (2, (2, 3), (1, 2), (2, 5, 7, 2)), (2, 2, None, (1, 5, 5, 3))])
def test_avg_pool_against_torch(n, window, stride, shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    layer = (jaxbp.avg_pool1d if n == 1 else jaxbp.avg_pool2d)(window, stride)
    module = (torch.nn.AvgPool1d if n == 1 else torch.nn.AvgPool2d)(window, stride)
    with jax.enable_x64(True):
        y_shape = layer.forward((), jnp.asarray(x))[0].shape
    dy = rng.normal(size=y_shape)
    y, dx, _, _ = ours(layer, (), x, dy)
    ty, tdx, _ = theirs(module, x, dy, channels_last=True)
    close(y, ty)
    close(dx, tdx)


def test_embedding_against_torch():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(7, 3))
    ids = np.array([[1, 4, 1, 6], [0, 1, 6, 6]])  # repeats
    dy = rng.normal(size=(2, 4, 3))
    module = torch.nn.Embedding(7, 3, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(w))
    y, dx, dparams, _ = ours(jaxbp.embedding(7, 3), {"w": w}, ids, dy)
    ty, _, tg = theirs(module, ids, dy)
    assert dx is None
    close(y, ty)
    close(dparams["w"], tg["weight"])


def test_residual_block_with_batch_norm_against_torch():
    """x + bn(dense(relu(bn(dense(x))))), training mode: the fork rule and both
    batch norms' backward through a whole block."""
    rng = np.random.default_rng(6)
    f = 4
    block = jaxbp.residual(jaxbp.dense(f), jaxbp.batch_norm(), jaxbp.relu(),
                           jaxbp.dense(f), jaxbp.batch_norm())
    w1, b1, w2, b2 = (rng.normal(size=s) for s in [(f, f), (f,), (f, f), (f,)])
    params = ({"w": w1, "b": b1}, {"scale": np.ones(f), "bias": np.zeros(f)}, (),
              {"w": w2, "b": b2}, {"scale": np.ones(f) * 0.5, "bias": np.ones(f)})
    x, dy = rng.normal(size=(5, f)), rng.normal(size=(5, f))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = torch.nn.Linear(f, f, dtype=torch.float64)
            self.n1 = torch.nn.BatchNorm1d(f, dtype=torch.float64)
            self.l2 = torch.nn.Linear(f, f, dtype=torch.float64)
            self.n2 = torch.nn.BatchNorm1d(f, dtype=torch.float64)

        def forward(self, x):
            return x + self.n2(self.l2(torch.relu(self.n1(self.l1(x)))))

    module = Block()
    with torch.no_grad():
        module.l1.weight.copy_(torch.tensor(w1.T))
        module.l1.bias.copy_(torch.tensor(b1))
        module.l2.weight.copy_(torch.tensor(w2.T))
        module.l2.bias.copy_(torch.tensor(b2))
        module.n2.weight.fill_(0.5)
        module.n2.bias.fill_(1.0)
    y, dx, dparams, _ = ours(block, params, x, dy)
    ty, tdx, tg = theirs(module, x, dy)
    close(y, ty)
    close(dx, tdx)
    close(dparams[0]["w"], tg["l1.weight"].T)
    close(dparams[3]["b"], tg["l2.bias"])
    close(dparams[4]["scale"], tg["n2.weight"])
    close(dparams[1]["bias"], tg["n1.bias"])
