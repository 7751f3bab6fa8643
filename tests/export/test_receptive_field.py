"""The receptive field measurement: exact on nets whose field is known, open on a global one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gandeploy.export.calibration import shipped_photo
from gandeploy.export.receptive_field import measure_receptive_field
from gandeploy.models.io import GeneratorIO, image_input, image_output


def _runner(net: nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()
    return run


def _io(scale: int = 1) -> GeneratorIO:
    return GeneratorIO((image_input(3, value_range=(0.0, 1.0)),), (image_output(3, scale=scale, value_range=(0.0, 1.0)),))


def test_stacked_convolutions_reach_their_theoretical_radius() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Conv2d(3, 3, 5, padding=2) for _ in range(3)], nn.Sigmoid()).eval()  # radius 2·3 = 6
    field = measure_receptive_field(_runner(net), _io(), shipped_photo("coffee"), picture_name="coffee")
    assert field["radius"] == 6 and field["bounded"] and field["probe_side"] == 32


def test_upscaled_outputs_are_measured_in_input_pixels() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Upsample(scale_factor=4, mode="nearest"),
                        nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid()).eval()  # 1 + a fraction of an input pixel
    field = measure_receptive_field(_runner(net), _io(scale=4), shipped_photo("coffee"), picture_name="coffee")
    assert field["radius"] == 2 and field["bounded"]


def test_a_global_field_grows_the_crop_and_is_recorded_unbounded() -> None:
    class Global(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x + 0.25 + 0.2 * torch.sin(5000 * x.mean(dim=(2, 3), keepdim=True))  # global

    field = measure_receptive_field(_runner(Global()), _io(), shipped_photo("coffee"), picture_name="coffee",
                                    max_side=64)
    assert not field["bounded"] and field["probe_side"] == 64 and field["radius"] >= 24
