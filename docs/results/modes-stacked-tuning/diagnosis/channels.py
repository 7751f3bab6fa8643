"""Where a stacked-digits run's KL sits: each channel's share of every digit, read by both digits judges.

A study script for docs/modes.md, not part of the package. For the chosen checkpoints of each run dir it draws the
26,000 pictures ``gandeploy mode-table`` scores (``G_ema``, or ``--generator``) and reads every channel twice: by the
held-out digits judge that the mode table uses (``metrics/classifier.py``) and by the independent FID feature CNN
(``metrics/features.py``, another architecture fitted on the training digits). Per judge it writes the KL to uniform
and the modes covered, and per channel the share of each digit (``share x 10``: 1.0 is uniform), the channel's own
KL and the judge's mean confidence; then how often the two judges agree on each channel. Real training stacks
(26,000, drawn as ``metrics.stacked_modes.real_reference`` draws them) are read the same way, as the reference.

    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/results/modes-stacked-tuning/diagnosis/channels.py RUN [RUN ...] \
        --steps 13000 --out F.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from gandeploy.config import load_run_config
from gandeploy.metrics.features import digits_features
from gandeploy.metrics.stacked_modes import N_SAMPLES, kl_to_uniform, mode_histogram, read_channels
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import load_checkpoint, load_state_into
from gandeploy.training.quality import stacked_pictures

log = logging.getLogger("channels")


def reading(digits: np.ndarray, confidence: np.ndarray | None) -> dict[str, object]:
    """One judge's reading of digits [N, 3]: KL and modes of the triples, then per channel shares and KL."""
    hist = mode_histogram(digits)
    channels = []
    for c in range(digits.shape[1]):
        counts = np.bincount(digits[:, c], minlength=10)
        row: dict[str, object] = {"share_x10": [round(float(v), 2) for v in counts / counts.sum() * 10],
                                  "kl": round(kl_to_uniform(counts), 4)}
        if confidence is not None:
            row["confidence"] = round(float(confidence[:, c].mean()), 4)
        channels.append(row)
    return {"kl": round(kl_to_uniform(hist), 4), "modes": int((hist > 0).sum()), "channels": channels}


@torch.no_grad()
def read_run(run: Path, steps: list[int], key: str, n: int) -> list[dict[str, object]]:
    config = load_run_config(run)
    spec, nz = get_model(config.model), int(config.arch.nz)
    rows = []
    for step in steps:
        ckpt = run / "checkpoints" / f"step_{step:06d}.pt"
        if not ckpt.is_file():
            raise SystemExit(f"no checkpoint {ckpt} (train with --keep-every)")
        G = spec.build_generator(config.arch)
        load_state_into(G, load_checkpoint(ckpt)["models"][key], f"{key} in {ckpt}")
        rows.append({"step": step, "generator": key, **read_both(stacked_pictures(G.eval(), nz, n))})
        log.info("%s %s %s", run.name, ckpt.stem, rows[-1])
    return rows


@torch.no_grad()
def read_both(images: torch.Tensor) -> dict[str, object]:
    """images [N, 3, S, S] in [-1, 1] read by both judges, and their agreement per channel."""
    digits, conf = (np.asarray(t) for t in read_channels(images))
    independent = digits_features().model.eval()
    other = np.stack([independent(images[:, c:c + 1]).argmax(1).numpy() for c in range(3)], axis=1)
    return {"project_judge": reading(digits, conf), "independent_judge": reading(other, None),
            "agreement": [round(float((digits[:, c] == other[:, c]).mean()), 4) for c in range(3)]}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--steps", nargs="+", type=int, required=True)
    parser.add_argument("--generator", default="G_ema")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    args = parser.parse_args()
    from gandeploy.data.stacked import TRIPLE_SEED, StackedDigits

    real = StackedDigits("train", 32, args.samples, TRIPLE_SEED + 7)  # as metrics.stacked_modes.real_reference
    result = {"samples": args.samples, "real_train_stacks": read_both(real.get_batch(torch.arange(args.samples))[0]),
              "runs": {run.name: read_run(run, args.steps, args.generator, args.samples) for run in args.runs}}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
