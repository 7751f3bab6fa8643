"""``gandeploy import``: reference-layout generators load unchanged and reproduce the reference outputs."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.training.pretrained import import_cyclegan_reference, import_dcgan_example
from gandeploy.training.checkpoint import load_generator, save_checkpoint
from cyclegan_reference_nets import reference_dcgan_generator, reference_resnet_generator

TOL = 1e-5


def _old_style(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What PyTorch < 0.4 wrote for InstanceNorm layers: running stats next to every norm (no weight)."""
    out = dict(sd)
    for key in list(sd):
        if key.endswith("conv_block.1.weight") or key == "model.1.weight":
            prefix = key.rsplit(".", 2)[0]
            idx = int(key.rsplit(".", 2)[1]) + 1 if not key.startswith("model.1.") else 2
            norm = f"{prefix}.{idx}" if "conv_block" in key else "model.2"
            ch = sd[key].shape[0]
            out[f"{norm}.running_mean"] = torch.randn(ch)
            out[f"{norm}.running_var"] = torch.rand(ch) + 0.5
            out[f"{norm}.num_batches_tracked"] = torch.tensor(7)
    return out


@pytest.mark.parametrize("variant", ["plain", "running_stats", "module_prefix"])
def test_cyclegan_reference_import_matches(tmp_path, variant):
    ref = reference_resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=9, seed=1)
    sd = ref.state_dict()
    assert "model.26.bias" in sd and "model.18.conv_block.5.weight" in sd  # the published layout
    if variant == "running_stats":
        sd = _old_style(sd)
    if variant == "module_prefix":
        sd = {f"module.{k}": v for k, v in sd.items()}
    pth = tmp_path / "latest_net_G.pth"
    torch.save(sd, pth)
    res = import_cyclegan_reference(pth, tmp_path / "run")
    assert (res.arch.ngf, res.arch.n_blocks, res.arch.input_nc, res.arch.output_nc) == (8, 9, 3, 3)
    assert bool(res.dropped_keys) == (variant == "running_stats")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["source"] == "imported:cyclegan-reference" and cfg["model"] == "cyclegan"
    generator, run = load_generator(tmp_path / "run")
    x = torch.rand(2, 3, 36, 44) * 2 - 1  # any size that is a multiple of 4
    with torch.no_grad():
        err = (generator(x) - ref(x)).abs().max().item()
    assert err <= TOL


def test_cyclegan_reference_six_blocks_other_channels(tmp_path):
    ref = reference_resnet_generator(input_nc=1, output_nc=3, ngf=4, n_blocks=6, seed=2)
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    res = import_cyclegan_reference(tmp_path / "g.pth", tmp_path / "run", image_size=64)
    assert (res.arch.ngf, res.arch.n_blocks, res.arch.input_nc, res.arch.output_nc) == (4, 6, 1, 3)
    assert res.arch.image_size == 64
    generator, _ = load_generator(tmp_path / "run")
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (generator(x) - ref(x)).abs().max().item() <= TOL


@pytest.mark.parametrize("image_size,nz,ngf,nc", [(64, 100, 8, 3), (32, 16, 4, 1), (128, 10, 2, 3)])
def test_dcgan_example_import_matches(tmp_path, image_size, nz, ngf, nc):
    ref = reference_dcgan_generator(nz=nz, ngf=ngf, nc=nc, image_size=image_size, seed=3)
    torch.save(ref.state_dict(), tmp_path / "netG_epoch_24.pth")
    res = import_dcgan_example(tmp_path / "netG_epoch_24.pth", tmp_path / "run")
    assert (res.arch.nz, res.arch.ngf, res.arch.channels, res.arch.image_size) == (nz, ngf, nc, image_size)
    generator, run = load_generator(tmp_path / "run")
    assert run.source == "imported:dcgan-example"
    z = torch.randn(5, nz)
    with torch.no_grad():
        err = (generator(z) - ref(z[:, :, None, None])).abs().max().item()
    assert err <= TOL


def test_dcgan_example_old_checkpoint_without_batch_counts(tmp_path):
    ref = reference_dcgan_generator(nz=8, ngf=4, nc=3, seed=4)
    sd = {f"module.{k}": v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "netG.pth")
    import_dcgan_example(tmp_path / "netG.pth", tmp_path / "run")
    generator, _ = load_generator(tmp_path / "run")
    z = torch.randn(3, 8)
    with torch.no_grad():
        assert (generator(z) - ref(z[:, :, None, None])).abs().max().item() <= TOL


def test_bad_checkpoints_name_the_keys(tmp_path):
    ref = reference_resnet_generator(ngf=4, n_blocks=6, seed=5)
    sd = ref.state_dict()
    # an extra key the architecture does not have
    torch.save({**sd, "model.99.weight": torch.zeros(3)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"model\.99\.weight"):
        import_cyclegan_reference(tmp_path / "extra.pth", tmp_path / "r1")
    # a missing bias
    torch.save({k: v for k, v in sd.items() if k != "model.4.bias"}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing keys model\.4\.bias"):
        import_cyclegan_reference(tmp_path / "missing.pth", tmp_path / "r2")
    # a wrongly shaped tensor
    torch.save({**sd, "model.13.conv_block.5.weight": torch.zeros(16, 16, 1, 1)}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"model\.13\.conv_block\.5\.weight \(16, 16, 1, 1\)"):
        import_cyclegan_reference(tmp_path / "shape.pth", tmp_path / "r3")
    # a DCGAN file given as a CycleGAN one, and the other way round
    torch.save(reference_dcgan_generator(nz=8, ngf=4).state_dict(), tmp_path / "dcgan.pth")
    with pytest.raises(CheckpointError, match=r"model\.1\.weight"):
        import_cyclegan_reference(tmp_path / "dcgan.pth", tmp_path / "r4")
    with pytest.raises(CheckpointError, match=r"main\.N"):
        import_dcgan_example(tmp_path / "extra.pth", tmp_path / "r5")
    # BatchNorm statistics with a weight are not InstanceNorm leftovers: they are reported, not dropped
    bn = {**sd, "model.2.weight": torch.ones(4), "model.2.bias": torch.zeros(4),
          "model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4)}
    torch.save(bn, tmp_path / "bn.pth")
    with pytest.raises(CheckpointError, match=r"model\.2\.running_mean"):
        import_cyclegan_reference(tmp_path / "bn.pth", tmp_path / "r6")
    # not a state_dict / not a torch file / a file that would need unpickling code
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="state_dict"):
        import_cyclegan_reference(tmp_path / "list.pth", tmp_path / "r7")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        import_dcgan_example(tmp_path / "junk.pth", tmp_path / "r8")
    torch.save({"model": ref}, tmp_path / "pickled_module.pth")  # needs weights_only=False: refused
    with pytest.raises(CheckpointError):
        import_cyclegan_reference(tmp_path / "pickled_module.pth", tmp_path / "r9")
    with pytest.raises(UserInputError, match="does not exist"):
        import_cyclegan_reference(tmp_path / "nope.pth", tmp_path / "r10")
    save_checkpoint(tmp_path / "ours.pt", {"step": 0, "models": {"G_A": sd}, "optimizers": {}})
    with pytest.raises(UserInputError, match="already a gandeploy checkpoint"):
        import_cyclegan_reference(tmp_path / "ours.pt", tmp_path / "r11")
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 12))  # failed imports write nothing


def test_import_cli(tmp_path):
    ref = reference_resnet_generator(ngf=4, n_blocks=6, seed=6)
    torch.save(ref.state_dict(), tmp_path / "horse2zebra.pth")
    out = tmp_path / "h2z"
    runner = CliRunner()
    pth = str(tmp_path / "horse2zebra.pth")
    result = runner.invoke(main, ["import", "cyclegan-reference", pth, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "n_blocks=6" in result.output and f"Next: gandeploy export {out}" in result.output
    assert (out / "config.json").is_file() and (out / "checkpoints" / "latest.pt").is_file()
    again = runner.invoke(main, ["import", "cyclegan-reference", pth, "--out", str(out)])
    assert again.exit_code != 0 and "--force" in again.output and "Traceback" not in again.output
    forced = runner.invoke(main, ["import", "cyclegan-reference", pth, "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    torch.save(reference_dcgan_generator(nz=8, ngf=4).state_dict(), tmp_path / "netG_epoch_0.pth")
    bad = runner.invoke(main, ["import", "cyclegan-reference", str(tmp_path / "netG_epoch_0.pth"), "--out",
                               str(tmp_path / "x")])
    assert bad.exit_code == 1 and "Error:" in bad.output and "model.1.weight" in bad.output
    ok = runner.invoke(main, ["import", "dcgan-example", str(tmp_path / "netG_epoch_0.pth"), "--out",
                              str(tmp_path / "dc")])
    assert ok.exit_code == 0 and "image_size=64" in ok.output, ok.output
