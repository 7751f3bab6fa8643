"""The super-resolution generators: shapes at every scale, the upstream state_dict key names (so BasicSR /
Real-ESRGAN checkpoints load by key), declared IO, and the VGG-style discriminator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gandeploy.models.esrgan import ESRGANConfig, RRDBNet
from gandeploy.models.sr_common import VGGStyleDiscriminator, pixel_unshuffle
from gandeploy.models.srresnet import MSRResNet, SRResNetConfig
from gandeploy.models.srvgg import SRVGGConfig, SRVGGNetCompact
from gandeploy.registry import MODELS


def rrdb_keys(num_block: int) -> set[str]:
    """BasicSR RRDBNet's keys, written out from rrdbnet_arch.py's module names."""
    keys = set()
    for name in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        keys |= {f"{name}.weight", f"{name}.bias"}
    for n in range(num_block):
        for r in (1, 2, 3):
            for c in range(1, 6):
                keys |= {f"body.{n}.rdb{r}.conv{c}.weight", f"body.{n}.rdb{r}.conv{c}.bias"}
    return keys


@pytest.mark.parametrize(("scale", "in_ch"), [(4, 3), (2, 12), (1, 48)])
def test_rrdbnet_keys_shapes_and_unshuffle(scale: int, in_ch: int) -> None:
    cfg = ESRGANConfig(scale=scale, num_feat=8, num_block=2, num_grow_ch=4, image_size=16)
    net = RRDBNet(cfg)
    sd = net.state_dict()
    assert set(sd) == rrdb_keys(2)
    assert sd["conv_first.weight"].shape == (8, in_ch, 3, 3)  # x2 / x1: 4x / 16x input channels
    assert sd["body.1.rdb3.conv5.weight"].shape == (8, 8 + 4 * 4, 3, 3)
    x = torch.rand(2, 3, 12, 20)
    assert net(x).shape == (2, 3, 12 * scale, 20 * scale)
    io = MODELS["esrgan"].io(cfg)
    assert io.scale == scale and io.size_multiple == 4 // scale
    assert io.image_input.value_range == (0.0, 1.0) and io.outputs[0].value_range == (0.0, 1.0)


def test_pixel_unshuffle_equals_torch() -> None:
    x = torch.randn(2, 3, 8, 12)
    for f in (2, 4):
        torch.testing.assert_close(pixel_unshuffle(x, f), F.pixel_unshuffle(x, f), rtol=0, atol=0)


def test_esrgan_default_config_is_basicsr_x4plus() -> None:
    cfg = ESRGANConfig()
    assert (cfg.num_in_ch, cfg.num_out_ch, cfg.scale, cfg.num_feat, cfg.num_block, cfg.num_grow_ch) == \
        (3, 3, 4, 64, 23, 32)
    assert sum(p.numel() for p in RRDBNet(cfg).parameters()) == 16_697_987  # RealESRGAN_x4plus.pth's count


@pytest.mark.parametrize("scale", [2, 4])
def test_srresnet_keys_and_shapes(scale: int) -> None:
    cfg = SRResNetConfig(num_feat=8, num_block=2, scale=scale, image_size=16)
    net = MSRResNet(cfg)
    want = {f"{m}.{p}" for m in ("conv_first", "upconv1", "conv_hr", "conv_last") for p in ("weight", "bias")}
    want |= {f"body.{n}.conv{c}.{p}" for n in range(2) for c in (1, 2) for p in ("weight", "bias")}
    if scale == 4:
        want |= {"upconv2.weight", "upconv2.bias"}
    assert set(net.state_dict()) == want
    x = torch.rand(1, 3, 10, 14)
    assert net(x).shape == (1, 3, 10 * scale, 14 * scale)
    io = MODELS["srresnet"].io(cfg)
    assert io.scale == scale and io.size_multiple == 1 and io.outputs[0].value_range == (0.0, 1.0)
    assert MODELS["srgan"].io(cfg) == io and MODELS["srgan"].config_cls is SRResNetConfig


def test_srresnet_starts_near_bilinear() -> None:
    """The 0.1-scaled init keeps the residual small: the untrained net is close to bilinear upsampling."""
    net = MSRResNet(SRResNetConfig(image_size=16))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        diff = net(x) - F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert float(diff.abs().mean()) < 0.05


@pytest.mark.parametrize(("act", "upscale"), [("prelu", 4), ("relu", 2), ("leakyrelu", 3)])
def test_srvgg_keys_and_shapes(act: str, upscale: int) -> None:
    cfg = SRVGGConfig(num_feat=8, num_conv=3, upscale=upscale, act_type=act, image_size=24)
    net = SRVGGNetCompact(cfg)
    convs = range(0, 2 * (3 + 1) + 1, 2)  # body.0, 2, 4, 6, 8
    want = {f"body.{i}.{p}" for i in convs for p in ("weight", "bias")}
    if act == "prelu":
        want |= {f"body.{i + 1}.weight" for i in convs[:-1]}  # one PReLU after every conv but the last
    assert set(net.state_dict()) == want
    assert net.state_dict()["body.8.weight"].shape == (3 * upscale**2, 8, 3, 3)
    x = torch.rand(2, 3, 7, 9)
    assert net(x).shape == (2, 3, 7 * upscale, 9 * upscale)
    io = MODELS["srvgg"].io(cfg)
    assert io.scale == upscale and io.size_multiple == 1


def test_srvgg_adds_nearest_upsampled_input() -> None:
    net = SRVGGNetCompact(SRVGGConfig(num_feat=4, num_conv=1, image_size=16))
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
        x = torch.rand(1, 3, 5, 6)
        torch.testing.assert_close(net(x), F.interpolate(x, scale_factor=4, mode="nearest"))


BASICSR_D128 = {"conv0_0.weight", "conv0_0.bias", "conv0_1.weight", "linear1.weight", "linear1.bias",
                "linear2.weight", "linear2.bias",
                *(f"bn0_1.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")),
                *(f"conv{i}_{j}.weight" for i in range(1, 5) for j in (0, 1)),
                *(f"bn{i}_{j}.{p}" for i in range(1, 5) for j in (0, 1)
                  for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))}


@pytest.mark.parametrize("crop", [16, 32, 96, 128])
def test_vgg_discriminator(crop: int) -> None:
    d = VGGStyleDiscriminator(3, 4, crop)
    assert d(torch.rand(2, 3, crop, crop)).shape == (2, 1)
    if crop == 128:  # BasicSR's layout: 5 stride-2 stages, 8 nf x 4 x 4 into linear1
        assert set(d.state_dict()) == BASICSR_D128
        assert d.linear1.in_features == 4 * 8 * 4 * 4


@pytest.mark.parametrize("bad", [{"scale": 3}, {"image_size": 18}, {"image_size": 4}, {"num_block": 0}])
def test_bad_configs_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        ESRGANConfig(**bad)


def test_registered_as_paired_families() -> None:
    for name in ("srresnet", "srgan", "esrgan", "srvgg"):
        spec = MODELS[name]
        assert spec.family == "paired" and spec.smoke_dataset == "photos" and spec.task() == "translation"
        g = spec.build_generator(spec.config_cls(**spec.tiny))
        d = spec.build_discriminator(spec.config_cls(**spec.tiny))
        x = torch.rand(1, 3, 8, 8)
        y = g(x)
        assert y.shape[-1] == 8 * spec.io(spec.config_cls(**spec.tiny)).scale
        assert d(torch.rand(1, 3, 16, 16)).shape == (1, 1)
