"""Building blocks any family may use: spectral norm (and its baking for export), SAGAN self-attention,
conditional BatchNorm (BigGAN), residual up/down blocks, BigGAN's orthogonal regularisation.

Blocks are built from plain layers; a model applies spectral norm to its whole tree after initialising the
weights (``orthogonal_init`` then ``apply_spectral_norm``), so the power-iteration vectors start converged on
the initial weights (15 iterations at registration).

* **Spectral norm** (Miyato et al., 2018) through ``torch.nn.utils.parametrizations.spectral_norm``: the module
  keeps ``parametrizations.weight.original`` and the power-iteration vectors ``_u`` / ``_v``; in training mode
  each forward runs one power iteration, in eval mode the stored vectors are used as they are, so an eval
  forward is deterministic. ``bake_for_export`` replaces every parametrised tensor by its eval-mode value, so an
  exported graph holds plain weights and no normalisation arithmetic.
* **Self-attention** (Zhang et al., 2019, SAGAN): 1x1 θ / φ / g projections to C/8, C/8, C/2 channels, 2x2
  max-pool on φ and g, softmax over the pooled positions, 1x1 output projection, ``x + γ·attn`` with γ = 0 at
  init (the block starts as the identity).
* **Conditional BatchNorm** (de Vries et al., 2017; BigGAN): BatchNorm without affine, then per-sample gain
  ``1 + W_g c`` and bias ``W_b c`` from a conditioning vector ``c`` (BigGAN: shared class embedding ⊕ z chunk).
  Eval mode uses the running statistics, so an item's output does not depend on its batch.
* **Orthogonal regularisation** (Brock et al., 2019): ``β ‖W Wᵀ ⊙ (1 − I)‖²_F`` summed over weight matrices.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

SN_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
SN_EPS = 1e-6  # BigGAN-PyTorch's SN epsilon
ORTHO_BETA = 1e-4  # BigGAN's default strength


# --- spectral normalisation --------------------------------------------------------------------------------


def apply_spectral_norm(root: nn.Module, types: tuple[type[nn.Module], ...] = SN_TYPES, *,
                        exclude: Iterable[nn.Module] = (), eps: float = SN_EPS) -> nn.Module:
    """Spectral-normalise the ``weight`` of every module of ``types`` in the tree, except the modules in
    ``exclude`` (and their children) and those already normalised; one power iteration per training forward.
    Returns ``root``."""
    skip = {id(m) for e in exclude for m in e.modules()}
    for module in list(root.modules()):
        if isinstance(module, types) and id(module) not in skip and not is_spectral_normed(module):
            spectral_norm(module, n_power_iterations=1, eps=eps)
    return root


def is_spectral_normed(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight")


def count_parametrized(root: nn.Module) -> int:
    """Number of parametrised tensors in the tree (0 once baked)."""
    return sum(len(m.parametrizations) for m in root.modules() if parametrize.is_parametrized(m))


@torch.no_grad()
def bake_for_export(module: nn.Module) -> nn.Module:
    """Eval mode, then every parametrised tensor (spectral norm's ``weight``, any other parametrisation)
    replaced by the value it has in eval mode; returns ``module``, ready for tracing.

    Spectral norm in eval mode divides by σ = uᵀ W v from the *stored* vectors (no power iteration), so
    the baked weight gives bit-for-bit the eval output of the parametrised module. Idempotent.
    """
    module.eval()
    for m in list(module.modules()):
        if parametrize.is_parametrized(m):
            for name in list(m.parametrizations.keys()):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return module


# --- self-attention ----------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """SAGAN self-attention over a feature map: x [N, C, H, W] (C % 8 == 0, H and W even) → same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 8 or channels < 8:
            raise ValueError(f"self-attention needs channels divisible by 8, got {channels}")
        self.channels = channels
        self.theta = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.phi = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.g = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))  # 0 at init: the block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [N, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [N, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [N, C/2, HW/4]
        beta = torch.softmax(torch.matmul(theta.transpose(1, 2), phi), dim=-1)  # [N, HW, HW/4], unscaled QKᵀ
        attn = torch.matmul(g, beta.transpose(1, 2))  # [N, C/2, HW]
        return x + self.gamma * self.out(attn.reshape(n, c // 2, h, w))  # [N, C, H, W]


# --- conditional BatchNorm ---------------------------------------------------------------------------------


class ConditionalBatchNorm2d(nn.Module):
    """(x [N, C, H, W], c [N, D]) → BN(x) · (1 + W_g c) + W_b c; W_g, W_b linear maps without bias."""

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(c)  # [N, C]
        bias = self.bias(c)  # [N, C]
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class Norm2d(nn.Module):
    """BatchNorm2d that takes (and ignores) a conditioning vector, so blocks run conditional or not alike."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.bn(x)


def norm2d(channels: int, cond_dim: int) -> nn.Module:
    """Conditional BN when ``cond_dim > 0``, else plain BN (both called as ``norm(x, c)``)."""
    return ConditionalBatchNorm2d(channels, cond_dim) if cond_dim > 0 else Norm2d(channels)


# --- residual blocks (BigGAN / SNGAN layout) ---------------------------------------------------------------


class GBlock(nn.Module):
    """Up-sampling residual block: (x [N, Cin, H, W], c [N, D]) → [N, Cout, 2H, 2W].

    main: norm(c) → ReLU → 2x nearest → conv3x3 → norm(c) → ReLU → conv3x3;
    shortcut: 2x nearest → conv1x1.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = norm2d(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = norm2d(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, c)), scale_factor=2.0, mode="nearest")  # [N, Cin, 2H, 2W]
        h = self.conv2(F.relu(self.norm2(self.conv1(h), c)))  # [N, Cout, 2H, 2W]
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """Down-sampling residual block: x [N, Cin, H, W] → [N, Cout, H/2, W/2] (``down=False``: same size).

    main: (ReLU unless first) → conv3x3 → ReLU → conv3x3 → avg-pool 2; shortcut: conv1x1 → avg-pool 2
    (the first block pools before its shortcut conv, as in SNGAN's optimised block).
    """

    def __init__(self, c_in: int, c_out: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))  # [N, Cout, H, W]
        if self.down:
            h = F.avg_pool2d(h, 2)  # [N, Cout, H/2, W/2]
        s = x
        if self.first and self.down:
            s = F.avg_pool2d(s, 2)
        if self.shortcut is not None:
            s = self.shortcut(s)
        if self.down and not self.first:
            s = F.avg_pool2d(s, 2)
        return h + s


# --- orthogonal regularisation -----------------------------------------------------------------------------


def ortho_parameters(module: nn.Module) -> list[torch.Tensor]:
    """The weight matrices orthogonal regularisation applies to: parameters with ≥ 2 dims, except those of the
    sub-modules named in ``module.ortho_exclude`` (BigGAN leaves its shared class embedding out)."""
    skip: set[int] = set()
    for name in getattr(module, "ortho_exclude", ()):
        skip |= {id(p) for p in module.get_submodule(name).parameters()}
    return [p for p in module.parameters() if p.dim() >= 2 and p.requires_grad and id(p) not in skip]


def orthogonal_penalty(params: Iterable[torch.Tensor], beta: float = ORTHO_BETA) -> torch.Tensor:
    """BigGAN's off-diagonal orthogonal regulariser ``β Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F`` (each W as [out, -1]).

    Add it to the generator loss. Its gradient is ``4β (W Wᵀ ⊙ (1 − I)) W``; BigGAN-PyTorch's ``ortho()`` adds
    ``2β (…) W`` straight to the gradients, i.e. this penalty at β/2. Spectrally normalised modules are
    regularised through their raw ``original`` weight (that is the parameter).
    """
    total: torch.Tensor | None = None
    for p in params:
        w = p.reshape(p.shape[0], -1)  # [out, in·k·k]
        gram = w @ w.t()  # [out, out]
        off = gram * (1.0 - torch.eye(w.shape[0], device=w.device, dtype=w.dtype))
        term = off.pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return beta * total


def orthogonal_init(module: nn.Module) -> None:
    """BigGAN's init (``model.apply(orthogonal_init)``, before ``apply_spectral_norm``): orthogonal conv /
    linear / embedding weights, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)) \
            and not parametrize.is_parametrized(module):
        nn.init.orthogonal_(module.weight)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
