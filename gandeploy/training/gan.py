"""The ``GANTask`` of latent → sample generators: DCGAN, conditional DCGAN, the fully connected GAN (and, through
the ``critic_real`` / ``critic_fake`` hooks, InfoGAN).

Batches are ``(x, y)``: images [B, C, H, W] in [-1, 1] or points [B, D], labels [B] or ``None``. The generator's
inputs are drawn by role (``models/inputs.py``); a generator with a ``class_label`` input is conditional: its
discriminator takes ``(x, label)`` and fakes in the D step take the real batch's labels. Autocast, scalers,
channels-last, DDP and the LR schedule are the base class's; WGAN-GP's penalty always runs in float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.config import RunConfig
from gandeploy.errors import UserInputError
from gandeploy.models.blocks import orthogonal_penalty, ortho_parameters
from gandeploy.models.io import CLASS_LABEL, POINTS
from gandeploy.registry import get_model
from gandeploy.training import losses as L
from gandeploy.training.diffaug import augment, parse_policy
from gandeploy.models.inputs import draw_inputs, fixed_inputs
from gandeploy.training.task import GANTask, Losses, TrainConfig
from gandeploy.utils.device import step_generator

FIXED_STREAM = 15  # step_generator stream of the fixed sample latents (step 0)
SCATTER_POINTS = 2000


class SamplingTask(GANTask):
    """Adversarial training of a latent → sample generator ``G`` against a critic ``D``."""

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        super().__init__(run, train, device, dataset)
        self.spec = get_model(run.model)
        self.cfg = run.arch
        self.io = self.spec.io(self.cfg)
        labels = self.io.by_role(CLASS_LABEL)
        self.label_name = labels[0].name if labels else None  # conditional: D takes (x, label)
        self.points = self.io.outputs[0].role == POINTS
        if self.points:
            self.memory_format = torch.contiguous_format
        self.settings = L.resolve(train)
        self.loss = train.loss

        self.diffaug = parse_policy(train.diffaug)
        if self.diffaug and self.points:
            raise UserInputError(f"--diffaug transforms pictures; {run.model} generates points. Leave it out.")
        self.pack = train.pack  # PacGAN: D judges groups of `pack` consecutive samples
        own_terms = (type(self).critic_fake is not SamplingTask.critic_fake
                     or type(self).critic_real is not SamplingTask.critic_real)
        if self.pack > 1 and (len(self.io.inputs) > 1 or own_terms):
            raise UserInputError(f"--pack applies to generators with a latent input only; {run.model} also takes "
                                 f"{', '.join(t.name for t in self.io.inputs[1:]) or 'a family loss term'}.")
        d_cfg = self.spec.packed(self.cfg, self.pack) if self.pack > 1 else self.cfg
        G = self.spec.build_generator(self.cfg).to(device=device, memory_format=self.memory_format)
        D = self.spec.build_discriminator(d_cfg).to(device=device, memory_format=self.memory_format)
        self.models = {"G": G, "D": D}
        self.setup_optimizers({"G": L.make_optimizer(G.parameters(), train, "G"),
                               "D": L.make_optimizer(D.parameters(), train, "D")})
        penalties = (("gp", self.loss == "wgan-gp"), ("r1", train.r1 > 0), ("gp0", train.zero_gp > 0))
        self.loss_names = ("loss_D", "loss_G", "D_real", "D_fake", *(name for name, on in penalties if on))
        self.fixed, self.grid_row = self._fixed_inputs()

    # ------------------------------------------------------------------ the contract
    @property
    def n_critic(self) -> int:
        return self.settings.n_critic

    def d_step(self, batch: Any, gen: torch.Generator) -> Losses:
        x, y = self._to_device(batch)
        n = x.shape[0]
        G, D = self.forward_models["G"], self.forward_models["D"]
        inputs = self._inputs(n, gen, labels=y)  # fakes take the real batch's labels
        with torch.no_grad(), self.autocast():
            fake = G(*inputs.values())  # [N, ...]
        x, fake = self._for_d(x, gen), self._for_d(fake, gen)
        with self.autocast():
            real_logits, extra_real, logs_real = self.critic_real(D, x, inputs, gen)  # [N]
            fake_logits, extra, logs = self.critic_fake(D, fake, inputs, gen)  # [N]
        loss = L.d_loss(self.loss, real_logits, fake_logits) + extra_real + extra
        out = {**logs_real, **logs}
        raw_d = self.models["D"]  # second-order gradients outside DDP's reducer
        critic = lambda t: self._critic(raw_d, t, inputs)  # noqa: E731
        if self.loss == "wgan-gp":
            gp = L.gradient_penalty(critic, x, fake, gen, group=self.pack)
            loss = loss + self.train.gp_weight * gp
            out["gp"] = gp.detach()
        if self.train.zero_gp > 0:
            gp0 = L.gradient_penalty(critic, x, fake, gen, group=self.pack, centre=0.0)
            loss = loss + self.train.zero_gp * gp0
            out["gp0"] = gp0.detach()
        if self.train.r1 > 0 and self.step % self.train.r1_every == 0:  # lazy: γ scaled by the interval
            r1 = L.r1_penalty(critic, x, group=self.pack)
            loss = loss + 0.5 * self.train.r1 * self.train.r1_every * r1
            out["r1"] = r1.detach()
        self.update("D", loss)
        if self.loss == "wgan":
            L.clip_weights(self.models["D"], self.train.clip)
        out.update(loss_D=loss.detach(), D_real=real_logits.detach().float().mean(),
                   D_fake=fake_logits.detach().float().mean())  # tensors: no host sync per step
        return out

    def g_step(self, batch: Any, gen: torch.Generator) -> Losses:
        n = batch[0].shape[0]
        G, raw_d = self.forward_models["G"], self.models["D"]
        inputs = self._inputs(n, gen)
        raw_d.requires_grad_(False)  # no D gradients in the G update (D runs outside DDP: self.net)
        try:
            with self.autocast():
                fake = self._for_d(G(*inputs.values()), gen)  # [N, ...]
                fake_logits, extra, logs = self.critic_fake(self.net("D"), fake, inputs, gen)  # [N]
            loss = L.g_loss(self.loss, fake_logits) + extra
            if self.train.ortho > 0:  # BigGAN's orthogonal regularisation, in float32
                loss = loss + orthogonal_penalty(ortho_parameters(self.models["G"]), self.train.ortho)
            self.update("G", loss)
        finally:
            raw_d.requires_grad_(True)
        self.step += 1
        return {"loss_G": loss.detach(), **{f"{k}_G": v for k, v in logs.items()}}

    def critic_real(self, D: nn.Module, real: torch.Tensor, inputs: dict[str, torch.Tensor],
                    gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | float, Losses]:
        """D's logits on the real batch [N], plus an extra D-step loss term on it and its logged parts.

        The hook of families that add a term on real samples (InfoGAN's clustering of real pictures); ``gen`` is
        the step's generator, for any random draw the term makes."""
        return self._critic(D, real, inputs), 0.0, {}

    def critic_fake(self, D: nn.Module, fake: torch.Tensor, inputs: dict[str, torch.Tensor],
                    gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | float, Losses]:
        """D's logits on ``fake`` [N], plus an extra loss term for the step and its logged parts.

        The hook of families that add a term on generated samples (InfoGAN's mutual information); ``gen`` is the
        step's generator, for any random draw the term makes."""
        return self._critic(D, fake, inputs), 0.0, {}

    def save_samples(self, path: Path, step: int) -> Path:
        """Sample grid from the fixed inputs (one row per class / category); 2D data: scatter vs real points."""
        from gandeploy.training import plots

        out = self.generate(self.fixed)  # [N, C, H, W] or [N, D]
        if self.points:
            real = self.dataset.test_batch(SCATTER_POINTS)[0]
            centres = getattr(self.dataset, "centres", None)
            return plots.scatter_points(real, out, path, centres=centres, title=f"{self.run.dataset} - step {step}")
        return plots.save_image_grid(out, path, nrow=self.grid_row)

    # ------------------------------------------------------------------ helpers
    @torch.no_grad()
    def generate(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Generator output for named ``inputs`` (CPU tensors) in eval mode, float32 on the CPU."""
        G = self.models["G"]
        was_training = G.training
        G.eval()
        try:
            return G(*(inputs[n].to(self.device) for n in self.io.input_names)).float().cpu()
        finally:
            G.train(was_training)

    def _inputs(self, n: int, gen: torch.Generator, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        drawn = draw_inputs(self.io, n, gen, labels=None if labels is None else labels.cpu())
        if self.device.type == "cuda":  # pinned: the copy does not wait for the GPU queue to drain
            drawn = {k: v.pin_memory() for k, v in drawn.items()}
        return {k: v.to(self.device, non_blocking=True) for k, v in drawn.items()}

    def _for_d(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """What D sees of a batch: ``x`` through the DiffAugment policy (``--diffaug``), then instance noise."""
        return self._instance_noise(augment(x, self.diffaug, gen), gen)

    def _instance_noise(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``x`` plus N(0, σ²) instance noise at this step's σ (``instance_noise_std``); ``x`` itself when off."""
        sigma = self.instance_noise_std()
        if sigma <= 0:
            return x
        return x + sigma * torch.randn(x.shape, generator=gen).to(device=x.device, dtype=x.dtype)

    def _critic(self, D: nn.Module, x: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.pack > 1:  # [N, C, H, W] → [N / m, m·C, H, W]; points [N, D] → [N / m, m·D]
            x = x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return D(x, inputs[self.label_name]) if self.label_name else D(x)

    def _fixed_inputs(self) -> tuple[dict[str, torch.Tensor], int]:
        gen = step_generator(self.train.seed, 0, FIXED_STREAM)
        return fixed_inputs(self.io, gen, n_plain=SCATTER_POINTS if self.points else 64)

    def _to_device(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = batch
        x = x.to(self.device, non_blocking=True)
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        if self.label_name:
            if y is None:
                raise ValueError("conditional model got a batch without labels")
            return x, y
        return x, None
