"""Document 003: softmax with cross-entropy, then one step of a tiny CNN (rate 0.5).

The document first derives ``dC/dz_i = a_i - y_i`` for softmax followed by
cross-entropy (no numbers). Then a CNN: one input value ``i1 = 0.1`` seen by two size-3
kernels ``k1 = (0.1, 0.2, 0.3)``, ``b1 = 0.5`` and ``k2 = (0.3, 0.2, 0.1)``,
``b2 = -0.5``; four sigmoid conv outputs ``C1..C4``; max-pool ``P1 = max(C1, C2)``,
``P2 = max(C3, C4)``; a fully connected sigmoid layer ``f`` (``f1 = f(w1 P1 + w2 P2 +
b1)``, ``f2 = f(w3 P1 + w4 P2 + b2)``, ``w = 0.1, 0.2, -0.1, -0.2``, ``b = 0.3, -0.3``);
an output layer ``M`` with the same starting values; softmax and cross-entropy against
``(1, 0)``. The backward pass updates each layer before passing the error down (the
"notes" convention): every figure from ``coef_f`` on needs it (textbook backprop gives
``coef_f = (-0.0140, -0.0280)``, not the printed ``(-0.026, -0.036)``).

Names: the document reuses ``w1..w4, b1, b2`` for both dense layers and ``b1, b2`` for
the kernels' biases; here they are ``w1_M..w4_M, b1_M, b2_M`` (output layer),
``w1_f..w4_f, b1_f, b2_f`` (fully connected layer) and ``b1_C, b2_C`` (convolution).
``route_c1..route_c4`` are the 0/1 factors of the pooling (the document's ``w`` in the
``coef_c`` lines); ``out_1, out_2`` are the softmax outputs, ``coef_p`` the error at
the pool's outputs, ``coef_c`` at the conv pre-activations.

**The convolution.** The library convolves by cross-correlation (as
``lax.conv_general_dilated``): ``y[o] = sum_j xpad[o s + j] k[j]``. The document's
K-update lines fix which tap meets ``i1`` in each output: ``C1 = f(i1 k11 + b1)``,
``C2 = f(i1 k13 + b1)``, ``C3 = f(i1 k21 + b2)``, ``C4 = f(i1 k23 + b2)``. Here the
input is the length-3 signal ``(0, i1, 0)``, padded by 1 on each side and convolved
with stride 2 (``conv1d(2, 3, stride=2, padding=1)``): output position 0 sees ``i1`` at
tap 3 and position 1 at tap 1. So the kernels are stored **as the document writes them**
(``k11`` is ``w[0, 0, 0]``), and the document's names map to the *reversed* positions:
``C1`` is position 1 of channel 0, ``C2`` position 0, ``C3`` position 1 of channel 1,
``C4`` position 0. (The document's order would be a true, flipped-kernel convolution;
max-pooling over the two positions makes everything downstream identical either way.)

Numbers not transcribed, and why: the symbolic halves of the kernel lines annotate the
old values under ``α`` (``\\underset{0.3}{\\cancel{\\alpha}}`` in the ``k21`` line, then
0.2, 0.1, -0.5): they repeat the kernel table, and OCR merged them with ``α``; the
numeric halves' ``\\underset{0.5}`` (the rate) are transcribed as ``alpha``. The
padding zeros and the bias input ``1`` are structural constants.

Finer points of this reading (all of it: docs/reading.md):

* ``w2_M_new``: the new output weights print as (0.189, 0.258, -0.189, -0.258 once
  corrected); exactly, the second and fourth are 0.25750 and -0.25750, 0.257 and
  -0.257 to three decimals. The printed 0.258 is the carried arithmetic (0.2 + 0.5 *
  0.294 * 0.392 = 0.25762), and so is the erratum ``w4_M_new``'s corrected value.
* Slips easy to miss, all harmless: ``K13``'s line writes ``0.0001 · 1`` where
  ``i1 = 0.1`` belongs; the conv ``b1`` line's symbolic half writes ``coef_C4`` for
  ``coef_C2``; the symbolic halves of ``coef_f1`` and ``coef_p2`` write ``w2`` for
  ``w3`` and ``w1`` for ``w2``; and the kernel lines annotate the old kernel values
  under ``α`` (not transcribed, see above).
* The FC update lines' ``out_f`` for ``P`` is an operand slip on each of the four
  lines (0.608 for 0.629, 0.392 for 0.385), so that every written number is accounted
  for.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp.notes._example import Example, ParamRef, build_params, frozen, reading_section
from jaxbp.notes._records import Erratum, given, operand_slip, record

NAME = "003"
TITLE = "Softmax with cross-entropy, and a tiny CNN: one training step by hand"
TITLE_ZH = "softmax 交叉熵推导；小型卷积网络的正向与反向传播"
SUMMARY = ("Derives dC/dz = a - y for softmax + cross-entropy, then a conv (two size-3 "
           "kernels), max-pool, a sigmoid dense layer and a softmax output, one step at "
           "rate 0.5, each layer updated before the error passes through it.")
SUMMARY_ZH = "softmax 交叉熵求导 a - y；卷积、池化、全连接、softmax 的一步反向传播（先更新权重）。"

I1 = 0.1
INITIAL = {"k11": 0.1, "k12": 0.2, "k13": 0.3, "b1_C": 0.5,
           "k21": 0.3, "k22": 0.2, "k23": 0.1, "b2_C": -0.5,
           "w1_f": 0.1, "w2_f": 0.2, "w3_f": -0.1, "w4_f": -0.2, "b1_f": 0.3, "b2_f": -0.3,
           "w1_M": 0.1, "w2_M": 0.2, "w3_M": -0.1, "w4_M": -0.2, "b1_M": 0.3, "b2_M": -0.3}
TARGET = (1.0, 0.0)
ALPHA = 0.5

PARAM_TABLE = (
    ParamRef("k11", 0, "w", (0, 0, 0)), ParamRef("k12", 0, "w", (1, 0, 0)),
    ParamRef("k13", 0, "w", (2, 0, 0)), ParamRef("k21", 0, "w", (0, 0, 1)),
    ParamRef("k22", 0, "w", (1, 0, 1)), ParamRef("k23", 0, "w", (2, 0, 1)),
    ParamRef("b1_C", 0, "b", (0,)), ParamRef("b2_C", 0, "b", (1,)),
    ParamRef("w1_f", 4, "w", (0, 0)), ParamRef("w2_f", 4, "w", (1, 0)),
    ParamRef("w3_f", 4, "w", (0, 1)), ParamRef("w4_f", 4, "w", (1, 1)),
    ParamRef("b1_f", 4, "b", (0,)), ParamRef("b2_f", 4, "b", (1,)),
    ParamRef("w1_M", 6, "w", (0, 0)), ParamRef("w2_M", 6, "w", (1, 0)),
    ParamRef("w3_M", 6, "w", (0, 1)), ParamRef("w4_M", 6, "w", (1, 1)),
    ParamRef("b1_M", 6, "b", (0,)), ParamRef("b2_M", 6, "b", (1,)),
)

# (output position, channel) of each of the document's conv outputs: see the docstring.
C_POSITIONS = {"c1": (1, 0), "c2": (0, 0), "c3": (1, 1), "c4": (0, 1)}

TABLE, TABLE_ZH = "Kernels", "卷积核"
OUT, OUT_ZH = "Backward: output layer M", "反向传播：输出层"
FC, FC_ZH = "Backward: fully connected layer f (through the updated M weights)", \
    "反向传播：全连接层（用更新后的输出层权重）"
POOL, POOL_ZH = "Backward: pooling (through the updated f weights)", \
    "反向传播：池化层（用更新后的全连接层权重）"
CONV, CONV_ZH = "Backward: convolution", "反向传播：卷积层"


def _net():
    return jaxbp.serial(jaxbp.conv1d(2, 3, stride=2, padding=1), jaxbp.sigmoid(),
                        jaxbp.max_pool1d(2), jaxbp.flatten(), jaxbp.dense(2),
                        jaxbp.sigmoid(), jaxbp.dense(2))


_POOL = jaxbp.max_pool1d(2)


def values(t) -> dict:
    """The document's names for the activations and error coefficients of a step."""
    acts = [np.asarray(a)[0] for a in t.acts]
    zc, c, _, p, zf, f, m = acts[1:]
    coef_c = np.asarray(t.dys[0])[0]
    # The pool's own backward, fed ones, gives each conv output's routing factor (0/1).
    _, route = _POOL.backward((), t.residuals[2], jnp.ones_like(t.acts[3]))
    route = np.asarray(route)[0]
    target = np.asarray(TARGET)
    probs = np.asarray(t.loss_dy)[0] + target  # the loss's dM = softmax(M) - y
    v = {"i1": I1, "alpha": ALPHA, "target_o1": TARGET[0], "target_o2": TARGET[1],
         "loss": t.loss, "M1": m[0], "M2": m[1], "out_1": probs[0], "out_2": probs[1]}
    for k in (1, 2):
        v[f"out_p{k}"] = p[k - 1]
        v[f"in_f{k}"], v[f"out_f{k}"] = zf[k - 1], f[k - 1]
        v[f"coef_o{k}"] = np.asarray(t.dys[6])[0, k - 1]
        v[f"coef_f{k}"] = np.asarray(t.dys[4])[0, k - 1]
        v[f"coef_p{k}"] = np.asarray(t.dys[3])[0, k - 1]
    for name, (pos, ch) in C_POSITIONS.items():
        v[f"in_{name}"], v[f"out_{name}"] = zc[pos, ch], c[pos, ch]
        v[f"coef_{name}"] = coef_c[pos, ch]
        v[f"route_{name}"] = route[pos, ch]
    return v


def graph():
    """The padded signal, the four conv outputs, pool, dense and output units.

    The conv units stand in the document's order, C1..C4 from the top; their edges
    show which tap meets which input (C1 is position 1 of the first kernel, see the
    module's docstring). The signal (s0, i1, s2) is drawn from the bottom up, which
    keeps those edges from crossing more than they must (s0 and s2 are both 0)."""
    nodes = [("s2", 0, 0.5, None, None), ("i1", 0, 1.5, "i1", None),
             ("s0", 0, 2.5, None, None),
             ("C1", 1, 0, "out_c1", "b1_C"), ("C2", 1, 1, "out_c2", "b1_C"),
             ("C3", 1, 2, "out_c3", "b2_C"), ("C4", 1, 3, "out_c4", "b2_C"),
             ("P1", 2, 0.5, "out_p1", None), ("P2", 2, 2.5, "out_p2", None),
             ("f1", 3, 1, "out_f1", "b1_f"), ("f2", 3, 2, "out_f2", "b2_f"),
             ("out1", 4, 1, "out_1", "b1_M"), ("out2", 4, 2, "out_2", "b2_M")]
    # Position 0 sees (pad, s0, i1) through taps 1..3; position 1 sees (i1, s2, pad).
    edges = [("s0", "C2", "k12"), ("i1", "C2", "k13"), ("i1", "C1", "k11"),
             ("s2", "C1", "k12"), ("s0", "C4", "k22"), ("i1", "C4", "k23"),
             ("i1", "C3", "k21"), ("s2", "C3", "k22"),
             ("C1", "P1", None), ("C2", "P1", None), ("C3", "P2", None), ("C4", "P2", None),
             ("P1", "f1", "w1_f"), ("P2", "f1", "w2_f"), ("P1", "f2", "w3_f"),
             ("P2", "f2", "w4_f"),
             ("f1", "out1", "w1_M"), ("f2", "out1", "w2_M"), ("f1", "out2", "w3_M"),
             ("f2", "out2", "w4_M")]
    return nodes, edges


_P_FOR_F = ("the FC update lines multiply by out_f where out_p belongs (dI_f/dw = P)")


def _printed():
    g = lambda *a, **k: given(*a, section=TABLE, section_zh=TABLE_ZH, **k)  # noqa: E731
    o = lambda *a, **k: record(*a, section=OUT, section_zh=OUT_ZH, **k)  # noqa: E731
    f = lambda *a, **k: record(*a, section=FC, section_zh=FC_ZH,  # noqa: E731
                               convention="notes", **k)
    p = lambda *a, **k: record(*a, section=POOL, section_zh=POOL_ZH,  # noqa: E731
                               convention="notes", **k)
    c = lambda *a, **k: record(*a, section=CONV, section_zh=CONV_ZH,  # noqa: E731
                               **{"convention": "notes", **k})
    row1, row2 = r"0.1 \quad 0.2 \quad 0.3 \quad 0.5", r"0.3 \quad 0.2 \quad 0.1 \quad -0.5"
    dE = r"\frac{\partial E_{\text{total}}}"
    m_line = (r"w_{n} = w_{n} - \alpha \cdot " + dE + r"{\partial w_{n}} = w_{n} - \alpha"
              r" \cdot " + dE + r"{\partial M_{o_{n}}}")
    f_line = (r"w_{n} = w_{n} - \alpha \cdot " + dE + r"{\partial w_{n}} = w_{n} - \alpha"
              r" \cdot " + dE + r"{\partial \text{out}_{f_{n}}}")
    mb_line = (r"b_{n} = b_{n} - \alpha \cdot " + dE + r"{\partial b_{n}} = b_{n} - \alpha"
               r" \cdot " + dE + r"{\partial M_{o_{n}}}")
    fb_line = (r"b_{n} = b_{n} - \alpha \cdot " + dE + r"{\partial b_{n}} = b_{n} - \alpha"
               r" \cdot " + dE + r"{\partial \text{out}_{f_{n}}}")
    ln = lambda tpl, n: tpl.replace("{n}", str(n))  # noqa: E731
    p_slip = lambda written, right: operand_slip(  # noqa: E731
        "out_p1" if right == "0.629" else "out_p2", written, float(right),
        f"the line multiplies by {written} (out_f) where out_p = {right} belongs",
        f"{_P_FOR_F}; at the printed precision the result is the same either way")
    return (
        g("k11", "0.1", row1), g("k12", "0.2", row1), g("k13", "0.3", row1),
        g("b1_C", "0.5", row1, label="b1"),
        g("k21", "0.3", row2), g("k22", "0.2", row2), g("k23", "0.1", row2),
        g("b2_C", "-0.5", row2, label="b2"),
        # ---- output layer M
        o("coef_o1", "-0.294", r"\text{coef}_{o_1} = \frac{\partial E_{\text{total}}}",
          expr=lambda out_1, target_o1: out_1 - target_o1, ops="out_1=0.706 target_o1=1"),
        o("coef_o2", "0.294", r"\text{coef}_{o_2} = \frac{\partial E_{\text{total}}}",
          expr=lambda out_2, target_o2: out_2 - target_o2, ops="out_2=0.294 target_o2=0"),
        o("w1_M_new", "0.189", ln(m_line, 1), label="w1",
          expr=lambda w1_M, alpha, coef_o1, out_f1: w1_M - alpha * coef_o1 * out_f1,
          ops="w1_M=0.1 alpha=0.5 coef_o1=-0.294 out_f1=0.608"),
        o("w2_M_new", "0.258", ln(m_line, 2), label="w2",
          note="exact 0.25750 rounds to 0.257; the carried 0.294 and 0.392 give 0.25762",
          expr=lambda w2_M, alpha, coef_o1, out_f2: w2_M - alpha * coef_o1 * out_f2,
          ops="w2_M=0.2 alpha=0.5 coef_o1=0.294 out_f2=0.392",
          slips=(operand_slip(
              "coef_o1", "0.294", -0.294,
              "the line writes coef_o2 and +0.294 where coef_o1 = -0.294 belongs "
              "(w2 joins f2 to M1)",
              "0.2 - 0.5 * 0.294 * 0.392 would be 0.142; the printed 0.258 is "
              "0.2 + 0.5 * 0.294 * 0.392"),)),
        o("w3_M_new", "-0.189", ln(m_line, 3), label="w3",
          expr=lambda w3_M, alpha, coef_o2, out_f1: w3_M - alpha * coef_o2 * out_f1,
          ops="w3_M=-0.1 alpha=0.5 coef_o2=0.294 out_f1=0.608"),
        o("w4_M_new", "-0.189", ln(m_line, 4), label="w4",
          expr=lambda w4_M, alpha, coef_o2, out_f2: w4_M - alpha * coef_o2 * out_f2,
          ops="w4_M=-0.2 alpha=0.5 coef_o2=0.294 out_f2=0.392",
          erratum=Erratum(
              "the new w4 is printed -0.189 (the new w3's value)", -0.258,
              "-0.2 - 0.5 * 0.294 * 0.392 = -0.2576 (exact -0.25750); the coef_f2 line's "
              "result -0.036 needs -0.258")),
        o("b1_M_new", "0.447", ln(mb_line, 1), label="b1",
          expr=lambda b1_M, alpha, coef_o1: b1_M - alpha * coef_o1,
          ops="b1_M=0.3 alpha=0.5 coef_o1=-0.294"),
        o("b2_M_new", "-0.447", ln(mb_line, 2), label="b2",
          expr=lambda b2_M, alpha, coef_o2: b2_M - alpha * coef_o2,
          ops="b2_M=-0.3 alpha=0.5 coef_o2=0.294"),
        # ---- fully connected layer f, through the updated M weights
        f("coef_f1", "-0.026", r"\text{coef}_{f_1} = \frac{\partial E_{\text{total}}}",
          note="the symbolic line writes w2 where w3 (M2's weight from f1) belongs",
          expr=lambda coef_o1, w1_M_new, coef_o2, w3_M_new, out_f1:
              (coef_o1 * w1_M_new + coef_o2 * w3_M_new) * out_f1 * (1 - out_f1),
          ops="coef_o1=-0.294 w1_M_new=0.189 coef_o2=0.294 w3_M_new=-0.189 out_f1=0.608 "
              "out_f1=0.608"),
        f("coef_f2", "-0.036", r"\text{coef}_{f_2} = \frac{\partial E_{\text{total}}}",
          note="the symbolic line writes w1, w2 where w2, w4 (the weights from f2) belong",
          expr=lambda coef_o1, w2_M_new, coef_o2, w4_M_new, out_f2:
              (coef_o1 * w2_M_new + coef_o2 * w4_M_new) * out_f2 * (1 - out_f2),
          ops="coef_o1=-0.294 w2_M_new=0.189 coef_o2=0.294 w4_M_new=-0.189 out_f2=0.392 "
              "out_f2=0.392",
          slips=(operand_slip(
              "w2_M_new", "0.189", 0.258,
              "the line writes the new w2 as 0.189 (w1's value)",
              "with 0.189 and -0.189 the line gives -0.026 (coef_f1's value); its "
              "printed -0.036 is (-0.294 * 0.258 + 0.294 * (-0.258)) * 0.392 * 0.608"),
              operand_slip(
              "w4_M_new", "-0.189", -0.258,
              "the line writes the new w4 as -0.189, the slipped printed value",
              "the printed -0.036 needs w4 = -0.258 (see w4_M_new)"))),
        f("w1_f_new", "0.108", ln(f_line, 1), label="w1",
          expr=lambda w1_f, alpha, coef_f1, out_p1: w1_f - alpha * coef_f1 * out_p1,
          ops="w1_f=0.1 alpha=0.5 coef_f1=-0.026 out_p1=0.608",
          slips=(p_slip("0.608", "0.629"),)),
        f("w2_f_new", "0.205", ln(f_line, 2), label="w2",
          expr=lambda w2_f, alpha, coef_f1, out_p2: w2_f - alpha * coef_f1 * out_p2,
          ops="w2_f=0.1 alpha=0.5 coef_f1=-0.036 out_p2=0.392",
          slips=(operand_slip(
              "w2_f", "0.1", 0.2, "the line starts from 0.1 where the old w2 = 0.2 "
              "belongs", "0.1 + 0.5 * 0.036 * 0.392 = 0.107; the printed 0.205 is "
              "0.2 + 0.5 * 0.026 * 0.385, and f1 = 0.608 needs w2 = 0.2"),
              operand_slip(
              "coef_f1", "-0.036", -0.026, "the line writes coef_f2 = -0.036 where "
              "coef_f1 = -0.026 belongs (w2 feeds f1)",
              "0.2 + 0.5 * 0.036 * 0.385 = 0.207; 0.2 + 0.5 * 0.026 * 0.385 = 0.205"),
              p_slip("0.392", "0.385"))),
        f("w3_f_new", "-0.089", ln(f_line, 3), label="w3",
          expr=lambda w3_f, alpha, coef_f2, out_p1: w3_f - alpha * coef_f2 * out_p1,
          ops="w3_f=-0.1 alpha=0.5 coef_f2=-0.036 out_p1=0.608",
          slips=(p_slip("0.608", "0.629"),)),
        f("w4_f_new", "-0.193", ln(f_line, 4), label="w4",
          expr=lambda w4_f, alpha, coef_f2, out_p2: w4_f - alpha * coef_f2 * out_p2,
          ops="w4_f=-0.2 alpha=0.5 coef_f2=-0.036 out_p2=0.392",
          slips=(p_slip("0.392", "0.385"),)),
        f("b1_f_new", "0.313", ln(fb_line, 1), label="b1",
          expr=lambda b1_f, alpha, coef_f1: b1_f - alpha * coef_f1,
          ops="b1_f=0.3 alpha=0.5 coef_f1=-0.026"),
        f("b2_f_new", "-0.281", ln(fb_line, 2), label="b2",
          expr=lambda b2_f, alpha, coef_f2: b2_f - alpha * coef_f2,
          ops="b2_f=-0.3 alpha=0.5 coef_f2=-0.036",
          erratum=Erratum(
              "the new b2 is printed -0.281", -0.282,
              "-0.3 - 0.5 * (-0.036) = -0.282 (exact -0.28199)")),
        # ---- pooling, through the updated f weights
        p("coef_p1", "0.0004", r"\text{coeff}_{p1} = \frac{\partial E_{\text{total}}}",
          note="exact 0.00033 rounds to 0.0003; the carried -0.026, 0.108, -0.036, "
               "-0.089 give 0.000396",
          expr=lambda coef_f1, w1_f_new, coef_f2, w3_f_new:
              coef_f1 * w1_f_new + coef_f2 * w3_f_new,
          ops="coef_f1=-0.026 w1_f_new=0.108 coef_f2=-0.036 w3_f_new=-0.089"),
        p("coef_p2", "0.002", r"\text{coeff}_{p2} = \frac{\partial E_{\text{total}}}",
          note="the symbolic line writes w1 where w2 (f1's weight from P2) belongs",
          expr=lambda coef_f1, w2_f_new, coef_f2, w4_f_new:
              coef_f1 * w2_f_new + coef_f2 * w4_f_new,
          ops="coef_f1=-0.026 w2_f_new=0.105 coef_f2=-0.036 w4_f_new=-0.193",
          slips=(operand_slip(
              "w2_f_new", "0.105", 0.205, "the line writes the new w2 as 0.105",
              "with 0.105 the line gives 0.0042; the printed 0.002 needs the new "
              "w2 = 0.205 (-0.026 * 0.205 + 0.036 * 0.193 = 0.0016)"),)),
        # ---- convolution
        c("coef_c1", "0", convention="both",
          line=r"\text{coeff}_{c1} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_p1, route_c1, out_c1: coef_p1 * route_c1 * out_c1 * (1 - out_c1),
          ops="coef_p1=0.0004 route_c1=0 out_c1=0.625 out_c1=0.625"),
        c("coef_c2", "0.0001", r"\text{coeff}_{c2} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_p1, route_c2, out_c2: coef_p1 * route_c2 * out_c2 * (1 - out_c2),
          ops="coef_p1=0.002 route_c2=1 out_c2=0.629 out_c2=0.629",
          slips=(operand_slip(
              "coef_p1", "0.002", 0.0004, "the line writes coef_p2 = 0.002 where "
              "coef_p1 = 0.0004 belongs (C2 feeds P1)",
              "0.002 * 0.629 * 0.371 = 0.0005; the printed 0.0001 is "
              "0.0004 * 0.629 * 0.371 = 0.000093"),)),
        c("coef_c3", "0.0005", r"\text{coeff}_{c3} = \frac{\partial E_{\text{total}}}",
          note="exact 0.00036 rounds to 0.0004; the carried coef_p2 = 0.002 gives 0.0005",
          expr=lambda coef_p2, route_c3, out_c3: coef_p2 * route_c3 * out_c3 * (1 - out_c3),
          ops="coef_p2=0.002 route_c3=1 out_c3=0.384 out_c3=0.384",
          slips=(operand_slip(
              "out_c3", "0.384", 0.385, "C3 is written 0.384, truncated",
              "sigmoid(0.1 * 0.3 - 0.5) = 0.38462, 0.385 to three decimals; harmless: "
              "0.002 * 0.385 * 0.615 = 0.00047 is still 0.0005"),)),
        c("coef_c4", "0", convention="both",
          line=r"\text{coeff}_{c4} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_p2, route_c4, out_c4: coef_p2 * route_c4 * out_c4 * (1 - out_c4),
          ops="coef_p2=0.002 route_c4=0 out_c4=0.380 out_c4=0.380"),
        c("k11_new", "0.1", convention="both",
          line=r"K_{11} = k_{11} - \alpha", label="K11",
          expr=lambda k11, alpha, coef_c1, i1, coef_c2:
              k11 - alpha * (coef_c1 * i1 + coef_c2 * 0),
          ops="k11=0.1 coef_c1=0 i1=0.1 coef_c2=0.0001"),
        c("k12_new", "0.2", convention="both",
          line=r"K_{12} = k_{12} - \alpha", label="K12",
          expr=lambda k12, alpha, coef_c1, coef_c2:
              k12 - alpha * (coef_c1 * 0 + coef_c2 * 0),
          ops="k12=0.2 coef_c1=0 coef_c2=0.0001"),
        c("k13_new", "0.3", r"K_{13} = k_{13} - \alpha", label="K13",
          expr=lambda k13, alpha, coef_c1, coef_c2, i1:
              k13 - alpha * (coef_c1 * 0 + coef_c2 * i1),
          ops="k13=0.3 coef_c1=0 coef_c2=0.0001 i1=1",
          slips=(operand_slip(
              "i1", "1", 0.1, "the line writes 0.0001 · 1 where i1 = 0.1 belongs",
              "the symbolic half has coef_c2 · i1; harmless: 0.3 - 0.5 * 0.0001 * 0.1 "
              "and 0.3 - 0.5 * 0.0001 both print 0.3"),)),
        c("b1_C_new", "0.5", r"b_1 = b_1 - \alpha \frac{\partial E_{TH}}", label="b1",
          expr=lambda b1_C, alpha, coef_c1, coef_c2: b1_C - alpha * (coef_c1 + coef_c2),
          ops="b1_C=0.5 coef_c1=0 coef_c2=0.0001 alpha=0.5",
          slips=(Erratum("the symbolic half writes coef_C4 where coef_C2 belongs",
                         "coef_c2", "b1 is the bias of C1 and C2; the numbers use "
                         "coef_c2 = 0.0001", kind="label"),)),
        c("k21_new", "0.3", r"k_{21} = k_{21} - \alpha", label="k21",
          expr=lambda k21, alpha, coef_c3, i1, coef_c4:
              k21 - alpha * (coef_c3 * i1 + coef_c4 * 0),
          ops="k21=0.3 coef_c3=0.0005 i1=0.1 coef_c4=0 alpha=0.5"),
        c("k22_new", "0.2", convention="both",
          line=r"k_{22} = k_{22} - \alpha", label="k22",
          expr=lambda k22, alpha, coef_c3, coef_c4:
              k22 - alpha * (coef_c3 * 0 + coef_c4 * 0),
          ops="k22=0.2 coef_c3=0.0005 coef_c4=0 alpha=0.5"),
        c("k23_new", "0.1", convention="both",
          line=r"k_{23} = k_{23} - \alpha", label="k23",
          expr=lambda k23, alpha, coef_c3, coef_c4, i1:
              k23 - alpha * (coef_c3 * 0 + coef_c4 * i1),
          ops="k23=0.1 coef_c3=0.0005 coef_c4=0 i1=0.1 alpha=0.5"),
        c("b2_C_new", "0.5", r"b_2 = b_2 - \alpha \frac{\partial E_{TH}}", label="b2",
          expr=lambda b2_C, alpha, coef_c3, coef_c4: b2_C - alpha * (coef_c3 + coef_c4),
          ops="b2_C=-0.5 coef_c3=0.0005 coef_c4=0 alpha=0.5",
          erratum=Erratum(
              "the new b2 is printed 0.5: the sign is dropped", -0.5,
              "-0.5 - 0.5 * 0.0005 = -0.50025, -0.5 at one decimal; the line itself "
              "starts from -0.5")),
    )


def example() -> Example:
    template = ({"w": (3, 1, 2), "b": (2,)}, (), (), (), {"w": (2, 2), "b": (2,)}, (),
                {"w": (2, 2), "b": (2,)})
    return Example(
        name=NAME, title=TITLE, title_zh=TITLE_ZH, summary=SUMMARY, summary_zh=SUMMARY_ZH,
        net=_net(), params=build_params(template, PARAM_TABLE, INITIAL),
        x=frozen([[[0.0], [I1], [0.0]]]), target=frozen([TARGET]),
        loss=jaxbp.softmax_cross_entropy(), learning_rate=ALPHA, printed=_printed(),
        convention="notes", param_table=PARAM_TABLE, values=values, graph=graph,
        stated=("i1", "alpha", "target_o1", "target_o2"),
        reading=reading_section(__doc__))
