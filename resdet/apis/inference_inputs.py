"""``inference_inputs``: run a model over images, folders, globs, list files, videos or a
webcam (see ``resdet.apis.inputs``) in batches, writing annotated copies, annotated videos
with per-frame json, and every detection as one COCO results file. ``resdet demo`` is this.

Outputs under ``out``:

- an image -> ``out/<name>`` (its path below a given folder is kept), drawn;
- a video -> ``out/<stem>.mp4`` (codec mp4v, the input's frame rate and size) and
  ``out/<stem>.json``: ``{"video", "fps", "width", "height", "num_frames", "frames":
  [{"frame": i, "detections": [{"bbox": [x, y, w, h], "score", "label", "category_id",
  "class_name"}]}]}`` (the drawn detections);
- a webcam -> a window where a display exists, else like a video (``webcam<index>.mp4``).

``out_json``: every detection of every image and frame (no score cut) in the COCO results
format (``image_id``, ``category_id`` = the dataset's category id, ``bbox`` xywh, ``score``,
``segmentation`` RLE for masks), plus ``<out_json stem>.images.json``: ``{"images": [{"id",
"file_name", "width", "height"(, "frame")}], "categories": [{"id", "name"}]}`` mapping each
``image_id`` to its file (and frame of a video).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from ..data.image_io import imread_rgb
from ..evaluation.results import write_results_json
from ..utils.errors import DataError, ResdetError
from ..utils.io import atomic_write_json
from ..utils.progress import Progress
from ..visualization import is_image_file_path, save_image
from .inputs import InputItem, VideoSource, VideoWriter, collect_inputs, has_display, output_names
from .predictors import make_predictor


@dataclass
class InferenceSummary:
    """What ``inference_inputs`` did: ``written`` output files (pictures, videos, json),
    ``images`` / ``frames`` processed, ``skipped`` ``(path, reason)`` of unreadable images,
    and the results list written to ``out_json`` (``results``) with its ``images`` table."""

    written: list[str] = field(default_factory=list)
    images: int = 0
    frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    image_table: list[dict] = field(default_factory=list)


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Run:
    def __init__(
        self,
        predictor: Any,
        out: str | None,
        batch_size: int,
        verbose: bool,
        progress: Progress,
        echo: Callable[[str], None],
    ) -> None:
        self.predictor, self.out, self.batch_size = predictor, out, max(int(batch_size), 1)
        self.verbose, self.progress, self.echo = verbose, progress, echo
        self.summary = InferenceSummary()

    def _register(self, path: str, frame: np.ndarray, frame_index: int | None = None) -> int:
        image_id = len(self.summary.image_table) + 1
        entry = {"id": image_id, "file_name": path, "height": int(frame.shape[0]), "width": int(frame.shape[1])}
        if frame_index is not None:
            entry["frame"] = frame_index
        self.summary.image_table.append(entry)
        return image_id

    def images(self, items: Sequence[InputItem], targets: Sequence[str | None]) -> None:
        for batch in _batches(list(zip(items, targets)), self.batch_size):
            frames, kept = [], []
            for item, target in batch:
                try:
                    frames.append(imread_rgb(item.path))
                    kept.append((item, target))
                except (ResdetError, OSError, ValueError) as err:
                    self.summary.skipped.append((item.path, str(err)))
                    self.progress.write(f"skipped {item.path}: {err}")
            results = self.predictor.predict(frames) if frames else []
            for (item, target), frame, result in zip(kept, frames, results):
                image_id = self._register(item.path, frame)
                self.summary.results.extend(self.predictor.coco_entries(image_id, result))
                if target:
                    save_image(self.predictor.draw(frame, result), target)
                    self.summary.written.append(target)
                if self.verbose:
                    self.progress.write(f"{target or item.path}: {self.predictor.describe(result)}")
            self.summary.images += len(kept)
            self.progress.update(len(batch))

    def video(self, source: VideoSource, path: str, target: str | None, show: bool) -> None:
        writer = VideoWriter(target, source.fps, source.width, source.height) if target else None
        frames_json: list[dict] = []
        index, stopped, ok = 0, False, False
        try:
            chunk: list[np.ndarray] = []
            for frame in source:
                chunk.append(frame)
                if len(chunk) == self.batch_size:
                    stopped = self._frames(chunk, index, path, writer, frames_json, show)
                    index += len(chunk)
                    chunk = []
                    if stopped:
                        break
            if chunk and not stopped:
                self._frames(chunk, index, path, writer, frames_json, show)
                index += len(chunk)
            ok = True
        finally:
            if writer is not None:
                writer.close(keep=ok)
            source.capture.release()
        if writer is not None:
            stem = os.path.splitext(target)[0]
            atomic_write_json(
                {
                    "video": path,
                    "fps": source.fps,
                    "width": source.width,
                    "height": source.height,
                    "num_frames": index,
                    "frames": frames_json,
                },
                stem + ".json",
                indent=None,
            )
            self.summary.written += [target, stem + ".json"]
            self.echo(f"{target}: {index} frame(s) at {source.fps:g} fps, {source.width}x{source.height}")

    def _frames(
        self,
        chunk: list[np.ndarray],
        start: int,
        path: str,
        writer: VideoWriter | None,
        frames_json: list[dict],
        show: bool,
    ) -> bool:
        """Predict, draw and write one batch of frames; True when the viewer asked to stop."""
        results = self.predictor.predict(chunk)
        stop = False
        for offset, (frame, result) in enumerate(zip(chunk, results)):
            image_id = self._register(path, frame, start + offset)
            self.summary.results.extend(self.predictor.coco_entries(image_id, result))
            frames_json.append({"frame": start + offset, "detections": self.predictor.frame_entries(result)})
            drawn = self.predictor.draw(frame, result)
            if writer is not None:
                writer.write(drawn)
            if show:
                cv2.imshow("resdet demo (q to quit)", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
                stop = stop or (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
        self.summary.frames += len(chunk)
        self.progress.update(len(chunk))
        return stop


def inference_inputs(
    model: Any,
    items: Sequence[InputItem | str],
    out: str | None = None,
    *,
    out_json: str | None = None,
    batch_size: int = 4,
    ext: str | None = None,
    score_thr: float = 0.5,
    top_k: int | None = None,
    verbose: bool = False,
    show: bool | None = None,
    max_frames: int | None = None,
    echo: Callable[[str], None] = print,
) -> InferenceSummary:
    """Run a model over images, folders, globs, list files, videos or a webcam::

        summary = inference_inputs(init_model(cfg, ckpt), ["photos/", "clip.mp4"], "out/", out_json="dets.json")

    Args:
        model: a detector / localizer / classifier (``init_model``), or a predictor from
            ``resdet.apis.predictors.make_predictor`` (then ``score_thr`` / ``top_k`` are its own).
        items: input arguments (strings, see ``resdet.apis.inputs``) or ``InputItem``s from
            ``collect_inputs`` (a webcam is ``InputItem(str(index), 'webcam', name)``).
        out: the output folder (see the module docstring); for a single image also a file
            name such as ``result.png``; ``None`` writes no pictures.
        out_json: the COCO results file (and its ``.images.json`` table).
        batch_size: images / frames per forward pass.
        ext: ``'jpg'`` / ``'png'``: the format of every annotated picture (default: each input's).
        score_thr, top_k: what is drawn (see ``resdet demo --help``); the json keeps everything.
        verbose: print one line per image with what was found.
        show: show webcam frames in a window (``None``: when a display exists).
        max_frames: stop each video / webcam after this many frames.

    Returns an ``InferenceSummary``. Unreadable images are skipped (listed in ``skipped``);
    a run where nothing could be read raises ``DataError``.
    """
    items = [x for item in items for x in (collect_inputs([item]) if isinstance(item, str) else [item])]
    known = [item for item in items if item.kind != "webcam"]
    total = sum(1 if i.kind == "image" else 0 for i in known)
    if out is not None and is_image_file_path(out) and not (len(items) == 1 and items[0].kind == "image"):
        raise DataError(f"--out {out} names one picture; give a folder for {len(items)} inputs or videos")
    names = output_names(items, ext)
    targets: list[str | None] = [None] * len(items)
    if out is not None:
        single = is_image_file_path(out)
        targets = [out if single else os.path.join(out, name) for name in names]
    window = any(item.kind == "webcam" for item in items) and (has_display() if show is None else bool(show))
    if out is None and any(item.kind == "webcam" for item in items) and not window:
        raise DataError("--webcam without a display needs --out DIR to write the annotated frames")
    predictor = model if hasattr(model, "predict") else make_predictor(model, score_thr=score_thr, top_k=top_k)
    sources = {}
    for i, item in enumerate(items):  # open every video first: a bad one fails before any work
        if item.kind in ("video", "webcam"):
            sources[i] = VideoSource(int(item.path) if item.kind == "webcam" else item.path, max_frames=max_frames)
            total += max(sources[i].frame_count, 0)
    with Progress(total or None, "demo") as progress:
        run = _Run(predictor, out, batch_size, verbose, progress, echo)
        images = [i for i, item in enumerate(items) if item.kind == "image"]
        run.images([items[i] for i in images], [targets[i] for i in images])
        for i, source in sources.items():
            shown = window and items[i].kind == "webcam"  # a webcam goes to the window when there is one
            run.video(source, items[i].path, None if shown else targets[i], show=shown)
    summary = run.summary
    if not summary.images and not summary.frames:
        raise DataError(
            f"no input could be read ({len(summary.skipped)} skipped: "
            f"{'; '.join(f'{p}: {r}' for p, r in summary.skipped[:3])})"
        )
    if out_json:
        write_results_json(summary.results, out_json)
        table = os.path.splitext(out_json)[0] + ".images.json"
        atomic_write_json({"images": summary.image_table, "categories": predictor.categories()}, table)
        summary.written += [out_json, table]
    return summary
