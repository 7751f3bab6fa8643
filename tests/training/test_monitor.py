"""The training-health monitor: monitor.csv with the collapse signal, warnings, collapse stops, NaN stops."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gandeploy.errors import TrainingError
from gandeploy.training.health import collapse_signal
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.losslog import read_losses
from gandeploy.training.monitor import HealthMonitor
from gandeploy.training.task import TrainConfig


def _rows(path: Path) -> tuple[list[str], list[list[float]]]:
    return read_losses(path)


@pytest.mark.parametrize(("model", "dataset", "arch", "signal"), [
    ("mlp", "ring8", {"hidden": 16, "layers": 2}, "modes"),
    ("dcgan", "digits", {"ngf": 4, "ndf": 4, "nz": 8}, "class_entropy"),
])
def test_monitor_writes_health_rows(tmp_path: Path, model: str, dataset: str, arch: dict, signal: str) -> None:
    train = TrainConfig(steps=6, batch_size=16, device="cpu", monitor_every=3, checkpoint_every=1000)
    run = train_run(model, dataset, train, tmp_path / model, arch=arch, signal=collapse_signal)
    header, rows = _rows(run / "monitor.csv")
    assert header[:4] == ["step", "epoch", "D_real", "D_fake"] and {"grad_G", "grad_D", signal} <= set(header)
    assert [int(r[0]) for r in rows] == [3, 6]
    assert all(math.isfinite(v) and v >= 0 for r in rows for v in (r[header.index("grad_G")],
                                                                    r[header.index("grad_D")]))
    if signal == "class_entropy":
        assert all(0.0 <= r[header.index(signal)] <= math.log2(10) + 1e-9 for r in rows)
    assert (run / "monitor.png").is_file()


def test_collapse_warning_and_stop(tmp_path: Path) -> None:
    """A signal that falls below 75 % of its best raises one warning per episode and, asked to, stops."""
    values = iter([3.0, 3.2, 1.0, 1.1, 3.1, 0.5])
    task = SimpleNamespace(grad_norms={"G": torch.tensor(1.0), "D": torch.tensor(2.0)})
    monitor = HealthMonitor(tmp_path, 1, "nonsat", lambda t: {"class_entropy": next(values)}, stop_on_collapse=False)
    monitor.open(0)
    seen = [monitor.record(task, s, 1, {"D_real": 0.5, "D_fake": -0.5}) for s in range(1, 7)]
    assert [raised for raised, _ in seen] == [[], [], ["collapse"], [], [], ["collapse"]]
    assert not any(stop for _, stop in seen)
    stopper = HealthMonitor(tmp_path / "b", 1, "nonsat", lambda t: {"modes": 8.0 if t.step < 2 else 2.0},
                            stop_on_collapse=True)
    (tmp_path / "b").mkdir()
    stopper.open(0)
    assert stopper.record(SimpleNamespace(step=1, grad_norms={}), 1, 1, {})[1] is False
    assert stopper.record(SimpleNamespace(step=2, grad_norms={}), 2, 1, {})[1] is True


def test_d_wins_outright_is_flagged_but_not_for_wgan(tmp_path: Path) -> None:
    task = SimpleNamespace(grad_norms={})
    loud = HealthMonitor(tmp_path, 1, "nonsat")
    assert loud.record(task, 1, 1, {"D_real": 6.0, "D_fake": -7.0})[0] == ["d_wins"]
    assert loud.record(task, 2, 1, {"D_real": 6.0, "D_fake": -7.0})[0] == []  # once per episode
    assert HealthMonitor(tmp_path, 1, "wgan-gp").record(task, 1, 1, {"D_real": 60.0, "D_fake": -70.0})[0] == []


def test_nan_losses_stop_cleanly_keeping_the_last_good_checkpoint(tmp_path: Path) -> None:
    base = dict(batch_size=16, device="cpu", checkpoint_every=1000, monitor_every=0)
    run = train_run("mlp", "ring8", TrainConfig(steps=5, **base), tmp_path / "r", arch={"hidden": 16, "layers": 2})
    with pytest.raises(TrainingError, match=r"NaN or infinite at step \d+; .*last good checkpoint \(step 5\)"):
        train_run("mlp", "ring8", TrainConfig(steps=20, lr=1e12, **base), run, arch={"hidden": 16, "layers": 2},
                  resume=True)
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 5
    _, rows = _rows(run / "losses.csv")
    steps = [int(r[0]) for r in rows]  # rows stop before the first NaN/inf one (a resume drops those after 5)
    assert steps[:5] == [1, 2, 3, 4, 5] and all(math.isfinite(v) for r in rows for v in r)
