"""The dataset registry. ``open_dataset`` turns a CLI name (``digits``, ``ring8``, ``horse2zebra``,
``folder:PATH``, ``aligned:PATH``) into a ``Dataset`` for a model family.

A ``Dataset`` is in-memory or lazily loaded and serves deterministic batches::

    len(ds)                                 # items per epoch
    ds.get_batch(indices, gen)              # indices: int64 tensor; gen: torch.Generator for augmentation
        gan family:      (x [B, C, H, W] float32 in [-1, 1] | points [B, D], y [B] int64 or None)
        cyclegan family: (a [B, C, H, W], b [B, C, H, W]) in [-1, 1]
        paired family:   (source [B, C, h, w], target [B, C, H, W]) in [-1, 1], H = scale * h (pix2pix: 1)
    ds.class_names                          # tuple of names, or None
    ds.test_batch(n)                        # fixed held-out batch for sample grids / evaluation
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import DataError, unknown_choice

FOLDER_PREFIX = "folder:"
ALIGNED_PREFIX = "aligned:"  # the pix2pix reference's aligned layout (A|B side by side), paired family only
KIND_IMAGES, KIND_POINTS, KIND_PAIRED = "image", "points", "paired"  # ``Dataset.kind``: what its batches hold


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry: which model families it feeds and where its opener lives ("module:function")."""

    name: str
    description: str
    families: tuple[str, ...]  # "gan" | "cyclegan" | "paired"
    opener: str
    # a name two families read differently (facades: unpaired folders for cyclegan, aligned pairs for pix2pix)
    family_openers: Mapping[str, str] = field(default_factory=dict)

    def opener_for(self, family: str) -> str:
        return self.family_openers.get(family, self.opener)


# CycleGAN authors' unpaired sets: downloaded as <name>.zip into --data-root when missing.
CYCLEGAN_SETS = ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo",
                 "ukiyoe2photo", "vangogh2photo", "maps", "facades", "iphone2dslr_flower")
# pix2pix authors' aligned sets: downloaded as <name>.tar.gz into --data-root/pix2pix when missing.
PIX2PIX_SETS = ("facades", "maps", "cityscapes", "edges2shoes", "edges2handbags", "night2day")
PIX2PIX_OPENER = "gandeploy.data.aligned:open_pix2pix_set"

DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec("digits", "scikit-learn's 1,797 real handwritten digits (8x8, 10 labels), resized",
                    ("gan",), "gandeploy.data.digits:open_digits"),
        DatasetSpec("stacked-digits", "three independent real digits as the R, G, B channels of one 32x32 "
                    "picture: 1,000 modes (the stacked-MNIST mode-collapse benchmark)", ("gan",),
                    "gandeploy.data.stacked:open_stacked_digits"),
        DatasetSpec("ring8", "2D mixture of 8 Gaussians on a ring (mode-collapse benchmark)",
                    ("gan",), "gandeploy.data.mixtures:open_ring8"),
        DatasetSpec("grid25", "2D mixture of 25 Gaussians on a 5x5 grid (mode-collapse benchmark)",
                    ("gan",), "gandeploy.data.mixtures:open_grid25"),
        DatasetSpec("mix1d", "1D mixture of 2 Gaussians at -2 and +2, std 0.5 (the D* check of 'diagnose')",
                    ("gan",), "gandeploy.data.mixtures:open_mix1d"),
        DatasetSpec("digits2inverted", "synthetic unpaired pair with a known A->B map: digits -> inverted, "
                    "tinted digits", ("cyclegan",), "gandeploy.data.synthetic:open_digits_pair"),
        *(DatasetSpec(name, f"CycleGAN authors' {name} (downloaded to --data-root when missing)"
                      + (" / pix2pix aligned pairs" if name in PIX2PIX_SETS else ""),
                      ("cyclegan", "paired") if name in PIX2PIX_SETS else ("cyclegan",),
                      "gandeploy.data.unpaired:open_cyclegan_set",
                      {"paired": PIX2PIX_OPENER} if name in PIX2PIX_SETS else {}) for name in CYCLEGAN_SETS),
        *(DatasetSpec(name, f"pix2pix authors' aligned {name} (downloaded to --data-root when missing)",
                      ("paired",), PIX2PIX_OPENER) for name in PIX2PIX_SETS if name not in CYCLEGAN_SETS),
        DatasetSpec("digits-edges", "paired digits: edge map -> the digit (sketch to image)",
                    ("paired",), "gandeploy.data.paired:open_paired_digits"),
        DatasetSpec("digits-noisy", "paired digits: noisy -> clean digit (denoising)",
                    ("paired",), "gandeploy.data.paired:open_paired_digits"),
        DatasetSpec("digits-masked", "paired digits: a grey box masked -> the full digit (inpainting)",
                    ("paired",), "gandeploy.data.paired:open_paired_digits"),
        DatasetSpec("photos", "the 11 colour photographs scikit-image and scikit-learn ship (8 train, 3 held "
                    "out), random crops, low resolution by bicubic downscaling", ("paired",),
                    "gandeploy.data.photos:open_photos"),
    )
}

FOLDER_OPENERS = {
    "gan": "gandeploy.data.folder:open_image_folder",
    "cyclegan": "gandeploy.data.unpaired:open_unpaired_folder",
    "paired": "gandeploy.data.sr_folder:open_sr_folder",
}

# Keywords only some families' openers take (the others never see them): paired sets make the source picture
# ``scale`` x smaller than the target (the generator's declared output scale; 1 for pix2pix).
FAMILY_KEYWORDS: dict[str, tuple[str, ...]] = {"paired": ("scale",)}


def dataset_names() -> tuple[str, ...]:
    return (*DATASETS, f"{FOLDER_PREFIX}PATH", f"{ALIGNED_PREFIX}PATH")


def open_dataset(name: str, family: str, **kwargs: Any) -> Any:
    """Open dataset ``name`` for a model ``family``; keyword arguments go to its opener.

    Openers take ``name`` (the registry name, or the folder path for ``folder:``) plus keyword-only
    ``image_size``, ``channels``, ``split`` ("train" | "test"), ``data_root`` and ``augment`` (the task's data options, a plain dict);
    paired families' openers also ``scale`` (``FAMILY_KEYWORDS``: dropped for the families whose openers do not
    take them, so callers may always pass them).
    """
    own = FAMILY_KEYWORDS.get(family, ())
    kwargs = {k: v for k, v in kwargs.items() if k in own or not any(k in kws for kws in FAMILY_KEYWORDS.values())}
    if name.startswith(FOLDER_PREFIX):
        path = Path(name[len(FOLDER_PREFIX):]).expanduser()
        if not path.is_dir():
            raise DataError(f"DATASET '{name}': folder '{path}' does not exist.")
        if family not in FOLDER_OPENERS:
            raise DataError(f"DATASET '{name}': {FOLDER_PREFIX}PATH data is not available for {family} models yet; "
                            f"datasets for them: {', '.join(n for n, d in DATASETS.items() if family in d.families)}.")
        return _call(FOLDER_OPENERS[family], str(path), **kwargs)
    if name.startswith(ALIGNED_PREFIX):
        path = Path(name[len(ALIGNED_PREFIX):]).expanduser()
        if family != "paired":
            raise DataError(f"DATASET '{name}': aligned (A|B) pictures are pairs; they fit paired models such as "
                            "pix2pix only.")
        if not path.is_dir():
            raise DataError(f"DATASET '{name}': folder '{path}' does not exist.")
        return _call("gandeploy.data.aligned:open_aligned_folder", str(path), **kwargs)
    if name not in DATASETS:
        raise unknown_choice("dataset", name, dataset_names(), flag="DATASET")
    spec = DATASETS[name]
    if family not in spec.families:
        fits = ", ".join(sorted(n for n, d in DATASETS.items() if family in d.families))
        raise DataError(f"dataset '{name}' does not fit {family} models; datasets for them: {fits}, "
                        f"{FOLDER_PREFIX}PATH.")
    return _call(spec.opener_for(family), name, **kwargs)


def _call(target: str, name: str, **kwargs: Any) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)(name, **kwargs)
