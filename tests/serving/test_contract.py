"""The served contract (``gandeploy/contract.py``): the derivation table, the default fill, request checks,
JSON round trips, and the typed manifest's one loader (old manifests without roles: re-export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gandeploy.contract import ServedContract
from gandeploy.errors import ExportError, UserInputError
from gandeploy.evaluation.cases import case_io
from gandeploy.models import io as gio
from gandeploy.registry import MODELS

INFOGAN = gio.GeneratorIO((gio.latent(6), gio.categorical_code(4), gio.continuous_code(3)),
                          (gio.image_output(1, 8, 8),))


def table(contract: ServedContract) -> list[tuple[str, str, tuple[int, ...], bool]]:
    return [(t.name, t.dtype, t.dims, t.optional) for t in contract.inputs + contract.outputs]


def test_derivation_table() -> None:
    cgan = gio.GeneratorIO((gio.latent(8), gio.class_label(3)), (gio.image_output(3, 16, 16),))
    assert table(ServedContract.from_io(cgan, max_batch=4)) == [
        ("seed", "int64", (1,), False), ("truncation", "float32", (1,), True), ("label", "int64", (1,), False),
        ("image", "uint8", (16, 16, 3), False)]
    assert table(ServedContract.from_io(INFOGAN, max_batch=4)) == [
        ("seed", "int64", (1,), False), ("truncation", "float32", (1,), True), ("code", "int64", (1,), False),
        ("continuous", "float32", (3,), False), ("image", "uint8", (8, 8, 1), False)]
    points = gio.GeneratorIO((gio.latent(2),), (gio.points_output(2),))
    assert table(ServedContract.from_io(points, max_batch=4))[-1] == ("sample", "float32", (2,), False)
    cyclegan = ServedContract.from_io(gio.GeneratorIO((gio.image_input(3),), (gio.image_output(3),)), max_batch=2)
    assert table(cyclegan) == [("image_bytes", "bytes", (1,), False), ("image_bytes", "bytes", (1,), False)]
    raw = ServedContract.from_io(INFOGAN, max_batch=4).generator_inputs
    assert [(t.name, t.dims, t.reshape) for t in raw] == [("z", (6,), None), ("code", (1,), ()),
                                                          ("continuous", (3,), None)]
    assert [(t.name, t.dims) for t in cyclegan.generator_inputs] == [("image", (3, -1, -1))]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_family_round_trips(model: str) -> None:
    spec = MODELS[model]
    contract = ServedContract.from_io(spec.io(spec.config_cls(**spec.tiny)), max_batch=4, class_names=["a", "b"])
    assert ServedContract.from_json(contract.parameter()) == contract
    assert ServedContract.from_json(json.loads(json.dumps(contract.to_json()))) == contract


def test_default_fill_and_case_values() -> None:
    c = ServedContract.from_io(INFOGAN, max_batch=4)
    request = c.request([5, 6, 7])
    assert sorted(request) == ["code", "continuous", "seed"]  # no truncation unless asked
    assert request["code"].ravel().tolist() == [1, 2, 3] and not request["continuous"].any()
    feeds = c.generator_feeds([5, 6, 7], code=2, continuous=[0.5, -1, 0], truncation=0.7)
    assert feeds["code"].tolist() == [2, 2, 2] and feeds["continuous"].tolist() == [[0.5, -1, 0]] * 3
    np.testing.assert_array_equal(feeds["z"], gio.latents_from_seeds([5, 6, 7], 6, 0.7))
    case_feeds, case_request = case_io(c, [5, 6])
    assert (np.abs(case_feeds["continuous"]) <= 1).all() and case_feeds["continuous"].std() > 0
    np.testing.assert_array_equal(case_request["continuous"], case_feeds["continuous"])
    np.testing.assert_array_equal(c.feeds_from_values(case_request)["z"], case_feeds["z"])


@pytest.mark.parametrize("given, match", [
    ({"label": 1}, "--label does not apply"),
    ({"code": 4}, r"'code' must be in \[0, 3\]"),
    ({"continuous": [0.0, 1.0]}, "--continuous needs 3 value"),
    ({"continuous": [np.nan, 0, 0]}, "'continuous' holds NaN"),
    ({"truncation": 0.0}, "'truncation' must be a finite number >= 0.02"),
    ({"truncation": 1e-9}, "'truncation' must be a finite number >= 0.02"),
    ({"truncation": 0.0199}, "'truncation' must be a finite number >= 0.02"),
    ({"truncation": float("inf")}, "'truncation' holds NaN or infinite"),
])
def test_bad_values_name_the_flag(given: dict, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        ServedContract.from_io(INFOGAN, max_batch=4).request([0], **given)


def test_check_rejects_negative_seed_and_unknown_inputs() -> None:
    c = ServedContract.from_io(INFOGAN, max_batch=4)
    good = c.request([1])
    with pytest.raises(UserInputError, match="'seed' must be in"):
        c.check({**good, "seed": np.array([[-1]])})
    with pytest.raises(UserInputError, match="unknown input"):
        c.check({**good, "noise": np.zeros((1, 1))})
    with pytest.raises(UserInputError, match="missing input 'code'"):
        c.check({k: v for k, v in good.items() if k != "code"})


def test_manifest_loader(tmp_path: Path) -> None:
    """One loader, one error type: old manifests without roles are refused with a re-export hint."""
    from gandeploy.manifest import EXPORT_FORMAT, load_manifest

    contract = ServedContract.from_io(INFOGAN, max_batch=4)
    data = {"format": EXPORT_FORMAT, "name": "m", "model": "infogan", "files": {}, "max_batch": 4,
            "inputs": [t.to_json() for t in INFOGAN.inputs], "outputs": [t.to_json() for t in INFOGAN.outputs]}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    manifest = load_manifest(tmp_path)  # no "contract" entry: derived from the declared roles
    assert manifest.contract == contract and manifest.name == "m" and manifest.max_batch == 4
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "contract": contract.to_json()}))
    assert load_manifest(tmp_path).contract == contract
    old = {**data, "inputs": [{k: v for k, v in t.items() if k != "role"} for t in data["inputs"]]}
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(ExportError, match="re-export"):
        load_manifest(tmp_path)
