"""The served picture rules (``serving/backends/gd_pictures.py``) without a server: decoding every kind of
picture, the size rule, tiles stitched back to the whole-picture output, the output pixel limit, and the
tiling defaults (``gandeploy.contract_images``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gandeploy.contract_images import DEFAULT_OVERLAP, ImageRules, tile_plan
from gandeploy.errors import UserInputError
from gandeploy.models import io as gio
from gandeploy.serving.backends import gd_pictures as P
from gandeploy.wire import encode_png

SR2 = {"in_channels": 3, "out_channels": 3, "multiple": 2, "scale": 2, "in_range": [0.0, 1.0],
       "out_range": [0.0, 1.0]}
RADIUS = 3  # of the fake generator below


def fake_sr(x: np.ndarray, scale: int = 2) -> np.ndarray:
    """A local generator with receptive-field radius 3: a 7x7 box blur (zero padding) then nearest upscaling;
    float [B, C, h, w] → [B, C, s*h, s*w]. Its zero padding makes every tile border visible without overlap."""
    b, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)))
    acc = np.zeros_like(x)
    for dy in range(2 * RADIUS + 1):
        for dx in range(2 * RADIUS + 1):
            acc += padded[:, :, dy:dy + h, dx:dx + w]
    blurred = acc / (2 * RADIUS + 1) ** 2 * 0.8 + 0.2 * x
    return np.repeat(np.repeat(blurred, scale, axis=2), scale, axis=3)


def photo(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)


def png(arr: np.ndarray, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def serve(blob: bytes, limits: dict[str, int], rules: dict = SR2) -> np.ndarray:
    job = P.Job(P.decode_picture(blob, max_pixels=10**8, scale=rules["scale"]), rules, limits)
    P.run_jobs([job], lambda x: fake_sr(x, rules["scale"]), max_batch=4)
    assert job.error is None
    return np.asarray(Image.open(io.BytesIO(encode_png(job.result()))))


def test_tiles_stitch_to_the_whole_picture_output() -> None:
    blob = png(photo(50, 37))
    whole = serve(blob, {})
    assert whole.shape == (100, 74, 3)
    tiled = serve(blob, {"tile_height": 16, "tile_width": 12, "tile_overlap": 4})  # overlap >= radius: seamless
    np.testing.assert_array_equal(tiled, whole)
    seams = serve(blob, {"tile_height": 16, "tile_width": 12, "tile_overlap": 0})  # no overlap: seams appear
    assert np.abs(seams.astype(int) - whole.astype(int)).max() > 10


def test_tile_origins_follow_the_size_rule() -> None:
    for length, tile, overlap in [(50, 16, 4), (160, 64, 16), (17, 16, 4), (64, 64, 8), (9, 16, 4)]:
        tiles = P.axis_tiles(length, tile, overlap)
        cores = [(lo, hi) for _, lo, hi in tiles]
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))  # the cores cover the axis once
        for start, lo, hi in tiles:
            assert start <= lo < hi <= start + min(tile, length)
            assert (lo == 0 or lo - start >= overlap) and (hi == length or start + tile - hi >= overlap)


@pytest.mark.parametrize("h, w", [(1, 1), (1, 7), (3, 2), (5, 5), (33, 1)])
def test_any_size_is_padded_and_cropped_back(h: int, w: int) -> None:
    out = serve(png(photo(h, w)), {"min_height": 8, "min_width": 8})
    assert out.shape == (2 * h, 2 * w, 3)


def test_pad_reflects_and_falls_back_to_edge() -> None:
    x = np.arange(3, dtype=np.float32).reshape(1, 1, 3)
    np.testing.assert_array_equal(P.pad(x, 1, 6)[0, 0], [0, 1, 2, 1, 0, 1])  # reflect, twice
    np.testing.assert_array_equal(P.pad(np.ones((1, 1, 1), np.float32), 4, 4), np.ones((1, 4, 4)))  # edge


def test_greyscale_alpha_and_sixteen_bit_are_kept() -> None:
    grey = serve(png(photo(9, 11, 1)), {})
    assert grey.shape == (18, 22)  # greyscale in, greyscale out
    rgba = photo(9, 11, 4)
    served = serve(png(rgba), {})  # RGBA in, RGBA out
    assert served.shape == (18, 22, 4)
    alpha = P.upscale_alpha(rgba[:, :, 3], 2, 255)
    np.testing.assert_array_equal(served[:, :, 3], alpha)
    deep = (np.random.default_rng(1).integers(0, 65536, size=(6, 5, 3))).astype(np.uint16)
    blob = encode_png(deep)
    picture = P.decode_picture(blob, max_pixels=10**6, scale=2)
    assert picture.maxval == 65535
    np.testing.assert_array_equal(picture.pixels, deep)  # 16-bit colour read at full depth
    job = P.Job(picture, SR2, {})
    P.run_jobs([job], fake_sr, 4)
    result = job.result()
    assert result.dtype == np.uint16 and result.shape == (12, 10, 3)
    assert encode_png(job.result())[24] == 16  # answered as a 16-bit PNG (IHDR bit depth)
    grey16 = deep[:, :, :1]
    np.testing.assert_array_equal(P.decode_picture(encode_png(grey16), max_pixels=10**6).pixels, grey16)
    la16 = np.concatenate([grey16, deep[:, :, 1:2]], axis=2)
    pic = P.decode_picture(encode_png(la16), max_pixels=10**6)
    np.testing.assert_array_equal(pic.pixels, grey16)
    np.testing.assert_array_equal(pic.alpha, la16[:, :, 1])


def test_unusual_but_valid_pictures_decode() -> None:
    rgb = photo(12, 10)
    palette = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16)
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert P.decode_picture(buf.getvalue(), max_pixels=1000).pixels.shape == (12, 10, 3)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, format="JPEG")
    assert P.decode_picture(cmyk.getvalue(), max_pixels=1000).pixels.shape == (12, 10, 3)
    gif = io.BytesIO()
    frames = [Image.fromarray(photo(12, 10, seed=s)).convert("P") for s in range(3)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    first = P.decode_picture(gif.getvalue(), max_pixels=1000).pixels
    np.testing.assert_array_equal(first, np.asarray(frames[0].convert("RGB")))
    one = P.decode_picture(png(photo(1, 1)), max_pixels=1)
    assert one.pixels.shape == (1, 1, 3)


@pytest.mark.parametrize("blob, match", [
    (b"", "is empty"),
    (b"hello, not a picture", "is not a picture"),
    (png(photo(20, 20))[:60], "is a corrupt or truncated PNG"),
    (png(photo(20, 20), "JPEG")[:200], "is a corrupt or truncated JPEG"),
], ids=["empty", "text", "truncated-png", "truncated-jpeg"])
def test_broken_pictures_name_the_input(blob: bytes, match: str) -> None:
    with pytest.raises(P.PictureError, match=f"input 'image_bytes' {match}"):
        P.decode_picture(blob, max_pixels=10_000, scale=2)


def test_the_output_limit_refuses_from_the_header() -> None:
    blob = png(photo(30, 20))  # 600 pixels in, 2400 out at scale 2
    P.decode_picture(blob, max_pixels=2400, scale=2)
    with pytest.raises(P.PictureError, match=r"30x20 gives a 40x60 = 2400 pixel output|20x30 gives a 40x60"):
        P.decode_picture(blob, max_pixels=2399, scale=2)
    header_only = blob[:40]  # a truncated file is refused by its header's size before anything is decoded
    with pytest.raises(P.PictureError, match="pixel output"):
        P.decode_picture(header_only, max_pixels=2399, scale=2)


def test_value_ranges_map_like_the_contract() -> None:
    pic = P.decode_picture(png(photo(4, 4)), max_pixels=100)
    x = P.to_model(pic, 3, (-1.0, 1.0))
    np.testing.assert_array_equal(x[None], gio.from_uint8(pic.pixels[None], (-1.0, 1.0)))
    np.testing.assert_array_equal(P.to_model(pic, 3, (0.0, 1.0))[None], gio.from_uint8(pic.pixels[None], (0.0, 1.0)))
    y = np.random.default_rng(0).uniform(-0.1, 1.1, size=(3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(P.from_model(y, (0.0, 1.0), 255, grey=False), gio.to_uint8(y[None], (0.0, 1.0))[0])


def test_tile_plan_defaults_and_flags() -> None:
    rules = ImageRules(3, 3, 2, 4, (0.0, 1.0), (0.0, 1.0))
    measured = tile_plan(rules, max_batch=8, radius=13, min_hw=(8, 8), max_hw=(0, 0))
    assert measured.overlap == 14 and measured.covers and measured.tile_height == measured.tile_width == 180
    unmeasured = tile_plan(rules, max_batch=8, radius=None, min_hw=(8, 8), max_hw=(0, 0))
    assert unmeasured.overlap == DEFAULT_OVERLAP and not unmeasured.covers
    clamped = tile_plan(rules, max_batch=8, radius=13, min_hw=(8, 8), max_hw=(64, 96), tile=128)
    assert (clamped.tile_height, clamped.tile_width) == (64, 96)
    with pytest.raises(UserInputError, match="--tile must be a positive multiple of 2"):
        tile_plan(rules, max_batch=8, radius=13, min_hw=(8, 8), max_hw=(0, 0), tile=65)
    with pytest.raises(UserInputError, match="--tile-overlap must be"):
        tile_plan(rules, max_batch=8, radius=13, min_hw=(8, 8), max_hw=(0, 0), overlap=3)
    with pytest.raises(UserInputError, match="--tile 32 leaves no room"):
        tile_plan(rules, max_batch=8, radius=13, min_hw=(8, 8), max_hw=(0, 0), tile=32, overlap=16)


def test_shm_counts_the_scaled_output() -> None:
    from gandeploy.serving.ngc import shm_bytes

    io4 = gio.GeneratorIO((gio.image_input(3, value_range=(0.0, 1.0)),),
                          (gio.image_output(3, "H*4", "W*4", scale=4, value_range=(0.0, 1.0)),))
    manifest = {"max_batch": 2, "image_sizes": {"max": [16, 8]}, **io4.to_json()}
    per_batch = 2 * 3 * 16 * 8 * 4 * (1 + 16)  # input + 16x the pixels out, float32
    assert shm_bytes(manifest) == int(per_batch * 2.0)


def test_a_default_overlap_squeezed_by_the_export_is_recorded() -> None:
    rules = ImageRules(3, 3, 4, 1, (-1.0, 1.0), (-1.0, 1.0))
    plan = tile_plan(rules, max_batch=8, radius=40, min_hw=(8, 8), max_hw=(64, 64))
    assert plan.reduced and plan.overlap == 28 and not plan.covers and "reduced to 28" in plan.overlap_source
    assert not tile_plan(rules, max_batch=8, radius=8, min_hw=(8, 8), max_hw=(64, 64)).reduced


def test_api_encodes_pil_images_of_every_mode_losslessly() -> None:
    """``gandeploy.load(...).translate`` takes PIL images of any mode; each becomes the PNG the served pipeline
    decodes to the same pixels (a palette to RGB(A), 1-bit to grey, 16-bit grey kept at 16 bits)."""
    from gandeploy.api.generator import encode_picture

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (6, 9)).astype(np.uint16)
    palette = Image.fromarray(rgb).quantize(8)
    cases = {"RGB": (Image.fromarray(rgb), rgb), "P": (palette, np.asarray(palette.convert("RGB"))),
             "1": (Image.fromarray(rgb[:, :, 0] > 127), (rgb[:, :, :1] > 127).astype(np.uint8) * 255),
             "I;16": (Image.fromarray(grey16), grey16[:, :, None]),
             "CMYK": (Image.fromarray(rgb).convert("CMYK"), np.asarray(Image.fromarray(rgb).convert("CMYK")
                                                                        .convert("RGB")))}
    for mode, (image, want) in cases.items():
        assert image.mode == mode
        decoded = P.decode_picture(encode_picture(image), max_pixels=10**4)
        np.testing.assert_array_equal(decoded.pixels, want.reshape(decoded.pixels.shape), err_msg=mode)
    with pytest.raises(UserInputError, match="picture 2"):
        encode_picture(np.zeros((2, 2), np.float32), 2)
