"""DiffAugment (``--diffaug``): each transform's effect, its gradient, its reproducibility, and the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gandeploy.training.diffaug import POLICIES, augment, cutout, parse_policy, translation
from gandeploy.training.task import TrainConfig

from training_helpers import TINY_MLP, assert_clean_error, cli


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_parse_policy() -> None:
    assert parse_policy("") == ()
    assert parse_policy(" translation , cutout ") == ("translation", "cutout")
    assert parse_policy(",".join(POLICIES)) == POLICIES
    with pytest.raises(ValueError, match="unknown policy translate; choose from color, translation, cutout"):
        parse_policy("translate")
    with pytest.raises(ValueError, match="named twice"):
        parse_policy("color,color")
    with pytest.raises(ValueError, match="unknown policy"):
        TrainConfig(diffaug="flip")


def test_translation_shifts_whole_pixels_and_fills_with_zeros() -> None:
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 7, 7] = 1.0  # one lit pixel in the middle
    y = translation(x, gen())
    assert y.shape == x.shape
    where = [(p[2].item(), p[3].item()) for p in y.nonzero()]
    assert len(where) == 64  # the pixel survives every shift of at most 2 (16 / 8)
    assert all(5 <= r <= 9 and 5 <= c <= 9 for r, c in where)
    assert len(set(where)) > 5  # the shifts differ per picture
    edge = torch.ones(8, 1, 16, 16)
    shifted = translation(edge, gen(1))
    assert ((shifted == 0) | (shifted == 1)).all() and (shifted == 0).any()  # uncovered pixels are 0


def test_cutout_zeroes_one_square_of_half_the_side() -> None:
    x = torch.ones(32, 3, 16, 16)
    y = cutout(x, gen())
    zeros = (y[:, 0] == 0).flatten(1).sum(dim=1)  # per picture
    assert ((zeros >= 1) & (zeros <= 64)).all() and (zeros == 64).any()  # 8x8, clipped at the borders
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0)  # every channel alike


@pytest.mark.parametrize("policy", [*POLICIES, ",".join(POLICIES)])
def test_every_policy_is_differentiable_and_reproducible(policy: str) -> None:
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    names = parse_policy(policy)
    y = augment(x, names, gen(3))
    assert y.shape == x.shape and not torch.equal(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(augment(x.detach(), names, gen(3)), y.detach())  # same seed, same draws
    assert augment(x, (), gen(3)) is x


def test_diffaug_flag_trains_and_is_saved(tmp_path: Path) -> None:
    out = tmp_path / "dcgan"
    result = cli("train", "dcgan", "digits", "--no-recipe", "--arch", "ngf=4", "--arch", "ndf=4", "--arch", "nz=8",
                 "--batch-size", "8", "--steps", "2", "--device", "cpu", "--diffaug", "translation,cutout",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert '"diffaug": "translation,cutout"' in (out / "config.json").read_text()


@pytest.mark.parametrize("args,needle", [
    (["mlp", "ring8", *TINY_MLP, "--diffaug", "color"], "mlp generates points"),
    (["pix2pix", "digits-edges", "--diffaug", "color"], "--diffaug apply to the sampling"),
    (["dcgan", "digits", "--diffaug", "rotate"], "Invalid value for --diffaug: unknown policy rotate"),
])
def test_diffaug_mistakes_are_named(args: list[str], needle: str, tmp_path: Path) -> None:
    result = cli("train", *args, "--steps", "1", "--out", str(tmp_path / "run"))
    assert_clean_error(result, 2 if "Invalid value" in needle else 1, needle)
