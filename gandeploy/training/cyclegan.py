"""CycleGAN's learning rule (Zhu et al., 2017) as a ``GANTask``: G_A: A→B, G_B: B→A, D_A judges B, D_B judges A.

The paper's recipe: LSGAN loss, cycle loss λ=10, identity loss 0.5·λ (only when A and B have the same
channels), a pool of 50 past fakes for the discriminators, Adam 2e-4 (0.5, 0.999), constant LR for
``epochs`` then linear decay to zero over ``epochs_decay`` more epochs.

Order within a step: ``d_step`` runs both generators once (keeping the graph), updates D_A / D_B on pooled
fakes; ``g_step`` reuses those fakes (the generators have not changed in between) for the adversarial, cycle
and identity losses. The reference code updates G first and D second; both orders are used for GANs, and this
one lets the generic trainer call ``d_step`` then ``g_step`` without a second forward pass.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gandeploy.config import RunConfig
from gandeploy.errors import DataError, UserInputError
from gandeploy.models.common import dcgan_init
from gandeploy.models.cyclegan import CycleGANConfig, Discriminator, Generator
from gandeploy.training.losses import resolve
from gandeploy.training.plots import save_image_grid
from gandeploy.training.task import GANTask, Losses, TrainConfig
from gandeploy.utils.logging import get_logger

log = get_logger("cyclegan")

N_SAMPLES = 4  # test pairs shown in a sample grid (one row each)


class ImagePool:
    """The history buffer of Shrivastava et al. (2017): D sees a mix of current and past fakes.

    Until full, every fake is stored and returned. Then each fake, with probability ½, is swapped for a
    random stored one (the stored one is returned). Randomness comes from the caller's generator.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []  # each [C, H, W], detached

    def query(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """images [B, C, H, W] → [B, C, H, W] drawn from the pool as described above."""
        if self.size <= 0:
            return images.detach()
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand((), generator=gen)) > 0.5:
                idx = int(torch.randint(0, self.size, (), generator=gen))
                out.append(self.images[idx].clone())
                self.images[idx] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state(self) -> torch.Tensor:
        """The stored fakes as one CPU tensor [K, C, H, W] (K = 0 when empty)."""
        return torch.stack(self.images).cpu() if self.images else torch.empty(0)

    def load(self, images: torch.Tensor, device: torch.device) -> None:
        self.images = [img.to(device) for img in images] if images.numel() else []


def mse_to(pred: torch.Tensor, target: float) -> torch.Tensor:
    """LSGAN: mean (D(x) - target)² over all patch logits (the reference's MSELoss)."""
    return ((pred.float() - target) ** 2).mean()


def _opt(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class CycleGANOptions:
    """CycleGAN's own training fields (the paper's values); each is a ``gandeploy train`` flag."""

    lambda_cycle: float = _opt(10.0, "Cycle-consistency weight λ  [default: 10]")
    lambda_identity: float = _opt(0.5, "Identity-loss weight, times λ  [default: 0.5]")
    pool_size: int = _opt(50, "Past fakes kept for the discriminators  [default: 50]")
    load_size: int = _opt(286, "Resize before the random crop to image_size  [default: 286]")
    flip: bool = _opt(True, "Random horizontal flips  [default: true]")

    def __post_init__(self) -> None:
        if self.lambda_cycle < 0 or self.lambda_identity < 0 or self.pool_size < 0 or self.load_size < 1:
            raise ValueError("lambda_cycle, lambda_identity and pool_size must be >= 0, load_size >= 1")


class CycleGANTask(GANTask):
    """Models ``G_A``, ``G_B``, ``D_A``, ``D_B``; optimizers ``G`` (both generators) and ``D`` (both critics)."""

    loss_names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
    Options = CycleGANOptions
    # the paper's recipe: LSGAN, batch 1, 100 epochs at the full learning rate then 100 of linear decay
    train_defaults = {"loss": "lsgan", "batch_size": 1, "epochs": 100, "epochs_decay": 100}
    amp_dtypes = (torch.bfloat16,)  # bf16 autocast only: no scaler

    @classmethod
    def data_options(cls, options: Any) -> dict[str, Any]:
        """Augmentation settings the unpaired data sets read."""
        return {"load_size": options.load_size, "flip": options.flip}

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        super().__init__(run, train, device, dataset)
        if train.sampling_only:
            raise UserInputError("--pack, --instance-noise, --r1, --zero-gp and --diffaug apply to the sampling "
                                 "families (cyclegan trains with the paper's rule).")
        cfg: CycleGANConfig = run.arch
        self._check_data(cfg)
        reverse = dataclasses.replace(cfg, input_nc=cfg.output_nc, output_nc=cfg.input_nc)
        self.models = {
            "G_A": Generator(cfg), "G_B": Generator(reverse),  # A→B, B→A
            "D_A": Discriminator(cfg, in_channels=cfg.output_nc),  # judges B images
            "D_B": Discriminator(cfg, in_channels=cfg.input_nc),  # judges A images
        }
        for m in self.models.values():
            m.apply(dcgan_init)  # the reference's 'normal' init, gain 0.02
            m.to(device=device, memory_format=self.memory_format).train()
        opt = resolve(train.replace(loss="lsgan"))  # Adam 2e-4, betas (0.5, 0.999) unless set
        if train.loss not in ("lsgan", TrainConfig.loss):
            log.warning("cyclegan trains with the LSGAN loss (the paper's); --loss %s is not used", train.loss)
        g_params = itertools.chain(self.models["G_A"].parameters(), self.models["G_B"].parameters())
        d_params = itertools.chain(self.models["D_A"].parameters(), self.models["D_B"].parameters())
        lr_g, lr_d = (train.lr_g or opt.lr), (train.lr_d or opt.lr)
        self.setup_optimizers({"G": torch.optim.Adam(g_params, lr=lr_g, betas=opt.betas),
                               "D": torch.optim.Adam(d_params, lr=lr_d, betas=opt.betas)})
        o: CycleGANOptions = self.options
        self.pools = {"A": ImagePool(o.pool_size), "B": ImagePool(o.pool_size)}  # past fake_A / fake_B
        self.lambda_cycle = o.lambda_cycle
        self.lambda_idt = o.lambda_identity if cfg.input_nc == cfg.output_nc else 0.0
        self._cache: tuple[Any, dict[str, torch.Tensor]] | None = None  # (batch, tensors of this step)
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None

    def enable_ddp(self, ctx: Any) -> None:
        """The four modules run directly (D frozen in the G update): gradients are averaged across ranks before
        each optimizer step instead of through DDP wrappers."""
        from gandeploy.training import distributed

        for opt in self.optimizers.values():
            distributed.average_gradients_before_step(opt, ctx)

    def _check_data(self, cfg: CycleGANConfig) -> None:
        """Image size vs discriminator depth, and the data set's channels vs the model's."""
        min_size = 3 * 2**cfg.n_layers_d  # the PatchGAN's last stride-1 conv needs >= 2x2 inputs
        if cfg.image_size < min_size:
            size = -(-min_size // 4) * 4
            raise UserInputError(f"image_size {cfg.image_size} is too small for the PatchGAN discriminator with "
                                 f"n_layers_d={cfg.n_layers_d} (needs >= {min_size}): pass --image-size {size} or "
                                 f"more, or fewer layers (--arch n_layers_d={max(1, cfg.n_layers_d - 1)}).")
        a, b = self.dataset.test_batch(1)
        if a.shape[1] != cfg.input_nc or b.shape[1] != cfg.output_nc:
            raise DataError(f"the data set gives A with {a.shape[1]} and B with {b.shape[1]} channels, the model "
                            f"expects input_nc={cfg.input_nc}, output_nc={cfg.output_nc}; fix --arch.")

    # ------------------------------------------------------------------ steps
    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def _forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """real_A, real_B and fake_B = G_A(real_A), fake_A = G_B(real_B), with the graph; cached per batch."""
        if self._cache is not None and self._cache[0] is batch:
            return self._cache[1]
        real_a, real_b = (self._to_device(t) for t in batch)  # [B, in_nc, S, S], [B, out_nc, S, S]
        with self.autocast():
            t = {"real_A": real_a, "real_B": real_b,
                 "fake_B": self.net("G_A")(real_a), "fake_A": self.net("G_B")(real_b)}
        self._cache = (batch, t)
        return t

    def _set_d_grad(self, flag: bool) -> None:
        for key in ("D_A", "D_B"):
            self.models[key].requires_grad_(flag)

    def d_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """Update D_A (real B vs pooled fake B) and D_B (real A vs pooled fake A), each ½ (real + fake) LSGAN."""
        t = self._forward(batch)
        self._set_d_grad(True)
        fake_b = self.pools["B"].query(t["fake_B"], gen)  # [B, out_nc, S, S], detached
        fake_a = self.pools["A"].query(t["fake_A"], gen)  # [B, in_nc, S, S], detached
        d_a, d_b = self.net("D_A"), self.net("D_B")
        with self.autocast():
            loss_d_a = 0.5 * (mse_to(d_a(t["real_B"]), 1.0) + mse_to(d_a(fake_b), 0.0))
            loss_d_b = 0.5 * (mse_to(d_b(t["real_A"]), 1.0) + mse_to(d_b(fake_a), 0.0))
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        opt.step()
        return {"D_A": loss_d_a.detach(), "D_B": loss_d_b.detach()}  # tensors: no host sync per step

    def g_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """Update G_A and G_B: LSGAN vs D + λ·cycle L1 + λ·λ_idt·identity L1."""
        t = self._forward(batch)
        self._cache = None
        g_a, g_b = self.net("G_A"), self.net("G_B")
        self._set_d_grad(False)  # D's parameters need no gradients here
        lam, lam_idt = self.lambda_cycle, self.lambda_cycle * self.lambda_idt
        with self.autocast():
            rec_a = g_b(t["fake_B"])  # [B, in_nc, S, S]
            rec_b = g_a(t["fake_A"])  # [B, out_nc, S, S]
            loss_g_a = mse_to(self.net("D_A")(t["fake_B"]), 1.0)
            loss_g_b = mse_to(self.net("D_B")(t["fake_A"]), 1.0)
            loss_cyc_a = F.l1_loss(rec_a.float(), t["real_A"]) * lam
            loss_cyc_b = F.l1_loss(rec_b.float(), t["real_B"]) * lam
            zero = torch.zeros((), device=self.device)
            loss_idt_a = F.l1_loss(g_a(t["real_B"]).float(), t["real_B"]) * lam_idt if lam_idt > 0 else zero
            loss_idt_b = F.l1_loss(g_b(t["real_A"]).float(), t["real_A"]) * lam_idt if lam_idt > 0 else zero
        total = loss_g_a + loss_g_b + loss_cyc_a + loss_cyc_b + loss_idt_a + loss_idt_b
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        self._set_d_grad(True)
        self.step += 1
        return {"G_A": loss_g_a.detach(), "G_B": loss_g_b.detach(), "cycle_A": loss_cyc_a.detach(),
                "cycle_B": loss_cyc_b.detach(), "idt_A": loss_idt_a.detach(), "idt_B": loss_idt_b.detach()}

    # ------------------------------------------------------------------ state, pictures
    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "pool_fake_A": self.pools["A"].state(), "pool_fake_B": self.pools["B"].state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        for side in ("A", "B"):
            images = state.get(f"pool_fake_{side}")
            if isinstance(images, torch.Tensor):
                self.pools[side].load(images, self.device)

    @torch.no_grad()
    def translate_fixed(self) -> list[torch.Tensor]:
        """On the fixed test batch: [real A, fake B, rec A, real B, fake A, rec B], each [n, C, S, S] on CPU."""
        if self._fixed is None:
            a, b = self.dataset.test_batch(N_SAMPLES)
            self._fixed = (a, b)
        g_a, g_b = self.models["G_A"], self.models["G_B"]
        modes = [m.training for m in (g_a, g_b)]
        g_a.eval(), g_b.eval()
        try:
            a, b = (self._to_device(x) for x in self._fixed)
            fake_b, fake_a = g_a(a), g_b(b)
            cols = [a, fake_b, g_b(fake_b), b, fake_a, g_a(fake_a)]
        finally:
            g_a.train(modes[0]), g_b.train(modes[1])
        return [c.float().cpu() for c in cols]

    def save_samples(self, path: Path, step: int) -> Path:
        """One row per test pair: real A | fake B | rec A | real B | fake A | rec B."""
        cols = self.translate_fixed()
        channels = max(c.shape[1] for c in cols)
        cols = [c.expand(-1, channels, -1, -1) if c.shape[1] != channels else c for c in cols]  # grey → RGB
        rows = torch.stack(cols, dim=1).flatten(0, 1)  # [n, 6, C, S, S] → [n * 6, C, S, S]
        return save_image_grid(rows.clamp(-1, 1), path, nrow=len(cols))
