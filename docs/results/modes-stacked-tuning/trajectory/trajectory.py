"""How a stacked-digits run's mode histogram moves during training: every kept checkpoint, G and G_ema.

A study script for docs/modes.md ("What changed the KL", "12,000 steps", "Lazy R1, 13,000 steps", "Tuning seeds 2 and
3"), not part of the package. For every kept checkpoint (``checkpoints/step_*.pt``, written by ``gandeploy train
--keep-every N``; ``--steps`` picks some) of each run dir, and for each generator it holds (``G``, and ``G_ema`` when
the run kept one), it scores ``--samples`` pictures (26,000, the protocol's) exactly as ``gandeploy mode-table`` does
(``metrics.stacked_modes.stacked_stats``: modes, KL to uniform, each channel's KL, total correlation, the judge's
confidence) and adds the pixel standard deviation of the pictures (the contrast; real stacks: ``real_std``).

Two diagnoses, off by default:

* ``--standing-stats``: each generator is scored a second time with its BatchNorm statistics re-measured (BigGAN's
  "standing statistics": train mode over ``--standing-batches`` latent batches of the run's batch size, from a seed
  other than the scoring one, keeping the plain mean, ``momentum=None``); those rows have ``standing_stats: true``.
* ``--both-judges``: each row also reads every channel with the independent FID feature CNN
  (``metrics/features.py``) beside the table's judge: per judge the KL and modes, per channel each digit's share
  (``share_x10``, 1.0 is uniform) and the channel's own KL; and how often the judges agree per channel. Real training
  stacks are read the same way (``real_stacks``, drawn as ``metrics.stacked_modes.real_reference`` draws them).

    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/results/modes-stacked-tuning/trajectory/trajectory.py RUN [RUN ...] \
        --out F.json [--steps 12000 13000] [--standing-stats] [--both-judges]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gandeploy.config import load_run_config
from gandeploy.data.stacked import TRIPLE_SEED, StackedDigits, open_stacked_digits
from gandeploy.metrics.stacked_modes import N_SAMPLES, StackedStats, mode_histogram, read_channels, stacked_stats
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import EMA_SUFFIX, load_checkpoint, load_state_into
from gandeploy.training.quality import stacked_pictures

log = logging.getLogger("trajectory")


@torch.no_grad()
def standing_statistics(generator: nn.Module, nz: int, batches: int, batch: int, seed: int = 1) -> nn.Module:
    """Re-measure every BatchNorm's running mean and variance as the plain average over ``batches`` latent batches."""
    for m in generator.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    generator.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        generator(torch.randn(batch, nz, generator=gen))
    return generator.eval()


def _reading(digits: np.ndarray) -> dict[str, object]:
    """One judge's reading of digits [N, 3]: KL and modes of the triples, then each channel's shares and KL."""
    stats = StackedStats(tuple(int(v) for v in mode_histogram(digits)))  # the table's modes, KL and channel KL
    shares = [np.bincount(digits[:, c], minlength=10) / len(digits) * 10 for c in range(digits.shape[1])]
    return {"kl": round(stats.kl, 4), "modes": stats.modes_covered,
            "channels": [{"share_x10": [round(float(v), 2) for v in share], "kl": round(kl, 4)}
                         for share, kl in zip(shares, stats.channel_kl)]}


@functools.lru_cache(maxsize=1)
def _independent_judge() -> nn.Module:
    """The FID feature CNN (metrics/features.py), loaded once."""
    from gandeploy.metrics.features import digits_features

    return digits_features().model.eval()


@torch.no_grad()
def both_judges(images: torch.Tensor) -> dict[str, object]:
    """images [N, 3, S, S] in [-1, 1] read by the table's judge and the independent one, and their agreement."""
    digits = np.asarray(read_channels(images)[0])
    independent = _independent_judge()
    other = np.stack([independent(images[:, c:c + 1]).argmax(1).numpy() for c in range(3)], axis=1)
    return {"project_judge": _reading(digits), "independent_judge": _reading(other),
            "agreement": [round(float((digits[:, c] == other[:, c]).mean()), 4) for c in range(3)]}


def score_run(run: Path, n: int, steps: list[int] | None = None, standing: int = 0,
              judges: bool = False) -> list[dict[str, object]]:
    """One row per kept checkpoint and generator of ``run`` (and per standing-statistics choice), in step order."""
    config = load_run_config(run)
    spec, nz = get_model(config.model), int(config.arch.nz)
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    if steps is not None:
        ckpts = [c for c in ckpts if int(c.stem.split("_")[1]) in steps]
        if len(ckpts) != len(set(steps)):
            raise SystemExit(f"{run}: not every step of {steps} was kept (train with --keep-every)")
    rows = []
    for ckpt in ckpts:
        models = load_checkpoint(ckpt)["models"]
        for key in (k for k in ("G", "G" + EMA_SUFFIX) if k in models):
            for restat in (False, True) if standing else (False,):
                G = spec.build_generator(config.arch)
                load_state_into(G, models[key], f"{key} in {ckpt}")
                if restat:
                    standing_statistics(G, nz, standing, int((config.train or {}).get("batch_size", 64)))
                images = stacked_pictures(G.eval(), nz, n)  # the pictures the table scores
                stats = stacked_stats(images)
                rows.append({"step": int(ckpt.stem.split("_")[1]), "generator": key,
                             **({"standing_stats": restat} if standing else {}), "modes": stats.modes_covered,
                             "kl": round(stats.kl, 4), "channel_kl": [round(v, 4) for v in stats.channel_kl],
                             "total_correlation": round(stats.total_correlation, 4),
                             "judge_confidence": round(stats.confidence, 4),
                             "pixel_std": round(float(images.std()), 4), **(both_judges(images) if judges else {})})
                log.info("%s %s %s", run.name, ckpt.stem, rows[-1])
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=N_SAMPLES)
    parser.add_argument("--steps", nargs="+", type=int, help="only these kept checkpoints [default: every one]")
    parser.add_argument("--standing-stats", action="store_true", help="also score with re-measured BatchNorm stats")
    parser.add_argument("--standing-batches", type=int, default=200)
    parser.add_argument("--both-judges", action="store_true", help="also read each channel with the independent judge")
    args = parser.parse_args()
    stacks = open_stacked_digits()
    real, _ = stacks.get_batch(torch.arange(min(args.samples, len(stacks))))  # the training stacks' contrast
    out: dict[str, object] = {"samples": args.samples, "real_std": round(float(real.std()), 4)}
    if args.standing_stats:
        out["standing_batches"] = args.standing_batches
    if args.both_judges:
        reference = StackedDigits("train", 32, args.samples, TRIPLE_SEED + 7)  # as stacked_modes.real_reference
        out["real_stacks"] = both_judges(reference.get_batch(torch.arange(args.samples))[0])
    out["runs"] = {run.name: {"config": json.loads((run / "config.json").read_text())["train"],
                              "rows": score_run(run, args.samples, args.steps,
                                                args.standing_batches if args.standing_stats else 0,
                                                args.both_judges)} for run in args.runs}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
