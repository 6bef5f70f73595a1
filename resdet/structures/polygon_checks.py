"""Array checks of many polygon parts at once (the work behind ``mask_checks``).

Polygon parts are held ragged: ``coords`` (float64, all parts' ``x0, y0, x1, y1, ...`` back to
back) and ``offsets`` (``P + 1`` int64, part ``k`` is ``coords[offsets[k]:offsets[k + 1]]``).
``classify_parts`` gives every part one code (``PART_OK`` or the first problem found, in the
order odd length, non-finite, fewer than 3 points, outside the image, self-intersecting, zero
area) with a fixed number of numpy calls, whatever the number of parts.

Self-intersection is exact in two steps: a part whose vertices turn strictly monotonically,
exactly once, around its vertex mean is star-shaped around it, hence simple (each edge lies in
its own angular wedge; wedges only meet at the centre, which no edge passes through) -- O(K)
per part and true of most outlines; the other parts get the all-pairs proper-crossing test
(the same orientation arithmetic as before, grouped by point count, in bounded chunks).
"""

from __future__ import annotations

import functools
from itertools import chain

import numpy as np

PART_OK, PART_ODD, PART_NONFINITE, PART_FEW, PART_OUTSIDE, PART_SELF, PART_ZERO = range(7)
_PAIR_BUDGET = 1 << 21  # edge pairs held at once by the all-pairs test (~100 MB of temporaries)


def flatten_parts(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """``coords`` and ``offsets`` of ``parts`` (lists of numbers). Raises ``TypeError`` or
    ``ValueError`` when a part is not a flat sequence of numbers (callers then check parts
    one by one, to name the bad one)."""
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    coords = np.fromiter(chain.from_iterable(parts), dtype=np.float64, count=int(offsets[-1]))
    return coords, offsets


def _point_runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of each run of ``counts`` points and, per point, the index of the next point of
    its closed ring (the last point wraps to the first)."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    nxt = np.arange(1, int(counts.sum()) + 1, dtype=np.int64)
    nxt[starts + counts - 1] = starts
    return starts, nxt


def _area_centroids(points: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``P x 2`` area centroids (the vertex mean where the signed area is zero)."""
    starts, nxt = _point_runs(counts)
    x, y = points[:, 0], points[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    area6 = 3 * np.add.reduceat(cross, starts)
    cx = np.add.reduceat((x + x[nxt]) * cross, starts)
    cy = np.add.reduceat((y + y[nxt]) * cross, starts)
    mean = np.add.reduceat(points, starts, axis=0) / counts[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.stack([cx, cy], 1) / area6[:, None]
    return np.where(np.isfinite(centre) & (area6[:, None] != 0), centre, mean)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """``0..c-1`` for every run length ``c`` of ``counts``, back to back."""
    first = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)


def star_simple(points: np.ndarray, counts: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Per part (``counts`` points each, >= 3, back to back in ``points`` ``N x 2``): True
    where it is proven simple by the star test around ``centre`` (``P x 2``, default the
    vertex means; False: unknown)."""
    starts, nxt = _point_runs(counts)
    if centre is None:
        centre = np.add.reduceat(points, starts, axis=0) / counts[:, None]
    v = points - np.repeat(centre, counts, axis=0)
    vx, vy = v[:, 0], v[:, 1]
    wx, wy = vx[nxt], vy[nxt]
    cross = vx * wy - vy * wx
    # a margin on sin(angle) keeps rounding from proving a nearly degenerate part simple
    # (|v|^2 + |w|^2 >= 2 |v| |w|: at least 1e-9 |v| |w|, without a square root)
    r2 = vx * vx + vy * vy
    margin = 0.5e-9 * (r2 + r2[nxt])
    turning = (np.minimum.reduceat(cross - margin, starts) > 0) | (np.maximum.reduceat(cross + margin, starts) < 0)
    proven = np.zeros(len(counts), dtype=bool)
    if not turning.any():
        return proven
    # the winding number (angles, the costly part) only for the parts that turn one way
    keep = np.repeat(turning, counts)
    angles = np.arctan2(cross[keep], (vx * wx + vy * wy)[keep])
    turns = np.add.reduceat(angles, _point_runs(counts[turning])[0]) / (2 * np.pi)
    proven[turning] = np.abs(np.abs(turns) - 1) < 1e-6
    return proven


def _straddles(xs: np.ndarray, ys: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """``M x R x C`` booleans for rings with vertex coordinates ``xs``, ``ys`` (``M x K``,
    closed): edge ``k`` (of ``cols``) has its ends strictly on both sides of the line through
    edge ``i`` (of ``rows``). The side of ``v`` is the sign of ``(b_i - a_i) x (v - a_i)``,
    computed in exactly this form."""
    n = xs.shape[1]
    ax, ay = xs[:, rows, None], ys[:, rows, None]
    nxt = (np.arange(rows.start, rows.stop) + 1) % n
    dx, dy = xs[:, nxt, None] - ax, ys[:, nxt, None] - ay
    ends = np.arange(cols.start, cols.stop + 1) % n  # vertices k and k + 1 of every edge k
    side = np.sign(dx * (ys[:, None, ends] - ay) - dy * (xs[:, None, ends] - ax))
    return side[..., :-1] * side[..., 1:] < 0


@functools.lru_cache(maxsize=48)  # K <= 1448 here (K x K within the budget)
def _pair_mask(n: int) -> np.ndarray:
    """``K x K``: True for the non-adjacent edge pairs ``i < j`` of a closed ring."""
    i, j = np.triu_indices(n, k=2)
    pair = np.zeros((n, n), dtype=bool)
    pair[i, j] = True
    pair[0, n - 1] = False  # the first and last edges share a vertex
    pair.setflags(write=False)
    return pair


def ring_self_intersects(points: np.ndarray) -> bool:
    """``self_intersecting`` for one ring (``K x 2`` float64), with few numpy calls: the star
    test around the vertex mean, then the dense pair test."""
    n = len(points)
    if n < 4:
        return False
    v = points - points.mean(0)
    w = np.roll(v, -1, axis=0)
    cross = v[:, 0] * w[:, 1] - v[:, 1] * w[:, 0]
    margin = 1e-9 * np.sqrt((v * v).sum(1) * (w * w).sum(1))
    if (cross - margin > 0).all() or (cross + margin < 0).all():
        turns = np.arctan2(cross, (v * w).sum(1)).sum() / (2 * np.pi)
        if abs(abs(turns) - 1) < 1e-6:
            return False
    return bool(pairs_cross(points[None])[0])


def pairs_cross(rings: np.ndarray) -> np.ndarray:
    """Per ring of ``rings`` (``M x K x 2``, closed, K >= 4): whether two non-adjacent edges
    cross properly, i.e. each straddles the other's line (touching or collinear edges do not
    count). Dense ``K x K`` per ring, in blocks of rings (and of rows for very long rings)."""
    m, n = rings.shape[:2]
    found = np.zeros(m, dtype=bool)
    xs, ys = np.ascontiguousarray(rings[..., 0]), np.ascontiguousarray(rings[..., 1])
    block = _PAIR_BUDGET // (n * n)  # rings per block; 0: a ring too long for one block
    if block:
        pair = _pair_mask(n)
        for r0 in range(0, m, block):
            t = _straddles(xs[r0 : r0 + block], ys[r0 : r0 + block], slice(0, n), slice(0, n))
            found[r0 : r0 + block] = (t & t.transpose(0, 2, 1) & pair).any((1, 2))
        return found
    rows = max(1, _PAIR_BUDGET // n)
    for r in range(m):  # one long ring at a time, in bands of rows
        x, y = xs[r : r + 1], ys[r : r + 1]
        for r0 in range(0, n, rows):
            band = slice(r0, min(n, r0 + rows))
            pair = np.arange(n)[None] >= np.arange(band.start, band.stop)[:, None] + 2
            if r0 == 0:
                pair[0, n - 1] = False
            t = _straddles(x, y, band, slice(0, n))[0] & _straddles(x, y, slice(0, n), band)[0].T
            if (t & pair).any():
                found[r] = True
                break
    return found


def self_intersecting(points: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per part (``counts`` points, >= 3, back to back in ``points`` ``N x 2``): whether two
    non-adjacent edges cross properly. Star test first; all pairs for the rest."""
    result = np.zeros(len(counts), dtype=bool)
    unknown = np.flatnonzero(~star_simple(points, counts) & (counts >= 4))
    if not len(unknown):
        return result
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    if len(unknown) > 1:  # a second centre: the area centroid often lies in the kernel when the mean does not
        index = np.repeat(starts[unknown], counts[unknown]) + _ranks(counts[unknown])
        sub_points, sub_counts = points[index], counts[unknown]
        unknown = unknown[~star_simple(sub_points, sub_counts, _area_centroids(sub_points, sub_counts))]
    for n in np.unique(counts[unknown]).tolist():
        group = unknown[counts[unknown] == n]
        rings = points[starts[group][:, None] + np.arange(n)]
        result[group] = pairs_cross(rings)
    return result


def classify_parts(coords: np.ndarray, offsets: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """One ``PART_*`` code per part (int8, ``P``); ``heights`` / ``widths`` (``P``) are the
    sizes of the images the parts belong to."""
    lengths = np.diff(offsets)
    codes = np.full(len(lengths), PART_OK, dtype=np.int8)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(coords), dtype=np.int64)])
    codes[(bad[offsets[1:]] - bad[offsets[:-1]]) > 0] = PART_NONFINITE
    codes[lengths % 2 == 1] = PART_ODD  # named first, as one part-at-a-time checking does
    codes[(codes == PART_OK) & (lengths < 6)] = PART_FEW
    live = np.flatnonzero(codes == PART_OK)
    if not len(live):
        return codes
    if len(live) == len(lengths):
        points = coords.reshape(-1, 2)
    else:  # gather the coordinates of the parts still in question
        starts, lens = offsets[:-1][live], lengths[live]
        first = np.zeros(len(live), dtype=np.int64)
        np.cumsum(lens[:-1], out=first[1:])
        points = coords[np.repeat(starts - first, lens) + np.arange(int(lens.sum()))].reshape(-1, 2)
    counts = lengths[live] // 2
    starts, _ = _point_runs(counts)
    low, high = np.minimum.reduceat(points, starts, axis=0), np.maximum.reduceat(points, starts, axis=0)
    outside = (high[:, 0] <= 0) | (high[:, 1] <= 0) | (low[:, 0] >= widths[live]) | (low[:, 1] >= heights[live])
    codes[live[outside]] = PART_OUTSIDE
    inside = ~outside
    if not inside.any():
        return codes
    if not inside.all():
        points = points[np.repeat(inside, counts)]
        live, counts = live[inside], counts[inside]
    crossing = self_intersecting(points, counts)
    codes[live[crossing]] = PART_SELF
    starts, nxt = _point_runs(counts)
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * np.abs(np.add.reduceat(x * y[nxt], starts) - np.add.reduceat(y * x[nxt], starts))
    codes[live[~crossing & (area <= 0)]] = PART_ZERO
    return codes
