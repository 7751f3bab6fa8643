"""How an InfoGAN run's code mapping moves during training, and whether a label-free score follows it.

A study script for README.md here ("Fourth round"), not part of the package. For every kept checkpoint
(``checkpoints/step_*.pt``, written by ``gandeploy train --keep-every N``; ``latest.pt`` where a run kept none) of
each run dir it writes:

- both judges' code mapping of that checkpoint's generator (``evaluation/studies/quality_judges.code_mapping``,
  the measure ``gandeploy quality-table`` reports; these use the digit labels, through the judges);
- label-free scores of the checkpoint's Q head on the real digits (no labels): ``I`` = H[mean_x Q(c|x)] −
  mean_x H[Q(c|x)], the mutual information between a real picture and the category Q reads in it (nats; ln 10 =
  2.303 at most), with its two terms ``H_marg`` (every category used) and ``H_cond`` (each picture read
  confidently). ``cluster_acc`` is Q's categories scored as a clustering of the real digits against their labels
  (analysis only).

    OMP_NUM_THREADS=1 PYTHONPATH=. python docs/results/quality/tuning-infogan/trajectory.py RUN [RUN ...] --out F.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from gandeploy.config import load_run_config
from gandeploy.data.digits import load_split
from gandeploy.evaluation.studies.quality_judges import code_mapping
from gandeploy.metrics.codes import match_codes
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import load_checkpoint, load_state_into
from gandeploy.training.infogan import q_entropies

log = logging.getLogger("trajectory")


@torch.no_grad()
def q_scores(D: torch.nn.Module, n_cat: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Label-free scores of D's Q head on the real digits x [N, 1, S, S] (and Q's clustering accuracy against
    their labels y [N], for analysis)."""
    _, cat_logits, _ = D(x, with_q=True)  # [N, n_cat]
    h_cond, h_marg = (float(h) for h in q_entropies(cat_logits))  # the terms of --lambda-real
    mapping, confusion = match_codes(cat_logits.argmax(dim=1).numpy(), y.numpy(), n_cat)
    matched = sum(int(confusion[k, d]) for k, d in enumerate(mapping) if d >= 0)
    return {"I": round(h_marg - h_cond, 4), "H_marg": round(h_marg, 4), "H_cond": round(h_cond, 4),
            "cluster_acc": round(matched / len(y), 4)}


def score_run(run: Path) -> list[dict[str, object]]:
    """One row per kept checkpoint of ``run``, in step order."""
    config = load_run_config(run)
    spec, arch = get_model(config.model), config.arch
    x, y = load_split("train", arch.image_size)  # the real training digits, once per run
    rows = []
    kept = sorted((run / "checkpoints").glob("step_*.pt")) or [run / "checkpoints" / "latest.pt"]
    for ckpt in kept:
        loaded = load_checkpoint(ckpt)
        G, D = spec.build_generator(arch), spec.build_discriminator(arch)
        load_state_into(G, loaded["models"]["G"], f"G in {ckpt}")
        load_state_into(D, loaded["models"]["D"], f"D in {ckpt}")
        D.eval()
        judged = code_mapping(G, spec.io(arch), seed=0)
        rows.append({"run": run.name, "step": int(loaded["step"]),
                     "independent_judge": judged["independent_judge"], "project_judge": judged["project_judge"],
                     **q_scores(D, arch.n_cat, x, y)})
        log.info("%s", rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = [row for run in args.runs for row in score_run(run)]
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    tmp.replace(args.out)
    log.info("wrote %s (%d checkpoints)", args.out, len(rows))


if __name__ == "__main__":
    main()
