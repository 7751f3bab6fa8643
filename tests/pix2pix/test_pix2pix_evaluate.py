"""``gandeploy evaluate`` on pix2pix: a run dir and its export score the paired set's declared measures the same
way, and an aligned BtoA run is scored on the pairs it trained on (its recorded direction)."""

from __future__ import annotations

import pytest
import torch

from gandeploy.evaluation.evaluate import EvalConfig, evaluate, real_set
from gandeploy.training.api import train_run
from gandeploy.training.task import TrainConfig

TINY = {"ngf": 4, "ndf": 4, "num_downs": 3, "n_layers_d": 1, "image_size": 16}


@pytest.mark.slow
def test_run_dir_and_export_give_the_same_paired_measures(tmp_path):
    from gandeploy.export.pipeline import export_run

    run = train_run("pix2pix", "digits-noisy", TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_every=2),
                    tmp_path / "run", arch=dict(TINY))
    out = export_run(run, tmp_path / "export", max_batch=4, min_size=(16, 16), opt_size=(16, 16),
                     max_size=(32, 32)).out_dir
    cfg = EvalConfig(n=2)
    by_run = evaluate(run, cfg=cfg).summary["paired"]
    by_export = evaluate(out, "onnxruntime", cfg=cfg).summary["paired"]
    assert by_run["measures"] == ["psnr"] and by_run["n"] == 359
    assert abs(by_run["psnr"] - by_export["psnr"]) < 1e-3
    assert by_run["psnr_source"] == pytest.approx(by_export["psnr_source"])


def test_aligned_held_out_pairs_follow_the_direction(tmp_path):
    from test_pix2pix_data import _aligned_root

    root = _aligned_root(tmp_path / "set", size=16)
    args = dict(translation=True, image_size=16, channels=3, family="paired")
    real_ab, _, inputs_ab = real_set(f"aligned:{root}", **args)
    real_ba, _, inputs_ba = real_set(f"aligned:{root}", **args, augment={"direction": "BtoA"})
    assert torch.equal(torch.from_numpy(real_ab), torch.from_numpy(inputs_ba))
    assert torch.equal(torch.from_numpy(inputs_ab), torch.from_numpy(real_ba))
