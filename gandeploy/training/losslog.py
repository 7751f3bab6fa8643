"""``losses.csv``: one row per generator step, appended and flushed, fsynced before every checkpoint."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from gandeploy.utils.io import atomic_write_text
from gandeploy.utils.logging import get_logger

log = get_logger("trainer")


class LossLog:
    """``losses.csv``: header ``step,epoch,<loss names>``; appended per step, fsynced at checkpoints."""

    def __init__(self, path: Path, loss_names: tuple[str, ...]) -> None:
        self.path, self.columns = path, ("step", "epoch", *loss_names)
        self._fh: io.TextIOWrapper | None = None

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

    def append(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        if self._fh is None:
            return
        values = [str(step), str(epoch)] + [_fmt(losses.get(k)) for k in self.columns[2:]]
        self._fh.write(",".join(values) + "\n")
        self._fh.flush()  # survives SIGKILL (page cache); fsync() at checkpoints survives power loss

    def sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def read_losses(path: str | os.PathLike[str]) -> tuple[list[str], list[list[float]]]:
    """Columns and rows of a ``losses.csv`` (empty cells → NaN)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [[float(v) if v else math.nan for v in row] for row in reader if len(row) == len(header)]
    return header, rows
