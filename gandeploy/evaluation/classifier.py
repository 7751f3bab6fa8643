"""A small digits classifier, and the label agreement of a conditional generator measured with it.

The classifier learns only from the *held-out* real digits (data/digits.py ``split="test"``, ~360 images),
which no GAN trains on, and is scored on the ~1,437 training digits it never saw: ``held_out_accuracy``
(about 0.97 at 32x32; the measured figure is logged and returned).

Architecture: images are average-pooled to 8x8 (the digits' native resolution, so any ``image_size``
works), then a 64-256-10 MLP with dropout, trained full-batch with Adam and small random shifts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.data.digits import load_split
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.classifier")


class DigitsClassifier(nn.Module):
    """images [N, C, S, S] in [-1, 1] → logits [N, 10]."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 10))

    @staticmethod
    def features(x: torch.Tensor) -> torch.Tensor:
        """images [N, C, S, S] → [N, 64]: grey, average-pooled to 8x8."""
        x = x.float().mean(dim=1, keepdim=True)  # [N, 1, S, S]
        return F.adaptive_avg_pool2d(x, 8).flatten(1)  # [N, 64]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x))  # [N, 10]


def _shifted_copies(x: torch.Tensor, max_px: int) -> torch.Tensor:
    """Every integer translation of ``x`` [N, C, S, S] by up to ``max_px`` pixels: [(2p+1)² N, C, S, S]."""
    s = x.shape[-1]
    pad = F.pad(x, (max_px,) * 4, value=-1.0)  # [N, C, S+2p, S+2p], background filled
    span = range(2 * max_px + 1)
    return torch.cat([pad[:, :, dy:dy + s, dx:dx + s] for dy in span for dx in span])


@dataclass
class TrainedClassifier:
    model: DigitsClassifier
    held_out_accuracy: float  # on the digits the classifier never saw (the GAN's training split)
    image_size: int


@functools.lru_cache(maxsize=4)
def digits_classifier(image_size: int = 32, iters: int = 600, seed: int = 0) -> TrainedClassifier:
    """Train (once per process and size) the classifier on the held-out digits; score it on the rest."""
    x, y = load_split("test", image_size)  # [~360, 1, S, S]
    tx, ty = load_split("train", image_size)  # [~1437, 1, S, S]
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # deterministic, global RNG untouched
        torch.manual_seed(seed)
        model = DigitsClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
        max_px = max(1, image_size // 16)
        fb = model.features(_shifted_copies(x, max_px))  # [(2p+1)² N, 64]
        yb = y.repeat((2 * max_px + 1) ** 2)
        for _ in range(iters):
            pick = torch.randint(0, fb.shape[0], (256,))  # mini-batch [256]
            loss = F.cross_entropy(model.net(fb[pick]), yb[pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(tx).argmax(1) == ty).float().mean())
    log.info("digits classifier (%dx%d): held-out accuracy %.3f on %d digits", image_size, image_size, acc,
             len(ty))
    return TrainedClassifier(model, acc, image_size)


@dataclass(frozen=True)
class Agreement:
    """How often the classifier reads the label a conditional generator was asked for."""

    overall: float
    per_class: tuple[float, ...]
    classifier_accuracy: float
    n: int


def label_agreement(generator: nn.Module, *, num_classes: int = 10, nz: int | None = None, n_per_class: int = 100,
                    seed: int = 0, image_size: int | None = None) -> Agreement:
    """Generate ``n_per_class`` digits per label with a CGAN ``generator(z, label)`` and classify them."""
    cfg = getattr(generator, "cfg", None)
    nz = nz or int(cfg.nz)
    size = image_size or int(getattr(cfg, "image_size", 32))
    clf = digits_classifier(size)
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)  # [K * n]
    z = torch.randn(labels.shape[0], nz, generator=gen)  # [K * n, nz]
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            images = torch.cat([generator(zc.to(device), lc.to(device)).float().cpu()
                                for zc, lc in zip(z.split(500), labels.split(500))])  # [K * n, C, S, S]
            pred = clf.model(images).argmax(1)  # [K * n]
    finally:
        generator.train(was_training)
    hit = (pred == labels).float()
    per_class = tuple(float(hit[labels == c].mean()) for c in range(num_classes))
    return Agreement(float(hit.mean()), per_class, clf.held_out_accuracy, int(labels.shape[0]))


@torch.no_grad()
def classify_digits(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted digit [N], its softmax probability [N]) for images [N, C, S, S] in [-1, 1].

    For unconditional generators: the histogram of predictions shows which digits are produced (mode
    coverage), the probabilities how legible they are.
    """
    clf = digits_classifier(int(images.shape[-1]))
    prob = clf.model(images.float().cpu()).softmax(dim=1)  # [N, 10]
    conf, pred = prob.max(dim=1)
    return pred, conf
