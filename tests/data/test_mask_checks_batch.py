"""The batched mask checks (``check_segmentations`` / ``checked_annotations``) give exactly what
the one-at-a-time checks give: same cleaned segmentations, counts and errors, in order."""

from collections import Counter

import numpy as np
import pytest

from resdet.structures.mask_checks import (
    FEW_POINTS,
    NO_VALID_MASK,
    OUTSIDE,
    SELF_INTERSECTING,
    ZERO_AREA,
    _check_one,
    check_segmentation,
    check_segmentations,
    checked_annotation,
    checked_annotations,
)
from resdet.structures.polygon_checks import pairs_cross, self_intersecting, star_simple

SQUARE = [10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0]
BOWTIE = [10.0, 10.0, 50.0, 40.0, 50.0, 10.0, 10.0, 40.0]  # edges 0 and 2 cross
COLLINEAR = [0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0, 30.0]  # zero area, nothing crosses
OUTSIDE_PART = [200.0, 200.0, 260.0, 200.0, 260.0, 250.0]
# a C shape: simple, but not star-shaped around its vertex mean (the all-pairs path decides)
C_SHAPE = [0, 0, 30, 0, 30, 5, 5, 5, 5, 25, 30, 25, 30, 30, 0, 30]
# a polygon whose last edge crosses its second: self-intersecting, with non-zero area
LOOP = [0, 0, 40, 0, 40, 40, 20, 40, 20, -10, 10, -10, 10, 20, 0, 20]


def _crosses_reference(points: np.ndarray) -> bool:
    """Plain-Python proper crossing of two non-adjacent edges (independent of the arrays)."""

    def orient(p, q, r):
        value = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (value > 0) - (value < 0)

    n = len(points)
    edges = [(points[k], points[(k + 1) % n]) for k in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            (a, b), (c, d) = edges[i], edges[j]
            if orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0:
                return True
    return False


def test_hand_built_polygons_get_their_problem():
    cases = [
        ([SQUARE], None, {}),
        ([BOWTIE], None, {SELF_INTERSECTING: 1, NO_VALID_MASK: 1}),
        ([COLLINEAR], None, {ZERO_AREA: 1, NO_VALID_MASK: 1}),
        ([OUTSIDE_PART], None, {OUTSIDE: 1, NO_VALID_MASK: 1}),
        ([[1.0, 2.0, 3.0, 4.0]], None, {FEW_POINTS: 1, NO_VALID_MASK: 1}),
        ([C_SHAPE], None, {}),
        ([LOOP], None, {SELF_INTERSECTING: 1, NO_VALID_MASK: 1}),
        ([SQUARE, [1.0, float("nan"), 3.0, 4.0, 5.0, 6.0]], "polygon part 1 has non-finite coordinates", {}),
        ([SQUARE + [1.0]], "polygon part 0 has an odd number of coordinates", {}),
        ([[1.0, "a", 2.0, 3.0, 4.0, 5.0]], "polygon part 0 is not a list of numbers", {}),
    ]
    for segm, error, counts in cases:
        check = check_segmentation(segm, 60, 80, "here")
        assert check.counts == Counter(counts), segm
        if error:
            assert check.error == f"here: {error}" and check.segmentation is None
        else:
            assert check.error is None
            assert (check.segmentation is None) == (NO_VALID_MASK in counts)
    # a bad part drops only itself; the segmentation that is left holds the good part
    check = check_segmentation([BOWTIE, SQUARE, [1.0, 1.0, 2.0, 2.0]], 60, 80, "here")
    assert check.segmentation == [SQUARE] and check.counts == Counter({SELF_INTERSECTING: 1, FEW_POINTS: 1})


def test_batch_equals_one_at_a_time_on_random_and_bad_input():
    rng = np.random.default_rng(0)
    segms = []
    for k in range(400):
        n = int(rng.integers(2, 14))
        if k % 4 == 0:  # random point clouds: often self-intersecting
            part = rng.uniform(-20, 100, 2 * n)
        elif k % 4 == 1:  # random-radius outlines: simple, often not star-shaped around their mean
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = rng.uniform(0.2, 1.0, n) * 30
            part = np.stack([40 + radii * np.cos(angles), 30 + radii * np.sin(angles)], 1).reshape(-1)
        elif k % 4 == 2:  # integer grid points: exact collinear and touching cases
            part = rng.integers(0, 6, 2 * n).astype(float) * 10
        else:
            part = np.round(rng.uniform(0, 80, 2 * n), 2)
        segms.append([part.tolist()] + ([SQUARE] if k % 7 == 0 else []))
    segms += [
        None,
        [],
        {"size": [60, 80], "counts": [4800]},
        {"size": [60, 80], "counts": [100, 4700]},
        [[1.0, float("inf"), 2, 3, 4, 5]],
        [SQUARE, [1.0, 2.0, 3.0]],
        "bad",
        [[[1.0, 2.0]] * 3],
    ]
    heights, widths = [60] * len(segms), [80] * len(segms)
    batch = check_segmentations(segms, heights, widths, lambda i: f"item {i}")
    expected_counts, expected_errors = Counter(), []
    for index, segm in enumerate(segms):
        one = _check_one(segm, 60, 80, f"item {index}")
        expected_counts.update(one.counts)
        if one.error:
            expected_errors.append((index, one.error))
        got = batch.segmentations[index]
        assert (got is None) == (one.segmentation is None), index
        if got is not None and isinstance(got, list):
            assert [list(map(float, p)) for p in got] == [list(map(float, p)) for p in one.segmentation]
    assert batch.counts == expected_counts and batch.errors == expected_errors
    assert expected_counts[SELF_INTERSECTING] > 20 and expected_counts[ZERO_AREA] > 0  # the mix is a real test
    # the array test agrees with an independent plain-Python one on every random polygon
    for segm in segms[:400]:
        points = np.asarray(segm[0], dtype=float).reshape(-1, 2)
        if len(points) >= 4:
            assert self_intersecting(points, np.array([len(points)]))[0] == _crosses_reference(points.tolist())


def test_star_test_only_proves_simple_polygons_and_long_rings_work():
    square, c_shape = np.reshape(SQUARE, (-1, 2)), np.reshape(C_SHAPE, (-1, 2)).astype(float)
    points = np.concatenate([square, c_shape, np.reshape(BOWTIE, (-1, 2))])
    assert star_simple(points, np.array([4, 8, 4])).tolist() == [True, False, False]
    # a ring too long for one block of pairs goes in bands of rows; its one crossing is found
    n = 3000
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1) * (1 + 0.3 * (np.arange(n) % 2))[:, None]
    assert not pairs_cross(ring[None])[0]
    crossed = ring.copy()
    crossed[[10, 1500]] = crossed[[1500, 10]]
    assert pairs_cross(crossed[None])[0]


class _Dataset:
    ann_file = "ann.json"

    def __init__(self, strict: bool) -> None:
        self.stats, self.strict, self.problems = Counter(), strict, []

    def _problem(self, kind: str, message: str) -> None:
        if self.strict:
            raise ValueError(message)
        self.stats[kind] += 1
        self.problems.append(message)


def test_checked_annotations_matches_checked_annotation():
    anns = [
        dict(id=1, segmentation=[SQUARE]),
        dict(id=2, segmentation=[BOWTIE, SQUARE]),
        dict(id=3, segmentation=[BOWTIE]),
        dict(id=4, segmentation=[SQUARE + [1.0]]),
        dict(id=5, segmentation={"size": [60, 80], "counts": [100, 4700]}),
        dict(id=6, bbox=[1, 2, 3, 4]),
    ]
    one_by_one, batched = _Dataset(strict=False), _Dataset(strict=False)
    expected = [checked_annotation(one_by_one, a, 7, 60, 80) for a in anns]
    got = checked_annotations(batched, anns, [7] * len(anns), [60] * len(anns), [80] * len(anns))
    assert got == expected and batched.stats == one_by_one.stats and batched.problems == one_by_one.problems
    assert got[0] is anns[0] and got[1]["segmentation"] == [SQUARE] and got[2] is None and got[3] is None
    assert batched.problems == [
        "annotation id 4 of image id 7 in ann.json: polygon part 0 has an odd number of coordinates"
    ]
    with pytest.raises(ValueError, match="annotation id 4 of image id 7"):
        checked_annotations(_Dataset(strict=True), anns, [7] * 6, [60] * 6, [80] * 6)
