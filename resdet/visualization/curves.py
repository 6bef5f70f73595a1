"""Training curves (thin) and validation curves (bold) against iterations for several runs,
as the paper's Figs. 1, 4 and 6, drawn from each work dir's ``metrics.jsonl`` (see
``resdet.engine.logger``); ``resdet plot-curves`` is the command line.

The keys default to what each run logged:

- classification (and localization) runs: training error ``train_err`` and validation error
  ``top1_err`` (``loc_top1_err``, ...) on one axis, in percent;
- detection runs: the total training loss ``loss`` (left axis) and the validation COCO mAP
  ``bbox_AP`` (``segm_AP``, ``voc_mAP50``) in percent (right axis).

Runs of different kinds go into side-by-side panels; a run without the chosen keys is drawn
without that curve (and a warning).
"""

from __future__ import annotations

import math
import os

from ..engine.logger import metrics_path, read_metrics
from ..utils.io import atomic_save_figure
from .plots import BOLD, THIN, pyplot

# automatic key choice: the first key a run logged wins
TRAIN_KEYS = ("train_err", "loss")
VAL_KEYS = ("top1_err", "loc_top1_err", "bbox_AP", "segm_AP", "voc_mAP50", "top5_err", "loc_top5_err")
# y-axis names of the validation scores (COCO / VOC evaluators' result keys)
SCORE_NAMES = {
    "bbox_AP": "COCO box mAP@[.5:.95]",
    "bbox_AP50": "COCO box mAP@0.5",
    "bbox_AP75": "COCO box mAP@0.75",
    "segm_AP": "COCO mask mAP@[.5:.95]",
    "segm_AP50": "COCO mask mAP@0.5",
    "voc_mAP50": "VOC mAP@0.5",
}


class CurveCounts(dict):
    """``{run label: {'train': points, 'val': points}}`` (points drawn per run), plus:

    - ``curves``: one dict per drawn line: ``run``, ``mode``, ``key``, ``points``, ``last``
      (the last value as drawn, e.g. in percent), ``ylabel``;
    - ``axes``: one dict per y axis: ``panel``, ``side`` (``'left'`` / ``'right'``),
      ``xlabel``, ``ylabel``, ``keys``;
    - ``warnings``: runs or keys that had nothing to draw.
    """

    def __init__(self) -> None:
        super().__init__()
        self.curves: list[dict] = []
        self.axes: list[dict] = []
        self.warnings: list[str] = []


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def extract_curve(records: list[dict], mode: str, key: str) -> tuple[list[int], list[float]]:
    """``(iters, values)`` of ``key`` in the records of ``mode`` ('train' / 'val'), sorted by
    iteration; a resumed run's repeated iterations keep the newest value. Non-finite values
    and records without an iteration number are skipped."""
    points: dict[int, float] = {}
    for rec in records:
        if rec.get("mode") != mode:
            continue
        it, value = _number(rec.get("iter")), _number(rec.get(key))
        if it is not None and value is not None:
            points[int(it)] = value
    iters = sorted(points)
    return iters, [points[i] for i in iters]


def _keys_of(records: list[dict], mode: str) -> list[str]:
    """Keys with a finite numeric value in the records of ``mode``, in first-seen order."""
    seen: dict[str, None] = {}
    for rec in records:
        if rec.get("mode") == mode:
            for key, value in rec.items():
                if key not in ("iter", "epoch") and _number(value) is not None:
                    seen.setdefault(key, None)
    return list(seen)


def choose_keys(records: list[dict]) -> tuple[str | None, str | None]:
    """``(train_key, val_key)`` for a run: ``train_err`` / ``top1_err`` for classification,
    ``loss`` / ``bbox_AP`` for detection, ``None`` where the run logged none of them."""
    train_keys, val_keys = _keys_of(records, "train"), _keys_of(records, "val")
    train = next((k for k in TRAIN_KEYS if k in train_keys), None)
    val = next((k for k in VAL_KEYS if k in val_keys), None)
    if val is None:  # e.g. a classifier validated on top-5 only
        val = next((k for k in val_keys if k.endswith("_err") or _quantity(k) == "score"), None)
    return train, val


def _quantity(key: str) -> str:
    """What a key measures; keys of one quantity share a y axis."""
    if key.endswith("_err"):
        return "error"
    if key == "loss" or key.startswith("loss_"):
        return "loss"
    name = key.split("/")[0]
    if "_AP" in name or "_AR" in name or name.startswith("voc_mAP"):
        return "score"  # COCO AP / AR, VOC mAP: fractions, -1 where undefined
    return key


def _ylabel(quantity: str, keys: list[str], percent: bool) -> str:
    unit = " (%)" if percent else ""
    if quantity == "error":
        return "error" + unit
    if quantity == "loss":
        return "training loss" if keys == ["loss"] else "loss (" + ", ".join(keys) + ")"
    if quantity == "score":
        return " / ".join(SCORE_NAMES.get(k, k) for k in keys) + unit
    return ", ".join(keys) + unit


def _unique(labels: list[str]) -> list[str]:
    """Labels made unique (two ``.../work`` dirs would share one legend entry and count)."""
    out = []
    for label in labels:
        candidate, n = label, 1
        while candidate in out:
            n += 1
            candidate = f"{label} ({n})"
        out.append(candidate)
    return out


def _default_label(work_dir: str) -> str:
    path = os.path.abspath(work_dir)
    if os.path.isfile(path):  # a metrics file: its run's folder, or its own name
        name = os.path.basename(path)
        return os.path.basename(os.path.dirname(path)) if name == "metrics.jsonl" else os.path.splitext(name)[0]
    return os.path.basename(path)


def _scale(quantity: str, percent: bool | None) -> float:
    return 100.0 if (quantity in ("error", "score") if percent is None else percent) else 1.0


def _run_curves(records, train_key, val_key, percent):
    """The curves of one run: ``[(mode, key, quantity, iters, scaled values)]``."""
    auto_train, auto_val = choose_keys(records)
    curves = []
    for mode, key in (("train", train_key or auto_train), ("val", val_key or auto_val)):
        if key is None:
            continue
        quantity = _quantity(key)
        iters, values = extract_curve(records, mode, key)
        if quantity == "score":  # pycocotools' -1: no ground truth of that kind
            kept = [(i, v) for i, v in zip(iters, values) if v >= 0]
            iters, values = [i for i, _ in kept], [v for _, v in kept]
        scale = _scale(quantity, percent)
        curves.append((mode, key, quantity, iters, [v * scale for v in values]))
    return curves


def _panels(runs: list[dict]) -> list[list[str]]:
    """Group the quantities into panels of at most two y axes (left: training, right:
    validation): runs logging the same pair share a panel; a run with one curve joins a panel
    that shows its quantity."""
    panels: list[list[str]] = []
    pairs = [list(dict.fromkeys(c[2] for c in run["curves"] if c[3])) for run in runs]
    for quantities in sorted(pairs, key=len, reverse=True):
        if quantities and not any(set(quantities) <= set(p) for p in panels):
            panels.append(quantities)
    first_run = [next(i for i, q in enumerate(pairs) if q and set(q) <= set(p)) for p in panels]
    panels = [p for _, p in sorted(zip(first_run, panels))]  # in the order of the runs
    for run, quantities in zip(runs, pairs):
        run["panel"] = next((i for i, p in enumerate(panels) if quantities and set(quantities) <= set(p)), 0)
    return panels or [[]]


def plot_curves(
    work_dirs: list[str],
    out: str,
    labels: list[str] | None = None,
    train_key: str | None = None,
    val_key: str | None = None,
    percent: bool | None = None,
    title: str | None = None,
) -> CurveCounts:
    """Draw the curves of every run into ``out`` (PNG, PDF, SVG by extension).

    Args:
        train_key, val_key: record keys of the thin (training) and bold (validation) lines;
            ``None`` picks them per run (see ``choose_keys``).
        percent: scale to percent; ``None``: error and AP keys only, True / False: every key.

    Returns a ``CurveCounts``: ``{label: {'train': n, 'val': n}}`` (points drawn per run) with
    the drawn ``curves``, the ``axes`` labels and ``warnings``. Raises only for unreadable
    metrics files and for a key given explicitly that no run logged."""
    labels = _unique(labels or [_default_label(d) for d in work_dirs])
    if len(labels) != len(work_dirs):
        raise ValueError(f"{len(work_dirs)} work dirs but {len(labels)} labels")
    all_records = [read_metrics(d) for d in work_dirs]  # every file is checked before drawing
    for mode, key in (("train", train_key), ("val", val_key)):
        present = sorted({k for recs in all_records for k in _keys_of(recs, mode)})
        if key is not None and key not in present:
            raise ValueError(
                f"no run logged '{key}' in its {mode} records; keys present: {', '.join(present) or 'none'}"
            )
    runs = [
        dict(
            label=label,
            path=metrics_path(d),
            colour=f"C{i % 10}",
            records=recs,
            curves=_run_curves(recs, train_key, val_key, percent),
        )
        for i, (label, d, recs) in enumerate(zip(labels, work_dirs, all_records))
    ]
    panels = _panels(runs)
    counts = _count(runs)
    plt = pyplot()
    fig, grid = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for index, quantities in enumerate(panels):
        members = [run for run in runs if run["panel"] == index]
        _draw_panel(grid[0][index], index, quantities, members, percent, title if len(panels) == 1 else None, counts)
    if title and len(panels) > 1:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_save_figure(fig, out)
    plt.close(fig)
    return counts


def _count(runs: list[dict]) -> CurveCounts:
    """The points of each run's curves, with a warning for each run or curve without any."""
    counts = CurveCounts()
    for run in runs:
        counts[run["label"]] = {"train": 0, "val": 0}
        if not run["curves"]:
            counts.warnings.append(f"{run['label']}: nothing to plot in {run['path']} ({len(run['records'])} records)")
        for mode, key, _, iters, _ in run["curves"]:
            counts[run["label"]][mode] = len(iters)
            if not iters:
                present = _keys_of(run["records"], mode)
                counts.warnings.append(
                    f"{run['label']}: no {mode} '{key}' values in {run['path']} "
                    f"({mode} keys: {', '.join(present) or 'none'})"
                )
    return counts


def _draw_panel(
    base,
    index: int,
    quantities: list[str],
    members: list[dict],
    percent: bool | None,
    title: str | None,
    counts: CurveCounts,
) -> None:
    """One panel: a y axis per quantity (the second one a twin on the right), the curves of
    its ``members``, a title and a legend; every line and axis drawn is added to ``counts``."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    drawn: dict[str, list[str]] = {"train": [], "val": []}
    ax = base
    for side, quantity in enumerate(quantities):
        ax = base if side == 0 else base.twinx()
        lines = [(run, c) for run in members for c in run["curves"] if c[2] == quantity and c[3]]
        keys = list(dict.fromkeys(c[1] for _, c in lines))
        ylabel = _ylabel(quantity, keys, any(_scale(c[2], percent) != 1 for _, c in lines))
        for run, (mode, key, _, iters, values) in lines:
            ax.plot(
                iters,
                values,
                color=run["colour"],
                linewidth=THIN if mode == "train" else BOLD,
                alpha=0.8 if mode == "train" else 1.0,
            )
            counts.curves.append(
                {
                    "run": run["label"],
                    "mode": mode,
                    "key": key,
                    "points": len(iters),
                    "last": values[-1],
                    "ylabel": ylabel,
                }
            )
            drawn[mode].append(key)
        ax.set_ylabel(ylabel)
        if quantity == "score":
            ax.set_ylim(bottom=0)
        counts.axes.append(
            {
                "panel": index,
                "side": "left" if side == 0 else "right",
                "xlabel": "iterations",
                "ylabel": ylabel,
                "keys": keys,
            }
        )
    base.set_xlabel("iterations")
    base.xaxis.set_major_locator(MaxNLocator(integer=True))
    base.grid(alpha=0.3)
    parts = [
        f"{'thin: training' if mode == 'train' else 'bold: validation'} {', '.join(dict.fromkeys(keys))}"
        for mode, keys in drawn.items()
        if keys
    ]
    base.set_title(title or ", ".join(parts) or "no curves")
    # on the top axes (the twin, if any) so no curve hides it
    ax.legend(handles=[Line2D([], [], color=run["colour"], linewidth=BOLD, label=run["label"]) for run in members])
