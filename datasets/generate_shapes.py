#!/usr/bin/env python
"""Generate the synthetic shapes data sets (deterministic by seed).

    python datasets/generate_shapes.py cls --out data/shapes_cls --num-train 2500 --num-val 500
    python datasets/generate_shapes.py det --out data/shapes_det --num-train 1000 --num-val 200
    python datasets/generate_shapes.py loc --out data/shapes_loc --num-train 1000 --num-val 200

``cls`` writes ``OUT/{train,val}/<class>/*.png`` (ImageNet folder layout); ``det`` and ``loc``
write ``OUT/{train,val}/annotations.json`` (COCO instances) and ``OUT/{train,val}/images/``.
Each split also gets the ``shapes_meta.json`` the shapes datasets check, so a config reading
the same settings (``ShapesClsDataset``, ``ShapesCocoDataset``) uses these files as they are; a
split already holding exactly this set is left alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resdet.data.datasets.coco import ensure_shapes_det  # noqa: E402
from resdet.data.datasets.shapes import ensure_shapes_cls  # noqa: E402
from resdet.data.synthetic.cache import split_seed  # noqa: E402
from resdet.data.synthetic.shapes import SHAPE_CLASSES  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flavour", choices=("cls", "det", "loc"), help="which data set to generate")
    parser.add_argument("--out", required=True, help="output root (gets train/ and val/)")
    parser.add_argument("--num-train", type=int, default=2500)
    parser.add_argument("--num-val", type=int, default=500)
    parser.add_argument(
        "--image-size", type=int, default=None, help="square image side (default: 64 for cls, 256 for det/loc)"
    )
    parser.add_argument("--seed", type=int, default=0, help="train uses SEED, val SEED+1")
    parser.add_argument(
        "--ext", choices=("png", "jpg"), default=None, help="image format (default: png for cls, jpg for det/loc)"
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=list(SHAPE_CLASSES),
        help=f"shape classes, a subset of {' '.join(SHAPE_CLASSES)}",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    unknown = [c for c in args.classes if c not in SHAPE_CLASSES]
    if unknown:
        raise SystemExit(f"unknown classes {unknown}; allowed: {', '.join(SHAPE_CLASSES)}")
    start = time.time()
    for split, count in (("train", args.num_train), ("val", args.num_val)):
        seed = split_seed(args.seed, split)
        out = os.path.join(args.out, split)
        if args.flavour == "cls":
            ensure_shapes_cls(out, count, args.image_size or 64, seed, tuple(args.classes), ext=args.ext or "png")
        else:
            # only the options that differ from the generator's defaults, as a config passes them
            kwargs = {} if args.flavour == "det" else {"flavour": args.flavour}
            if tuple(args.classes) != tuple(SHAPE_CLASSES):
                kwargs["classes"] = list(args.classes)
            if args.ext not in (None, "jpg"):
                kwargs["ext"] = args.ext
            out = ensure_shapes_det(out, count, args.image_size or 256, seed, kwargs)
        print(f"{split}: {out}")
    print(f"generated {args.num_train} + {args.num_val} {args.flavour} images in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
