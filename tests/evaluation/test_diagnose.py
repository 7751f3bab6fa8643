"""The D* theorem on a tiny 1D GAN: with the min-max loss and an over-trained D, D tracks p_r / (p_r + p_g)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from gandeploy.data import open_dataset
from gandeploy.evaluation.studies.diagnose import kde_density, scott_bandwidth


def test_mix1d_density_is_a_normalised_two_gaussian_mixture() -> None:
    ds = open_dataset("mix1d", "gan")
    x = torch.linspace(-8, 8, 16001, dtype=torch.float64)[:, None]
    assert ds.data_dim == 1 and float(ds.density(x).sum() * 16 / 16000) == pytest.approx(1.0, abs=1e-6)
    assert float(ds.density(torch.tensor([[2.0]]))) == pytest.approx(0.5 / math.sqrt(2 * math.pi * 0.25), rel=1e-9)
    pts = ds.sample(4000)
    assert pts.shape == (4000, 1) and abs(float(pts.mean())) < 0.15 and float((pts > 0).double().mean()) == \
        pytest.approx(0.5, abs=0.03)
    # the KDE of samples of a known density comes back close to it
    kde = kde_density(pts, x[::200], scott_bandwidth(pts))
    assert float((kde - ds.density(x[::200])).abs().max()) < 0.12


@pytest.mark.slow
def test_overtrained_minimax_discriminator_tracks_d_star(tmp_path) -> None:
    from gandeploy.cli import main
    from gandeploy.training.api import train_run
    from gandeploy.training.task import TrainConfig

    run = train_run("mlp", "mix1d", TrainConfig(loss="minimax", steps=150, n_critic=20, batch_size=256, lr=1e-3,
                                                 seed=0, device="cpu", checkpoint_every=100_000),
                    tmp_path / "run", arch={"nz": 2, "hidden": 32, "layers": 2})
    res = CliRunner().invoke(main, ["diagnose", str(run), "--n", "10000", "--json", str(tmp_path / "d.json")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["mad"] < 0.06 and d["corr"] > 0.95
    assert 0.0 < d["js_from_densities"] < math.log(2)
    assert abs(d["js_from_d"] - d["js_from_densities"]) < 0.02  # D ≈ D*: the value identity holds
    assert (run / "diagnose.png").stat().st_size > 10_000 and "tracks D*" in d["text"]


def test_diagnose_refuses_image_runs(tmp_path) -> None:
    from gandeploy.cli import main
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.registry import get_model

    spec = get_model("dcgan")
    run = make_run(tmp_path / "r", "dcgan", spec.config_cls(**spec.tiny))
    res = CliRunner().invoke(main, ["diagnose", str(run)])
    assert res.exit_code == 1 and "mix1d" in res.output
