"""Quality of a paired (pix2pix) generator on held-out pairs whose true target is known.

What is measured follows the data set's declared ``measures`` (data/paired.py), never its name:

- ``label_agreement``: the held-out digits judge (classifier.py) reads the source digit's label in the output.
  That judge was fitted on the held-out digits themselves (so that it can judge GAN samples of the training
  split), i.e. on the targets here: its reading of the real targets is the ceiling, printed beside it, and its
  reading of the corrupted sources the floor. The FID feature CNN (features.py, fitted on the *training* split)
  gives an independent second reading (``independent_agreement``).
- ``fid``: FID (and KID) of the outputs against the held-out real digits, digits features (features.py).
- ``psnr``: mean PSNR of output vs target (peak-to-peak 2 in [-1, 1]), next to the source's own PSNR.
- ``masked_mae``: mean |output - target| inside the masked box, next to the box's fill (the source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch



PEAK = 2.0  # [-1, 1]: peak-to-peak value of a picture


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR per picture in dB, [N]: 10 log10(PEAK² / mean (a - b)²) over C, H, W (inf where equal)."""
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)  # [N]
    return 10.0 * torch.log10(PEAK**2 / mse)


def paired_scores(outputs: np.ndarray | torch.Tensor, ds: Any, *, data_root: str | None = None) -> dict[str, Any]:
    """Every measure ``ds.measures`` declares, for ``outputs`` [N, C, S, S] in [-1, 1] made from the first N
    held-out sources of ``ds`` (all of them in evaluation): a dict of figures plus a one-line ``line``."""
    fake = torch.as_tensor(np.asarray(outputs, dtype=np.float32))
    n = int(fake.shape[0])
    source, target = (t[:n] for t in ds.test_batch(n))
    out: dict[str, Any] = {"n": n, "measures": list(ds.measures)}
    parts: list[str] = []
    if "label_agreement" in ds.measures:
        out.update(_agreement(fake, source, target, ds.test_labels[:n], data_root))
        parts.append(f"judge agreement {out['label_agreement']:.1%} (real targets {out['judge_on_targets']:.1%}, "
                     f"sources {out['judge_on_sources']:.1%}; independent judge {out['independent_agreement']:.1%})")
    if "fid" in ds.measures:
        out.update(_fid(fake, source, target, data_root))
        parts.append(f"FID {out['fid']:.2f} vs held-out digits (sources {out['fid_sources']:.2f})")
    if "psnr" in ds.measures:
        out["psnr"], out["psnr_source"] = float(psnr(fake, target).mean()), float(psnr(source, target).mean())
        parts.append(f"PSNR {out['psnr']:.2f} dB (noisy input {out['psnr_source']:.2f} dB)")
    if "masked_mae" in ds.measures:
        mask = ds.test_masks[:n].expand_as(target)  # [n, C, S, S] bool
        out["masked_mae"] = float((fake - target).abs()[mask].mean())
        out["masked_mae_source"] = float((source - target).abs()[mask].mean())
        parts.append(f"MAE inside the mask {out['masked_mae']:.3f} (grey fill {out['masked_mae_source']:.3f})")
    out["line"] = "; ".join(parts) + f" on {n} held-out pairs"
    return out


def _agreement(fake: torch.Tensor, source: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
               data_root: str | None) -> dict[str, Any]:
    from gandeploy.metrics.classifier import classify_digits, digits_classifier
    from gandeploy.metrics.features import digits_features

    def hits(x: torch.Tensor) -> float:
        return float((classify_digits(x)[0] == labels).float().mean())

    independent = digits_features(data_root).model
    with torch.no_grad():
        other = float((independent(fake).argmax(1) == labels).float().mean())
    return {"label_agreement": hits(fake), "judge_on_targets": hits(target), "judge_on_sources": hits(source),
            "judge_held_out_accuracy": digits_classifier(int(fake.shape[-1])).held_out_accuracy,
            "independent_agreement": other}


def _fid(fake: torch.Tensor, source: torch.Tensor, target: torch.Tensor, data_root: str | None) -> dict[str, Any]:
    """FID / KID of the outputs against the real held-out targets, and FID of the corrupted sources (the
    do-nothing baseline), in the digits feature space."""
    from gandeploy.metrics.distribution import fid, score
    from gandeploy.metrics.features import get_extractor

    extractor = get_extractor("digits", data_root=data_root)
    real_f = extractor(target, desc="real features")
    s = score(real_f, extractor(fake, desc="generated features"))
    return {"fid": float(s.fid), "kid": float(s.kid_mean),
            "fid_sources": float(fid(real_f, extractor(source, desc="source features")))}


@torch.no_grad()
def translate_held_out(generator: torch.nn.Module, ds: Any, batch: int = 128) -> torch.Tensor:
    """G (eval mode) on every held-out source of ``ds``: [N, C, S, S] on CPU."""
    source, _ = ds.test_batch(10**9)
    device = next(generator.parameters()).device
    generator.eval()
    return torch.cat([generator(x.to(device)).float().cpu() for x in source.split(batch)])


def paired_summary(dataset: str, family: str | None, fake: np.ndarray, *, image_size: int, channels: int,
                   data_root: str | None = None, augment: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``paired_scores`` of ``fake`` (every held-out source translated) when ``dataset`` is a paired set that
    declares measures; None otherwise (evaluate's distribution figures still apply)."""
    from gandeploy.data import KIND_PAIRED, open_dataset

    if family is None:
        return None
    ds = open_dataset(dataset, family, image_size=image_size or None, channels=channels or None, split="test",
                      data_root=Path(data_root) if data_root else None, augment=augment)
    if getattr(ds, "kind", None) != KIND_PAIRED or not getattr(ds, "measures", ()):
        return None
    return paired_scores(fake, ds, data_root=data_root)
