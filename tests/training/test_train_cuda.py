"""CUDA training: autocast (bf16, and fp16 with GradScalers), channels-last, checkpoints that load on CPU.

Marked ``gpu``: skipped with a reason where no CUDA device is visible (CI, the 2-core dev machines).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import TINY_CGAN, cli, run_subprocess

from gandeploy.training.checkpoint import load_checkpoint, load_generator
from gandeploy.training.losslog import read_losses

pytestmark = pytest.mark.gpu

TINY_CYCLEGAN = {"ngf": 8, "ndf": 8, "n_blocks": 2, "image_size": 32}


def _arch(pairs: dict[str, int]) -> list[str]:
    return [a for k, v in pairs.items() for a in ("--arch", f"{k}={v}")]


CASES = {
    "cgan-nonsat": ["cgan", "digits", *_arch(TINY_CGAN), "--loss", "nonsat"],
    "cgan-wgan-gp": ["cgan", "digits", *_arch(TINY_CGAN), "--loss", "wgan-gp"],
    "dcgan-hinge": ["dcgan", "digits", "--arch", "ngf=8", "--arch", "ndf=8", "--arch", "nz=8", "--loss", "hinge"],
    "mlp-wgan": ["mlp", "ring8", "--arch", "hidden=16", "--loss", "wgan"],
    "cyclegan": ["cyclegan", "digits2inverted", *_arch(TINY_CYCLEGAN), "--batch-size", "4"],
}


def _train(out: Path, case: str, *extra: str) -> None:
    result = cli("train", *CASES[case], "--device", "cuda", "--steps", "4", "--checkpoint-every", "2",
                 "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert all(math.isfinite(float(v)) for v in row[1:] if v != ""), (header, row)


def _cuda_vs_cpu_outputs(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The trained generator's output for fixed inputs, on the GPU (FP32, no TF32) and on the CPU."""
    G, run = load_generator(run_dir)  # mapped to CPU: a CUDA-trained checkpoint must load anywhere
    gen = torch.Generator().manual_seed(0)
    if run.model == "cyclegan":
        args: list[torch.Tensor] = [torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1]
    else:
        args = [torch.randn(2, run.arch.nz, generator=gen)]
        if run.model == "cgan":
            args.append(torch.tensor([1, 7]))
    with torch.inference_mode():
        cpu = G(*args).numpy()
        old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            cuda = G.cuda()(*[a.cuda() for a in args]).cpu().numpy()
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    return cpu, cuda


@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_amp_training_and_cpu_loadable_checkpoint(case: str, tmp_path: Path) -> None:
    out = tmp_path / case
    _train(out, case)
    state = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert state["step"] == 4
    for tensors in state["models"].values():  # saved on the CPU, in FP32, whatever autocast did
        assert all(t.device.type == "cpu" for t in tensors.values())
        assert all(t.dtype in (torch.float32, torch.int64) for t in tensors.values())
    cpu, cuda = _cuda_vs_cpu_outputs(out)
    assert np.abs(cpu - cuda).max() < 1e-4


def test_fp16_autocast_uses_grad_scalers_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GPUs without bf16 (pre-Ampere) take float16 autocast with a GradScaler per optimizer."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    out = tmp_path / "fp16"
    _train(out, "cgan-wgan-gp")
    result = cli("train", *CASES["cgan-wgan-gp"], "--device", "cuda", "--steps", "6", "--out", str(out),
                 "--resume")
    assert result.exit_code == 0, result.output
    _, rows = read_losses(out / "losses.csv")
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 6


def test_no_amp_flag_trains_in_fp32(tmp_path: Path) -> None:
    _train(tmp_path / "fp32", "cgan-nonsat", "--no-amp")
    cpu, cuda = _cuda_vs_cpu_outputs(tmp_path / "fp32")
    assert np.abs(cpu - cuda).max() < 1e-4


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL DDP needs 2 CUDA devices (one process each)")
def test_two_gpu_nccl_training(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gandeploy.cli", "train", *CASES["cgan-nonsat"], "--steps", "4", "--batch-size", "16",
           "--device", "cuda", "--out", str(out)]
    done = run_subprocess(cmd, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DDP: parameters identical on all 2 ranks" in done.stderr
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 4
