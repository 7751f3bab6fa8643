"""Several super-resolution generators side by side: ``gandeploy evaluate RUN --compare-runs OTHER[,OTHER...]``.

For each held-out picture of the first target's data set, the same centred crop (``sr_eval.FIGURE_CROP`` px) of
bicubic | each target | original, with each panel's PSNR-Y on that crop in its label; ``sr-crops.json`` holds
those crop figures and each target's whole-picture PSNR / SSIM (``sr_eval.evaluate_sr``, the protocol of
``gandeploy evaluate``). This is the figure SR papers show for the GAN stage's trade: PSNR down, detail up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import UserInputError
from gandeploy.evaluation.sampling import open_source
from gandeploy.evaluation.sr_eval import PSNR, SSIM, evaluate_sr, labelled_rows_figure
from gandeploy.metrics.sr_metrics import psnr_ssim_y
from gandeploy.utils.io import atomic_write_json
from gandeploy.utils.logging import get_logger

log = get_logger("evaluate.sr_compare")

FIGURE_NAME, JSON_NAME = "sr-crops.png", "sr-crops.json"


@dataclass
class SRComparison:
    """Whole-picture scores per target and, per picture, the crops (bicubic, targets..., original) and their
    PSNR-Y on the crop."""

    labels: list[str]  # one per target
    whole: list[dict[str, Any]]  # per target: evaluate_sr's summary
    rows: list[dict[str, Any]] = field(default_factory=list)  # per picture: name, crop box, per-panel PSNR-Y
    panels: list[list[np.ndarray]] = field(default_factory=list)  # per picture: uint8 [C, s, s] crops

    def to_json(self) -> dict[str, Any]:
        return {"panels": ["bicubic", *self.labels, "original"],
                "targets": [{"label": lab, "target": w["target"], "model": w["model"], "bicubic": w["bicubic"],
                             "gain_over_bicubic": w["gain_over_bicubic"], "real": w["real"], "scale": w["scale"]}
                            for lab, w in zip(self.labels, self.whole)],
                "crops": self.rows,
                "crop_psnr": "PSNR-Y (BT.601) of each panel's crop against the original crop, no border cut "
                             "(the crop lies inside the picture)"}


def _label(target: str, run: Any) -> str:
    name = Path(target).name or target
    return f"{run.model} ({name})" if run is not None and getattr(run, "model", None) else name


def compare_sr(targets: list[str], cfg: Any) -> SRComparison:
    """Score every target (run dirs or export dirs, default backend) on the same held-out pictures."""
    if len(targets) < 2:
        raise UserInputError("--compare-runs: name at least one run besides TARGET.")
    cfg = replace(cfg, metrics=(PSNR, SSIM))
    results, labels = [], []
    for target in targets:
        if not Path(target).is_dir():
            raise UserInputError(f"--compare-runs: '{target}' is not a run or export dir.")
        source, run = open_source(target)
        try:
            if source.io.image_input is None or source.io.scale < 2:
                raise UserInputError(f"--compare-runs: '{target}' is not a super-resolution generator (it does not "
                                     "upscale a picture).")
            if results and cfg.real is None and run is not None and run.dataset != results[0].summary["real"]:
                raise UserInputError(f"--compare-runs: '{target}' was trained on {run.dataset}, "
                                     f"'{targets[0]}' on {results[0].summary['real']}; pass --real DATASET.")
            results.append(evaluate_sr(target, source, run, cfg, (PSNR, SSIM)))
        finally:
            source.close()
        labels.append(_label(target, run))
        if results[-1].summary["scale"] != results[0].summary["scale"]:
            raise UserInputError(f"--compare-runs: '{target}' upscales x{results[-1].summary['scale']}, "
                                 f"'{targets[0]}' x{results[0].summary['scale']}.")
    comp = SRComparison(labels, [r.summary for r in results])
    for i, (name, bic, _, hr) in enumerate(results[0].crops):
        panels = [bic, *(r.crops[i][2] for r in results), hr]
        psnrs = [psnr_ssim_y(p, hr, 0)[PSNR] for p in panels[:-1]]
        comp.panels.append(panels)
        comp.rows.append({"picture": name, "side": int(hr.shape[-1]),
                          "psnr_y": dict(zip(["bicubic", *labels], psnrs))})
        log.info("%s crop: %s", name, ", ".join(f"{k} {v:.2f} dB" for k, v in comp.rows[-1]["psnr_y"].items()))
    return comp


def comparison_figure(comp: SRComparison, path: Path) -> Path:
    """One row per picture: bicubic | targets... | original crops, each labelled with its crop PSNR-Y."""
    titles = ["bicubic", *(Path(w["target"]).name or w["target"] for w in comp.whole), "original"]  # run dir names
    rows = []
    for row, panels in zip(comp.rows, comp.panels):
        scores = list(row["psnr_y"].values())
        labels = [(f"{t} {scores[i]:.2f} dB" if i < len(scores) else f"{t} ({row['picture']})")[:32]
                  for i, t in enumerate(titles[:len(panels)])]
        rows.append((labels, list(panels)))
    return labelled_rows_figure(rows, path)


def write_comparison(comp: SRComparison, out_dir: Path, json_file: Path | None = None) -> list[Path]:
    """``sr-crops.png`` and ``sr-crops.json`` in ``out_dir`` (and the JSON also at ``json_file``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [comparison_figure(comp, out_dir / FIGURE_NAME), atomic_write_json(out_dir / JSON_NAME, comp.to_json())]
    if json_file is not None:
        written.append(atomic_write_json(json_file, comp.to_json()))
    return written


def comparison_lines(comp: SRComparison) -> list[str]:
    """One line per target: whole-picture PSNR / SSIM against bicubic."""
    return [f"{lab}: PSNR-Y {w['model'][PSNR]:.2f} dB (bicubic {w['bicubic'][PSNR]:.2f}, "
            f"{w['gain_over_bicubic'][PSNR]:+.2f}), SSIM {w['model'][SSIM]:.4f} (bicubic {w['bicubic'][SSIM]:.4f})"
            for lab, w in zip(comp.labels, comp.whole)]
