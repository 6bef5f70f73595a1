"""Draw a model's predictions on images, folders, globs, list files, videos or a webcam.

    resdet demo configs/shapes_frcnn.py work_dirs/shapes_frcnn/final.pth img1.jpg photos/ \
        'more/*.png' @list.txt clip.mp4 --out demo_out --score-thr 0.5 --out-json dets.json

Inputs: image files; folders (recursive; --input-ext jpg,png,... filters, default every image
and video format); globs (quoted, so the shell leaves them to resdet; ** recurses); @FILE, a
text file with one input per line (relative to the list's folder; --input-list FILE is the
same); videos (.mp4, .avi, .mov, .mkv, ...: an annotated .mp4 of the same frame rate and size,
codec mp4v, plus <stem>.json with the drawn detections of every frame); --webcam INDEX (a
window where a display exists, q quits; else annotated frames into --out/webcam<INDEX>.mp4;
--max-frames stops it). Images go through the model --batch-size at a time.

Each copy keeps its input's format and its path below a given folder (a .png gives a .png;
--ext jpg|png chooses one for all); for a single image --out may name the file itself (--out
result.png). Every class has its own colour; masks are translucent with outlines, and a legend
lists the classes when 9 or more of them are drawn. Class names come from the checkpoint's
meta['classes'], else the config's `classes` (or its val dataset's).

--out-json FILE writes every detection (no score cut) as a COCO results file (masks as RLE),
readable by `resdet eval` and `resdet analyze`, with FILE's .images.json mapping each image_id
to its path (and frame). Category ids: those of --categories FILE.json (a COCO json), else of
the config's COCO test annotation file when it is readable, else label + 1.

A classifier config (configs/resnet*_*.py, shapes_cls.py) prints and draws the top-k classes
of each image (--top-k, default 5). A localization model (configs/loc_*.py) draws all of its
top-k class guesses, each with its class name, classifier score, rank and box, whatever
--score-thr; --top-k K draws the K best predictions of a detector regardless of the threshold.

With --backend onnxruntime the first argument is a file from `resdet export --format onnx` and
the rest are images (files, folders, globs, lists): the file alone draws (onnxruntime runs it;
class names come from its metadata; no config, checkpoint or resdet model code).

    resdet demo --backend onnxruntime bccd.onnx img1.jpg img2.jpg --out demo_out
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
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="pytorch",
        help="pytorch (CONFIG CHECKPOINT INPUT...) or onnxruntime (MODEL.onnx INPUT...)",
    )
    if onnx:
        parser.add_argument("model", help="a detector exported with `resdet export --format onnx`")
    else:
        parser.add_argument("config", help="config file, or a name in configs/")
        parser.add_argument("checkpoint", help="model checkpoint (.pth)")
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image or video files, folders, quoted globs ('dir/*.jpg'), @LIST files",
    )
    parser.add_argument("--input-list", metavar="FILE", help="a text file listing inputs, one per line (as @FILE)")
    parser.add_argument(
        "--input-ext",
        metavar="EXTS",
        default=None,
        help="extensions taken from folders and globs, comma-separated (default: "
        "jpg,jpeg,png,bmp,tif,tiff,webp and the video formats mp4,avi,mov,mkv,...)",
    )
    parser.add_argument(
        "--webcam",
        type=int,
        metavar="INDEX",
        default=None,
        help="read camera INDEX (0: the first) instead of / besides files",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the annotated copies and videos, or for a single image the output "
        "file (e.g. result.png; its extension sets the format)",
    )
    parser.add_argument(
        "--out-json",
        metavar="FILE",
        default=None,
        help="write every detection as a COCO results file (+ FILE's .images.json)",
    )
    parser.add_argument(
        "--categories",
        metavar="FILE.json",
        default=None,
        help="a COCO json whose categories give --out-json its category ids (default: the "
        "config's test annotation file when readable, else label + 1)",
    )
    parser.add_argument(
        "--ext",
        choices=OUTPUT_FORMATS,
        default=None,
        help="format of the copies (default: the input's own: .png stays .png, .jpg stays "
        ".jpg; other formats become .png)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="images / frames per forward pass (default 4)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop each video / webcam after N frames")
    parser.add_argument("--score-thr", type=float, default=0.5, help="minimum score drawn (default 0.5)")
    parser.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="draw the K highest-scoring predictions whatever --score-thr (default: all "
        "guesses of a localization model, --score-thr alone for detectors; a "
        "classifier's top 5 classes)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per image")
    parser.add_argument("--device", default="cpu")
    add_cfg_options_arg(parser)
    return parser


def _backend(argv) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--backend", choices=BACKENDS, default="pytorch")
    known, _ = pre.parse_known_args(argv)
    return known.backend


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.inputs and not args.input_list and args.webcam is None:
        parser.error("give INPUT files, folders, globs or @LIST files, --input-list FILE or --webcam INDEX")
    if args.out is None and args.out_json is None and args.webcam is None:
        parser.error("give --out DIR (annotated copies) and/or --out-json FILE (detections)")
    if args.out is not None and is_image_file_path(args.out):
        several = (
            len(args.inputs) != 1
            or args.input_list
            or args.webcam is not None
            or os.path.isdir(args.inputs[0])
            or any(c in args.inputs[0] for c in "*?[@")
        )
        if several:
            parser.error(
                f"--out {args.out} names one file but several inputs were given; pass a folder for several images"
            )
        if args.ext and not same_format(os.path.splitext(args.out)[1], args.ext):
            parser.error(f"--out {args.out} and --ext {args.ext} disagree; give one of them")


def draw_with_onnxruntime(args, items) -> list[str]:
    """Draw with the exported file alone: onnxruntime, class names from its metadata."""
    from resdet.data.image_io import imread_rgb
    from resdet.deploy.runtime import OnnxModel
    from resdet.visualization import draw_detections, output_paths, save_image, select_detections

    if not os.path.isfile(args.model):
        raise DataError(f"model file not found: {args.model} (relative paths are from {os.getcwd()})")
    videos = [item.path for item in items if item.kind != "image"]
    if videos or args.out is None:
        raise DataError(
            "--backend onnxruntime draws images into --out; videos and webcams need the "
            f"pytorch backend ({', '.join(videos) or 'no --out given'})"
        )
    model = OnnxModel(args.model)
    names = model.class_names or None
    paths = [item.path for item in items]
    written = []
    for path, out in zip(paths, output_paths(paths, args.out, args.ext)):
        image = imread_rgb(path)
        result = model.detect(image)
        drawn = draw_detections(
            image,
            result["boxes"],
            result["labels"],
            result["scores"],
            masks=result.get("masks"),
            class_names=names,
            score_thr=args.score_thr,
            top_k=args.top_k,
        )
        save_image(drawn, out)
        written.append(out)
        shown = select_detections(result["scores"], len(result["boxes"]), score_thr=args.score_thr, top_k=args.top_k)
        items_text = [
            f"{names[int(result['labels'][i])] if names else int(result['labels'][i])} {float(result['scores'][i]):.3f}"
            for i in list(shown)[:10]
        ]
        print(f"{out}: {len(shown)} drawn" + (": " + "; ".join(items_text) if items_text else ""))
    return written


def _where(args, written: list[str]) -> str:
    if args.out is None:
        return args.out_json
    return written[0] if is_image_file_path(args.out) else os.path.join(os.path.normpath(args.out), "")


@command("demo")
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(onnx=_backend(argv) == "onnxruntime")
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    if args.out:
        check_output_path(args.out, what="--out", directory=not is_image_file_path(args.out))
    if args.out_json:
        check_output_path(args.out_json, what="--out-json")
    from resdet.apis.inputs import InputItem, collect_inputs

    items = collect_inputs(args.inputs, args.input_ext, args.input_list) if args.inputs or args.input_list else []
    if args.webcam is not None:
        items.append(InputItem(str(args.webcam), "webcam", f"webcam{args.webcam}"))
    if args.backend == "onnxruntime":
        written = draw_with_onnxruntime(args, items)
        print(f"drew detections on {len(written)} image(s) in {_where(args, written)}")
        return 0
    from resdet.apis import fast_path, init_model
    from resdet.apis.inference_inputs import inference_inputs
    from resdet.apis.predictors import make_predictor
    from resdet.models.converters import resolve_checkpoint
    from resdet.utils.io import safe_load

    model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    model = fast_path(model, inplace=True, compile=None)  # built here for inference alone; RESDET_COMPILE
    meta = safe_load(resolve_checkpoint(args.checkpoint)).get("meta", {})  # torchvision://NAME: its file
    names = meta.get("classes") if isinstance(meta, dict) else None
    cat_ids = meta.get("cat_ids") if isinstance(meta, dict) else None
    if args.categories:
        from resdet.apis.predictors import categories_of_json

        cat_ids = [c["id"] for c in categories_of_json(args.categories, names)]
    predictor = make_predictor(model, class_names=names, score_thr=args.score_thr, top_k=args.top_k, cat_ids=cat_ids)
    summary = inference_inputs(
        predictor,
        items,
        args.out,
        out_json=args.out_json,
        batch_size=args.batch_size,
        ext=args.ext,
        verbose=not args.quiet,
        max_frames=args.max_frames,
    )
    what = "classified" if predictor.kind == "classifier" else "drew detections on"
    counts = f"{summary.images} image(s)" + (f" and {summary.frames} video frame(s)" if summary.frames else "")
    skipped = f"; skipped {len(summary.skipped)} unreadable" if summary.skipped else ""
    print(f"{what} {counts} in {_where(args, summary.written)}{skipped}")
    if args.out_json:
        source = getattr(predictor, "cat_ids_from", "given")
        ids = (
            ""
            if source == "given"
            else f"; category ids from {source}"
            + (" (--categories FILE.json gives a dataset's own)" if source == "label + 1" else "")
        )
        print(
            f"{len(summary.results)} detection(s) written to {args.out_json} (images: "
            f"{os.path.splitext(args.out_json)[0]}.images.json{ids})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
