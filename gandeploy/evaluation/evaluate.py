"""``gandeploy evaluate``: how good a generator's *distribution* is, on any backend, and whether deployment moved it.

``evaluate`` draws ``n`` samples for seeds ``seed .. seed+n-1`` (sampling.py: the same inputs on every backend),
embeds them and the held-out real set with one feature extractor (metrics/features.py) and scores them
(metrics/distribution.py). Class-conditional models also get one row per class (class ``c`` = the seeds with
``seed mod K == c`` against the real items of class ``c``; JSON ``per_class``).

Unsupervised categories (a ``categorical_code`` input and no class label, InfoGAN) get one row per *code*
(JSON ``per_code``): the evaluated samples themselves (code ``seed mod K``, uint8-delivered) are judged by the
held-out digits classifier, the Hungarian algorithm on the code × judged-digit confusion matrix maps each code
``c`` to a digit ``m(c)`` (``codes.match_codes``), and the row scores code ``c``'s samples against the real
held-out items of digit ``m(c)``: the metric keys plus ``code``, ``mapped_class``, ``name`` and
``share_judged_as_mapped``; ``code_mapping`` holds the whole mapping and its accuracy. Only when the real set
has labels and the features are ``digits`` (digit images); otherwise the log says why there are no rows.

Image-to-image models: a generator's translated held-out inputs against the real held-out pictures of the
domain it writes, the domains declared per generator (``ModelSpec.domains``; CycleGAN G_A: A → B, G_B: B → A).
The summary says which (``direction``, ``generator``). A run dir holds both generators, so ``evaluate RUN``
scores both: the summary is the first generator's direction (A → B) and ``reverse`` holds the same metric keys
for the other (B → A: translated held-out B vs real held-out A); ``generator=`` (``--generator``) picks one.
An export dir holds one generator (manifest ``generator``) and is scored in its direction on every backend.

``compare`` runs several backends on the same seeds and reports, next to each other, each one against the real
set, each one against the reference backend's samples (FID/KID between FP32 and FP16 samples, say) and the
largest pixel difference from the reference. The parity verdict (``kid_within_std``) takes KID between two
*independent* samples — the reference's first half of the seeds against the candidate's second half
(``vs_reference_unpaired``) — because samples of the same seeds are paired and bias KID below zero.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gandeploy.errors import CheckpointError, GanDeployError, UserInputError
from gandeploy.metrics.distribution import KID_SUBSET_SIZE, KID_SUBSETS, score
from gandeploy.metrics.features import get_extractor
from gandeploy.evaluation.sampling import Source, open_source, role_values
from gandeploy.evaluation.sr_eval import DISTRIBUTION, SRResult, evaluate_sr, resolve_metrics
from gandeploy.manifest import MANIFEST_FILE
from gandeploy.models.io import CATEGORICAL_CODE, CLASS_LABEL, IMAGE, POINTS
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import EMA_SUFFIX
from gandeploy.utils.logging import get_logger

log = get_logger("evaluate")

DEFAULT_N = 10_000
MIN_PER_CLASS = 6  # below this many real items a class gets no row (k = 5 neighbours need 6 points)
DOMAIN_NAMES = ("A", "B")  # the unpaired data set's (A, B) pair, as ModelSpec.domains indexes it


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
    metrics: tuple[str, ...] | None = None  # None: by the generator's IO (sr_eval.default_metrics)

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
    per_code: list[dict[str, Any]] = field(default_factory=list)
    code_mapping: dict[str, Any] | None = None
    reverse: EvalResult | None = None  # image-to-image run dirs: the other generator's direction
    reverse_skipped: str | None = None  # why a run dir's other direction was not scored
    real: np.ndarray | None = None
    fake: np.ndarray | None = None
    fake_features: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        out = {**self.summary, "per_class": self.per_class, "per_code": self.per_code}
        if self.code_mapping is not None:
            out["code_mapping"] = self.code_mapping
        if self.reverse is not None:
            out["reverse"] = self.reverse.summary
        if self.reverse_skipped:
            out["reverse_skipped"] = self.reverse_skipped
        return out


def default_features(output_role: str, dataset: str) -> str:
    """pixels for point data, the digits CNN for digit images, Inception for everything else."""
    if output_role == POINTS:
        return "pixels"
    return "digits" if dataset.startswith("digits") else "inception"


def real_set(dataset: str, *, translation: bool, image_size: int = 0, channels: int = 0,
             n_points: int = DEFAULT_N, data_root: str | None = None,
             domains: tuple[int, int] = (0, 1), family: str | None = None,
             augment: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """(real samples, their labels or None, translation inputs or None) from the held-out split of ``dataset``.

    Translation: the inputs are every held-out picture of domain ``domains[0]`` and the real samples those of
    ``domains[1]`` (indices into the (A, B) pair). Point mixtures draw ``n_points`` fresh points with the data
    set's fixed test seed. ``family``: the model family the data set is opened for (default: "cyclegan" for
    translation, "gan" otherwise); a paired set's (source, target) are the (A, B) pair. ``augment``: the run's data
    options (an aligned set's ``direction``); the held-out split is never augmented.
    """
    from gandeploy.data import KIND_POINTS, open_dataset

    kwargs: dict[str, Any] = {"split": "test", "augment": augment,
                              "data_root": Path(data_root) if data_root is not None else None}
    if image_size:
        kwargs.update(image_size=image_size, channels=channels or None)
    ds = open_dataset(dataset, family or ("cyclegan" if translation else "gan"), **kwargs)
    if translation:
        pair = ds.test_batch(10**9)  # (A, B): every held-out picture of both domains
        return pair[domains[1]].numpy(), None, pair[domains[0]].numpy()
    if getattr(ds, "kind", None) == KIND_POINTS:
        return ds.sample(n_points).numpy(), None, None
    x, y = ds.test_batch(10**9)
    return x.numpy(), (y.numpy() if y is not None else None), None


def feature_scores(real_f: np.ndarray, fake_f: np.ndarray, cfg: EvalConfig) -> dict[str, Any]:
    s = score(real_f, fake_f, kid_subsets=cfg.kid_subsets, kid_subset_size=cfg.kid_subset_size, seed=cfg.seed)
    return s.to_json()


def evaluate(target: str | os.PathLike[str], backend: str | None = None, *, cfg: EvalConfig = EvalConfig(),
             url: str | None = None, protocol: str = "grpc", source: Source | None = None,
             run: Any = None, generator: str | None = None) -> EvalResult | SRResult:
    """Score the generator at ``target`` (run dir, export dir + ``backend``, or served name + ``url``).

    ``generator``: a run dir's checkpoint key (one direction only); without it an image-to-image run dir is
    scored in both directions (``EvalResult.reverse``). Super-resolution generators (a picture in, ``scale`` > 1)
    and ``cfg.metrics`` psnr / ssim get PSNR / SSIM against bicubic instead (``sr_eval``, an ``SRResult``).
    """
    own = source is None
    if own:
        source, run = open_source(target, backend, url=url, protocol=protocol, generator=generator)
    assert source is not None  # noqa: S101 - set above
    try:
        metrics = resolve_metrics(cfg.metrics, source.io)
        if DISTRIBUTION not in metrics:
            return evaluate_sr(str(target), source, run, cfg, metrics)
        result = _evaluate(str(target), source, run, cfg)
    finally:
        if own:
            source.close()
    is_run_dir = Path(target).is_dir() and not (Path(target) / MANIFEST_FILE).is_file()
    if own and generator is None and is_run_dir and source.io.by_role(IMAGE):  # image-to-image: both directions
        result.reverse, result.reverse_skipped = _other_direction(str(target), source, run, cfg)
    return result


def data_options(run: Any) -> dict[str, Any] | None:
    """The data options the run trained with (its family's ``data_options``: a pix2pix run's ``direction``), so
    held-out pairs are read the way training read them; None without a recorded training config."""
    from gandeploy.training.api import task_class

    if run is None or not isinstance(getattr(run, "train", None), dict):
        return None
    task = task_class(get_model(run.model))
    try:
        return task.data_options(task.parse_options(run.train.get("options") or {}))
    except GanDeployError:
        return None


def data_family(run: Any, dataset: str) -> str | None:
    """The family a data set is opened for: the run's model's, else the data set's only one (None: default)."""
    from gandeploy.data import DATASETS

    if run is not None:
        return get_model(run.model).family
    spec = DATASETS.get(dataset)
    return spec.families[0] if spec is not None and len(spec.families) == 1 else None


def generator_domains(run: Any, generator: str | None) -> tuple[int, int]:
    """(input, output) domain of the generator a source runs, from its family's ``ModelSpec.domains``
    (a moving average ``<key>_ema`` translates like ``<key>``); (0, 1) = A → B when nothing says otherwise."""
    if run is None or generator is None:
        return (0, 1)
    spec = get_model(run.model)
    return spec.generator_domains(_base_key(spec, generator))


def _base_key(spec: Any, key: str) -> str:
    """The generator key ``key`` is, or averages (``G_B_ema`` → ``G_B``); the first one for a key the family does
    not declare (an old export's plain ``G``)."""
    base = key[: -len(EMA_SUFFIX)] if key.endswith(EMA_SUFFIX) else key
    return base if base in spec.generator_keys else spec.generator_keys[0]


def direction_name(domains: tuple[int, int]) -> str:
    """'A→B' for domains (0, 1)."""
    return f"{DOMAIN_NAMES[domains[0]]}→{DOMAIN_NAMES[domains[1]]}"


def direction_label(domains: tuple[int, int]) -> str:
    """'A→B (translated held-out A vs real held-out B)' for domains (0, 1)."""
    a, b = DOMAIN_NAMES[domains[0]], DOMAIN_NAMES[domains[1]]
    return f"{direction_name(domains)} (translated held-out {a} vs real held-out {b})"


def _other_direction(target: str, source: Source, run: Any, cfg: EvalConfig) -> tuple[EvalResult | None, str | None]:
    """A run dir's generator for the reverse of ``source``'s direction, scored; or (None, why not)."""
    spec = get_model(run.model)
    main = _base_key(spec, str(source.generator))
    d_in, d_out = spec.generator_domains(main)
    others = [k for k in spec.generator_keys if spec.generator_domains(k) == (d_out, d_in)]
    if not others:
        why = f"{spec.name} declares no generator for {direction_name((d_out, d_in))}"
        log.info("one direction only: %s", why)
        return None, why
    keys = [others[0] + EMA_SUFFIX, others[0]] if source.generator != main else [others[0]]
    why = ""
    for key in keys:  # the other's moving average when the summary ran one, else the raw generator
        try:
            other, _ = open_source(target, source.backend, generator=key)
        except CheckpointError as exc:
            why = str(exc)
            continue
        try:
            return _evaluate(target, other, run, cfg), None
        finally:
            other.close()
    log.warning("no %s figures: %s", direction_name((d_out, d_in)), why)
    return None, why


def _evaluate(target: str, source: Source, run: Any, cfg: EvalConfig) -> EvalResult:
    dataset = cfg.real or (run.dataset if run is not None else None) or source.dataset
    if not dataset:
        older = " (its repository was built before 'gandeploy repo' recorded it: rebuild it, or" \
            if source.served_name else " ("
        raise UserInputError(f"'{target}' does not record its data set{older} pass --real DATASET).")
    out = source.io.outputs[0]
    translation = bool(source.io.by_role(IMAGE))
    size = int(out.shape[2]) if out.role == IMAGE and isinstance(out.shape[2], int) else 0
    channels = int(out.shape[1]) if out.role == IMAGE else 0
    domains = generator_domains(run, source.generator) if translation else (0, 1)
    if translation and run is not None:
        size, channels = int(getattr(run.arch, "image_size", 0) or 0), int(getattr(run.arch, "input_nc", 0) or 0)
    family = data_family(run, dataset)
    real, real_labels, inputs = real_set(dataset, translation=translation, image_size=size, channels=channels,
                                         n_points=cfg.n, data_root=cfg.data_root, domains=domains, family=family,
                                         augment=data_options(run))
    features = cfg.features or default_features(out.role, dataset)
    extractor = get_extractor(features, inception_weights_path=cfg.inception_weights, data_root=cfg.data_root)

    labels = codes = None
    with tqdm(total=len(inputs) if translation else cfg.n, desc=f"samples ({source.backend})", unit="sample",
              disable=None, leave=False) as bar:
        if translation:
            fake = source.translate(inputs, progress=bar)
        else:
            seeds = np.arange(cfg.seed, cfg.seed + cfg.n, dtype=np.int64)
            labels = role_values(source.io, seeds, CLASS_LABEL)  # the seed map's fill: seed mod K
            codes = role_values(source.io, seeds, CATEGORICAL_CODE) if labels is None else None
            fake = source.sample(seeds, labels, progress=bar)
    real_f, fake_f = extractor(real, desc="real features"), extractor(fake, desc="generated features")
    summary: dict[str, Any] = {
        **feature_scores(real_f, fake_f, cfg), "n": int(len(fake)), "features": features, "backend": source.backend,
        "target": target, "real": f"{dataset} (held-out split)", "seeds": [cfg.seed, cfg.seed + cfg.n - 1]
        if not translation else None, "task": "translation" if translation else "sampling",
        "generator": source.generator, "feature_extractor": extractor.info}
    if translation:
        summary["direction"] = direction_label(domains)
        from gandeploy.metrics.paired import paired_summary

        paired = paired_summary(dataset, family, fake, image_size=size, channels=channels, data_root=cfg.data_root,
                                augment=data_options(run))
        if paired is not None:  # the set's declared measures against its known targets (pix2pix digits)
            summary["paired"] = paired
    result = EvalResult(summary, real=real, fake=fake, fake_features=fake_f)
    if cfg.per_class and labels is not None:
        if real_labels is None:
            log.warning("'%s' has no labels: no per-class figures", dataset)
        else:
            result.per_class = _per_class(real_f, real_labels, fake_f, labels, cfg, run)
    if cfg.per_class and codes is not None:
        if real_labels is None:
            log.warning("'%s' has no labels: no per-code rows (a code is matched to a labelled class)", dataset)
        elif features != "digits":
            log.warning("no per-code rows: the code → digit mapping needs the digits judge on digit images "
                        "(features '%s'; pass --features digits)", features)
        else:
            k = int(source.io.by_role(CATEGORICAL_CODE)[0].classes)
            result.per_code, result.code_mapping = _per_code(real_f, real_labels, fake, fake_f, codes, k, cfg, run)
    return result


def _per_class(real_f: np.ndarray, real_labels: np.ndarray, fake_f: np.ndarray, labels: np.ndarray,
               cfg: EvalConfig, run: Any) -> list[dict[str, Any]]:
    names = list(getattr(run, "class_names", None) or [])
    rows = []
    for c in tqdm(sorted(set(labels.tolist())), desc="per-class scores", unit="class", disable=None, leave=False):
        r, f = real_f[real_labels == c], fake_f[labels == c]
        if len(r) < MIN_PER_CLASS or len(f) < MIN_PER_CLASS:
            continue
        rows.append({"class": int(c), "name": names[c] if c < len(names) else str(c), **feature_scores(r, f, cfg)})
    return rows


def _per_code(real_f: np.ndarray, real_labels: np.ndarray, fake: np.ndarray, fake_f: np.ndarray, codes: np.ndarray,
              k: int, cfg: EvalConfig, run: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per categorical code c: its samples vs the real items of the digit it maps to (module docstring)."""
    import torch

    from gandeploy.metrics.classifier import classify_digits, digits_classifier
    from gandeploy.metrics.codes import match_codes

    judged, _ = classify_digits(torch.from_numpy(np.ascontiguousarray(fake, dtype=np.float32)))  # [N]
    mapping, confusion = match_codes(codes, judged.numpy(), k)
    names = list(getattr(run, "class_names", None) or [])
    rows = []
    for c in tqdm(range(k), desc="per-code scores", unit="code", disable=None, leave=False):
        m = mapping[c]
        f = fake_f[codes == c]
        if m < 0:
            log.info("code %d maps to no digit (more categories than digits): no row", c)
            continue
        r = real_f[real_labels == m]
        if len(r) < MIN_PER_CLASS or len(f) < MIN_PER_CLASS:
            log.info("code %d: %d samples, %d real items of digit %d (< %d): no row", c, len(f), len(r), m,
                     MIN_PER_CLASS)
            continue
        rows.append({"code": c, "mapped_class": m, "name": names[m] if m < len(names) else str(m),
                     "share_judged_as_mapped": float(confusion[c, m]) / len(f), **feature_scores(r, f, cfg)})
    hits = sum(int(confusion[c, m]) for c, m in enumerate(mapping) if m >= 0)
    info = {"mapping": list(mapping), "accuracy": hits / float(len(codes)), "judge": "digits classifier",
            "judge_held_out_accuracy": digits_classifier(int(fake.shape[-1])).held_out_accuracy}
    return rows, info
