"""Draw a detector's boxes, class names and scores (and masks) on copies of images.

    python tools/demo.py configs/shapes_frcnn.py work_dirs/shapes_frcnn/final.pth img1.jpg img2.jpg \
        --out demo_out --score-thr 0.5

Each copy keeps its input's format (a .png gives a .png; --ext jpg|png chooses one for all);
for a single image --out may name the file itself (--out result.png). Every class has its own
colour; labels stay inside the picture and out of each other's way, masks are translucent with
outlines, and a legend lists the classes when 9 or more of them are drawn. Class names come
from the checkpoint's meta['classes'], else the config's `classes` (or its val dataset's).

A localization model (configs/loc_*.py) draws all of its top-k class guesses, each with its
class name, classifier score, rank and box, whatever --score-thr; --top-k K draws the K best
predictions of either kind of model regardless of the threshold.

    python tools/demo.py configs/loc_shapes.py work_dirs/loc_shapes/final.pth img.jpg --out result.png

With --backend onnxruntime the first argument is a file from `resdet export --format onnx` and
the rest are images: the file alone draws (onnxruntime runs it; class names come from its
metadata; no config, checkpoint or resdet model code).

    python tools/demo.py --backend onnxruntime bccd.onnx img1.jpg img2.jpg --out demo_out
"""
from __future__ import annotations

import argparse
import os
import sys

from resdet.cli._errors import command
from resdet.utils.config import add_cfg_options_arg
from resdet.utils.errors import DataError
from resdet.utils.outputs import check_output_path
from resdet.visualization.save import OUTPUT_FORMATS, is_image_file_path, same_format

BACKENDS = ("pytorch", "onnxruntime")


def build_parser(onnx: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=BACKENDS, default="pytorch",
                        help="pytorch (CONFIG CHECKPOINT IMAGE...) or onnxruntime (MODEL.onnx IMAGE...)")
    if onnx:
        parser.add_argument("model", help="a detector exported with `resdet export --format onnx`")
    else:
        parser.add_argument("config", help="config file, or a name in configs/")
        parser.add_argument("checkpoint", help="detector checkpoint (.pth)")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--out", required=True,
                        help="folder for the annotated copies, or for a single image the output file "
                             "(e.g. result.png; its extension sets the format)")
    parser.add_argument("--ext", choices=OUTPUT_FORMATS, default=None,
                        help="format of the copies (default: the input's own: .png stays .png, .jpg stays "
                             ".jpg; other formats become .png)")
    parser.add_argument("--score-thr", type=float, default=0.5, help="minimum score drawn (default 0.5)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="draw the K highest-scoring predictions whatever --score-thr (default: all "
                             "guesses of a localization model, --score-thr alone for detectors)")
    parser.add_argument("--device", default="cpu")
    add_cfg_options_arg(parser)
    return parser


def _backend(argv) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--backend", choices=BACKENDS, default="pytorch")
    known, _ = pre.parse_known_args(argv)
    return known.backend


def draw_with_onnxruntime(args) -> list[str]:
    """Draw with the exported file alone: onnxruntime, class names from its metadata."""
    from resdet.data.image_io import imread_rgb
    from resdet.deploy.runtime import OnnxModel
    from resdet.visualization import draw_detections, output_paths, save_image, select_detections
    if not os.path.isfile(args.model):
        raise DataError(f"model file not found: {args.model} (relative paths are from {os.getcwd()})")
    model = OnnxModel(args.model)
    names = model.class_names or None
    written = []
    for path, out in zip(args.images, output_paths(list(args.images), args.out, args.ext)):
        image = imread_rgb(path)
        result = model.detect(image)
        drawn = draw_detections(image, result["boxes"], result["labels"], result["scores"], masks=result.get("masks"),
                                class_names=names, score_thr=args.score_thr, top_k=args.top_k)
        save_image(drawn, out)
        written.append(out)
        shown = select_detections(result["scores"], len(result["boxes"]), score_thr=args.score_thr, top_k=args.top_k)
        items = [f"{names[int(result['labels'][i])] if names else int(result['labels'][i])} "
                 f"{float(result['scores'][i]):.3f}" for i in list(shown)[:10]]
        print(f"{out}: {len(shown)} drawn" + (": " + "; ".join(items) if items else ""))
    return written


@command("demo")
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(onnx=_backend(argv) == "onnxruntime")
    args = parser.parse_args(argv)
    if is_image_file_path(args.out):
        if len(args.images) != 1:
            parser.error(f"--out {args.out} names one file but {len(args.images)} images were given; "
                         "pass a folder for several images")
        if args.ext and not same_format(os.path.splitext(args.out)[1], args.ext):
            parser.error(f"--out {args.out} and --ext {args.ext} disagree; give one of them")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise DataError(f"image file(s) not found: {', '.join(missing)} (relative paths are from {os.getcwd()})")
    check_output_path(args.out, what="--out", directory=not is_image_file_path(args.out))
    if args.backend == "onnxruntime":
        written = draw_with_onnxruntime(args)
        where = written[0] if is_image_file_path(args.out) else os.path.join(os.path.normpath(args.out), "")
        print(f"drew detections on {len(written)} image(s) in {where}")
        return 0
    from resdet.apis import init_model
    from resdet.apis.detect import draw_and_save
    from resdet.utils.io import safe_load
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise DataError(f"image file(s) not found: {', '.join(missing)} (relative paths are from {os.getcwd()})")
    model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    meta = safe_load(args.checkpoint).get("meta", {})
    names = meta.get("classes") if isinstance(meta, dict) else None
    written = draw_and_save(model, args.images, args.out, score_thr=args.score_thr, class_names=names,
                            top_k=args.top_k, verbose=True, ext=args.ext)
    where = written[0] if is_image_file_path(args.out) else os.path.join(os.path.normpath(args.out), "")
    print(f"drew detections on {len(written)} image(s) in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
