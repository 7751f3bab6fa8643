"""``make gpu-bench``: the GPU rows of the speed issue, in one script that writes one JSON.

Rows (each timed after warm-up, with ``torch.cuda.synchronize`` around the clock):

- DCGAN 64x64 training, batch 64: the pytorch/examples loop (FP32, as published) against gandeploy's trainer
  (AMP + channels-last on CUDA, eager and ``--compile``), images per second;
- CycleGAN 256x256 batch-1 training step (gandeploy's trainer), seconds per step;
- inference of every registered family at its default config, torch FP32 against FP16 (``module.half()``),
  items per second; inputs come from each generator's declared inputs (``bench.bench_inputs``);
- super-resolution families: megapixels of output per second at 256x256 input, FP32 and FP16.

The device has no TensorRT; the JSON says so. Without a CUDA device the script says so in one line and exits
with status 2 (no traceback). ``--device cpu --smoke`` runs the same code on tiny sizes on the CPU (the test
of the JSON writer).

    python -m gandeploy.evaluation.bench.gpu_bench --out reports/gpu-bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gandeploy.utils.logging import get_logger

log = get_logger("bench.gpu")

FORMAT = "gandeploy.gpu-bench/1"
NO_TENSORRT = "no TensorRT on the device: TensorRT rows are not measured here"
SR_SIZE = (256, 256)  # input side of the SR rows (x4 -> 1024x1024)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, *, warmup: int, reps: int) -> float:
    """Seconds per call: the median of ``reps`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def inference_rows(device: torch.device, *, smoke: bool, reps: int) -> list[dict[str, Any]]:
    """Torch FP32 vs FP16 inference of each family's default generator (``smoke``: its tiny config)."""
    from gandeploy.contract import ServedContract
    from gandeploy.evaluation.bench.bench import bench_inputs
    from gandeploy.registry import MODELS

    rows = []
    for name in sorted(MODELS):
        spec = MODELS[name]
        cfg = spec.config_cls(**spec.tiny) if smoke else spec.config_cls()
        io = spec.io(cfg)
        contract = ServedContract.from_io(io, max_batch=64)
        batch = 1 if contract.translation else (4 if smoke else 64)
        hw = (16, 16) if smoke else (SR_SIZE if contract.scale > 1 else (256, 256))
        feeds, _ = bench_inputs(contract, batch, hw if contract.translation else None)
        row: dict[str, Any] = {"model": name, "batch": batch, "input_hw": list(hw) if contract.translation else None}
        torch.manual_seed(0)
        module = spec.build_generator(cfg).to(device).eval()
        for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            try:
                net = module.to(dtype)
                args = [torch.from_numpy(feeds[t.name]).to(device) for t in io.inputs]
                args = [a.to(dtype) if a.is_floating_point() else a for a in args]
                with torch.inference_mode():
                    seconds = timed(lambda net=net, args=args: net(*args), device, warmup=2 if smoke else 5,
                                    reps=reps)
                    out = net(*args)
                row[f"{precision}_items_s"] = batch / seconds
                row[f"{precision}_finite"] = bool(torch.isfinite(out).all())
                if contract.scale > 1:  # SR: output megapixels per second
                    row[f"{precision}_output_mp_s"] = batch * out.shape[-2] * out.shape[-1] / seconds / 1e6
            except Exception as exc:  # noqa: BLE001 - one family's failure is its row's reason
                row[f"{precision}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if row.get("fp32_items_s") and row.get("fp16_items_s"):
            row["fp16_over_fp32"] = row["fp16_items_s"] / row["fp32_items_s"]
        rows.append(row)
        log.info("%s: %s", name, {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
        del module
    return rows


def training_rows(device: torch.device, *, smoke: bool) -> dict[str, Any]:
    """DCGAN: pytorch/examples loop vs gandeploy's trainer (eager, --compile); CycleGAN batch-1 step."""
    from gandeploy.data import open_dataset
    from gandeploy.evaluation.bench.train_bench import cyclegan_gpu_step, examples_loop, trainer_speed

    batch, size = (8, 64) if smoke else (64, 64)
    steps, warmup = (2, 1) if smoke else (20, 5)
    dataset = open_dataset("digits", "gan", image_size=size, channels=1, split="train")
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(dataset), generator=gen)
    batches = [dataset.get_batch(perm[i * batch:(i + 1) * batch], gen)[0] for i in range(4)]
    width = 8 if smoke else 64
    out: dict[str, Any] = {"batch": batch, "image_size": size, "steps": steps, "warmup": warmup, "ngf": width}
    out["examples_images_s"] = examples_loop(batches, steps, warmup, ngf=width, ndf=width, device=str(device))
    arch = {"nz": 100, "ngf": width, "ndf": width, "channels": 1, "image_size": size}
    for label, compile in (("gandeploy_eager", False), ("gandeploy_compile", True)):
        if compile and smoke:
            continue  # compilation takes minutes on a CPU
        try:
            per_step, warm = trainer_speed("dcgan", "digits", arch, batch=batch, steps=steps, warmup=warmup,
                                           device=str(device), compile=compile, dataset=dataset)
            out[f"{label}_images_s"] = batch / per_step
            out[f"{label}_warmup_s"] = warm
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            out[f"{label}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    out["what"] = ("gandeploy's trainer uses AMP and channels-last on CUDA (TrainConfig amp/channels_last); the "
                   "pytorch/examples loop runs FP32 as published")
    cyc_arch = {"image_size": 32, "ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2} if smoke else None
    try:
        out["cyclegan_step_s"] = cyclegan_gpu_step(steps=steps, warmup=warmup, arch=cyc_arch, device=str(device))
        out["cyclegan_step"] = "batch 1, " + ("tiny 32x32 (smoke)" if smoke else "256x256, ngf 64, 9 blocks")
    except Exception as exc:  # noqa: BLE001
        out["cyclegan_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    try:
        import tensorrt  # noqa: F401

        info["tensorrt"] = "importable"
    except ImportError:
        info["tensorrt"] = NO_TENSORRT
    return info


def run(device_name: str = "cuda", *, smoke: bool = False, reps: int = 20) -> dict[str, Any]:
    """Every row on ``device_name``; the JSON document."""
    device = torch.device(device_name)
    start = time.perf_counter()
    info = device_info(device)
    data: dict[str, Any] = {"format": FORMAT, "machine": info, "smoke": smoke, "tensorrt": info["tensorrt"],
                            "notes": [] if info["tensorrt"] == "importable" else [NO_TENSORRT]}
    data["training"] = training_rows(device, smoke=smoke)
    data["inference"] = inference_rows(device, smoke=smoke, reps=3 if smoke else reps)
    data["seconds"] = round(time.perf_counter() - start, 1)
    data["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return data


def main(argv: list[str] | None = None) -> int:
    from gandeploy.utils.io import atomic_write_json

    parser = argparse.ArgumentParser(description="The GPU rows of the speed issue, one JSON.")
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-bench.json"))
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --smoke: the JSON writer test)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few steps")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.stderr.write("gpu-bench: no CUDA GPU visible here (torch.cuda.is_available() is False); run it on a "
                         "machine with an NVIDIA GPU, or pass --device cpu --smoke to check the script.\n")
        return 2
    if args.device == "cpu" and not args.smoke:
        sys.stderr.write("gpu-bench: --device cpu runs only with --smoke (the full rows take hours on a CPU).\n")
        return 2
    with contextlib.suppress(AttributeError):
        torch.backends.cudnn.benchmark = True
    data = run(args.device, smoke=args.smoke, reps=args.reps)
    data["command"] = "python -m gandeploy.evaluation.bench.gpu_bench " + " ".join(argv if argv is not None
                                                                             else sys.argv[1:])
    atomic_write_json(args.out, data)
    sys.stdout.write(f"Wrote {args.out} ({data['seconds']:.0f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
