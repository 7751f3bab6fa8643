"""``folder:PATH`` for super-resolution: split by picture, crops + on-the-fly LR (bicubic or Real-ESRGAN's
degradation), clean errors, lazy reading of large folders, and a tiny training run on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gandeploy.data import open_dataset
from gandeploy.data import sr_folder
from gandeploy.errors import DataError


def _write_pictures(folder, n: int, h: int = 40, w: int = 48, grey: bool = False) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:h, 0:w]
    names = []
    for i in range(n):
        planes = [128 + 100 * np.sin(xs / (3 + i) + c) * np.cos(ys / (4 + c)) for c in range(1 if grey else 3)]
        arr = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
        name = f"pic{i:02d}.png"
        Image.fromarray(arr[..., 0] if grey else arr).save(folder / name)
        names.append(name)
    return names


def test_every_tenth_picture_held_out_and_batches(tmp_path):
    names = _write_pictures(tmp_path / "pics", 12)
    ds = open_dataset(f"folder:{tmp_path / 'pics'}", "paired", image_size=16, scale=4, split="train")
    assert ds.held_out_names == (names[9],) and len(ds.pictures) == 11
    lr, hr = ds.get_batch(torch.arange(5), torch.Generator().manual_seed(0))
    assert lr.shape == (5, 3, 4, 4) and hr.shape == (5, 3, 16, 16)
    assert lr.min() >= -1 and hr.max() <= 1
    again, _ = ds.get_batch(torch.arange(5), torch.Generator().manual_seed(0))
    assert torch.equal(lr, again)
    test = open_dataset(f"folder:{tmp_path / 'pics'}", "paired", image_size=16, scale=4, split="test")
    assert len(test.held_out) == 1 and test.test_batch(2)[1].shape == (2, 3, 16, 16)


def test_train_and_test_subfolders_and_grey(tmp_path):
    _write_pictures(tmp_path / "div" / "train", 3, grey=True)
    held = _write_pictures(tmp_path / "div" / "valid", 2, grey=True)
    ds = open_dataset(f"folder:{tmp_path / 'div'}", "paired", image_size=16, scale=2, split="train")
    assert ds.held_out_names == tuple(held) and ds.channels == 1 and len(ds.pictures) == 3
    lr, hr = ds.get_batch(torch.arange(2), torch.Generator().manual_seed(1))
    assert lr.shape == (2, 1, 8, 8) and hr.shape == (2, 1, 16, 16)


def test_realesrgan_degradation_option(tmp_path):
    _write_pictures(tmp_path / "pics", 4)
    root = f"folder:{tmp_path / 'pics'}"
    bic = open_dataset(root, "paired", image_size=32, scale=4, augment={"flip": False})
    deg = open_dataset(root, "paired", image_size=32, scale=4, augment={"flip": False, "degradation": "realesrgan"})
    lr_b, hr_b = bic.get_batch(torch.arange(3), torch.Generator().manual_seed(2))
    lr_d, hr_d = deg.get_batch(torch.arange(3), torch.Generator().manual_seed(2))
    assert torch.equal(hr_b, hr_d)  # the same crops ...
    assert (lr_b - lr_d).abs().mean() > 0.01  # ... degraded differently
    with pytest.raises(DataError, match="degradation must be one of"):
        open_dataset(root, "paired", image_size=32, scale=4, augment={"degradation": "jpeg"})


def test_clean_errors(tmp_path):
    _write_pictures(tmp_path / "one", 1)
    with pytest.raises(DataError, match="at least 2"):
        open_dataset(f"folder:{tmp_path / 'one'}", "paired", image_size=16, scale=4)
    _write_pictures(tmp_path / "small", 3, h=12, w=12)
    with pytest.raises(DataError, match="smaller than the 16-px crop"):
        open_dataset(f"folder:{tmp_path / 'small'}", "paired", image_size=16, scale=4)
    _write_pictures(tmp_path / "broken", 3)
    (tmp_path / "broken" / "zz.png").write_bytes(b"not a picture")
    with pytest.raises(DataError, match="zz.png"):
        open_dataset(f"folder:{tmp_path / 'broken'}", "paired", image_size=16, scale=4)


def test_large_folders_are_read_lazily(tmp_path, monkeypatch):
    _write_pictures(tmp_path / "pics", 4)
    monkeypatch.setattr(sr_folder, "EAGER_BYTES", 0)
    ds = open_dataset(f"folder:{tmp_path / 'pics'}", "paired", image_size=16, scale=4)
    assert isinstance(ds.pictures, sr_folder.LazyPictures)
    lr, hr = ds.get_batch(torch.arange(4), torch.Generator().manual_seed(0))
    assert hr.shape == (4, 3, 16, 16)


def test_srresnet_trains_on_a_folder_with_realesrgan_degradation(tmp_path):
    from gandeploy.training.api import train_run
    from gandeploy.training.task import TrainConfig

    _write_pictures(tmp_path / "pics", 4)
    train = TrainConfig(steps=2, batch_size=2, device="cpu", options={"degradation": "realesrgan"})
    run = train_run("srresnet", f"folder:{tmp_path / 'pics'}", train, tmp_path / "run",
                    arch={"num_feat": 4, "num_block": 1, "image_size": 16})
    assert (run / "checkpoints" / "latest.pt").is_file()
