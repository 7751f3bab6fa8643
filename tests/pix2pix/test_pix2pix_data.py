"""Paired data: the public corruptions, the digits pairs built from them, aligned A|B folders and the pix2pix
authors' sets fetched from a local HTTP server (size and gzip checks, a clear error offline)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandeploy.data import open_dataset
from gandeploy.data import paired as P
from gandeploy.data.digits import load_split
from gandeploy.errors import DataError


def test_corrupt_is_deterministic_in_its_seed_and_keeps_shape_and_range():
    x = load_split("test", 32, 1)[0][:20].numpy()
    for kind in P.CORRUPTIONS:
        a, b, c = P.corrupt(kind, x, 5), P.corrupt(kind, x, 5), P.corrupt(kind, x, 6)
        assert a.shape == x.shape and a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
        np.testing.assert_array_equal(a, b)
        assert (kind == "edges") == np.array_equal(a, c)  # edges take no randomness
        assert not np.array_equal(a, x)
    with pytest.raises(ValueError, match="kind must be one of"):
        P.corrupt("blur", x, 0)
    with pytest.raises(ValueError, match=r"\[N, 1, S, S\]"):
        P.corrupt("noisy", x[:, 0], 0)


def test_masked_changes_exactly_the_box():
    x = load_split("test", 32, 1)[0][:10].numpy()
    out, masks = P.corrupt("masked", x, 3), P.box_masks(10, 32, 3).numpy()
    assert masks.reshape(10, -1).sum(1).tolist() == [12 * 12] * 10
    assert np.all(out[masks] == P.MASK_FILL) and np.array_equal(out[~masks], x[~masks])


@pytest.mark.parametrize("name", ["digits-edges", "digits-noisy", "digits-masked"])
def test_digits_pairs_are_the_public_corruption_of_each_split(name):
    kind = P.SET_NAMES[name]
    train = open_dataset(name, "paired", image_size=32, split="train")
    x_train, x_test = load_split("train", 32, 1)[0], load_split("test", 32, 1)[0]
    source, target = train.get_batch(torch.arange(len(train)), torch.Generator())
    np.testing.assert_array_equal(source.numpy(), P.corrupt(kind, x_train, P.TRAIN_SEED))
    assert torch.equal(target, x_train)
    held_source, held_target = train.test_batch(10**9)
    np.testing.assert_array_equal(held_source.numpy(), P.corrupt(kind, x_test, P.TEST_SEED))
    assert torch.equal(held_target, x_test) and len(train.test_labels) == len(x_test)
    assert train.kind == "paired" and train.measures == P.MEASURES[kind]
    with pytest.raises(DataError, match="greyscale"):
        open_dataset(name, "paired", image_size=32, channels=3)


def _aligned_picture(path: Path, size: int, seed: int) -> None:
    """A|B side by side: B is A upside down, so a swapped or misaligned pair is visible."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(np.concatenate([a, a[::-1]], axis=1)).save(path)


def _aligned_root(root: Path, size: int = 20) -> Path:
    for split, n in (("train", 3), ("val", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            _aligned_picture(root / split / f"{i}.png", size, seed=10 * len(split) + i)
    return root


def test_aligned_folder_pairs_halves_with_one_crop_and_flip(tmp_path):
    root = _aligned_root(tmp_path / "set")
    ds = open_dataset(f"aligned:{root}", "paired", image_size=16, channels=3, split="train",
                      augment={"load_size": 20, "flip": True})
    source, target = ds.get_batch(torch.arange(3), torch.Generator().manual_seed(0))
    assert source.shape == target.shape == (3, 3, 16, 16) and len(ds) == 3
    test_a, test_b = ds.test_batch(5)  # no test/: the val/ pictures, resized
    assert test_a.shape == (2, 3, 16, 16)
    swapped = open_dataset(f"aligned:{root}", "paired", image_size=16, channels=3, split="test",
                           augment={"direction": "BtoA"})
    s2, t2 = swapped.test_batch(2)
    assert torch.equal(s2, test_b) and torch.equal(t2, test_a)
    # the same crop for both halves: with load_size == the picture size and no flip, B is A upside down
    plain = open_dataset(f"aligned:{root}", "paired", image_size=20, channels=3, split="train",
                         augment={"load_size": 20, "flip": False})
    s3, t3 = plain.get_batch(torch.arange(3), torch.Generator())
    assert torch.allclose(s3.flip(2), t3, atol=1e-6)
    with pytest.raises(DataError, match="aligned"):
        open_dataset(f"aligned:{root}", "cyclegan")
    with pytest.raises(DataError, match="no pictures"):
        open_dataset(f"aligned:{tmp_path}", "paired", image_size=16)


def _cyclegan_helpers():  # type: ignore[no-untyped-def]
    """tests/cyclegan/cyclegan_helpers.py (its local HTTP server serves the archives here too), imported by path."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "cyclegan" / "cyclegan_helpers.py"
    spec = importlib.util.spec_from_file_location("cyclegan_helpers", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


serve = _cyclegan_helpers().serve_files  # routes {path: (body, bytes sent or None)} on a free local port


def _facades_tar(tmp_path: Path) -> bytes:
    src = _aligned_root(tmp_path / "src" / "facades", size=16)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src, arcname="facades")
    return buf.getvalue()


def test_named_set_is_fetched_checked_and_kept_apart_from_cyclegans(tmp_path, monkeypatch):
    body = _facades_tar(tmp_path)
    root = tmp_path / "data"
    with serve({"/facades.tar.gz": (body, None), "/short.tar.gz": (body, len(body) // 2),
                "/broken.tar.gz": (body[:40] + bytes(len(body) - 40), None)}) as url:
        monkeypatch.setenv("GANDEPLOY_PIX2PIX_URL", url)
        monkeypatch.setenv("GANDEPLOY_DATASET_URL", url)  # CycleGAN's unpaired facades.zip: not served here
        ds = open_dataset("facades", "paired", image_size=16, channels=3, data_root=root)
        assert len(ds) == 3 and (root / "pix2pix" / "facades" / "train").is_dir()
        with pytest.raises(DataError, match="HTTP 404"):  # the same name for cyclegan is its own zip
            open_dataset("facades", "cyclegan", image_size=16, data_root=root)
        from gandeploy.data.aligned import download_pix2pix_set

        with pytest.raises(DataError, match="truncated|broke off"):
            download_pix2pix_set("short", root)
        with pytest.raises(DataError, match="not a valid .tar.gz"):
            download_pix2pix_set("broken", root)
    assert sorted(p.name for p in (root / "pix2pix").iterdir()) == ["facades"]  # nothing half-written left
    monkeypatch.setenv("GANDEPLOY_PIX2PIX_URL", "http://127.0.0.1:9")  # nothing listens: offline
    with pytest.raises(DataError, match="cannot reach"):
        open_dataset("edges2shoes", "paired", image_size=16, data_root=root)
