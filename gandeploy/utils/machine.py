"""What a measured figure depends on besides the code: the CPU, the cores visible, and the library versions.

GAN training is chaotic: the same seed and code on another CPU (other vector kernels, other rounding) can end in
a different run, so every table of trained results records the machine it ran on.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows where that file is absent."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, cores visible to this process, and library versions that shape the figures."""
    import onnxruntime
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": cores, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version()}
