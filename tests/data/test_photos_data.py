"""The ``photos`` paired super-resolution data set: split by picture, shapes and ranges, on-the-fly bicubic LR,
fixed held-out crops, and clean errors."""

from __future__ import annotations

import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.data.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, held_out_pairs, load_photo, make_lr
from gandeploy.errors import DataError


def test_split_is_by_picture_and_every_picture_is_colour() -> None:
    assert not set(TRAIN_PHOTOS) & set(HELD_OUT_PHOTOS)
    assert len(TRAIN_PHOTOS) >= 6 and len(HELD_OUT_PHOTOS) >= 3
    for name in TRAIN_PHOTOS + HELD_OUT_PHOTOS:
        picture = load_photo(name)
        assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype.name == "uint8", name
        assert min(picture.shape[:2]) >= 256, name


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_batches_are_pairs_in_range(scale: int) -> None:
    ds = open_dataset("photos", "paired", image_size=32, channels=3, split="train", scale=scale)
    assert len(ds) > 0 and ds.channels == 3
    gen = torch.Generator().manual_seed(0)
    lr, hr = ds.get_batch(torch.arange(5), gen)
    assert lr.shape == (5, 3, 32 // scale, 32 // scale) and hr.shape == (5, 3, 32, 32)
    assert lr.dtype == hr.dtype == torch.float32
    assert float(lr.min()) >= -1 and float(lr.max()) <= 1 and float(hr.min()) >= -1 and float(hr.max()) <= 1
    # the source is the bicubic-downscaled target, rounded to uint8 levels
    torch.testing.assert_close(lr, make_lr((hr + 1) / 2, scale) * 2 - 1)
    again = ds.get_batch(torch.arange(5), torch.Generator().manual_seed(0))
    torch.testing.assert_close(again[1], hr)  # crops and flips come from the generator alone


def test_make_lr_averages_and_keeps_flat_pictures() -> None:
    flat = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(make_lr(flat, 4), torch.full((1, 3, 4, 4), round(0.4 * 255) / 255))
    checker = (torch.arange(16).view(1, 1, 1, 16) + torch.arange(16).view(1, 1, 16, 1)) % 2  # 1-pixel checkerboard
    lr = make_lr(checker.float().expand(1, 3, 16, 16), 4)
    assert float((lr - 0.5).abs().max()) < 0.05  # antialiased: no aliasing of the finest detail


def test_test_batch_is_fixed_and_from_held_out_pictures() -> None:
    ds = open_dataset("photos", "paired", image_size=32, split="train", scale=4)
    a_lr, a_hr = ds.test_batch(6)
    b_lr, b_hr = ds.test_batch(3)
    torch.testing.assert_close(a_hr[:3], b_hr)
    torch.testing.assert_close(a_lr[:3], b_lr)
    held = {n: torch.from_numpy(load_photo(n)).permute(2, 0, 1).float() / 127.5 - 1 for n in HELD_OUT_PHOTOS}
    for i in range(3):  # crop i comes from held-out picture i
        picture = held[HELD_OUT_PHOTOS[i]][None]
        crop = a_hr[i]
        found = any(torch.equal(picture[0, :, y:y + 32, x:x + 32], crop)
                    for y in range(picture.shape[-2] - 31) for x in range(0, picture.shape[-1] - 31))
        assert found, f"test crop {i} is not a crop of {HELD_OUT_PHOTOS[i]}"


def test_held_out_pairs_are_whole_pictures() -> None:
    pairs = held_out_pairs(4)
    assert [p[0] for p in pairs] == list(HELD_OUT_PHOTOS)
    for name, lr, hr in pairs:
        picture = load_photo(name)
        assert hr.shape == (1, 3, picture.shape[0] // 4 * 4, picture.shape[1] // 4 * 4)
        assert lr.shape == (1, 3, hr.shape[2] // 4, hr.shape[3] // 4)


def test_grey_and_bad_requests() -> None:
    ds = open_dataset("photos", "paired", image_size=16, channels=1, scale=2)
    assert ds.get_batch(torch.arange(2), torch.Generator())[1].shape == (2, 1, 16, 16)
    with pytest.raises(DataError, match="larger than the smallest"):
        open_dataset("photos", "paired", image_size=1024, scale=4)
    with pytest.raises(DataError, match="multiple of the model's scale 4"):
        open_dataset("photos", "paired", image_size=30, scale=4)
    with pytest.raises(DataError, match="does not fit gan models"):
        open_dataset("photos", "gan", image_size=32)


def test_other_families_never_see_the_scale_keyword() -> None:
    ds = open_dataset("digits", "gan", image_size=32, channels=1, split="train", scale=4)
    assert ds.get_batch(torch.arange(2), torch.Generator())[0].shape == (2, 1, 32, 32)
