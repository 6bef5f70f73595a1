"""Figures of the paper's style drawn from numbers already computed (no model code here):
training curves (thin = training error, bold = test error, as Figs. 1, 4 and 6) and layer
responses in layer order and sorted by magnitude (Fig. 7). Written atomically as PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..utils.io import atomic_save_figure

THIN, BOLD = 0.8, 2.2
Points = Sequence[tuple[float, float]]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_error_curves(
    panels: Mapping[str, Mapping[str, Mapping[str, Points]]], out: str, ylabel: str = "error (%)", dpi: int = 100
) -> None:
    """One panel per ``panels`` key (its title), one colour per run; ``{'train': [(iter, err)],
    'test': [(iter, err)]}`` of each run drawn thin (training) and bold (test), errors in %."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, runs) in zip(axes[0], panels.items()):
        for i, (label, curves) in enumerate(runs.items()):
            colour = colours[i % len(colours)]
            train, test = curves.get("train") or [], curves.get("test") or []
            if train:
                ax.plot([p[0] for p in train], [p[1] for p in train], color=colour, linewidth=THIN, alpha=0.8)
            if test:
                ax.plot(
                    [p[0] for p in test],
                    [p[1] for p in test],
                    color=colour,
                    linewidth=BOLD,
                    label=label,
                    marker="o",
                    markersize=3,
                )
        ax.set_title(title)
        ax.set_xlabel("iteration (thin: training error, bold: test error)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def plot_layer_responses(curves: Mapping[str, Sequence[float]], out: str, dpi: int = 100) -> None:
    """Fig. 7: the std of each 3x3 layer's response per model, top in layer order, bottom
    sorted in descending magnitude."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6))
    for label, stds in curves.items():
        layers = range(1, len(stds) + 1)
        top.plot(layers, stds, marker=".", linewidth=1, label=label)
        bottom.plot(layers, sorted(stds, reverse=True), marker=".", linewidth=1, label=label)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def plot_detection_bars(entry: Mapping, out: str, dpi: int = 100) -> None:
    """Tables 7/8 as bars: one group per metric (mAP@0.5, mAP@[.5:.95]), one bar per backbone
    at the mean over the seeds, each seed a dot on its bar. ``entry``: the ``detection`` entry
    of ``results.json`` (``by_seed``, ``summary``, ``labels``)."""
    plt = pyplot()
    metrics = (("mAP50", "mAP@0.5"), ("mAP", "mAP@[.5:.95]"))
    keys = list(entry["labels"])
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, key in enumerate(keys):
        xs = [m + (i - (len(keys) - 1) / 2) * width for m in range(len(metrics))]
        means = [entry["summary"][key][metric]["mean"] for metric, _ in metrics]
        ax.bar(xs, means, width * 0.9, label=entry["labels"][key])
        for x, (metric, _) in zip(xs, metrics):
            seeds = [runs[key][metric] for runs in entry["by_seed"].values()]
            ax.plot([x] * len(seeds), seeds, "k.", markersize=6)
        for x, mean in zip(xs, means):
            ax.annotate(f"{mean:.1f}", (x, mean), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(metrics)), [name for _, name in metrics])
    ax.set_ylabel("COCO AP on the proxy's val split (%)")
    ax.set_title(f"Faster R-CNN backbones ({len(entry['by_seed'])} seed(s); dots: each seed)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)
