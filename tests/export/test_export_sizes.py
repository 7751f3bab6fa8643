"""The default minimum image size of an export is the smallest side the generator runs at (measured), so
serving never pads a small picture beyond the size rule: padding changes the output near the padded border."""

from __future__ import annotations

import pytest
import torch

from gandeploy.config import RunConfig
from gandeploy.export.sizes import plan_sizes, smallest_side, torch_runs_at
from gandeploy.registry import get_model


def _plan(model: str, **over: object) -> dict:
    spec = get_model(model)
    arch = spec.config_cls(**{**spec.tiny, **over})
    torch.manual_seed(0)
    module = spec.build_generator(arch).eval()
    io_spec = spec.io(arch)
    return plan_sizes(RunConfig(model=model, arch=arch), io_spec, None, None, None,
                      runs_at=torch_runs_at(module, io_spec))


@pytest.mark.parametrize(("model", "over", "side"), [("srvgg", {}, 1), ("esrgan", {"scale": 2}, 2),
                                                     ("esrgan", {"scale": 4}, 1)])
def test_sr_generators_accept_their_size_rule_as_the_minimum(model: str, over: dict, side: int) -> None:
    sizes = _plan(model, **over)
    assert sizes["min"] == (side, side)
    assert sizes["max"] == (512, 512)


def test_a_generator_that_cannot_run_at_the_size_rule_gets_the_smallest_side_it_runs_at() -> None:
    """CycleGAN's ResNet generator declares multiples of 4 but its reflection pads need more than 4 pixels."""
    sizes = _plan("cyclegan", image_size=32)
    spec = get_model("cyclegan")
    arch = spec.config_cls(**{**spec.tiny, "image_size": 32})
    runs_at = torch_runs_at(spec.build_generator(arch).eval(), spec.io(arch))
    side = sizes["min"][0]
    assert side % 4 == 0 and 4 < side <= 32 and runs_at(side) and not runs_at(side // 2)


def test_smallest_side_stops_at_the_cap() -> None:
    tried = []
    assert smallest_side(lambda s: tried.append(s) or False, 4, 64) == 64
    assert tried == [4, 8, 16, 32]
    assert smallest_side(lambda s: s >= 12, 3, 64) == 12
