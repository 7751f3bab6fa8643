"""Super-resolution learning rules as ``GANTask``s: SRResNet, SRGAN, ESRGAN and Real-ESRGAN's compact net.

One task, four sets of defaults (each family's ``Options`` subclass):

| model    | pixel loss        | adversarial                               | perceptual (with --vgg-weights) |
|----------|-------------------|-------------------------------------------|---------------------------------|
| srresnet | L1 (weight 1)     | none: no discriminator, ``n_critic`` 0    | off                             |
| srgan    | MSE (weight 1)    | standard GAN, 1e-3 (Ledig et al.)         | VGG conv5_4 L1, weight 1        |
| esrgan   | L1 (weight 1e-2)  | relativistic average, 5e-3 (Wang et al.)  | VGG conv5_4 L1, weight 1        |
| srvgg    | as esrgan         | as esrgan                                 | as esrgan                       |

Any of them trains without a discriminator with ``--adv-weight 0`` (the PSNR stage), and a GAN stage starts
from an earlier run's generator with ``--pretrained RUN_DIR`` (SRGAN from SRResNet, ESRGAN from its PSNR run), or
in the same run with ``--gan-start N``: steps before N use the pixel loss alone and leave D untouched (ESRGAN's
PSNR-oriented stage), from N on the adversarial and perceptual terms join (the switch reads the step count only,
so a resumed run switches at the same step).
Batches are the paired data sets' ``(source, target)`` in [-1, 1], mapped to the generator's declared value
range. Adam with BasicSR's betas (0.9, 0.99); 2e-4 for the pixel stage, 1e-4 for GAN stages, unless set.
Sample grids: source (nearest-upsampled) | generated | target, one row per fixed held-out crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gandeploy.config import RunConfig
from gandeploy.data.photos import DEGRADATIONS
from gandeploy.errors import DataError, UserInputError
from gandeploy.registry import get_model
from gandeploy.training.plots import save_image_grid
from gandeploy.training.task import GANTask, Losses, TrainConfig
from gandeploy.utils.logging import get_logger

log = get_logger("sr")

N_SAMPLES = 4  # fixed held-out crops in a sample grid (one row each)
PIXEL_LOSSES = ("l1", "mse")
GAN_TYPES = ("vanilla", "ragan")
BETAS = (0.9, 0.99)  # BasicSR's Adam betas for SR generators and discriminators
LR_PIXEL, LR_GAN = 2e-4, 1e-4


def _opt(default: Any, text: str) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SROptions:
    """Super-resolution training fields (defaults: SRResNet's); each is a ``gandeploy train`` flag."""

    pixel_loss: str = _opt("l1", "Pixel loss, l1 or mse  [default: mse for srgan, else l1]")
    pixel_weight: float = _opt(1.0, "Pixel loss weight  [default: 1; esrgan/srvgg 0.01]")
    adv_weight: float = _opt(0.0, "Adversarial loss weight; 0 trains without a discriminator  "
                                  "[default: srresnet 0, srgan 0.001, esrgan/srvgg 0.005]")
    gan_type: str = _opt("vanilla", "vanilla (SRGAN) or ragan (relativistic average, ESRGAN)  [default: per model]")
    perceptual_weight: float = _opt(1.0, "VGG19 conv5_4 feature loss weight, used with --vgg-weights  "
                                         "[default: 1]")
    vgg_weights: str = _opt("", "torchvision-layout VGG19 weights file for the perceptual loss (never downloaded)")
    pretrained: str = _opt("", "Start the generator from this run dir's (e.g. srgan from a srresnet run)")
    gan_start: int = _opt(0, "Generator step at which the adversarial and perceptual losses switch on; before "
                             "it G learns from the pixel loss alone and D is not updated (ESRGAN's PSNR stage "
                             "then GAN stage in one run)  [default: 0]")
    flip: bool = _opt(True, "Random flips and transposes of the training crops  [default: true]")
    degradation: str = _opt("bicubic", "How low-resolution inputs are made: bicubic, or realesrgan (Real-ESRGAN's "
                                       "second-order blur, noise and JPEG)  [default: bicubic]")

    def __post_init__(self) -> None:
        if self.pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"pixel_loss must be one of {', '.join(PIXEL_LOSSES)}, got '{self.pixel_loss}'")
        if self.degradation not in DEGRADATIONS:
            raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got '{self.degradation}'")
        if self.gan_type not in GAN_TYPES:
            raise ValueError(f"gan_type must be one of {', '.join(GAN_TYPES)}, got '{self.gan_type}'")
        if min(self.pixel_weight, self.adv_weight, self.perceptual_weight) < 0:
            raise ValueError("pixel_weight, adv_weight and perceptual_weight must be >= 0")
        if self.gan_start < 0:
            raise ValueError(f"gan_start must be >= 0, got {self.gan_start}")


@dataclass(frozen=True)
class SRGANOptions(SROptions):
    """SRGAN's defaults (Ledig et al.): MSE content loss + 1e-3 standard adversarial loss."""

    pixel_loss: str = _opt("mse", SROptions.__dataclass_fields__["pixel_loss"].metadata["help"])
    adv_weight: float = _opt(1e-3, SROptions.__dataclass_fields__["adv_weight"].metadata["help"])


@dataclass(frozen=True)
class ESRGANOptions(SROptions):
    """ESRGAN's defaults (Wang et al., BasicSR's train_ESRGAN_x4): 1e-2 L1 + 5e-3 relativistic average GAN."""

    pixel_weight: float = _opt(1e-2, SROptions.__dataclass_fields__["pixel_weight"].metadata["help"])
    adv_weight: float = _opt(5e-3, SROptions.__dataclass_fields__["adv_weight"].metadata["help"])
    gan_type: str = _opt("ragan", SROptions.__dataclass_fields__["gan_type"].metadata["help"])


def to_range(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """A picture in [-1, 1] → the same picture in ``value_range``."""
    lo, hi = value_range
    return lo + (x + 1.0) * (0.5 * (hi - lo))


def from_range(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """A picture in ``value_range`` → [-1, 1] (inverse of ``to_range``)."""
    lo, hi = value_range
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


class SRResNetTask(GANTask):
    """``G`` (and ``D`` when ``adv_weight`` > 0) learning source → target with pixel, perceptual and adversarial
    losses; optimizers ``G`` (and ``D``)."""

    Options = SROptions
    train_defaults = {"batch_size": 16}

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        super().__init__(run, train, device, dataset)
        if train.sampling_only or train.ortho > 0:
            raise UserInputError("--pack, --instance-noise, --r1, --zero-gp, --ortho and --diffaug apply to the "
                                 f"sampling families; {run.model} trains with its own losses (--adv-weight, --gan-type).")
        if train.loss != TrainConfig.loss:
            log.warning("%s uses --gan-type, not --loss %s", run.model, train.loss)
        o: SROptions = self.options
        self.spec = get_model(run.model)
        self.cfg = run.arch
        io = self.spec.io(self.cfg)
        self.in_range, self.out_range = io.image_input.value_range, io.outputs[0].value_range
        self.scale, self.multiple = io.scale, io.size_multiple
        self._check_data()
        G = self.spec.build_generator(self.cfg)
        if o.pretrained:
            self._load_pretrained(G, o.pretrained)
        self.models = {"G": G.to(device=device, memory_format=self.memory_format)}
        self.adversarial = o.adv_weight > 0
        lr_default = LR_GAN if self.adversarial else LR_PIXEL
        betas = (train.beta1 if train.beta1 is not None else BETAS[0],
                 train.beta2 if train.beta2 is not None else BETAS[1])
        optimizers = {"G": torch.optim.Adam(G.parameters(), lr=train.lr_g or train.lr or lr_default, betas=betas)}
        if self.adversarial:
            D = self.spec.build_discriminator(self.cfg).to(device=device, memory_format=self.memory_format)
            self.models["D"] = D
            optimizers["D"] = torch.optim.Adam(D.parameters(), lr=train.lr_d or train.lr or lr_default, betas=betas)
        self.vgg = None
        if o.vgg_weights and o.perceptual_weight > 0:
            from gandeploy.training.perceptual import load_vgg19

            self.vgg = load_vgg19(o.vgg_weights).to(device)
        self.setup_optimizers(optimizers)
        self.loss_names = ("pixel", *(("perceptual",) if self.vgg is not None else ()),
                           *(("adv_G", "loss_D", "D_real", "D_fake") if self.adversarial else ()))
        self._cache: tuple[Any, dict[str, torch.Tensor]] | None = None
        if o.gan_start > 0 and (self.adversarial or self.vgg is not None):
            log.info("steps 0-%d: %s loss alone (D not updated); from step %d: + %s", o.gan_start - 1, o.pixel_loss,
                     o.gan_start, " + ".join(n for n, on in (("adversarial", self.adversarial),
                                                             ("perceptual", self.vgg is not None)) if on))

    @classmethod
    def data_options(cls, options: Any) -> dict[str, Any]:
        return {"flip": options.flip, "degradation": options.degradation}

    @property
    def n_critic(self) -> int:
        return 1 if self.options.adv_weight > 0 else 0

    @property
    def gan_on(self) -> bool:
        """Whether the current generator step is in the GAN stage (``step >= gan_start``): a function of the step
        count alone, so a resumed run switches at the same step as an uninterrupted one."""
        return self.step >= self.options.gan_start

    def _check_data(self) -> None:
        """The data set's pairs fit the generator: channels, and target side = scale x source side."""
        source, target = self.dataset.test_batch(1)
        cfg_in = self.spec.io(self.cfg).image_input.shape[1]
        if source.shape[1] != cfg_in or target.shape[-1] != self.scale * source.shape[-1]:
            raise DataError(f"the data set gives {source.shape[1]}-channel {source.shape[-1]} px sources for "
                            f"{target.shape[-1]} px targets; {self.run.model} takes {cfg_in} channels at x{self.scale}.")
        if source.shape[-1] % self.multiple:
            raise DataError(f"training crops of {source.shape[-1]} px (image_size / scale) break the generator's "
                            f"size rule (multiples of {self.multiple}); pass another --image-size.")

    def _load_pretrained(self, G: torch.nn.Module, run_dir: str) -> None:
        from gandeploy.training.checkpoint import load_generator

        path = Path(run_dir).expanduser()
        if not (path / "config.json").is_file():
            raise UserInputError(f"--pretrained: '{path}' is not a run dir (no config.json).")
        pre, pre_run = load_generator(path)
        if type(pre_run.arch) is not type(self.cfg):
            raise UserInputError(f"--pretrained: '{path}' holds a {pre_run.model} generator, which is not a "
                                 f"{self.run.model} one; pass a run of the same architecture.")
        try:
            G.load_state_dict(pre.state_dict())
        except RuntimeError:
            raise UserInputError(f"--pretrained: the generator of '{path}' ({pre_run.arch}) does not fit "
                                 f"{self.cfg}; train with the same --arch.") from None
        log.info("generator starts from %s (%s)", path, pre_run.model)

    # ------------------------------------------------------------------ steps
    def _forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """source and target in the model's ranges, and fake = G(source) with its graph; cached per batch."""
        if self._cache is not None and self._cache[0] is batch:
            return self._cache[1]
        source, target = (x.to(self.device, non_blocking=True) for x in batch)  # [B, C, h, w], [B, C, H, W]
        source = to_range(source, self.in_range).contiguous(memory_format=self.memory_format)
        target = to_range(target, self.out_range).contiguous(memory_format=self.memory_format)
        with self.autocast():
            fake = self.forward_models["G"](source)  # [B, C, H, W]
        t = {"source": source, "target": target, "fake": fake}
        self._cache = (batch, t)
        return t

    def d_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """D separates target from G(source): BCE, or relativistic average (each side against the other's mean,
        detached, as BasicSR). Before ``gan_start``: nothing (no D forward, no update)."""
        if not self.gan_on:
            return {}
        t = self._forward(batch)
        D = self.forward_models["D"]
        self.models["D"].requires_grad_(True)
        with self.autocast():
            real = D(t["target"])  # [B, 1]
            fake = D(t["fake"].detach())  # [B, 1]
        if self.options.gan_type == "ragan":
            loss = 0.5 * (bce(real - fake.detach().mean(), 1.0) + bce(fake - real.detach().mean(), 0.0))
        else:
            loss = bce(real, 1.0) + bce(fake, 0.0)
        self.update("D", loss)
        return {"loss_D": loss.detach(), "D_real": real.detach().float().mean(),
                "D_fake": fake.detach().float().mean()}

    def g_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """G: weighted pixel + perceptual + adversarial losses; the pixel loss alone before ``gan_start``."""
        o: SROptions = self.options
        gan_on = self.gan_on
        t = self._forward(batch)
        self._cache = None
        fake, target = t["fake"].float(), t["target"]
        pixel = F.l1_loss(fake, target) if o.pixel_loss == "l1" else F.mse_loss(fake, target)
        total = o.pixel_weight * pixel
        out: dict[str, Any] = {"pixel": pixel.detach()}
        if self.vgg is not None and gan_on:
            from gandeploy.training.perceptual import perceptual_loss

            lo, hi = self.out_range
            perceptual = perceptual_loss(self.vgg, (fake - lo) / (hi - lo), (target - lo) / (hi - lo))
            total = total + o.perceptual_weight * perceptual
            out["perceptual"] = perceptual.detach()
        if self.adversarial and gan_on:
            D = self.net("D")
            self.models["D"].requires_grad_(False)
            with self.autocast():
                fake_logits = D(t["fake"])  # [B, 1]
                if o.gan_type == "ragan":
                    with torch.no_grad():
                        real_logits = D(target)  # [B, 1]
            if o.gan_type == "ragan":
                adv = 0.5 * (bce(real_logits - fake_logits.mean(), 0.0) + bce(fake_logits - real_logits.mean(), 1.0))
            else:
                adv = bce(fake_logits, 1.0)
            total = total + o.adv_weight * adv
            out["adv_G"] = adv.detach()
        self.update("G", total)
        if self.adversarial and gan_on:
            self.models["D"].requires_grad_(True)
        self.step += 1
        return out

    # ------------------------------------------------------------------ pictures
    @torch.no_grad()
    def upscale_fixed(self, n: int = N_SAMPLES) -> list[torch.Tensor]:
        """On ``n`` fixed held-out crops: [source nearest-upsampled, G(source), target], each [n, C, H, W] in
        [-1, 1] on the CPU."""
        source, target = self.dataset.test_batch(n)
        G = self.models.get("G_ema", self.models["G"])
        mode = G.training
        G.eval()
        try:
            fake = G(to_range(source, self.in_range).to(self.device)).float().cpu()
        finally:
            G.train(mode)
        near = F.interpolate(source, scale_factor=self.scale, mode="nearest")
        return [near, from_range(fake, self.out_range).clamp(-1, 1), target]

    def save_samples(self, path: Path, step: int) -> Path:
        """One row per held-out crop: source (nearest-upsampled) | generated | target."""
        cols = self.upscale_fixed()
        rows = torch.stack(cols, dim=1).flatten(0, 1)  # [n, 3, C, H, W] → [n * 3, C, H, W]
        return save_image_grid(rows, path, nrow=len(cols))


class SRGANTask(SRResNetTask):
    """SRGAN: the SRResNet generator against the VGG-style discriminator, from a srresnet run (``--pretrained``)."""

    Options = SRGANOptions


class ESRGANTask(SRResNetTask):
    """ESRGAN: RRDBNet, L1 + relativistic average GAN (+ VGG perceptual loss with ``--vgg-weights``)."""

    Options = ESRGANOptions


class SRVGGTask(SRResNetTask):
    """Real-ESRGAN's compact net, trained like ESRGAN."""

    Options = ESRGANOptions
