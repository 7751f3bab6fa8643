"""Every kind ``gandeploy import`` reads, its key layouts, and ``auto``: which kind a file is, found from its keys.

A new kind adds its importer to ``IMPORTERS`` and its layout(s) to ``LAYOUTS`` (one line each): ``auto`` and the
"closest layout" error then know it. Layouts compare key *patterns* (numbers as N, ``sr_pretrained.key_pattern``),
so a file of any depth or width matches its layout; the importer then checks the real shapes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gandeploy.training import pretrained, sr_pretrained
from gandeploy.training.pretrained import IN_STATS, Imported, read_checkpoint
from gandeploy.training.pretrained_pix2pix import import_pix2pix_reference, unet_layout
from gandeploy.training.sr_pretrained import Layout, weight_bias, match_layout

AUTO = "auto"

IMPORTERS: dict[str, Callable[..., Imported]] = {
    **pretrained.IMPORTERS,
    "pix2pix-reference": import_pix2pix_reference,
    "esrgan": sr_pretrained.import_esrgan,
    "srvgg": sr_pretrained.import_srvgg,
}

LAYOUTS: list[Layout] = [
    *sr_pretrained.SR_LAYOUTS,
    Layout("cyclegan-reference", "cyclegan-reference", weight_bias("model.N", "model.N.conv_block.N"),
           frozenset(f"{p}.{s}" for p in ("model.N", "model.N.conv_block.N") for s in IN_STATS)),
    Layout("dcgan-example", "dcgan-example",
           frozenset({"main.N.weight", "main.N.bias", "main.N.running_mean", "main.N.running_var"}),
           frozenset({"main.N.num_batches_tracked"})),
    # pix2pix-reference: a U-Net's keys nest as deep as its num_downs, so no fixed pattern set holds them;
    # ``detect`` recognises it structurally (``pretrained_pix2pix.unet_layout``).
]
PIX2PIX = Layout("pix2pix-reference", "pix2pix-reference", frozenset())

OPTIONS: dict[str, tuple[str, ...]] = {  # the keyword options each importer takes
    "cyclegan-reference": ("image_size",),
    "srvgg": ("act_type",),
    "pix2pix-reference": ("image_size", "norm_stats"),
}


def kinds() -> tuple[str, ...]:
    """What ``gandeploy import KIND`` accepts: every importer, then ``auto``."""
    return (*IMPORTERS, AUTO)


def detect(path: str | os.PathLike[str]) -> tuple[Layout, str]:
    """(layout, container key) of the checkpoint at ``path``; a ``CheckpointError`` naming the closest layout
    and the keys that differ when none fits."""
    sd, container = read_checkpoint(path)
    if unet_layout(sd) is not None:
        return PIX2PIX, container
    layouts = [lay for lay in LAYOUTS if lay.kind in IMPORTERS]
    return match_layout(sd, layouts, Path(path), "generator"), container


def run_import(kind: str, path: str | os.PathLike[str], out: str | os.PathLike[str], **options: Any) -> tuple[str, Imported]:
    """Import ``path`` as ``kind`` (``auto``: the kind its keys show) into run dir ``out``: (kind used, result).

    ``options`` (``image_size``, ``act_type``) reach only the importers that take them; unset ones are None.
    """
    if kind == AUTO:
        kind = detect(path)[0].kind
    given = {k: v for k, v in options.items() if v is not None and k in OPTIONS.get(kind, ())}
    return kind, IMPORTERS[kind](path, out, **given)
