"""The one quality line ``gandeploy train`` ends with, so a useless run is visible at once.

Which measure applies follows the data set (what is known about it) and the generator's declared input roles:

    digits + inputs (latent, class_label)  label agreement of a held-out digits classifier (classifier.py)
    digits + inputs (latent)               digits produced out of 10 and the classifier's mean confidence
    ring8 / grid25                         modes covered and the high-quality fraction (mixtures.py)
    stacked-digits                         modes of 1,000 and KL to uniform over 26,000 samples (stacked_modes.py)
    digits2inverted                        MAE of G_A against the known map vs doing nothing (translation.py)
    photos                                 PSNR-Y of the upscaled held-out photos vs bicubic (sr_psnr.py)
    digits-edges / -noisy / -masked        what the paired set declares: judge agreement, FID, PSNR, masked
                                           MAE, each beside its do-nothing baseline (paired.py)

Anything else gets a line saying no measure is known for it (FID is not implemented yet). The figures are also
written to ``RUN_DIR/quality.json`` (the model card reads them) and, when TensorBoard is installed, logged
beside the losses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gandeploy.config import QUALITY_FILE
from gandeploy.models.io import CLASS_LABEL, LATENT
from gandeploy.utils.io import atomic_write_json
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.quality")

def quality_line(run_dir: str | os.PathLike[str]) -> str:
    """Measure a finished run dir, record it in ``quality.json`` and return one line for the terminal."""
    from gandeploy.config import load_run_config

    run_dir = Path(run_dir)
    run = load_run_config(run_dir)
    measure = MEASURES.get(run.dataset or "")
    if measure is None:
        return f"Quality: no measure is known for data set '{run.dataset}' (label agreement, modes and MAE " \
               "cover digits, ring8/grid25 and digits2inverted); look at the sample grids in samples/."
    result = measure(run_dir, run)
    if result is None:
        return f"Quality: no measure is known for {run.model} on '{run.dataset}'; look at samples/."
    atomic_write_json(run_dir / QUALITY_FILE, result)
    log_to_tensorboard(run_dir, result)
    return f"Quality: {result['line']}"


def read_quality(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``quality.json`` of a run dir, or None when it was never measured."""
    try:
        data = json.loads((Path(run_dir) / QUALITY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _roles(run: Any) -> tuple[str, ...]:
    from gandeploy.registry import get_model

    return tuple(t.role for t in get_model(run.model).io(run.arch).inputs)


def _digits(run_dir: Path, run: Any) -> dict[str, Any] | None:
    from gandeploy.evaluation.classifier import classify_digits, label_agreement
    from gandeploy.training.checkpoint import load_generator

    roles = _roles(run)
    generator, _ = load_generator(run_dir)
    if roles == (LATENT, CLASS_LABEL):
        agree = label_agreement(generator, num_classes=int(run.arch.num_classes))
        worst = min(range(len(agree.per_class)), key=lambda c: agree.per_class[c])
        return {"measure": "label agreement", "value": agree.overall, "n": agree.n,
                "classifier_accuracy": agree.classifier_accuracy, "per_class": list(agree.per_class),
                "line": f"label agreement {agree.overall:.1%} over {agree.n} samples (the classifier reads the "
                        f"requested digit; its own held-out accuracy {agree.classifier_accuracy:.1%}; worst class "
                        f"{worst}: {agree.per_class[worst]:.0%})"}
    if roles == (LATENT,):
        z = torch.randn(1000, int(run.arch.nz), generator=torch.Generator().manual_seed(0))  # [1000, nz]
        with torch.no_grad():
            pred, conf = classify_digits(generator(z).float())  # [1000], [1000]
        counts = torch.bincount(pred, minlength=10)
        produced = int((counts >= 10).sum())
        return {"measure": "digit coverage", "value": produced, "confidence": float(conf.mean()),
                "counts": counts.tolist(),
                "line": f"{produced}/10 digits produced (>= 1 % of 1000 samples each), classifier confidence "
                        f"{float(conf.mean()):.1%}"}
    return None


def _mixture(run_dir: Path, run: Any) -> dict[str, Any]:
    from gandeploy.evaluation.mixtures import evaluate_run

    stats = evaluate_run(run_dir)
    return {"measure": "modes", "value": stats.modes_covered, "n_modes": stats.n_modes,
            "high_quality": stats.high_quality, "line": f"{stats} (within 3 sigma of a mode)"}


def _stacked(run_dir: Path, run: Any) -> dict[str, Any]:
    from gandeploy.evaluation.stacked_modes import evaluate_run

    stats = evaluate_run(run_dir)
    return {"measure": "modes of 1000", "value": stats.modes_covered, "n_modes": len(stats.counts),
            "kl": stats.kl, "n": sum(stats.counts),
            "line": f"{stats} (each channel read by the held-out digits judge; KL to uniform in nats)"}


def _translation(run_dir: Path, run: Any) -> dict[str, Any]:
    from gandeploy.evaluation.translation import evaluate_run

    score = evaluate_run(run_dir, str(run.dataset))
    return {"measure": "MAE vs true map", "value": score.model_mae, "identity_mae": score.identity_mae,
            "n": score.n, "line": f"held-out MAE vs the true map {score.model_mae:.3f} (identity baseline "
                                  f"{score.identity_mae:.3f}; lower is better) on {score.n} images"}


def _super_resolution(run_dir: Path, run: Any) -> dict[str, Any]:
    from gandeploy.data.photos import held_out_pairs
    from gandeploy.evaluation.sr_psnr import psnr_vs_bicubic
    from gandeploy.registry import get_model
    from gandeploy.training.checkpoint import load_generator

    generator, _ = load_generator(run_dir)
    io = get_model(run.model).io(run.arch)
    pairs = held_out_pairs(io.scale, channels=int(io.image_input.shape[1]))
    r = psnr_vs_bicubic(generator, pairs, io.scale, io.size_multiple, io.outputs[0].value_range)
    return {"measure": "PSNR-Y gain over bicubic (dB)", "value": r.gain, "psnr_y": r.model,
            "bicubic_psnr_y": r.bicubic, "scale": io.scale, "n": len(pairs),
            "per_picture": {k: {"psnr_y": v[0], "bicubic_psnr_y": v[1]} for k, v in r.per_picture.items()},
            "line": f"PSNR-Y {r.model:.2f} dB vs bicubic {r.bicubic:.2f} dB ({r.gain:+.2f} dB) at x{io.scale} on "
                    f"the {len(pairs)} held-out photos ({', '.join(r.per_picture)}; {io.scale} px border cropped)"}


def _paired(run_dir: Path, run: Any) -> dict[str, Any] | None:
    from gandeploy.evaluation.paired import evaluate_paired_run

    scores = evaluate_paired_run(run_dir)
    if scores is None:
        return None
    main = scores["measures"][0]
    return {"measure": main.replace("_", " "), "value": scores[main], **scores}


MEASURES: dict[str, Callable[[Path, Any], dict[str, Any] | None]] = {
    "digits": _digits, "ring8": _mixture, "grid25": _mixture, "digits2inverted": _translation,
    "stacked-digits": _stacked,
    "photos": _super_resolution,
    **{name: _paired for name in ("digits-edges", "digits-noisy", "digits-masked")}}


def log_to_tensorboard(run_dir: Path, result: dict[str, Any]) -> None:
    """The quality figure and line beside the losses in ``RUN_DIR/tensorboard`` (when TensorBoard is installed)."""
    from gandeploy.training.tensorboard import open_writer

    writer = open_writer(run_dir)
    if writer is None:
        return
    with writer:
        if isinstance(result.get("value"), (int, float)):
            writer.add_scalar(f"quality/{result['measure']}", float(result["value"]))
        writer.add_text("quality", str(result["line"]))
