"""How a stacked-digits run's mode histogram moves during training: every kept checkpoint, G and G_ema.

A study script for docs/modes.md ("What changed the KL", "12,000 steps", "Lazy R1, 13,000 steps"), not part of the
package. For every kept checkpoint (``checkpoints/step_*.pt``, written by ``gandeploy train --keep-every N``) of each
run dir, and for each generator it holds (``G``, and ``G_ema`` when the run kept one), it scores ``--samples``
pictures (26,000, the protocol's) exactly as ``gandeploy mode-table`` does (``metrics.stacked_modes.stacked_stats``:
modes, KL to uniform, each channel's KL, total correlation, the judge's confidence) and adds the pixel standard
deviation of the pictures (the contrast; real stacks: ``real_std``).

    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/results/modes-stacked-tuning/trajectory/trajectory.py RUN [RUN ...] \
        --out F.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from gandeploy.config import load_run_config
from gandeploy.data.stacked import open_stacked_digits
from gandeploy.metrics.stacked_modes import N_SAMPLES, stacked_stats
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import EMA_SUFFIX, load_checkpoint, load_state_into
from gandeploy.training.quality import stacked_pictures

log = logging.getLogger("trajectory")


def score_run(run: Path, n: int) -> list[dict[str, object]]:
    """One row per kept checkpoint and generator of ``run``, in step order."""
    config = load_run_config(run)
    spec = get_model(config.model)
    rows = []
    for ckpt in sorted((run / "checkpoints").glob("step_*.pt")):
        models = load_checkpoint(ckpt)["models"]
        for key in (k for k in ("G", "G" + EMA_SUFFIX) if k in models):
            G = spec.build_generator(config.arch)
            load_state_into(G, models[key], f"{key} in {ckpt}")
            images = stacked_pictures(G.eval(), int(config.arch.nz), n)  # the pictures the table scores
            stats = stacked_stats(images)
            rows.append({"step": int(ckpt.stem.split("_")[1]), "generator": key, "modes": stats.modes_covered,
                         "kl": round(stats.kl, 4), "channel_kl": [round(v, 4) for v in stats.channel_kl],
                         "total_correlation": round(stats.total_correlation, 4),
                         "judge_confidence": round(stats.confidence, 4), "pixel_std": round(float(images.std()), 4)})
            log.info("%s %s %s", run.name, ckpt.stem, rows[-1])
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    args = parser.parse_args()
    stacks = open_stacked_digits()
    real, _ = stacks.get_batch(torch.arange(min(args.samples, len(stacks))))  # the training stacks' contrast
    out = {"samples": args.samples, "real_std": round(float(real.std()), 4),
           "runs": {run.name: {"config": json.loads((run / "config.json").read_text())["train"],
                               "rows": score_run(run, args.samples)} for run in args.runs}}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
