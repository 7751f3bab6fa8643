"""InfoGAN's ``--lambda-aug``: the style jitter (rotation, zoom, shift, stroke width) and the categorical loss on
jittered fakes."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.training.diffaug import style_jitter
from gandeploy.training.infogan import InfoGANOptions, InfoGANTask

from training_helpers import TINY_INFOGAN, assert_clean_error, cli, logged_columns



def bar(n: int = 32) -> torch.Tensor:
    """n pictures [n, 1, 32, 32] in [-1, 1]: a vertical bar 4 pixels wide on a -1 background."""
    x = -torch.ones(n, 1, 32, 32)
    x[:, :, 8:24, 14:18] = 1.0
    return x


def test_style_jitter_changes_style_not_the_background() -> None:
    x = bar()
    y = style_jitter(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert torch.equal(style_jitter(-torch.ones(4, 1, 32, 32), torch.Generator().manual_seed(0)),
                       -torch.ones(4, 1, 32, 32))  # nothing drawn stays nothing: uncovered pixels are -1
    ink = (y > 0).float().sum(dim=(1, 2, 3))  # [n] lit pixels: 64 in the bar
    assert ink.min() < 50 and ink.max() > 80  # thinner and thicker strokes both drawn
    assert ((y > 0) != (x > 0)).any(dim=(1, 2, 3)).all()  # every picture moved
    # the bar's lit pixels keep their centre within the shift + zoom budget of the middle
    rows = torch.arange(32.0)[None, :, None]
    centre_row = ((y[:, 0] > 0) * rows).sum(dim=(1, 2)) / (y[:, 0] > 0).sum(dim=(1, 2)).clamp_min(1)
    assert (centre_row - 15.5).abs().max() < 4


def test_style_jitter_is_reproducible_and_differentiable() -> None:
    x = bar(8).requires_grad_()
    a = style_jitter(x, torch.Generator().manual_seed(3))
    b = style_jitter(x, torch.Generator().manual_seed(3))
    c = style_jitter(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


class TwoQ(nn.Module):
    """A stand-in D: Q's categorical logits say category 0 for an unmoved bar, and category 1 once the picture
    differs from the bar (so the term's value is known)."""

    def forward(self, x: torch.Tensor, with_q: bool = False):
        n = x.shape[0]
        moved = (x - bar(n)).abs().flatten(1).amax(dim=1) > 1e-3  # [N]
        cat = torch.stack([(~moved).float(), moved.float()], 1) * 20.0  # [N, 2]
        return torch.zeros(n), cat, torch.zeros(n, 2)


def test_the_term_is_the_categorical_loss_on_jittered_fakes() -> None:
    n, code = 16, torch.zeros(16, dtype=torch.long)
    task = SimpleNamespace(options=InfoGANOptions(lambda_aug=0.5, lambda_cont=0.0), code_name="c", cont_name="u")
    inputs = {"c": code, "u": torch.zeros(n, 2)}
    _, loss, logs = InfoGANTask.critic_fake(task, TwoQ(), bar(n), inputs, torch.Generator().manual_seed(0))
    assert logs["info_cat"].item() == pytest.approx(0.0, abs=1e-6)  # the unmoved fake reads as its code
    want = F.cross_entropy(torch.tensor([[0.0, 20.0]]).repeat(n, 1), code).item()  # every jittered fake misread
    assert logs["info_cat_aug"].item() == pytest.approx(want, rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * want, rel=1e-5)
    off = SimpleNamespace(options=InfoGANOptions(lambda_cont=0.0), code_name="c", cont_name="u")
    _, loss_off, logs_off = InfoGANTask.critic_fake(off, TwoQ(), bar(n), inputs, None)
    assert "info_cat_aug" not in logs_off and loss_off.item() == pytest.approx(0.0, abs=1e-6)


def test_lambda_aug_flag_trains_and_logs(tmp_path: Path) -> None:
    logged = logged_columns(tmp_path / "info", "--lambda-aug", "1.0", columns=("info_cat_aug", "info_cat_aug_G"))
    for values in logged.values():
        assert len(values) == 3 and all(0.0 < v < 2 * math.log(10) for v in values)


def test_negative_lambda_aug_is_refused() -> None:
    result = cli("train", "infogan", "digits", "--lambda-aug", "-1", "--steps", "1", *TINY_INFOGAN)
    assert_clean_error(result, 1, "lambda_aug must be >= 0 (got -1.0)")
