"""InfoGAN's ``z_scale``: G sees z shrunk by it, the served contract still takes z ~ N(0, 1)."""

from __future__ import annotations

import pytest
import torch

from gandeploy.models.infogan import InfoGANConfig, build_generator, generator_io

TINY = {"nz": 8, "n_cat": 10, "n_cont": 2, "ngf": 4, "ndf": 4, "q_hidden": 8}


def test_z_scale_shrinks_z_inside_g() -> None:
    torch.manual_seed(0)
    plain = build_generator(InfoGANConfig(**TINY)).eval()
    shrunk = build_generator(InfoGANConfig(**TINY, z_scale=0.1)).eval()
    shrunk.load_state_dict(plain.state_dict())  # same weights: z_scale is not a parameter
    z, code, cont = torch.randn(6, 8), torch.arange(6), torch.rand(6, 2) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(shrunk(z, code, cont), plain(0.1 * z, code, cont), rtol=1e-5, atol=0.0)
        assert not torch.allclose(shrunk(z, code, cont), plain(z, code, cont), rtol=1e-2, atol=0.0)
    assert generator_io(InfoGANConfig(**TINY, z_scale=0.1)) == generator_io(InfoGANConfig(**TINY))


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_z_scale_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="z_scale must be > 0"):
        InfoGANConfig(**TINY, z_scale=bad)
