"""Run under ``torchrun``: train a tiny run with ``train_run``, then report what of it is still alive.

A finished run must leave nothing behind for interpreter shutdown: no DDP wrapper (its reducer holds the gloo
process group, whose destruction during shutdown aborted a rank), no process group, no thread but the main one.
Prints one JSON line per rank: ``{"rank": R, "ddp": N, "initialized": B, "threads": [...]}``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading

import torch.distributed as dist
from torch import nn

from gandeploy.training.api import train_run
from gandeploy.training.task import TrainConfig

if __name__ == "__main__":
    train_run("mlp", "ring8", TrainConfig(steps=4, batch_size=16, device="cpu", checkpoint_every=2), sys.argv[1],
              arch={"hidden": 16})
    alive = sum(isinstance(o, nn.parallel.DistributedDataParallel) for o in gc.get_objects())  # no gc.collect()
    print(json.dumps({"rank": int(os.environ["RANK"]), "ddp": alive, "initialized": dist.is_initialized(),
                      "threads": sorted(t.name for t in threading.enumerate())}), flush=True)
