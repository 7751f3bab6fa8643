"""``losses.csv``: one row per generator step, fsynced before every checkpoint.

Loss values may be device tensors: rows wait in memory and are converted together (one ``tolist`` per
device, a single host sync) every ``every`` steps, at ``sync`` and at ``close``; then written and flushed.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gandeploy.utils.io import atomic_write_text
from gandeploy.utils.logging import get_logger

log = get_logger("trainer")


class LossLog:
    """``losses.csv``: header ``step,epoch,<loss names>``; appended per step, fsynced at checkpoints."""

    def __init__(self, path: Path, loss_names: tuple[str, ...], every: int = 1) -> None:
        self.path, self.columns, self.every = path, ("step", "epoch", *loss_names), max(1, int(every))
        self._fh: io.TextIOWrapper | None = None
        self._pending: list[tuple[int, int, dict[str, Any]]] = []
        self.on_flush: Callable[[dict[str, float]], None] | None = None  # gets the last row's losses
        self.first_nonfinite: int | None = None  # the first step whose losses held NaN/inf (not written)
        self.last: dict[str, float] = {}  # the last converted row's losses
        self.on_rows: Callable[[list[tuple[int, dict[str, float]]]], None] | None = None  # (step, losses) each

    def open(self, keep_until: int) -> None:
        """Keep rows with ``step <= keep_until`` (what the checkpoint covers), then append after them."""
        rows: list[str] = []
        if keep_until > 0 and self.path.is_file():
            lines = self.path.read_text(errors="replace").splitlines()
            if lines and lines[0] == ",".join(self.columns):
                for line in lines[1:]:
                    head = line.split(",", 1)[0]
                    if head.isdigit() and int(head) <= keep_until and line.count(",") == len(self.columns) - 1:
                        rows.append(line)
            else:
                log.warning("%s has other columns than this run; starting it afresh", self.path)
        atomic_write_text(self.path, "\n".join([",".join(self.columns), *rows]) + "\n")
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def append(self, step: int, epoch: int, losses: dict[str, Any]) -> None:
        """One step's losses (floats or scalar tensors); written at the next conversion."""
        if self._fh is None:
            return
        self._pending.append((step, epoch, dict(losses)))
        if len(self._pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Convert the pending rows (one host sync), write them and flush the file."""
        if self._fh is None or not self._pending:
            return
        rows = _to_floats([losses for _, _, losses in self._pending])
        for (step, epoch, _), losses in zip(self._pending, rows, strict=True):
            if self.first_nonfinite is not None:
                break
            if not all(math.isfinite(v) for v in losses.values()):
                self.first_nonfinite = step  # this row and all after it are dropped: the run stops here
                break
            values = [str(step), str(epoch)] + [_fmt(losses.get(k)) for k in self.columns[2:]]
            self._fh.write(",".join(values) + "\n")
            self.last = losses
        self._fh.flush()  # survives SIGKILL (page cache); fsync() at checkpoints survives power loss
        if self.on_rows is not None:  # TensorBoard
            self.on_rows([(step, losses) for (step, _, _), losses in zip(self._pending, rows, strict=True)])
        self._pending.clear()
        if self.on_flush is not None:
            self.on_flush(rows[-1])

    def sync(self) -> None:
        if self._fh is not None:
            self.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None


def scalar(value: Any) -> Any:
    """A loss as a float64 value for averaging: a tensor stays on its device (float32 → float64 is exact, so
    sums equal Python float sums), a number becomes a float."""
    if isinstance(value, torch.Tensor):
        return value.detach().reshape(()).to(torch.float64)
    return float(value)


def _to_floats(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Every tensor of ``rows`` as a float: stacked per device and converted with one ``tolist`` each."""
    by_device: dict[torch.device, list[tuple[int, str, torch.Tensor]]] = {}
    out: list[dict[str, float]] = []
    for i, losses in enumerate(rows):
        out.append({})
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                by_device.setdefault(value.device, []).append((i, name, value.detach().reshape(())))
            else:
                out[i][name] = float(value)
    for items in by_device.values():
        values = torch.stack([v.to(torch.float64) for _, _, v in items]).tolist()  # the one host sync
        for (i, name, _), v in zip(items, values, strict=True):
            out[i][name] = v
    return out


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def read_losses(path: str | os.PathLike[str]) -> tuple[list[str], list[list[float]]]:
    """Columns and rows of a ``losses.csv`` (empty cells → NaN)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [[float(v) if v else math.nan for v in row] for row in reader if len(row) == len(header)]
    return header, rows
