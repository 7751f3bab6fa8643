"""pix2pix's learning rule (Isola et al., 2017) as a ``GANTask``: G: source → target, D judges (source, picture).

The reference recipe (pytorch-CycleGAN-and-pix2pix ``pix2pix_model.py``): conditional GAN loss on the
concatenated pair, ``vanilla`` (BCE on logits; ``--loss nonsat`` here, the default) or ``lsgan`` (``--loss
lsgan``), plus λ·L1(G(x), y) with λ = 100; D's loss is ½ (fake + real); Adam 2e-4, β = (0.5, 0.999); constant
LR for ``epochs`` then linear decay to zero over ``epochs_decay``; batch size 1, BatchNorm, dropout in the
innermost decoder blocks; no image pool. Within a step ``d_step`` runs G once (the graph kept) and ``g_step``
reuses that output: D first, then G, as the reference's ``optimize_parameters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gandeploy.config import RunConfig
from gandeploy.errors import DataError, UserInputError
from gandeploy.models.pix2pix import Pix2PixConfig, build_discriminator, build_generator
from gandeploy.training.losses import resolve
from gandeploy.training.plots import save_image_grid
from gandeploy.training.task import GANTask, Losses, TrainConfig


N_SAMPLES = 8  # held-out pairs shown in a sample grid (one row each)
GAN_MODES = {"nonsat": "vanilla", "lsgan": "lsgan"}  # --loss → the reference's --gan_mode
DIRECTIONS = ("AtoB", "BtoA")


def _opt(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Pix2PixOptions:
    """pix2pix's own training fields (the paper's values); each is a ``gandeploy train`` flag."""

    lambda_l1: float = _opt(100.0, "Weight of the L1 loss to the target  [default: 100]")
    direction: str = _opt("AtoB", "aligned pairs: AtoB (left → right half) or BtoA  [default: AtoB]")
    load_size: int = _opt(286, "Resize before the random crop to image_size  [default: 286]")
    flip: bool = _opt(True, "Random horizontal flips  [default: true]")

    def __post_init__(self) -> None:
        if not self.lambda_l1 >= 0 or self.load_size < 1:
            raise ValueError("lambda_l1 must be >= 0 and load_size >= 1")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be AtoB or BtoA, got '{self.direction}'")


def gan_loss(pred: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """The reference's ``GANLoss`` on patch logits: BCE-with-logits (vanilla) or MSE (lsgan) to 1 or 0."""
    pred = pred.float()
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    if mode == "lsgan":
        return F.mse_loss(pred, target)
    return F.binary_cross_entropy_with_logits(pred, target)


class Pix2PixTask(GANTask):
    """Models ``G`` (U-Net) and ``D`` (PatchGAN on source ⊕ picture); optimizers ``G`` and ``D``."""

    loss_names = ("D", "G_GAN", "G_L1")
    Options = Pix2PixOptions
    # the reference's recipe: batch 1, 100 epochs at the full learning rate then 100 of linear decay
    train_defaults = {"batch_size": 1, "epochs": 100, "epochs_decay": 100}
    amp_dtypes = (torch.bfloat16,)  # bf16 autocast only: no scaler

    @classmethod
    def data_options(cls, options: Any) -> dict[str, Any]:
        """What the paired data sets read: the pair's direction and the augmentation of aligned pictures."""
        return {"direction": options.direction, "load_size": options.load_size, "flip": options.flip}

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        super().__init__(run, train, device, dataset)
        if train.sampling_only:
            raise UserInputError("--pack, --instance-noise, --r1, --zero-gp and --diffaug apply to the sampling "
                                 "families (pix2pix trains with the paper's rule).")
        if train.loss not in GAN_MODES:
            raise UserInputError(f"pix2pix trains with --loss nonsat (the reference's vanilla GAN loss) or lsgan, "
                                 f"not '{train.loss}'.")
        self.gan_mode = GAN_MODES[train.loss]
        cfg: Pix2PixConfig = run.arch
        self._check_data(cfg)
        self.models = {"G": build_generator(cfg), "D": build_discriminator(cfg)}
        for m in self.models.values():
            m.to(device=device, memory_format=self.memory_format).train()
        opt = resolve(train.replace(loss="lsgan"))  # Adam 2e-4, betas (0.5, 0.999) unless set
        self.setup_optimizers({
            "G": torch.optim.Adam(self.models["G"].parameters(), lr=train.lr_g or opt.lr, betas=opt.betas),
            "D": torch.optim.Adam(self.models["D"].parameters(), lr=train.lr_d or opt.lr, betas=opt.betas)})
        self.lambda_l1 = float(self.options.lambda_l1)
        self._cache: tuple[Any, dict[str, torch.Tensor]] | None = None
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None

    def _check_data(self, cfg: Pix2PixConfig) -> None:
        """Picture size vs the U-Net's and the PatchGAN's depth, and the pair's channels vs the model's."""
        if cfg.image_size < cfg.multiple:
            raise UserInputError(f"image_size {cfg.image_size} is smaller than the U-Net's 2**num_downs = "
                                 f"{cfg.multiple}: pass --arch num_downs=N with 2**N <= image_size.")
        min_size = 3 * 2**cfg.n_layers_d  # the PatchGAN's stride-1 convs need >= 2x2 inputs
        if cfg.image_size < min_size:
            raise UserInputError(f"image_size {cfg.image_size} is too small for the PatchGAN with n_layers_d="
                                 f"{cfg.n_layers_d} (needs >= {min_size}); use --arch n_layers_d=1 or a larger size.")
        source, target = self.dataset.test_batch(1)
        if source.shape[1] != cfg.input_nc or target.shape[1] != cfg.output_nc:
            raise DataError(f"the data set pairs {source.shape[1]}-channel sources with {target.shape[1]}-channel "
                            f"targets, the model expects input_nc={cfg.input_nc}, output_nc={cfg.output_nc}; "
                            "fix --arch.")

    # ------------------------------------------------------------------ steps
    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def _forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """source, target and fake = G(source), with the graph; cached per batch."""
        if self._cache is not None and self._cache[0] is batch:
            return self._cache[1]
        source, target = (self._to_device(t) for t in batch)  # [B, in_nc, S, S], [B, out_nc, S, S]
        with self.autocast():
            t = {"source": source, "target": target, "fake": self.net("G")(source)}
        self._cache = (batch, t)
        return t

    def d_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """D: ½ (loss(D(source ⊕ G(source)), fake) + loss(D(source ⊕ target), real))."""
        t = self._forward(batch)
        d = self.forward_models["D"]
        self.models["D"].requires_grad_(True)
        with self.autocast():
            fake_pair = torch.cat([t["source"], t["fake"].detach()], 1)  # [B, in + out, S, S]
            real_pair = torch.cat([t["source"], t["target"]], 1)
            loss = 0.5 * (gan_loss(d(fake_pair), False, self.gan_mode) + gan_loss(d(real_pair), True, self.gan_mode))
        self.update("D", loss)
        return {"D": loss.detach()}

    def g_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """G: loss(D(source ⊕ G(source)), real) + λ · L1(G(source), target)."""
        t = self._forward(batch)
        self._cache = None
        self.models["D"].requires_grad_(False)  # D's parameters need no gradients here
        with self.autocast():
            loss_gan = gan_loss(self.net("D")(torch.cat([t["source"], t["fake"]], 1)), True, self.gan_mode)
            loss_l1 = F.l1_loss(t["fake"].float(), t["target"]) * self.lambda_l1
        self.update("G", loss_gan + loss_l1)
        self.models["D"].requires_grad_(True)
        self.step += 1
        return {"G_GAN": loss_gan.detach(), "G_L1": loss_l1.detach()}

    # ------------------------------------------------------------------ pictures
    @torch.no_grad()
    def translate_fixed(self) -> list[torch.Tensor]:
        """On the fixed held-out pairs: [source, G(source) in eval mode, target], each [n, C, S, S] on CPU."""
        if self._fixed is None:
            self._fixed = self.dataset.test_batch(N_SAMPLES)
        g = self.models["G"]
        was_training = g.training
        g.eval()
        try:
            source, target = (self._to_device(x) for x in self._fixed)
            cols = [source, g(source), target]
        finally:
            g.train(was_training)
        return [c.float().cpu() for c in cols]

    def save_samples(self, path: Path, step: int) -> Path:
        """One row per held-out pair: source | output | target."""
        cols = self.translate_fixed()
        channels = max(c.shape[1] for c in cols)
        cols = [c.expand(-1, channels, -1, -1) if c.shape[1] != channels else c for c in cols]  # grey → RGB
        rows = torch.stack(cols, dim=1).flatten(0, 1)  # [n, 3, C, S, S] → [n * 3, C, S, S]
        return save_image_grid(rows.clamp(-1, 1), path, nrow=len(cols))
