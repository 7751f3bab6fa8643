"""A small digits classifier, and the label agreement of a conditional generator measured with it.

The classifier learns only from the *held-out* real digits (data/digits.py ``split="test"``, ~360 images),
which no GAN trains on, and is scored on the ~1,437 training digits it never saw: ``held_out_accuracy``
(about 0.97 at 32x32; the measured figure is logged and returned).

Architecture: images are average-pooled to 8x8 (the digits' native resolution, so any ``image_size``
works), then a 64-256-10 MLP with dropout, trained full-batch with Adam and small random shifts.

The fitted classifier is cached in the user cache folder (``gandeploy.utils.io.cache_dir()``:
``digits-classifier-<key>.pt``, written atomically), keyed by the SHA-256 of its data (both splits at the
size) and every fitting setting, so the first health check of a run (step 100) loads it in well under a second
instead of fitting it again (~20-35 s on 2 loaded CPU cores). A missing, damaged or foreign file is refitted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

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


CACHE_FORMAT = "gandeploy.digits-classifier/1"  # bump when the architecture or the fitting code changes
FIT_SETTINGS = {"hidden": 256, "lr": 2e-3, "weight_decay": 1e-4, "batch": 256, "dropout": 0.2}


@functools.lru_cache(maxsize=4)
def digits_classifier(image_size: int = 32, iters: int = 600, seed: int = 0) -> TrainedClassifier:
    """The classifier fitted on the held-out digits and scored on the rest: from the user cache when a file
    with the same data and settings is there, else fitted (and cached) now. Once per process and size."""
    x, y = load_split("test", image_size)  # [~360, 1, S, S]
    tx, ty = load_split("train", image_size)  # [~1437, 1, S, S]
    path = _cache_path(x, y, tx, ty, image_size=image_size, iters=iters, seed=seed)
    cached = _load_cached(path)
    if cached is not None:
        model, acc = cached
        log.info("digits classifier (%dx%d) from %s: held-out accuracy %.3f", image_size, image_size, path, acc)
        return TrainedClassifier(model, acc, image_size)
    model, acc = _fit(x, y, tx, ty, image_size, iters, seed)
    _save_cached(path, model, acc)
    return TrainedClassifier(model, acc, image_size)


def _cache_path(*data: torch.Tensor, **settings: int) -> Path:
    """``cache_dir()/digits-classifier-<sha256 of the data, the settings and the format>.pt``."""
    import hashlib
    import json

    from gandeploy.utils.io import cache_dir

    digest = hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **FIT_SETTINGS, **settings},
                                       sort_keys=True).encode())
    for t in data:
        digest.update(t.contiguous().numpy().tobytes())
    return cache_dir() / f"digits-classifier-{digest.hexdigest()[:16]}.pt"


def _load_cached(path: Path) -> tuple[DigitsClassifier, float] | None:
    """(model, held-out accuracy) from ``path``; None when it is absent, damaged or of another format."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != CACHE_FORMAT:
            return None
        model = DigitsClassifier(hidden=FIT_SETTINGS["hidden"])
        model.load_state_dict(state["model"])
        return model.eval(), float(state["held_out_accuracy"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged cache file is refitted, never fatal
        log.warning("ignoring the damaged digits classifier cache %s (%s); fitting it again", path, exc)
        return None


def _save_cached(path: Path, model: DigitsClassifier, acc: float) -> None:
    import io

    from gandeploy.utils.io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": CACHE_FORMAT, "model": model.state_dict(), "held_out_accuracy": acc}, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # a read-only home: fit again next time
        log.warning("could not cache the digits classifier at %s (%s)", path, exc)


def _fit(x: torch.Tensor, y: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, image_size: int, iters: int,
         seed: int) -> tuple[DigitsClassifier, float]:
    """Fit on (x, y) with random shifts; the accuracy on (tx, ty), which it never saw."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # deterministic, global RNG untouched
        torch.manual_seed(seed)
        model = DigitsClassifier(hidden=FIT_SETTINGS["hidden"])
        opt = torch.optim.Adam(model.parameters(), lr=FIT_SETTINGS["lr"], weight_decay=FIT_SETTINGS["weight_decay"])
        max_px = max(1, image_size // 16)
        fb = model.features(_shifted_copies(x, max_px))  # [(2p+1)² N, 64]
        yb = y.repeat((2 * max_px + 1) ** 2)
        for _ in range(iters):
            pick = torch.randint(0, fb.shape[0], (FIT_SETTINGS["batch"],))  # mini-batch [256]
            loss = F.cross_entropy(model.net(fb[pick]), yb[pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(tx).argmax(1) == ty).float().mean())
    log.info("digits classifier (%dx%d): held-out accuracy %.3f on %d digits", image_size, image_size, acc,
             len(ty))
    return model, acc


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
