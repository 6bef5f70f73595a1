"""Side-by-side metric table of several runs (e.g. VGG-16 vs ResNet-101, the paper's
Tables 7/8) from their work dirs' ``metrics.jsonl`` (last ``"mode": "val"`` record each).

    resdet compare-runs work_dirs/frcnn_vgg16_coco work_dirs/frcnn_r101_coco
    resdet compare-runs RUN... --keys bbox_AP50 bbox_AP --markdown
"""

from __future__ import annotations

import argparse
import os
import sys

from resdet.cli._errors import command
from resdet.engine.logger import metrics_path, read_metrics
from resdet.utils.errors import DataError

DEFAULT_KEYS = ("bbox_AP50", "bbox_AP", "bbox_AP75", "segm_AP", "voc_mAP50", "top1_err", "top5_err", "loc_err")
LABELS = {
    "bbox_AP50": "mAP@0.5",
    "bbox_AP": "mAP@[.5:.95]",
    "bbox_AP75": "mAP@0.75",
    "segm_AP": "segm mAP@[.5:.95]",
    "voc_mAP50": "VOC mAP@0.5",
}


def last_val_record(work_dir: str) -> dict:
    """The last validation record of ``work_dir/metrics.jsonl`` (errors name the file)."""
    records = read_metrics(work_dir, mode="val")
    if not records:
        raise DataError(f"{metrics_path(work_dir)} has no validation record")
    return records[-1]


def build_table(work_dirs: list[str], keys: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    records = [last_val_record(w) for w in work_dirs]
    if keys is None:
        keys = [k for k in DEFAULT_KEYS if any(k in r for r in records)]
    header = ["run", "iter"] + [LABELS.get(k, k) for k in keys]
    rows = []
    for work_dir, record in zip(work_dirs, records):
        row = [os.path.basename(os.path.normpath(work_dir)), str(record.get("iter", ""))]
        for key in keys:
            value = record.get(key)
            row.append(f"{100 * value:.1f}" if isinstance(value, (int, float)) and value >= 0 else "-")
        rows.append(row)
    return header, rows


def format_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def format_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


@command("compare-runs")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", help="training work dirs")
    parser.add_argument("--keys", nargs="+", default=None, help="metric keys (default: the usual ones present)")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table")
    args = parser.parse_args(argv)
    header, rows = build_table(args.work_dirs, args.keys)
    if not args.markdown:
        print(format_text(header, rows))
        print()
    print(format_markdown(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
