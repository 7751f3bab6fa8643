"""Does re-measuring G's BatchNorm statistics ("standing statistics") change a stacked-digits run's modes and KL?

A study script for docs/modes.md, not part of the package. In eval mode a DCGAN generator normalises with its
BatchNorm running means and variances. For the raw G those are a running average (momentum 0.1) of recent training
batches; for G_ema they are a moving average of those averages, taken beside averaged weights that never ran a batch
of their own. BigGAN's "standing statistics" re-measure them instead: run the generator in train mode on many latent
batches and keep the plain mean of the batch statistics (``momentum=None``). This script scores, for the chosen
checkpoints of each run dir, ``G`` and ``G_ema`` as kept and with standing statistics (``--batches`` batches of
``--batch`` latent draws from a seed other than the scoring one), exactly as ``gandeploy mode-table`` scores a run
(``metrics.stacked_modes.stacked_stats`` on 26,000 pictures).

    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/results/modes-stacked-tuning/diagnosis/standing.py RUN [RUN ...] \
        --steps 12000 13000 --out F.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from torch import nn

from gandeploy.config import load_run_config
from gandeploy.metrics.stacked_modes import N_SAMPLES, stacked_stats
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import EMA_SUFFIX, load_checkpoint, load_state_into
from gandeploy.training.quality import stacked_pictures

log = logging.getLogger("standing")


@torch.no_grad()
def standing_statistics(generator: nn.Module, nz: int, batches: int, batch: int, seed: int) -> nn.Module:
    """Re-measure every BatchNorm's running mean and variance as the plain average over ``batches`` latent batches."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    generator.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        generator(torch.randn(batch, nz, generator=gen))
    return generator.eval()


def score(images: torch.Tensor) -> dict[str, object]:
    stats = stacked_stats(images)
    return {"modes": stats.modes_covered, "kl": round(stats.kl, 4),
            "channel_kl": [round(v, 4) for v in stats.channel_kl],
            "total_correlation": round(stats.total_correlation, 4), "judge_confidence": round(stats.confidence, 4)}


def score_run(run: Path, steps: list[int], n: int, batches: int, batch: int) -> list[dict[str, object]]:
    config = load_run_config(run)
    spec, nz = get_model(config.model), int(config.arch.nz)
    rows = []
    for step in steps:
        ckpt = run / "checkpoints" / f"step_{step:06d}.pt"
        if not ckpt.is_file():
            raise SystemExit(f"no checkpoint {ckpt} (train with --keep-every)")
        models = load_checkpoint(ckpt)["models"]
        for key in (k for k in ("G", "G" + EMA_SUFFIX) if k in models):
            for standing in (False, True):
                G = spec.build_generator(config.arch)
                load_state_into(G, models[key], f"{key} in {ckpt}")
                if standing:
                    standing_statistics(G, nz, batches, batch, seed=1)
                rows.append({"step": step, "generator": key, "standing_stats": standing,
                             **score(stacked_pictures(G.eval(), nz, n))})
                log.info("%s %s %s", run.name, ckpt.stem, rows[-1])
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--steps", nargs="+", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64, help="the recipe's batch size")
    args = parser.parse_args()
    result = {"samples": args.samples, "batches": args.batches, "batch": args.batch,
              "runs": {run.name: score_run(run, args.steps, args.samples, args.batches, args.batch)
                       for run in args.runs}}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
