"""Translation quality where the true A→B map is known (``digits2inverted``): how far ``G_A(x)`` is from
``T(x)`` on held-out A images, next to the identity baseline (how far ``x`` itself is from ``T(x)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn



@dataclass(frozen=True)
class TranslationScore:
    """Mean absolute error in [-1, 1] units (1/127.5 ≈ one uint8 level) over ``n`` held-out images."""

    model_mae: float  # mean |G_A(x) - T(x)|
    identity_mae: float  # mean |x - T(x)|: what doing nothing scores
    constant_mae: float  # mean |m - T(x)|, m = the per-pixel mean of T(x): the best input-blind picture (L2)
    model_rmse: float
    identity_rmse: float
    n: int

    @property
    def ratio(self) -> float:
        """model / identity error: < 1 beats the baseline; 0 is perfect."""
        return self.model_mae / self.identity_mae if self.identity_mae > 0 else float("inf")

    def summary(self) -> str:
        return (f"G_A vs true map: MAE {self.model_mae:.4f} (identity baseline {self.identity_mae:.4f}, "
                f"ratio {self.ratio:.3f}; constant-picture baseline {self.constant_mae:.4f}) on {self.n} "
                "held-out images")


@torch.no_grad()
def translation_error(generator: nn.Module, images: torch.Tensor,
                      true_map: Callable[[torch.Tensor], torch.Tensor], *, batch_size: int = 64,
                      device: str | torch.device = "cpu") -> TranslationScore:
    """Score ``generator`` (A→B) on ``images`` [N, C, H, W] in [-1, 1] against ``true_map``."""
    if images.shape[0] == 0:
        raise ValueError("no images to evaluate")
    was_training = generator.training
    generator.eval()
    sums = torch.zeros(4, dtype=torch.float64)  # |G-T|, |x-T|, (G-T)², (x-T)²
    target_sum = torch.zeros(images.shape[1:], dtype=torch.float64)  # Σ T(x): [C, H, W]
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device)  # [B, C, H, W]
            target = true_map(x)  # [B, C, H, W]
            fake = generator(x).float()  # [B, C, H, W]
            sums += torch.stack([(fake - target).abs().sum(), (x - target).abs().sum(),
                                 ((fake - target) ** 2).sum(), ((x - target) ** 2).sum()]).double().cpu()
            target_sum += target.double().sum(0).cpu()
    finally:
        generator.train(was_training)
    count = images.numel()
    mean_target = (target_sum / images.shape[0]).float()  # [C, H, W]
    constant = sum(float((mean_target - true_map(images[s:s + batch_size]).cpu()).abs().sum())
                   for s in range(0, images.shape[0], batch_size)) / count
    mae, id_mae, mse, id_mse = (sums / count).tolist()
    return TranslationScore(mae, id_mae, constant, mse**0.5, id_mse**0.5, int(images.shape[0]))
