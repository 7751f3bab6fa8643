"""The FP32 check bounds each case by its own noise floor (PyTorch FP32 vs float64): an ill-conditioned case that
any two correct FP32 implementations disagree on passes, a real error (a bias) is still refused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gandeploy.config import load_run_config
from gandeploy.diffs import Diff
from gandeploy.errors import ExportError
from gandeploy.evaluation.parity.parity import run_parity
from gandeploy.export import pipeline, validate
from gandeploy.export.pipeline import export_run
from gandeploy.runtimes.base import Runtime
from gandeploy.runtimes.onnxruntime_rt import OnnxRuntimeRuntime
from gandeploy.runtimes.torch_rt import TorchRuntime
from gandeploy.tolerances import FLOOR_FACTOR, TOLERANCES, tolerance_for

from export_helpers import make_run_dir

FP32 = TOLERANCES[("fp32", "float")]


def ill_conditioned_cyclegan(path: Path) -> Path:
    """A tiny CycleGAN whose first residual conv outputs 1 + 1e-4·(signal) per channel: its InstanceNorm divides
    FP32 rounding of 1.0 (~6e-8) by a spread of ~1e-4, at every picture size."""
    run = make_run_dir(path, "cyclegan", seed=2)
    checkpoint = run / "checkpoints" / "latest.pt"
    state = torch.load(checkpoint, weights_only=False)
    weights = state["models"]["G_A"]
    weights["model.10.conv_block.1.weight"] *= 1e-4
    weights["model.10.conv_block.1.bias"].fill_(1.0)
    torch.save(state, checkpoint)
    return run


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ill_conditioned_cyclegan(tmp_path_factory.mktemp("floor") / "runs" / "cyclegan-ill")


def test_an_ill_conditioned_case_passes_within_its_recorded_floor(planted: Path, tmp_path: Path) -> None:
    """ONNX Runtime differs from PyTorch by more than 1e-4 (the old bound refused this export), within 4x the
    case's floor; every row records its floor and the bound it gave."""
    manifest = export_run(planted, tmp_path / "export", max_batch=4).manifest
    entry = manifest["parity"]["onnxruntime"]
    assert entry["passed"] and entry["tolerance"]["floor_factor"] == FLOOR_FACTOR
    assert entry["max_abs"] > 10 * FP32.max_abs  # far past the table's bound
    for row in entry["cases"]:
        floor, bound = row["floor"], row["bound"]
        assert floor["max_abs"] > FP32.max_abs / FLOOR_FACTOR  # the floor, not the table, sets the bound
        assert bound["max_abs"] == pytest.approx(FLOOR_FACTOR * floor["max_abs"])
        assert bound["mean_abs"] == pytest.approx(max(FP32.mean_abs, FLOOR_FACTOR * floor["mean_abs"]))
        assert row["max_abs"] <= bound["max_abs"] and row["mean_abs"] <= bound["mean_abs"] and row["passed"]


class Biased(OnnxRuntimeRuntime):
    """ONNX Runtime plus a constant ``BIAS`` on every output value: a systematic error, not rounding."""

    bias = 0.0

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v + np.float32(self.bias) for k, v in super().run(inputs).items()}


@pytest.mark.parametrize("ill, bias", [(True, 3e-3), (False, 1e-3)], ids=["large-floor", "plain"])
def test_a_planted_bias_is_refused(ill: bool, bias: float, planted: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused where the floor is large (the ill-conditioned CycleGAN: 3e-3 is within reach of 4x its max-abs
    floor, not of its mean) and on a plain tiny CycleGAN (1e-3); the message names the bound and the floor."""
    run = planted if ill else make_run_dir(tmp_path / "runs" / "cyclegan-tiny", "cyclegan")
    monkeypatch.setattr(Biased, "bias", bias)
    monkeypatch.setattr(pipeline, "OnnxRuntimeRuntime", Biased)
    with pytest.raises(ExportError, match=r"onnxruntime \(model.onnx\).*mean abs.*bound max abs / mean abs "
                                          r".*noise floor .* \(PyTorch FP32 vs float64\).*Nothing was written"):
        export_run(run, tmp_path / "export", max_batch=4)
    assert not (tmp_path / "export").exists()


class Shifted(Runtime):
    """Returns a fixed reference plus ``shift``: a wrong backend of known error."""

    def __init__(self, reference: np.ndarray, shift: float) -> None:
        super().__init__("onnxruntime")
        self.reference, self.shift = reference, shift

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("output",)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"output": self.reference + np.float32(self.shift)}


def test_the_mean_bound_refuses_a_bias_the_floored_max_bound_admits() -> None:
    """A case whose max-abs floor is large (one ill-conditioned pixel) but whose mean floor is tiny: a 5e-4 bias
    stays under the max bound 4e-3, the mean bound (1e-5) refuses it."""
    output = np.linspace(-0.9, 0.9, 3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8)
    floor = Diff(max_abs=1e-3, mean_abs=1e-7, psnr=90.0, uint8_max=0, uint8_mean=0.0, numel=output.size)
    ref = validate.Reference(validate.Case(1, (8, 8)), {"image": output}, output, floor)
    entry = validate.compare(Shifted(output, 5e-4), [ref], validate.FP32)
    row = entry["cases"][0]
    assert row["bound"] == {"max_abs": pytest.approx(4e-3), "mean_abs": FP32.mean_abs}
    assert row["max_abs"] < row["bound"]["max_abs"] and not row["passed"] and not entry["passed"]
    with pytest.raises(ExportError, match=r"mean abs 0.0005 at batch 1 at 8x8 \(bound max abs / mean abs 0.004 / "
                                          r"1e-05: .*noise floor 0.001 / 1e-07"):
        validate.enforce("onnxruntime (model.onnx)", entry, "export/x")
    assert validate.compare(Shifted(output, 0.0), [ref], validate.FP32)["passed"]


class Float32Inside(nn.Module):
    """A generator that casts its input to float32 itself: it cannot run in float64."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.inner(image.float())


def test_a_generator_without_float64_keeps_the_table_bounds_and_says_so(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "cyc", "cyclegan")
    config = load_run_config(run)
    from gandeploy.registry import get_model

    spec = get_model("cyclegan")
    torch_rt = TorchRuntime(Float32Inside(spec.build_generator(config.arch)), config)
    refs = validate.references(torch_rt, spec.io(config.arch), [validate.Case(2, (8, 8))], 0)
    assert refs[0].floor is None and "float64" in (refs[0].floor_reason or "")
    entry = validate.compare(torch_rt, refs, validate.FP32)
    assert entry["passed"] and entry["cases"][0]["floor"] is None
    assert entry["cases"][0]["bound"] == {"max_abs": FP32.max_abs, "mean_abs": FP32.mean_abs}
    assert entry["floor"].startswith("not measured: the generator does not run in float64")


def test_parity_uses_the_same_floor(planted: Path, tmp_path: Path) -> None:
    """gandeploy parity judges FP32 rows by the same rule (tolerances.tolerance_for with the case's floor)."""
    out = export_run(planted, tmp_path / "export", max_batch=4).out_dir
    report = run_parity(out, ["onnxruntime"], tiled=False)
    assert report.passed and report.rows
    assert max(r.diff.max_abs for r in report.rows if r.diff) > 10 * FP32.max_abs  # the table alone refuses
    for row in report.rows:
        assert row.floor is not None and row.tolerance == tolerance_for("fp32", "float", row.floor)
        assert row.tolerance.max_abs == pytest.approx(FLOOR_FACTOR * row.floor.max_abs)
        assert row.to_json()["floor"]["max_abs"] == row.floor.max_abs
    assert tolerance_for("fp16", "float", row.floor) == TOLERANCES[("fp16", "float")]  # FP16 unchanged
