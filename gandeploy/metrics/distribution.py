"""Distribution metrics between two feature sets: FID, KID (mean ± std over subsets), precision/recall, density/coverage.

Which library computes what, and why:

* **FID and KID: torchmetrics** (``FrechetInceptionDistance`` / ``KernelInceptionDistance``, Lightning AI, released
  monthly). They accept any ``nn.Module`` as the feature extractor, so our pluggable extractors (features.py)
  feed them through an identity module and the statistics (float64 running sums, the eigenvalue form of the
  matrix square root, the cubic-polynomial-kernel MMD over random subsets) are the library's. torch-fidelity is
  the other well-kept choice and owns the standard Inception weights, but it imports torchvision at module import,
  and PyPI's torchvision wheels are CUDA builds that fail to load against CPU torch; torchmetrics only needs
  torch-fidelity for its *default* Inception extractor, which features.py loads separately.
* **Precision/recall (k = 3, Kynkäänniemi et al. 2019) and density/coverage (k = 5, Naeem et al. 2020)**: the
  reference package is ``prdc`` (the authors'), but it builds three full N x N float64 distance matrices through
  scikit-learn (2.4 GB at n = 10,000). ``prdc_scores`` is a chunked torch port of its formulas (memory
  O(N x chunk)); tests/metrics/test_distribution.py checks it equals ``prdc.compute_prdc`` on fixed random
  features. ``prdc`` is therefore a test dependency (extra ``dev``), torchmetrics a runtime one.

All functions take features [N, d] (NumPy or torch) and return plain floats.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

PR_K = 3  # precision / recall neighbourhood (Kynkäänniemi et al.)
DC_K = 5  # density / coverage neighbourhood (Naeem et al.)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class DistributionScores:
    """Generated vs real, in one feature space. ``kid_*`` over ``kid_subsets`` subsets of ``kid_subset_size``."""

    fid: float
    kid_mean: float
    kid_std: float
    precision: float
    recall: float
    density: float
    coverage: float
    n_real: int
    n_fake: int
    kid_subsets: int
    kid_subset_size: int

    def to_json(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


class _Identity(nn.Module):
    """Hands precomputed features [N, d] to torchmetrics as if it were its extractor."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_tensor(features: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if t.dim() == 1:
        t = t[:, None]  # [N] → [N, 1]
    if t.dim() != 2:
        raise ValueError(f"features must be [N, d], got shape {tuple(t.shape)}")
    return t


def fid(real: Any, fake: Any) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` [N, d] and ``fake`` [M, d] (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    r, f = _as_tensor(real), _as_tensor(fake)
    metric = FrechetInceptionDistance(feature=_Identity(r.shape[1]))
    metric.update(r, real=True)
    metric.update(f, real=False)
    return float(metric.compute())


def kid(real: Any, fake: Any, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float, int]:
    """(mean, std, subset size) of the unbiased polynomial-kernel MMD² over random subsets (torchmetrics).

    Subsets are drawn from a fixed ``seed`` (global RNG untouched). When ``subset_size`` would cover the whole of
    the smaller set, subsets of half that set are used instead: every subset being the whole set gives a std of 0,
    which would make "within KID's std" checks meaningless for small sets (a per-class row, a 148-picture test
    split).
    """
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    r, f = _as_tensor(real), _as_tensor(fake)
    smaller = int(min(r.shape[0], f.shape[0]))
    size = int(subset_size) if subset_size < smaller else max(2, smaller // 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_Identity(r.shape[1]), subsets=subsets, subset_size=size)
    metric.update(r, real=True)
    metric.update(f, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance of each row of ``x`` [N, d] to its k-th nearest other row: [N] (prdc's radii)."""
    radii = []
    for start in range(0, x.shape[0], chunk):
        d = torch.cdist(x[start:start + chunk], x)  # [c, N]; column i of row i is 0 (itself)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # [c]
    return torch.cat(radii)


def prdc_scores(real: Any, fake: Any, pr_k: int = PR_K, dc_k: int = DC_K,
                chunk: int = 2048) -> dict[str, float]:
    """Precision, recall (k = ``pr_k``), density and coverage (k = ``dc_k``) as ``prdc.compute_prdc`` defines them.

    precision = share of fakes inside some real k-NN ball; recall = share of reals inside some fake k-NN ball;
    density = mean over fakes of (#real balls containing it) / k; coverage = share of reals whose nearest fake
    lies inside their own ball.
    """
    r, f = _as_tensor(real), _as_tensor(fake)
    out: dict[str, float] = {}
    r_pr, f_pr = _kth_neighbour_radii(r, pr_k, chunk), _kth_neighbour_radii(f, pr_k, chunk)  # [N], [M]
    r_dc = r_pr if dc_k == pr_k else _kth_neighbour_radii(r, dc_k, chunk)  # [N]
    in_real_ball = torch.zeros(f.shape[0], dtype=torch.bool)  # [M]
    density_count = torch.zeros(f.shape[0], dtype=torch.float64)  # [M]
    nearest_fake = torch.full((r.shape[0],), math.inf, dtype=torch.float64)  # [N]
    recall_hit = torch.zeros(r.shape[0], dtype=torch.bool)  # [N]
    for start in range(0, r.shape[0], chunk):
        d = torch.cdist(r[start:start + chunk], f)  # [c, M]: real rows vs fakes
        in_real_ball |= (d < r_pr[start:start + chunk, None]).any(dim=0)
        density_count += (d < r_dc[start:start + chunk, None]).sum(dim=0)
        nearest_fake[start:start + chunk] = d.min(dim=1).values
        recall_hit[start:start + chunk] = (d < f_pr[None, :]).any(dim=1)
    out["precision"] = float(in_real_ball.double().mean())
    out["recall"] = float(recall_hit.double().mean())
    out["density"] = float(density_count.mean() / dc_k)
    out["coverage"] = float((nearest_fake < r_dc).double().mean())
    return out


def score(real: Any, fake: Any, *, kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
          seed: int = 0) -> DistributionScores:
    """Every metric of ``fake`` [M, d] against ``real`` [N, d]."""
    r, f = _as_tensor(real), _as_tensor(fake)
    kid_mean, kid_std, size = kid(r, f, kid_subsets, kid_subset_size, seed)
    pr = prdc_scores(r, f)
    return DistributionScores(fid(r, f), kid_mean, kid_std, pr["precision"], pr["recall"], pr["density"],
                              pr["coverage"], int(r.shape[0]), int(f.shape[0]), kid_subsets, size)


def gaussian_fid(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Closed-form Fréchet distance ‖μ1-μ2‖² + Tr(Σ1 + Σ2 - 2(Σ1^½ Σ2 Σ1^½)^½) (for tests and sanity checks)."""
    w, v = np.linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # Σ1^½
    m = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * cross)
