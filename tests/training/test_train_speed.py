"""The speed mechanisms keep training correct: --compile, losses converted in batches, prefetched batches.

Correctness only (no timing): compiled training equals eager within tolerance and resumes bit for bit,
checkpoints of a compiled run load without compile, batched loss conversion writes the rows per-step
conversion wrote, and prefetched batches are the batches the step would have drawn.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint, load_generator
from gandeploy.training.losslog import LossLog, read_losses
from gandeploy.training.prefetch import Prefetcher
from gandeploy.training.task import TrainConfig

from training_helpers import TINY_CGAN, cli

STEPS = 4


@pytest.mark.slow
def test_compiled_training_equals_eager_and_resumes_exactly(runs: Path) -> None:
    """CGAN on digits, 4 steps: compiled ≈ eager (inductor reorders float sums); compiled 2 + resume 2 ==
    compiled 4 exactly; the compiled run's checkpoint is a plain state dict that loads without compile."""
    train = TrainConfig(steps=STEPS, batch_size=32, checkpoint_every=100, device="cpu")
    eager = train_run("cgan", "digits", train, runs / "eager", arch=TINY_CGAN)
    compiled = train_run("cgan", "digits", train.replace(compile=True), runs / "compiled", arch=TINY_CGAN)
    train_run("cgan", "digits", train.replace(compile=True, steps=2), runs / "resumed", arch=TINY_CGAN)
    resumed = train_run("cgan", "digits", train.replace(compile=True), runs / "resumed", resume=True)
    e, c, r = (read_losses(run / "losses.csv")[1] for run in (eager, compiled, resumed))
    assert len(e) == len(c) == len(r) == STEPS
    assert torch.allclose(torch.tensor(c), torch.tensor(e), rtol=1e-3, atol=1e-4), (c, e)
    assert c == r  # bit-identical: resume of a compiled run is exact
    se, sc, sr = (load_checkpoint(run / "checkpoints" / "latest.pt") for run in (eager, compiled, resumed))
    for key in ("G", "D"):
        assert set(sc["models"][key]) == set(se["models"][key])  # no "_orig_mod." keys
        for name, value in sc["models"][key].items():
            assert torch.equal(value, sr["models"][key][name]), (key, name)
            if value.is_floating_point():
                assert torch.allclose(value, se["models"][key][name], rtol=1e-3, atol=1e-4), (key, name)
    generator, _ = load_generator(compiled)  # loads into a plain module, no compile involved
    assert not any(k.startswith("_orig_mod") for k in generator.state_dict())


def test_compile_flag_is_recorded(runs: Path) -> None:
    result = cli("train", "mlp", "ring8", "--steps", "1", "--arch", "hidden=8", "--batch-size", "16", "--device",
                 "cpu", "--no-compile", "--out", str(runs / "m"))
    assert result.exit_code == 0, result.output
    import json

    assert json.loads((runs / "m" / "config.json").read_text())["train"]["compile"] is False


def test_batched_loss_rows_equal_per_step_rows(tmp_path: Path) -> None:
    """Tensors converted every 3 steps (and at close) give exactly the rows that floats every step give."""
    values = [{"loss_D": torch.tensor(0.1 * i, dtype=torch.float32), "loss_G": float(i) / 3} for i in range(7)]
    per_step, batched = LossLog(tmp_path / "a.csv", ("loss_D", "loss_G")), LossLog(tmp_path / "b.csv",
                                                                                    ("loss_D", "loss_G"), every=3)
    seen: list[dict[str, float]] = []
    batched.on_flush = seen.append
    per_step.open(0)
    batched.open(0)
    for i, v in enumerate(values):
        per_step.append(i + 1, 1, {k: float(x) for k, x in v.items()})
        batched.append(i + 1, 1, v)
        if i == 3:
            assert len(read_losses(tmp_path / "b.csv")[1]) == 3  # written at the conversion, not per step
    per_step.close()
    batched.close()
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert len(read_losses(tmp_path / "b.csv")[1]) == 7 and len(seen) == 3 and seen[-1]["loss_G"] == 2.0


def test_prefetched_batches_are_the_drawn_batches() -> None:
    def make(draw: int) -> tuple[torch.Tensor, None]:
        return torch.randn(4, generator=torch.Generator().manual_seed(draw)), None

    ahead = Prefetcher(make, depth=2, last=9)
    try:
        for draw in [0, 1, 2, 5, 6, 9]:  # a jump, as on resume, and the last draw
            got = ahead.get(draw)
            assert torch.equal(got[0], make(draw)[0]) and got[1] is None
    finally:
        ahead.close()
    inline = Prefetcher(make)
    assert torch.equal(inline.get(3)[0], make(3)[0])


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_compiled_run_with_batched_losses_resumes_exactly(runs: Path) -> None:
    """CUDA: losses converted every LOG_EVERY_CUDA steps still give one row per step; a compiled, prefetched
    run of 2 + resume 2 steps equals 4 steps straight in loss rows (same batches, same noise) to fp tolerance,
    and the checkpoint loads on the CPU without compile."""
    train = TrainConfig(steps=STEPS, batch_size=32, checkpoint_every=100, device="cuda", compile=True)
    straight = train_run("cgan", "digits", train, runs / "straight", arch=TINY_CGAN)
    train_run("cgan", "digits", train.replace(steps=2), runs / "resumed", arch=TINY_CGAN)
    resumed = train_run("cgan", "digits", train, runs / "resumed", resume=True)
    a, b = read_losses(straight / "losses.csv")[1], read_losses(resumed / "losses.csv")[1]
    assert [r[0] for r in a] == [r[0] for r in b] == [1.0, 2.0, 3.0, 4.0]
    assert torch.allclose(torch.tensor(a), torch.tensor(b), rtol=1e-4, atol=1e-5)
    generator, _ = load_generator(straight)
    assert next(generator.parameters()).device.type == "cpu"
