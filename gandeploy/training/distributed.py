"""Multi-process data parallel training under ``torchrun`` (DDP).

``torchrun --nproc_per_node N -m gandeploy.cli train ...`` sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``;
``init_from_env`` then joins the process group (NCCL on CUDA, gloo on CPU). Every rank trains on its own
shard of each global batch (``shard``); gradients are averaged by ``DistributedDataParallel``; only rank 0
writes files (config, checkpoints, ``losses.csv``, pictures). Without those variables everything here is a
no-op single process.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gandeploy.errors import UserInputError
from gandeploy.utils.logging import get_logger

log = get_logger("distributed")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. ``world_size == 1``: plain single-process training."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: torch.device) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (NCCL for CUDA devices, gloo for CPU)."""
    world = env_world_size()
    if world <= 1:
        return DistContext()
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise UserInputError("WORLD_SIZE > 1 but RANK is not set: start multi-process training with "
                             "'torchrun --nproc_per_node N -m gandeploy.cli train ...'.") from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    ctx = DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend)
    if rank != 0:  # one voice: other ranks only warn
        get_logger().setLevel(logging.WARNING)
    log.debug("rank %d/%d (local %d) joined with %s", rank, world, local_rank, backend)
    return ctx


def resolve_local_device(device: torch.device) -> torch.device:
    """One GPU per process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    if env_world_size() > 1 and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(module)`` under torchrun; the module itself otherwise."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (what checkpoints store)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def shard(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's contiguous slice of a global batch of indices [B * world] → [B]."""
    if not ctx.enabled:
        return indices
    return indices.chunk(ctx.world_size)[ctx.rank]


def average_gradients_before_step(optimizer: torch.optim.Optimizer, ctx: DistContext) -> None:
    """Fallback for tasks without DDP wrappers: all-reduce (mean) every gradient right before ``step``."""
    if not ctx.enabled:
        return

    def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad.div_(ctx.world_size)

    optimizer.register_step_pre_hook(hook)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def params_in_sync(modules: list[nn.Module], ctx: DistContext) -> bool:
    """True when every rank holds the same parameters (compares per-rank float64 checksums)."""
    if not ctx.enabled:
        return True
    with torch.no_grad():
        flat = torch.cat([p.detach().double().flatten().cpu() for m in modules for p in m.parameters()])
        mine = (float(flat.sum()), float(flat.abs().sum()), float((flat * flat).sum()))
    sums: list[tuple[float, float, float] | None] = [None] * ctx.world_size
    dist.all_gather_object(sums, mine)
    return all(s == sums[0] for s in sums)


def cleanup(ctx: DistContext, *, finished: bool = True) -> None:
    """Leave the process group in order, while the interpreter is fully alive.

    A finished run first meets every rank at a barrier (no rank closes its sockets while another is still in a
    collective); then the DDP wrappers the caller has released are collected, so their reducers drop the last
    references to the gloo/NCCL backend here and not during interpreter shutdown (where destroying it aborted a
    rank with ``terminate called without an active exception``); then the group is destroyed. After a failure
    the barrier is skipped (the other ranks may never reach it).
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    gc.collect()  # DDP wrappers sit in reference cycles: free their reducers (and backend refs) now
    dist.destroy_process_group()
    gc.collect()
