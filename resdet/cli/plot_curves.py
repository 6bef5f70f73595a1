"""Training error (thin) and validation error (bold) against iterations for several runs,
as the paper's Figs. 1, 4 and 6. Reads each work dir's ``metrics.jsonl`` (written by the engine).

    python tools/analysis/plot_curves.py work_dirs/plain20_cifar10 work_dirs/resnet20_cifar10 --out fig6.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys



def read_metrics(work_dir: str) -> list[dict]:
    """The records of ``work_dir/metrics.jsonl`` (a path to the file itself also works).
    Lines that are not valid JSON (e.g. a line cut by a crash) are skipped."""
    path = work_dir if os.path.isfile(work_dir) else os.path.join(work_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (the engine writes metrics.jsonl in the work dir)")
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def extract_curve(records: list[dict], mode: str, key: str) -> tuple[list[int], list[float]]:
    """``(iters, values)`` of ``key`` in the records of ``mode`` ('train' / 'val'), sorted by
    iteration; a resumed run's repeated iterations keep the newest value."""
    points: dict[int, float] = {}
    for rec in records:
        if rec.get("mode") == mode and key in rec and isinstance(rec[key], (int, float)):
            points[int(rec["iter"])] = float(rec[key])
    iters = sorted(points)
    return iters, [points[i] for i in iters]


def plot_curves(work_dirs: list[str], out: str, labels: list[str] | None = None,
                train_key: str = "train_err", val_key: str = "top1_err", percent: bool = True,
                title: str | None = None) -> dict:
    """Draw the curves of every run into ``out`` (PNG); returns ``{label: {'train': n, 'val': n}}``
    (points drawn per run)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = labels or [os.path.basename(os.path.normpath(d)) for d in work_dirs]
    if len(labels) != len(work_dirs):
        raise ValueError(f"{len(work_dirs)} work dirs but {len(labels)} labels")
    scale = 100.0 if percent else 1.0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    counts = {}
    for index, (work_dir, label) in enumerate(zip(work_dirs, labels)):
        records = read_metrics(work_dir)
        colour = f"C{index % 10}"
        tx, ty = extract_curve(records, "train", train_key)
        vx, vy = extract_curve(records, "val", val_key)
        if not tx and not vx:
            raise ValueError(f"{work_dir}: no '{train_key}' (train) or '{val_key}' (val) values in metrics.jsonl")
        if tx:
            ax.plot(tx, [v * scale for v in ty], color=colour, linewidth=0.8, alpha=0.8)
        if vx:
            ax.plot(vx, [v * scale for v in vy], color=colour, linewidth=2.2, label=label)
        else:
            ax.plot([], [], color=colour, linewidth=2.2, label=label)
        counts[label] = {"train": len(tx), "val": len(vx)}
    ax.set_xlabel("iterations")
    ax.set_ylabel("error (%)" if percent else "error")
    ax.set_title(title or f"thin: training {train_key}, bold: validation {val_key}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from resdet.utils.io import atomic_save_figure
    atomic_save_figure(fig, out)
    plt.close(fig)
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", help="work dirs (or metrics.jsonl files) of the runs")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--labels", nargs="+", default=None, help="legend names (default: dir names)")
    parser.add_argument("--train-key", default="train_err", help="training record key (thin lines)")
    parser.add_argument("--val-key", default="top1_err", help="validation record key (bold lines)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    counts = plot_curves(args.work_dirs, args.out, args.labels, args.train_key, args.val_key, title=args.title)
    for label, n in counts.items():
        print(f"{label}: {n['train']} training points, {n['val']} validation points")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
