"""Document 000: a 3-2-3-2 sigmoid network with biases, squared error, one SGD step.

The document derives the sigmoid's derivative, prints the loss, then works one forward
pass and one backward pass by hand with learning rate ``alpha = 0.7``, updating each
layer's weights *before* passing the error down through them (the "notes" convention:
``coef_hh1`` uses the new ``w13 = 0.962``, not 0.995). Its middle pages also derive
``dE/dw1..w4`` symbolically for a separate 2-2-2 network numbered as in Mazur's
well-known example (``w5, w7`` leave ``h1``); that derivation prints no numbers and is
correct, so it has no records here.

Names. The document's labels drift: the middle layer is ``h3, o1, o2`` in the forward
lines and ``hh1, hhv (hh2), hhs (hh3)`` in the backward lines; the last layer's inputs
are written ``out_h1..out_h3`` where ``out_hh1..out_hh3`` belong. Records use one name
per quantity (``in_hh1``, ``out_hh2``, ...) and keep the document's label in
``Printed.label``. The layers are ``h`` (3 -> 2, ``w1..w6``, ``b1, b2``), ``hh``
(2 -> 3, ``w7..w12``, ``b3..b5``) and ``o`` (3 -> 2, ``w13..w18``, ``b6, b7``); an
updated parameter is ``w13_new``; a parameter's gradient (as applied) is ``grad_w13``.

Finer points of this reading (all of it: docs/reading.md):

* Both conventions print the same figures in 000 under the document's carried
  arithmetic, but not exactly: the exact notes-convention values of ``w9_new`` and
  ``w11_new`` round to 0.740 and 0.089 (printed 0.739 and 0.088: only the carried
  one-figure ``coef_hh2 = 0.009``, ``coef_hh3 = 0.003`` give them), and the exact
  standard value of ``w12_new`` rounds to 0.808 (printed 0.809, the notes value).
* ``out_o1``: the exact value 0.926505 rounds to 0.927; the printed 0.926 comes from
  the carried ``in_o1 = 2.534`` (sigmoid(2.534) = 0.926491). Likewise ``in_o2``: exact
  2.42368 rounds to 2.424; the printed 2.423 is the sum of the carried operands.
* ``LOSS``: the exact E = 0.42254 rounds to 0.423, not to the printed 0.422, which is
  right only as the carried arithmetic (0.926, 0.919 give 0.42205): the first number
  in the document already needs the carried-rounding model.
* The ``in_h2`` line's slips are two numbers (``b2 = 0.378`` and the result 0.6719) and
  the ``out_h2`` line then writes 0.6719 as its operand; its result 0.655 is
  sigmoid(0.6419), the right value.
"""

from __future__ import annotations

import numpy as np

import jaxbp
from jaxbp.notes._example import Example, ParamRef, build_params, frozen, reading_section
from jaxbp.notes._records import Erratum, operand_slip, record, sigmoid

NAME = "000"
TITLE = "A 3-2-3-2 sigmoid network with biases: one training step by hand"
TITLE_ZH = "sigmoid 求导推导；3-2-3-2 网络的一步反向传播"
SUMMARY = ("Sigmoid's derivative, then a full forward and backward pass of a 3-2-3-2 "
           "sigmoid MLP with biases, squared error, alpha = 0.7, each layer updated "
           "before the error passes through it.")
SUMMARY_ZH = "sigmoid 求导，3-2-3-2 全连接网络的正向与反向传播（先更新权重，再向下传误差）。"

# The document's starting values (w8, w15 and b2 as the update lines and sums need
# them; the forward lines print 0.655, 0.146 and 0.378: see the operand slips below).
INITIAL = {
    "w1": 0.0, "w2": 0.6, "w3": 0.968, "b1": 0.515,
    "w4": 0.085, "w5": 0.892, "w6": 0.190, "b2": 0.398,
    "w7": 0.263, "w8": 0.56, "b3": 0.592,
    "w9": 0.744, "w10": 0.58, "b4": 0.512,
    "w11": 0.09, "w12": 0.81, "b5": 0.877,
    "w13": 0.995, "w14": 0.967, "w15": 0.426, "b6": 0.653,
    "w16": 0.726, "w17": 0.297, "w18": 0.899, "b7": 0.902,
}
INPUT = (0.1, 0.2, 0.3)      # i1, i2, i3; the bias input i4 = 1
TARGET = (0.01, 0.99)        # the document's "0_1, 0_2" (targets of o1, o2)
ALPHA = 0.7

# dense w[j, k] connects input j to output k (in_h1 = i1 w1 + i2 w2 + i3 w3 + b1).
PARAM_TABLE = (
    ParamRef("w1", 0, "w", (0, 0)), ParamRef("w2", 0, "w", (1, 0)),
    ParamRef("w3", 0, "w", (2, 0)), ParamRef("w4", 0, "w", (0, 1)),
    ParamRef("w5", 0, "w", (1, 1)), ParamRef("w6", 0, "w", (2, 1)),
    ParamRef("b1", 0, "b", (0,)), ParamRef("b2", 0, "b", (1,)),
    ParamRef("w7", 2, "w", (0, 0)), ParamRef("w8", 2, "w", (1, 0)),
    ParamRef("w9", 2, "w", (0, 1)), ParamRef("w10", 2, "w", (1, 1)),
    ParamRef("w11", 2, "w", (0, 2)), ParamRef("w12", 2, "w", (1, 2)),
    ParamRef("b3", 2, "b", (0,)), ParamRef("b4", 2, "b", (1,)), ParamRef("b5", 2, "b", (2,)),
    ParamRef("w13", 4, "w", (0, 0)), ParamRef("w14", 4, "w", (1, 0)),
    ParamRef("w15", 4, "w", (2, 0)), ParamRef("w16", 4, "w", (0, 1)),
    ParamRef("w17", 4, "w", (1, 1)), ParamRef("w18", 4, "w", (2, 1)),
    ParamRef("b6", 4, "b", (0,)), ParamRef("b7", 4, "b", (1,)),
)

FWD, FWD_ZH = "Forward pass", "正向传播"
LOSS, LOSS_ZH = "Loss", "损失"
OUT, OUT_ZH = "Backward: output layer o", "反向传播：输出层"
MID, MID_ZH = "Backward: middle layer hh (through the updated w13..w18)", \
    "反向传播：中间层（用更新后的 w13..w18）"
FIRST, FIRST_ZH = "Backward: first layer h (through the updated w7..w12)", \
    "反向传播：第一层（用更新后的 w7..w12）"


def _net():
    return jaxbp.serial(jaxbp.dense(2), jaxbp.sigmoid(), jaxbp.dense(3), jaxbp.sigmoid(),
                        jaxbp.dense(2), jaxbp.sigmoid())


def values(t) -> dict:
    """The document's names for the activations and error coefficients of a step."""
    x, z1, h, z2, hh, z3, o = (np.asarray(a)[0] for a in t.acts)
    v = {"i1": x[0], "i2": x[1], "i3": x[2], "alpha": ALPHA,
         "target_o1": TARGET[0], "target_o2": TARGET[1], "LOSS": t.loss}
    for k in range(2):
        v[f"in_h{k + 1}"], v[f"out_h{k + 1}"] = z1[k], h[k]
        v[f"in_o{k + 1}"], v[f"out_o{k + 1}"] = z3[k], o[k]
        v[f"coef_o{k + 1}"] = np.asarray(t.dys[4])[0, k]
        v[f"coef_h{k + 1}"] = np.asarray(t.dys[0])[0, k]
    for k in range(3):
        v[f"in_hh{k + 1}"], v[f"out_hh{k + 1}"] = z2[k], hh[k]
        v[f"coef_hh{k + 1}"] = np.asarray(t.dys[2])[0, k]
    return v


def graph():
    """Nodes ``(name, column, row, value name, bias name)``, edges ``(src, dst, weight)``."""
    nodes = [("i1", 0, 0, "i1", None), ("i2", 0, 1, "i2", None), ("i3", 0, 2, "i3", None),
             ("h1", 1, 0.5, "out_h1", "b1"), ("h2", 1, 1.5, "out_h2", "b2"),
             ("hh1", 2, 0, "out_hh1", "b3"), ("hh2", 2, 1, "out_hh2", "b4"),
             ("hh3", 2, 2, "out_hh3", "b5"),
             ("o1", 3, 0.5, "out_o1", "b6"), ("o2", 3, 1.5, "out_o2", "b7")]
    edges = []
    for ref in PARAM_TABLE:
        if ref.key != "w":
            continue
        j, k = ref.index
        src = {0: ("i1", "i2", "i3"), 2: ("h1", "h2"), 4: ("hh1", "hh2", "hh3")}[ref.layer][j]
        dst = {0: ("h1", "h2"), 2: ("hh1", "hh2", "hh3"), 4: ("o1", "o2")}[ref.layer][k]
        edges.append((src, dst, ref.name))
    return nodes, edges


def _r(name, text, line, section, section_zh, **kw):
    return record(name, text, line, section=section, section_zh=section_zh, **kw)


def _printed():
    f = lambda *a, **k: _r(*a, FWD, FWD_ZH, **k)  # noqa: E731
    o = lambda *a, **k: _r(*a, OUT, OUT_ZH, **k)  # noqa: E731
    m = lambda *a, **k: _r(*a, MID, MID_ZH, convention="notes", **k)  # noqa: E731
    h = lambda *a, **k: _r(*a, FIRST, FIRST_ZH, convention="notes", **k)  # noqa: E731
    return (
        _r("LOSS", "0.422", r"\text{LOSS} = \frac{1}{2}(0.01 - 0.926)^2", LOSS, LOSS_ZH,
           expr=lambda target_o1, out_o1, target_o2, out_o2:
               ((target_o1 - out_o1) ** 2 + (target_o2 - out_o2) ** 2) / 2,
           ops="target_o1=0.01 out_o1=0.926 target_o2=0.99 out_o2=0.919",
           note="exact 0.42254 rounds to 0.423; the carried 0.926 and 0.919 give 0.42205"),
        # ---- forward
        f("in_h1", "0.9254", r"in_{h_1} = i_1 * w_1 + i_2 * w_2 + i_3 * w_3 + i_4 * b_1",
          expr=lambda i1, w1, i2, w2, i3, w3, b1: i1 * w1 + i2 * w2 + i3 * w3 + b1,
          ops="i1=0.1 w1=0 i2=0.2 w2=0.6 i3=0.3 w3=0.968 b1=0.515"),
        f("out_h1", "0.716", r"out_{h_1} = \frac{1}{e^{-in_{h_1}} + 1}",
          expr=lambda in_h1: sigmoid(in_h1), ops="in_h1=0.9254"),
        f("in_h2", "0.6719", r"in_{h_2} = i_1 * w_4 + i_2 * w_5 + i_3 * w_6 + i_4 * b_2",
          expr=lambda i1, w4, i2, w5, i3, w6, b2: i1 * w4 + i2 * w5 + i3 * w6 + b2,
          ops="i1=0.1 w4=0.085 i2=0.2 w5=0.892 i3=0.3 w6=0.190 b2=0.378",
          erratum=Erratum(
              "in_h2 is printed 0.6719; the operands give neither it nor the value the "
              "next line needs", 0.6419,
              "0.0085 + 0.1784 + 0.057 + b2: with the written b2 = 0.378 the sum is "
              "0.6219, with b2 = 0.398 (the b2 update line's old value) it is 0.6419, "
              "and the next line's out_h2 = 0.655 = sigmoid(0.6419); sigmoid(0.6719) "
              "would be 0.662"),
          slips=(operand_slip(
              "b2", "0.378", 0.398, "the forward line writes b2 = 0.378",
              "the b2 update line starts from 0.398, and out_h2 = 0.655 needs "
              "in_h2 = 0.6419, i.e. b2 = 0.398"),)),
        f("out_h2", "0.655", r"out_{h_2} = \frac{1}{e^{-in_{h_2}} + 1}",
          expr=lambda in_h2: sigmoid(in_h2), ops="in_h2=0.6719",
          slips=(operand_slip(
              "in_h2", "0.6719", 0.6419, "the line writes e^{-0.6719}, the slipped in_h2",
              "sigmoid(0.6719) = 0.662; the printed 0.655 is sigmoid(0.6419)"),)),
        f("in_hh1", "1.147", r"in_{h_3} = out_{h_1} * w_7 + out_{h_2} * w_8 + i_4 * b_3",
          label="in_h3",
          expr=lambda out_h1, w7, out_h2, w8, b3: out_h1 * w7 + out_h2 * w8 + b3,
          ops="out_h1=0.716 w7=0.263 out_h2=0.655 w8=0.655 b3=0.592",
          slips=(operand_slip(
              "w8", "0.655", 0.56, "the line writes w8 as 0.655 (out_h2's value)",
              "the sum 1.147 needs w8 = 0.56 (0.188 + 0.367 + 0.592); 0.655 would give "
              "1.209; the w8 update line starts from 0.56"),)),
        f("out_hh1", "0.789", r"out_{h_3} = \frac{1}{e^{-in_{h_3}} + 1}", label="out_h3",
          expr=lambda in_hh1: sigmoid(in_hh1), ops="in_hh1=1.147",
          erratum=Erratum(
              "out_hh1 (written out_h3) is printed 0.789", 0.759,
              "sigmoid(1.147) = 0.759, and every later line uses 0.759 (in_o1, in_o2, "
              "the w13 and w16 updates, coef_hh1)")),
        f("in_hh2", "1.425", r"in_{o_1} = out_{h_1} * w_9 + out_{h_2} * w_{10}",
          label="in_o1",
          expr=lambda out_h1, w9, out_h2, w10, b4: out_h1 * w9 + out_h2 * w10 + b4,
          ops="out_h1=0.716 w9=0.744 out_h2=0.655 w10=0.58 b4=0.512"),
        f("out_hh2", "0.806", r"out_{o_1} = \frac{1}{e^{-in_{o_1}} + 1} = \frac{1}{e^{-1.425}",
          label="out_o1", expr=lambda in_hh2: sigmoid(in_hh2), ops="in_hh2=1.425"),
        f("in_hh3", "1.472", r"in_{o_2} = out_{h_1} * w_{11} + out_{h_2} * w_{12}",
          label="in_o2",
          expr=lambda out_h1, w11, out_h2, w12, b5: out_h1 * w11 + out_h2 * w12 + b5,
          ops="out_h1=0.716 w11=0.09 out_h2=0.655 w12=0.81 b5=0.877"),
        f("out_hh3", "0.813", r"out_{o_2} = \frac{1}{e^{-in_{o_2}} + 1} = \frac{1}{e^{-1.472}",
          label="out_o2", expr=lambda in_hh3: sigmoid(in_hh3), ops="in_hh3=1.472"),
        f("in_o1", "2.534", r"in_{o_1} = out_{h_1} * w_{13} + out_{h_2} * w_{14}",
          note="the line writes out_h1..out_h3 where out_hh1..out_hh3 belong",
          expr=lambda out_hh1, w13, out_hh2, w14, out_hh3, w15, b6:
              out_hh1 * w13 + out_hh2 * w14 + out_hh3 * w15 + b6,
          ops="out_hh1=0.759 w13=0.995 out_hh2=0.806 w14=0.967 out_hh3=0.813 w15=0.146 "
              "b6=0.653",
          slips=(operand_slip(
              "w15", "0.146", 0.426, "the forward line writes w15 = 0.146",
              "the sum 2.534 needs 0.426 (0.813 * 0.426 = 0.346; with 0.146 the sum is "
              "2.306), and the w15 update line starts from 0.426"),)),
        f("out_o1", "0.926", r"out_{o_1} = \frac{1}{e^{-in_{o_1}} + 1} = \frac{1}{e^{-2.534}",
          expr=lambda in_o1: sigmoid(in_o1), ops="in_o1=2.534",
          note="exact 0.926505 rounds to 0.927; the carried in_o1 = 2.534 gives 0.926491"),
        f("in_o2", "2.423", r"in_{o_2} = out_{h_1} * w_{16} + out_{h_2} * w_{17}",
          expr=lambda out_hh1, w16, out_hh2, w17, out_hh3, w18, b7:
              out_hh1 * w16 + out_hh2 * w17 + out_hh3 * w18 + b7,
          ops="out_hh1=0.759 w16=0.726 out_hh2=0.806 w17=0.297 out_hh3=0.813 w18=0.899 "
              "b7=0.902",
          note="exact 2.42368 rounds to 2.424; the carried operands sum to 2.4233"),
        f("out_o2", "0.919", r"out_{o_2} = \frac{1}{e^{-in_{o_2}} + 1} = \frac{1}{e^{-2.423}",
          expr=lambda in_o2: sigmoid(in_o2), ops="in_o2=2.423"),
        # ---- backward, output layer o
        o("coef_o1", "0.0628", r"\text{coef}_{01} = \frac{\partial E_{\text{total}}}",
          expr=lambda target_o1, out_o1: -(target_o1 - out_o1) * out_o1 * (1 - out_o1),
          ops="target_o1=0.01 out_o1=0.916 out_o1=0.916 out_o1=0.916",
          note="exact 0.06241 rounds to 0.0624; the carried out_o1 = 0.926 gives 0.0628",
          slips=(operand_slip(
              "out_o1", "0.916", 0.926, "the line writes out_o1 as 0.916",
              "with 0.916 the line gives 0.906 * 0.916 * 0.084 = 0.0697; its printed "
              "0.0628 is 0.916 * 0.926 * 0.074, i.e. out_o1 = 0.926 as printed above"),)),
        o("b6_new", "0.609", r"b_6 = b_6 - \alpha \cdot \text{coef}_{01}", label="b6",
          expr=lambda b6, alpha, coef_o1: b6 - alpha * coef_o1,
          ops="b6=0.651 alpha=0.7 coef_o1=0.0628",
          slips=(operand_slip(
              "b6", "0.651", 0.653, "the line writes the old b6 as 0.651",
              "0.651 - 0.044 = 0.607; the printed 0.609 needs b6 = 0.653, the value "
              "in the in_o1 line"),)),
        o("w13_new", "0.962", r"w_{13} = w_{13} - \alpha", label="w13",
          expr=lambda w13, alpha, coef_o1, out_hh1: w13 - alpha * coef_o1 * out_hh1,
          ops="w13=0.995 alpha=0.7 coef_o1=0.0628 out_hh1=0.759"),
        o("w14_new", "0.932", r"w_{14} = w_{14} - \alpha", label="w14",
          expr=lambda w14, alpha, coef_o1, out_hh2: w14 - alpha * coef_o1 * out_hh2,
          ops="w14=0.967 alpha=0.7 coef_o1=0.0628 out_hh2=0.806"),
        o("w15_new", "0.39", r"w_{15} = w_{15} - \alpha", label="w15",
          expr=lambda w15, alpha, coef_o1, out_hh3: w15 - alpha * coef_o1 * out_hh3,
          ops="w15=0.426 alpha=0.7 coef_o1=0.0628 out_hh3=0.813"),
        o("coef_o2", "-0.0053", r"\text{coef}_{02} = \frac{\partial E_{\text{total}}}",
          expr=lambda target_o2, out_o2: -(target_o2 - out_o2) * out_o2 * (1 - out_o2),
          ops="target_o2=0.99 out_o2=0.919 out_o2=0.919 out_o2=0.919"),
        o("b7_new", "0.906", r"b_7 = b_7 - \alpha", label="b7",
          expr=lambda b7, alpha, coef_o2: b7 - alpha * coef_o2,
          ops="b7=0.902 alpha=0.7 coef_o2=-0.0053"),
        o("w16_new", "0.729", r"w_{16} = w_{16} - \alpha", label="w16",
          expr=lambda w16, alpha, coef_o2, out_hh1: w16 - alpha * coef_o2 * out_hh1,
          ops="w16=0.726 alpha=0.7 coef_o2=-0.0053 out_hh1=0.759"),
        o("w17_new", "0.3", r"w_{17} = w_{17} - \alpha", label="w17",
          expr=lambda w17, alpha, coef_o2, out_hh2: w17 - alpha * coef_o2 * out_hh2,
          ops="w17=0.297 alpha=0.7 coef_o2=-0.0053 out_hh2=0.806"),
        o("w18_new", "0.902", r"w_{18} = w_{18} - \alpha", label="w18",
          expr=lambda w18, alpha, coef_o2, out_hh3: w18 - alpha * coef_o2 * out_hh3,
          ops="w18=0.899 alpha=0.7 coef_o2=-0.0053 out_hh3=0.813"),
        # ---- backward, middle layer hh, through the updated w13..w18
        m("coef_hh1", "0.01", r"\text{coef}_{hh1} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_o1, w13_new, coef_o2, w16_new, out_hh1:
              (coef_o1 * w13_new + coef_o2 * w16_new) * out_hh1 * (1 - out_hh1),
          ops="coef_o1=0.0628 w13_new=0.962 coef_o2=-0.0053 w16_new=0.729 out_hh1=0.759 "
              "out_hh1=0.759"),
        m("b3_new", "0.585", r"b_5 = b_5 - \alpha \cdot \text{coef}_{hh1}", label="b5",
          expr=lambda b3, alpha, coef_hh1: b3 - alpha * coef_hh1,
          ops="b3=0.592 alpha=0.7 coef_hh1=0.01",
          slips=(Erratum("the b3 update is labelled b5", "b3",
                         "it starts from 0.592 = b3 and uses coef_hh1 (unit hh1's bias)",
                         kind="label"),)),
        m("w7_new", "0.258", r"w_7 = w_7 - \alpha", label="w7",
          note="the line's symbol out_hh1 stands where out_h1 (0.716) belongs; the "
               "number is right",
          expr=lambda w7, alpha, coef_hh1, out_h1: w7 - alpha * coef_hh1 * out_h1,
          ops="w7=0.263 alpha=0.7 coef_hh1=0.01 out_h1=0.716"),
        m("w8_new", "0.551", r"w_8 = w_8 - \alpha", label="w8",
          expr=lambda w8, alpha, coef_hh1, out_h2: w8 - alpha * coef_hh1 * out_h2,
          ops="w8=0.56 alpha=0.7 coef_hh1=0.01 out_h2=0.655",
          erratum=Erratum(
              "the new w8 is printed 0.551", 0.555,
              "0.56 - 0.7 * 0.01 * 0.655 = 0.555 (exact 0.5553), and the coef_h2 line "
              "on the next page uses 0.555")),
        m("coef_hh2", "0.009", r"\text{coef}_{hh2} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_o1, w14_new, coef_o2, w17_new, out_hh2:
              (coef_o1 * w14_new + coef_o2 * w17_new) * out_hh2 * (1 - out_hh2),
          ops="coef_o1=0.0628 w14_new=0.932 coef_o2=-0.0053 w17_new=0.3 out_hh2=0.806 "
              "out_hh2=0.806"),
        m("b4_new", "0.506", r"b_4 = b_4 - \alpha", label="b4",
          expr=lambda b4, alpha, coef_hh2: b4 - alpha * coef_hh2,
          ops="b4=0.512 alpha=0.7 coef_hh2=0.009"),
        m("w9_new", "0.739", r"w_9 = w_9 - \alpha", label="w9",
          note="exact (notes) 0.73957 rounds to 0.740; the one-figure coef_hh2 = 0.009 "
               "gives 0.739",
          expr=lambda w9, alpha, coef_hh2, out_h1: w9 - alpha * coef_hh2 * out_h1,
          ops="w9=0.744 alpha=0.7 coef_hh2=0.009 out_h1=0.716"),
        m("w10_new", "0.576", r"w_{10} = w_{10} - \alpha", label="w10",
          expr=lambda w10, alpha, coef_hh2, out_h2: w10 - alpha * coef_hh2 * out_h2,
          ops="w10=0.58 alpha=0.7 coef_hh2=0.009 out_h2=0.655"),
        m("coef_hh3", "0.003", r"\text{coef}_{hh3} = \frac{\partial E_{\text{total}}}",
          expr=lambda coef_o1, w15_new, coef_o2, w18_new, out_hh3:
              (coef_o1 * w15_new + coef_o2 * w18_new) * out_hh3 * (1 - out_hh3),
          ops="coef_o1=0.0628 w15_new=0.39 coef_o2=-0.0053 w18_new=0.902 out_hh3=0.813 "
              "out_hh3=0.813"),
        m("b5_new", "0.875", r"b_5 = b_5 - \alpha \cdot \text{coef}_{hh3}", label="b5",
          expr=lambda b5, alpha, coef_hh3: b5 - alpha * coef_hh3,
          ops="b5=0.877 alpha=0.7 coef_hh3=0.003"),
        m("w11_new", "0.088", r"w_{11} = w_{11} - \alpha", label="w11",
          note="exact (notes) 0.08851 rounds to 0.089; the one-figure coef_hh3 = 0.003 "
               "gives 0.088",
          expr=lambda w11, alpha, coef_hh3, out_h1: w11 - alpha * coef_hh3 * out_h1,
          ops="w11=0.09 alpha=0.7 coef_hh3=0.003 out_h1=0.716"),
        m("w12_new", "0.809", r"w_{12} = w_{12} - \alpha", label="w12",
          expr=lambda w12, alpha, coef_hh3, out_h2: w12 - alpha * coef_hh3 * out_h2,
          ops="w12=0.81 alpha=0.7 coef_hh3=0.003 out_h2=0.655"),
        # ---- backward, first layer h, through the updated w7..w12
        h("coef_h1", "0.002", r"\text{coef}_{h_1} &= \frac{\partial E_{\text{total}}}",
          expr=lambda coef_hh1, w7_new, coef_hh2, w9_new, coef_hh3, w11_new, out_h1:
              (coef_hh1 * w7_new + coef_hh2 * w9_new + coef_hh3 * w11_new)
              * out_h1 * (1 - out_h1),
          ops="coef_hh1=0.01 w7_new=0.258 coef_hh2=0.009 w9_new=0.739 coef_hh3=0.003 "
              "w11_new=0.088 out_h1=0.716 out_h1=0.716"),
        h("b1_new", "0.514", r"b_1 = b_1 - \alpha", label="b1",
          expr=lambda b1, alpha, coef_h1: b1 - alpha * coef_h1,
          ops="b1=0.515 alpha=0.7 coef_h1=0.002"),
        h("w1_new", "0", r"w_1 = w_1 - \alpha", label="w1",
          expr=lambda w1, alpha, coef_h1, i1: w1 - alpha * coef_h1 * i1,
          ops="w1=0 alpha=0.7 coef_h1=0.002 i1=0.1"),
        h("w2_new", "0.6", r"w_2 = w_2 - \alpha", label="w2",
          expr=lambda w2, alpha, coef_h1, i2: w2 - alpha * coef_h1 * i2,
          ops="w2=0.6 alpha=0.7 coef_h1=0.002 i2=0.2"),
        h("w3_new", "0.968", r"w_3 = w_3 - \alpha", label="w3",
          expr=lambda w3, alpha, coef_h1, i3: w3 - alpha * coef_h1 * i3,
          ops="w3=0.968 alpha=0.7 coef_h1=0.002 i3=0.3"),
        h("coef_h2", "0.003", r"\text{coef}_{h_2} &= \frac{\partial E_{\text{total}}}",
          expr=lambda coef_hh1, w8_new, coef_hh2, w10_new, coef_hh3, w12_new, out_h2:
              (coef_hh1 * w8_new + coef_hh2 * w10_new + coef_hh3 * w12_new)
              * out_h2 * (1 - out_h2),
          ops="coef_hh1=0.01 w8_new=0.555 coef_hh2=0.009 w10_new=0.576 coef_hh3=0.003 "
              "w12_new=0.809 out_h2=0.655 out_h2=0.655"),
        h("b2_new", "0.396", r"b_2 = b_2 - \alpha", label="b2",
          expr=lambda b2, alpha, coef_h2: b2 - alpha * coef_h2,
          ops="b2=0.398 alpha=0.7 coef_h2=0.003"),
        h("w4_new", "0.0848", r"w_4 = w_4 - \alpha", label="w4",
          expr=lambda w4, alpha, coef_h2, i1: w4 - alpha * coef_h2 * i1,
          ops="w4=0.085 alpha=0.7 coef_h2=0.003 i1=0.1"),
        h("w5_new", "0.892", r"w_5 = w_5 - \alpha", label="w5",
          expr=lambda w5, alpha, coef_h2, i2: w5 - alpha * coef_h2 * i2,
          ops="w5=0.892 alpha=0.7 coef_h2=0.003 i2=0.2"),
        h("w6_new", "0.189", r"w_6 = w_6 - \alpha", label="w6",
          expr=lambda w6, alpha, coef_h2, i3: w6 - alpha * coef_h2 * i3,
          ops="w6=0.19 alpha=0.7 coef_h2=0.003 i3=0.3"),
    )


def example() -> Example:
    template = ({"w": (3, 2), "b": (2,)}, (), {"w": (2, 3), "b": (3,)}, (),
                {"w": (3, 2), "b": (2,)}, ())
    return Example(
        name=NAME, title=TITLE, title_zh=TITLE_ZH, summary=SUMMARY, summary_zh=SUMMARY_ZH,
        net=_net(), params=build_params(template, PARAM_TABLE, INITIAL),
        x=frozen([INPUT]), target=frozen([TARGET]), loss=jaxbp.half_mse(),
        learning_rate=ALPHA, printed=_printed(), convention="notes",
        param_table=PARAM_TABLE, values=values, graph=graph,
        stated=("i1", "i2", "i3", "alpha", "target_o1", "target_o2"),
        reading=reading_section(__doc__))
