"""Pictures through an image-to-image generator: decode, pad, tile, stitch. SELF-CONTAINED (numpy, PIL and
the stdlib only): ``gandeploy repo`` copies it beside the pipeline's ``model.py``, and the in-process
path (``gandeploy.serving.local``) and parity import the very same file, so a local result equals the served one.

The rules, all read from the served contract's ``images`` entry (``gandeploy.contract_images.ImageRules``):

- **Decode.** PNG, JPEG, GIF (its first frame), BMP and WEBP; palette, CMYK and other modes are converted, EXIF
  orientation applied. Greyscale pictures stay greyscale (fed to a colour model as three equal channels, the
  output turned back to grey with ITU-R 601 luma); RGBA / LA keep their alpha, which does not go through the
  model: it is upscaled on its own by bicubic resampling (PIL, float mode, clipped), exactly kept at scale 1.
  16-bit PNGs are read at 16 bits (PIL's own decoder, high and low bytes read separately) and answered as 16-bit
  PNGs. The size is checked from the header *before* decoding: input pixels, and output pixels (``scale``² x the
  input's) both within ``max_pixels``.
- **Size rule.** The picture (float, in the input's ``value_range``) is padded on the bottom and right to
  multiples of ``multiple`` and at least the minimum size (reflect; edge where reflect is impossible, e.g. one
  pixel), run, and the output cropped back to ``scale`` x the input's size.
- **Tiling.** A padded picture longer than the tile on an axis is cut into tiles of ``tile`` pixels whose
  origins are multiples of ``multiple`` (so every stride-``multiple`` layer sees the same grid as on the whole
  picture), neighbours overlapping by at least ``2 * overlap``. Each output tile keeps only its core (the split
  lies mid-overlap, so each core has ``overlap`` input pixels of context on every inner side) and the cores are
  stitched. Where ``overlap`` covers the generator's receptive field the result equals the whole-picture output.
- **Encode.** The answer is ``encode_png(job.result())`` of ``gandeploy/wire.py`` (``gd_wire`` beside the model):
  the one PNG encoder, at the picture's own depth.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
GREY_MODES = ("1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


class PictureError(ValueError):
    """A picture that cannot be served (its message names the input); the pipeline answers INVALID_ARG."""


class Picture:
    """A decoded picture: ``pixels`` uint8 or uint16 [H, W, K] (K = 1 grey or 3 colour), ``alpha`` of the same
    dtype [H, W] or None, ``maxval`` 255 or 65535."""

    def __init__(self, pixels: np.ndarray, alpha: Optional[np.ndarray], maxval: int) -> None:
        self.pixels, self.alpha, self.maxval = pixels, alpha, maxval

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


# --- decoding ----------------------------------------------------------------------------------------------


def sniff(data: bytes) -> Optional[str]:
    """The picture format from its first bytes (None: not one we serve)."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def from_base64(data: bytes) -> bytes:
    """``data`` itself when it is a picture; the decoded bytes when it is base64 text of one (JSON bodies over
    HTTP, optionally as a ``data:image/...;base64,`` URL)."""
    import base64
    import binascii

    if sniff(data):
        return data
    text = data.strip()
    if text.startswith(b"data:") and b"," in text[:100]:
        text = text.split(b",", 1)[1]
    try:
        decoded = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return data
    return decoded if sniff(decoded) else data


def check_size(width: int, height: int, scale: int, max_pixels: int, name: str) -> None:
    """Input and output (``scale``² x the input) pixels within ``max_pixels``, or a ``PictureError``."""
    if width < 1 or height < 1:
        raise PictureError(f"input '{name}' has an empty size {width}x{height}")
    guard = "(gandeploy repo --max-pixels; decompression-bomb guard)"
    if width * height > max_pixels:
        raise PictureError(f"input '{name}' is too large: {width}x{height} = {width * height} pixels, above the "
                           f"limit of {max_pixels} pixels {guard}")
    out = width * height * scale * scale
    if out > max_pixels:
        raise PictureError(f"input '{name}' is too large: {width}x{height} gives a {width * scale}x"
                           f"{height * scale} = {out} pixel output (scale {scale}), above the limit of {max_pixels} "
                           f"pixels {guard}")


def decode_picture(data: bytes, *, max_pixels: int, scale: int = 1, name: str = "image_bytes") -> Picture:
    """Picture bytes → ``Picture``, the size checked from the header before any pixel is decoded."""
    from PIL import Image, ImageOps

    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise PictureError(f"input '{name}' is empty: send the bytes of a PNG or JPEG file")
    data = from_base64(bytes(data))
    kind = sniff(data)
    if kind == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":  # the header, before PIL reads anything
        check_size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), scale, max_pixels, name)
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise PictureError(f"input '{name}' is too large: above the limit of {max_pixels} pixels "
                           "(gandeploy repo --max-pixels)") from None
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
        if kind:
            raise PictureError(f"input '{name}' is a corrupt or truncated {kind} ({exc})") from None
        raise PictureError(f"input '{name}' is not a picture (PNG, JPEG, GIF, BMP or WEBP; "
                           f"{type(exc).__name__})") from None
    if img.format not in FORMATS:
        raise PictureError(f"input '{name}' must be one of {', '.join(FORMATS)}, got {img.format}")
    check_size(img.size[0], img.size[1], scale, max_pixels, name)  # PIL's header read, still nothing decoded
    deep = kind == "PNG" and len(data) > 24 and data[24] == 16
    try:
        if deep:
            return _png16(data, img)
        img.load()  # an animated GIF / WEBP: the first frame
        img = ImageOps.exif_transpose(img)
        return _picture8(img)
    except PictureError:
        raise
    except Exception as exc:
        raise PictureError(f"input '{name}' is a corrupt or truncated {img.format} ({exc})") from None


def _picture8(img: Any) -> Picture:
    mode = img.mode
    if mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
    grey = mode in GREY_MODES
    alpha = mode in ALPHA_MODES
    target = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
    arr = np.asarray(img.convert(target), dtype=np.uint8)
    arr = arr[:, :, None] if arr.ndim == 2 else arr  # [H, W, K(+1)]
    if alpha:
        return Picture(np.ascontiguousarray(arr[:, :, :-1]), np.ascontiguousarray(arr[:, :, -1]), 255)
    return Picture(arr, None, 255)


def _png16(data: bytes, img: Any) -> Picture:
    """A 16-bit PNG at full depth. PIL keeps grey at 16 bits (I;16) but reads colour as the high byte only;
    the low bytes come from a second decode of the same stream with the little-endian raw mode."""
    from PIL import Image

    colour_type = data[25]
    img.load()
    if colour_type == 0:  # grey
        grey = np.asarray(img).astype(np.uint16)  # [H, W]
        return Picture(grey[:, :, None], None, 65535)
    if colour_type == 4:  # grey + alpha: read its 4 bytes per pixel as 8-bit RGBA = (L hi, L lo, A hi, A lo)
        raw = Image.open(io.BytesIO(data))
        _retile(raw, "RGBA")
        b = np.asarray(raw).astype(np.uint16)  # [H, W, 4]
        return Picture((b[:, :, 0] * 256 + b[:, :, 1])[:, :, None], b[:, :, 2] * 256 + b[:, :, 3], 65535)
    high = np.asarray(img).astype(np.uint16)  # [H, W, 3|4], the high bytes
    low_img = Image.open(io.BytesIO(data))
    _retile(low_img, "RGBA;16L" if colour_type == 6 else "RGB;16L")
    full = high * 256 + np.asarray(low_img).astype(np.uint16)
    if colour_type == 6:
        return Picture(np.ascontiguousarray(full[:, :, :3]), np.ascontiguousarray(full[:, :, 3]), 65535)
    return Picture(full, None, 65535)


def _retile(img: Any, rawmode: str) -> None:
    tile = img.tile[0]
    img.tile = [(tile[0], tile[1], tile[2], rawmode)]
    img.load()


# --- picture <-> generator floats ----------------------------------------------------------------------------


def to_model(picture: Picture, channels: int, value_range: Tuple[float, float]) -> np.ndarray:
    """The picture as the generator input: float32 [C, H, W] in ``value_range`` (``from_uint8``'s map for 8 bit:
    ``x / (maxval / (hi - lo)) + lo``); grey fed to a colour model as three equal channels, colour to a grey
    model as its luma."""
    lo, hi = float(value_range[0]), float(value_range[1])
    x = np.transpose(picture.pixels, (2, 0, 1)).astype(np.float32)  # [K, H, W]
    if x.shape[0] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=0)
    elif x.shape[0] == 3 and channels == 1:
        x = _luma(x)
    return x / np.float32(picture.maxval / (hi - lo)) + np.float32(lo)


def from_model(output: np.ndarray, value_range: Tuple[float, float], maxval: int, grey: bool) -> np.ndarray:
    """Generator output float [C, H, W] → uint8 (maxval 255) or uint16 [H, W, K]: ``rint((y - lo) * maxval /
    (hi - lo))`` clipped (``to_uint8``'s map for 8 bit); a colour output of a grey picture becomes its luma."""
    lo, hi = float(value_range[0]), float(value_range[1])
    y = np.asarray(output, dtype=np.float32)
    if grey and y.shape[0] == 3:
        y = _luma(y)
    hwc = np.transpose(y, (1, 2, 0))
    out = np.clip(np.rint((hwc - np.float32(lo)) * np.float32(maxval / (hi - lo))), 0, maxval)
    return out.astype(np.uint16 if maxval > 255 else np.uint8)


def _luma(chw: np.ndarray) -> np.ndarray:
    return (np.float32(LUMA[0]) * chw[0] + np.float32(LUMA[1]) * chw[1] + np.float32(LUMA[2]) * chw[2])[None]


def upscale_alpha(alpha: np.ndarray, scale: int, maxval: int) -> np.ndarray:
    """The alpha channel [H, W] at ``scale`` x its size: bicubic (PIL, float mode), rounded and clipped."""
    if scale == 1:
        return alpha
    from PIL import Image

    h, w = alpha.shape
    big = Image.fromarray(alpha.astype(np.float32)).resize((w * scale, h * scale), Image.BICUBIC)
    return np.clip(np.rint(np.asarray(big)), 0, maxval).astype(alpha.dtype)


# --- size rule and tiles -------------------------------------------------------------------------------------


def round_up(value: int, multiple: int) -> int:
    return -(-int(value) // int(multiple)) * int(multiple)


def padded_size(height: int, width: int, multiple: int, min_hw: Tuple[int, int] = (1, 1)) -> Tuple[int, int]:
    """(PH, PW): at least the minimum, rounded up to multiples of ``multiple``."""
    return round_up(max(height, min_hw[0]), multiple), round_up(max(width, min_hw[1]), multiple)


def pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """float [C, H, W] → [C, PH, PW], padded at the bottom and right: reflect while the picture is long enough,
    edge for the rest (a 1-pixel picture cannot reflect)."""
    for axis, want in ((1, ph), (2, pw)):
        while x.shape[axis] < want:
            have = x.shape[axis]
            step = min(want - have, have - 1)
            widths = [(0, 0)] * 3
            widths[axis] = (0, step if step > 0 else want - have)
            x = np.pad(x, widths, mode="reflect" if step > 0 else "edge")
    return x


def axis_tiles(length: int, tile: int, overlap: int) -> List[Tuple[int, int, int]]:
    """Tiles along one axis: (start, core_lo, core_hi) in input pixels. One tile when ``length <= tile``;
    else starts 0, S, 2S, ... (S = tile - 2 * overlap) and ``length - tile`` last, each core ending mid-way into
    the next tile's overlap. Starts are multiples of the size rule when tile, overlap and length are."""
    if length <= tile:
        return [(0, 0, length)]
    step = tile - 2 * overlap
    if step < 1:
        raise ValueError(f"tile {tile} must exceed twice the overlap {overlap}")
    starts = list(range(0, length - tile, step)) + [length - tile]
    bounds = [0] + [(a + tile + b) // 2 for a, b in zip(starts, starts[1:])] + [length]  # noqa: B905 - 3.8
    return [(s, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


class Job:
    """One picture through the generator: padded, cut into equal tiles, outputs stitched back (``result``; the
    answer is ``gd_wire.encode_png(job.result())``, greyscale, alpha and 16 bits kept)."""

    def __init__(self, picture: Picture, rules: Dict[str, Any], limits: Dict[str, int]) -> None:
        self.picture, self.rules = picture, rules
        self.scale = int(rules["scale"])
        multiple = int(rules["multiple"])
        ph, pw = padded_size(picture.height, picture.width, multiple,
                             (int(limits.get("min_height", 1)), int(limits.get("min_width", 1))))
        image = pad(to_model(picture, int(rules["in_channels"]), rules["in_range"]), ph, pw)  # [C, PH, PW]
        tile_h, tile_w, overlap = (int(limits.get(k, 0)) for k in ("tile_height", "tile_width", "tile_overlap"))
        rows = axis_tiles(ph, tile_h or ph, overlap)
        cols = axis_tiles(pw, tile_w or pw, overlap)
        self.grid = [(r, c) for r in rows for c in cols]
        th, tw = min(tile_h or ph, ph), min(tile_w or pw, pw)
        self.tiles = np.stack([image[:, r[0]:r[0] + th, c[0]:c[0] + tw] for r, c in self.grid])  # [T, C, th, tw]
        self.output = np.zeros((int(rules["out_channels"]), ph * self.scale, pw * self.scale), np.float32)
        self.error: Optional[str] = None

    def put(self, index: int, out: np.ndarray) -> None:
        """Place the core of tile ``index``'s output [C', s*th, s*tw] into the stitched picture."""
        (r0, rlo, rhi), (c0, clo, chi) = self.grid[index]
        s = self.scale
        self.output[:, s * rlo:s * rhi, s * clo:s * chi] = out[:, s * (rlo - r0):s * (rhi - r0),
                                                               s * (clo - c0):s * (chi - c0)]

    def result(self) -> np.ndarray:
        """The stitched output cropped to ``scale`` x the picture: uint8 / uint16 [sH, sW, K(+alpha)]."""
        s, pic = self.scale, self.picture
        crop = self.output[:, :pic.height * s, :pic.width * s]
        pixels = from_model(crop, self.rules["out_range"], pic.maxval, grey=pic.pixels.shape[2] == 1)
        if pic.alpha is None:
            return pixels
        return np.concatenate([pixels, upscale_alpha(pic.alpha, s, pic.maxval)[:, :, None]], axis=2)


def run_jobs(jobs: List[Job], run_batch: Callable[[np.ndarray], np.ndarray], max_batch: int) -> None:
    """Every tile of every job through ``run_batch`` (float32 [B, C, h, w] → [B, C', s*h, s*w]): tiles of equal
    shape share batches of at most ``max_batch``. A failing batch marks its jobs' ``error`` and the rest go on."""
    groups: Dict[Tuple[int, ...], List[Tuple[int, int]]] = {}
    for j, job in enumerate(jobs):
        for t in range(job.tiles.shape[0]):
            groups.setdefault(job.tiles.shape[1:], []).append((j, t))
    for members in groups.values():
        for start in range(0, len(members), max(1, max_batch)):
            chunk = [m for m in members[start:start + max_batch] if jobs[m[0]].error is None]
            if not chunk:
                continue
            batch = np.stack([jobs[j].tiles[t] for j, t in chunk]).astype(np.float32)
            try:
                out = run_batch(batch)
            except Exception as exc:  # the runtime's own error, answered per request
                for j, _ in chunk:
                    jobs[j].error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                continue
            for (j, t), tile_out in zip(chunk, out):  # noqa: B905 - Python 3.8 in NGC
                if not np.all(np.isfinite(tile_out)):
                    jobs[j].error = "the generator produced NaN or infinite values"
                else:
                    jobs[j].put(t, tile_out)
