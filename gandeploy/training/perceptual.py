"""The perceptual (VGG feature) loss of SRGAN / ESRGAN, with VGG19 defined here so torchvision is not needed.

``VGG19Features`` has torchvision's ``vgg19().features`` layout (``features.N`` indices: convs at 0, 2, 5, 7,
10, …, 34), so torchvision's published weights (``vgg19-dcbb9e9d.pth``) load by key. The weights are never
downloaded: ``--vgg-weights PATH`` names a file the user has. ESRGAN (and BasicSR's default) compares the
``conv5_4`` features *before* their ReLU (index 34) of ImageNet-normalised [0, 1] pictures with an L1 loss.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.errors import UserInputError

# torchvision's VGG19 ("E"): channels of each 3x3 conv, "M" a 2x2 max-pool; each conv is followed by a ReLU
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
CONV5_4 = 34  # index of conv5_4 in ``features``; the loss reads its output before the ReLU at 35
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FLAG = "--vgg-weights"


class VGG19Features(nn.Module):
    """picture [N, 3, H, W] in [0, 1] → VGG19 features up to layer ``last`` (inclusive), frozen, eval mode.

    ``features`` holds layers 0 .. ``last`` of torchvision's ``vgg19().features`` under the same indices.
    """

    def __init__(self, last: int = CONV5_4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers[:last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always eval: no dropout or BN here, but keep the frozen net's mode fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)  # [N, 512, H/16, W/16] at conv5_4


def load_vgg19(path: str | os.PathLike[str], last: int = CONV5_4) -> VGG19Features:
    """``VGG19Features`` with the weights in ``path``: a torchvision-layout state dict (``features.N.weight`` /
    ``.bias``; ``classifier.*`` is ignored), bare or under ``state_dict``. Errors name ``--vgg-weights``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserInputError(f"{FLAG}: '{file}' does not exist; pass the path of torchvision-layout VGG19 "
                             "weights (e.g. vgg19-dcbb9e9d.pth), or drop the flag to train without the perceptual "
                             "loss (gandeploy never downloads them).")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserInputError(f"{FLAG}: cannot read '{file}' as PyTorch weights ({type(exc).__name__}: {exc}).") \
            from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserInputError(f"{FLAG}: '{file}' holds no state dict.")
    net = VGG19Features(last)
    own = net.state_dict()
    weights = {k: v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(weights))
    if missing:
        raise UserInputError(f"{FLAG}: '{file}' is not torchvision-layout VGG19 weights: it lacks "
                             f"{', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}.")
    bad = [k for k in own if tuple(own[k].shape) != tuple(weights[k].shape)]
    if bad:
        raise UserInputError(f"{FLAG}: '{file}': {bad[0]} has shape {tuple(weights[bad[0]].shape)}, VGG19's is "
                             f"{tuple(own[bad[0]].shape)}.")
    net.load_state_dict(weights)
    return net


def perceptual_loss(vgg: VGG19Features, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between the VGG features of ``fake`` and ``real`` ([N, 3, H, W] in [0, 1]); the target's features carry
    no gradient. Grey pictures are repeated to three channels."""
    if fake.shape[1] == 1:
        fake, real = fake.expand(-1, 3, -1, -1), real.expand(-1, 3, -1, -1)
    with torch.no_grad():
        target = vgg(real)
    return F.l1_loss(vgg(fake), target)
