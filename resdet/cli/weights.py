"""Public weights resdet knows by name: list them, or fetch one into torch's hub cache.

    resdet weights --list                                   # names, configs, sizes, cached?
    resdet weights --download fasterrcnn_resnet50_fpn_coco  # fetch, verify, convert once
    resdet eval frcnn_r50_fpn_tv torchvision://fasterrcnn_resnet50_fpn_coco
    resdet demo frcnn_r50_fpn_tv torchvision://fasterrcnn_resnet50_fpn_coco photo.jpg --out out/
    # a detector's ImageNet initialisation:
    resdet train-det CONFIG --cfg-options model.init_cfg.checkpoint=torchvision://resnet50

Any CHECKPOINT argument (eval, demo, export, init_model, load_from, init_cfg) takes
``torchvision://NAME``: the file is downloaded into ``<torch.hub.get_dir()>/checkpoints``
(``$TORCH_HOME/hub/checkpoints``), its SHA-256 checked against the prefix in its name, converted
once and kept beside it as ``*.resdet.pth``. Offline, copy the file named by the error to the
path it gives. ``RESDET_WEIGHTS_URL`` sets another download base (a mirror),
``RESDET_DOWNLOAD_TIMEOUT`` the seconds to wait for the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ._errors import command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resdet weights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list the known weights and whether they are cached")
    action.add_argument("--download", metavar="NAME", help="fetch NAME (with or without torchvision://)")
    parser.add_argument("--no-convert", action="store_true", help="with --download: keep only the torchvision file")
    parser.add_argument(
        "--base-url",
        default=None,
        help="download base URL (default: $RESDET_WEIGHTS_URL, else https://download.pytorch.org/models/)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait for the server (default: $RESDET_DOWNLOAD_TIMEOUT, else 60)",
    )
    parser.add_argument("--json", action="store_true", help="with --list: one JSON object per line")
    return parser


def _rows() -> list[dict]:
    from resdet.models.converters import MANIFEST, cached_path, converted_path

    return [
        {
            "name": "torchvision://" + e.name,
            "config": e.config,
            "size_mb": e.size_mb,
            "downloaded": os.path.isfile(cached_path(e)),
            "converted": os.path.isfile(converted_path(e)),
            "path": cached_path(e),
            "description": e.description,
        }
        for e in MANIFEST.values()
    ]


def _print_list(as_json: bool) -> None:
    from resdet.models.converters import cache_dir

    rows = _rows()
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    width = max(len(r["name"]) for r in rows)
    cfg_width = max(len(r["config"]) for r in rows)
    print(f"{'name':<{width}}  {'config':<{cfg_width}}  {'size':>8}  cached")
    for row in rows:
        state = "converted" if row["converted"] else "downloaded" if row["downloaded"] else "no"
        print(f"{row['name']:<{width}}  {row['config']:<{cfg_width}}  {row['size_mb']:>6.1f}MB  {state}")
    print(f"cache: {cache_dir()} (TORCH_HOME moves it)")


def _progress():
    """A progress callback printing whole percents on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None
    shown = [-1]

    def report(received: int, total: int | None) -> None:
        percent = int(100 * received / total) if total else -1
        if percent != shown[0]:
            shown[0] = percent
            print(f"\r  {received / 1e6:.1f} MB" + (f" ({percent}%)" if total else ""), end="", file=sys.stderr)

    return report


@command("weights")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        _print_list(args.json)
        return 0
    from resdet.models.converters import resolve_weights

    path = resolve_weights(
        args.download, converted=not args.no_convert, base_url=args.base_url, timeout=args.timeout, progress=_progress()
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
