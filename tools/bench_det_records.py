"""Indicative build-time figures of the detection record store on a generated COCO-shaped
file (the official full-size numbers come from ``resdet benchmark data``).

    python tools/bench_det_records.py --images 20000 --out /tmp/cocolike

Writes ``instances.json`` (COCO train2017 proportions: ~7.3 instances per image, polygons of
~25 vertices, 1 % crowds as RLE) and one empty file per image, then builds, each in a fresh
process: ``json.load``, torchvision ``CocoDetection``, ``CocoDataset`` (no cache, cold cache,
warm cache) with and without masks; prints the CPU seconds of the whole process (imports
included) and of the build alone, the build's wall time, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_RESDET = "from resdet.data.datasets import CocoDataset"
CASES = {  # name: (imports, the build measured)
    "json.load": ("import json", "json.load(open(ANN))"),
    "torchvision CocoDetection": ("from torchvision.datasets import CocoDetection", "CocoDetection(IMG, ANN)"),
    "CocoDataset (no cache)": (_RESDET, "CocoDataset(ANN, IMG, cache_dir=False)"),
    "CocoDataset (cold cache)": (_RESDET, "CocoDataset(ANN, IMG, cache_dir=CACHE)"),
    "CocoDataset (warm cache)": (_RESDET, "CocoDataset(ANN, IMG, cache_dir=CACHE)"),
    "CocoDataset masks (no cache)": (_RESDET, "CocoDataset(ANN, IMG, with_masks=True, cache_dir=False)"),
    "CocoDataset masks (cold cache)": (_RESDET, "CocoDataset(ANN, IMG, with_masks=True, cache_dir=CACHE)"),
    "CocoDataset masks (warm cache)": (_RESDET, "CocoDataset(ANN, IMG, with_masks=True, cache_dir=CACHE)"),
}
PROBE = """
import resource, shutil, time, warnings
warnings.simplefilter('ignore')
ANN, IMG, CACHE = {ann!r}, {img!r}, {cache!r}
if {cold!r}:
    shutil.rmtree(CACHE, True)
{imports}
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, start = cpu(), time.perf_counter()
dataset = {build}
after, wall = cpu(), time.perf_counter() - start
print(after, after - before, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def generate(out: str, num_images: int, seed: int = 0) -> str:
    import numpy as np
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    img_dir = os.path.join(out, "images")
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        h, w = int(rng.integers(360, 641)), int(rng.integers(480, 641))
        name = f"{i:012d}.jpg"
        open(os.path.join(img_dir, name), "wb").close()
        images.append(dict(id=i + 1, file_name=name, height=h, width=w))
        for _ in range(int(rng.poisson(7.3))):
            cx, cy = rng.uniform(20, w - 20), rng.uniform(20, h - 20)
            r = rng.uniform(5, min(cx, cy, w - cx, h - cy, 150))
            ann = dict(
                id=len(annotations) + 1,
                image_id=i + 1,
                category_id=int(rng.integers(1, 81)),
                bbox=[round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(2 * r, 2)],
                area=3.1 * r * r,
            )
            if rng.random() < 0.01:
                box = np.zeros((h, w), np.uint8, order="F")
                box[int(cy - r) : int(cy + r), int(cx - r) : int(cx + r)] = 1
                rle = mask_utils.encode(box)
                ann.update(iscrowd=1, segmentation=dict(size=[h, w], counts=rle["counts"].decode()))
            else:
                t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(12, 40))))
                poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1).round(2).reshape(-1)
                ann.update(iscrowd=0, segmentation=[poly.tolist()])
            annotations.append(ann)
    categories = [dict(id=k, name=f"class{k}", supercategory="x") for k in range(1, 81)]
    ann_file = os.path.join(out, "instances.json")
    with open(ann_file, "w") as fh:
        json.dump(dict(images=images, annotations=annotations, categories=categories), fh)
    return ann_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--out", default="/tmp/cocolike")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    ann_file = os.path.join(args.out, "instances.json")
    if not os.path.isfile(ann_file):
        generate(args.out, args.images)
    cache = os.path.join(args.out, "cache")
    size = os.path.getsize(ann_file) / 2**20
    print(f"{ann_file}: {size:.0f} MiB")
    for name in args.cases:
        imports, build = CASES[name]
        code = PROBE.format(
            ann=ann_file,
            img=os.path.join(args.out, "images"),
            cache=cache,
            cold="cold" in name,
            imports=imports,
            build=build,
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        total, cpu, wall, rss = (float(v) for v in out.split()[-4:])
        print(
            f"{name:32s} process cpu {total:6.2f} s  build cpu {cpu:6.2f} s  build wall {wall:6.2f} s  "
            f"peak RSS {rss:5.2f} GiB"
        )


if __name__ == "__main__":
    main()
