"""InfoGAN's ``z_at``: z joins G at a later resolution, so the coarse map comes from the codes alone; the served
contract and the ONNX graph's inputs stay the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gandeploy.models.infogan import InfoGANConfig, build_generator, generator_io

TINY = {"nz": 8, "n_cat": 10, "n_cont": 2, "ngf": 4, "ndf": 4, "q_hidden": 8}


@pytest.mark.parametrize("z_at", [4, 8, 16])
def test_coarse_map_comes_from_the_codes_alone(z_at: int) -> None:
    torch.manual_seed(0)
    g = build_generator(InfoGANConfig(**TINY, z_at=z_at)).eval()
    code, cont = torch.arange(4), torch.rand(4, 2) * 2 - 1
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    seen: list[torch.Tensor] = []
    hook = g.main[g.z_index].register_forward_pre_hook(lambda _m, args: seen.append(args[0][:, :-8]))
    with torch.no_grad():
        out1, out2 = g(z1, code, cont), g(z2, code, cont)
    hook.remove()
    assert seen[0].shape[2:] == (z_at, z_at)  # z joins the z_at x z_at map
    assert torch.equal(seen[0], seen[1])  # the map before z is the same for any z
    assert not torch.allclose(out1, out2, atol=1e-4)  # z still draws the details
    assert out1.shape == (4, 1, 32, 32)
    assert generator_io(InfoGANConfig(**TINY, z_at=z_at)) == generator_io(InfoGANConfig(**TINY))


@pytest.mark.parametrize("bad", [2, 3, 32])
def test_z_at_must_be_a_map_size_of_g(bad: int) -> None:
    with pytest.raises(ValueError, match="z_at must be 1 or a power of 2"):
        InfoGANConfig(**TINY, z_at=bad)


def test_late_z_exports_to_onnx_with_a_dynamic_batch(tmp_path: Path) -> None:
    import onnxruntime as ort

    from gandeploy.export.torch2onnx import export_onnx

    cfg = InfoGANConfig(**TINY, z_at=8)
    torch.manual_seed(0)
    g = build_generator(cfg).eval()
    path = tmp_path / "g.onnx"
    export_onnx(g, generator_io(cfg), path)
    z, code, cont = torch.randn(5, 8), torch.arange(5), torch.rand(5, 2) * 2 - 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, (z.numpy(), code.numpy(), cont.numpy()))))[0]
    with torch.no_grad():
        want = g(z, code, cont).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
