"""Import the pix2pix authors' U-Net generators (``latest_net_G.pth`` of ``define_G(..., 'unet_256' | 'unet_128',
norm='batch' | 'instance', use_dropout=True)`` saved by ``BaseModel.save_networks``) into a run dir.

The layout is detected from the keys (``unet_layout``, also for ``gandeploy import auto``): ``model.model.0`` is
the outermost down conv and level ``k`` >= 1 sits at ``model.model.1`` + ``.model.3`` x (k - 1), its down conv at
``.model.1``; the depth gives ``num_downs``, the shapes ``ngf`` and the channels, a bias on the down convs means
InstanceNorm (the reference gives convs a bias only then), BatchNorm otherwise. A DataParallel ``module.`` prefix
is stripped (``read_state_dict``) and old InstanceNorm running statistics dropped, as the reference does.

Dropout has no weights, so the file cannot say whether it was trained with it; it is off at test time either way
(the reference's ``test.py`` leaves it on, which makes its outputs random). Test-time BatchNorm is the caller's
choice, ``norm_stats``: ``running`` (eval mode, the default) or ``sample`` (each picture's own statistics with
BatchNorm's affine, what ``test.py`` computes without ``--eval`` at batch size 1).
"""

from __future__ import annotations

import os
from pathlib import Path

from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.models.common import with_norm_stats
from gandeploy.models.pix2pix import Pix2PixConfig
from gandeploy.registry import get_model
from gandeploy.training.pretrained import (
    Imported,
    StateDict,
    _fit,
    _write_run,
    drop_instance_norm_stats,
    read_state_dict,
)

UNET_WHAT = "pix2pix reference UnetGenerator"
OUTER = "model.model"


def level_prefix(level: int) -> str:
    """Key prefix of U-Net level ``level`` (0 = outermost) in the reference layout."""
    return OUTER if level == 0 else OUTER + ".1" + ".model.3" * (level - 1) + ".model"


def unet_layout(sd: StateDict) -> dict[str, int | str] | None:
    """The reference U-Net's hyperparameters read from ``sd``'s keys and shapes, or None when ``sd`` is not one:
    ``input_nc``, ``output_nc``, ``ngf``, ``num_downs``, ``norm``."""
    first, last = sd.get(f"{OUTER}.0.weight"), sd.get(f"{OUTER}.3.weight")  # [ngf, in, 4, 4], [2 ngf, out, 4, 4]
    if first is None or last is None or first.dim() != 4 or last.dim() != 4 or tuple(first.shape[2:]) != (4, 4):
        return None
    levels = 1
    while f"{level_prefix(levels)}.1.weight" in sd:  # each level's down conv
        levels += 1
    if levels < 2:
        return None
    norm = "instance" if f"{level_prefix(1)}.1.bias" in sd else "batch"
    return {"input_nc": int(first.shape[1]), "output_nc": int(last.shape[1]), "ngf": int(first.shape[0]),
            "num_downs": levels, "norm": norm}


def import_pix2pix_reference(pth: str | os.PathLike[str], out: str | os.PathLike[str], *, image_size: int = 256,
                             norm_stats: str = "running") -> Imported:
    """Import a reference ``UnetGenerator`` state_dict as run dir ``out`` (model ``pix2pix``, key ``G``)."""
    path = Path(pth)
    sd = read_state_dict(path)
    sd, dropped = drop_instance_norm_stats(sd)
    layout = unet_layout(sd)
    if layout is None:
        raise CheckpointError(f"'{path}' is not a {UNET_WHAT}: no {OUTER}.0 / {OUTER}.3 4x4 convs with nested "
                              f"levels at {level_prefix(1)}.1 (keys: {', '.join(sorted(sd)[:6])}, ...).")
    try:
        cfg = Pix2PixConfig(**layout, image_size=image_size, use_dropout=True)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UserInputError(f"--image-size: {exc}") from None
    spec = get_model("pix2pix")
    if norm_stats != cfg.norm_stats:  # the same check and switch as 'gandeploy export --norm-stats'
        cfg = with_norm_stats(cfg, norm_stats, spec.build_generator)
    generator = spec.build_generator(cfg)
    _fit(generator, sd, path, f"{UNET_WHAT} (inferred ngf={cfg.ngf}, num_downs={cfg.num_downs}, norm={cfg.norm})")
    return _write_run(out, path, "pix2pix-reference", spec.name, cfg, {"G": generator.state_dict()}, dropped)
