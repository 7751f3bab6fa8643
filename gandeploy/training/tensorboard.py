"""Optional TensorBoard logging (pip extra ``tensorboard``): on when the package is installed.

``RUN_DIR/tensorboard/`` gets the losses of every step, each epoch's sample grid and the quality line::

    tensorboard --logdir training/runs

Set ``GANDEPLOY_TENSORBOARD=0`` to turn it off while installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from gandeploy.utils.logging import get_logger

log = get_logger("training.tensorboard")

TB_DIR = "tensorboard"


def available() -> bool:
    """True when the ``tensorboard`` package is importable and not switched off."""
    if os.environ.get("GANDEPLOY_TENSORBOARD", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return importlib.util.find_spec("tensorboard") is not None


def open_writer(run_dir: str | os.PathLike[str]) -> Any | None:
    """A ``SummaryWriter`` on ``RUN_DIR/tensorboard`` (appending), or None without TensorBoard."""
    if not available():
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as exc:  # noqa: BLE001 - a broken install must not stop training
        log.warning("TensorBoard logging off: %s", exc)
        return None
    return SummaryWriter(log_dir=str(Path(run_dir) / TB_DIR))


def add_grid(writer: Any, png: Path, step: int) -> None:
    """An epoch's sample grid (the PNG the trainer just wrote) as image ``samples``."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"))  # [H, W, 3]
    writer.add_image("samples", image, step, dataformats="HWC")
