"""Every shipped detector config builds the same weights, computes the same losses and gives
the same detections as recorded in ``tests/fixtures/detector_golden.json`` (see
``detector_golden.py``): the guard of behaviour-preserving refactors of the models."""

import json
import math

import pytest
from detector_golden import GOLDEN, detector_configs, fingerprint  # noqa: E402 (tests/models on sys.path)

with open(GOLDEN, encoding="utf-8") as _fh:
    EXPECTED = json.load(_fh)


def test_every_shipped_detector_config_has_a_golden_record():
    assert sorted(EXPECTED) == detector_configs()


def _close(got, want, tol: float, where: str) -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            _close(got[key], want[key], tol, f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, tol, f"{where}[{i}]")
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=tol, abs_tol=tol), f"{where}: {got} != {want}"
    elif isinstance(want, int) and not isinstance(want, bool) and abs(want) * tol >= 1:
        # large counts (mask pixels): a pixel at the 0.5 threshold flips with the CPU's float
        # kernels (AVX2 against AVX-512); counts too small for the tolerance stay exact
        assert abs(got - want) <= abs(want) * tol, f"{where}: {got} != {want}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outputs_are_unchanged(name):
    got, want = fingerprint(name), EXPECTED[name]
    assert got["kind"] == want["kind"]
    assert got["weights"] == want["weights"], f"{name}: the seed-0 weights changed"
    _close(got["losses"], want["losses"], 1e-5, f"{name}.losses")
    for key in ("detections", "detections_meta"):
        _close(got[key], want[key], 1e-4, f"{name}.{key}")
    # the fast path folds BN into the convolutions: the same detections up to float rounding
    _close(got.get("fast_detections"), want.get("fast_detections"), 2e-3, f"{name}.fast_detections")
