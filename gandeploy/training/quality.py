"""The one quality line ``gandeploy train`` ends with, so a useless run is visible at once.

Which measure applies follows the data set (what is known about it) and the generator's declared input roles:

    digits + inputs (latent, class_label)  label agreement of a held-out digits classifier (metrics/classifier.py)
    digits + inputs (latent)               digits produced out of 10 and the classifier's mean confidence
    ring8 / grid25                         modes covered and the high-quality fraction (metrics/mixtures.py)
    stacked-digits                         modes of 1,000 and KL to uniform over 26,000 samples (metrics/stacked_modes.py)
    digits2inverted                        MAE of G_A against the known map vs doing nothing (metrics/translation.py)
    photos                                 PSNR-Y of the upscaled held-out photos vs bicubic (metrics/sr_psnr.py)
    digits-edges / -noisy / -masked        what the paired set declares: judge agreement, FID, PSNR, masked
                                           MAE, each beside its do-nothing baseline (metrics/paired.py)

Anything else gets a line saying no measure is known for it (FID is not implemented yet). The figures are also
written to ``RUN_DIR/quality.json`` (the model card reads them) and, when TensorBoard is installed, logged
beside the losses. ``evaluate_*_run`` load a run dir's generator and score it with ``gandeploy.metrics``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gandeploy.config import QUALITY_FILE
from gandeploy.errors import UserInputError
from gandeploy.metrics.mixtures import N_SAMPLES, ModeStats, mode_stats
from gandeploy.metrics.paired import paired_scores, translate_held_out
from gandeploy.metrics.translation import TranslationScore, translation_error
from gandeploy.models.io import CATEGORICAL_CODE, CLASS_LABEL, LATENT
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
    from gandeploy.metrics.classifier import classify_digits, label_agreement
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
    if CATEGORICAL_CODE in roles:  # InfoGAN: which digit each category of the code draws, without labels
        from gandeploy.metrics.codes import code_mapping
        from gandeploy.registry import get_model

        m = code_mapping(generator, get_model(run.model).io(run.arch))
        worst = min(range(len(m.per_code)), key=lambda k: m.per_code[k])
        return {"measure": "code mapping", "value": m.accuracy, "n": m.n, "mapping": list(m.mapping),
                "per_code": list(m.per_code), "classifier_accuracy": m.classifier_accuracy,
                "line": f"code mapping {m.accuracy:.1%} over {m.n} samples (the best one-to-one category -> "
                        f"judged digit; the judge's own held-out accuracy {m.classifier_accuracy:.1%}; weakest "
                        f"category {worst}: {m.per_code[worst]:.0%} digit {m.mapping[worst]})"}
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
    stats = evaluate_mixture_run(run_dir)
    return {"measure": "modes", "value": stats.modes_covered, "n_modes": stats.n_modes,
            "high_quality": stats.high_quality, "line": f"{stats} (within 3 sigma of a mode)"}


def _stacked(run_dir: Path, run: Any) -> dict[str, Any]:
    stats = evaluate_stacked_run(run_dir)
    return {"measure": "modes of 1000", "value": stats.modes_covered, "n_modes": len(stats.counts),
            "kl": stats.kl, "n": sum(stats.counts),
            "line": f"{stats} (each channel read by the held-out digits judge; KL to uniform in nats)"}


def _translation(run_dir: Path, run: Any) -> dict[str, Any]:
    score = evaluate_translation_run(run_dir, str(run.dataset))
    return {"measure": "MAE vs true map", "value": score.model_mae, "identity_mae": score.identity_mae,
            "n": score.n, "line": f"held-out MAE vs the true map {score.model_mae:.3f} (identity baseline "
                                  f"{score.identity_mae:.3f}; lower is better) on {score.n} images"}


def _super_resolution(run_dir: Path, run: Any) -> dict[str, Any]:
    from gandeploy.data.photos import held_out_pairs
    from gandeploy.metrics.sr_psnr import psnr_vs_bicubic
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
    scores = evaluate_paired_run(run_dir)
    if scores is None:
        return None
    main = scores["measures"][0]
    return {"measure": main.replace("_", " "), "value": scores[main], **scores}


# --- a run dir's generator on held-out data -----------------------------------------------------------------


def evaluate_mixture_run(run_dir: str | os.PathLike[str], n: int = N_SAMPLES, seed: int = 0) -> ModeStats:
    """Sample ``n`` points from a trained ring8/grid25 run's generator and score them."""
    from gandeploy.data import open_dataset
    from gandeploy.training.checkpoint import load_generator

    generator, run = load_generator(run_dir)
    if run.dataset is None:
        raise ValueError(f"{run_dir} does not record its dataset")
    ds = open_dataset(run.dataset, "gan")
    z = torch.randn(n, run.arch.nz, generator=torch.Generator().manual_seed(seed))  # [n, nz]
    with torch.no_grad():
        points = generator(z)  # [n, 2]
    return mode_stats(points, ds.centres, ds.std)


def evaluate_stacked_run(run_dir: str | os.PathLike[str], n: int | None = None, seed: int = 0) -> Any:
    """``n`` pictures (default 26,000) from a stacked-digits run's generator (the one export takes), each channel
    read by the held-out digits judge (``metrics.stacked_modes``)."""
    from gandeploy.metrics.stacked_modes import N_SAMPLES as STACKED_SAMPLES
    from gandeploy.metrics.stacked_modes import stacked_stats
    from gandeploy.training.checkpoint import load_generator

    generator, run = load_generator(run_dir)
    return stacked_stats(stacked_pictures(generator, int(run.arch.nz), n or STACKED_SAMPLES, seed))


@torch.no_grad()
def stacked_pictures(generator: torch.nn.Module, nz: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` pictures [n, 3, S, S] from ``generator`` at the latent draws ``evaluate_stacked_run`` scores (z of
    ``seed``, 1,000 at a time)."""
    z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))  # [n, nz]
    return torch.cat([generator(chunk).float() for chunk in z.split(1000)])


def evaluate_translation_run(run_dir: str | os.PathLike[str], dataset: str = "digits2inverted", *,
                 device: str | torch.device = "cpu") -> TranslationScore:
    """Score a run dir's ``G_A`` on the held-out split of a data set with a known map (``digits2inverted``)."""
    from gandeploy.data import open_dataset
    from gandeploy.training.checkpoint import load_generator

    generator, run = load_generator(run_dir, "G_A", map_location=device)
    ds = open_dataset(dataset, "cyclegan", image_size=run.arch.image_size, channels=run.arch.input_nc,
                      split="test", data_root=None)
    if not hasattr(ds, "true_map") or not hasattr(ds, "heldout_a"):
        raise UserInputError(f"dataset '{dataset}' has no known A->B map; translation error needs "
                             "digits2inverted.")
    return translation_error(generator.to(device), ds.heldout_a, ds.true_map, device=device)


def evaluate_paired_run(run_dir: str | os.PathLike[str], *, data_root: str | None = None) -> dict[str, Any] | None:
    """A run dir's generator on its data set's held-out pairs; None when the set declares no measures."""
    from gandeploy.data import open_dataset
    from gandeploy.registry import get_model
    from gandeploy.training.checkpoint import load_generator

    generator, run = load_generator(Path(run_dir))
    ds = open_dataset(str(run.dataset), get_model(run.model).family, image_size=int(run.arch.image_size),
                      channels=int(run.arch.input_nc), split="test", data_root=None, augment=None)
    if not getattr(ds, "measures", ()):
        return None
    return paired_scores(translate_held_out(generator, ds), ds, data_root=data_root)


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
