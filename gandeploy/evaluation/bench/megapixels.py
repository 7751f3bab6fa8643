"""Megapixels per second for exports with a picture input (super-resolution and other image-to-image).

``image_rows``: one picture per call at each input size (default 256x256 and 1024x1024), MP/s of the input and of
the ``scale`` x output, against the SGEMM roofline of ``bench.py``; in-process ONNX Runtime and PyTorch by
default, other runners (served, tiled: ``bench_pictures.py``) through ``openers``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, GanDeployError, UserInputError
from gandeploy.evaluation.bench.bench import _open, default_threads, time_calls
from gandeploy.evaluation.bench.roofline import Roofline, flops_per_image, measure_roofline, torch_threads
from gandeploy.evaluation.cases import test_image
from gandeploy.models.io import HW, from_uint8
from gandeploy.utils.logging import get_logger

log = get_logger("bench")

IMAGE_SIZES: tuple[HW, ...] = ((256, 256), (1024, 1024))
IN_PROCESS = ("onnxruntime", "torch")  # the default backends of the megapixel rows
FLOP_PROBE = 64  # FLOPs are counted at this side and scaled by area (convolutional generators: ∝ pixels)

# The hook for other ways to run a picture: a backend is ``label → opener``; ``opener(export_dir)`` returns a
# context manager yielding ``run(picture uint8 [H, W, C]) -> anything``, timed per call. The in-process rows
# use ``in_process_opener``; served rows (through Triton, tiling on or off) plug in the same way, with their
# tiling described in the label.
PictureRun = Callable[[np.ndarray], Any]
Opener = Callable[[Path], "contextlib.AbstractContextManager[PictureRun]"]


@dataclass
class ImageRow:
    """One backend at one input size: one picture per call; megapixels of the input and of the (scale x) output."""

    backend: str
    hw: HW
    scale: int
    latencies_ms: list[float]
    gflop: float | None = None  # per picture at this size
    roofline_gflops: float | None = None

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def input_mp_s(self) -> float:
        return self.hw[0] * self.hw[1] / 1e6 / (self.p50_ms / 1000.0) if self.p50_ms > 0 else 0.0

    @property
    def output_mp_s(self) -> float:
        return self.input_mp_s * self.scale**2

    @property
    def pct_roofline(self) -> float | None:
        if not self.gflop or not self.roofline_gflops or self.p50_ms <= 0:
            return None
        return 100.0 * self.gflop / (self.p50_ms / 1000.0) / self.roofline_gflops

    def to_json(self) -> dict[str, Any]:
        pct = self.pct_roofline
        return {"backend": self.backend, "hw": list(self.hw), "scale": self.scale, "reps": len(self.latencies_ms),
                "p50_ms": round(self.p50_ms, 3), "input_mp_s": round(self.input_mp_s, 4),
                "output_mp_s": round(self.output_mp_s, 4), "gflop": None if self.gflop is None else round(self.gflop, 3),
                "pct_roofline": None if pct is None else round(pct, 1),
                "latencies_ms": [round(v, 3) for v in self.latencies_ms]}


def in_process_opener(key: str, threads: int) -> Opener:
    """An opener for runtime ``key``: the picture mapped into the input's declared range, batch 1."""
    @contextlib.contextmanager
    def opener(export_dir: Path) -> Iterator[PictureRun]:
        from gandeploy.manifest import load_manifest

        contract = load_manifest(export_dir).contract
        image = contract.image_input
        runtime = _open(key, export_dir, load_manifest(export_dir), threads, None, "http")
        with runtime, torch_threads(threads if key == "torch" else None):
            yield lambda picture: runtime.run({image.name: from_uint8(picture[None], image.value_range)})  # type: ignore[union-attr]
    return opener


def image_rows(export_dir: str | os.PathLike[str], sizes: Sequence[HW] = IMAGE_SIZES,
               backends: Sequence[str] = IN_PROCESS, *, threads: int | None = None, warmup: int = 1, reps: int = 3,
               roofline: Roofline | bool = True, openers: Mapping[str, Opener] | None = None,
               ) -> tuple[list[ImageRow], dict[str, str], Roofline | None]:
    """Megapixels per second of one picture at each input size, per backend: (rows, skipped backends, roofline).

    Decided by the export's declared IO: it must take a picture; sizes must follow its size rule; the output is
    ``scale`` x the input. ``openers`` adds backends beyond ``backends`` (the hook above)."""
    from gandeploy.config import load_run_config
    from gandeploy.manifest import load_manifest
    from gandeploy.registry import get_model

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    io_spec = manifest.io
    image = io_spec.image_input
    if image is None:
        raise UserInputError(f"--image-sizes applies to exports with a picture input; '{manifest.name}' samples "
                             "from seeds.")
    k = io_spec.size_multiple
    bad = [f"{h}x{w}" for h, w in sizes if h % k or w % k or min(h, w) < 1]
    if bad:
        raise UserInputError(f"--image-sizes must be multiples of {k} (the size rule of '{manifest.name}'), got "
                             f"{', '.join(bad)}.")
    threads = int(threads or default_threads())
    run = load_run_config(export_dir)
    module = get_model(run.model).build_generator(run.arch).eval()
    side = -(-FLOP_PROBE // k) * k
    probe = {image.name: np.zeros((1, int(image.shape[1]), side, side), np.float32)}
    with torch_threads(threads):
        gflop_per_pixel = flops_per_image(module, probe) / 1e9 / (side * side)
    roof = roofline if isinstance(roofline, Roofline) else (measure_roofline(threads) if roofline else None)
    all_openers: dict[str, Opener] = {key: in_process_opener(key, threads) for key in backends}
    all_openers.update(openers or {})
    rows: list[ImageRow] = []
    skipped: dict[str, str] = {}
    for label, opener in all_openers.items():
        try:
            with opener(export_dir) as run_picture:
                for hw in sizes:
                    picture = test_image(0, hw, int(image.shape[1]))  # uint8 [H, W, C]
                    lat = time_calls(lambda: run_picture(picture), warmup=warmup, reps=reps)
                    row = ImageRow(label, hw, io_spec.scale, lat, gflop_per_pixel * hw[0] * hw[1],
                                   roof.gflops if roof else None)
                    rows.append(row)
                    log.info("%-17s %5dx%-5d p50 %9.1f ms  %7.3f MP/s in  %7.3f MP/s out%s", label, hw[0], hw[1],
                             row.p50_ms, row.input_mp_s, row.output_mp_s,
                             f"  {row.pct_roofline:5.1f} % roofline" if row.pct_roofline else "")
        except (BackendUnavailable, GanDeployError) as exc:
            skipped[label] = str(exc)
            log.info("%-17s skipped: %s", label, exc)
    return rows, skipped, roof


def image_rows_text(rows: Sequence[ImageRow], skipped: Mapping[str, str], roof: Roofline | None) -> str:
    """The megapixel rows as a plain table."""
    w = max([22, *(len(r.backend) for r in rows), *(len(k) for k in skipped)])
    lines = [f"{'backend':<{w}} {'input':>11} {'p50 ms':>10} {'MP/s in':>9} {'MP/s out':>9} {'% roofline':>10}"]
    for r in rows:
        pct = f"{r.pct_roofline:.1f}" if r.pct_roofline is not None else "-"
        lines.append(f"{r.backend:<{w}} {r.hw[0]:>5}x{r.hw[1]:<5} {r.p50_ms:>10.1f} {r.input_mp_s:>9.3f} "
                     f"{r.output_mp_s:>9.3f} {pct:>10}")
    lines += [f"{key:<{w}} skipped: {why}" for key, why in skipped.items()]
    if roof:
        lines.append(f"roofline: SGEMM {roof.gflops:.1f} GFLOP/s on {roof.threads} thread(s)")
    return "\n".join(lines)
