"""Document 002: a 2-2-2 sigmoid network without biases, one backward pass, rate 1.

``In_h1 = w1 x1 + w3 x2``, ``In_h2 = w2 x1 + w4 x2``, ``In_o1 = w5 h1 + w7 h2``,
``In_o2 = w6 h1 + w8 h2`` (so ``w1, w2`` leave ``x1``; ``w5, w6`` leave ``h1``), with
``w1..w8 = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8``, input ``(0.5, 0.3)`` and labels
``(0.23, -0.07)``. The document computes every weight gradient ``delta1..delta8`` (the
document's ``δ``) before it updates anything, so its convention is textbook backprop
("standard"). The parameter values stood in a picture the text lost; the forward lines
print them all (``0.20 × 0.50 + 0.50 × 0.30`` is ``w1 x1 + w3 x2``).

**The slip worth a diagnosis**: the document writes
``delta1 = (delta5 + delta6) × h1 (1 - h1) × x1``, summing the two *weight gradients*
that leave ``h1``. The chain rule needs the error signals times the weights:
``delta1 = (delta_o1 o1 (1 - o1) w5 + delta_o2 o2 (1 - o2) w6) h1 (1 - h1) x1``. The
printed 0.01 is a faithful evaluation of the wrong formula; the right value is -0.0084
(-0.01 at the document's precision): the sign of ``delta1`` and ``delta3`` is wrong.
``delta2`` and ``delta4`` round to the right 0.01 by luck. Records keep the right formula
in ``expr`` and the document's in ``doc_expr``.

Finer points of this reading (all of it: docs/reading.md):

* The wrong formula gives 0.0146, 0.0088, 0.0130, 0.0078 on exact values, and 0.0136,
  0.0081, 0.0125, 0.0075 on the operands the lines write: 0.01 at two decimals either
  way.
"""

from __future__ import annotations

import numpy as np

import jaxbp
from jaxbp.notes._example import Example, ParamRef, build_params, frozen, reading_section
from jaxbp.notes._records import Erratum, given, record, sigmoid

NAME = "002"
TITLE = "A 2-2-2 sigmoid network without biases: the gradients of one step"
TITLE_ZH = "反向传播：梯度计算与参数更新（2-2-2 网络）"
SUMMARY = ("Forward pass, squared error and every weight gradient of a 2-2-2 sigmoid "
           "MLP without biases; the hidden-layer gradients sum the wrong terms.")
SUMMARY_ZH = "2-2-2 sigmoid 网络的正向传播与梯度计算；隐含层梯度公式有误（δ5 + δ6）。"

INITIAL = {"w1": 0.2, "w2": -0.4, "w3": 0.5, "w4": 0.6,
           "w5": 0.1, "w6": -0.5, "w7": -0.3, "w8": 0.8}
INPUT = (0.5, 0.3)
LABELS = (0.23, -0.07)
ETA = 1.0

PARAM_TABLE = (
    ParamRef("w1", 0, "w", (0, 0)), ParamRef("w3", 0, "w", (1, 0)),
    ParamRef("w2", 0, "w", (0, 1)), ParamRef("w4", 0, "w", (1, 1)),
    ParamRef("w5", 2, "w", (0, 0)), ParamRef("w7", 2, "w", (1, 0)),
    ParamRef("w6", 2, "w", (0, 1)), ParamRef("w8", 2, "w", (1, 1)),
)

INIT, INIT_ZH = "Data and learning rate", "参数初始化"
FWD, FWD_ZH = "Forward pass", "正向传播"
OUT, OUT_ZH = "Backward: gradients of w5..w8", "反向传播:梯度计算（w5 ~ w8）"
HID, HID_ZH = "Backward: gradients of w1..w4", "反向传播:梯度计算（w1 ~ w4）"


def _net():
    return jaxbp.serial(jaxbp.dense(2, bias=False), jaxbp.sigmoid(),
                        jaxbp.dense(2, bias=False), jaxbp.sigmoid())


def values(t) -> dict:
    """The document's names for the activations and gradients of a step."""
    x, z1, h, z2, o = (np.asarray(a)[0] for a in t.acts)
    dE_do = np.asarray(t.loss_dy)[0]
    g1, g2 = np.asarray(t.grads[0]["w"]), np.asarray(t.grads[2]["w"])
    v = {"x1": x[0], "x2": x[1], "y1": LABELS[0], "y2": LABELS[1], "eta": ETA,
         "In_h1": z1[0], "In_h2": z1[1], "h1": h[0], "h2": h[1],
         "In_o1": z2[0], "In_o2": z2[1], "o1": o[0], "o2": o[1], "Error": t.loss,
         "delta_o1": dE_do[0], "delta_o2": dE_do[1]}
    for ref in PARAM_TABLE:
        g = g1 if ref.layer == 0 else g2
        v["delta" + ref.name[1:]] = g[ref.index]
    return v


def graph():
    nodes = [("x1", 0, 0, "x1", None), ("x2", 0, 1, "x2", None),
             ("h1", 1, 0, "h1", None), ("h2", 1, 1, "h2", None),
             ("o1", 2, 0, "o1", None), ("o2", 2, 1, "o2", None)]
    src = {0: ("x1", "x2"), 2: ("h1", "h2")}
    dst = {0: ("h1", "h2"), 2: ("o1", "o2")}
    edges = [(src[r.layer][r.index[0]], dst[r.layer][r.index[1]], r.name)
             for r in PARAM_TABLE]
    return nodes, edges


def _wrong_sum(which, signals, right, printed_wrong):
    return (Erratum(
        f"the line sums the weight gradients {which} where the chain rule sums the error "
        f"signals times the weights", right,
        f"dE/dh = {signals}; the document's {which} adds the two weight gradients "
        f"(each already multiplied by h, not by w); its own operands give "
        f"{printed_wrong}", kind="formula"),)


def _printed():
    g = lambda *a, **k: given(*a, section=INIT, section_zh=INIT_ZH, **k)  # noqa: E731
    f = lambda *a, **k: record(*a, section=FWD, section_zh=FWD_ZH, **k)  # noqa: E731
    o = lambda *a, **k: record(*a, section=OUT, section_zh=OUT_ZH, **k)  # noqa: E731
    h = lambda *a, **k: record(*a, section=HID, section_zh=HID_ZH,  # noqa: E731
                               convention="standard", **k)
    sample_line = "这里0.23和-0.07是 对输入样本数据(0.5, 0.3)的标注信息"
    return (
        g("y1", "0.23", sample_line), g("y2", "-0.07", sample_line),
        g("x1", "0.5", sample_line), g("x2", "0.3", sample_line),
        f("h1", "0.56", r"$h_1 = sigmoid (0.20 \times 0.50 + 0.50 \times 0.30)",
          expr=lambda w1, x1, w3, x2: sigmoid(w1 * x1 + w3 * x2),
          ops="w1=0.20 x1=0.50 w3=0.50 x2=0.30"),
        f("h2", "0.50", r"h_2 = sigmoid (-0.40 \times 0.50 + 0.60 \times 0.30)",
          expr=lambda w2, x1, w4, x2: sigmoid(w2 * x1 + w4 * x2),
          ops="w2=-0.40 x1=0.50 w4=0.60 x2=0.30",
          note="sigmoid(-0.02) = 0.4950002: 0.50 by a hair"),
        f("o1", "0.48", r"o_1 = sigmoid (0.10 \times 0.56 + -0.30 \times 0.50)",
          expr=lambda w5, h1, w7, h2: sigmoid(w5 * h1 + w7 * h2),
          ops="w5=0.10 h1=0.56 w7=-0.30 h2=0.50"),
        f("o2", "0.53", r"o_2 = sigmoid (-0.50 \times 0.56 + 0.80 \times 0.50)",
          expr=lambda w6, h1, w8, h2: sigmoid(w6 * h1 + w8 * h2),
          ops="w6=-0.50 h1=0.56 w8=0.80 h2=0.50"),
        given("eta", "1", r"反向传播(假设学习速率Learning Rate  $\eta = 1$ )", label="η",
              section=OUT, section_zh=OUT_ZH),
        o("Error", "0.21", r"$Error = 0.5 \times (0.48 - 0.23)^2",
          expr=lambda o1, y1, o2, y2: ((o1 - y1) ** 2 + (o2 - y2) ** 2) / 2,
          ops="o1=0.48 y1=0.23 o2=0.53 y2=-0.07"),
        o("delta_o1", "0.25", r"\delta_{o^1} = \frac{\partial Error}{\partial o_1}",
          label="δo1", expr=lambda o1, y1: o1 - y1, ops="y1=0.23"),
        o("delta_o2", "0.60", r"\delta_{o^2} = \frac{\partial Error}{\partial o_2}",
          label="δo2", expr=lambda o2, y2: o2 - y2, ops="y2=-0.07"),
        o("delta5", "0.03", r"\delta_5 = \frac{\partial Error}{\partial w_5}", label="δ5",
          expr=lambda delta_o1, o1, h1: delta_o1 * o1 * (1 - o1) * h1,
          ops="delta_o1=0.25 o1=0.48 o1=0.48 h1=0.56"),
        o("delta7", "0.03", r"\delta_7 = \frac{\partial Error}{\partial w_7}", label="δ7",
          expr=lambda delta_o1, o1, h2: delta_o1 * o1 * (1 - o1) * h2,
          ops="delta_o1=0.25 o1=0.48 o1=0.48 h2=0.50"),
        o("delta6", "0.08", r"\delta_6 = \frac{\partial Error}{\partial w_6}", label="δ6",
          expr=lambda delta_o2, o2, h1: delta_o2 * o2 * (1 - o2) * h1,
          ops="delta_o2=0.60 o2=0.53 o2=0.53 h1=0.56"),
        o("delta8", "0.07", r"\delta_8 = \frac{\partial Error}{\partial w_8}", label="δ8",
          expr=lambda delta_o2, o2, h2: delta_o2 * o2 * (1 - o2) * h2,
          ops="delta_o2=0.60 o2=0.53 o2=0.53 h2=0.50"),
        h("delta1", "0.01", r"\delta_{1} = \frac{\partial Error}{\partial w_{1}} = "
          r"(\delta_{5} + \delta_{6})", label="δ1",
          expr=lambda delta_o1, o1, w5, delta_o2, o2, w6, h1, x1:
              (delta_o1 * o1 * (1 - o1) * w5 + delta_o2 * o2 * (1 - o2) * w6)
              * h1 * (1 - h1) * x1,
          doc_expr=lambda delta5, delta6, h1, x1: (delta5 + delta6) * h1 * (1 - h1) * x1,
          ops="delta5=0.03 delta6=0.08 h1=0.56 h1=0.56 x1=0.50",
          erratum=Erratum(
              "delta1 is printed 0.01; the gradient is negative", -0.01,
              "(0.25 * 0.48 * 0.52 * 0.1 + 0.60 * 0.53 * 0.47 * (-0.5)) * 0.56 * 0.44 * "
              "0.5 = -0.0088 (exact -0.0084); the printed 0.01 is (0.03 + 0.08) * 0.56 * "
              "0.44 * 0.50 = 0.0136"),
          slips=_wrong_sum("delta5 + delta6", "delta_o1 o1(1-o1) w5 + delta_o2 o2(1-o2) "
                           "w6 = 0.0031 - 0.0747 = -0.0716", -0.01, "0.0136")),
        h("delta3", "0.01", r"\delta_{3} = \frac{\partial Error}{\partial w_{3}}",
          label="δ3",
          expr=lambda delta_o1, o1, w5, delta_o2, o2, w6, h1, x2:
              (delta_o1 * o1 * (1 - o1) * w5 + delta_o2 * o2 * (1 - o2) * w6)
              * h1 * (1 - h1) * x2,
          doc_expr=lambda delta5, delta6, h1, x2: (delta5 + delta6) * h1 * (1 - h1) * x2,
          ops="delta5=0.03 delta6=0.08 h1=0.56 h1=0.56 x2=0.30",
          erratum=Erratum(
              "delta3 is printed 0.01; the gradient is negative", -0.01,
              "the right error signal at h1 (-0.0716 * 0.56 * 0.44) times x2 = 0.3 gives "
              "-0.0053 (exact -0.0051); the printed 0.01 is (0.03 + 0.08) * 0.56 * 0.44 "
              "* 0.30 = 0.0081"),
          slips=_wrong_sum("delta5 + delta6", "delta_o1 o1(1-o1) w5 + delta_o2 o2(1-o2) "
                           "w6 = -0.0716", -0.01, "0.0081")),
        h("delta2", "0.01", r"\delta_2 = \frac{\partial Error}{\partial w_2}", label="δ2",
          expr=lambda delta_o1, o1, w7, delta_o2, o2, w8, h2, x1:
              (delta_o1 * o1 * (1 - o1) * w7 + delta_o2 * o2 * (1 - o2) * w8)
              * h2 * (1 - h2) * x1,
          doc_expr=lambda delta7, delta8, h2, x1: (delta7 + delta8) * h2 * (1 - h2) * x1,
          ops="delta7=0.03 delta8=0.07 h2=0.50 h2=0.50 x1=0.5",
          note="right at two decimals by luck: the formula is wrong",
          slips=_wrong_sum("delta7 + delta8", "delta_o1 o1(1-o1) w7 + delta_o2 o2(1-o2) "
                           "w8 = -0.0094 + 0.1196 = 0.1102", 0.01, "0.0125")),
        h("delta4", "0.01", r"\delta_4 = \frac{\partial Error}{\partial w_4}", label="δ4",
          expr=lambda delta_o1, o1, w7, delta_o2, o2, w8, h2, x2:
              (delta_o1 * o1 * (1 - o1) * w7 + delta_o2 * o2 * (1 - o2) * w8)
              * h2 * (1 - h2) * x2,
          doc_expr=lambda delta7, delta8, h2, x2: (delta7 + delta8) * h2 * (1 - h2) * x2,
          ops="delta7=0.03 delta8=0.07 h2=0.50 h2=0.50 x2=0.3",
          note="right at two decimals by luck: the formula is wrong",
          slips=_wrong_sum("delta7 + delta8", "delta_o1 o1(1-o1) w7 + delta_o2 o2(1-o2) "
                           "w8 = 0.1102", 0.01, "0.0075")),
    )


def example() -> Example:
    template = ({"w": (2, 2)}, (), {"w": (2, 2)}, ())
    return Example(
        name=NAME, title=TITLE, title_zh=TITLE_ZH, summary=SUMMARY, summary_zh=SUMMARY_ZH,
        net=_net(), params=build_params(template, PARAM_TABLE, INITIAL),
        x=frozen([INPUT]), target=frozen([LABELS]), loss=jaxbp.half_mse(),
        learning_rate=ETA, printed=_printed(), convention="standard",
        param_table=PARAM_TABLE, values=values, graph=graph,
        stated=("x1", "x2", "y1", "y2", "eta"),
        grad_names=tuple((f"delta{i}", f"w{i}") for i in range(1, 9)),
        reading=reading_section(__doc__))
