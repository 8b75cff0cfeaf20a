"""The demos' pictures, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot`` and no global backend switch: each function builds a ``Figure``, saves a
PNG and lets it go, so plotting works in a terminal without a display and never
changes the caller's matplotlib state. matplotlib is imported on first use (it is in
the ``demo`` extra, not a core dependency).
"""

from __future__ import annotations

import os

import numpy as np

MANUAL_STYLE = {"color": "#1f77b4", "linewidth": 3.0, "alpha": 0.55}
AUTODIFF_STYLE = {"color": "#d62728", "linewidth": 1.2, "linestyle": "--"}


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'jaxbp[demo]'") from e
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _finish_curves(fig, axes, title):
    """Whole-number x ticks (epochs, steps), grid and legend on each of ``axes``, the
    optional title."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _loss_axis(ax, series, name):
    """A log scale when the values span more than a decade, linear otherwise; either
    way the ticks are plain numbers (0.5, 0.01), never ``2.36 × 10^0`` or an offset."""
    from matplotlib.ticker import (FuncFormatter, LogLocator, NullFormatter,
                                   ScalarFormatter)

    values = np.concatenate([np.asarray(s, np.float64).reshape(-1) for s in series])
    values = values[np.isfinite(values) & (values > 0)]
    wide = values.size > 0 and values.max() / values.min() > 10
    if wide:
        ax.set_yscale("log")
        # Over a few decades, 1-2-5 ticks; over many, the decades alone.
        few = values.max() / values.min() < 1e3
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if few
                                              else (1.0,)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(f"{name} (log scale)")
    else:
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.set_ylabel(name)


def _plain_axis(ax):
    from matplotlib.ticker import ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))


def _style(label):
    return AUTODIFF_STYLE if "autodiff" in label else MANUAL_STYLE


def training_curves(histories: dict, path, title: str = "") -> str:
    """Loss and accuracy per epoch of several runs on the same axes, saved as a PNG.

    Args:
      histories: label -> a :func:`jaxbp.train.fit` history. Labels containing
        "autodiff" are drawn dashed and thin over the others' thick translucent line,
        so that two identical runs visibly overlap.
      path: the PNG to write.
      title: the figure's title.

    Returns:
      The path written.
    """
    return _save(curves_figure(histories, title), path)


def curves_figure(histories: dict, title: str = ""):
    """The figure :func:`training_curves` saves (e.g. to show it in a notebook).

    Epochs are whole-number ticks; the loss axis is logarithmic only when the losses
    span more than a decade, and its ticks are plain numbers.

    Returns:
      A matplotlib ``Figure`` with two axes, loss and accuracy.
    """
    fig = _figure(11, 4.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for label, h in histories.items():
        style = _style(label)
        ax_loss.plot(h["epoch"], h["loss"], label=f"{label}: train loss", **style)
        if "val_loss" in h:
            ax_loss.plot(h["epoch"], h["val_loss"], label=f"{label}: held-out loss",
                         **{**style, "color": _shade(style["color"])})
        if "accuracy" in h:
            ax_acc.plot(h["epoch"], 100 * np.asarray(h["accuracy"]),
                        label=f"{label}: train", **style)
        if "val_accuracy" in h:
            ax_acc.plot(h["epoch"], 100 * np.asarray(h["val_accuracy"]),
                        label=f"{label}: held-out",
                        **{**style, "color": _shade(style["color"])})
    _loss_axis(ax_loss, [h[k] for h in histories.values() for k in ("loss", "val_loss")
                         if k in h], "cross-entropy")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss")
    _plain_axis(ax_acc)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    return _finish_curves(fig, (ax_loss, ax_acc), title)


def _shade(color):
    return {"#1f77b4": "#2ca02c", "#d62728": "#ff7f0e"}.get(color, color)


def prediction_grid(images, labels, predictions, path, *, rows: int = 4,
                    cols: int = 8, title: str = "") -> str:
    """A grid of held-out images titled with the prediction (and the truth if wrong).

    Misclassified images come first (red titles), then correctly classified ones.

    Args:
      images: ``(n, h, w)`` or ``(n, h, w, c)`` with ``c`` 1 or 3; or ``(n, d)`` with
        ``d`` a perfect square (drawn as a square image).
      labels: ``(n,)`` true classes.
      predictions: ``(n,)`` predicted classes.
      path: the PNG to write.
      rows, cols: the grid's size.
      title: the figure's title.

    Returns:
      The path written.
    """
    images, labels, predictions = (np.asarray(a) for a in (images, labels, predictions))
    wrong = np.flatnonzero(labels != predictions)
    right = np.flatnonzero(labels == predictions)
    order = np.concatenate([wrong, right])[:rows * cols]
    fig = _figure(cols * 1.3, rows * 1.5)
    # no ticks at all (not hidden ones, which matplotlib still lays out for each axes)
    axes = np.asarray(fig.subplots(rows, cols, subplot_kw={"xticks": [], "yticks": []})
                      ).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, order):
        ax.imshow(_as_image(images[i]), cmap="gray_r", interpolation="nearest")
        ok = labels[i] == predictions[i]
        text = f"{predictions[i]}" if ok else f"{predictions[i]} (true {labels[i]})"
        ax.set_title(text, fontsize=9, color="#1a7f37" if ok else "#cf222e")
    fig.suptitle(title or f"held-out predictions: {len(wrong)} wrong of {len(labels)}",
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _as_image(x):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        side = int(round(np.sqrt(x.size)))
        return x.reshape(side, side) if side * side == x.size else x[None, :]
    if x.ndim == 3 and x.shape[-1] == 1:
        return x[..., 0]
    return x


def confusion_matrix(labels, predictions, classes: int, path, title: str = "") -> str:
    """The confusion matrix (rows: true class, columns: predicted), counts written in.

    Args:
      labels: ``(n,)`` true classes.
      predictions: ``(n,)`` predicted classes.
      classes: the number of classes.
      path: the PNG to write.
      title: the figure's title.

    Returns:
      The path written.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    size = max(4.0, 0.5 * classes + 1.5)
    fig = _figure(size + 1, size)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if classes <= 30:
        top = counts.max() if counts.size else 0
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, str(c), ha="center", va="center", fontsize=8,
                        color="white" if c > top / 2 else "black")
        ax.set_xticks(range(classes))
        ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(title or f"confusion matrix (accuracy {100 * accuracy:.1f}%)")
    fig.tight_layout()
    return _save(fig, path)


def convergence(loss_steps, losses: dict, output_steps, outputs: dict, targets, path,
                title: str = "") -> str:
    """A single-example run to convergence: loss per step and outputs against targets.

    Args:
      loss_steps: ``(m,)`` the step numbers of ``losses``.
      losses: label -> ``(m,)`` losses (runs drawn on the same axes).
      output_steps: ``(q,)`` the step numbers of ``outputs`` (0: before training).
      outputs: label -> ``(q, k)`` the network's outputs after those steps.
      targets: ``(k,)`` the targets the outputs approach.
      path: the PNG to write.
      title: the figure's title.

    Returns:
      The path written.
    """
    fig = _figure(11, 4.2)
    ax_loss, ax_out = fig.subplots(1, 2)
    for label, value in losses.items():
        ax_loss.plot(loss_steps, value, label=label, **_style(label))
    _loss_axis(ax_loss, list(losses.values()), "E = 1/2 sum (target - out)^2")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("loss")
    colors = ["#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for label, out in outputs.items():
        out = np.asarray(out)
        for k in range(out.shape[1]):
            style = {**_style(label), "color": colors[k % len(colors)]}
            ax_out.plot(output_steps, out[:, k], label=f"{label}: out_o{k + 1}", **style)
    for k, t in enumerate(np.asarray(targets).reshape(-1)):
        ax_out.axhline(t, color=colors[k % len(colors)], linewidth=0.8, linestyle=":")
        ax_out.annotate(f"target {t:g}", (output_steps[-1], t), fontsize=8, ha="right",
                        va="bottom" if t < 0.5 else "top")
    ax_out.set_xlabel("step")
    ax_out.set_ylabel("output")
    ax_out.set_ylim(-0.05, 1.05)
    ax_out.set_title("outputs approach the targets")
    _plain_axis(ax_out)
    return _save(_finish_curves(fig, (ax_loss, ax_out), title), path)


def language_model_curves(runs: dict, baselines: dict, path, title: str = "") -> str:
    """A language model's training: loss per step and held-out bits per character.

    Args:
      runs: label -> ``{"losses": (steps,) training loss per step in bits per
        character, "curve": [(step, held-out bits per character), ...]}``. Labels
        containing "autodiff" are drawn dashed over the others, so that identical runs
        visibly overlap.
      baselines: name -> bits per character (e.g. unigram, bigram), drawn as
        horizontal lines on both panels.
      path: the PNG to write.
      title: the figure's title.

    Returns:
      The path written.
    """
    fig = _figure(11, 4.2)
    ax_train, ax_held = fig.subplots(1, 2)
    greys = ["#7f7f7f", "#bcbd22", "#17becf"]
    for label, r in runs.items():
        style = _style(label)
        losses = np.asarray(r["losses"], np.float64)
        steps = np.arange(1, len(losses) + 1)
        ax_train.plot(steps, losses, label=f"{label}", **{**style, "linewidth":
                                                           style["linewidth"] / 2})
        if r["curve"]:
            at, bpc = zip(*r["curve"])
            ax_held.plot(at, bpc, marker="o", markersize=3, label=label, **style)
    for (name, value), color in zip(baselines.items(), greys):
        for ax in (ax_train, ax_held):
            ax.axhline(value, color=color, linestyle=":", linewidth=1.2,
                       label=f"{name}: {value:.2f}")
    top = max(baselines.values()) * 1.15 if baselines else None
    for ax in (ax_train, ax_held):
        ax.set_xlabel("step")
        ax.set_ylabel("bits per character")
        if top:
            ax.set_ylim(0, top)
    ax_train.set_title("training loss per step")
    ax_held.set_title("held-out bits per character")
    for ax in (ax_train, ax_held):
        _plain_axis(ax)
    return _save(_finish_curves(fig, (ax_train, ax_held), title), path)
