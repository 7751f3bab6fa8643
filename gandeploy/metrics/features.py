"""Pluggable feature extractors for the distribution metrics (distribution.py): ``digits``, ``inception``, ``pixels``.

Each extractor maps generator-space samples — images [N, C, H, W] in [-1, 1] or points [N, D] — to features
[N, d] float64, in batches under a progress bar:

* ``digits``: the penultimate layer (128 ReLU units) of a small CNN trained deterministically on the digits
  *training* split (data/digits.py) and scored on the held-out split, which FID then uses as the real set. The
  weights are cached beside the data (``<data_root>/digits/feature-cnn-<hash>.pt``, keyed by the training
  recipe) so every evaluation shares one feature space. (The judge in classifier.py learns from the held-out
  split instead — so that it can score GAN samples of the training split — which would leak the FID reference
  set into the features; hence a second network.)
* ``inception``: the standard FID InceptionV3 (pool3, 2048-d) through torch-fidelity, from ``--inception-weights``,
  ``$GANDEPLOY_INCEPTION_WEIGHTS`` or torch hub's cache. Missing weights are an error naming the file; nothing
  is ever downloaded.
* ``pixels``: the raw values (2D / 1D points; tiny images).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gandeploy.errors import BackendUnavailable, UserInputError, unknown_choice
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.features")

FEATURES = ("digits", "inception", "pixels")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's name for the TF FID weights
INCEPTION_ENV = "GANDEPLOY_INCEPTION_WEIGHTS"
CNN_SIZE = 16  # the CNN sees digits at 16x16 grey (their native resolution is 8x8)
CNN_RECIPE = {"version": 3, "iters": 500, "batch": 128, "lr": 2e-3, "shift": 1, "seed": 0}


class DigitsFeatureNet(nn.Module):
    """images [N, C, S, S] in [-1, 1] → logits [N, 10]; ``features`` gives the 128-d penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # [N, 32, 8, 8]
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # [N, 64, 4, 4]
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU())  # [N, 128]
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, 10))
        # features are divided by their RMS over the training digits (set after training), so that KID's cubic
        # kernel sees values of order 1, as with Inception features
        self.register_buffer("scale", torch.ones(()))

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """[N, C, S, S] → [N, 1, 16, 16]: grey, resized (area) to the CNN's size."""
        x = x.float().mean(dim=1, keepdim=True)
        return F.interpolate(x, size=(CNN_SIZE, CNN_SIZE), mode="area") if x.shape[-1] != CNN_SIZE else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(self.prepare(x))) / self.scale  # [N, 128]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(self.conv(self.prepare(x))))  # [N, 10]


@dataclass(frozen=True)
class DigitsFeatures:
    """The trained digits CNN and its accuracy on the held-out split it never saw."""

    model: DigitsFeatureNet
    held_out_accuracy: float
    cache: Path | None


def _shifted_copies(x: torch.Tensor, max_px: int) -> torch.Tensor:
    """Every integer translation of ``x`` [N, 1, S, S] by up to ``max_px`` pixels: [(2p+1)² N, 1, S, S]."""
    s = x.shape[-1]
    pad = F.pad(x, (max_px,) * 4, value=-1.0)  # [N, 1, S+2p, S+2p], background filled
    span = range(2 * max_px + 1)
    return torch.cat([pad[:, :, dy:dy + s, dx:dx + s] for dy in span for dx in span])


def _train_digits_cnn() -> DigitsFeatureNet:
    from gandeploy.data.digits import load_split

    r = CNN_RECIPE
    x, y = load_split("train", CNN_SIZE)  # [~1437, 1, 16, 16]
    shift = int(r["shift"])
    xs, ys = _shifted_copies(x, shift), y.repeat((2 * shift + 1) ** 2)  # [9 N, 1, 16, 16], [9 N]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float summation order, so the same weights, on any CPU
    try:
        return _fit(model_seed=int(r["seed"]), xs=xs, ys=ys, x=x)
    finally:
        torch.set_num_threads(threads)


def _fit(model_seed: int, xs: torch.Tensor, ys: torch.Tensor, x: torch.Tensor) -> DigitsFeatureNet:
    r = CNN_RECIPE
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # deterministic; global RNG untouched
        torch.manual_seed(model_seed)
        gen = torch.Generator().manual_seed(model_seed)
        model = DigitsFeatureNet()
        opt = torch.optim.Adam(model.parameters(), lr=float(r["lr"]), weight_decay=1e-4)
        for _ in tqdm(range(int(r["iters"])), desc="digits feature CNN", unit="step", leave=False, disable=None):
            pick = torch.randint(0, xs.shape[0], (int(r["batch"]),), generator=gen)  # [B]
            loss = F.cross_entropy(model(xs[pick]), ys[pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        model.scale.fill_(float(model.fc(model.conv(x)).pow(2).mean().sqrt()))
    return model


@functools.lru_cache(maxsize=2)
def digits_features(data_root: str | None = None) -> DigitsFeatures:
    """Load the cached digits CNN (or train and cache it), and measure its held-out accuracy."""
    from gandeploy.data.digits import load_split
    from gandeploy.utils import paths
    from gandeploy.utils.io import atomic_write_bytes

    tag = hashlib.sha256(json.dumps(CNN_RECIPE, sort_keys=True).encode()).hexdigest()[:12]
    cache = Path(data_root or paths.data_dir()) / "digits" / f"feature-cnn-{tag}.pt"
    model = DigitsFeatureNet()
    try:
        model.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        model.eval()
    except (OSError, RuntimeError, ValueError):  # absent or stale: retrain (seconds on a CPU)
        model = _train_digits_cnn()
        try:
            import io

            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            atomic_write_bytes(cache, buf.getvalue())
        except OSError as exc:
            log.warning("could not cache the digits feature CNN at %s (%s)", cache, exc)
            cache = None  # type: ignore[assignment]
    tx, ty = load_split("test", CNN_SIZE)
    with torch.no_grad():
        acc = float((model(tx).argmax(1) == ty).float().mean())
    log.info("digits feature CNN: held-out accuracy %.4f on %d digits (%s)", acc, len(ty), cache)
    return DigitsFeatures(model, acc, cache)


def inception_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The FID Inception weights: ``path``, else ``$GANDEPLOY_INCEPTION_WEIGHTS``, else torch hub's cache."""
    given = path or os.environ.get(INCEPTION_ENV)
    if given:
        file = Path(given).expanduser()
        if not file.is_file():
            raise UserInputError(f"--inception-weights '{file}' does not exist (expected torch-fidelity's "
                                 f"{INCEPTION_FILE}).")
        return file
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached
    raise UserInputError(
        f"--features inception needs the standard FID Inception weights '{INCEPTION_FILE}' (torch-fidelity's "
        f"release v0.2.0), which are not here and are never downloaded at run time: fetch that file and pass "
        f"--inception-weights FILE, set ${INCEPTION_ENV}, or put it at {cached}.")


def _inception_extractor(path: str | os.PathLike[str] | None) -> Callable[[torch.Tensor], torch.Tensor]:
    weights = inception_weights(path)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as exc:  # noqa: BLE001 - torchvision raises RuntimeError when built for another torch
        raise BackendUnavailable(f"--features inception needs torch-fidelity and a torchvision built for this "
                                 f"torch (pip install 'gandeploy[inception]'): {exc}") from None
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                      feature_extractor_weights_path=str(weights)).eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        u8 = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # the served pixels
        if u8.shape[1] == 1:
            u8 = u8.repeat(1, 3, 1, 1)  # grey → RGB
        return net(u8)[0]  # [N, 2048]

    return run


class FeatureExtractor:
    """``extractor(samples)`` → features [N, d] float64, batch by batch under a progress bar."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor], batch: int = 500,
                 info: dict[str, object] | None = None) -> None:
        self.name, self.fn, self.batch = name, fn, batch
        self.info = dict(info or {})

    @torch.no_grad()
    def __call__(self, samples: np.ndarray | torch.Tensor, desc: str = "features") -> np.ndarray:
        x = torch.as_tensor(np.asarray(samples), dtype=torch.float32)
        parts = [self.fn(x[i:i + self.batch]).double().reshape(min(self.batch, x.shape[0] - i), -1)
                 for i in tqdm(range(0, x.shape[0], self.batch), desc=f"{desc} ({self.name})", unit="batch",
                               leave=False, disable=None)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, 0))


def get_extractor(name: str, *, inception_weights_path: str | os.PathLike[str] | None = None,
                  data_root: str | os.PathLike[str] | None = None) -> FeatureExtractor:
    """The extractor ``name`` (one of ``FEATURES``)."""
    if name == "digits":
        trained = digits_features(str(data_root) if data_root is not None else None)
        return FeatureExtractor("digits", trained.model.features,
                                info={"held_out_accuracy": round(trained.held_out_accuracy, 4),
                                      "cache": str(trained.cache)})
    if name == "inception":
        return FeatureExtractor("inception", _inception_extractor(inception_weights_path), batch=64)
    if name == "pixels":
        return FeatureExtractor("pixels", lambda x: x.reshape(x.shape[0], -1))
    raise unknown_choice("feature extractor", name, FEATURES, flag="--features")
