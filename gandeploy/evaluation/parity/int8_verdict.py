"""The INT8 acceptance test: an INT8 generator is judged against its FP32 model by what matters, chosen by IO.

* **Sampling generators** (no picture input) by their *distribution*, the test ``evaluate --compare`` uses for
  parity (compare.kid_within_std): ``n`` fresh seeds (``JUDGE_FIRST_SEED`` .., never the calibration seeds)
  through both models, embedded with the features ``evaluate`` uses for the run's data set (digits CNN for
  digits, pixels for point sets, Inception otherwise — pixels, said so in the figures, where the Inception
  weights are absent). KID is taken between two *independent* samples, FP32's first half of the seeds against
  INT8's second half (paired samples bias KID below zero), and beside it the control: FP32's first half against
  FP32's own second half, the same statistic with nothing quantized. The model passes when INT8 moves that KID
  by at most its std (the larger of the two stds over KID's subsets). Testing the *shift* rather than the raw
  value against zero matters: an unbiased KID of two samples of one distribution still lands outside one std
  about a third of the time, which would refuse good models at random; on the same seeds the control cancels
  that sampling noise and leaves what quantization changed. FID of the same pairs and its delta over the
  control are reported (where the features have ≤ ``FID_MAX_DIM`` dims), and so is the paired per-pixel error
  — for information only.
* **Picture-input generators** (image-to-image, super-resolution) by PSNR of the INT8 output against FP32 on
  deterministic test pictures, both mapped to uint8 in the output's declared value range: pass at
  ≥ ``PSNR_MIN_DB`` dB on [0, 255] (30 dB = RMSE 8.1 levels: below it INT8's banding and blotches are visible
  next to the FP32 picture; FP16 exports sit above 45 dB), at ``JUDGE_HW`` kept inside the export's sizes.

A judge takes the INT8 ONNX file, or a function running one batch on another runtime of the same INT8 model (the
export's TensorRT INT8 engine is accepted by the same judge, export/tensorrt_builds.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import GanDeployError
from gandeploy.metrics.distribution import fid, kid
from gandeploy.evaluation.evaluate import default_features
from gandeploy.metrics.features import get_extractor
from gandeploy.export.onnx2int8 import Candidate, Int8Verdict, Judge
from gandeploy.models.io import GeneratorIO, example_inputs, from_uint8, to_uint8
from gandeploy.utils.logging import get_logger

log = get_logger("int8")

JUDGE_FIRST_SEED = 100_000  # judged seeds start here: never the calibration seeds 0 .. N-1
DEFAULT_N = 512
PSNR_MIN_DB = 30.0
FID_MAX_DIM = 2048  # FID needs a d x d matrix square root: not for raw pixels of a picture
JUDGE_HW = (64, 64)  # test pictures for picture-input generators (rounded to the size rule)
BATCH = 64


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(sess: Any, feeds: Sequence[dict[str, np.ndarray]], output: str) -> np.ndarray:
    return np.concatenate([sess.run([output], f)[0] for f in feeds])


def _candidate(candidate: Candidate, feeds: Sequence[dict[str, np.ndarray]], output: str) -> np.ndarray:
    """The INT8 candidate's outputs on every batch: an ONNX file on ONNX Runtime CPU, or a function running one
    batch (the TensorRT engine of the accepted model, export/tensorrt_builds.py)."""
    if isinstance(candidate, (str, Path)):
        return _run(_session(Path(candidate)), feeds, output)
    return np.concatenate([np.asarray(candidate(f), dtype=np.float32) for f in feeds])


def psnr(ref_u8: np.ndarray, got_u8: np.ndarray) -> float:
    """PSNR in dB of two uint8 pictures (inf when equal)."""
    mse = float(np.mean((ref_u8.astype(np.float64) - got_u8.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def _features(io: GeneratorIO, dataset: str | None, data_root: str | None) -> tuple[Any, str]:
    """The data set's evaluate features, or pixels (with a note) where Inception cannot load here."""
    name = default_features(io.outputs[0].role, dataset or "")
    try:
        return get_extractor(name, data_root=data_root), name
    except GanDeployError as exc:
        log.info("INT8 verdict on pixel features: %s", exc)
        return get_extractor("pixels"), f"pixels ({name} features unavailable here)"


def judge_for(fp32_path: Path, io: GeneratorIO, contract: ServedContract, dataset: str | None = None, *,
              n: int = DEFAULT_N, data_root: str | None = None) -> Judge:
    """A judge of INT8 models of the FP32 model at ``fp32_path`` (module docstring), decided by ``io``."""
    output = io.output_names[0]
    ref = _session(fp32_path)
    if io.image_input is not None:
        return _picture_judge(ref, io, output, judge_hw(contract))
    seeds = np.arange(JUDGE_FIRST_SEED, JUDGE_FIRST_SEED + max(4, n), dtype=np.int64)
    feeds = [contract.generator_feeds(seeds[i:i + BATCH]) for i in range(0, len(seeds), BATCH)]
    ref_out = _run(ref, feeds, output)
    extractor, features = _features(io, dataset, data_root)
    ref_f = extractor(ref_out, desc="FP32 features")
    half = len(ref_f) // 2
    control_kid, control_std, _ = kid(ref_f[:half], ref_f[half:])
    small = ref_f.shape[1] <= FID_MAX_DIM
    control_fid = fid(ref_f[:half], ref_f[half:]) if small else None

    def judge(candidate: Candidate) -> Int8Verdict:
        out = _candidate(candidate, feeds, output)
        if not np.isfinite(out).all():
            return Int8Verdict(False, "distribution", {"features": features}, "INT8 output is not finite")
        f = extractor(out, desc="INT8 features")
        k_mean, k_std, size = kid(ref_f[:half], f[half:])
        bound = max(k_std, control_std)
        fid_int8 = fid(ref_f[:half], f[half:]) if small else None
        figures = {"features": features, "n": int(len(seeds)), "kid_unpaired": k_mean, "kid_unpaired_std": k_std,
                   "kid_control": control_kid, "kid_control_std": control_std, "kid_subset_size": size,
                   "fid_unpaired": fid_int8, "fid_control": control_fid,
                   "fid_delta": None if fid_int8 is None else fid_int8 - control_fid,  # type: ignore[operator]
                   "max_abs_paired": float(np.abs(out - ref_out).max()),
                   "mean_abs_paired": float(np.abs(out - ref_out).mean())}
        figures["kid_shift"] = k_mean - control_kid
        passed = bool(abs(k_mean - control_kid) <= bound)
        reason = None if passed else (f"INT8 moves the unpaired KID vs FP32 by {k_mean - control_kid:.3g} "
                                      f"({control_kid:.3g} → {k_mean:.3g}), beyond its std {bound:.3g} "
                                      f"({features} features, {len(seeds)} seeds)")
        return Int8Verdict(passed, "distribution", figures, reason)

    return judge



def judge_for_run(fp32_path: Path, io: GeneratorIO, contract: ServedContract, run: Any) -> Judge:
    """``judge_for`` in the shape ``export_run(int8_judge=...)`` calls it: the run config names the data set."""
    return judge_for(fp32_path, io, contract, run.dataset)


def test_pictures(io: GeneratorIO, count: int = 4, hw: tuple[int, int] = JUDGE_HW) -> list[dict[str, np.ndarray]]:
    """Deterministic photo-like pictures (``cases.test_image``) as generator feeds, one picture each."""
    from gandeploy.evaluation.cases import test_image

    image = io.image_input
    assert image is not None  # noqa: S101 - picture judges only
    k = io.size_multiple
    size = (-(-hw[0] // k) * k, -(-hw[1] // k) * k)
    feeds = []
    for s in range(count):
        feed = example_inputs(io, 1, image_hw=size)
        feed[image.name] = from_uint8(test_image(s, size, int(image.shape[1]))[None], image.value_range)
        feeds.append(feed)
    return feeds


def judge_hw(contract: ServedContract) -> tuple[int, int]:
    """``JUDGE_HW`` kept inside the export's checked sizes (the TensorRT profile's min..max), per axis."""
    sizes = contract.image_sizes or {}
    if not sizes:
        return JUDGE_HW
    lo, hi = sizes["min"], sizes["max"]
    return min(max(JUDGE_HW[0], lo[0]), hi[0]), min(max(JUDGE_HW[1], lo[1]), hi[1])


def _picture_judge(ref: Any, io: GeneratorIO, output: str, hw: tuple[int, int] = JUDGE_HW) -> Judge:
    feeds = test_pictures(io, hw=hw)
    value_range = io.outputs[0].value_range
    ref_u8 = to_uint8(_run(ref, feeds, output), value_range)

    def judge(candidate: Candidate) -> Int8Verdict:
        out = _candidate(candidate, feeds, output)
        if not np.isfinite(out).all():
            return Int8Verdict(False, "psnr", {}, "INT8 output is not finite")
        got = to_uint8(out, value_range)
        db = psnr(ref_u8, got)
        figures = {"psnr_db": None if not np.isfinite(db) else round(db, 2), "psnr_min_db": PSNR_MIN_DB,
                   "pictures": len(feeds), "max_levels": int(np.abs(got.astype(int) - ref_u8).max())}
        passed = bool(db >= PSNR_MIN_DB)
        reason = None if passed else f"PSNR vs FP32 {db:.1f} dB < {PSNR_MIN_DB:g} dB on {len(feeds)} test pictures"
        return Int8Verdict(passed, "psnr", figures, reason)

    return judge
