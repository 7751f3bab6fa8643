"""Exponential moving average of a generator's weights (BigGAN; Karras et al.'s "G_ema").

``GeneratorEMA`` keeps an eval-mode copy of G. After every generator update call ``ema.update(G, step)``:

* before ``start_step`` the copy is set *equal* to G (BigGAN-PyTorch's ``ema_start``: averaging the first,
  fast-moving steps would only drag the average back to the init);
* from then on every floating-point parameter and buffer — BatchNorm running means and variances included —
  becomes ``decay · ema + (1 − decay) · G``; integer buffers (``num_batches_tracked``) are copied.
* Spectral norm's power-iteration vectors (``…parametrizations.weight.0._u`` / ``_v``) are copied from G,
  not averaged: an average of unit vectors is not a unit vector, and eval-mode spectral norm divides by
  ``uᵀ W v`` with the stored vectors. G's vectors track G's weights, which the averaged weights follow.

``state_dict()`` / ``load_state_dict()`` carry the averaged generator's own state dict (same keys as G's, so
``build_generator(cfg).load_state_dict(ema.state_dict()["model"])`` rebuilds it for export) plus decay, start
step and the update count, all plain tensors and numbers (``torch.load(weights_only=True)`` reads them).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

SN_VECTOR_SUFFIXES = ("._u", "._v")  # torch spectral_norm's power-iteration buffers


class GeneratorEMA:
    """An averaged copy of a generator (``module``, eval mode, no gradients)."""

    def __init__(self, generator: nn.Module, decay: float = 0.999, start_step: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if start_step < 0:
            raise ValueError(f"EMA start step must be >= 0, got {start_step}")
        self.decay = float(decay)
        self.start_step = int(start_step)
        self.updates = 0  # averaging updates done (steps at or after start_step)
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        """Fold G's current weights in; ``step`` is the generator step just done (0-based or 1-based alike)."""
        decay = 0.0 if step < self.start_step else self.decay
        if decay > 0.0:
            self.updates += 1
        source = generator.state_dict()
        for key, target in self.module.state_dict().items():
            value = source[key].detach()
            if not target.dtype.is_floating_point or key.endswith(SN_VECTOR_SUFFIXES) or decay == 0.0:
                target.copy_(value)
            else:
                target.lerp_(value.to(target.dtype), 1.0 - decay)  # decay·ema + (1 − decay)·G

    def to(self, device: torch.device | str) -> GeneratorEMA:
        self.module.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "start_step": self.start_step, "updates": self.updates,
                "model": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.start_step = int(state["start_step"])
        self.updates = int(state.get("updates", 0))
        self.module.load_state_dict(state["model"], strict=True)
