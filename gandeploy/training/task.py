"""The small trainer contract: a GAN family is a ``GANTask`` with ``d_step`` / ``g_step`` and declared losses.

The generic ``Trainer`` (trainer.py) owns everything else — the step loop, batches, progress bar,
``losses.csv``, checkpoints, resume, sample grids — so those stay identical across families.

Randomness is counter-based: every draw in step ``s`` comes from ``step_generator(seed, s, stream)``
(utils/device.py), never from global RNG state. A resumed run therefore draws exactly what an uninterrupted
run would have drawn, and only models, optimizers and ``extra_state`` need saving.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.config import RunConfig

LOSSES = ("minimax", "nonsat", "lsgan", "wgan", "wgan-gp", "hinge")


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains (not what the model is). Saved under ``"train"`` in ``config.json``.

    ``epochs`` or ``steps`` (generator updates) bounds the run; ``steps`` wins when both are set.
    ``lr``/``beta1``/``beta2``/``n_critic`` left at ``None`` take the loss's defaults (losses.py).
    """

    loss: str = "nonsat"
    epochs: int = 5
    steps: int | None = None
    batch_size: int = 64
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    clip: float = 0.01  # WGAN weight clipping bound
    gp_weight: float = 10.0  # WGAN-GP penalty weight
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    checkpoint_every: int = 500  # steps between checkpoints (and always at the end of an epoch)
    keep_every: int = 0  # > 0: also keep checkpoints/step_XXXXXX.pt every this many steps
    # CycleGAN (the paper's recipe)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # times lambda_cycle
    pool_size: int = 50
    epochs_decay: int = 0  # epochs of linear LR decay to zero after `epochs` constant ones
    load_size: int = 286  # resize before the random crop to image_size
    flip: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if self.batch_size < 1 or self.epochs < 0 or (self.steps is not None and self.steps < 1):
            raise ValueError("batch_size must be >= 1, epochs >= 0 and steps >= 1")

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


class GANTask(ABC):
    """One GAN family's learning rule over named models and optimizers.

    Subclasses set ``loss_names`` (the columns of ``losses.csv``) and fill ``models`` / ``optimizers``
    (dicts keyed like the checkpoint: ``G``, ``D``; CycleGAN ``G_A``, ``G_B``, ``D_A``, ``D_B``).
    """

    loss_names: tuple[str, ...] = ()

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        self.run = run
        self.train = train
        self.device = device
        self.dataset = dataset
        self.models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def n_critic(self) -> int:
        """Discriminator updates per generator update."""
        return 1

    @abstractmethod
    def d_step(self, batch: Any, gen: torch.Generator) -> dict[str, float]:
        """One discriminator update on ``batch``; returns named losses (a subset of ``loss_names``)."""

    @abstractmethod
    def g_step(self, batch: Any, gen: torch.Generator) -> dict[str, float]:
        """One generator update; returns named losses."""

    @abstractmethod
    def save_samples(self, path: Path, step: int) -> Path:
        """Write a sample grid PNG (fixed latents / fixed test images) to ``path``."""

    def on_epoch_end(self, epoch: int) -> None:
        """Hook for LR schedules and the like (epoch counts from 0)."""

    def extra_state(self) -> dict[str, Any]:
        """Extra state to checkpoint (image pools, schedulers); tensors and plain values only."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""
