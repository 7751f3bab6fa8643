"""Training throughput: gandeploy's trainer (eager and ``--compile``) against a replica of the pytorch/examples
DCGAN loop, measured in one run on the same data, nets and threads.

The baseline is ``examples_loop``: pytorch/examples ``dcgan/main.py``'s networks, init, optimizers and step
(BCELoss on a sigmoid D, one G forward per step reused for the G update, ``.item()`` per loss) over batches
prepared in memory before timing (kinder to the baseline than its DataLoader). gandeploy's side is the
``Trainer`` of a ``dcgan`` run (``nonsat`` = the same Adam 2e-4, β 0.5/0.999) stepping through its own
deterministic batch sampler (``Trainer.run_steps``: the loop of ``fit`` without files). Both train on the
real digits resized to 64x64 (one channel), batch 64, ngf = ndf = 64. Figures are images per second.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gandeploy.utils.logging import get_logger

log = get_logger("bench.train")

EXAMPLES_URL = "https://github.com/pytorch/examples/blob/main/dcgan/main.py"


class ExamplesGenerator(nn.Module):
    """pytorch/examples ``Generator`` (64x64): z [N, nz, 1, 1] → [N, nc, 64, 64]."""

    def __init__(self, nz: int, ngf: int, nc: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())  # 64x64

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples ``Discriminator`` (64x64): [N, nc, 64, 64] → probability [N]."""

    def __init__(self, ndf: int, nc: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 32x32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())  # 1x1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def _examples_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class TrainSpeed:
    """Images per second of each training loop (None: not measured, with the reason in ``notes``)."""

    examples: float
    gandeploy: float
    gandeploy_compile: float | None
    steps: int
    batch: int
    threads: int
    compile_s: float | None = None  # wall time of the compiled run's warm-up steps (compilation)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"examples_images_s": self.examples, "gandeploy_images_s": self.gandeploy,
                "gandeploy_compile_images_s": self.gandeploy_compile, "steps": self.steps, "batch": self.batch,
                "threads": self.threads, "compile_s": self.compile_s, "notes": list(self.notes),
                "baseline": f"replica of {EXAMPLES_URL}"}


def examples_loop(batches: list[torch.Tensor], steps: int, warmup: int, *, nz: int = 100, ngf: int = 64,
                  ndf: int = 64, seed: int = 0, device: str = "cpu") -> float:
    """The pytorch/examples DCGAN step on ``batches`` (cycled); images per second over ``steps`` timed steps
    (on ``device``, as the example's ``--cuda`` runs it: FP32, batches moved to the device once)."""
    torch.manual_seed(seed)
    nc = int(batches[0].shape[1])
    dev = torch.device(device)
    batches = [b.to(dev) for b in batches]
    net_g, net_d = ExamplesGenerator(nz, ngf, nc).to(dev), ExamplesDiscriminator(ndf, nc).to(dev)
    net_g.apply(_examples_init)
    net_d.apply(_examples_init)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0

    def step(i: int) -> None:
        real = batches[i % len(batches)]  # [B, nc, 64, 64]
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), real_label, device=dev)
        err_d_real = criterion(net_d(real), label)
        err_d_real.backward()
        noise = torch.randn(b, nz, 1, 1, device=dev)
        fake = net_g(noise)
        label.fill_(fake_label)
        err_d_fake = criterion(net_d(fake.detach()), label)
        err_d_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(real_label)
        err_g = criterion(net_d(fake), label)
        err_g.backward()
        opt_g.step()
        _ = ((err_d_real + err_d_fake).item(), err_g.item())  # the example logs every step

    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)  # .item() of the losses synchronises with the device every step
    return steps * int(batches[0].shape[0]) / (time.perf_counter() - start)


def trainer_speed(model: str, dataset_name: str, arch: dict[str, Any], *, batch: int, steps: int, warmup: int,
                  device: str = "cpu", compile: bool = False, dataset: Any = None, seed: int = 0,
                  ) -> tuple[float, float]:
    """gandeploy's ``Trainer`` for ``model`` on ``dataset_name`` (or an opened ``dataset``) with the family's
    training defaults: (seconds per step over ``steps`` timed steps, seconds of the ``warmup`` steps)."""
    from gandeploy.config import RunConfig, to_dict
    from gandeploy.data import open_dataset
    from gandeploy.registry import get_model
    from gandeploy.training.api import build_arch, task_class
    from gandeploy.training.task import TrainConfig
    from gandeploy.training.trainer import Trainer
    from gandeploy.utils.device import seed_everything

    spec = get_model(model)
    task_cls = task_class(spec)
    values = {**dict(task_cls.train_defaults), "steps": warmup + steps, "batch_size": batch, "device": device,
              "compile": compile, "seed": seed, "checkpoint_every": 10**9}
    train = TrainConfig(**values)
    if dataset is None:
        dataset = open_dataset(dataset_name, spec.family, image_size=arch.get("image_size"),
                               channels=arch.get("channels"), split="train",
                               augment=task_cls.data_options(task_cls.parse_options({})))
    arch_cfg = build_arch(spec, dataset_name, arch, dataset, loss=train.loss)
    run = RunConfig(model=spec.name, arch=arch_cfg, train=to_dict(train), dataset=dataset_name)
    seed_everything(seed)
    with tempfile.TemporaryDirectory(prefix="gandeploy-train-bench-") as tmp:
        task = task_cls(run, train, torch.device(device), dataset)
        trainer = Trainer(task, tmp)
        start = time.perf_counter()
        trainer.run_steps(0, warmup)  # compiles under --compile
        warm = time.perf_counter() - start
        start = time.perf_counter()
        trainer.run_steps(warmup, steps)
        return (time.perf_counter() - start) / steps, warm


def gandeploy_loop(dataset: Any, steps: int, warmup: int, *, batch: int, compile: bool = False, ngf: int = 64,
                   ndf: int = 64, seed: int = 0) -> tuple[float, float]:
    """gandeploy's trainer on a ``dcgan`` run over the opened digits ``dataset``: (images/s, warm-up seconds)."""
    arch = {"nz": 100, "ngf": ngf, "ndf": ndf, "channels": int(dataset.channels), "image_size": int(dataset.image_size)}
    per_step, warm = trainer_speed("dcgan", "digits", arch, batch=batch, steps=steps, warmup=warmup,
                                   compile=compile, dataset=dataset, seed=seed)
    return batch / per_step, warm


def cyclegan_gpu_step(*, steps: int = 20, warmup: int = 5, compile: bool = False,
                      arch: dict[str, Any] | None = None, device: str = "cuda") -> float:
    """Seconds per CycleGAN training step (batch 1; default 256x256, ngf 64, 9 blocks) on ``device``, on the
    synthetic digits2inverted pair at that size (speed depends on shapes, not on pictures)."""
    arch = arch or {"image_size": 256, "ngf": 64, "ndf": 64, "n_blocks": 9, "n_layers_d": 3}
    per_step, _ = trainer_speed("cyclegan", "digits2inverted", arch, batch=1, steps=steps, warmup=warmup,
                                device=device, compile=compile)
    return per_step


def training_speed(*, steps: int = 8, warmup: int = 2, batch: int = 64, threads: int = 2,
                   compile: bool = True) -> TrainSpeed:
    """Both loops on digits at 64x64 with ``threads`` torch threads, one after the other in this process."""
    from gandeploy.data import open_dataset
    from gandeploy.evaluation.bench.roofline import torch_threads

    notes: list[str] = []
    with torch_threads(threads):
        dataset = open_dataset("digits", "gan", image_size=64, channels=1, split="train")
        gen = torch.Generator().manual_seed(0)
        perm = torch.randperm(len(dataset), generator=gen)
        batches = [dataset.get_batch(perm[i * batch:(i + 1) * batch], gen)[0] for i in range(4)]  # [B, 1, 64, 64]
        log.info("training bench: pytorch/examples loop, %d + %d steps of batch %d", warmup, steps, batch)
        examples = examples_loop(batches, steps, warmup)
        log.info("training bench: gandeploy trainer (eager)")
        eager, _ = gandeploy_loop(dataset, steps, warmup, batch=batch)
        compiled, compile_s = None, None
        if compile:
            log.info("training bench: gandeploy trainer --compile (the warm-up steps compile)")
            try:
                compiled, compile_s = gandeploy_loop(dataset, steps, warmup + 1, batch=batch, compile=True)
            except Exception as exc:  # noqa: BLE001 - inductor needs a C++ compiler; report, keep the rest
                notes.append(f"--compile failed here: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return TrainSpeed(examples, eager, compiled, steps, batch, threads, compile_s, tuple(notes))
