"""Tensor operations between instance masks and boxes: cropping ground-truth bitmaps to
fixed-size mask-head targets, and pasting fixed-size mask predictions back into images.

Both are vectorised over instances. Pasting is bilinear interpolation, which is separable:
for box ``k`` the pasted window is ``Wy[k] @ mask[k] @ Wx[k]^T`` with ``Wy`` (rows x M) and
``Wx`` (columns x M) holding two non-zero interpolation weights per row. Each box is only
evaluated over a window of the image as large as the largest box of its chunk, so the
cost follows the boxes' area, not ``K x H x W``.

Two sampling conventions are offered:
  * ``'continuous'`` (default): pixel centre ``x + 0.5`` sits at ``(x + 0.5 - x0) / (x1 - x0)
    * M`` in mask cells (half-pixel exact, as detectron2); pixels whose centre is inside the
    box sample the mask clamped to its edge cells, the others are outside the instance.
  * ``'torchvision'``: torchvision's ``paste_masks_in_image`` (mask padded by one zero
    cell, box enlarged by ``(M + 2) / M``, corners truncated to integers, the padded mask
    resized to ``x1 - x0 + 1`` pixels with ``align_corners=False``) -- what torchvision's
    Mask R-CNN weights were evaluated with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

PASTE_MODES = ("continuous", "torchvision")


def crop_masks_to_boxes(
    gt_masks: Tensor, boxes: Tensor, gt_index: Tensor, size: int = 28, box_scale: tuple[float, float] = (1.0, 1.0)
) -> Tensor:
    """Mask-head targets: the part of ground-truth bitmap ``gt_index[r]`` under box ``r``,
    resampled (RoIAlign, bilinear, half-pixel aligned) to ``size x size`` and binarised at 0.5.

    Args:
        gt_masks: ``N x H x W`` (uint8 / bool / float) bitmaps of one image.
        boxes: ``R x 4`` xyxy boxes (e.g. positive proposals) in the model's coordinates.
        gt_index: ``R`` int64 indices into ``gt_masks``.
        size: output side ``M``.
        box_scale: ``(x_scale, y_scale)`` from box coordinates to bitmap coordinates (the
            bitmaps stay at the data pipeline's resolution when the model resizes).

    Returns ``R x M x M`` float32 of 0/1.
    """
    if len(boxes) == 0:
        return gt_masks.new_zeros((0, size, size), dtype=torch.float32)
    rois = boxes.float() * boxes.new_tensor([box_scale[0], box_scale[1]] * 2, dtype=torch.float32)
    # only the referenced bitmaps are converted to float
    used, inverse = torch.unique(gt_index, return_inverse=True)
    bitmaps = gt_masks[used].to(device=rois.device, dtype=torch.float32)[:, None]
    rois = torch.cat([inverse.to(rois)[:, None], rois], dim=1)
    crops = roi_align(bitmaps, rois, (size, size), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return (crops[:, 0] >= 0.5).float()


def _continuous_weights(starts: Tensor, ends: Tensor, origin: Tensor, length: int, mask_size: int) -> Tensor:
    """``K x length x M`` bilinear weights of pixels ``origin + arange(length)`` of boxes
    spanning ``[starts, ends)``. Pixels whose centre lies inside the box sample the mask
    (clamped to its edge cells, so a box-filling mask fills the box); the others get 0."""
    centres = origin[:, None] + torch.arange(length, device=starts.device, dtype=starts.dtype)[None] + 0.5
    inside = (centres >= starts[:, None]) & (centres < ends[:, None])
    extent = (ends - starts).clamp(min=1e-6)
    src = ((centres - starts[:, None]) / extent[:, None] * mask_size - 0.5).clamp(0, mask_size - 1)  # K x L
    low = src.floor()
    frac = src - low
    cells = torch.arange(mask_size, device=starts.device, dtype=starts.dtype)[None, None]
    weights = (cells == low[..., None]) * (1 - frac)[..., None] + (cells == low[..., None] + 1) * frac[..., None]
    return weights * inside[..., None]


def _torchvision_weights(
    box_lo: Tensor, box_len: Tensor, origin: Tensor, length: int, mask_size: int, limit: int
) -> Tensor:
    """``K x length x (M + 2)`` weights reproducing ``F.interpolate(padded, size=box_len,
    mode='bilinear', align_corners=False)`` placed at integer offset ``box_lo``."""
    padded = mask_size + 2
    pixels = origin[:, None] + torch.arange(length, device=box_lo.device)[None]  # K x L (int64)
    offset = pixels - box_lo[:, None]
    inside = (offset >= 0) & (offset < box_len[:, None]) & (pixels < limit)
    # torch's CPU upsampling: float32 scale, source coordinate rounded once to float32 (a
    # fused multiply-add); saturated masks make exact 0.5 ties that depend on this
    # (a tensor numerator: ``scalar / tensor`` multiplies by a rounded reciprocal)
    scale = (torch.full_like(box_len, padded).float() / box_len.float()).double()
    src = ((offset.double() + 0.5) * scale[:, None] - 0.5).float().clamp(min=0)
    low = src.floor().clamp(max=padded - 1)
    frac = src - low
    high = (low + 1).clamp(max=padded - 1)
    cells = torch.arange(padded, device=box_lo.device, dtype=torch.float32)[None, None]
    weights = (cells == low[..., None]) * (1 - frac)[..., None] + (cells == high[..., None]) * frac[..., None]
    return weights * inside[..., None]


def paste_masks_dense(
    mask_probs: Tensor, boxes: Tensor, height, width, threshold: float = 0.5, mode: str = "continuous"
) -> Tensor:
    """``paste_masks`` with every box's window the whole image: the same weights per pixel,
    no sizes read from tensor values (``height`` / ``width`` may be symbolic), so it traces
    into an exported graph. Memory is ``K x height x width`` floats."""
    if mode not in PASTE_MODES:
        raise ValueError(f"paste mode {mode!r} unknown; allowed values: {', '.join(PASTE_MODES)}")
    if mask_probs.dim() == 4:
        mask_probs = mask_probs[:, 0]
    size = mask_probs.shape[-1]
    probs = mask_probs.float()
    boxes = boxes.to(device=probs.device, dtype=torch.float32)
    zeros = torch.zeros(boxes.shape[0], dtype=torch.int64, device=probs.device)
    if mode == "torchvision":
        probs = F.pad(probs, (1, 1, 1, 1))
        half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * ((size + 2.0) / size)
        centre = (boxes[:, 2:] + boxes[:, :2]) * 0.5
        ints = torch.cat([centre - half, centre + half], dim=1).to(torch.int64)
        lengths = (ints[:, 2:] - ints[:, :2] + 1).clamp(min=1)
        wx = _torchvision_weights(ints[:, 0], lengths[:, 0], zeros, width, size, width)
        wy = _torchvision_weights(ints[:, 1], lengths[:, 1], zeros, height, size, height)
    else:
        wx = _continuous_weights(boxes[:, 0], boxes[:, 2], zeros.float(), width, size)
        wy = _continuous_weights(boxes[:, 1], boxes[:, 3], zeros.float(), height, size)
    return torch.bmm(wy, torch.bmm(probs, wx.transpose(1, 2))) > threshold


def paste_masks(
    mask_probs: Tensor,
    boxes: Tensor,
    height: int,
    width: int,
    threshold: float = 0.5,
    mode: str = "continuous",
    max_chunk_elements: int = 1 << 24,
) -> Tensor:
    """Paste ``K x M x M`` mask probabilities into ``K x height x width`` bool masks.

    Args:
        mask_probs: ``K x M x M`` (or ``K x 1 x M x M``) probabilities in [0, 1], one per box.
        boxes: ``K x 4`` xyxy boxes in the target image's pixel coordinates.
        threshold: a pixel is inside when its interpolated probability is ``> threshold``.
        mode: ``'continuous'`` or ``'torchvision'`` (see the module docstring).
        max_chunk_elements: boxes are processed in chunks of at most this many window pixels.
    """
    if mode not in PASTE_MODES:
        raise ValueError(f"paste mode {mode!r} unknown; allowed values: {', '.join(PASTE_MODES)}")
    if mask_probs.dim() == 4:
        mask_probs = mask_probs[:, 0]
    num = len(mask_probs)
    out = torch.zeros((num, height, width), dtype=torch.bool, device=mask_probs.device)
    if num == 0 or height == 0 or width == 0:
        return out
    size = mask_probs.shape[-1]
    probs = mask_probs.float()
    boxes = boxes.to(device=probs.device, dtype=torch.float32)
    if mode == "torchvision":
        probs = F.pad(probs, (1, 1, 1, 1))
        half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * ((size + 2.0) / size)
        centre = (boxes[:, 2:] + boxes[:, :2]) * 0.5
        ints = torch.cat([centre - half, centre + half], dim=1).to(torch.int64)  # truncation, as torchvision
        lo = ints[:, :2]
        lengths = (ints[:, 2:] - ints[:, :2] + 1).clamp(min=1)
        first = lo.clamp(min=0)
        last = torch.minimum(ints[:, 2:] + 1, lo.new_tensor([width, height]))
    else:
        first = boxes[:, :2].floor().clamp(min=0).to(torch.int64)
        last = torch.minimum(
            boxes[:, 2:].ceil().to(torch.int64) + 1, torch.tensor([width, height], device=boxes.device)
        )
    extent = (last - first).clamp(min=1)  # K x (w, h) of each box's window
    # chunks of boxes bound the window memory; each chunk is one batched op
    chunk = max(1, max_chunk_elements // max(1, int(extent[:, 0].max()) * int(extent[:, 1].max())))
    for start in range(0, num, chunk):
        stop = min(start + chunk, num)
        win_w = min(int(extent[start:stop, 0].max()), width)
        win_h = min(int(extent[start:stop, 1].max()), height)
        # windows are shifted left/up where needed so they stay inside the image
        ox = torch.minimum(first[start:stop, 0], torch.tensor(width - win_w, device=first.device))
        oy = torch.minimum(first[start:stop, 1], torch.tensor(height - win_h, device=first.device))
        if mode == "torchvision":
            wx = _torchvision_weights(lo[start:stop, 0], lengths[start:stop, 0], ox, win_w, size, width)
            wy = _torchvision_weights(lo[start:stop, 1], lengths[start:stop, 1], oy, win_h, size, height)
        else:
            b = boxes[start:stop]
            wx = _continuous_weights(b[:, 0], b[:, 2], ox.float(), win_w, size)
            wy = _continuous_weights(b[:, 1], b[:, 3], oy.float(), win_h, size)
        # columns first, then rows: the association order of torch's bilinear upsampling,
        # so saturated masks give the same exact 0.5 ties as torchvision
        window = torch.bmm(wy, torch.bmm(probs[start:stop], wx.transpose(1, 2))) > threshold
        rows = oy[:, None] + torch.arange(win_h, device=oy.device)[None]  # k x win_h
        cols = ox[:, None] + torch.arange(win_w, device=ox.device)[None]  # k x win_w
        index = torch.arange(start, stop, device=out.device)[:, None, None]
        out[index, rows[:, :, None], cols[:, None, :]] = window
    return out
