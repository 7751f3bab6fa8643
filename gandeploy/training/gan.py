"""The ``GANTask`` of the "gan" family: DCGAN, conditional DCGAN and the fully connected GAN.

Batches are ``(x, y)``: images [B, C, H, W] in [-1, 1] or points [B, D], labels [B] (CGAN) or ``None``.
On CUDA the forward passes run under autocast (bfloat16 where supported, else float16 with a GradScaler per
optimizer) and image models use channels-last memory; WGAN-GP's penalty always runs in float32.
``epochs_decay > 0`` adds that many epochs whose learning rate falls linearly towards zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.config import RunConfig
from gandeploy.registry import get_model
from gandeploy.training import losses as L
from gandeploy.training.distributed import env_world_size
from gandeploy.training.task import GANTask, TrainConfig
from gandeploy.training.trainer import make_schedule
from gandeploy.utils.device import step_generator

FIXED_STREAM = 15  # step_generator stream of the fixed sample latents (step 0)
ROW = 10  # samples per class row in CGAN grids
MAX_CLASS_ROWS = 20
SCATTER_POINTS = 2000


def lr_factor(epochs_done: int, constant: int, decay: int) -> float:
    """1 for ``constant`` epochs, then linearly towards 0 over ``decay`` epochs (CycleGAN's ``lambda_rule``)."""
    if decay <= 0:
        return 1.0
    return max(0.0, 1.0 - max(0, epochs_done + 1 - constant) / float(decay + 1))


class SamplingTask(GANTask):
    """Adversarial training of a latent → sample generator ``G`` against a critic ``D``."""

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        # ``epochs`` at the full learning rate, then ``epochs_decay`` more with it falling linearly towards 0
        self.constant_epochs, self.decay_epochs = train.epochs, train.epochs_decay
        super().__init__(run, train.replace(epochs=train.epochs + train.epochs_decay), device, dataset)
        self.spec = get_model(run.model)
        self.cfg = run.arch
        self.conditional = self.spec.conditional
        self.points = getattr(self.cfg, "image_size", 1) == 0
        self.settings = L.resolve(train)
        self.loss = train.loss
        cuda = device.type == "cuda"
        self.memory_format = torch.channels_last if cuda and train.channels_last and not self.points else None

        G = self.spec.build_generator(self.cfg).to(device)
        D = self.spec.build_discriminator(self.cfg).to(device)
        if self.memory_format is not None:
            G, D = G.to(memory_format=self.memory_format), D.to(memory_format=self.memory_format)
        self.models = {"G": G, "D": D}
        self.forward_models: dict[str, nn.Module] = dict(self.models)  # DDP wrappers under torchrun
        self.optimizers = {"G": L.make_optimizer(G.parameters(), train),
                           "D": L.make_optimizer(D.parameters(), train)}
        self.base_lr = self.settings.lr
        self.steps_done = 0  # generator updates so far (the LR schedule's clock; travels in extra_state)
        self.steps_per_epoch = make_schedule(len(dataset), self.train.batch_size, env_world_size(), self.n_critic,
                                             self.train.epochs, self.train.steps).steps_per_epoch

        self.amp_dtype: torch.dtype | None = None
        if cuda and train.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        fp16 = self.amp_dtype is torch.float16
        self.scalers = {k: torch.amp.GradScaler("cuda") for k in ("G", "D")} if fp16 else {}
        self.loss_names = ("loss_D", "loss_G", "D_real", "D_fake") + (("gp",) if self.loss == "wgan-gp" else ())
        self.fixed_z, self.fixed_labels = self._fixed_inputs()

    # ------------------------------------------------------------------ the contract
    @property
    def n_critic(self) -> int:
        return self.settings.n_critic

    def wrap_models(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Use DDP wrappers for the updates (checkpoints keep the plain modules in ``models``)."""
        self.forward_models = {k: wrap(m) for k, m in self.models.items()}

    def d_step(self, batch: Any, gen: torch.Generator) -> dict[str, float]:
        x, y = self._to_device(batch)
        n = x.shape[0]
        G, D = self.forward_models["G"], self.forward_models["D"]
        z = torch.randn(n, self.cfg.nz, generator=gen).to(self.device)  # [N, nz]
        with torch.no_grad(), self._autocast():
            fake = self._call(G, z, y)  # [N, ...]; CGAN: fakes take the real batch's labels
        with self._autocast():
            real_logits, fake_logits = self._call(D, x, y), self._call(D, fake, y)  # [N], [N]
        loss = L.d_loss(self.loss, real_logits, fake_logits)
        out = {}
        if self.loss == "wgan-gp":
            raw_d = self.models["D"]  # second-order gradients outside DDP's reducer
            gp = L.gradient_penalty(lambda t: self._call(raw_d, t, y), x, fake, gen)
            loss = loss + self.train.gp_weight * gp
            out["gp"] = gp.item()
        self._update("D", loss)
        if self.loss == "wgan":
            L.clip_weights(self.models["D"], self.train.clip)
        out.update(loss_D=loss.item(), D_real=real_logits.float().mean().item(),
                   D_fake=fake_logits.float().mean().item())
        return out

    def g_step(self, batch: Any, gen: torch.Generator) -> dict[str, float]:
        n = batch[0].shape[0]
        G, raw_d = self.forward_models["G"], self.models["D"]
        z = torch.randn(n, self.cfg.nz, generator=gen).to(self.device)  # [N, nz]
        labels = None
        if self.conditional:
            labels = torch.randint(0, self.cfg.num_classes, (n,), generator=gen).to(self.device)  # [N]
        raw_d.requires_grad_(False)  # no D gradients in the G update
        try:
            with self._autocast():
                fake_logits = self._call(raw_d, self._call(G, z, labels), labels)  # [N]
            loss = L.g_loss(self.loss, fake_logits)
            self._update("G", loss)
        finally:
            raw_d.requires_grad_(True)
        self.steps_done += 1
        return {"loss_G": loss.item()}

    def save_samples(self, path: Path, step: int) -> Path:
        """Sample grid from the fixed latents (CGAN: one row per class); 2D data: scatter vs real points."""
        from gandeploy.training import plots

        out = self.generate(self.fixed_z, self.fixed_labels)  # [N, C, H, W] or [N, D]
        if self.points:
            real = self.dataset.test_batch(SCATTER_POINTS)[0]
            centres = getattr(self.dataset, "centres", None)
            return plots.scatter_points(real, out, path, centres=centres, title=f"{self.run.dataset} - step {step}")
        nrow = ROW if self.conditional else int(round(out.shape[0] ** 0.5))
        return plots.save_image_grid(out, path, nrow=nrow)

    def on_epoch_end(self, epoch: int) -> None:
        """Linear LR decay over the last ``epochs_decay`` epochs (a function of the step count alone)."""
        factor = lr_factor(self.steps_done // self.steps_per_epoch, self.constant_epochs, self.decay_epochs)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.base_lr * factor

    def extra_state(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state.get("steps_done", 0))

    # ------------------------------------------------------------------ helpers
    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generator output for ``z`` [N, nz] (and ``labels`` [N]) in eval mode, float32 on the CPU."""
        G = self.models["G"]
        was_training = G.training
        G.eval()
        try:
            lab = labels.to(self.device) if labels is not None else None
            return self._call(G, z.to(self.device), lab).float().cpu()
        finally:
            G.train(was_training)

    def _fixed_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        gen = step_generator(self.train.seed, 0, FIXED_STREAM)
        if self.points:
            return torch.randn(SCATTER_POINTS, self.cfg.nz, generator=gen), None
        if self.conditional:
            rows = min(self.cfg.num_classes, MAX_CLASS_ROWS)
            labels = torch.arange(rows).repeat_interleave(ROW)  # [rows * 10]: row r shows class r
            return torch.randn(rows * ROW, self.cfg.nz, generator=gen), labels
        return torch.randn(64, self.cfg.nz, generator=gen), None

    def _to_device(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = batch
        x = x.to(self.device, non_blocking=True)
        if self.memory_format is not None and x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        if self.conditional:
            if y is None:
                raise ValueError("conditional model got a batch without labels")
            y = y.to(self.device, non_blocking=True)
        return x, (y if self.conditional else None)

    def _call(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return model(x, labels) if self.conditional else model(x)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _update(self, key: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(key)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
