"""Error metrics and the tolerance table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gandeploy.diffs import compare_float, compare_uint8, level_diff, psnr
from gandeploy.tolerances import KINDS, PRECISIONS, TOLERANCES, tolerance_for
from gandeploy.models.io import to_uint8

LEVEL = 1 / 127.5


def images(seed: int = 0, shape: tuple[int, ...] = (2, 3, 8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.9, 0.9, shape).astype(np.float32)


def test_identical_outputs() -> None:
    ref = images()
    d = compare_float(ref, ref.copy())
    assert (d.max_abs, d.mean_abs, d.uint8_max, d.uint8_mean) == (0.0, 0.0, 0, 0.0)
    assert math.isinf(d.psnr) and d.to_json()["psnr"] is None  # JSON has no inf
    assert d.numel == ref.size


def test_known_offset() -> None:
    ref = images()
    d = compare_float(ref, ref + 0.01)
    assert d.max_abs == pytest.approx(0.01, rel=1e-4) and d.mean_abs == pytest.approx(0.01, rel=1e-4)
    assert d.psnr == pytest.approx(10 * math.log10(4 / 1e-4), rel=1e-3)  # data range 2, MSE 1e-4
    assert d.uint8_max in (1, 2) and 0.9 < d.uint8_mean < 1.6  # 0.01 ≈ 1.3 levels


def test_uint8_rounding_boundary() -> None:
    """A tiny error flips a pixel sitting on a .5 boundary by exactly one level."""
    ref = np.full((1, 1, 2, 2), 0.5 / 127.5 - 1.0 + 1e-7, dtype=np.float32)  # (x+1)*127.5 ≈ 0.5
    d = compare_float(ref, ref - 2e-7)
    assert d.max_abs < 1e-6 and d.uint8_max == 1


def test_vectors_have_no_uint8_figures() -> None:
    pts = np.random.default_rng(1).uniform(-1, 1, size=(16, 2)).astype(np.float32)
    d = compare_float(pts, pts + 1e-3)
    assert d.uint8_max is None and d.uint8_mean is None and d.max_abs == pytest.approx(1e-3, rel=1e-3)


def test_wide_range_vectors_are_compared_relative_to_their_extent() -> None:
    grid = np.random.default_rng(2).uniform(-4, 4, size=(256, 2)).astype(np.float32)
    grid[0, 0] = 4.0  # extent 4
    cand = grid.copy()
    cand[7, 1] += 0.036  # an FP16 grid25 generator's worst error: 0.9 % of the extent
    d = compare_float(grid, cand)
    assert d.max_abs == pytest.approx(0.009, rel=1e-3) and not tolerance_for("fp16").breaches(d)
    cand[7, 1] += 0.064  # 2.5 % of the extent: a breach
    assert tolerance_for("fp16").breaches(compare_float(grid, cand))


def test_nan_and_shape_mismatch() -> None:
    ref = images()
    bad = ref.copy()
    bad[0, 0, 0, 0] = np.nan
    d = compare_float(ref, bad)
    assert math.isinf(d.max_abs) and tolerance_for("fp16").breaches(d)
    with pytest.raises(ValueError, match="shape mismatch"):
        compare_float(ref, ref[:1])


def test_compare_uint8() -> None:
    ref = to_uint8(images())
    cand = ref.copy()
    cand[0, 0, 0, 0] = min(255, int(cand[0, 0, 0, 0]) + 3)
    d = compare_uint8(ref, cand)
    assert d.uint8_max == 3 and d.max_abs == pytest.approx(3 * LEVEL, abs=1e-6)
    assert level_diff(ref, ref) == (0, 0.0)
    with pytest.raises(ValueError, match="uint8"):
        compare_uint8(ref.astype(np.int16), cand)


def test_psnr_formula() -> None:
    a = np.zeros(100, np.float32)
    assert psnr(a, a + 0.2) == pytest.approx(10 * math.log10(4 / 0.04))


def test_table_is_complete_and_ordered() -> None:
    assert set(TOLERANCES) == {(p, k) for p in PRECISIONS for k in KINDS}
    fp32, fp16 = tolerance_for("fp32"), tolerance_for("fp16")
    assert fp32.max_abs < LEVEL  # an FP32 backend inside its bound never moves a served pixel by 2 levels
    assert fp16.max_abs > fp32.max_abs and fp16.mean_abs > fp32.mean_abs  # type: ignore[operator]
    assert tolerance_for("fp32", "uint8").uint8_max == 1 and tolerance_for("fp16", "uint8").uint8_max == 2
    int8 = tolerance_for("int8")  # judged by its distribution (int8_verdict.py), never by a pixel bound
    assert (int8.max_abs, int8.mean_abs, int8.uint8_max, int8.uint8_mean) == (None, None, None, None)
    with pytest.raises(ValueError, match="no tolerance"):
        tolerance_for("int4")


def test_breaches_name_the_figure() -> None:
    ref = images()
    cand = ref.copy()
    cand.reshape(-1)[::10] += 5e-3  # 10 % of the values off by 5e-3: fine for FP16, not for FP32
    d = compare_float(ref, cand)
    assert not tolerance_for("fp16").breaches(d)
    problems = tolerance_for("fp32").breaches(d)
    assert any(p.startswith("max_abs") for p in problems) and any(p.startswith("mean_abs") for p in problems)
    u8 = compare_uint8(to_uint8(ref), to_uint8(ref + 3 * LEVEL))
    assert any(p.startswith("uint8_max") for p in tolerance_for("fp32", "uint8").breaches(u8))
