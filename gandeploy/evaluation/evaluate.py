"""``gandeploy evaluate``: how good a generator's *distribution* is, on any backend, and whether deployment moved it.

``evaluate`` draws ``n`` samples for seeds ``seed .. seed+n-1`` (sampling.py: the same inputs on every backend),
embeds them and the held-out real set with one feature extractor (features.py) and scores them
(distribution.py). Class-conditional models also get one row per class (class ``c`` = the seeds with
``seed mod K == c`` against the real items of class ``c``). Image-to-image models: translated held-out A vs real
held-out B.

``compare`` runs several backends on the same seeds and reports, next to each other, each one against the real
set, each one against the reference backend's samples (FID/KID between FP32 and FP16 samples, say) and the
largest pixel difference from the reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from gandeploy.errors import GanDeployError, UserInputError
from gandeploy.evaluation.distribution import KID_SUBSET_SIZE, KID_SUBSETS, score
from gandeploy.evaluation.features import get_extractor
from gandeploy.evaluation.sampling import Source, open_source
from gandeploy.models.io import IMAGE, POINTS
from gandeploy.utils.logging import get_logger

log = get_logger("evaluate")

DEFAULT_N = 10_000
MIN_PER_CLASS = 6  # below this many real items a class gets no row (k = 5 neighbours need 6 points)


@dataclass(frozen=True)
class EvalConfig:
    """What to compare against and how (``real`` None: the run's data set; ``features`` None: by data)."""

    n: int = DEFAULT_N
    seed: int = 0
    real: str | None = None
    features: str | None = None
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE
    inception_weights: str | None = None
    data_root: str | None = None
    per_class: bool = True

    def __post_init__(self) -> None:
        if self.n < 2:
            raise UserInputError(f"--n must be at least 2, got {self.n}.")
        if self.seed < 0:
            raise UserInputError(f"--seed must be >= 0, got {self.seed}.")


@dataclass
class EvalResult:
    """Scores and the samples behind them (``real`` / ``fake`` for the figure; not serialised)."""

    summary: dict[str, Any]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    real: np.ndarray | None = None
    fake: np.ndarray | None = None
    fake_features: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "per_class": self.per_class}


def default_features(output_role: str, dataset: str) -> str:
    """pixels for point data, the digits CNN for digit images, Inception for everything else."""
    if output_role == POINTS:
        return "pixels"
    return "digits" if dataset.startswith("digits") else "inception"


def real_set(dataset: str, *, translation: bool, image_size: int = 0, channels: int = 0,
             n_points: int = DEFAULT_N, data_root: str | None = None) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """(real samples, their labels or None, translation inputs or None) from the held-out split of ``dataset``.

    Point mixtures draw ``n_points`` fresh points with the data set's fixed test seed.
    """
    from pathlib import Path

    from gandeploy.data import KIND_POINTS, open_dataset

    kwargs: dict[str, Any] = {"split": "test", "augment": None,
                              "data_root": Path(data_root) if data_root is not None else None}
    if image_size:
        kwargs.update(image_size=image_size, channels=channels or None)
    ds = open_dataset(dataset, "cyclegan" if translation else "gan", **kwargs)
    if translation:
        a, b = ds.test_batch(10**9)  # every held-out picture of both domains
        return b.numpy(), None, a.numpy()
    if getattr(ds, "kind", None) == KIND_POINTS:
        return ds.sample(n_points).numpy(), None, None
    x, y = ds.test_batch(10**9)
    return x.numpy(), (y.numpy() if y is not None else None), None


def _scores(real_f: np.ndarray, fake_f: np.ndarray, cfg: EvalConfig) -> dict[str, Any]:
    s = score(real_f, fake_f, kid_subsets=cfg.kid_subsets, kid_subset_size=cfg.kid_subset_size, seed=cfg.seed)
    return s.to_json()


def evaluate(target: str | os.PathLike[str], backend: str | None = None, *, cfg: EvalConfig = EvalConfig(),
             url: str | None = None, protocol: str = "grpc", source: Source | None = None,
             run: Any = None) -> EvalResult:
    """Score the generator at ``target`` (run dir, export dir + ``backend``, or served name + ``url``)."""
    own = source is None
    if own:
        source, run = open_source(target, backend, url=url, protocol=protocol)
    assert source is not None  # noqa: S101 - set above
    try:
        return _evaluate(str(target), source, run, cfg)
    finally:
        if own:
            source.close()


def _evaluate(target: str, source: Source, run: Any, cfg: EvalConfig) -> EvalResult:
    dataset = cfg.real or (run.dataset if run is not None else None)
    if not dataset:
        raise UserInputError(f"'{target}' does not record its data set: pass --real DATASET.")
    out = source.io.outputs[0]
    translation = bool(source.io.by_role(IMAGE))
    size = int(out.shape[2]) if out.role == IMAGE and isinstance(out.shape[2], int) else 0
    channels = int(out.shape[1]) if out.role == IMAGE else 0
    if translation and run is not None:
        size, channels = int(getattr(run.arch, "image_size", 0) or 0), int(getattr(run.arch, "input_nc", 0) or 0)
    real, real_labels, inputs = real_set(dataset, translation=translation, image_size=size, channels=channels,
                                         n_points=cfg.n, data_root=cfg.data_root)
    features = cfg.features or default_features(out.role, dataset)
    extractor = get_extractor(features, inception_weights_path=cfg.inception_weights, data_root=cfg.data_root)

    labels = None
    with tqdm(total=len(inputs) if translation else cfg.n, desc=f"samples ({source.backend})", unit="sample",
              disable=None, leave=False) as bar:
        if translation:
            fake = source.translate(inputs, progress=bar)
        else:
            seeds = np.arange(cfg.seed, cfg.seed + cfg.n, dtype=np.int64)
            k = source.num_classes
            labels = seeds % k if k else None
            fake = source.sample(seeds, labels, progress=bar)
    real_f, fake_f = extractor(real, desc="real features"), extractor(fake, desc="generated features")
    summary: dict[str, Any] = {
        **_scores(real_f, fake_f, cfg), "n": int(len(fake)), "features": features, "backend": source.backend,
        "target": target, "real": f"{dataset} (held-out split)", "seeds": [cfg.seed, cfg.seed + cfg.n - 1]
        if not translation else None, "task": "translation" if translation else "sampling",
        "feature_extractor": extractor.info}
    result = EvalResult(summary, real=real, fake=fake, fake_features=fake_f)
    if cfg.per_class and labels is not None:
        if real_labels is None:
            log.warning("'%s' has no labels: no per-class figures", dataset)
        else:
            result.per_class = _per_class(real_f, real_labels, fake_f, labels, cfg, run)
    return result


def _per_class(real_f: np.ndarray, real_labels: np.ndarray, fake_f: np.ndarray, labels: np.ndarray,
               cfg: EvalConfig, run: Any) -> list[dict[str, Any]]:
    names = list(getattr(run, "class_names", None) or [])
    rows = []
    for c in tqdm(sorted(set(labels.tolist())), desc="per-class scores", unit="class", disable=None, leave=False):
        r, f = real_f[real_labels == c], fake_f[labels == c]
        if len(r) < MIN_PER_CLASS or len(f) < MIN_PER_CLASS:
            continue
        rows.append({"class": int(c), "name": names[c] if c < len(names) else str(c), **_scores(r, f, cfg)})
    return rows


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
            results[key] = evaluate(export_dir, key, cfg=cfg, source=source, run=run)
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
            vs = _scores(ref.fake_features, res.fake_features, cfg)
            row["vs_reference"] = vs
            row["max_abs_vs_reference"] = float(np.abs(res.fake.astype(np.float64) - ref.fake).max())
            row["kid_within_std"] = kid_within_std(ref.summary, res.summary, vs)
        rows.append(row)
    summary = {k: ref.summary[k] for k in ("n", "features", "target", "real", "seeds", "task")}
    return Comparison(reference, rows, skipped, summary)
