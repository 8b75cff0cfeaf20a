"""Document 001: every partial derivative of a 3-2-2 sigmoid network, in closed form.

``z^2 = x W^2``, ``a^2 = f(z^2)``, ``z^3 = a^2 W^3``, ``Y = a^3 = f(z^3)``,
``E = 1/2 [(Y1 - Ŷ1)^2 + (Y2 - Ŷ2)^2]``, no biases; ``w^l_{jk}`` joins unit ``j`` of
layer ``l - 1`` to unit ``k`` of layer ``l`` (the library's ``w[j, k]``). The document
derives ``dE/dY``, ``dE/dz^3``, ``dE/dw^3_{jk}``, ``dE/da^2``, ``dE/dz^2``,
``dE/dw^2_{jk}`` and ``f'(z) = f - f^2``, one entry at a time; each function below
writes the same entries the same way (indices 1-based in the comments, as in the
document) and is checked against ``jax.grad`` of the network built from jaxbp layers.

The document has no numbers, and its derivation is right throughout (docs/reading.md
has the whole reading of the five documents).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxbp
from jaxbp.notes._example import Formula, FormulaExample

NAME = "001"
TITLE = "Every partial derivative of a 3-2-2 sigmoid network, in closed form"
TITLE_ZH = "BP 算法模型总览：3-2-2 网络的全部偏导"
SUMMARY = ("The chain rule one entry at a time for a 3-2-2 sigmoid MLP without biases "
           "and squared error: dE/dY, dE/dz3, dE/dw3, dE/da2, dE/dz2, dE/dw2, f' = f - f^2.")
SUMMARY_ZH = "正向传播与反向传播：从 E 开始逐个求 Y、z、w、a 的偏导，f'(z) = f - f²。"

_NET = jaxbp.serial(jaxbp.dense(2, bias=False), jaxbp.sigmoid(),
                    jaxbp.dense(2, bias=False), jaxbp.sigmoid())


def _forward(x, W2, W3):
    """The document's forward pass, written out: (a2, a3). Shapes (3,), (3, 2), (2, 2)."""
    z2 = jnp.stack([x[0] * W2[0, 0] + x[1] * W2[1, 0] + x[2] * W2[2, 0],   # z^2_1
                    x[0] * W2[0, 1] + x[1] * W2[1, 1] + x[2] * W2[2, 1]])  # z^2_2
    a2 = 1 / (1 + jnp.exp(-z2))
    z3 = jnp.stack([a2[0] * W3[0, 0] + a2[1] * W3[1, 0],                   # z^3_1
                    a2[0] * W3[0, 1] + a2[1] * W3[1, 1]])                  # z^3_2
    a3 = 1 / (1 + jnp.exp(-z3))
    return a2, a3


# ----------------------------------------------------------- the document's expressions


def dE_dY(x, W2, W3, Yhat):
    """一、dE/dY_k = Y_k - Ŷ_k. Shape (2,)."""
    _, Y = _forward(x, W2, W3)
    return jnp.stack([Y[0] - Yhat[0], Y[1] - Yhat[1]])


def dE_dz3(x, W2, W3, Yhat):
    """二、dE/dz^3_k = (Y_k - Ŷ_k) (a^3_k - (a^3_k)^2). Shape (2,)."""
    _, a3 = _forward(x, W2, W3)
    Y = a3
    return jnp.stack([(Y[0] - Yhat[0]) * (a3[0] - a3[0] ** 2),
                      (Y[1] - Yhat[1]) * (a3[1] - a3[1] ** 2)])


def dE_dw3(x, W2, W3, Yhat):
    """三、dE/dw^3_{jk} = (Y_k - Ŷ_k) (a^3_k - (a^3_k)^2) a^2_j. Shape (2, 2), [j, k]."""
    a2, a3 = _forward(x, W2, W3)
    Y = a3
    return jnp.array([
        [(Y[0] - Yhat[0]) * (a3[0] - a3[0] ** 2) * a2[0],    # w^3_11
         (Y[1] - Yhat[1]) * (a3[1] - a3[1] ** 2) * a2[0]],   # w^3_12
        [(Y[0] - Yhat[0]) * (a3[0] - a3[0] ** 2) * a2[1],    # w^3_21
         (Y[1] - Yhat[1]) * (a3[1] - a3[1] ** 2) * a2[1]]])  # w^3_22


def dE_da2(x, W2, W3, Yhat):
    """四、dE/da^2_j = sum_k (Y_k - Ŷ_k) (a^3_k - (a^3_k)^2) w^3_{jk}. Shape (2,)."""
    _, a3 = _forward(x, W2, W3)
    Y = a3
    return jnp.stack([
        (Y[0] - Yhat[0]) * (a3[0] - a3[0] ** 2) * W3[0, 0]
        + (Y[1] - Yhat[1]) * (a3[1] - a3[1] ** 2) * W3[0, 1],   # a^2_1
        (Y[0] - Yhat[0]) * (a3[0] - a3[0] ** 2) * W3[1, 0]
        + (Y[1] - Yhat[1]) * (a3[1] - a3[1] ** 2) * W3[1, 1]])  # a^2_2


def dE_dz2(x, W2, W3, Yhat):
    """五、dE/dz^2_j = [sum_k (Y_k - Ŷ_k)(a^3_k - (a^3_k)^2) w^3_{jk}] (a^2_j - (a^2_j)^2)."""
    a2, _ = _forward(x, W2, W3)
    g = dE_da2(x, W2, W3, Yhat)
    return jnp.stack([g[0] * (a2[0] - a2[0] ** 2), g[1] * (a2[1] - a2[1] ** 2)])


def dE_dw2(x, W2, W3, Yhat):
    """六、dE/dw^2_{ij} = [...](a^2_j - (a^2_j)^2) x_i. Shape (3, 2), [i, j]."""
    d = dE_dz2(x, W2, W3, Yhat)
    return jnp.array([[d[0] * x[0], d[1] * x[0]],    # w^2_11, w^2_12
                      [d[0] * x[1], d[1] * x[1]],    # w^2_21, w^2_22
                      [d[0] * x[2], d[1] * x[2]]])   # w^2_31, w^2_32


def sigmoid_prime(z):
    """Ps: df/dz = e^{-z} / (1 + e^{-z})^2 = f - f^2 (the document's last step)."""
    f = 1 / (1 + jnp.exp(-z))
    return f - f ** 2


def sigmoid_prime_unsimplified(z):
    """Ps: df/dz = e^{-z} / (1 + e^{-z})^2, before it is written in terms of f."""
    return jnp.exp(-z) / (1 + jnp.exp(-z)) ** 2


# ------------------------------------------------------------- the autodiff references


def _E_of_params(W2, W3, x, Yhat):
    y, _ = _NET.forward(({"w": W2}, (), {"w": W3}, ()), x[None, :])
    return 0.5 * jnp.sum((y[0] - Yhat) ** 2)


def _ref_dY(x, W2, W3, Yhat):
    _, Y = _forward(x, W2, W3)
    return jax.grad(lambda Y: 0.5 * jnp.sum((Y - Yhat) ** 2))(Y)


def _ref_dz3(x, W2, W3, Yhat):
    a2, _ = _forward(x, W2, W3)
    z3 = a2 @ W3
    return jax.grad(lambda z: 0.5 * jnp.sum((jax.nn.sigmoid(z) - Yhat) ** 2))(z3)


def _ref_da2(x, W2, W3, Yhat):
    a2, _ = _forward(x, W2, W3)
    return jax.grad(lambda a: 0.5 * jnp.sum((jax.nn.sigmoid(a @ W3) - Yhat) ** 2))(a2)


def _ref_dz2(x, W2, W3, Yhat):
    z2 = x @ W2
    return jax.grad(lambda z: 0.5 * jnp.sum(
        (jax.nn.sigmoid(jax.nn.sigmoid(z) @ W3) - Yhat) ** 2))(z2)


def _ref_dw3(x, W2, W3, Yhat):
    return jax.grad(_E_of_params, argnums=1)(W2, W3, x, Yhat)


def _ref_dw2(x, W2, W3, Yhat):
    return jax.grad(_E_of_params, argnums=0)(W2, W3, x, Yhat)


def _ref_sigmoid_prime(z):
    return jax.vmap(jax.grad(jax.nn.sigmoid))(z)


def _sample_net(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    f64 = jnp.float64
    return {"x": jax.random.normal(k1, (3,), f64), "W2": jax.random.normal(k2, (3, 2), f64),
            "W3": jax.random.normal(k3, (2, 2), f64),
            "Yhat": jax.random.uniform(k4, (2,), f64)}


def _sample_z(key):
    return {"z": 3.0 * jax.random.normal(key, (16,), jnp.float64)}


def example() -> FormulaExample:
    entries = (
        Formula("dE/dY", "∂E/∂Y_k = ∂E/∂a^3_k = Y_k - Ŷ_k", dE_dY, _ref_dY, _sample_net),
        Formula("dE/dz3", "∂E/∂z^3_k = (Y_k - Ŷ_k) · (a^3_k - (a^3_k)^2)", dE_dz3, _ref_dz3,
                _sample_net),
        Formula("dE/dw3", "∂E/∂w^3_jk = (Y_k - Ŷ_k) · (a^3_k - (a^3_k)^2) · a^2_j", dE_dw3,
                _ref_dw3, _sample_net),
        Formula("dE/da2", "∂E/∂a^2_j = (Y_1 - Ŷ_1)(a^3_1 - (a^3_1)^2) w^3_j1 + "
                "(Y_2 - Ŷ_2)(a^3_2 - (a^3_2)^2) w^3_j2", dE_da2, _ref_da2, _sample_net),
        Formula("dE/dz2", "∂E/∂z^2_j = [(Y_1 - Ŷ_1)(a^3_1 - (a^3_1)^2) w^3_j1 + "
                "(Y_2 - Ŷ_2)(a^3_2 - (a^3_2)^2) w^3_j2] · (a^2_j - (a^2_j)^2)", dE_dz2,
                _ref_dz2, _sample_net),
        Formula("dE/dw2", "∂E/∂w^2_ij = [(Y_1 - Ŷ_1)(a^3_1 - (a^3_1)^2) w^3_j1 + "
                "(Y_2 - Ŷ_2)(a^3_2 - (a^3_2)^2) w^3_j2] · (a^2_j - (a^2_j)^2) · x_i",
                dE_dw2, _ref_dw2, _sample_net),
        Formula("f'(z)", "∂y/∂z = e^{-z} / (1 + e^{-z})^2", sigmoid_prime_unsimplified,
                _ref_sigmoid_prime, _sample_z),
        Formula("f'(z) = f - f^2", "∂y/∂z = y - y^2", sigmoid_prime, _ref_sigmoid_prime,
                _sample_z, note="the sigmoid's derivative in terms of its output: no "
                "exponential to recompute in the backward pass"),
    )
    return FormulaExample(name=NAME, title=TITLE, title_zh=TITLE_ZH, summary=SUMMARY,
                          summary_zh=SUMMARY_ZH, entries=entries,
                          reading="none: no numbers, and every closed form checks out")
