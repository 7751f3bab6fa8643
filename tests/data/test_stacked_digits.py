"""``stacked-digits``: three independent real digits as R, G, B; 1,000 modes; fixed per seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.data.digits import load_split
from gandeploy.data.stacked import N_MODES, draw_triples, open_stacked_digits
from gandeploy.errors import DataError


def test_shapes_range_and_labels_follow_the_channels() -> None:
    ds = open_dataset("stacked-digits", "gan", image_size=32, channels=None, split="train")
    x, y = ds.get_batch(torch.arange(64))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (64,)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.5  # ink present
    digits, labels = load_split("train", 32, 1)
    for c in range(3):  # channel c is exactly the training digit the triple names; the label says which
        assert torch.equal(x[:, c], digits[ds.triples[:64, c], 0])
    assert torch.equal(y, labels[ds.triples[:64, 0]] * 100 + labels[ds.triples[:64, 1]] * 10
                       + labels[ds.triples[:64, 2]])
    assert len(ds) == 25_600 and ds.channels == 3 and ds.image_size == 32


def test_channels_are_independent_and_every_mode_is_present() -> None:
    ds = open_stacked_digits(image_size=8)
    digits = torch.stack([ds.labels // 100, ds.labels // 10 % 10, ds.labels % 10], 1).numpy()  # [L, 3]
    assert np.unique(ds.labels.numpy()).size == N_MODES  # 25.6 per mode on average: none missing
    for a, b in ((0, 1), (0, 2), (1, 2)):  # the joint histogram of two channels is the product of marginals
        joint = np.histogram2d(digits[:, a], digits[:, b], bins=10, range=[[0, 10], [0, 10]])[0] / len(digits)
        product = np.outer(np.bincount(digits[:, a], minlength=10), np.bincount(digits[:, b], minlength=10)) \
            / len(digits) ** 2
        assert np.abs(joint - product).max() < 0.004  # ~0.0019 sampling noise per cell at 25,600 items
        assert abs(np.corrcoef(ds.triples[:, a], ds.triples[:, b])[0, 1]) < 0.03


def test_triples_are_fixed_per_seed() -> None:
    assert np.array_equal(draw_triples(1437, 100, 3), draw_triples(1437, 100, 3))
    assert not np.array_equal(draw_triples(1437, 100, 3), draw_triples(1437, 100, 4))
    a, b = open_stacked_digits(image_size=8), open_stacked_digits(image_size=8)
    assert torch.equal(a.get_batch(torch.arange(10))[0], b.get_batch(torch.arange(10))[0])
    assert not torch.equal(open_stacked_digits(image_size=8, seed=1).triples, a.triples)


def test_held_out_split_uses_held_out_digits_only() -> None:
    test = open_stacked_digits(image_size=8, split="test")
    held_out, _ = load_split("test", 8, 1)
    assert int(test.triples.max()) < len(held_out)
    x, y = test.test_batch(5)
    assert torch.equal(x[:, 1], held_out[test._test[2][:5, 1], 0]) and y.shape == (5,)
    train = open_stacked_digits(image_size=8)
    assert torch.equal(train.test_batch(5)[0], x)  # the same held-out stacks whichever split was opened


def test_bad_keywords_name_the_option() -> None:
    with pytest.raises(DataError, match="channels=3"):
        open_stacked_digits(channels=1)
    with pytest.raises(DataError, match="split"):
        open_stacked_digits(split="val")
