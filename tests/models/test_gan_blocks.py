"""Shared GAN blocks: self-attention, spectral norm baking, conditional BN, orthogonal regularisation, EMA;
the sagan / biggan model files built from them."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.blocks import (ConditionalBatchNorm2d, SelfAttention, apply_spectral_norm, bake_for_export,
                                     count_parametrized, ortho_parameters, orthogonal_penalty)
from gandeploy.models.io import CLASS_LABEL, LATENT
from gandeploy.registry import get_model
from gandeploy.training.ema import GeneratorEMA


def _build(name: str, **arch):
    spec = get_model(name)
    cfg = spec.config_cls(**{**spec.tiny, **arch})
    return spec, cfg


def _set_gamma(module: nn.Module, value: float) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, SelfAttention):
                m.gamma.fill_(value)


def test_self_attention_matches_the_sagan_formula_and_starts_as_identity() -> None:
    torch.manual_seed(0)
    att = SelfAttention(32).eval()
    assert (att.theta.out_channels, att.phi.out_channels, att.g.out_channels, att.out.in_channels) == (4, 4, 16, 16)
    x = torch.randn(3, 32, 8, 6)  # non-square: H and W even
    assert torch.equal(att(x), x), "gamma = 0 at init: the block is the identity"
    with torch.no_grad():
        att.gamma.fill_(0.7)
        theta = att.theta(x).reshape(3, 4, 48)  # [N, C/8, HW]
        phi = F.max_pool2d(att.phi(x), 2).reshape(3, 4, 12)  # [N, C/8, HW/4]
        g = F.max_pool2d(att.g(x), 2).reshape(3, 16, 12)  # [N, C/2, HW/4]
        beta = torch.softmax(torch.einsum("nci,ncj->nij", theta, phi), dim=-1)  # [N, HW, HW/4]
        o = torch.einsum("ncj,nij->nci", g, beta).reshape(3, 16, 8, 6)
        expected = x + 0.7 * att.out(o)
        got = att(x)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert float((got - x).abs().mean()) > 1e-3
    with pytest.raises(ValueError, match="divisible by 8"):
        SelfAttention(12)


@pytest.mark.parametrize("name,arch", [("sagan", {}), ("sagan", {"num_classes": 10}), ("biggan", {})])
def test_bake_for_export_keeps_the_eval_output_and_removes_parametrisations(name: str, arch: dict) -> None:
    spec, cfg = _build(name, **arch)
    torch.manual_seed(0)
    g = spec.build_generator(cfg)
    assert count_parametrized(g) > 0 and count_parametrized(spec.build_discriminator(cfg)) > 0
    _set_gamma(g, 1.0)
    z = torch.randn(5, cfg.nz)
    args = (z, torch.arange(5) % 10) if spec.io(cfg).by_role(CLASS_LABEL) else (z,)
    g.train()
    with torch.no_grad():
        for _ in range(3):  # training forwards: BN statistics and power iterations move
            g(*args)
    g.eval()
    with torch.no_grad():
        ref = g(*args)
        again = g(*args)
    torch.testing.assert_close(again, ref, atol=0, rtol=0)  # eval-mode SN is deterministic
    bake_for_export(g)
    assert count_parametrized(g) == 0 and not g.training
    assert not any("parametrizations" in k or k.endswith(("._u", "._v")) for k in g.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(g(*args), ref, atol=1e-6, rtol=0)
    bake_for_export(g)  # idempotent


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    torch.manual_seed(0)
    lin = apply_spectral_norm(nn.Sequential(nn.Linear(40, 30)))[0]
    u, _ = torch.linalg.qr(torch.randn(30, 30))
    v, _ = torch.linalg.qr(torch.randn(40, 30))
    spectrum = torch.cat([torch.tensor([40.0]), torch.linspace(8.0, 1.0, 29)])  # σ_max 40, a clear gap
    raw = u @ torch.diag(spectrum) @ v.t()
    with torch.no_grad():
        lin.parametrizations.weight.original.copy_(raw)
        for _ in range(20):  # training-mode accesses run power iterations
            w = lin.weight
    assert abs(float(torch.linalg.matrix_norm(w, ord=2)) - 1.0) < 1e-3


def test_conditional_bn_uses_running_stats_in_eval_and_the_condition() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(6, 5)
    x = torch.randn(64, 6, 4, 4) * 3 + 1
    cbn.train()
    cbn(x, torch.randn(64, 5))
    cbn.eval()
    c = torch.randn(64, 5)
    with torch.no_grad():
        full = cbn(x, c)
        one = cbn(x[7:8], c[7:8])
        other = cbn(x[7:8], c[8:9])
    torch.testing.assert_close(one, full[7:8], atol=1e-6, rtol=0)
    assert float((one - other).abs().max()) > 1e-3, "the conditioning vector changes the output"


def test_biggan_batch_one_equals_the_same_item_in_batch_64() -> None:
    spec, cfg = _build("biggan")
    torch.manual_seed(0)
    g = spec.build_generator(cfg)
    _set_gamma(g, 1.0)
    z, y = torch.randn(64, cfg.nz), torch.arange(64) % 10
    g.train()
    with torch.no_grad():
        g(z, y)  # non-trivial running statistics
    g.eval()
    with torch.no_grad():
        full = g(z, y)
        for i in (0, 17, 63):
            torch.testing.assert_close(g(z[i:i + 1], y[i:i + 1]), full[i:i + 1], atol=1e-5, rtol=0)
        assert float((g(z[:1], y[1:2]) - full[:1]).abs().max()) > 1e-3, "the label changes the picture"


def test_orthogonal_penalty_is_biggans_off_diagonal_form() -> None:
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert float(orthogonal_penalty([q[:5] * 3.0])) < 1e-9, "orthogonal rows (any norm) cost nothing"
    w = torch.randn(6, 3, 2, 2, requires_grad=True)
    pen = orthogonal_penalty([w], beta=1e-4)
    m = w.detach().reshape(6, -1)
    off = (m @ m.t()) * (1 - torch.eye(6))
    torch.testing.assert_close(pen.detach(), 1e-4 * off.pow(2).sum())
    pen.backward()
    torch.testing.assert_close(w.grad.reshape(6, -1), 4e-4 * off @ m, rtol=1e-4, atol=1e-7)


def test_ortho_parameters_skip_the_shared_embedding_and_vectors() -> None:
    spec, cfg = _build("biggan")
    g = spec.build_generator(cfg)
    params = ortho_parameters(g)
    ids = {id(p) for p in params}
    assert id(g.shared.weight) not in ids
    assert all(p.dim() >= 2 for p in params)
    assert id(g.linear.parametrizations.weight.original) in ids


def test_ema_copies_before_start_then_averages_buffers_too() -> None:
    spec, cfg = _build("sagan")
    torch.manual_seed(0)
    g = spec.build_generator(cfg)
    ema = GeneratorEMA(g, decay=0.9, start_step=2)
    key_w = "convs.1.parametrizations.weight.original"
    key_bn = "norms.1.bn.running_mean"
    key_u = "convs.1.parametrizations.weight.0._u"
    key_n = "norms.1.bn.num_batches_tracked"

    def train_step() -> None:
        with torch.no_grad():
            g.train()
            g(torch.randn(8, cfg.nz) * 2)  # moves BN stats and u/v
            g.convs[1].parametrizations.weight.original.add_(0.1)

    train_step()
    ema.update(g, step=1)  # before start: a copy
    for k, v in g.state_dict().items():
        assert torch.equal(ema.module.state_dict()[k], v), k
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    train_step()
    ema.update(g, step=2)
    src, got = g.state_dict(), ema.module.state_dict()
    for key in (key_w, key_bn):
        torch.testing.assert_close(got[key], 0.9 * before[key] + 0.1 * src[key])
        assert not torch.equal(got[key], src[key])
    assert torch.equal(got[key_u], src[key_u]) and torch.equal(got[key_n], src[key_n])
    assert ema.updates == 1 and not ema.module.training

    buf = io.BytesIO()
    torch.save(ema.state_dict(), buf)
    buf.seek(0)
    fresh = GeneratorEMA(spec.build_generator(cfg), decay=0.5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.decay == 0.9 and fresh.start_step == 2 and fresh.updates == 1
    z = torch.randn(4, cfg.nz)
    with torch.no_grad():
        torch.testing.assert_close(fresh.module(z), ema.module(z))
    rebuilt = spec.build_generator(cfg)
    rebuilt.load_state_dict(ema.state_dict()["model"])  # same keys as G: export rebuilds it


def test_model_io_and_config_checks() -> None:
    spec, cfg = _build("sagan")
    assert [t.role for t in spec.io(cfg).inputs] == [LATENT]
    spec_c, cfg_c = _build("sagan", num_classes=10)
    assert [t.role for t in spec_c.io(cfg_c).inputs] == [LATENT, CLASS_LABEL]
    d = spec_c.build_discriminator(cfg_c).eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert d(x, torch.zeros(4, dtype=torch.long)).shape == (4,)
        assert not torch.equal(d(x, torch.zeros(4, dtype=torch.long)), d(x, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="attn_res"):
        spec.config_cls(**{**spec.tiny, "attn_res": 32})
    bspec, bcfg = _build("biggan")
    assert [t.role for t in bspec.io(bcfg).inputs] == [LATENT, CLASS_LABEL] and bspec.num_classes(bcfg) > 0
    with pytest.raises(ValueError, match="multiple of 4"):
        bspec.config_cls(**{**bspec.tiny, "nz": 10})
    g = bspec.build_generator(bspec.config_cls(**{**bspec.tiny, "attn_res": 0}))
    assert not any(isinstance(m, SelfAttention) for m in g.modules())
