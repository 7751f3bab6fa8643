"""Unpaired data: the authors' layout, lazy loading, deterministic augmentation, and the downloader."""

from __future__ import annotations

import socket

import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.data.download import download_cyclegan_set
from gandeploy.data.synthetic import open_digits_pair, true_map
from gandeploy.data.unpaired import open_cyclegan_set, open_unpaired_folder
from gandeploy.errors import DataError
from cyclegan_helpers import corrupt_member, make_dataset_zip, make_unpaired_folder, serve_files


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_unpaired_folder_batches(tmp_path):
    root = make_unpaired_folder(tmp_path / "pair")
    ds = open_dataset(f"folder:{root}", "cyclegan", image_size=32, channels=3, split="train", data_root=None,
                      augment={"load_size": 36})
    assert len(ds) == 5 and ds.class_names is None and ds.channels == 3
    a, b = ds.get_batch(torch.tensor([0, 1, 4]), _gen(1))
    assert a.shape == b.shape == (3, 3, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert a[:, 0].mean() > 0.8 > a[:, 2].mean() and b[:, 2].mean() > 0.8 > b[:, 0].mean()  # A red, B blue
    a2, b2 = ds.get_batch(torch.tensor([0, 1, 4]), _gen(1))
    assert torch.equal(a, a2) and torch.equal(b, b2)  # a pure function of the generator
    a3, _ = ds.get_batch(torch.tensor([0, 1, 4]), _gen(2))
    assert not torch.equal(a, a3)  # random crops / flips
    ta, tb = ds.test_batch(8)
    assert ta.shape == (2, 3, 32, 32) and tb.shape == (2, 3, 32, 32)  # min(testA, testB)
    grey = open_unpaired_folder(root, image_size=16, channels=1, split="test")
    ga, gb = grey.get_batch(torch.tensor([0, 1]), _gen(0))
    assert ga.shape == (2, 1, 16, 16) and len(grey) == 3


def test_unpaired_folder_errors(tmp_path):
    root = make_unpaired_folder(tmp_path / "p", counts={"trainA": 2, "testA": 1})
    with pytest.raises(DataError, match="no trainB/"):
        open_unpaired_folder(root, image_size=16)
    (root / "trainB").mkdir()
    (root / "trainB" / "notes.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="no images in"):
        open_unpaired_folder(root, image_size=16)
    (root / "trainB" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = open_unpaired_folder(root, image_size=16)  # lazy: the broken file is found when it is read
    with pytest.raises(DataError, match="broken.jpg"):
        ds.get_batch(torch.tensor([0]), _gen(0))
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(f"folder:{tmp_path / 'missing'}", "cyclegan", image_size=16)
    (tmp_path / "data" / "horse2zebra" / "junk").mkdir(parents=True)
    with pytest.raises(DataError, match="trainA"):
        open_cyclegan_set("horse2zebra", image_size=16, data_root=tmp_path / "data")


def test_digits_pair_known_map():
    ds = open_digits_pair(image_size=16)
    a, b = ds.get_batch(torch.arange(6), _gen(0))
    assert a.shape == b.shape == (6, 3, 16, 16)
    assert torch.equal(a[:, 0], a[:, 1])  # grey A
    # B is the true map of *other* digits: no training A image maps onto a training B image
    assert torch.cdist(true_map(ds.a[:200]).flatten(1), ds.b[:200].flatten(1)).min() > 0.1
    background, ink = true_map(torch.full((1, 3, 2, 2), -1.0)), true_map(torch.ones(1, 3, 2, 2))
    assert torch.allclose(background[0, :, 0, 0], torch.tensor([1.0, 0.56, -0.2]), atol=1e-6)  # warm paper
    assert torch.allclose(ink[0, :, 0, 0], torch.tensor([-0.8, -0.8, 0.0]), atol=1e-6)  # dark blue ink
    x = ds.heldout_a
    assert (x - true_map(x)).abs().mean() > 0.5  # doing nothing is far from the target


def _leftovers(root):
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_download_ok_then_cached(tmp_path, monkeypatch):
    body = make_dataset_zip(tmp_path, "horse2zebra")
    root = tmp_path / "data"
    with serve_files({"/sets/horse2zebra.zip": (body, None)}) as url:
        monkeypatch.setenv("GANDEPLOY_DATASET_URL", f"{url}/sets")
        ds = open_cyclegan_set("horse2zebra", image_size=8, data_root=root)  # missing → downloaded
    assert _leftovers(root) == ["horse2zebra"]  # no .part / extraction folders left
    assert all((root / "horse2zebra" / d).is_dir() for d in ("trainA", "trainB", "testA", "testB"))
    assert len(ds) == 5
    # present now: no network needed (the server is gone)
    assert download_cyclegan_set("horse2zebra", root, base_url="http://127.0.0.1:9") == root / "horse2zebra"


@pytest.mark.parametrize("kind,match", [("truncated", "truncated"), ("corrupt", "corrupt"),
                                        ("notzip", "not a valid zip"), ("missing", "HTTP 404")])
def test_download_failures_leave_nothing(tmp_path, kind, match):
    body = make_dataset_zip(tmp_path, "apple2orange")
    routes = {"truncated": (body, len(body) // 2), "corrupt": (corrupt_member(body), None),
              "notzip": (b"<html>maintenance</html>" * 40, None)}
    root = tmp_path / "data"
    with serve_files({"/apple2orange.zip": routes[kind]} if kind in routes else {}) as url:
        with pytest.raises(DataError, match=match):
            download_cyclegan_set("apple2orange", root, base_url=url)
    assert _leftovers(root) == []  # a partial download never looks like a data set


def test_download_unreachable(tmp_path):
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot reach"):
        download_cyclegan_set("horse2zebra", tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
    assert _leftovers(tmp_path) == []
