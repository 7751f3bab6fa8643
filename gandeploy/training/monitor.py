"""The training-health monitor: every ``monitor_every`` steps one row of ``monitor.csv`` (plotted as
``monitor.png`` at the end) and warnings when the game goes wrong.

Columns: ``step``, ``epoch``, ``D_real`` / ``D_fake`` (mean critic outputs of that step), ``grad_G`` / ``grad_D``
(L2 norms of the update's gradients), and the collapse signal when the caller supplies one (for mixtures:
``modes`` covered and ``hq`` high-quality share; for digits: ``class_entropy`` of the judge's histogram over a
fixed latent batch, in bits). The signal comes from a callable the caller builds (``training/health.py``, on
``gandeploy.metrics``).

Warnings (logged once per episode, and shown in the progress bar):
- *D wins outright*: the critic separates real (logit > 4) from fake (< -4); G's gradients vanish
  (not checked for the WGAN losses, whose critic outputs are not probabilities);
- *collapse*: the signal falls below ``COLLAPSE_DROP`` of its best value; with ``stop_on_collapse`` the run
  ends there, with a checkpoint.
NaN/inf losses are caught by the trainer itself (``LossLog.first_nonfinite``): the run stops and the last good
checkpoint is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gandeploy.utils.io import atomic_write_text
from gandeploy.utils.logging import get_logger

log = get_logger("monitor")

MONITOR_CSV, MONITOR_PNG = "monitor.csv", "monitor.png"
COLLAPSE_DROP = 0.75  # signal below this share of its best so far: collapse warning
D_WINS_LOGIT = 4.0  # sigmoid(4) ≈ 0.98
CRITIC_LOSSES = ("wgan", "wgan-gp")  # critics without probabilities

Signal = Callable[[Any], Mapping[str, float]]  # task -> named health figures (first one: the collapse signal)


class HealthMonitor:
    """Writes ``monitor.csv`` and decides on warnings and collapse stops (see the module docstring)."""

    def __init__(self, run_dir: Path, every: int, loss: str, signal: Signal | None = None,
                 stop_on_collapse: bool = False) -> None:
        self.path = Path(run_dir) / MONITOR_CSV
        self.every, self.loss, self.signal, self.stop_on_collapse = int(every), loss, signal, stop_on_collapse
        self.columns: list[str] | None = None
        self.best: float | None = None
        self.active: set[str] = set()  # warnings currently raised (each logged once per episode)
        self.rows: list[str] = []

    def due(self, step: int) -> bool:
        """Whether generator step ``step`` (0-based) ends with a health check."""
        return self.every > 0 and (step + 1) % self.every == 0

    def open(self, keep_until: int) -> None:
        """Keep the rows of steps ``<= keep_until`` (what the checkpoint covers) from an earlier run."""
        if keep_until > 0 and self.path.is_file():
            lines = self.path.read_text(errors="replace").splitlines()
            if lines:
                self.columns = lines[0].split(",")
                self.rows = [ln for ln in lines[1:] if ln.split(",", 1)[0].isdigit()
                             and int(ln.split(",", 1)[0]) <= keep_until]
                signal = [i for i, c in enumerate(self.columns)
                          if c not in ("step", "epoch", "D_real", "D_fake") and not c.startswith("grad_")]
                for ln in self.rows:  # the collapse baseline survives a resume
                    cells = ln.split(",")
                    value = _float(cells[signal[0]]) if signal and len(cells) > signal[0] else math.nan
                    if math.isfinite(value):
                        self.best = value if self.best is None else max(self.best, value)
        self._write()

    def record(self, task: Any, step: int, epoch: int, losses: Mapping[str, float]) -> tuple[list[str], bool]:
        """One health row after generator step ``step`` (1-based); returns (warnings raised now, stop?)."""
        figures = {"D_real": float(losses.get("D_real", math.nan)), "D_fake": float(losses.get("D_fake", math.nan))}
        figures.update({f"grad_{k}": float(v) for k, v in task.grad_norms.items()})
        signal = dict(self.signal(task)) if self.signal is not None else {}
        figures.update(signal)
        if self.columns is None:
            self.columns = ["step", "epoch", *figures]
        self.rows.append(",".join([str(step), str(epoch)] + [_fmt(figures.get(c)) for c in self.columns[2:]]))
        self._write()
        raised, stop = [], False
        wins = (self.loss not in CRITIC_LOSSES and figures["D_real"] > D_WINS_LOGIT
                and figures["D_fake"] < -D_WINS_LOGIT)
        raised += self._episode("d_wins", wins, f"step {step}: D wins outright (D(x) logit {figures['D_real']:.1f}, "
                                f"D(G(z)) {figures['D_fake']:.1f}): G's gradients vanish; try --loss nonsat, a "
                                "lower --lr-d or --pack")
        if signal:
            name, value = next(iter(signal.items()))
            self.best = value if self.best is None else max(self.best, value)
            collapsed = self.best > 0 and value < COLLAPSE_DROP * self.best
            raised += self._episode("collapse", collapsed, f"step {step}: collapse signal {name} fell to {value:.2f} "
                                    f"(best {self.best:.2f})" + ("; stopping (--stop-on-collapse)"
                                                                  if self.stop_on_collapse else ""))
            stop = collapsed and self.stop_on_collapse
        return raised, stop

    def _episode(self, key: str, condition: bool, message: str) -> list[str]:
        if condition and key not in self.active:
            self.active.add(key)
            log.warning(message)
            return [key]
        if not condition:
            self.active.discard(key)
        return []

    def _write(self) -> None:
        if self.columns is not None:
            atomic_write_text(self.path, "\n".join([",".join(self.columns), *self.rows]) + "\n")

    def plot(self) -> Path | None:
        """``monitor.png``: every column against the step (the losses plot's layout)."""
        if not self.rows or not self.path.is_file():
            return None
        from gandeploy.training.plots import plot_losses

        return plot_losses(self.path, self.path.with_suffix(".png"), title="training health")


def _fmt(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
