"""Training curves (thin) and validation curves (bold) against iterations for several runs,
as the paper's Figs. 1, 4 and 6. Reads each work dir's ``metrics.jsonl`` (written by the engine).

    resdet plot-curves work_dirs/plain20_cifar10 work_dirs/resnet20_cifar10 --out fig6.png
    resdet plot-curves work_dirs/frcnn_r101_coco --out det.png

The keys default to what each run logged:

- classification (and localization) runs: training error ``train_err`` and validation error
  ``top1_err`` (``loc_top1_err``, ...) on one axis, in percent;
- detection runs: the total training loss ``loss`` (left axis) and the validation COCO mAP
  ``bbox_AP`` (``segm_AP``, ``voc_mAP50``) in percent (right axis).

Runs of different kinds go into side-by-side panels. ``--train-key`` / ``--val-key`` choose
keys for every run; a run without them is drawn without that curve (and a warning).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from resdet.cli._errors import command
from resdet.utils.outputs import check_output_path

# automatic key choice: the first key a run logged wins
TRAIN_KEYS = ("train_err", "loss")
VAL_KEYS = ("top1_err", "loc_top1_err", "bbox_AP", "segm_AP", "voc_mAP50", "top5_err", "loc_top5_err")
# y-axis names of the validation scores (COCO / VOC evaluators' result keys)
SCORE_NAMES = {"bbox_AP": "COCO box mAP@[.5:.95]", "bbox_AP50": "COCO box mAP@0.5",
               "bbox_AP75": "COCO box mAP@0.75", "segm_AP": "COCO mask mAP@[.5:.95]",
               "segm_AP50": "COCO mask mAP@0.5", "voc_mAP50": "VOC mAP@0.5"}
THIN, BOLD = 0.8, 2.2


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


def _metrics_path(work_dir: str) -> str:
    return work_dir if os.path.isfile(work_dir) else os.path.join(work_dir, "metrics.jsonl")


def read_metrics(work_dir: str) -> list[dict]:
    """The records of ``work_dir/metrics.jsonl`` (a path to the file itself also works).

    Lines that are not valid JSON (e.g. a line cut by a crash) are skipped; an empty file has
    no records. A missing or unreadable file, or one that holds no JSON records at all, raises
    an error (``FileNotFoundError`` / ``OSError`` / ``ValueError``) that names it."""
    path = _metrics_path(work_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist (the engine writes metrics.jsonl in the work dir)")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError as err:
        raise OSError(f"cannot read {path}: {err.strerror or err}") from err
    records, foreign = [], 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            foreign += not line.startswith("{")  # a line cut mid-write still starts with '{'
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            foreign += 1
    if not records and foreign:
        raise ValueError(f"{path} holds no JSON records (is it a resdet metrics.jsonl?)")
    return records


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


def plot_curves(work_dirs: list[str], out: str, labels: list[str] | None = None,
                train_key: str | None = None, val_key: str | None = None, percent: bool | None = None,
                title: str | None = None) -> CurveCounts:
    """Draw the curves of every run into ``out`` (PNG, PDF, SVG by extension).

    Args:
        train_key, val_key: record keys of the thin (training) and bold (validation) lines;
            ``None`` picks them per run (see ``choose_keys``).
        percent: scale to percent; ``None``: error and AP keys only, True / False: every key.

    Returns a ``CurveCounts``: ``{label: {'train': n, 'val': n}}`` (points drawn per run) with
    the drawn ``curves``, the ``axes`` labels and ``warnings``. Raises only for unreadable
    metrics files and for a key given explicitly that no run logged."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from resdet.utils.io import atomic_save_figure

    labels = _unique(labels or [_default_label(d) for d in work_dirs])
    if len(labels) != len(work_dirs):
        raise ValueError(f"{len(work_dirs)} work dirs but {len(labels)} labels")
    all_records = [read_metrics(d) for d in work_dirs]  # every file is checked before drawing
    for mode, key in (("train", train_key), ("val", val_key)):
        present = sorted({k for recs in all_records for k in _keys_of(recs, mode)})
        if key is not None and key not in present:
            raise ValueError(f"no run logged '{key}' in its {mode} records; keys present: "
                             f"{', '.join(present) or 'none'}")
    runs = [dict(label=label, path=_metrics_path(d), colour=f"C{i % 10}",
                 curves=_run_curves(recs, train_key, val_key, percent))
            for i, (label, d, recs) in enumerate(zip(labels, work_dirs, all_records))]
    panels = _panels(runs)

    counts = CurveCounts()
    for index, run in enumerate(runs):
        counts[run["label"]] = {"train": 0, "val": 0}
        if not run["curves"]:
            counts.warnings.append(f"{run['label']}: nothing to plot in {run['path']} "
                                   f"({len(all_records[index])} records)")
        for mode, key, _, iters, _ in run["curves"]:
            counts[run["label"]][mode] = len(iters)
            if not iters:
                present = _keys_of(all_records[index], mode)
                counts.warnings.append(f"{run['label']}: no {mode} '{key}' values in {run['path']} "
                                       f"({mode} keys: {', '.join(present) or 'none'})")

    fig, grid = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for index, quantities in enumerate(panels):
        members = [run for run in runs if run["panel"] == index]
        base = grid[0][index]
        drawn: dict[str, list[str]] = {"train": [], "val": []}
        ax = base
        for side, quantity in enumerate(quantities):
            ax = base if side == 0 else base.twinx()
            lines = [(run, c) for run in members for c in run["curves"] if c[2] == quantity and c[3]]
            keys = list(dict.fromkeys(c[1] for _, c in lines))
            ylabel = _ylabel(quantity, keys, any(_scale(c[2], percent) != 1 for _, c in lines))
            for run, (mode, key, _, iters, values) in lines:
                ax.plot(iters, values, color=run["colour"], linewidth=THIN if mode == "train" else BOLD,
                        alpha=0.8 if mode == "train" else 1.0)
                counts.curves.append({"run": run["label"], "mode": mode, "key": key, "points": len(iters),
                                      "last": values[-1], "ylabel": ylabel})
                drawn[mode].append(key)
            ax.set_ylabel(ylabel)
            if quantity == "score":
                ax.set_ylim(bottom=0)
            counts.axes.append({"panel": index, "side": "left" if side == 0 else "right",
                                "xlabel": "iterations", "ylabel": ylabel, "keys": keys})
        base.set_xlabel("iterations")
        base.xaxis.set_major_locator(MaxNLocator(integer=True))
        base.grid(alpha=0.3)
        parts = [f"{'thin: training' if mode == 'train' else 'bold: validation'} "
                 f"{', '.join(dict.fromkeys(keys))}" for mode, keys in drawn.items() if keys]
        base.set_title(title if title and len(panels) == 1 else ", ".join(parts) or "no curves")
        # on the top axes (the twin, if any) so no curve hides it
        ax.legend(handles=[Line2D([], [], color=run["colour"], linewidth=BOLD, label=run["label"])
                           for run in members])
    if title and len(panels) > 1:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_save_figure(fig, out)
    plt.close(fig)
    return counts


@command("plot-curves")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", help="work dirs (or metrics.jsonl files) of the runs")
    parser.add_argument("--out", required=True, help="output image (PNG, PDF, SVG)")
    parser.add_argument("--labels", nargs="+", default=None, help="legend names (default: dir names)")
    parser.add_argument("--train-key", default=None,
                        help="training record key (thin lines; default: train_err, else loss)")
    parser.add_argument("--val-key", default=None,
                        help="validation record key (bold lines; default: top1_err, bbox_AP, ... as logged)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    check_output_path(args.out, what="--out")
    try:
        counts = plot_curves(args.work_dirs, args.out, args.labels, args.train_key, args.val_key,
                             title=args.title)
    except (OSError, ValueError) as err:
        print(f"plot-curves: error: {err}", file=sys.stderr)
        return 2
    for message in counts.warnings:
        print(f"plot-curves: warning: {message}", file=sys.stderr)
    for label, n in counts.items():
        drawn = {c["mode"]: f"{c['key']}, last {c['last']:.4g}" for c in counts.curves if c["run"] == label}
        print(f"{label}: {n['train']} training points ({drawn.get('train', '-')}), "
              f"{n['val']} validation points ({drawn.get('val', '-')})")
    for axis in counts.axes:
        print(f"panel {axis['panel']} {axis['side']} axis: {axis['ylabel']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
