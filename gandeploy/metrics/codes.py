"""What an InfoGAN's latent codes learned, measured with the held-out digits judge (``classifier.py``).

- ``code_mapping``: generate ``n_per_code`` samples per category of the (first) categorical code, classify them,
  and find the best one-to-one mapping between categories and judged digits (``match_codes``: the Hungarian
  algorithm on the confusion matrix, ``scipy.optimize.linear_sum_assignment``; ``gandeploy evaluate`` runs it on
  its own evaluated samples for the per-code rows). Its accuracy is the share of samples whose digit
  is the one their category maps to — unsupervised InfoGAN's headline figure (the paper: 5 % error on MNIST).
- ``continuous_effects``: sweep each continuous code over [-2, 2] with everything else fixed and correlate the
  code value with simple shape measures of the pictures — slant (the ink's shear, mu11 / mu02), width (the ink's
  horizontal spread) and ink (mean darkness) — so "code 0 controls slant" is a number, not a glance.

Both work on any generator whose declared IO has the roles (no family or tensor names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gandeploy.metrics.classifier import classify_digits, digits_classifier
from gandeploy.models.io import CATEGORICAL_CODE, CONTINUOUS_CODE, GeneratorIO
from gandeploy.models.inputs import draw_inputs

SWEEP = np.linspace(-2.0, 2.0, 9)
DIGITS = 10  # classes of the digits judge


@dataclass(frozen=True)
class CodeMapping:
    accuracy: float  # best one-to-one category → digit mapping
    mapping: tuple[int, ...]  # mapping[k] = digit of category k
    per_code: tuple[float, ...]  # share of category k's samples judged as mapping[k]
    classifier_accuracy: float
    n: int


@torch.no_grad()
def _generate(generator: nn.Module, io: GeneratorIO, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        chunks = [generator(*(inputs[n][i:i + 500].to(device) for n in io.input_names)).float().cpu()
                  for i in range(0, next(iter(inputs.values())).shape[0], 500)]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)  # [N, C, S, S]


def match_codes(codes: np.ndarray, judged: np.ndarray, k: int, n_classes: int = DIGITS,
                ) -> tuple[tuple[int, ...], np.ndarray]:
    """(mapping, confusion [K, n_classes]) for samples of category ``codes`` [N] judged as ``judged`` [N]: the
    one-to-one category → class mapping that matches the most samples (Hungarian algorithm on the confusion
    matrix); ``mapping[k]`` is -1 for a category left over when K > n_classes."""
    from scipy.optimize import linear_sum_assignment

    confusion = np.zeros((k, n_classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(codes, dtype=np.int64), np.asarray(judged, dtype=np.int64)), 1)
    rows, cols = linear_sum_assignment(-confusion)  # maximise matched samples
    mapping = [-1] * k
    for r, c in zip(rows, cols, strict=True):
        mapping[int(r)] = int(c)
    return tuple(mapping), confusion


def code_mapping(generator: nn.Module, io: GeneratorIO, n_per_code: int = 100, seed: int = 0) -> CodeMapping:
    """Hungarian-matched accuracy between the categorical code and the judged digit (see module docstring)."""
    code = io.by_role(CATEGORICAL_CODE)[0]
    k = code.classes
    gen = torch.Generator().manual_seed(seed)
    inputs = draw_inputs(io, k * n_per_code, gen)
    inputs[code.name] = torch.arange(k).repeat_interleave(n_per_code)  # [K * n]
    images = _generate(generator, io, inputs)
    pred, _ = classify_digits(images)  # [K * n]
    mapping, confusion = match_codes(inputs[code.name].numpy(), pred.numpy(), k)
    hits = [int(confusion[r, mapping[r]]) if mapping[r] >= 0 else 0 for r in range(k)]
    clf = digits_classifier(int(images.shape[-1]))
    return CodeMapping(sum(hits) / float(k * n_per_code), tuple(mapping),
                       tuple(h / float(n_per_code) for h in hits), clf.held_out_accuracy, k * n_per_code)


def shape_measures(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per picture [N, C, S, S] in [-1, 1]: slant (mu11 / mu02 of the ink), width (ink's x std), ink (mean)."""
    ink = ((images.float().mean(dim=1) + 1.0) / 2.0).clamp(0, 1).numpy()  # [N, S, S]: bright ink (digits)
    if ink.mean() > 0.5:  # dark ink on light paper: ink is the dark part
        ink = 1.0 - ink
    s = ink.shape[-1]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    mass = ink.sum(axis=(1, 2)) + 1e-8
    cx = (ink * xx).sum(axis=(1, 2)) / mass
    cy = (ink * yy).sum(axis=(1, 2)) / mass
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    mu11 = (ink * dx * dy).sum(axis=(1, 2)) / mass
    mu02 = (ink * dy * dy).sum(axis=(1, 2)) / mass + 1e-8
    mu20 = (ink * dx * dx).sum(axis=(1, 2)) / mass
    return {"slant": mu11 / mu02, "width": np.sqrt(mu20), "ink": ink.mean(axis=(1, 2))}


def continuous_effects(generator: nn.Module, io: GeneratorIO, n_seeds: int = 50, seed: int = 0,
                       ) -> dict[int, dict[str, float]]:
    """For each continuous code i: the correlation of its value (swept over [-2, 2]) with each shape measure,
    over ``n_seeds`` random settings of the other inputs."""
    cont = io.by_role(CONTINUOUS_CODE)[0]
    m = int(cont.shape[1])
    gen = torch.Generator().manual_seed(seed)
    base = draw_inputs(io, n_seeds, gen)
    out: dict[int, dict[str, float]] = {}
    for i in range(m):
        inputs = {k: v.repeat_interleave(len(SWEEP), dim=0) for k, v in base.items()}  # [n * 9, ...]
        values = torch.zeros(n_seeds * len(SWEEP), m)
        values[:, i] = torch.tensor(SWEEP, dtype=torch.float32).repeat(n_seeds)
        inputs[cont.name] = values
        measures = shape_measures(_generate(generator, io, inputs))
        sweep = values[:, i].numpy()
        out[i] = {name: float(np.corrcoef(sweep, v)[0, 1]) if np.std(v) > 0 else 0.0 for name, v in measures.items()}
    return out


def describe_effects(effects: dict[int, dict[str, float]]) -> str:
    """'code 0: slant (r=+0.91); code 1: width (r=-0.85)' — each code's strongest measure."""
    parts = []
    for i, corr in effects.items():
        name = max(corr, key=lambda k: abs(corr[k]))
        parts.append(f"code {i}: {name} (r={corr[name]:+.2f})")
    return "; ".join(parts)
