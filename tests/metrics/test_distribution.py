"""Distribution metrics against ground truth: closed-form FID, the reference prdc package, digits features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandeploy.errors import UserInputError
from gandeploy.metrics import distribution as D


def _exact_gaussian_sample(n: int, mu: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """n points whose sample mean is exactly ``mu`` and unbiased sample covariance exactly ``cov``."""
    x = np.random.default_rng(seed).standard_normal((n, len(mu)))
    x -= x.mean(0)
    emp = x.T @ x / (n - 1)
    x = x @ np.linalg.inv(np.linalg.cholesky(emp)).T  # whitened: covariance I
    return x @ np.linalg.cholesky(cov).T + mu


def test_fid_of_two_gaussians_equals_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) + 1.0
    x, y = _exact_gaussian_sample(500, mu1, cov1, 1), _exact_gaussian_sample(700, mu2, cov2, 2)
    expected = D.gaussian_fid(mu1, cov1, mu2, cov2)
    assert D.fid(x, y) == pytest.approx(expected, rel=1e-6)
    # 1D: N(0, 1) vs N(m, s^2) is m^2 + (1 - s)^2
    u = _exact_gaussian_sample(300, np.zeros(1), np.eye(1), 3)
    v = _exact_gaussian_sample(300, np.full(1, 2.0), np.full((1, 1), 0.25), 4)
    assert D.fid(u, v) == pytest.approx(4.0 + 0.25, rel=1e-6)
    assert D.fid(x, x) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_prdc_equals_the_reference_package(shift: float) -> None:
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(42)
    real = rng.standard_normal((300, 16))
    fake = rng.standard_normal((250, 16)) * 1.2 + shift
    ours = D.prdc_scores(real, fake, chunk=64)  # small chunks: the chunked path is what is compared
    ref3 = prdc.compute_prdc(real, fake, nearest_k=3)
    ref5 = prdc.compute_prdc(real, fake, nearest_k=5)
    assert ours["precision"] == pytest.approx(float(ref3["precision"]), abs=1e-12)
    assert ours["recall"] == pytest.approx(float(ref3["recall"]), abs=1e-12)
    assert ours["density"] == pytest.approx(float(ref5["density"]), abs=1e-12)
    assert ours["coverage"] == pytest.approx(float(ref5["coverage"]), abs=1e-12)
    assert 0.0 < ours["precision"] <= 1.0 and 0.0 < ours["coverage"] <= 1.0


def test_kid_is_seeded_near_zero_for_one_distribution_and_large_for_two() -> None:
    rng = np.random.default_rng(7)
    a, b, c = rng.standard_normal((400, 8)), rng.standard_normal((400, 8)), rng.standard_normal((400, 8)) + 1.0
    same = D.kid(a, b, subsets=50, subset_size=100, seed=3)
    assert same == D.kid(a, b, subsets=50, subset_size=100, seed=3)  # fixed subsets
    mean, std, size = same
    assert size == 100 and abs(mean) < 3 * std
    far_mean, far_std, _ = D.kid(a, c, subsets=50, subset_size=100, seed=3)
    assert far_mean > 5 * far_std > 0


@pytest.fixture(scope="module")
def digits_extractor():
    from gandeploy.metrics.features import get_extractor

    return get_extractor("digits")  # trains once and caches under training/data/digits/


def test_digits_features_real_vs_real_small_and_real_vs_noise_large(digits_extractor) -> None:
    from gandeploy.data.digits import load_split

    assert digits_extractor.info["held_out_accuracy"] >= 0.95
    train, _ = load_split("train", 32)
    test, _ = load_split("test", 32)
    noise = torch.rand(len(test), 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    f_train, f_test, f_noise = digits_extractor(train), digits_extractor(test), digits_extractor(noise)
    real_real = D.score(f_test, f_train, kid_subsets=50, kid_subset_size=200)
    real_noise = D.score(f_test, f_noise, kid_subsets=50, kid_subset_size=200)
    assert real_real.fid < 5.0 and real_noise.fid > 20 * real_real.fid
    assert abs(real_real.kid_mean) < 4 * real_real.kid_std + 0.02
    assert real_noise.kid_mean > 10 * real_noise.kid_std
    assert real_noise.kid_mean > 20 * (abs(real_real.kid_mean) + real_real.kid_std)
    assert real_real.precision > 0.8 and real_real.recall > 0.8
    assert real_noise.precision < 0.2 and real_noise.coverage < 0.1


def test_inception_without_weights_names_the_file_and_does_not_download(tmp_path, monkeypatch) -> None:
    from gandeploy.metrics.features import INCEPTION_ENV, INCEPTION_FILE, get_extractor

    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserInputError, match=INCEPTION_FILE):
        get_extractor("inception")
    with pytest.raises(UserInputError, match="does not exist"):
        get_extractor("inception", inception_weights_path=tmp_path / "missing.pth")
    assert not any(tmp_path.rglob("*.pth"))
