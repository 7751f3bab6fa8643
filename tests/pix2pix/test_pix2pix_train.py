"""pix2pix: the reference's module tree, a few training steps (both GAN modes, digits and aligned pairs), the
closing quality line by the set's declared measures, and clean errors for options that do not apply."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import UserInputError
from gandeploy.models.pix2pix import Pix2PixConfig, build_generator, generator_io
from gandeploy.training.api import train_run
from gandeploy.training.task import TrainConfig
from pix2pix_reference_nets import define_unet

TINY = {"ngf": 4, "ndf": 4, "num_downs": 3, "n_layers_d": 1, "image_size": 16}


@pytest.mark.parametrize(("net_g", "num_downs"), [("unet_128", 7), ("unet_256", 8)])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_same_keys_and_shapes_as_the_reference(net_g, num_downs, norm):
    ref = define_unet(3, 2, 2, net_g, norm=norm).state_dict()
    ours = build_generator(Pix2PixConfig(output_nc=2, ngf=2, num_downs=num_downs, norm=norm)).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    assert generator_io(Pix2PixConfig(num_downs=num_downs)).size_multiple == 2**num_downs


def test_trains_and_ends_with_the_declared_measures(tmp_path):
    from gandeploy.training.quality import quality_line

    train = TrainConfig(steps=3, batch_size=4, device="cpu", checkpoint_every=3, loss="lsgan",
                        options={"lambda_l1": 50.0})
    run = train_run("pix2pix", "digits-masked", train, tmp_path / "run", arch=dict(TINY))
    with open(run / "losses.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {"D", "G_GAN", "G_L1"} <= set(rows[0])
    line = quality_line(run)
    assert "judge agreement" in line and "FID" in line and "MAE inside the mask" in line
    quality = json.loads((run / "quality.json").read_text())
    assert quality["measures"] == ["label_agreement", "fid", "masked_mae"]
    assert 0 <= quality["masked_mae"] <= 2 and quality["masked_mae_source"] > 0


def test_aligned_pairs_train_through_the_cli(tmp_path):
    from test_pix2pix_data import _aligned_root

    root = _aligned_root(tmp_path / "set", size=20)
    res = CliRunner().invoke(main, ["train", "pix2pix", f"aligned:{root}", "--steps", "2", "--batch-size", "2",
                                    "--device", "cpu", "--out", str(tmp_path / "run"), "--direction", "BtoA",
                                    "--load-size", "20", "--image-size", "16", "--arch", "num_downs=3",
                                    "--arch", "ngf=4", "--arch", "ndf=4", "--arch", "n_layers_d=1"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["options"]["direction"] == "BtoA" and cfg["arch"]["input_nc"] == 3


def test_options_that_do_not_apply_are_refused(tmp_path):
    with pytest.raises(UserInputError, match="nonsat .* or lsgan"):
        train_run("pix2pix", "digits-edges", TrainConfig(steps=1, loss="hinge", device="cpu"), tmp_path / "a",
                  arch=dict(TINY))
    with pytest.raises(UserInputError, match="direction"):
        train_run("pix2pix", "digits-edges", TrainConfig(steps=1, device="cpu", options={"direction": "up"}),
                  tmp_path / "b", arch=dict(TINY))
    with pytest.raises(UserInputError, match="2\\*\\*num_downs"):
        train_run("pix2pix", "digits-edges", TrainConfig(steps=1, device="cpu"), tmp_path / "c",
                  arch={**TINY, "num_downs": 5})
