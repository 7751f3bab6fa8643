"""The MLP GAN's architecture fields: the discriminator's own width and BatchNorm in G (PacGAN's 2D layout)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gandeploy.models.mlp import MLPConfig, build_discriminator, build_generator


def test_d_hidden_sets_only_the_discriminator_width() -> None:
    cfg = MLPConfig(hidden=32, d_hidden=48, layers=2)
    g_widths = {m.out_features for m in build_generator(cfg).modules() if isinstance(m, nn.Linear)}
    d_widths = {m.out_features for m in build_discriminator(cfg).modules() if isinstance(m, nn.Linear)}
    assert g_widths == {32, 2} and d_widths == {48, 1}
    assert {m.out_features for m in build_discriminator(MLPConfig(hidden=32)).modules()
            if isinstance(m, nn.Linear)} == {32, 1}  # 0: same as G


def test_g_batchnorm_adds_one_norm_per_hidden_layer_and_batch_1_works_in_eval() -> None:
    g = build_generator(MLPConfig(hidden=16, layers=3, g_batchnorm=True))
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 3
    g.train()
    g(torch.randn(64, 2))  # running statistics move
    g.eval()
    z = torch.randn(8, 2)
    assert torch.allclose(g(z[:1]), g(z)[:1], atol=1e-6)  # eval mode: an item does not depend on its batch
    assert not any(isinstance(m, nn.BatchNorm1d) for m in build_discriminator(MLPConfig(g_batchnorm=True)).modules())


def test_bad_d_hidden_is_refused() -> None:
    with pytest.raises(ValueError, match="d_hidden"):
        MLPConfig(d_hidden=-1)
