"""What a newcomer hits in ``gandeploy train`` (issue 12): resume mistakes and a fast Ctrl-C check."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from training_helpers import TINY_MLP, assert_clean_error, cli, gandeploy_cmd, subprocess_env


def test_resume_without_checkpoint_is_an_error(runs: Path) -> None:
    """Smaller: '--resume' on a directory without a checkpoint silently started a new run."""
    out = runs / "empty"
    out.mkdir()
    result = cli("train", "mlp", "ring8", "--steps", "2", "--out", str(out), "--resume", *TINY_MLP)
    assert_clean_error(result, 1, "--resume", str(out / "checkpoints" / "latest.pt"), "drop --resume")
    assert not (out / "checkpoints").exists()


def test_resume_with_fewer_steps_keeps_config(runs: Path) -> None:
    """Smaller: '--resume --epochs N' shorter than the finished run rewrote config.json with N."""
    out = runs / "done"
    assert cli("train", "mlp", "ring8", "--steps", "6", "--out", str(out), *TINY_MLP).exit_code == 0
    before = (out / "config.json").read_text()
    result = cli("train", "mlp", "ring8", "--steps", "3", "--out", str(out), "--resume")
    assert_clean_error(result, 1, "already holds 6 steps", "--steps", "config.json is unchanged")
    assert (out / "config.json").read_text() == before
    assert json.loads(before)["train"]["steps"] == 6
    result = cli("train", "mlp", "ring8", "--steps", "8", "--out", str(out), "--resume")  # longer: fine
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 8


def test_ctrl_c_exits_130_without_export_hint(runs: Path) -> None:
    """Item 6: Ctrl-C during 'train' exited 0 and suggested 'export', so 'train && export' carried on."""
    out = runs / "stopped"
    latest = out / "checkpoints" / "latest.pt"
    proc = subprocess.Popen(gandeploy_cmd("train", "mlp", "ring8", "--steps", "1000000", "--out", str(out),
                                          *TINY_MLP), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        csv = out / "losses.csv"
        if csv.is_file() and len(csv.read_text().splitlines()) > 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after step" in stderr and "--resume" in stderr and latest.is_file()
    assert "Next: gandeploy export" not in stdout + stderr


def test_train_ends_with_a_quality_line_and_logs_tensorboard(runs: Path) -> None:
    """Item 2: 'train' said nothing about quality; now it ends with modes/HQ for a mixture (and TensorBoard)."""
    import importlib.util

    out = runs / "ring"
    result = cli("train", "mlp", "ring8", "--steps", "20", "--out", str(out), *TINY_MLP)
    assert result.exit_code == 0, result.output
    assert "Quality: " in result.output, result.output  # (stderr's progress bar may share the line)
    line = result.output[result.output.index("Quality: "):].splitlines()[0]
    saved = json.loads((out / "quality.json").read_text())
    assert saved["measure"] == "modes" and saved["n_modes"] == 8 and "/8 modes" in line
    assert line == f"Quality: {saved['line']}"
    assert result.output.index("Quality: ") < result.output.index("Next: gandeploy export")
    if importlib.util.find_spec("tensorboard") is not None:  # optional extra: on when installed
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0}).Reload()
        tags = events.Tags()
        assert {"loss/loss_D", "loss/loss_G", "quality/modes"} <= set(tags["scalars"]), tags
        assert len(events.Scalars("loss/loss_G")) == 20 and "samples" in tags["images"]


def test_cgan_quality_line_is_label_agreement(runs: Path) -> None:
    """Item 2: for class data the line is the held-out classifier's label agreement."""
    out = runs / "cgan"
    result = cli("train", "cgan", "digits", "--steps", "2", "--out", str(out), "--device", "cpu",
                 *[f"--arch={k}={v}" for k, v in {"ngf": 8, "ndf": 8, "nz": 8, "embed_dim": 4}.items()])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "quality.json").read_text())
    assert saved["measure"] == "label agreement" and saved["n"] == 1000 and 0.0 <= saved["value"] <= 1.0
    assert saved["classifier_accuracy"] > 0.9
    assert f"Quality: label agreement {saved['value']:.1%}" in result.output


def test_known_map_and_unconditional_quality_lines(runs: Path) -> None:
    """Item 2: MAE against the true map for the known-map pair; digit coverage for an unconditional DCGAN."""
    out = runs / "cyc"
    result = cli("train", "cyclegan", "digits2inverted", "--steps", "2", "--batch-size", "4", "--out", str(out),
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "quality.json").read_text())
    assert saved["measure"] == "MAE vs true map" and saved["identity_mae"] > 0.5 and saved["n"] > 0
    assert "Quality: held-out MAE vs the true map" in result.output
    out = runs / "dc"
    result = cli("train", "dcgan", "digits", "--steps", "2", "--out", str(out), "--device", "cpu",
                 "--arch", "ngf=8", "--arch", "ndf=8", "--arch", "nz=8")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "quality.json").read_text())
    assert saved["measure"] == "digit coverage" and 0 <= saved["value"] <= 10 and sum(saved["counts"]) == 1000
