"""Random crop for detection / instance-segmentation training pipelines.

``DetRandomCrop`` cuts a window out of the image and moves everything per-instance with it:
boxes (``N x 4`` xyxy) are shifted and clipped to the window, polygon masks
(``PolygonMasks``) are shifted and clipped to the window (exact polygon-rectangle
intersection), bitmap masks (``N x H x W``) are sliced. Instances whose clipped box is empty
-- or, with ``drop_center_outside=True``, whose box centre lies outside the window -- are
dropped from ``boxes``, ``labels``, ``ignore`` and ``masks`` together.

**Training only.** The crop offset is recorded in the sample as ``crop_offset`` (x0, y0) in
the pixels of the image the crop was taken from, and ``img_shape`` becomes the window size,
but ``det_collate`` / ``map_boxes_to_original`` (CONTRACTS.md) undo only resize and flip:
predictions on a cropped image would be mapped back to the wrong place. Never put this
transform in a test / evaluation pipeline: ``DetRandomCrop.training_only`` is ``True`` and
``build_dataloader(training=False)`` refuses such a pipeline with a ValueError.

Random numbers come from numpy's global RNG (``np.random.randint`` / ``np.random.uniform``),
like the other random transforms, so ``np.random.seed`` makes it reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...registry import TRANSFORMS
from ...structures.masks import PolygonMasks
from .det_transforms import _ensure_meta

INSTANCE_KEYS = ("boxes", "labels", "ignore")


def _clip_polygon(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """Intersection of one closed polygon ``K x 2`` with the rectangle ``[0, width] x
    [0, height]`` (Sutherland-Hodgman: one pass per rectangle side, vectorised over the
    edges). Returns ``M x 2`` (``M`` may be 0 when nothing is left)."""
    # each side: (axis, bound, keep_if_less_equal)
    for axis, bound, keep_le in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        if len(points) == 0:
            break
        cur = points
        nxt = np.roll(points, -1, axis=0)  # edge i: cur[i] -> nxt[i]
        d_cur = cur[:, axis] - bound
        d_nxt = nxt[:, axis] - bound
        if keep_le:
            in_cur, in_nxt = d_cur <= 0, d_nxt <= 0
        else:
            in_cur, in_nxt = d_cur >= 0, d_nxt >= 0
        crosses = in_cur != in_nxt
        denom = np.where(crosses, d_cur - d_nxt, 1.0)
        t = np.where(crosses, d_cur / denom, 0.0)
        inter = cur + t[:, None] * (nxt - cur)
        inter[:, axis] = bound  # exact on the side
        # per edge emit: cur if inside, then the crossing point if the edge crosses
        emit = np.stack([cur, inter], 1)  # K x 2 x 2
        take = np.stack([in_cur, crosses], 1)  # K x 2
        points = emit[take]
    return points


def crop_polygons(masks: PolygonMasks, x0: float, y0: float, width: float, height: float) -> PolygonMasks:
    """Shift the polygons by ``(-x0, -y0)`` and clip them to ``[0, width] x [0, height]``;
    pieces with fewer than 3 vertices left are removed (an instance may end with none)."""
    offset = np.array([x0, y0], dtype=np.float64)
    out = []
    for inst in masks.polygons:
        pieces = []
        for p in inst:
            pts = p.reshape(-1, 2).astype(np.float64) - offset
            lo, hi = pts.min(0), pts.max(0)
            if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height:
                clipped = pts  # entirely inside: nothing to clip
            else:
                clipped = _clip_polygon(pts, float(width), float(height))
            if len(clipped) >= 3:
                pieces.append(clipped.astype(np.float32).reshape(-1))
        out.append(pieces)
    return PolygonMasks(out)


@TRANSFORMS.register_module()
class DetRandomCrop:
    """Random crop of the image with its boxes and masks (training pipelines only; see the
    module docstring for why predictions cannot be mapped back through a crop).

    Args:
        crop_size: with ``crop_type='absolute'`` the window ``(h, w)`` in pixels (an int means
            square; clamped to the image); with ``'relative'`` a fixed fraction ``(fh, fw)``
            of the image; with ``'relative_range'`` minimum fractions ``(fh_min, fw_min)``:
            each side's fraction is drawn uniformly in ``[f_min, 1]``.
        crop_type: ``'absolute'``, ``'relative'`` or ``'relative_range'``.
        allow_negative_crop: when ``False`` a window that keeps no non-ignored instance is
            redrawn, up to ``max_tries`` times; if every try loses all objects the sample is
            returned uncropped (``crop_offset`` (0, 0)). Samples without non-ignored
            instances are cropped once. When ``True`` the first window is always used.
        max_tries: number of windows drawn before giving up (see above).
        drop_center_outside: also drop instances whose (unclipped) box centre falls outside
            the window.
        min_box_size: a clipped box must be wider and taller than this (pixels) to be kept.

    Sample fields: ``img`` ``H x W x 3`` -> ``h x w x 3``; ``boxes`` ``N x 4`` -> ``M x 4``;
    ``labels``/``ignore`` ``N`` -> ``M``; ``masks`` (``PolygonMasks`` of ``N`` or ``N x H x W``)
    -> ``M`` instances in window coordinates; ``img_shape`` -> ``(h, w)``; ``crop_offset`` ->
    ``(x0, y0)``. ``scale_factor`` and ``flip`` are unchanged.
    """

    training_only = True

    def __init__(
        self,
        crop_size: int | Sequence[float] = (0.6, 0.6),
        crop_type: str = "relative_range",
        allow_negative_crop: bool = False,
        max_tries: int = 10,
        drop_center_outside: bool = False,
        min_box_size: float = 1e-3,
    ) -> None:
        types = ("absolute", "relative", "relative_range")
        if crop_type not in types:
            raise ValueError(f"DetRandomCrop: crop_type must be one of {', '.join(types)}, got {crop_type!r}")
        size = (crop_size, crop_size) if isinstance(crop_size, (int, float)) else tuple(crop_size)
        if len(size) != 2:
            raise ValueError(f"DetRandomCrop: crop_size must be one number or (h, w), got {crop_size!r}")
        if crop_type == "absolute":
            if any(int(s) != s or s <= 0 for s in size):
                raise ValueError(f"DetRandomCrop: absolute crop_size must be positive integers, got {crop_size!r}")
            size = (int(size[0]), int(size[1]))
        elif any(not 0.0 < float(s) <= 1.0 for s in size):
            raise ValueError(f"DetRandomCrop: {crop_type} crop_size must be fractions in (0, 1], got {crop_size!r}")
        if int(max_tries) < 1:
            raise ValueError(f"DetRandomCrop: max_tries must be >= 1, got {max_tries!r}")
        self.crop_size = size
        self.crop_type = crop_type
        self.allow_negative_crop = bool(allow_negative_crop)
        self.max_tries = int(max_tries)
        self.drop_center_outside = bool(drop_center_outside)
        self.min_box_size = float(min_box_size)

    def _window_size(self, height: int, width: int) -> tuple[int, int]:
        if self.crop_type == "absolute":
            ch, cw = self.crop_size
        elif self.crop_type == "relative":
            ch, cw = height * self.crop_size[0], width * self.crop_size[1]
        else:
            fh = np.random.uniform(self.crop_size[0], 1.0)
            fw = np.random.uniform(self.crop_size[1], 1.0)
            ch, cw = height * fh, width * fw
        return max(1, min(height, int(round(ch)))), max(1, min(width, int(round(cw))))

    def draw_window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """One random window ``(x0, y0, w, h)`` inside a ``height x width`` image."""
        ch, cw = self._window_size(height, width)
        y0 = int(np.random.randint(0, height - ch + 1))
        x0 = int(np.random.randint(0, width - cw + 1))
        return x0, y0, cw, ch

    def instances_kept(self, boxes: np.ndarray, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(shifted_clipped_boxes M x 4 for all N, keep N bool)`` of ``N x 4`` boxes in a window."""
        x0, y0, cw, ch = window
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        shifted = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
        clipped = shifted.copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, cw)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, ch)
        keep = (clipped[:, 2] - clipped[:, 0] > self.min_box_size) & (clipped[:, 3] - clipped[:, 1] > self.min_box_size)
        if self.drop_center_outside:
            cx = (shifted[:, 0] + shifted[:, 2]) / 2
            cy = (shifted[:, 1] + shifted[:, 3]) / 2
            keep &= (cx >= 0) & (cx < cw) & (cy >= 0) & (cy < ch)
        return clipped, keep

    def __call__(self, sample: dict) -> dict:
        _ensure_meta(sample)
        img = sample["img"]
        height, width = img.shape[:2]
        boxes = np.asarray(sample.get("boxes", np.zeros((0, 4), np.float32)), dtype=np.float32).reshape(-1, 4)
        ignore = np.asarray(sample.get("ignore", np.zeros(len(boxes), dtype=bool)), dtype=bool).reshape(-1)
        need_object = not self.allow_negative_crop and bool((~ignore).any())
        chosen = None
        for _ in range(self.max_tries if need_object else 1):
            window = self.draw_window(height, width)
            clipped, keep = self.instances_kept(boxes, window)
            if not need_object or (keep & ~ignore).any():
                chosen = (window, clipped, keep)
                break
        if chosen is None:  # every window lost all objects: keep the sample as it is
            sample["crop_offset"] = (0, 0)
            return sample
        (x0, y0, cw, ch), clipped, keep = chosen
        sample["img"] = np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw])
        if "boxes" in sample:
            sample["boxes"] = clipped[keep].astype(np.float32)
        for key in INSTANCE_KEYS[1:]:
            if key in sample and sample[key] is not None:
                sample[key] = np.asarray(sample[key])[keep]
        masks = sample.get("masks")
        if masks is not None:
            if isinstance(masks, PolygonMasks):
                sample["masks"] = crop_polygons(masks[keep], x0, y0, cw, ch)
            else:
                masks = np.asarray(masks)
                if masks.ndim != 3 or len(masks) != len(keep):
                    raise ValueError(
                        f"DetRandomCrop: masks must be PolygonMasks or N x H x W with N = "
                        f"{len(keep)} boxes, got shape {masks.shape}"
                    )
                sample["masks"] = np.ascontiguousarray(masks[keep, y0 : y0 + ch, x0 : x0 + cw])
        sample["img_shape"] = (ch, cw)
        sample["crop_offset"] = (x0, y0)
        return sample

    def __repr__(self) -> str:
        return (
            f"DetRandomCrop(crop_size={self.crop_size}, crop_type={self.crop_type!r}, "
            f"allow_negative_crop={self.allow_negative_crop}, max_tries={self.max_tries}, "
            f"drop_center_outside={self.drop_center_outside})"
        )
