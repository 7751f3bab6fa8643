"""The small trainer contract: a GAN family is a ``GANTask`` with ``d_step`` / ``g_step`` and declared losses.

The generic ``Trainer`` (trainer.py) owns everything else — the step loop, batches, progress bar,
``losses.csv``, checkpoints, resume, sample grids — so those stay identical across families.

Randomness is counter-based: every draw in step ``s`` comes from ``step_generator(seed, s, stream)``
(utils/device.py), never from global RNG state. A resumed run therefore draws exactly what an uninterrupted
run would have drawn, and only models, optimizers and ``extra_state`` need saving.
"""

from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from gandeploy.config import RunConfig
from gandeploy.errors import UserInputError
from gandeploy.training.diffaug import parse_policy

LOSSES = ("minimax", "nonsat", "lsgan", "wgan", "wgan-gp", "hinge")
Losses = dict[str, "float | torch.Tensor"]  # named losses of one update: detached scalar tensors or floats


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains (not what the model is), shared by every family. Saved under ``"train"`` in ``config.json``.

    ``epochs`` or ``steps`` (generator updates) bounds the run; ``steps`` wins when both are set; ``epochs_decay``
    more epochs follow with the learning rate falling linearly towards 0. ``lr``/``beta1``/``beta2``/``n_critic``
    left at ``None`` take the loss's defaults (losses.py); ``lr_g``/``lr_d`` (two time-scale updates, TTUR) override
    ``lr`` for one network. ``options`` holds the family's own fields (its task's ``Options``, e.g. CycleGAN's
    λ and pool), validated by that task.
    """

    loss: str = "nonsat"
    epochs: int = 5
    steps: int | None = None
    epochs_decay: int = 0  # epochs of linear LR decay to zero after `epochs` constant ones
    batch_size: int = 64
    lr: float | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    clip: float = 0.01  # WGAN weight clipping bound
    gp_weight: float = 10.0  # WGAN-GP penalty weight
    r1: float = 0.0  # > 0: R1 penalty γ; D's loss adds γ/2·E‖∇D(x)‖² on real samples (Mescheder et al., 2018)
    r1_every: int = 1  # lazy R1 (Karras et al. 2020): only every this many G steps, with γ times this
    zero_gp: float = 0.0  # > 0: D's loss adds this λ times E‖∇D(x̂)‖² on real–fake interpolates (Thanh-Tung 2019)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    compile: bool = False  # torch.compile of the forward modules (checkpoints keep the plain modules)
    ema: float = 0.0  # > 0: keep an exponential moving average of G's weights with this decay (G_ema)
    ema_start: int = 0  # generator steps before the average starts (G_ema copies G until then)
    ortho: float = 0.0  # > 0: BigGAN's off-diagonal orthogonal regularisation of G with this β (1e-4 in BigGAN)
    pack: int = 1  # PacGAN: D judges this many samples at once (concatenated along channels / dimensions)
    instance_noise: float = 0.0  # > 0: D sees x + σ·N(0, 1), σ falling linearly from this to 0 over the constant epochs
    diffaug: str = ""  # DiffAugment policies D's inputs go through, real and fake ("translation,cutout"; diffaug.py)
    monitor_every: int = 100  # steps between health checks (monitor.csv); 0: off
    stop_on_collapse: bool = False  # end the run (with a checkpoint) when the collapse signal drops
    checkpoint_every: int = 500  # steps between checkpoints (and always at the end of an epoch)
    keep_every: int = 0  # > 0: also keep checkpoints/step_XXXXXX.pt every this many steps
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if self.batch_size < 1 or self.epochs < 0 or self.epochs_decay < 0 or (self.steps is not None and self.steps < 1):
            raise ValueError("batch_size must be >= 1, epochs and epochs_decay >= 0 and steps >= 1")
        if not 0.0 <= self.ema < 1.0 or self.ema_start < 0 or self.ortho < 0 or not self.instance_noise >= 0:
            raise ValueError("ema must be in [0, 1), ema_start, ortho and instance_noise >= 0")
        if not (self.r1 >= 0 and self.zero_gp >= 0) or self.r1_every < 1:
            raise ValueError(f"r1 and zero_gp must be >= 0 and r1_every >= 1, got {self.r1}, {self.zero_gp} and "
                             f"{self.r1_every}")
        parse_policy(self.diffaug)
        if self.pack < 1 or self.batch_size % self.pack:
            raise ValueError(f"pack must be >= 1 and divide batch_size ({self.batch_size}), got {self.pack}")
        for name in ("lr", "lr_g", "lr_d"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        object.__setattr__(self, "options", dict(self.options))

    @property
    def sampling_only(self) -> bool:
        """True when a setting only the sampling families (``gan.py``) apply is on: --pack, --instance-noise,
        --r1, --zero-gp, --diffaug. Translation and super-resolution families refuse them."""
        return self.pack > 1 or self.instance_noise > 0 or self.r1 > 0 or self.zero_gp > 0 or bool(self.diffaug)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class NoOptions:
    """A family without training fields of its own."""


def option_fields(options_cls: type) -> dict[str, dataclasses.Field]:
    """The fields of a family's ``Options`` dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(options_cls)}


class GANTask(ABC):
    """One GAN family's learning rule over named models and optimizers, on top of the shared plumbing.

    Subclasses set ``loss_names`` (the columns of ``losses.csv``), may declare ``Options`` (a frozen dataclass of
    their own training fields; each field's ``metadata["help"]`` becomes a ``gandeploy train`` flag) and
    ``train_defaults`` (TrainConfig values the family implies, under recipes and flags), and fill ``models`` /
    ``optimizers`` (dicts keyed like the checkpoint: ``G``, ``D``; CycleGAN ``G_A``, ``G_B``, ``D_A``, ``D_B``),
    then call ``setup_optimizers``.

    The base class owns what every family shares: the LR schedule (``epochs`` constant, ``epochs_decay`` linear
    decay, a function of the generator-step count alone so a resumed run gets the right LR), autocast and
    GradScalers on CUDA, channels-last, DDP wrappers, ``torch.compile`` (``enable_compile``, ``net``), and the
    optimizer step.
    """

    loss_names: tuple[str, ...] = ()
    Options: ClassVar[type] = NoOptions
    train_defaults: ClassVar[Mapping[str, Any]] = {}
    amp_dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.bfloat16, torch.float16)  # preferred first

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        from gandeploy.training.distributed import env_world_size
        from gandeploy.training.schedule import make_schedule

        self.run = run
        # The generic trainer runs ``train.epochs`` epochs: the constant part *and* the decay part.
        self.constant_epochs, self.decay_epochs = train.epochs, train.epochs_decay
        self.train = train.replace(epochs=train.epochs + train.epochs_decay)
        self.options = self.parse_options(train.options)
        self.device = device
        self.dataset = dataset
        self.models: dict[str, nn.Module] = {}
        self.forward_models: dict[str, nn.Module] = {}  # DDP wrappers under torchrun, else the models
        self.compiled: dict[str, nn.Module] = {}  # --compile: torch.compile wrappers of the plain modules
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.base_lrs: dict[str, float] = {}
        self.step = 0  # generator updates so far (the LR schedule's clock; travels in extra_state)
        self.ema: Any = None  # GeneratorEMA of models["G"] when train.ema > 0 (checkpointed as models["G_ema"])
        self.optional_models: set[str] = set()  # models an older checkpoint may lack (started afresh on resume)
        self.track_grads = False  # set by the trainer on health-check steps: ``update`` records gradient norms
        self.grad_norms: dict[str, torch.Tensor] = {}
        cuda = device.type == "cuda"
        self.memory_format = torch.channels_last if cuda and train.channels_last else torch.contiguous_format
        self.amp_dtype: torch.dtype | None = None
        if cuda and train.amp:
            bf16 = torch.cuda.is_bf16_supported()
            self.amp_dtype = next((d for d in self.amp_dtypes if d is not torch.bfloat16 or bf16), None)
        self._schedule = lambda n_critic: make_schedule(len(dataset), self.train.batch_size, env_world_size(),
                                                        n_critic, self.train.epochs, self.train.steps)

    @classmethod
    def data_options(cls, options: Any) -> dict[str, Any]:
        """Settings the family's data sets read (augmentation); none by default."""
        return {}

    @classmethod
    def parse_options(cls, values: Mapping[str, Any]) -> Any:
        """The family's ``Options`` from raw values; an unknown field or bad value names the flag."""
        fields = option_fields(cls.Options)
        unknown = sorted(set(values) - set(fields))
        if unknown:
            allowed = ", ".join(f"--{f.replace('_', '-')}" for f in fields) or "none"
            raise UserInputError(f"training option(s) {', '.join(unknown)} do not apply to this model family "
                                 f"(its own options: {allowed}).")
        try:
            return cls.Options(**values)
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"invalid training option: {exc}.") from None

    # ------------------------------------------------------------------ shared plumbing
    @property
    def n_critic(self) -> int:
        """Discriminator updates per generator update; 0 for a family trained without a discriminator update
        (its ``d_step`` is never called and the generator update draws the step's batch)."""
        return 1

    def instance_noise_std(self) -> float:
        """σ of the instance noise at the current step: ``instance_noise`` falling linearly to 0 at the end of the
        constant-LR epochs (Sønderby et al., 2016; Arjovsky & Bottou, 2017: noise makes the real and generated
        supports overlap, so D's gradient reaches modes G does not cover yet)."""
        sigma0 = self.train.instance_noise
        if sigma0 <= 0:
            return 0.0
        horizon = max(1, self.constant_epochs * self.steps_per_epoch)
        return sigma0 * max(0.0, 1.0 - self.step / horizon)

    @property
    def steps_per_epoch(self) -> int:
        return self._schedule(self.n_critic).steps_per_epoch

    def setup_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Register the optimizers (their current LRs are the schedule's base) and, for float16 autocast, scalers."""
        self.optimizers = optimizers
        self.base_lrs = {k: float(o.param_groups[0]["lr"]) for k, o in optimizers.items()}
        if self.amp_dtype is torch.float16:
            self.scalers = {k: torch.amp.GradScaler("cuda") for k in optimizers}
        if not self.forward_models:
            self.forward_models = dict(self.models)
        if self.train.ema > 0 and "G" in self.models:
            from gandeploy.training.ema import GeneratorEMA

            self.ema = GeneratorEMA(self.models["G"], self.train.ema, self.train.ema_start)
            self.models["G_ema"] = self.ema.module  # saved and restored with the other models
            self.optional_models.add("G_ema")
        self.sync_lr()

    def after_g_step(self) -> None:
        """Called by the trainer after every generator update: folds G into its moving average."""
        if self.ema is not None:
            self.ema.update(self.models["G"], self.step)

    def enable_ddp(self, ctx: Any) -> None:
        """Under ``torchrun``: DDP wrappers in ``forward_models`` for the updates (checkpoints keep the plain
        modules in ``models``). A family that runs its modules directly overrides this (CycleGAN averages
        gradients before each optimizer step instead)."""
        from gandeploy.training import distributed

        self.forward_models = {k: distributed.wrap(m, ctx, self.device) if k in self.optimizers else m
                               for k, m in self.models.items()}  # G_ema has no optimizer: not wrapped

    def disable_ddp(self) -> None:
        """End of training under ``torchrun``: drop the DDP wrappers (and their reducers, which hold the process
        group) so ``distributed.cleanup`` can tear the group down in order. The plain modules stay in ``models``."""
        self.forward_models = {k: self.compiled.get(k, m) for k, m in self.models.items()}

    def enable_compile(self) -> None:
        """``--compile``: ``torch.compile`` wrappers around ``forward_models`` (DDP wrappers included) and the plain
        modules (``net``). They share the plain modules' parameters, so ``models`` still holds what checkpoints
        save (state dicts without ``_orig_mod.``), loadable without compile. Compilation happens at first use."""
        self.compiled = {k: torch.compile(m) for k, m in self.models.items()}
        self.forward_models = {k: self.compiled[k] if m is self.models.get(k) else torch.compile(m)
                               for k, m in self.forward_models.items()}

    def net(self, key: str) -> nn.Module:
        """The module ``key`` to run outside DDP (e.g. D in the G update): compiled under ``--compile``."""
        return self.compiled.get(key, self.models[key])

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def update(self, key: str, loss: torch.Tensor) -> None:
        """zero_grad, backward (scaled under float16 autocast) and step of optimizer ``key``."""
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(key)
        if scaler is None:
            loss.backward()
            self._record_grad_norm(key, opt)
            opt.step()
        else:
            scaler.scale(loss).backward()
            if self.track_grads:
                scaler.unscale_(opt)
            self._record_grad_norm(key, opt)
            scaler.step(opt)
            scaler.update()

    def _record_grad_norm(self, key: str, opt: torch.optim.Optimizer) -> None:
        """The L2 norm of optimizer ``key``'s gradients (a tensor: no host sync), on health-check steps only."""
        if not self.track_grads:
            return
        grads = [p.grad.detach().float().norm() for g in opt.param_groups for p in g["params"] if p.grad is not None]
        self.grad_norms[key] = torch.stack(grads).norm() if grads else torch.zeros(())

    def sync_lr(self) -> None:
        """LR = base · lr_factor(completed epochs), a function of the step count alone."""
        from gandeploy.training.schedule import lr_factor

        factor = lr_factor(self.step // self.steps_per_epoch, self.constant_epochs, self.decay_epochs)
        for key, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lrs[key] * factor

    # ------------------------------------------------------------------ the contract
    @abstractmethod
    def d_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """One discriminator update on ``batch``; returns named losses (a subset of ``loss_names``): detached
        scalar tensors (the trainer converts them in one batch at log time: no host sync per step) or floats."""

    @abstractmethod
    def g_step(self, batch: Any, gen: torch.Generator) -> Losses:
        """One generator update; returns named losses (as ``d_step``). Must advance ``self.step`` by one."""

    @abstractmethod
    def save_samples(self, path: Path, step: int) -> Path:
        """Write a sample grid PNG (fixed latents / fixed test images) to ``path``."""

    def on_epoch_end(self, epoch: int) -> None:
        """Linear LR decay. Also called after a run's last step mid-epoch (the LR then stays as it was)."""
        self.sync_lr()

    def extra_state(self) -> dict[str, Any]:
        """Extra state to checkpoint (image pools and the like); tensors and plain values only."""
        return {"step": self.step}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""
        self.step = int(state.get("step", state.get("steps_done", 0)))
        self.sync_lr()
