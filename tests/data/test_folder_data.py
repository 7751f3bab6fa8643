"""folder:PATH — loose images or class sub-folders, resized, with clean errors for bad folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandeploy.data import open_dataset
from gandeploy.errors import DataError


def _png(path: Path, value: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    arr = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(arr, mode=mode).save(path)


def test_class_subfolders_become_labels(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "cats" / f"{i}.png", 255)
        _png(tmp_path / "dogs" / f"{i}.jpg", 0)
    ds = open_dataset(f"folder:{tmp_path}", "gan", image_size=16, channels=None)
    assert ds.class_names == ("cats", "dogs") and len(ds) == 6 and ds.channels == 3
    x, y = ds.get_batch(torch.arange(6), torch.Generator())
    assert x.shape == (6, 3, 16, 16) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.allclose(x[y == 0], torch.ones(())) and torch.allclose(x[y == 1], -torch.ones(()))


def test_loose_greyscale_images(tmp_path: Path) -> None:
    for i in range(4):
        _png(tmp_path / f"img{i}.png", 60 * i, mode="L")
    ds = open_dataset(f"folder:{tmp_path}", "gan", image_size=8, channels=None)
    assert ds.class_names is None and ds.channels == 1
    x, y = ds.get_batch(torch.tensor([3]), torch.Generator())
    assert y is None and x.shape == (1, 1, 8, 8) and x[0, 0, 0, 0].item() == pytest.approx(180 / 127.5 - 1)


def test_bad_folders_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(f"folder:{tmp_path / 'missing'}", "gan")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="holds no images"):
        open_dataset(f"folder:{tmp_path / 'empty'}", "gan")
    bad = tmp_path / "bad"
    _png(bad / "good.png", 10)
    (bad / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="broken.jpg"):
        open_dataset(f"folder:{bad}", "gan", image_size=8, channels=3)
    with pytest.raises(DataError, match="broken.jpg"):
        open_dataset(f"folder:{bad}", "gan", image_size=8, channels=None)
