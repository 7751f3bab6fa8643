"""``gandeploy import esrgan / srvgg / auto``: every published layout, saved the way its project saves it, imports
and reproduces the upstream network's output."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.cli.import_ import KINDS
from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.training.checkpoint import load_generator
from gandeploy.training.importers import detect, kinds, run_import
from sr_reference_nets import (
    BasicSRRRDBNet,
    ESRGANRepoRRDBNet,
    OldArchRRDBNet,
    SRVGGNetCompact,
    randomised,
    save_like_basicsr,
)

TOL = 1e-5


def _picture(channels: int = 3, h: int = 12, w: int = 16) -> torch.Tensor:
    """A smooth picture in [0, 1] (the SR models' value range): [1, C, h, w]."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    chans = [0.5 + 0.4 * torch.sin(6 * xs + 2 * c) * torch.cos(4 * ys - c) for c in range(channels)]
    return torch.stack(chans)[None]


def _imported_matches(run_dir, ref: torch.nn.Module, channels: int = 3) -> float:
    generator, _ = load_generator(run_dir)
    x = _picture(channels)
    with torch.no_grad():
        return (generator.eval()(x) - ref(x)).abs().max().item()


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_basicsr_layout_params_ema_preferred(tmp_path, scale):
    """Real-ESRGAN's files hold params and params_ema: the import takes params_ema, as its inference does."""
    ema = randomised(BasicSRRRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4), seed=1)
    raw = randomised(BasicSRRRDBNet(3, 3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4), seed=2)
    pth = tmp_path / f"RealESRGAN_x{scale}plus.pth"
    save_like_basicsr(raw, pth, ema=ema)
    kind, res = run_import("esrgan", pth, tmp_path / "run")
    assert (res.layout, res.container) == ("basicsr", "params_ema")
    assert vars(res.arch).items() >= {"scale": scale, "num_feat": 8, "num_block": 2, "num_grow_ch": 4,
                                      "num_in_ch": 3, "num_out_ch": 3}.items()
    assert _imported_matches(tmp_path / "run", ema) <= TOL
    assert _imported_matches(tmp_path / "run", raw) > 1e-3  # it really is the EMA weights


def test_basicsr_params_only_with_module_prefix(tmp_path):
    ref = randomised(BasicSRRRDBNet(1, 1, scale=4, num_feat=6, num_block=1, num_grow_ch=3), seed=3)
    torch.save({"params": {f"module.{k}": v for k, v in ref.state_dict().items()}}, tmp_path / "g.pth")
    _, res = run_import("esrgan", tmp_path / "g.pth", tmp_path / "run")
    assert (res.layout, res.container, res.arch.num_in_ch) == ("basicsr", "params", 1)
    assert _imported_matches(tmp_path / "run", ref, channels=1) <= TOL


def test_esrgan_repository_layout(tmp_path):
    """xinntao/ESRGAN saves a bare state_dict (RRDB_ESRGAN_x4.pth): RRDB_trunk, trunk_conv, upconv1, HRconv."""
    ref = randomised(ESRGANRepoRRDBNet(3, 3, nf=8, nb=3, gc=4), seed=4)
    assert "RRDB_trunk.2.RDB3.conv5.weight" in ref.state_dict() and "HRconv.bias" in ref.state_dict()
    torch.save(ref.state_dict(), tmp_path / "RRDB_ESRGAN_x4.pth")
    _, res = run_import("esrgan", tmp_path / "RRDB_ESRGAN_x4.pth", tmp_path / "run")
    assert (res.layout, res.container, res.arch.scale, res.arch.num_block) == ("esrgan", "", 4, 3)
    assert _imported_matches(tmp_path / "run", ref) <= TOL


def test_old_model_n_layout(tmp_path):
    """The original architecture.py layout (RRDB_ESRGAN_x4_old_arch.pth): model.1.sub.N.RDB1.conv1.0.weight."""
    ref = randomised(OldArchRRDBNet(3, 3, nf=8, nb=2, gc=4), seed=5)
    keys = ref.state_dict()
    assert {"model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.2.weight", "model.10.bias"} <= set(keys)
    torch.save(keys, tmp_path / "old_arch.pth")
    _, res = run_import("esrgan", tmp_path / "old_arch.pth", tmp_path / "run")
    assert (res.layout, res.arch.num_block, res.arch.num_grow_ch) == ("old-arch", 2, 4)
    assert _imported_matches(tmp_path / "run", ref) <= TOL


def test_old_layout_other_scale_is_refused(tmp_path):
    ref = OldArchRRDBNet(3, 3, nf=4, nb=1, gc=2, upscale=8)
    torch.save(ref.state_dict(), tmp_path / "x8.pth")
    with pytest.raises(CheckpointError, match="x4 arrangement"):
        run_import("esrgan", tmp_path / "x8.pth", tmp_path / "run")


@pytest.mark.parametrize("act_type", ["prelu", "relu", "leakyrelu"])
def test_srvgg(tmp_path, act_type):
    ref = randomised(SRVGGNetCompact(3, 3, num_feat=8, num_conv=3, upscale=4, act_type=act_type), seed=6)
    pth = tmp_path / "realesr-general-x4v3.pth"
    torch.save({"params": ref.state_dict()}, pth)  # as Real-ESRGAN ships it
    given = None if act_type == "prelu" else act_type
    _, res = run_import("srvgg", pth, tmp_path / "run", act_type=given)
    assert vars(res.arch).items() >= {"num_feat": 8, "num_conv": 3, "upscale": 4, "act_type": act_type}.items()
    assert _imported_matches(tmp_path / "run", ref) <= TOL


def test_srvgg_without_prelu_needs_act(tmp_path):
    ref = SRVGGNetCompact(3, 3, num_feat=4, num_conv=1, upscale=2, act_type="relu")
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    with pytest.raises(UserInputError, match="--act relu or --act leakyrelu"):
        run_import("srvgg", tmp_path / "g.pth", tmp_path / "run")


@pytest.mark.parametrize("upscale", [2, 3])
def test_srvgg_scale_inferred(tmp_path, upscale):
    ref = randomised(SRVGGNetCompact(3, 3, num_feat=4, num_conv=2, upscale=upscale), seed=7)
    torch.save({"params": ref.state_dict()}, tmp_path / "g.pth")
    _, res = run_import("auto", tmp_path / "g.pth", tmp_path / "run")
    assert (res.arch.upscale, res.arch.num_conv) == (upscale, 2)
    assert _imported_matches(tmp_path / "run", ref) <= TOL


def _gandeploy_generator_keys(model: str) -> dict[str, torch.Tensor]:
    """A state_dict in the CycleGAN / DCGAN reference layout (gandeploy keeps those keys exactly)."""
    from gandeploy.registry import get_model

    spec = get_model(model)
    return spec.build_generator(spec.config_cls(**spec.tiny)).state_dict()


@pytest.mark.parametrize("case, kind, layout", [
    ("basicsr", "esrgan", "basicsr"), ("esrgan", "esrgan", "esrgan"), ("old", "esrgan", "old-arch"),
    ("srvgg", "srvgg", "srvgg"), ("cyclegan", "cyclegan-reference", "cyclegan-reference"),
    ("dcgan", "dcgan-example", "dcgan-example"),
])
def test_auto_detects_every_kind(tmp_path, case, kind, layout):
    sd = {"basicsr": lambda: {"params_ema": BasicSRRRDBNet(3, 3, 2, 4, 1, 2).state_dict()},
          "esrgan": lambda: ESRGANRepoRRDBNet(3, 3, 4, 1, 2).state_dict(),
          "old": lambda: OldArchRRDBNet(3, 3, 4, 1, 2).state_dict(),
          "srvgg": lambda: SRVGGNetCompact(3, 3, 4, 1, 4).state_dict(),
          "cyclegan": lambda: _gandeploy_generator_keys("cyclegan"),
          "dcgan": lambda: _gandeploy_generator_keys("dcgan")}[case]()
    torch.save(sd, tmp_path / "w.pth")
    found, container = detect(tmp_path / "w.pth")
    assert (found.kind, found.name, container) == (kind, layout, "params_ema" if case == "basicsr" else "")


def test_unknown_layout_names_the_closest_and_the_keys(tmp_path):
    sd = BasicSRRRDBNet(3, 3, 4, 4, 1, 2).state_dict()
    sd["conv_trunk.weight"] = sd.pop("conv_body.weight")  # one renamed tensor
    torch.save(sd, tmp_path / "odd.pth")
    for kind in ("auto", "esrgan"):
        with pytest.raises(CheckpointError) as err:
            run_import(kind, tmp_path / "odd.pth", tmp_path / "run")
        msg = str(err.value)
        assert "\n" not in msg and "closest is esrgan (basicsr layout)" in msg
        assert "missing conv_body.weight" in msg and "unexpected conv_trunk.weight" in msg


def test_wrong_kind_points_to_the_right_one(tmp_path):
    torch.save({"params": SRVGGNetCompact(3, 3, 4, 1, 4).state_dict()}, tmp_path / "v3.pth")
    with pytest.raises(CheckpointError, match="gandeploy import srvgg"):
        run_import("esrgan", tmp_path / "v3.pth", tmp_path / "run")


def test_cli_import_auto_says_layout_and_container(tmp_path):
    ref = randomised(BasicSRRRDBNet(3, 3, scale=2, num_feat=4, num_block=1, num_grow_ch=2), seed=8)
    save_like_basicsr(ref, tmp_path / "x2.pth", ema=ref)
    res = CliRunner().invoke(main, ["import", "auto", str(tmp_path / "x2.pth"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "Imported esrgan (found by its keys), basicsr layout (under 'params_ema')" in res.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"] == "esrgan" and cfg["source"] == "imported:esrgan"


def test_cli_kinds_match_the_importers():
    assert tuple(KINDS) == kinds()
