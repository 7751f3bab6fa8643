"""The NGC Triton container a repository targets: its release table, the plan-version guard, size limits.

A TensorRT plan loads only on the TensorRT version that built it (same major.minor.patch; plans are not built
version-compatible here). ``gandeploy repo --flavour ngc --triton-release YY.MM`` therefore serves ``model.plan``
(``model.int8.plan`` with ``--precision int8``) only when the export's recorded TensorRT version
(``manifest["tensorrt"]["version"]``, ``manifest["tensorrt_int8"]["version"]``) is the one inside that container,
and otherwise falls back to ``onnxruntime_onnx`` with a warning that says what to rebuild. ``DEFAULT_RELEASE`` is
the release the deployment files pin (``serving/Dockerfile``, ``docker-compose.yml``, ``k8s/*.yaml``); the
``tensorrt`` pip extra pins the same TensorRT (a test keeps all of them in step). To move: add the release's row
below (NGC "Triton Inference Server Container Versions" table), change ``DEFAULT_RELEASE``, the image tags in
``serving/`` and the extra's pin together.

Also here: the image-to-image pipeline's per-axis size limits derived from the TensorRT profile (so padded
pictures never leave it) and the /dev/shm a python-backend deployment needs for its largest batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gandeploy.errors import UserInputError, unknown_choice
from gandeploy.formats import get_format
from gandeploy.models.io import HEIGHT, IMAGE, WIDTH, TensorSpec
from gandeploy.utils.logging import get_logger

log = get_logger("serving.ngc")


@dataclass(frozen=True)
class Release:
    """One NGC ``nvcr.io/nvidia/tritonserver:<release>-py3`` image and what it carries."""

    release: str  # "24.10"
    triton: str  # server version, "2.51.0"
    tensorrt: str  # TensorRT inside the container, "10.5.0.18"
    cuda: str

    @property
    def image(self) -> str:
        return f"nvcr.io/nvidia/tritonserver:{self.release}-py3"


# From NVIDIA's Triton release notes ("Triton Inference Server Container Versions"). TensorRT 10.x only:
# gandeploy builds strongly typed networks, which TensorRT 8.x/9.x do not have.
RELEASES: dict[str, Release] = {r.release: r for r in (
    Release("24.05", "2.46.0", "10.0.1.6", "12.4.1"),
    Release("24.06", "2.47.0", "10.1.0.27", "12.5.0"),
    Release("24.07", "2.48.0", "10.2.0.19", "12.5.1"),
    Release("24.08", "2.49.0", "10.3.0.26", "12.6.0"),
    Release("24.09", "2.50.0", "10.4.0.26", "12.6.1"),
    Release("24.10", "2.51.0", "10.5.0.18", "12.6.2"),
    Release("24.11", "2.52.0", "10.6.0.26", "12.6.3"),
    Release("24.12", "2.53.0", "10.7.0.23", "12.6.3"),
    Release("25.01", "2.54.0", "10.8.0.43", "12.8.0"),
)}
DEFAULT_RELEASE = "24.10"  # Triton 2.51, the release of the tritonclient / nvidia-pytriton pins


def get_release(release: str | None) -> Release:
    """The table row for ``--triton-release`` (``None``: the default); unknown releases list the choices."""
    key = DEFAULT_RELEASE if release is None else str(release).strip()
    if key not in RELEASES:
        if not re.fullmatch(r"\d\d\.\d\d", key):
            raise UserInputError(f"--triton-release must look like 24.10 (an NGC release), got '{release}'.")
        raise unknown_choice("Triton release", key, RELEASES, flag="--triton-release")
    return RELEASES[key]


def same_plan_version(built: str, target: str) -> bool:
    """Whether a plan built by TensorRT ``built`` loads on TensorRT ``target`` (same major.minor.patch)."""
    def key(v: str) -> tuple[str, ...]:
        return tuple(str(v).split(".")[:3])

    return bool(built) and key(built) == key(target)


@dataclass(frozen=True)
class PlanChoice:
    """Whether a TensorRT engine of the export (``plan``) is served in the target container, and why not."""

    use_plan: bool
    reason: str
    plan: str = "model.plan"
    has_plan: bool = True  # False: the export holds no such engine (nothing to warn about)


def plan_choice(manifest: Mapping[str, Any], release: Release, key: str = "tensorrt") -> PlanChoice:
    """Serve the export's engine of format ``key`` (``tensorrt``: model.plan, ``tensorrt-int8``:
    model.int8.plan) only when the TensorRT version its manifest block recorded is the container's."""
    fmt = get_format(key)
    plan = str(fmt.file)
    if plan not in manifest.get("files", {}):
        return PlanChoice(False, f"the export has no {plan}", plan, False)
    built = str((manifest.get(str(fmt.record)) or {}).get("version") or "")
    if not built:
        return PlanChoice(False, f"the export's manifest does not record which TensorRT built {plan}; "
                                 "re-run 'gandeploy export --trt'", plan)
    if not same_plan_version(built, release.tensorrt):
        return PlanChoice(False, f"{plan} was built by TensorRT {built} but the NGC {release.release} "
                                 f"container runs TensorRT {release.tensorrt}; rebuild it with "
                                 f"'pip install tensorrt=={release.tensorrt.rsplit('.', 1)[0]}' + 'gandeploy "
                                 f"export --trt', or pass the --triton-release whose TensorRT is {built}", plan)
    return PlanChoice(True, f"TensorRT {built} = NGC {release.release}", plan)


def warn_fallback(export_name: str, choice: PlanChoice, onnx_file: str = "model.onnx") -> None:
    """One warning when an export has a plan that the target container cannot load."""
    if choice.has_plan and not choice.use_plan:
        log.warning("%s: serving %s on onnxruntime_onnx instead of %s: %s.", export_name, onnx_file, choice.plan,
                    choice.reason)


# --- image-to-image limits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SideLimits:
    """Per-axis bounds on the padded picture sent to the generator: the TensorRT profile of the image input,
    else the sizes the export checked."""

    min_height: int
    min_width: int
    max_height: int  # 0: unbounded
    max_width: int


def _image_input(inputs: tuple[TensorSpec, ...]) -> TensorSpec | None:
    return next((t for t in inputs if t.role == IMAGE), None)


def pipeline_limits(manifest: Mapping[str, Any], inputs: tuple[TensorSpec, ...]) -> SideLimits:
    """Limits from the TensorRT profile of the image input (else the export's checked sizes), per axis."""
    image = _image_input(inputs)
    lo: tuple[int, int] = (1, 1)
    hi: tuple[int, int] = (0, 0)
    profile = ((manifest.get("tensorrt") or {}).get("profile") or {}).get(image.name) if image else None
    sizes = manifest.get("image_sizes") or {}
    if profile:  # [[N, C, H, W] min, opt, max]
        lo, hi = (int(profile[0][2]), int(profile[0][3])), (int(profile[2][2]), int(profile[2][3]))
    elif sizes.get("max"):
        lo, hi = (int(sizes["min"][0]), int(sizes["min"][1])), (int(sizes["max"][0]), int(sizes["max"][1]))
    return SideLimits(max(1, lo[0]), max(1, lo[1]), hi[0], hi[1])


# --- /dev/shm ------------------------------------------------------------------------------------------------

SHM_MARGIN = 2.0  # python-backend requests and responses can both sit in the region, plus Triton's pool


def shm_bytes(manifest: Mapping[str, Any], instances: int = 1) -> int:
    """Shared memory the python-backend models need for the largest batch: (input + output) bytes of the
    generator at the max batch and max size (a tile is never larger), outputs at their ``scale``, per instance,
    with ``SHM_MARGIN``."""
    max_batch = int(manifest.get("max_batch") or 64)
    hw = (manifest.get("image_sizes") or {}).get("max") or (1, 1)

    def nbytes(spec: Mapping[str, Any]) -> int:
        n = max_batch
        scale = int(spec.get("scale", 1))  # an image output: scale x the input's H and W ("H*4" in the shape)
        for d in spec["shape"][1:]:  # [N, C, H, W] / [N, nz] / [N]
            if isinstance(d, str):
                n *= scale * (int(hw[0]) if d.startswith(HEIGHT) else int(hw[1]) if d.startswith(WIDTH) else 1)
            else:
                n *= int(d)
        return n * (8 if spec.get("dtype") == "int64" else 4)

    total = sum(nbytes(t) for t in manifest.get("inputs", [])) + sum(nbytes(t) for t in manifest.get("outputs", []))
    return int(total * SHM_MARGIN * max(1, instances))
