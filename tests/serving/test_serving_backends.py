"""The Triton backends' rules: one copy (``gandeploy/wire.py``, served as ``gd_wire.py``), request checks, image
checks, no forbidden imports."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gandeploy.contract import ServedContract
from gandeploy.errors import UserInputError
from gandeploy.models import io as gio
from gandeploy import wire
from gandeploy.evaluation.cases import case_io
from gandeploy.registry import MODELS
from gandeploy.serving import backends
from gandeploy.serving.backends import gd_pictures as pictures

BACKENDS = Path(backends.__file__).parent
ALLOWED_IMPORTS = {"__future__", "base64", "binascii", "io", "json", "os", "typing", "numpy", "PIL", "onnxruntime",
                   "triton_python_backend_utils", "gd_backend_common", "gd_pictures", "gd_wire"}
RULES = ("latent_from_seed", "to_uint8", "from_uint8", "check_served", "check_seeds", "check_index", "check_finite",
         "check_batch", "step_feeds", "encode_png", "latent_stream_problem", "load_contract")


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def test_package_and_backends_share_one_copy_of_the_rules() -> None:
    """gandeploy's maps are wire's (re-exported, the same objects), and no backend file defines a rule of its own:
    they import them from ``gd_wire``, which ``gandeploy repo`` copies from wire.py byte for byte (checked in
    test_serving_repository.py)."""
    assert gio.latent_from_seed is wire.latent_from_seed
    assert (gio.to_uint8, gio.from_uint8) == (wire.to_uint8, wire.from_uint8)
    assert (gio.TRUNCATION_MIN, gio.TRUNCATION_ROUNDS) == (wire.TRUNCATION_MIN, wire.TRUNCATION_ROUNDS)
    for path in sorted(BACKENDS.glob("*.py")):
        defined = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
        assert not defined & set(RULES), f"{path.name} defines its own {sorted(defined & set(RULES))}"


@pytest.mark.parametrize("seed", [0, 1, 7, 12345, 2**31, 2**63 - 1])
@pytest.mark.parametrize("nz", [1, 8, 100])
def test_latent_is_pcg64_standard_normals(seed: int, nz: int) -> None:
    want = np.random.default_rng(seed).standard_normal(nz).astype(np.float32)
    np.testing.assert_array_equal(wire.latent_from_seed(seed, nz), want)
    assert wire.latent_from_seed(seed, nz).dtype == np.float32


@pytest.mark.parametrize("truncation", [None, gio.TRUNCATION_MIN, 0.05, 0.25, 0.7, 1.0, 2.5])
@pytest.mark.parametrize("seed", [0, 3, 2**40 + 1, 2**63 - 1])
def test_truncated_latent_stays_within_t(seed: int, truncation: float | None) -> None:
    ours = wire.latent_from_seed(seed, 64, truncation)
    untruncated = wire.latent_from_seed(seed, 64)
    if truncation is not None:
        assert float(np.abs(ours).max()) <= truncation
        inside = np.abs(untruncated) <= np.float32(truncation)
        np.testing.assert_array_equal(ours[inside], untruncated[inside])  # components inside never change
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1e-9, 0.0199):
        with pytest.raises(ValueError, match="truncation must be a finite number >= 0.02"):
            wire.latent_from_seed(seed, 4, bad)


def test_truncation_minimum_sent_as_fp32_is_accepted() -> None:
    assert np.abs(wire.latent_from_seed(4, 16, np.float32(wire.TRUNCATION_MIN))).max() <= np.float32(0.02)


def _unbounded_truncated_latent(seed: int, nz: int, t: float) -> np.ndarray:
    """The seed -> latent map as first published (redraw until done, no cap): the promise the bounded one keeps."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(nz)
    bad = np.flatnonzero(np.abs(z) > t)
    while bad.size:
        z[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(z[bad]) > t]
    return z.astype(np.float32)


@pytest.mark.parametrize("truncation", [gio.TRUNCATION_MIN, 0.03, 0.1, 0.5, 1.0])
def test_bounded_truncation_keeps_the_published_map(truncation: float) -> None:
    for seed in range(40):
        want = _unbounded_truncated_latent(seed, 128, truncation)
        np.testing.assert_array_equal(wire.latent_from_seed(seed, 128, truncation), want)


def test_tiny_truncation_is_refused_everywhere_it_enters() -> None:
    """1e-9 once made the redraw loop run forever (~1e9 rounds per component): every entry point refuses it."""
    spec = {"name": "truncation", "dims": [1], "role": "truncation"}
    with pytest.raises(wire.RequestError, match="'truncation' must be a finite number >= 0.02"):
        wire.check_served(np.array([[1e-9]], np.float32), spec)
    assert wire.check_served(np.array([[0.02]], np.float32), spec).shape == (1, 1)
    contract = ServedContract.from_io(MODELS["dcgan"].io(MODELS["dcgan"].config_cls(**MODELS["dcgan"].tiny)),
                                      max_batch=8)
    with pytest.raises(UserInputError, match="'truncation' must be a finite number >= 0.02"):
        contract.request([1, 2], truncation=1e-9)
    with pytest.raises(UserInputError, match="truncation"):
        contract.generator_feeds([1, 2], truncation=[0.5, 1e-9])


def test_truncation_at_the_minimum_finishes_in_bounded_time() -> None:
    """The bound: at most TRUNCATION_ROUNDS redraw rounds; at the minimum t a 512-wide latent takes ~1 ms."""
    import time

    start = time.perf_counter()
    for seed in range(20):
        gio.latent_from_seed(seed, 512, gio.TRUNCATION_MIN)
    assert time.perf_counter() - start < 5.0


def test_round_cap_completes_deterministically(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap, components still outside are clipped to +-t: the same latent every time, within [-t, t],
    equal to the uncapped map on every component that finished within the cap."""
    module = wire
    monkeypatch.setattr(module, "TRUNCATION_ROUNDS", 3)
    t = 0.05
    capped = module.latent_from_seed(11, 256, t)
    np.testing.assert_array_equal(capped, module.latent_from_seed(11, 256, t))
    assert float(np.abs(capped).max()) <= np.float32(t)
    clipped = np.abs(capped) == np.float32(t)
    assert 0 < clipped.sum() < 256  # the cap was reached for some components, not all
    full = _unbounded_truncated_latent(11, 256, t)
    np.testing.assert_array_equal(capped[~clipped], full[~clipped])


def _tiny_contract(model: str) -> ServedContract:
    spec = MODELS[model]
    return ServedContract.from_io(spec.io(spec.config_cls(**spec.tiny)), max_batch=8)


SEEDED = sorted(m for m in MODELS if not _tiny_contract(m).translation)  # image-to-image families: no seed step


def test_some_families_have_a_seed_step() -> None:
    assert len(SEEDED) >= 3 and len(SEEDED) < len(MODELS), SEEDED


@pytest.mark.parametrize("model", SEEDED)
def test_backend_step_equals_contract(model: str) -> None:
    """The self-contained seed step (``check_served`` + ``step_feeds`` on the contract JSON) computes exactly
    the generator feeds that ``ServedContract`` computes in-process, for every registered sampling family."""
    contract = _tiny_contract(model)
    data = json.loads(contract.parameter())
    request = contract.request([5, 6, 7], truncation=[0.5, 1.0, 2.0], **{
        k: v for k, v in case_io(contract, [5, 6, 7])[1].items() if k != "seed"})  # every input, per-row t
    values = {t["name"]: (wire.check_served(request[t["name"]], t) if t["name"] in request else None)
              for t in data["inputs"]}
    served = wire.step_feeds(data, values)
    want = contract.feeds_from_values(request)
    assert sorted(served) == sorted(t.name for t in contract.step_outputs)
    for t in contract.step_outputs:
        np.testing.assert_array_equal(served[t.name].reshape(want[t.feeds].shape), want[t.feeds])


def _infogan_contract() -> tuple[ServedContract, list[dict]]:
    spec = MODELS["infogan"]
    contract = ServedContract.from_io(spec.io(spec.config_cls(**spec.tiny)), max_batch=16)
    return contract, json.loads(contract.parameter())["inputs"]


def test_check_batch_is_one_pass_over_good_requests() -> None:
    """Every request good: the batch-wide check equals the per-request checks, concatenated; the feeds equal
    ``ServedContract``'s for the whole batch (mixed truncation presence included)."""
    contract, inputs = _infogan_contract()
    seeds = [[3, 4], [5], [6, 7, 8]]
    truncs = [[0.5, 0.7], None, [1.0, 2.0, 3.0]]
    raw = []
    for s, t in zip(seeds, truncs, strict=True):
        req = contract.request(s, truncation=t, **{k: v for k, v in case_io(contract, s)[1].items() if k != "seed"})
        raw.append({i["name"]: req.get(i["name"]) for i in inputs})
    values, good, rows, errors = wire.check_batch(inputs, raw)
    assert good == [0, 1, 2] and rows == [2, 1, 3] and not errors
    np.testing.assert_array_equal(values["seed"].reshape(-1), [3, 4, 5, 6, 7, 8])
    assert np.isnan(values["truncation"][2, 0]) and values["truncation"][3, 0] == 1.0
    feeds = wire.step_feeds(json.loads(contract.parameter()), values)
    for s, t, start in ((seeds[0], truncs[0], 0), (seeds[1], None, 2), (seeds[2], truncs[2], 3)):
        want = contract.feeds_from_values(contract.request(s, truncation=t, **{
            k: v for k, v in case_io(contract, s)[1].items() if k != "seed"}))
        np.testing.assert_array_equal(feeds["gen_z"][start:start + len(s)], want["z"])
    none_given = wire.check_batch(inputs, [{**r, "truncation": None} for r in raw])[0]
    assert none_given["truncation"] is None


def test_check_batch_fails_bad_requests_alone() -> None:
    contract, inputs = _infogan_contract()
    good = {i["name"]: v for i in inputs for k, v in contract.request([1]).items() if k == i["name"]}
    bad_code = {**good, "code": np.array([[99]], np.int64)}
    bad_t = {**good, "truncation": np.array([[-1.0]], np.float32)}
    missing = {k: v for k, v in good.items() if k != "continuous"}
    two_sizes = {**good, "seed": np.array([[1], [2]], np.int64)}
    raw = [good, bad_code, good, bad_t, missing, two_sizes]
    values, ok, rows, errors = wire.check_batch(inputs, raw)
    assert ok == [0, 2] and rows == [1, 1] and values["seed"].shape == (2, 1)
    assert "'code' must be in" in errors[1] and "'truncation' must be a finite number >= 0.02" in errors[3]
    assert "missing input 'continuous'" in errors[4] and "share one batch size" in errors[5]
    assert wire.check_batch(inputs, [bad_code])[1] == []


def test_backend_checks_name_the_input() -> None:
    spec = MODELS["infogan"]
    contract = ServedContract.from_io(spec.io(spec.config_cls(**spec.tiny)), max_batch=8)
    inputs = {t["name"]: t for t in json.loads(contract.parameter())["inputs"]}
    cases = [("code", np.array([[10]]), r"'code' must be in \[0, 9\]"),
             ("code", np.array([[-1]]), "'code' must be in"),
             ("continuous", np.array([[np.nan, 0]], np.float32), "'continuous' holds NaN"),
             ("continuous", np.array([[np.inf, 0]], np.float32), "'continuous' holds NaN"),
             ("continuous", np.zeros((1, 3), np.float32), r"'continuous' must have shape \[N, 2\]"),
             ("truncation", np.array([[0.0]], np.float32), "'truncation' must be a finite number >= 0.02"),
             ("truncation", np.array([[np.nan]], np.float32), "'truncation' holds NaN"),
             ("seed", np.array([[-5]]), "'seed' must be in")]
    for name, value, match in cases:
        with pytest.raises(wire.RequestError, match=match):
            wire.check_served(value, inputs[name])
        with pytest.raises(UserInputError, match=name):
            contract.check({**contract.request([1]), name: value})


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (-0.5, 2.0)])
def test_picture_maps_at_8_bit_are_the_uint8_maps(value_range: tuple[float, float]) -> None:
    """The served picture path's maps (any depth) equal ``to_uint8`` / ``from_uint8`` at 8 bit, and round-trip."""
    x = np.random.default_rng(0).uniform(-1.2, 2.2, size=(3, 5, 7)).astype(np.float32)
    x[0, 0, :3] = [-1.0, 1.0, 0.0]
    u = pictures.from_model(x, value_range, 255, grey=False)  # [H, W, C]
    np.testing.assert_array_equal(u, wire.to_uint8(x[None], value_range)[0])
    np.testing.assert_array_equal(pictures.to_model(pictures.Picture(u, None, 255), 3, value_range),
                                  wire.from_uint8(u[None], value_range)[0])


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (-0.5, 2.0)])
def test_fast_uint8_map_is_the_reference_formula(value_range: tuple[float, float]) -> None:
    """The served hot path's ``to_uint8`` (in place, contiguous) gives the documented formula's values bit for
    bit, at half-level ties and non-finite values too, and a C-contiguous [N, H, W, C] array."""
    x = np.random.default_rng(0).uniform(-1.2, 2.2, size=(3, 3, 5, 7)).astype(np.float32)
    x[0, 0, 0, :3] = [-1.0, 1.0, 0.0]
    lo, hi = value_range
    x[1, :, 0, :] = lo + (np.arange(7, dtype=np.float32) + 0.5) * np.float32((hi - lo) / 255.0)  # half-level ties
    x[2, 1, 1, :4] = [np.nan, np.inf, -np.inf, 1e30]
    hwc = np.transpose(x, (0, 2, 3, 1))
    with np.errstate(invalid="ignore"):
        reference = np.clip(np.rint((hwc - lo) * np.float32(255.0 / (hi - lo))), 0, 255).astype(np.uint8)
        fast = wire.to_uint8(x, value_range)
    np.testing.assert_array_equal(fast, reference)
    assert fast.flags.c_contiguous and fast.shape == (3, 5, 7, 3)


def test_seed_and_label_checks() -> None:
    np.testing.assert_array_equal(wire.check_seeds(np.array([[0], [2**63 - 1]], np.int64)), [0, 2**63 - 1])
    with pytest.raises(wire.RequestError, match="'seed'.*-3"):
        wire.check_seeds(np.array([[1], [-3]], np.int64))
    np.testing.assert_array_equal(wire.check_index(np.array([[0], [2]]), 3, "label"), [0, 2])
    for bad in (-1, 3):
        with pytest.raises(wire.RequestError, match=r"'label' must be in \[0, 2\]"):
            wire.check_index(np.array([[bad]]), 3, "label")


def test_decode_accepts_pictures_and_feeds_the_model_channels() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (10, 14, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pictures.decode_picture(png(rgb), max_pixels=1000).pixels, rgb)
    assert pictures.decode_picture(png(rgb, "JPEG"), max_pixels=1000).pixels.shape == (10, 14, 3)
    picture = pictures.decode_picture(png(rgb), max_pixels=1000)
    assert pictures.to_model(picture, 1, (-1.0, 1.0)).shape == (1, 10, 14)  # a grey model gets the luma
    gray = pictures.decode_picture(png(rgb[:, :, 0]), max_pixels=1000)
    assert gray.pixels.shape == (10, 14, 1) and pictures.to_model(gray, 3, (-1.0, 1.0)).shape == (3, 10, 14)


def test_pixel_limit_is_checked_before_decoding() -> None:
    blob = png(np.zeros((200, 300), np.uint8))
    with pytest.raises(pictures.PictureError, match="300x200 = 60000 pixels, above the limit of 59999"):
        pictures.decode_picture(blob, max_pixels=59_999)


@pytest.mark.parametrize("path", sorted(BACKENDS.glob("*.py")), ids=lambda p: p.name)
def test_backend_files_are_self_contained(path: Path) -> None:
    """Backends run in the NGC container without gandeploy: only numpy/PIL/onnxruntime/json, Python 3.8 syntax."""
    tree = ast.parse(path.read_text(), feature_version=(3, 8))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        assert set(names) <= ALLOWED_IMPORTS, f"{path.name} imports {names}"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_keeps_depth_channels_and_alpha(dtype: type, channels: int) -> None:
    """The one PNG encoder: every depth and channel count the served pipeline answers, read back bit for bit by
    the served decoder (alpha apart from the colour)."""
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(channels).integers(0, top + 1, (5, 7, channels)).astype(dtype)
    blob = wire.encode_png(pixels)
    assert blob.startswith(wire.PNG_MAGIC) and blob[24] == 8 * np.dtype(dtype).itemsize  # IHDR bit depth
    picture = pictures.decode_picture(blob, max_pixels=100)
    colour = 1 if channels <= 2 else 3
    np.testing.assert_array_equal(picture.pixels, pixels[:, :, :colour])
    if channels in (2, 4):
        np.testing.assert_array_equal(picture.alpha, pixels[:, :, -1])
    else:
        assert picture.alpha is None
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(wire.encode_png(pixels[:, :, 0])))),
                                  pixels[:, :, 0])  # [H, W] is grey
    with pytest.raises(ValueError, match="uint8 or uint16"):
        wire.encode_png(pixels.astype(np.float32))


def test_one_png_encoder_in_the_package() -> None:
    """Every PNG gandeploy writes from pixels goes through ``wire.encode_png`` (matplotlib figures apart)."""
    import re

    package = Path(wire.__file__).parent
    pattern = re.compile(r"""format\s*=\s*["']PNG["']""")
    found = [f"{p.relative_to(package)}:{i}" for p in sorted(package.rglob("*.py")) if p.name != "wire.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, f"PNG written outside gandeploy.wire.encode_png: {found}"
