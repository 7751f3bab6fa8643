"""Import published super-resolution generators: RRDBNet (ESRGAN, Real-ESRGAN) in its three key layouts and
Real-ESRGAN's SRVGGNetCompact.

RRDBNet layouts, told apart by their keys and mapped onto BasicSR's (gandeploy's ``RRDBNet`` keys):

==========  ===================================  =======================================================
layout      who writes it                        keys
==========  ===================================  =======================================================
basicsr     XPixelGroup/BasicSR, Real-ESRGAN     conv_first, body.N.rdb1.conv1, conv_body, conv_up1, ...
esrgan      xinntao/ESRGAN ``RRDBNet_arch.py``   conv_first, RRDB_trunk.N.RDB1.conv1, trunk_conv, upconv1,
                                                 upconv2, HRconv, conv_last
old-arch    the original ``model.N`` layout      model.0, model.1.sub.N.RDB1.conv1.0, model.1.sub.NB,
            (``RRDB_ESRGAN_x4_old_arch.pth``)    model.3, model.6, model.8, model.10
==========  ===================================  =======================================================

Hyperparameters come from tensor shapes: ``num_feat`` and the input channels from ``conv_first``, ``num_out_ch``
from ``conv_last``, ``num_block`` from the block count, ``num_grow_ch`` from ``rdb1.conv1``; BasicSR's scale from
conv_first's input channels (``num_out_ch`` x4, 4·``num_out_ch`` x2, 16·``num_out_ch`` x1: pixel-unshuffled
input). The other two layouts are x4 only (two nearest-upsample convs).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.registry import get_model
from gandeploy.training.pretrained import Imported, StateDict, _few, _fit, _write_run, read_checkpoint

ACT_TYPES = ("prelu", "relu", "leakyrelu")  # SRVGGNetCompact's activations
DEFAULT_CROP = 128  # the SR configs' default training crop (image_size)
_DIGITS = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)")


def key_pattern(key: str) -> str:
    """A key with its numeric parts as N: ``body.3.rdb1.conv2.weight`` → ``body.N.rdb1.conv2.weight``."""
    return _DIGITS.sub("N", key)


@dataclass(frozen=True)
class Layout:
    """One published key layout: the import ``kind`` that reads it, a name, and its key patterns (``key_pattern``)
    that every file of it has (``required``) or may have (``optional``)."""

    kind: str
    name: str
    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    def differences(self, patterns: set[str]) -> tuple[list[str], list[str]]:
        """(missing, unexpected) key patterns of a file against this layout."""
        return sorted(self.required - patterns), sorted(patterns - self.required - self.optional)

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.name} layout)" if self.name != self.kind else self.kind


def weight_bias(*names: str) -> frozenset[str]:
    return frozenset(f"{n}.{p}" for n in names for p in ("weight", "bias"))


_RDB_CONVS = [f"{r}.conv{j}" for r in ("{rdb}1", "{rdb}2", "{rdb}3") for j in range(1, 6)]
ESRGAN_LAYOUTS = (
    Layout("esrgan", "basicsr", weight_bias("conv_first", *(f"body.N.{c.format(rdb='rdb')}" for c in _RDB_CONVS),
                                    "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")),
    Layout("esrgan", "esrgan", weight_bias("conv_first", *(f"RRDB_trunk.N.{c.format(rdb='RDB')}" for c in _RDB_CONVS),
                                   "trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last")),
    Layout("esrgan", "old-arch", weight_bias("model.N", *(f"model.N.sub.N.{c.format(rdb='RDB')}.N" for c in _RDB_CONVS),
                                     "model.N.sub.N")),
)
SRVGG_LAYOUT = Layout("srvgg", "srvgg", weight_bias("body.N"))
SR_LAYOUTS = (*ESRGAN_LAYOUTS, SRVGG_LAYOUT)


def match_layout(sd: StateDict, layouts: tuple[Layout, ...] | list[Layout], path: Path, wanted: str) -> Layout:
    """The layout among ``layouts`` whose key patterns ``sd`` has exactly; else a ``CheckpointError`` in one line
    naming the closest layout and the keys that differ (a few missing / unexpected of each)."""
    patterns = {key_pattern(k) for k in sd}
    for layout in layouts:
        if not any(layout.differences(patterns)):
            return layout
    def closeness(lay: Layout) -> tuple[float, int]:  # shared share of patterns first, then fewest differences
        known = lay.required | lay.optional
        return -len(patterns & known) / len(patterns | known), sum(len(d) for d in lay.differences(patterns))

    closest = min(layouts, key=closeness)
    missing, unexpected = closest.differences(patterns)
    examples = [k for k in sorted(sd) if key_pattern(k) in set(unexpected)]
    parts = ([f"missing {_few(missing, 4)}"] if missing else []) + \
            ([f"unexpected {_few(examples, 4)}"] if unexpected else [])
    raise CheckpointError(f"'{path}' matches no known {wanted} layout; closest is {closest.label}: "
                          + "; ".join(parts) + ".")


# --------------------------------------------------------------------------------------------- RRDBNet
def _old_arch_to_basicsr(sd: StateDict, path: Path) -> StateDict:
    """``model.N`` keys → BasicSR's; only the x4 arrangement (two upsample convs at model.3 and model.6)."""
    top = sorted({int(k.split(".")[1]) for k in sd if re.match(r"^model\.\d+\.(weight|bias)$", k)})
    if top != [0, 3, 6, 8, 10]:
        stages = sum(1 for i in top if i >= 3) - 2
        raise CheckpointError(f"'{path}': an old-arch RRDBNet with top-level convs at model.{top}; gandeploy imports "
                              f"the x4 arrangement (model.0, 3, 6, 8, 10), this one has {stages} upsampling "
                              "stage(s).")
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"^model\.1\.sub\.(\d+)\.RDB", k))})
    lr_conv = len(blocks)  # the conv after the blocks: model.1.sub.<num_block>
    top_map = {"model.0": "conv_first", f"model.1.sub.{lr_conv}": "conv_body", "model.3": "conv_up1",
               "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
    out = {}
    for key, value in sd.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix in top_map:
            out[f"{top_map[prefix]}.{leaf}"] = value
        elif m := re.match(r"^model\.1\.sub\.(\d+)\.RDB([123])\.(conv[1-5])\.0\.(weight|bias)$", key):
            out[f"body.{m.group(1)}.rdb{m.group(2)}.{m.group(3)}.{m.group(4)}"] = value
        else:
            raise CheckpointError(f"'{path}': key '{key}' has no place in an old-arch RRDBNet.")
    return out


def _esrgan_repo_to_basicsr(sd: StateDict) -> StateDict:
    """xinntao/ESRGAN keys → BasicSR's (a renaming)."""
    renames = {"trunk_conv.": "conv_body.", "upconv1.": "conv_up1.", "upconv2.": "conv_up2.", "HRconv.": "conv_hr."}
    out = {}
    for key, value in sd.items():
        m = re.match(r"^RRDB_trunk\.(\d+)\.RDB([123])\.(.*)$", key)
        if m:
            key = f"body.{m.group(1)}.rdb{m.group(2)}.{m.group(3)}"
        else:
            key = next((new + key[len(old):] for old, new in renames.items() if key.startswith(old)), key)
        out[key] = value
    return out


TO_BASICSR: dict[str, Callable[..., StateDict]] = {
    "basicsr": lambda sd, path: sd,
    "esrgan": lambda sd, path: _esrgan_repo_to_basicsr(sd),
    "old-arch": _old_arch_to_basicsr,
}


def infer_esrgan_arch(sd: StateDict, path: Path, layout: str) -> dict[str, Any]:
    """num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch of a BasicSR-keyed RRDBNet state_dict."""
    num_feat, first_in = sd["conv_first.weight"].shape[:2]  # [num_feat, in·r², 3, 3]
    num_out = int(sd["conv_last.weight"].shape[0])  # [out, num_feat, 3, 3]
    blocks = sorted({int(k.split(".")[1]) for k in sd if k.startswith("body.")})
    if blocks != list(range(len(blocks))):
        raise CheckpointError(f"'{path}': RRDB blocks at body.{blocks} are not numbered 0..N-1.")
    num_grow = int(sd["body.0.rdb1.conv1.weight"].shape[0])  # [grow, num_feat, 3, 3]
    scale, num_in = 4, int(first_in)
    if layout == "basicsr":  # x2 / x1 models pixel-unshuffle their input by 2 / 4 before conv_first
        by_ratio = {1: 4, 4: 2, 16: 1}
        ratio = first_in // num_out if first_in % num_out == 0 else 0
        if ratio not in by_ratio:
            raise CheckpointError(f"'{path}': conv_first reads {first_in} channels and conv_last writes {num_out}; "
                                  "a BasicSR RRDBNet reads out·1 (x4), out·4 (x2) or out·16 (x1).")
        scale, num_in = by_ratio[ratio], num_out
    return {"num_in_ch": num_in, "num_out_ch": num_out, "scale": scale, "num_feat": int(num_feat),
            "num_block": len(blocks), "num_grow_ch": num_grow}


def import_esrgan(pth: str | os.PathLike[str], out: str | os.PathLike[str]) -> Imported:
    """Import an RRDBNet state_dict in any of the three layouts (module docstring) as run dir ``out``."""
    path = Path(pth)
    sd, container = read_checkpoint(path)
    layout = _own_layout(sd, path, "esrgan")
    sd = TO_BASICSR[layout.name](sd, path)
    spec = get_model("esrgan")
    arch = infer_esrgan_arch(sd, path, layout.name)
    cfg = _config(spec, arch, path)
    generator = spec.build_generator(cfg)
    _fit(generator, sd, path, f"RRDBNet ({layout.name} layout, inferred {_describe(arch)})")
    return _write_run(out, path, "esrgan", spec.name, cfg, {spec.generator_keys[0]: generator.state_dict()}, (),
                      layout=layout.name, container=container)


# --------------------------------------------------------------------------------------------- SRVGGNetCompact
def infer_srvgg_arch(sd: StateDict, path: Path, act_type: str | None) -> dict[str, Any]:
    """num_in_ch, num_out_ch, num_feat, num_conv, upscale and act_type from ``body.N`` shapes.

    Convs sit at the even indices 0, 2, ..., 2·(num_conv + 1); PReLU slopes ([num_feat]) at the odd ones. ReLU and
    LeakyReLU have no weights, so a file without PReLU needs ``act_type`` from the user.
    """
    idx = sorted({int(k.split(".")[1]) for k in sd})
    convs = [i for i in idx if sd.get(f"body.{i}.weight", torch.empty(0)).dim() == 4]
    prelus = [i for i in idx if i not in convs]
    if convs != list(range(0, 2 * len(convs), 2)) or len(convs) < 2:
        raise CheckpointError(f"'{path}': convs at body.{convs}; SRVGGNetCompact has them at body.0, 2, 4, ...")
    if prelus and prelus != list(range(1, 2 * len(convs) - 2, 2)):
        raise CheckpointError(f"'{path}': PReLU weights at body.{prelus}; SRVGGNetCompact has one after every conv "
                              "but the last.")
    found = "prelu" if prelus else None
    if found and act_type not in (None, "prelu"):
        raise UserInputError(f"--act {act_type}: '{path}' holds PReLU weights (act_type prelu); drop --act.")
    if not found and act_type in (None, "prelu"):
        raise UserInputError(f"'{path}' has no PReLU weights: its activation is ReLU or LeakyReLU(0.1), which hold "
                             "no weights; say which with --act relu or --act leakyrelu.")
    num_feat, num_in = (int(v) for v in sd["body.0.weight"].shape[:2])  # [feat, in, 3, 3]
    last = int(sd[f"body.{convs[-1]}.weight"].shape[0])  # [out·s², feat, 3, 3]
    for num_out in dict.fromkeys((num_in, 3, 1)):
        scale = math.isqrt(last // num_out) if last % num_out == 0 else 0
        if scale >= 1 and num_out * scale * scale == last:
            break
    else:
        raise CheckpointError(f"'{path}': the last conv writes {last} channels, not out_ch·scale² for out_ch "
                              f"{num_in}, 3 or 1.")
    arch = {"num_in_ch": num_in, "num_out_ch": num_out, "num_feat": num_feat, "num_conv": len(convs) - 2,
            "upscale": scale, "act_type": found or act_type}
    if DEFAULT_CROP % scale:  # the training crop (a default, not in the file) must be a multiple of the scale
        arch["image_size"] = 32 * scale
    return arch


def import_srvgg(pth: str | os.PathLike[str], out: str | os.PathLike[str], *, act_type: str | None = None) -> Imported:
    """Import a Real-ESRGAN SRVGGNetCompact state_dict (``realesr-general-x4v3.pth``, ...) as run dir ``out``."""
    path = Path(pth)
    sd, container = read_checkpoint(path)
    _own_layout(sd, path, "srvgg")
    spec = get_model("srvgg")
    arch = infer_srvgg_arch(sd, path, act_type)
    cfg = _config(spec, arch, path)
    generator = spec.build_generator(cfg)
    _fit(generator, sd, path, f"SRVGGNetCompact (inferred {_describe(arch)})")
    return _write_run(out, path, "srvgg", spec.name, cfg, {spec.generator_keys[0]: generator.state_dict()}, (),
                      layout="srvgg", container=container)


def _own_layout(sd: StateDict, path: Path, kind: str) -> Layout:
    """The super-resolution layout of ``sd``, which must be one ``kind`` imports."""
    layout = match_layout(sd, SR_LAYOUTS, path, f"{kind}")
    if layout.kind != kind:
        raise CheckpointError(f"'{path}' holds a {layout.label}, not a {kind} generator: run 'gandeploy import "
                              f"{layout.kind} {path}' (or 'gandeploy import auto {path}').")
    return layout


def _config(spec: Any, arch: dict[str, Any], path: Path) -> Any:
    try:
        return spec.config_cls(**arch)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"'{path}': gandeploy's {spec.name} cannot take the inferred {_describe(arch)} "
                              f"({exc}).") from None


def _describe(arch: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in arch.items())
