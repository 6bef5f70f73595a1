"""What ``resdet demo`` reads: image files, folders, globs, list files, videos and webcams,
turned into one list of ``InputItem``; frames read with OpenCV, annotated videos written.

Input arguments, each one of:

- an image or video file (videos by extension: ``VIDEO_EXTS``);
- a folder: every image and video below it (recursively), filtered by ``input_exts``;
- a glob (quote it so the shell leaves it alone): ``'photos/*.jpg'``, ``'data/**/*.png'``;
- ``@FILE``: a text file listing inputs, one per line (``#`` starts a comment; relative
  paths are relative to the list file's folder); a line may itself be a folder or a glob.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.errors import DataError
from ..utils.io import create_temporary
from ..visualization.save import output_extension

IMAGE_EXTS = ("jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp")
VIDEO_EXTS = ("mp4", "avi", "mov", "mkv", "webm", "m4v", "mpg", "mpeg", "wmv")
DEFAULT_INPUT_EXTS = IMAGE_EXTS + VIDEO_EXTS
VIDEO_CODEC = "mp4v"  # MPEG-4 part 2: built into opencv-python(-headless), no external library
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class InputItem:
    """One input: ``path``, ``kind`` (``'image'`` / ``'video'`` / ``'webcam'``) and ``name``,
    the relative name its outputs get (the path below a folder that was given, else the file
    name; a webcam ``webcam<index>``)."""

    path: str
    kind: str
    name: str


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower().lstrip(".")


def _kind(path: str) -> str:
    return "video" if _extension(path) in VIDEO_EXTS else "image"


def parse_exts(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``'jpg,png'`` (or a list) -> ``('jpg', 'png')``, lower case, without dots; ``None``:
    every image and video format (``DEFAULT_INPUT_EXTS``)."""
    if text is None:
        return DEFAULT_INPUT_EXTS
    parts = text.split(",") if isinstance(text, str) else list(text)
    exts = tuple(dict.fromkeys(p.strip().lower().lstrip(".") for p in parts if p.strip()))
    if not exts:
        raise DataError(f"--input-ext {text!r} names no extension; e.g. --input-ext jpg,png,mp4")
    return exts


def _walk(folder: str, exts: tuple[str, ...]) -> list[InputItem]:
    items = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.startswith(".") and _extension(name) in exts:
                items.append(InputItem(path, _kind(path), os.path.relpath(path, folder)))
    return sorted(items, key=lambda item: item.name)


def _read_list_file(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise DataError(
            f"list file {path} not found (relative paths are from {os.getcwd()}); "
            "@FILE names a text file with one image, video, folder or glob per line"
        )
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as fh:
        lines = [line.strip() for line in fh]
    return [
        line if os.path.isabs(line) else os.path.join(base, line) for line in lines if line and not line.startswith("#")
    ]


def _expand(spec: str, exts: tuple[str, ...], source: str) -> list[InputItem]:
    if os.path.isdir(spec):
        found = _walk(spec, exts)
        if not found:
            raise DataError(
                f"folder {spec} holds no file with extension {', '.join(exts)}{source}; choose others with --input-ext"
            )
        return found
    if os.path.isfile(spec):  # an explicit file is taken whatever its extension
        return [InputItem(spec, _kind(spec), os.path.basename(spec))]
    if any(c in spec for c in _GLOB_CHARS):
        matches = sorted(glob.glob(spec, recursive=True))
        root = os.path.dirname(spec.split("*")[0].split("?")[0].split("[")[0]) or "."
        found = []
        for match in matches:
            if os.path.isdir(match):
                found.extend(_walk(match, exts))
            elif _extension(match) in exts:
                found.append(InputItem(match, _kind(match), os.path.relpath(match, root)))
        if not found:
            raise DataError(
                f"glob {spec!r}{source} matches no file with extension {', '.join(exts)} "
                f"(relative paths are from {os.getcwd()})"
            )
        return found
    raise DataError(
        f"input {spec}{source} not found: not a file, folder or glob (relative paths are from {os.getcwd()})"
    )


def collect_inputs(
    specs: Sequence[str], input_exts: str | Sequence[str] | None = None, input_list: str | None = None
) -> list[InputItem]:
    """Expand input arguments (see the module docstring) into ``InputItem``s, in the given order,
    folders and globs sorted by path. ``input_list``: a list file (as ``@FILE``).
    Raises ``DataError`` naming the first argument that is not found or expands to nothing."""
    exts = parse_exts(input_exts)
    specs = list(specs) + ([f"@{input_list}"] if input_list else [])
    items: list[InputItem] = []
    for spec in specs:
        if spec.startswith("@") and not os.path.exists(spec):
            for line in _read_list_file(spec[1:]):
                items.extend(_expand(line, exts, f" (listed in {spec[1:]})"))
        else:
            items.extend(_expand(spec, exts, ""))
    if not items:
        raise DataError("no input given: name images, videos, folders, globs or @LIST files")
    return items


def output_names(items: Sequence[InputItem], ext: str | None = None) -> list[str]:
    """Relative output names of the annotated copies: an image keeps its ``name`` (sub-folders
    included) with its format (``output_extension``; ``ext`` forces ``jpg`` / ``png``), a video
    or webcam becomes ``<name>.mp4``; names that would collide get ``_1``, ``_2`` ... suffixes."""
    names, seen = [], set()
    for item in items:
        stem = os.path.splitext(item.name)[0] or "image"
        suffix = output_extension(item.path, ext) if item.kind == "image" else ".mp4"
        candidate, n = stem + suffix, 0
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        seen.add(candidate.lower())
        names.append(candidate)
    return names


class VideoSource:
    """Frames of a video file or webcam as ``H x W x 3`` uint8 RGB arrays (``iter(source)``),
    with the stream's ``fps``, ``width``, ``height`` and ``frame_count`` (-1 when unknown: a
    webcam). ``max_frames`` stops early. Errors name the file."""

    def __init__(self, source: str | int, max_frames: int | None = None) -> None:
        self.source, self.max_frames = source, max_frames
        self.capture = cv2.VideoCapture(source)
        what = f"webcam {source}" if isinstance(source, int) else f"video {source}"
        if not self.capture.isOpened():
            raise DataError(
                f"cannot open {what}: not a readable video (OpenCV's backends could not decode "
                "it) or the device is absent/busy"
            )
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else 30.0  # webcams often report 0
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or -1)
        self.frame_count = count if count > 0 and isinstance(source, str) else -1
        if max_frames is not None and self.frame_count > 0:
            self.frame_count = min(self.frame_count, max_frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        index = 0
        try:
            while self.max_frames is None or index < self.max_frames:
                ok, frame = self.capture.read()
                if not ok or frame is None:
                    return
                index += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            self.capture.release()


class VideoWriter:
    """Write RGB frames to an ``.mp4`` (codec ``VIDEO_CODEC``) at ``fps``, ``width x height``;
    the file appears at ``path`` only on ``close()`` (written under a temporary name first, so
    an interrupted run leaves no truncated video)."""

    def __init__(self, path: str, fps: float, width: int, height: int) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, self.tmp = create_temporary(directory, os.path.basename(path))
        os.close(fd)
        self.path, self.size = path, (int(width), int(height))
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*VIDEO_CODEC), float(fps), self.size)
        if not self.writer.isOpened():
            os.unlink(self.tmp)
            raise DataError(f"cannot write video {path}: OpenCV has no {VIDEO_CODEC} encoder for it")
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self.size:
            frame_rgb = cv2.resize(frame_rgb, self.size)
        self.writer.write(cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        self.writer.release()
        if keep:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


def has_display() -> bool:
    """Whether a window can be shown: a display server (``DISPLAY`` / ``WAYLAND_DISPLAY`` on
    Linux) and an OpenCV built with GUI support (``opencv-python-headless`` has none)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("resdet")
        cv2.destroyWindow("resdet")
    except cv2.error:
        return False
    return True
