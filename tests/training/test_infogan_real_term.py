"""InfoGAN's clustering term on real pictures (``--lambda-real``): its value, its flag, its logged columns."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gandeploy.training.infogan import InfoGANOptions, InfoGANTask

from training_helpers import TINY_INFOGAN, assert_clean_error, cli, logged_columns



class FixedQ(nn.Module):
    """A stand-in D whose Q head returns the given categorical logits for any batch."""

    def __init__(self, cat_logits: torch.Tensor) -> None:
        super().__init__()
        self.cat_logits = nn.Parameter(cat_logits.clone())

    def forward(self, x: torch.Tensor, with_q: bool = False):
        n = x.shape[0]
        return torch.zeros(n), self.cat_logits, torch.zeros(n, 2)


def term(cat_logits: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, dict, FixedQ]:
    """(the term, its logged parts, the stand-in D) for ``cat_logits`` [N, n_cat] as Q's output."""
    task = SimpleNamespace(options=InfoGANOptions(lambda_real=weight))
    d = FixedQ(cat_logits)
    _, extra, logs = InfoGANTask.critic_real(task, d, torch.zeros(cat_logits.shape[0], 1, 32, 32), {})
    return extra, logs, d


def test_the_term_rewards_every_category_used_confidently() -> None:
    n = 10
    undecided, _, _ = term(torch.zeros(n, n))  # every picture 1/10 each: H_cond = H_marginal = ln 10
    assert undecided.item() == pytest.approx(0.0, abs=1e-5)
    sorted_, logs, _ = term(30.0 * torch.eye(n))  # each picture its own category, sure of it
    assert sorted_.item() == pytest.approx(-math.log(n), abs=1e-4)
    assert logs["real_H_marginal"].item() == pytest.approx(math.log(n), abs=1e-4)
    merged, logs, _ = term(30.0 * torch.eye(n)[[0] * n])  # every picture in category 0, sure of it
    assert merged.item() == pytest.approx(0.0, abs=1e-4) and logs["real_H_cond"].item() < 1e-4
    assert sorted_.item() < merged.item() and sorted_.item() < undecided.item()
    half, _, _ = term(30.0 * torch.eye(n), weight=0.5)
    assert half.item() == pytest.approx(0.5 * sorted_.item(), abs=1e-5)


def test_the_term_trains_q_to_sort_pictures_into_every_category() -> None:
    """Gradient descent on the term from Q's undecided start (near-uniform logits) ends with every picture sure
    of one category and the categories used nearly evenly."""
    torch.manual_seed(0)
    _, start, d = term(0.1 * torch.randn(40, 10))
    assert start["real_H_cond"].item() > 2.2  # undecided: ≈ ln 10 = 2.30
    opt = torch.optim.Adam(d.parameters(), lr=0.1)
    task = SimpleNamespace(options=InfoGANOptions(lambda_real=1.0))
    for _ in range(150):
        opt.zero_grad()
        _, extra, logs = InfoGANTask.critic_real(task, d, torch.zeros(40, 1, 32, 32), {})
        extra.backward()
        opt.step()
    assert logs["real_H_cond"].item() < 0.05 and logs["real_H_marginal"].item() > 2.2  # ln 10 = 2.30: even


def test_lambda_real_flag_trains_and_logs(tmp_path: Path) -> None:
    logged = logged_columns(tmp_path / "info", "--lambda-real", "1.0", columns=("real_H_cond", "real_H_marginal"))
    for values in logged.values():
        assert len(values) == 3 and all(0.0 <= v <= math.log(10) + 1e-4 for v in values)


def test_negative_lambda_real_is_refused() -> None:
    result = cli("train", "infogan", "digits", "--lambda-real", "-1", "--steps", "1", *TINY_INFOGAN)
    assert_clean_error(result, 1, "lambda_real must be >= 0 (got -1.0)")
