"""Document 004: binary cross-entropy after a sigmoid, and a convolution's gradients.

``L = -[y log y_out + (1 - y) log(1 - y_out)]`` (natural log, the document's ``yy`` is
``y``), ``dL/dy_out = -y / y_out + (1 - y) / (1 - y_out)``, ``σ' = e^{-x} / (1 +
e^{-x})^2 = σ (1 - σ)``. Then a 4x4 input ``a`` convolved (cross-correlation, VALID)
with a 3x3 kernel ``W`` gives four pre-activations ``s0 = s[0, 0]``, ``s1 = s[0, 1]``,
``s2 = s[1, 0]``, ``s3 = s[1, 1]``; a unit mixes their sigmoids,
``α = w_a f(s0) + w_b f(s1) + w_c f(s2) + w_d f(s3)``, ``y_out = f(α)``, then BCE.
The document derives ``dL/dW00`` (``W00`` meets ``a00, a01, a10, a11`` in the four
windows) and the gradient for one input pixel, which meets ``W21, W20, W11, W10``: the
pixel at row 2, column 1 (the OCR dropped the ``2`` of ``a21``).

Each function mirrors the document's expression term by term; two more show where it
simplifies:

* ``dL/dy_out · y_out (1 - y_out) = y_out - y``: BCE after a sigmoid has the gradient
  ``y_out - y`` at the logit (what :func:`jaxbp.sigmoid_binary_cross_entropy` uses);
* the input gradient of a convolution is the *full* correlation of ``dL/ds`` with the
  *flipped* kernel (what the library's ``conv2d`` backward computes).

References are ``jax.grad`` of the same network built from jaxbp layers
(``conv2d(1, 3, bias=False)``, ``sigmoid``, ``flatten``, ``dense(1, bias=False)``,
``sigmoid``, ``binary_cross_entropy``). The pixel (row 2, column 1) is confirmed by the
kernel entries it meets; docs/reading.md has the whole reading of the five documents.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxbp
from jaxbp.notes._example import Formula, FormulaExample

NAME = "004"
TITLE = "Binary cross-entropy after a sigmoid, and a convolution's gradients"
TITLE_ZH = "交叉熵（以 e 为底）与 sigmoid 的微分；卷积的梯度"
SUMMARY = ("BCE's derivative, the sigmoid's, then dL/dW00 and one input pixel's gradient "
           "for a 4x4 input convolved with a 3x3 kernel, a sigmoid unit and BCE.")
SUMMARY_ZH = "交叉熵与 sigmoid 求导；4x4 输入与 3x3 卷积核：对 W00 与输入像素的偏导。"

_NET = jaxbp.serial(jaxbp.conv2d(1, 3, bias=False), jaxbp.sigmoid(), jaxbp.flatten(),
                    jaxbp.dense(1, bias=False), jaxbp.sigmoid())
_BCE = jaxbp.binary_cross_entropy()


def _sig(x):
    return 1 / (1 + jnp.exp(-x))


def _sig_prime(x):
    """The document's form of σ': e^{-x} / (1 + e^{-x})^2."""
    return jnp.exp(-x) / (1 + jnp.exp(-x)) ** 2


def _forward(a, W, w):
    """s (2, 2) by cross-correlation, α, y_out. ``a`` (4, 4), ``W`` (3, 3), ``w`` (4,)."""
    s = jnp.array([[jnp.sum(a[r:r + 3, c:c + 3] * W) for c in range(2)] for r in range(2)])
    s0, s1, s2, s3 = s[0, 0], s[0, 1], s[1, 0], s[1, 1]
    alpha = w[0] * _sig(s0) + w[1] * _sig(s1) + w[2] * _sig(s2) + w[3] * _sig(s3)
    return s, alpha, _sig(alpha)


# ----------------------------------------------------------- the document's expressions


def dL_dyout(y_out, y):
    """∂L/∂y_out = -y / y_out + (1 - y) / (1 - y_out)."""
    return -y / y_out + (1 - y) / (1 - y_out)


def sigmoid_prime(x):
    """微分 = e^{-x} / (1 + e^{-x})^2."""
    return _sig_prime(x)


def sigmoid_prime_simplified(x):
    """= σ(x) (1 - σ(x))."""
    return _sig(x) * (1 - _sig(x))


def dL_dW00(a, W, w, y):
    """∂l/∂W00 = (Y_out - yy) / (Y_out (1 - Y_out)) · e^{-α} / (1 + e^{-α})^2 ·
    (w_a f'(s0) a00 + w_b f'(s1) a01 + w_c f'(s2) a10 + w_d f'(s3) a11)."""
    s, alpha, y_out = _forward(a, W, w)
    s0, s1, s2, s3 = s[0, 0], s[0, 1], s[1, 0], s[1, 1]
    return ((y_out - y) / (y_out * (1 - y_out)) * _sig_prime(alpha)
            * (w[0] * _sig_prime(s0) * a[0, 0] + w[1] * _sig_prime(s1) * a[0, 1]
               + w[2] * _sig_prime(s2) * a[1, 0] + w[3] * _sig_prime(s3) * a[1, 1]))


def dL_da21(a, W, w, y):
    """∂l/∂a21 = (Y_out - yy) / (Y_out (1 - Y_out)) · e^{-α} / (1 + e^{-α})^2 ·
    (W_a f'(s0) W21 + W_b f'(s1) W20 + W_c f'(s2) W11 + W_d f'(s3) W10)."""
    s, alpha, y_out = _forward(a, W, w)
    s0, s1, s2, s3 = s[0, 0], s[0, 1], s[1, 0], s[1, 1]
    return ((y_out - y) / (y_out * (1 - y_out)) * _sig_prime(alpha)
            * (w[0] * _sig_prime(s0) * W[2, 1] + w[1] * _sig_prime(s1) * W[2, 0]
               + w[2] * _sig_prime(s2) * W[1, 1] + w[3] * _sig_prime(s3) * W[1, 0]))


def dL_dalpha(a, W, w, y):
    """Simplified: ∂L/∂y_out · y_out (1 - y_out) = y_out - y (the gradient at the logit)."""
    _, _, y_out = _forward(a, W, w)
    return y_out - y


def dL_da(a, W, w, y):
    """Simplified: ∂L/∂a = full correlation of ∂L/∂s with the flipped kernel. (4, 4).

    ``g = ∂L/∂s`` is (2, 2); padded by 2 on every side it is (6, 6); correlating it with
    ``W[::-1, ::-1]`` gives ``∂L/∂a[i, j] = sum_{r, c} g[r, c] W[i - r, j - c]``.
    """
    s, _, y_out = _forward(a, W, w)
    g = (y_out - y) * w.reshape(2, 2) * _sig(s) * (1 - _sig(s))
    gpad = jnp.pad(g, 2)
    flipped = W[::-1, ::-1]
    return jnp.array([[jnp.sum(gpad[i:i + 3, j:j + 3] * flipped) for j in range(4)]
                      for i in range(4)])


# ------------------------------------------------------------- the autodiff references


def _loss(params, a, y):
    out, _ = _NET.forward(params, a.reshape(1, 4, 4, 1))
    value, _ = _BCE.forward(out, jnp.full((1, 1), y, out.dtype))
    return value


def _params(W, w):
    return ({"w": W.reshape(3, 3, 1, 1)}, (), (), {"w": w.reshape(4, 1)}, ())


def _ref_dyout(y_out, y):
    def bce(p, t):
        return -(t * jnp.log(p) + (1 - t) * jnp.log(1 - p))
    return jax.vmap(jax.grad(bce))(y_out, y)


def _ref_sigmoid_prime(x):
    return jax.vmap(jax.grad(jax.nn.sigmoid))(x)


def _ref_dW00(a, W, w, y):
    return jax.grad(lambda W: _loss(_params(W, w), a, y))(W)[0, 0]


def _ref_da21(a, W, w, y):
    return jax.grad(lambda a: _loss(_params(W, w), a, y))(a)[2, 1]


def _ref_da(a, W, w, y):
    return jax.grad(lambda a: _loss(_params(W, w), a, y))(a)


def _ref_dalpha(a, W, w, y):
    s, alpha, _ = _forward(a, W, w)
    del s
    return jax.grad(lambda z: _BCE.forward(jax.nn.sigmoid(z).reshape(1, 1),
                                           jnp.full((1, 1), y, z.dtype))[0])(alpha)


def _sample_bce(key):
    k1, k2 = jax.random.split(key)
    f64 = jnp.float64
    return {"y_out": jax.random.uniform(k1, (16,), f64, 0.05, 0.95),
            "y": jax.random.uniform(k2, (16,), f64)}


def _sample_x(key):
    return {"x": 3.0 * jax.random.normal(key, (16,), jnp.float64)}


def _sample_conv(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    f64 = jnp.float64
    return {"a": jax.random.normal(k1, (4, 4), f64),
            "W": 0.5 * jax.random.normal(k2, (3, 3), f64),
            "w": jax.random.normal(k3, (4,), f64),
            "y": jax.random.bernoulli(k4, 0.5).astype(f64)}


def example() -> FormulaExample:
    entries = (
        Formula("dL/dy_out", "∂L/∂y_out = -[yy / y_out - (1 - yy) / (1 - y_out)] = "
                "-yy / y_out + (1 - yy) / (1 - y_out)", dL_dyout, _ref_dyout, _sample_bce),
        Formula("sigmoid'", "微分 = e^{-x} / (1 + e^{-x})^2", sigmoid_prime,
                _ref_sigmoid_prime, _sample_x),
        Formula("sigmoid' = σ(1-σ)", "= σ(x) · (1 - σ(x))", sigmoid_prime_simplified,
                _ref_sigmoid_prime, _sample_x),
        Formula("dL/dW00", "∂l/∂W00 = (Y_out - yy) / (Y_out (1 - Y_out)) · e^{-α} / "
                "(1 + e^{-α})^2 · (w_a e^{-s0}/(1 + e^{-s0})^2 · a00 + w_b ... · a01 + "
                "w_c ... · a10 + w_d ... · a11)", dL_dW00, _ref_dW00, _sample_conv),
        Formula("dL/da21", "∂l/∂a21 = (Y_out - yy) / (Y_out (1 - Y_out)) · e^{-α} / "
                "(1 + e^{-α})^2 · (W_a e^{-s0}/(1 + e^{-s0})^2 · W21 + W_b ... · W20 + "
                "W_c ... · W11 + W_d ... · W10)", dL_da21, _ref_da21, _sample_conv,
                note="the document's pixel 'a1' is a21: it meets W21, W20, W11, W10"),
        Formula("dL/dalpha = y_out - y", "(Y_out - yy) / (Y_out (1 - Y_out)) · "
                "Y_out (1 - Y_out) = Y_out - yy", dL_dalpha, _ref_dalpha, _sample_conv,
                note="BCE's derivative times the sigmoid's simplifies: y_out - y"),
        Formula("dL/da = full correlation with flipped W", "∂L/∂a = "
                "pad(∂L/∂s, 2) ⋆ W[::-1, ::-1]", dL_da, _ref_da, _sample_conv,
                note="every pixel at once: the input gradient of a convolution is the "
                "full correlation of the upstream gradient with the flipped kernel"),
    )
    return FormulaExample(name=NAME, title=TITLE, title_zh=TITLE_ZH, summary=SUMMARY,
                          summary_zh=SUMMARY_ZH, entries=entries,
                          reading="none: no numbers, every closed form checks out, and "
                                  "the pixel it differentiates is a21 (row 2, column 1)")
