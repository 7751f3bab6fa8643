"""Pieces shared by the model files: DCGAN init, size checks, the model spec type."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gandeploy.models.io import CLASS_LABEL, IMAGE, GeneratorIO


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    name = type(module).__name__
    if "Conv" in name or isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)):
        if getattr(module, "weight", None) is not None:
            nn.init.normal_(module.weight, 1.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def n_upsamplings(image_size: int, allowed: tuple[int, ...] = (32, 64, 128)) -> int:
    """Number of stride-2 stages between a 4x4 map and ``image_size`` (64 → 4)."""
    if image_size not in allowed:
        raise ValueError(f"image_size must be one of {allowed}, got {image_size}")
    return int(math.log2(image_size)) - 2


def d_norm_layer(kind: str, channels: int, spatial: int) -> nn.Module:
    """Discriminator normalisation: 'batch' (DCGAN), 'layer' (safe with a gradient penalty) or 'none'."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W) with per-channel affine
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"d_norm must be 'batch', 'layer' or 'none', got '{kind}'")


D_NORMS = ("batch", "layer", "none")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build a model family and what its generator's tensors are."""

    name: str
    description: str
    config_cls: type
    # the kind of data it trains on: "gan" (images/points, optional labels) | "cyclegan" (unpaired) |
    # "paired" (aligned source → target pictures: super-resolution, pix2pix)
    family: str
    build_generator: Callable[[Any], nn.Module]
    build_discriminator: Callable[[Any], nn.Module]
    io: Callable[[Any], GeneratorIO]
    generator_keys: tuple[str, ...] = ("G",)  # generator names inside a checkpoint
    # Image-to-image families: per generator key (same order), the (input, output) domain of the data set's
    # unpaired pair as indices, 0 = A and 1 = B: CycleGAN's G_A reads A and writes B, (0, 1); G_B (1, 0).
    # Evaluation scores a generator's translated held-out inputs against the real held-out outputs of these.
    # Empty (and for keys past its end): A → B.
    domains: tuple[tuple[int, int], ...] = ()
    # The family's training task, "module:Class" (imported only by training; models never import training).
    trainer: str = "gandeploy.training.gan:SamplingTask"
    # Training settings the family's paper prescribes (under recipes and flags), e.g. SAGAN's TTUR + hinge.
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    # A seconds-scale architecture (arch overrides) and the built-in data set it trains on: registry-wide tests
    # and smoke runs use these, so a new family is covered without editing any test.
    tiny: Mapping[str, Any] = field(default_factory=dict)
    smoke_dataset: str = "digits"

    def packed(self, cfg: Any, pack: int) -> Any:
        """The config of a PacGAN discriminator judging ``pack`` samples at once: the data's channels (images)
        or dimensions (points) times ``pack``. A family with other field names overrides this."""
        import dataclasses

        out = self.io(cfg).outputs[0]
        name = "channels" if out.role == IMAGE else "data_dim"
        if not hasattr(cfg, name):
            raise ValueError(f"{self.name} has no '{name}' field to pack")
        return dataclasses.replace(cfg, **{name: int(getattr(cfg, name)) * pack})

    def num_classes(self, cfg: Any) -> int:
        """Classes of the generator's class-label input (0 when it has none)."""
        labels = self.io(cfg).by_role(CLASS_LABEL)
        return labels[0].classes if labels else 0

    def generator_domains(self, key: str) -> tuple[int, int]:
        """(input, output) domain of generator ``key``, one of ``generator_keys`` (callers map a moving average's
        key, ``G_B_ema``, to its generator's): see ``domains``."""
        if key not in self.generator_keys:
            raise ValueError(f"{self.name} has no generator '{key}' (its generators: {', '.join(self.generator_keys)})")
        index = self.generator_keys.index(key)
        return self.domains[index] if index < len(self.domains) else (0, 1)

    def task(self, cfg: Any | None = None) -> str:
        """'translation' or 'sampling', from the generator's declared IO (default config when none is given)."""
        return self.io(cfg if cfg is not None else self.config_cls()).task


# --- test-time BatchNorm: a documented choice at import and export ---------------------------------------------

NORM_STATS_FIELD = "norm_stats"
NORM_STATS_HOW = {"running": "eval mode: BatchNorm's running statistics",
                  "sample": "each picture's own statistics with BatchNorm's affine (the reference test.py without "
                            "--eval, batch size 1; exported as InstanceNormalization)"}


def with_norm_stats(arch: Any, norm_stats: str, build: Callable[[Any], nn.Module], flag: str = "--norm-stats") -> Any:
    """``arch`` with its test-time BatchNorm set to ``norm_stats`` (``running`` | ``sample``), for import and
    export alike. Refused (``UserInputError`` naming ``flag``) for an unknown mode, an architecture that declares no
    ``norm_stats`` field, or one whose generator (built with ``build``) holds no BatchNorm layer."""
    import dataclasses

    from gandeploy.errors import UserInputError

    if norm_stats not in NORM_STATS_HOW:
        raise UserInputError(f"{flag} must be one of {', '.join(NORM_STATS_HOW)}, got '{norm_stats}'.")
    names = {f.name for f in dataclasses.fields(arch)} if dataclasses.is_dataclass(arch) else set()
    if NORM_STATS_FIELD not in names:
        raise UserInputError(f"{flag}: {type(arch).__name__} has no BatchNorm test-time choice (only generators "
                             "declaring a norm_stats field, such as pix2pix with BatchNorm, take it); drop the flag.")
    new = dataclasses.replace(arch, **{NORM_STATS_FIELD: norm_stats})
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in build(new).modules()):
        raise UserInputError(f"{flag}: this generator has no BatchNorm layer ({_norm_kind(arch)}), so there are no "
                             "statistics to choose; drop the flag.")
    return new


def _norm_kind(arch: Any) -> str:
    kind = getattr(arch, "norm", None)
    return f"norm={kind}" if kind else "no norm layers"
