"""The Gradio page of ``gandeploy ui``: one tab per served user-facing model, built from its served contract.

Every call goes through the tritonclient SDK (``gandeploy.runtimes.triton_client``) to the running server, with a
fresh connection per call, so the page survives a server restart; while the server is down every action (and
the status line, polled every few seconds) says "server not reachable". Requests the server refuses
(INVALID_ARG) show as messages next to the result. Pictures leave the page as PNG (lossless).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.contract import (
    CONFIG_PARAMETER,
    ServedContract,
    raw_model,
)
from gandeploy.serving.interpolation import interpolation_feeds
from gandeploy.errors import GanDeployError, RequestRejected, ServingError
from gandeploy.models import io as gio
from gandeploy.serving.client import served_contract
from gandeploy.serving.pictures import image_grid
from gandeploy.ui.widgets import Widget, given_values, seed_of, widgets
from gandeploy.utils.logging import get_logger

if TYPE_CHECKING:
    import gradio as gr
    from PIL import Image

log = get_logger("ui")
UNREACHABLE = "server not reachable"
STATUS_EVERY_S = 3.0
# small generator pictures fill their box, scaled without smoothing (the PNG itself stays at served size)
CSS = (".gd-picture img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; } "
       ".gd-status { min-height: 1.5em; }")


@dataclass(frozen=True)
class ServedModel:
    """A user-facing served model: its name, served contract and max batch size."""

    name: str
    contract: ServedContract
    max_batch: int

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def generator(self) -> str:
        """The raw generator model of the repository layout (``NAME_generator``, the ONNX IO)."""
        return raw_model(self.name)


class Backend:
    """The server the page talks to: ``url`` + ``protocol``; one short-lived SDK connection per call."""

    def __init__(self, url: str, protocol: str = "http", timeout: float = 60.0) -> None:
        self.url, self.protocol, self.timeout = url, protocol, timeout

    def client(self) -> Any:
        from gandeploy.runtimes.triton_client import TritonClient

        return TritonClient(self.url, self.protocol, timeout=self.timeout)

    def models(self) -> list[ServedModel]:
        """Every READY model that declares itself the user-facing model of an export (config parameter
        ``gandeploy_export`` equal to its own name) and carries a served contract."""
        out = []
        with self.client() as c:
            for name in c.model_names():
                cfg = c.config(name)
                params = cfg.get("parameters", {})
                if (params.get("gandeploy_export") or {}).get("string_value") != name or CONFIG_PARAMETER not in params:
                    continue
                out.append(ServedModel(name, served_contract(name, client=c), int(cfg.get("max_batch_size") or 1)))
        return out

    def ready(self) -> bool:
        with self.client() as c:
            return bool(c.server_ready())

    def infer(self, model: str, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        with self.client() as c:
            return c.infer(model, feeds, [output])[output]

    def status(self) -> str:
        return f"Triton at `{self.url}` ({self.protocol}): ready" if self.ready() else \
            f"**{UNREACHABLE}** at `{self.url}` ({self.protocol}): start it with `gandeploy serve`; this page waits."


def message(exc: Exception, backend: Backend) -> str:
    """What the page shows for a failed call."""
    if isinstance(exc, RequestRejected):
        return f"**The server refused the request** ({exc.status or 'error'}): {exc}"
    if isinstance(exc, ServingError) and not backend.ready():
        return f"**{UNREACHABLE}** at `{backend.url}`: start it with `gandeploy serve`, then try again."
    return f"**Error**: {exc}"


def points_picture(points: np.ndarray, size: int = 256) -> np.ndarray:
    """float [N, D] points (first two dims) → a uint8 [size, size, 3] scatter picture, axes at the origin."""
    from PIL import Image, ImageDraw

    xy = points[:, :2] if points.shape[1] > 1 else np.concatenate([points, points], axis=1)
    span = float(np.abs(xy).max()) * 1.1 or 1.0
    px = (xy / span + 1.0) * (size / 2)  # [-span, span] → [0, size]
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.line([(0, size / 2), (size, size / 2)], fill=(220, 220, 220))
    draw.line([(size / 2, 0), (size / 2, size)], fill=(220, 220, 220))
    for x, y in px:
        draw.ellipse([x - 2, size - y - 2, x + 2, size - y + 2], fill=(31, 119, 180))
    return np.asarray(canvas)


def to_pil(picture: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] → a PIL picture (C = 1: grayscale)."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(picture[:, :, 0] if picture.shape[2] == 1 else picture))


# --- the actions behind the buttons ------------------------------------------------------------------------


def sample_action(backend: Backend, model: ServedModel, controls: Sequence[Widget]) -> Callable[..., Any]:
    def run(n: float, *values: Any) -> tuple[Any, str]:
        try:
            seed = seed_of(controls, values)
            seeds = np.arange(seed, seed + max(1, int(n)), dtype=np.int64)
            feeds = model.contract.request(seeds, **given_values(model.contract, controls, values))
            out = backend.infer(model.name, feeds, model.contract.output_name)
            picture = points_picture(out) if model.contract.points else image_grid(out)
            return to_pil(picture), f"seeds {seeds[0]} .. {seeds[-1]} from `{model.name}`"
        except GanDeployError as exc:
            return None, message(exc, backend)

    return run


def interpolate_action(backend: Backend, model: ServedModel, controls: Sequence[Widget]) -> Callable[..., Any]:
    def run(seed_b: float, steps: float, *values: Any) -> tuple[Any, str]:
        try:
            seed_a = seed_of(controls, values)
            feeds = interpolation_feeds(model.contract, seed_a, int(seed_b or 0), max(2, int(steps)),
                                        given_values(model.contract, controls, values))
            raw = backend.infer(model.generator, feeds, model.contract.generator_outputs[0].name)
            return to_pil(image_grid(gio.to_uint8(raw, model.contract.output_range), cols=len(raw))), \
                f"slerp of the latents of seeds {seed_a} → {int(seed_b or 0)} via `{model.generator}`"
        except GanDeployError as exc:
            return None, message(exc, backend)

    return run


def _served_picture(backend: Backend, model: ServedModel, path: str) -> tuple[Any, Any, str | None]:
    """(the uploaded picture or None, the served model's answer or None, an error message or None)."""
    from PIL import Image

    with open(path, "rb") as fh:
        data = fh.read()
    try:
        shown: Any = Image.open(io.BytesIO(data))
        shown.load()
    except Exception:  # noqa: BLE001 - not a picture here: the server says why below
        shown = None
    try:
        name = model.contract.inputs[0].name
        out = backend.infer(model.name, {name: np.array([[data]], dtype=np.object_)}, model.contract.output_name)
        result = Image.open(io.BytesIO(bytes(out.reshape(-1)[0])))
        result.load()
        return shown, result, None
    except GanDeployError as exc:
        return shown, None, message(exc, backend)


def translate_action(backend: Backend, model: ServedModel) -> Callable[..., Any]:
    def run(path: str | None) -> tuple[Any, Any, str]:
        if not path:
            return None, None, "Upload a picture first."
        shown, result, error = _served_picture(backend, model, path)
        if error is not None:
            return shown, None, error
        return shown, result, f"translated by `{model.name}` ({result.width}x{result.height})"

    return run


def upscale_action(backend: Backend, model: ServedModel) -> Callable[..., Any]:
    """Before/after for a model whose output is ``scale`` x its input (the contract's scale, not its name): the
    input blown up to the output's size without smoothing (each input pixel a ``scale`` x ``scale`` block) beside
    the served output; and the output itself (for download)."""
    def run(path: str | None) -> tuple[Any, Any, str]:
        if not path:
            return None, None, "Upload a picture first."
        shown, result, error = _served_picture(backend, model, path)
        if error is not None:
            return None, None, error
        from PIL import Image

        before = shown.convert("RGBA" if "A" in result.getbands() else "RGB").resize(result.size, Image.NEAREST)
        after = result.convert(before.mode)
        return (before, after), result, (f"upscaled x{model.contract.scale} by `{model.name}`: {shown.width}x"
                                         f"{shown.height} → {result.width}x{result.height}")

    return run


# --- the page -----------------------------------------------------------------------------------------------


def _control(gr: Any, w: Widget, slug: str) -> Any:
    elem_id = f"{slug}-{w.key}"
    if w.kind == "integer":
        return gr.Number(value=0, precision=0, minimum=w.low, maximum=w.high, label=w.label, elem_id=elem_id)
    if w.kind == "choice":
        return gr.Dropdown(choices=list(w.choices), value=w.choices[0][1], label=w.label, elem_id=elem_id)
    return gr.Slider(w.low, w.high, value=w.default, step=w.step, label=w.label, elem_id=elem_id)


def _picture(gr: Any, label: str, height: int, elem_id: str) -> Any:
    """An output picture: PNG (lossless) to the browser, scaled up without smoothing by ``CSS``."""
    return gr.Image(label=label, format="png", type="pil", interactive=False, height=height,
                    buttons=["download", "fullscreen"],  # no "share": it posts to a public hub
                    elem_classes="gd-picture", elem_id=elem_id)


def _sampling_tab(gr: Any, backend: Backend, model: ServedModel) -> None:
    controls = [w for w in widgets(model.contract) if w.kind != "upload"]
    slug = model.slug
    with gr.Row():
        with gr.Column(scale=1):
            inputs = [_control(gr, w, slug) for w in controls]
            n = gr.Slider(1, min(64, model.max_batch), value=min(8, model.max_batch), step=1,
                          label="samples (seeds seed .. seed + N - 1)", elem_id=f"{slug}-n")
            go = gr.Button("Generate", variant="primary", elem_id=f"{slug}-generate")
        with gr.Column(scale=2):
            picture = _picture(gr, "samples", 360, f"{slug}-image")
            status = gr.Markdown(elem_id=f"{slug}-status", elem_classes="gd-status")
    go.click(sample_action(backend, model, controls), [n, *inputs], [picture, status])
    if model.contract.latent is None or model.contract.points:
        return
    with gr.Accordion("Interpolation strip (spherical, between two seeds' latents)", open=True):
        with gr.Row():
            seed_b = gr.Number(value=1, precision=0, minimum=0, label="to seed", elem_id=f"{slug}-seed-b")
            steps = gr.Slider(2, min(16, model.max_batch), value=min(8, model.max_batch), step=1, label="steps",
                              elem_id=f"{slug}-steps")
            strip_go = gr.Button("Interpolate", elem_id=f"{slug}-interpolate")
        strip = _picture(gr, "interpolation", 140, f"{slug}-strip")
        strip_status = gr.Markdown(elem_id=f"{slug}-strip-status", elem_classes="gd-status")
    strip_go.click(interpolate_action(backend, model, controls), [seed_b, steps, *inputs], [strip, strip_status])


def _translation_tab(gr: Any, backend: Backend, model: ServedModel) -> None:
    slug = model.slug
    with gr.Row():
        upload = gr.File(label="picture (PNG / JPEG)", file_types=["image"], type="filepath",
                         elem_id=f"{slug}-upload")
        go = gr.Button("Translate", variant="primary", elem_id=f"{slug}-translate")
    with gr.Row():
        shown = _picture(gr, "input", 280, f"{slug}-input")
        result = _picture(gr, "translated", 280, f"{slug}-result")
    status = gr.Markdown(elem_id=f"{slug}-status", elem_classes="gd-status")
    go.click(translate_action(backend, model), [upload], [shown, result, status])


def _upscale_tab(gr: Any, backend: Backend, model: ServedModel) -> None:
    slug = model.slug
    with gr.Row():
        upload = gr.File(label="picture (PNG / JPEG / GIF / BMP / WEBP)", file_types=["image"], type="filepath",
                         elem_id=f"{slug}-upload")
        go = gr.Button(f"Upscale x{model.contract.scale}", variant="primary", elem_id=f"{slug}-upscale")
    compare = gr.ImageSlider(label="before (input, pixels enlarged) | after (served output)", type="pil",
                             format="png", buttons=["fullscreen"], max_height=560, elem_id=f"{slug}-compare")
    result = _picture(gr, "upscaled (served size)", 280, f"{slug}-result")
    status = gr.Markdown(elem_id=f"{slug}-status", elem_classes="gd-status")
    go.click(upscale_action(backend, model), [upload], [compare, result, status])


def build_app(backend: Backend, models: Sequence[ServedModel]) -> gr.Blocks:
    """The page: a status line and one tab per model (sampling: controls, grid, strip; translation: upload;
    super-resolution, i.e. an output ``scale`` > 1: upload and a before/after slider)."""
    import gradio as gr

    with gr.Blocks(title="gandeploy", analytics_enabled=False) as app:
        gr.Markdown("## gandeploy: served generators\nEvery control comes from the model's served contract; "
                    "every picture from the Triton server.")
        status = gr.Markdown(backend.status(), elem_id="server-status")
        gr.Timer(STATUS_EVERY_S).tick(backend.status, None, status, show_progress="hidden")
        if not models:
            gr.Markdown("No gandeploy model is served (build one with `gandeploy repo`).")
        with gr.Tabs():
            for model in models:
                with gr.Tab(f"{model.name} ({_kind(model)})", elem_id=f"tab-{model.slug}"):
                    tab = _sampling_tab if not model.contract.translation else \
                        _upscale_tab if model.contract.scale > 1 else _translation_tab
                    tab(gr, backend, model)
    return app


def _kind(model: ServedModel) -> str:
    if not model.contract.translation:
        return "sampling"
    return f"super-resolution x{model.contract.scale}" if model.contract.scale > 1 else "image-to-image"
