"""digits: the real scikit-learn digits, a fixed stratified held-out split, resized into [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.data.digits import load_split, split_indices
from gandeploy.errors import DataError, UserInputError


def test_split_is_fixed_stratified_and_disjoint() -> None:
    s = split_indices()
    train, test = s["train"], s["test"]
    assert len(train) + len(test) == 1797 and not set(train) & set(test)
    assert 340 <= len(test) <= 380  # 20 % held out
    assert np.array_equal(split_indices()["test"], test)  # same split every time
    _, y = load_split("test", 8)
    assert torch.bincount(y, minlength=10).min() >= 30  # every class held out


def test_images_resized_into_range_with_labels() -> None:
    ds = open_dataset("digits", "gan", image_size=32, channels=None, split="train")
    assert len(ds) == len(split_indices()["train"]) and ds.class_names == tuple("0123456789")
    x, y = ds.get_batch(torch.tensor([0, 5, 7]), torch.Generator())
    assert x.shape == (3, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.max() > 0.9 and x.min() < -0.99  # ink and background
    tx, ty = ds.test_batch(20)
    assert tx.shape == (20, 1, 32, 32) and ty.shape == (20,)
    rgb = open_dataset("digits", "gan", image_size=64, channels=3)
    x3, _ = rgb.get_batch(torch.tensor([0]), torch.Generator())
    assert x3.shape == (1, 3, 64, 64) and torch.equal(x3[:, 0], x3[:, 2])


def test_bad_requests_are_clean_errors() -> None:
    with pytest.raises(DataError, match="channels"):
        open_dataset("digits", "gan", image_size=32, channels=2)
    with pytest.raises(DataError, match="cyclegan"):
        open_dataset("digits", "cyclegan")
    with pytest.raises(UserInputError, match="Did you mean 'digits'"):
        open_dataset("digts", "gan")
