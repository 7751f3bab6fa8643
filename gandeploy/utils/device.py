"""Device selection and reproducible seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from gandeploy.errors import UserInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto") -> torch.device:
    """Map ``--device auto|cpu|cuda[:N]`` to a torch device; asking for CUDA without a GPU is a user error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError("--device cuda was given but no CUDA GPU is visible; use --device cpu or auto.")
        return torch.device(choice)
    raise UserInputError(f"--device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got '{choice}'.")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, stream: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for one training step: randomness is a pure function of (seed, step, stream).

    Training draws noise, batches and augmentations from these, so a resumed run draws exactly what an
    uninterrupted run would have drawn, with no RNG state to save.
    """
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + step * 97 + stream * 7919) % (2**63 - 1))
    return gen
