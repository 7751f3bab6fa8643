"""Import published generators into run dirs: the CycleGAN authors' ``ResnetGenerator`` checkpoints
(``horse2zebra.pth``, ``latest_net_G.pth``) and pytorch/examples DCGAN ``netG_epoch_N.pth``.

Both load with ``weights_only=True``. Architecture hyperparameters come from tensor shapes; what the reference
code itself ignores (InstanceNorm ``running_mean`` / ``running_var`` / ``num_batches_tracked`` from PyTorch
< 0.4) is dropped, a DataParallel ``module.`` prefix is stripped, and anything else that does not fit is a
``CheckpointError`` naming the keys. The result is a run dir like a trained one: ``config.json`` (source
``imported:<kind>``) + ``checkpoints/latest.pt``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.config import RunConfig, save_run_config
from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.models.common import n_upsamplings
from gandeploy.models.cyclegan import CycleGANConfig
from gandeploy.models.dcgan import DCGANConfig
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import CKPT_DIR, CKPT_FORMAT, LATEST, load_torch_file, save_checkpoint
from gandeploy.utils.io import sha256_file
from gandeploy.utils.logging import get_logger

log = get_logger("import")

StateDict = dict[str, torch.Tensor]
IN_STATS = ("running_mean", "running_var", "num_batches_tracked")
FIRST_BLOCK = 10  # ResnetGenerator: blocks start at model.10 (pad, conv, IN, ReLU, 2 x (conv, IN, ReLU))


@dataclass(frozen=True)
class Imported:
    """What an import wrote and inferred."""

    run_dir: Path
    model: str
    arch: Any
    config_path: Path
    checkpoint_path: Path
    dropped_keys: tuple[str, ...]
    layout: str = ""  # which published key layout the file has (kinds with several)
    container: str = ""  # the dict key the weights sat under (params_ema, params, state_dict); "" when bare


def _few(items: list[str] | tuple[str, ...], n: int = 8) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


CONTAINERS = ("params_ema", "params", "state_dict")  # BasicSR / Real-ESRGAN save both params and params_ema


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[StateDict, str]:
    """(state_dict, container key) from ``path`` (``weights_only=True``).

    A dict holding ``params_ema``, ``params`` or ``state_dict`` is unwrapped, preferring them in that order
    (``params_ema`` first, as Real-ESRGAN's inference does); the key used is returned ("" for a bare
    state_dict). A DataParallel ``module.`` prefix is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"PATH '{path}' does not exist.")
    obj = load_torch_file(path)
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"'{path}' does not hold a state_dict (a dict of tensors); "
                              f"got {type(obj).__name__}.")
    if obj.get("format") == CKPT_FORMAT:
        raise UserInputError(f"'{path}' is already a gandeploy checkpoint: use its run dir directly "
                             "(no import needed).")
    container = next((k for k in CONTAINERS if isinstance(obj.get(k), dict) and obj[k]), "")
    if container:
        obj = obj[container]
    bad = sorted(str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f"'{path}' is not a plain state_dict: entries that are not tensors: {_few(bad)}.")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj), container


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """A ``state_dict`` from ``path`` (``read_checkpoint`` without the container key)."""
    return read_checkpoint(path)[0]


def _fit(module: nn.Module, sd: StateDict, path: Path, what: str) -> None:
    """Strict load whose error names every missing, unexpected and mis-shaped key."""
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})"
              for k in sorted(set(own) & set(sd)) if tuple(own[k].shape) != tuple(sd[k].shape)]
    parts = ([f"unexpected keys {_few(unexpected)}"] if unexpected else []) + \
            ([f"missing keys {_few(missing)}"] if missing else []) + \
            ([f"wrong shapes {_few(shapes)}"] if shapes else [])
    if parts:
        raise CheckpointError(f"'{path}' does not fit a {what}: " + "; ".join(parts) + ".")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def _shape(sd: StateDict, key: str, ndim: int, path: Path, what: str) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"'{path}' is not a {what}: key '{key}' is missing (it has {_few(sorted(sd))}).")
    shape = tuple(sd[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"'{path}': '{key}' has shape {shape}, expected a {ndim}-D tensor for a {what}.")
    return shape


# --------------------------------------------------------------------------------------------- CycleGAN
CYCLEGAN_WHAT = "CycleGAN reference ResnetGenerator"
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


def drop_instance_norm_stats(sd: StateDict) -> tuple[StateDict, tuple[str, ...]]:
    """Drop InstanceNorm running stats (old checkpoints carry them; the reference code drops them too).

    A stat key is dropped only where the module has no weight of its own (InstanceNorm without affine),
    so a real BatchNorm's statistics are never thrown away silently.
    """
    dropped = []
    for key in list(sd):
        prefix, _, leaf = key.rpartition(".")
        if leaf in IN_STATS and f"{prefix}.weight" not in sd and f"{prefix}.bias" not in sd:
            dropped.append(key)
            del sd[key]
    return sd, tuple(sorted(dropped))


def infer_cyclegan_config(sd: StateDict, path: Path, image_size: int = 256) -> CycleGANConfig:
    """ngf, input/output channels and the number of residual blocks from the reference key layout."""
    ngf, input_nc, k1, k2 = _shape(sd, "model.1.weight", 4, path, CYCLEGAN_WHAT)  # [ngf, in, 7, 7]
    if (k1, k2) != (7, 7):
        raise CheckpointError(f"'{path}': model.1.weight is {k1}x{k2}, a {CYCLEGAN_WHAT} starts with a 7x7 conv.")
    blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    if not blocks:
        raise CheckpointError(f"'{path}' has no residual blocks (model.N.conv_block.*): not a {CYCLEGAN_WHAT}.")
    expected = list(range(FIRST_BLOCK, FIRST_BLOCK + len(blocks)))
    if blocks != expected:
        raise CheckpointError(f"'{path}': residual blocks at model.{blocks} are not contiguous from "
                              f"model.{FIRST_BLOCK} as in the {CYCLEGAN_WHAT}.")
    last = f"model.{FIRST_BLOCK + len(blocks) + 7}.weight"  # 2 x (ConvT, IN, ReLU), ReflectionPad, Conv
    output_nc = _shape(sd, last, 4, path, CYCLEGAN_WHAT)[0]  # [out, ngf, 7, 7]
    try:
        return CycleGANConfig(input_nc=input_nc, output_nc=output_nc, ngf=ngf, n_blocks=len(blocks),
                              image_size=image_size)
    except ValueError as exc:
        raise UserInputError(f"--image-size: {exc}") from None


def import_cyclegan_reference(pth: str | os.PathLike[str], out: str | os.PathLike[str], *,
                              image_size: int = 256) -> Imported:
    """Import a pytorch-CycleGAN-and-pix2pix ``ResnetGenerator`` state_dict as run dir ``out`` (key ``G_A``)."""
    path = Path(pth)
    sd = read_state_dict(path)
    sd, dropped = drop_instance_norm_stats(sd)
    cfg = infer_cyclegan_config(sd, path, image_size)
    spec = get_model("cyclegan")
    generator = spec.build_generator(cfg)
    _fit(generator, sd, path, f"{CYCLEGAN_WHAT} (inferred ngf={cfg.ngf}, n_blocks={cfg.n_blocks})")
    return _write_run(out, path, "cyclegan-reference", spec.name, cfg, {"G_A": generator.state_dict()}, dropped)


# --------------------------------------------------------------------------------------------- DCGAN
DCGAN_WHAT = "pytorch/examples DCGAN Generator"
_MAIN_KEY = re.compile(r"^main\.(\d+)\.weight$")


def infer_dcgan_config(sd: StateDict, path: Path) -> DCGANConfig:
    """nz, ngf, channels and image size (32/64/128) from the ConvTranspose2d weights at main.0, 3, 6, ..."""
    convs = sorted(int(m.group(1)) for k, v in sd.items() if (m := _MAIN_KEY.match(k)) and v.dim() == 4)
    if not convs:
        raise CheckpointError(f"'{path}' has no main.N conv weights: not a {DCGAN_WHAT} "
                              f"(keys: {_few(sorted(sd))}).")
    if convs != list(range(0, 3 * len(convs), 3)):
        raise CheckpointError(f"'{path}': conv weights at main.{convs}; a {DCGAN_WHAT} has them every 3rd "
                              "module from main.0 (ConvTranspose2d, BatchNorm2d, ReLU).")
    image_size = 2 ** (len(convs) + 1)  # 5 transposed convs: 4x4 → 64x64
    nz, width, k1, k2 = _shape(sd, "main.0.weight", 4, path, DCGAN_WHAT)  # [nz, ngf*8, 4, 4]
    ngf, channels = _shape(sd, f"main.{convs[-1]}.weight", 4, path, DCGAN_WHAT)[:2]  # [ngf, nc, 4, 4]
    try:
        n_upsamplings(image_size)
        cfg = DCGANConfig(nz=nz, ngf=ngf, ndf=ngf, channels=channels, image_size=image_size)
    except ValueError:
        raise CheckpointError(f"'{path}' has {len(convs)} transposed convs ({image_size}x{image_size} output); "
                              "supported DCGAN layouts are 32, 64 and 128 px (4, 5 or 6 convs).") from None
    if (k1, k2) != (4, 4) or width != ngf * 2 ** (len(convs) - 2):
        raise CheckpointError(f"'{path}': main.0.weight {tuple(sd['main.0.weight'].shape)} does not match "
                              f"ngf={ngf} from main.{convs[-1]}.weight in a {DCGAN_WHAT}.")
    return cfg


def fill_batch_counts(sd: StateDict) -> tuple[StateDict, tuple[str, ...]]:
    """PyTorch < 0.4 BatchNorm checkpoints lack ``num_batches_tracked``; add it as 0 (eval ignores it)."""
    added = []
    for key in [k for k in sd if k.endswith(".running_mean")]:
        count = key[: -len("running_mean")] + "num_batches_tracked"
        if count not in sd:
            sd[count] = torch.tensor(0, dtype=torch.long)
            added.append(count)
    return sd, tuple(added)


def import_dcgan_example(pth: str | os.PathLike[str], out: str | os.PathLike[str]) -> Imported:
    """Import a pytorch/examples DCGAN ``netG`` state_dict (BatchNorm statistics kept) as run dir ``out``."""
    path = Path(pth)
    sd = read_state_dict(path)
    cfg = infer_dcgan_config(sd, path)
    sd, added = fill_batch_counts(sd)
    if added:
        log.info("added %d num_batches_tracked counters missing from an old checkpoint", len(added))
    spec = get_model("dcgan")
    generator = spec.build_generator(cfg)
    _fit(generator, sd, path, f"{DCGAN_WHAT} (inferred nz={cfg.nz}, ngf={cfg.ngf}, {cfg.image_size}px)")
    return _write_run(out, path, "dcgan-example", spec.name, cfg, {"G": generator.state_dict()}, ())


# --------------------------------------------------------------------------------------------- run dir
IMPORTERS: dict[str, Callable[..., Imported]] = {
    "cyclegan-reference": import_cyclegan_reference,
    "dcgan-example": import_dcgan_example,
}  # pix2pix-reference: training/pretrained_pix2pix.py (it builds on this module); importers.py lists them all


def _write_run(out: str | os.PathLike[str], source: Path, kind: str, model: str, cfg: Any,
               models: dict[str, StateDict], dropped: tuple[str, ...], *, layout: str = "",
               container: str = "") -> Imported:
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserInputError(f"--out '{run_dir}' is a file; give a directory.")
    if dropped:
        log.info("dropped %d InstanceNorm running-stat keys (%s), as the reference code does",
                 len(dropped), _few(dropped, 3))
    run = RunConfig(model=model, arch=cfg, train=None, dataset=None, source=f"imported:{kind}")
    ckpt = save_checkpoint(run_dir / CKPT_DIR / LATEST, {
        "step": 0, "epoch": 0, "models": {k: {n: t.detach().clone() for n, t in sd.items()}
                                          for k, sd in models.items()},
        "optimizers": {}, "extra": {"source_file": source.name, "source_sha256": sha256_file(source),
                                    "layout": layout, "container": container},
    })
    config = save_run_config(run_dir, run)
    return Imported(run_dir, model, cfg, config, ckpt, dropped, layout, container)
