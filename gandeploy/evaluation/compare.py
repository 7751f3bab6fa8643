"""Distribution parity across backends (``gandeploy evaluate EXPORT --compare A,B,...``): the backends on the same
seeds, each scored against the real set and against the reference backend's samples (unpaired halves).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy.errors import GanDeployError, UserInputError
from gandeploy.evaluation.evaluate import EvalConfig, EvalResult, evaluate, feature_scores
from gandeploy.evaluation.sampling import open_source
from gandeploy.evaluation.sr_eval import DISTRIBUTION, resolve_metrics
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.compare")


def kid_within_std(ref_vs_real: dict[str, Any], cand_vs_real: dict[str, Any], cand_vs_ref: dict[str, Any]) -> bool:
    """Distribution parity holds when the two backends' KIDs against the real set differ by at most the
    reference's KID std, and KID between the backends' own samples is within that std of zero."""
    std = float(ref_vs_real["kid_std"])
    return (abs(float(cand_vs_real["kid_mean"]) - float(ref_vs_real["kid_mean"])) <= std
            and abs(float(cand_vs_ref["kid_mean"])) <= max(std, float(cand_vs_ref["kid_std"])))


@dataclass
class Comparison:
    """Backends on the same seeds: each against the real set and against the reference backend's samples."""

    reference: str
    rows: list[dict[str, Any]]
    skipped: dict[str, str]
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "reference": self.reference, "backends": self.rows, "skipped": self.skipped}


def compare(export_dir: str | os.PathLike[str], backends: list[str], *, cfg: EvalConfig = EvalConfig(),
            url: str | None = None, protocol: str = "grpc") -> Comparison:
    """Distribution parity: ``backends`` (first = reference) on the seeds of ``cfg``; unavailable ones skipped."""
    if len(backends) < 2:
        raise UserInputError(f"--compare needs at least two backends (comma-separated), got {backends}.")
    results: dict[str, EvalResult] = {}
    skipped: dict[str, str] = {}
    for key in backends:
        try:
            source, run = open_source(export_dir, key, url=url, protocol=protocol)
        except GanDeployError as exc:
            skipped[key] = str(exc)
            log.warning("skipping %s: %s", key, exc)
            continue
        try:
            if DISTRIBUTION not in resolve_metrics(cfg.metrics, source.io):
                raise UserInputError("--compare puts distribution metrics side by side; for PSNR / SSIM run "
                                     "'gandeploy evaluate EXPORT --backend KEY' once per backend.")
            result = evaluate(export_dir, key, cfg=cfg, source=source, run=run)
            assert isinstance(result, EvalResult)  # noqa: S101 - distribution metrics checked above
            results[key] = result
        except GanDeployError as exc:
            skipped[key] = str(exc)
            continue
        finally:
            source.close()
    if not results:
        raise UserInputError(f"none of the backends {backends} could run: {skipped}")
    reference = next(iter(results))
    ref = results[reference]
    rows = []
    for key, res in results.items():
        row: dict[str, Any] = {"backend": key, "vs_real": {k: res.summary[k] for k in
                               ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage")}}
        if key != reference:
            vs = feature_scores(ref.fake_features, res.fake_features, cfg)
            row["vs_reference"] = vs
            row["max_abs_vs_reference"] = float(np.abs(res.fake.astype(np.float64) - ref.fake).max())
            # The same seeds make paired samples (x_i ≈ y_i), which biases the unbiased KID estimate below 0
            # (its cross term meets each pair's near-identical kernel value). Parity is judged on two
            # independent samples instead: the reference's first half of the seeds vs the candidate's second.
            half = len(ref.fake_features) // 2
            unpaired = feature_scores(ref.fake_features[:half], res.fake_features[half:], cfg)
            row["vs_reference_unpaired"] = unpaired
            row["kid_within_std"] = kid_within_std(ref.summary, res.summary, unpaired)
        rows.append(row)
    summary = {k: ref.summary[k] for k in ("n", "features", "target", "real", "seeds", "task")}
    return Comparison(reference, rows, skipped, summary)
