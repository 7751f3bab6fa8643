"""``gandeploy ui`` in a real browser, as a person would use it: headless Chromium (Debian's chromium +
chromium-driver, through Selenium) against the page, the page against a real tritonserver.

Pictures on the page must equal the SDK's pictures for the same inputs (pixel equality after decoding the
PNG the page shows). Screenshots go to the test's tmp dir; with ``GANDEPLOY_UI_SCREENSHOT=docs/ui.png`` the
README's screenshot is written too.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from gandeploy.models import io as gio
from gandeploy.serving import client as tc
from gandeploy.serving.pictures import image_grid
from gandeploy.wire import encode_png
from gandeploy.serving.server import TritonServer, free_port
from gandeploy.ui.app import points_picture

pytestmark = pytest.mark.e2e
MODELS = ("cgan-tiny", "infogan-tiny", "cyclegan-tiny", "mlp-tiny")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900")
WAIT_S = 90.0


# --- fixtures: a server we can restart, the page, the browser -------------------------------------------------


class Servers:
    """The module's tritonserver on fixed ports, restartable (``stop`` / ``start``)."""

    def __init__(self, repository: Path, log_dir: Path) -> None:
        ports: list[int] = []
        while len(ports) < 3:
            port = free_port()
            ports += [] if port in ports else [port]
        self.repository, self.log_dir, self.ports = repository, log_dir, ports
        self.current: TritonServer | None = None

    def start(self) -> TritonServer:
        http, grpc, metrics = self.ports
        self.current = TritonServer(self.repository, http_port=http, grpc_port=grpc, metrics_port=metrics,
                                    log_file=self.log_dir / "tritonserver.log", ready_timeout=240).start()
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"


@pytest.fixture(scope="module")
def servers(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    from gandeploy.serving.repository import build_repository

    root = tmp_path_factory.mktemp("ui-serving")
    repo = root / "model_repository"
    build_repository([exports[m] for m in MODELS], repo)
    holder = Servers(repo, root)
    holder.start()
    yield holder
    holder.stop()


@contextlib.contextmanager
def running_ui(triton_http: str, log: Path) -> Iterator[str]:
    """``gandeploy ui`` as a user starts it, on a free port; yields the page's URL."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": "127.0.0.1,localhost"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gandeploy.cli", "ui", "--url", triton_http,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + WAIT_S
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gandeploy ui did not come up (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page_url(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_ui(servers.http_url, tmp_path_factory.mktemp("ui-log") / "ui.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium + chromium-driver are not installed (make test installs them as root: "
                    "apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip extra 'dev')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    try:
        drv = webdriver.Chrome(service=Service(driver), options=options)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start here is a skip, with its reason
        pytest.skip(f"headless chromium did not start: {exc}")
    drv.set_page_load_timeout(WAIT_S)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture(scope="module")
def page(browser: Any, page_url: str) -> Any:
    browser.get(page_url)
    wait_for(browser, lambda: _text(browser, "server-status").find("ready") >= 0, "the server status line")
    return browser


# --- what a person does on the page --------------------------------------------------------------------------


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_for(driver: Any, check: Any, what: str, timeout: float = WAIT_S) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - elements come and go while Svelte re-renders
            value, last = None, exc
        if value:
            return value
        time.sleep(0.25)
    where = Path(os.environ.get("TMPDIR", "/tmp"))
    driver.save_screenshot(str(where / "ui-timeout.png"))
    (where / "ui-timeout.html").write_text(driver.page_source)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def _el(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def _text(driver: Any, elem_id: str) -> str:
    """Everything written inside ``#elem_id`` (its DOM text, whatever the layout)."""
    return " ".join(str(_el(driver, f"#{elem_id}").get_attribute("textContent") or "").split())


def open_tab(driver: Any, model: str) -> None:
    _el(driver, f"#tab-{model}-button").click()
    wait_for(driver, lambda: _el(driver, f"#tab-{model}").is_displayed(), f"the {model} tab")


def type_into(driver: Any, css: str, value: object) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _el(driver, css)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def choose(driver: Any, elem_id: str, option: str) -> None:
    from selenium.webdriver.common.by import By

    _el(driver, f"#{elem_id} input").click()
    item = wait_for(driver, lambda: [li for li in driver.find_elements(By.CSS_SELECTOR, "li[role=option]")
                                     if li.get_attribute("aria-label") == option and li.is_displayed()],
                    f"option {option!r}")
    item[0].click()
    wait_for(driver, lambda: _el(driver, f"#{elem_id} input").get_attribute("value") == option, f"{option!r} set")


def shown_picture(driver: Any, elem_id: str, previous: str | None = None) -> tuple[np.ndarray, str]:
    """Decoded pixels of the picture in ``#elem_id`` (waits for a src other than ``previous``)."""
    src = wait_for(driver, lambda: (s := _el(driver, f"#{elem_id} img").get_attribute("src")) != previous and s,
                   f"a picture in #{elem_id}")
    with urllib.request.urlopen(src, timeout=30) as resp:
        return np.asarray(Image.open(io.BytesIO(resp.read()))), src


def hwc(picture: np.ndarray) -> np.ndarray:
    return picture[:, :, None] if picture.ndim == 2 else picture


def click(driver: Any, elem_id: str) -> None:
    button = _el(driver, f"#{elem_id}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()


# --- the tests -----------------------------------------------------------------------------------------------


def test_seed_and_label_show_the_sdks_pictures(page: Any, servers: Servers, shots: Path) -> None:
    open_tab(page, "cgan-tiny")
    type_into(page, "#cgan-tiny-seed input", 5)
    choose(page, "cgan-tiny-label", "2: class2")
    type_into(page, "#cgan-tiny-n input[type=number]", 4)
    click(page, "cgan-tiny-generate")
    shown, _ = shown_picture(page, "cgan-tiny-image")
    wait_for(page, lambda: "seeds 5 .. 8" in _text(page, "cgan-tiny-status"), "the status under the grid")
    page.save_screenshot(str(shots / "cgan-grid.png"))
    sdk = tc.sample("cgan-tiny", [5, 6, 7, 8], label=2, url=servers.http_url, protocol="http")  # [4, H, W, 1]
    np.testing.assert_array_equal(hwc(shown), image_grid(sdk))  # the page's grid: the SDK's pictures, tiled
    h, w = sdk.shape[1:3]
    np.testing.assert_array_equal(hwc(shown)[2:2 + h, 2:2 + w], sdk[0])  # seed 5 itself, pixel for pixel


def test_interpolation_strip_ends_at_both_seeds(page: Any, servers: Servers, shots: Path,
                                                exports: dict[str, Path]) -> None:
    open_tab(page, "cgan-tiny")  # seed 5, label 2 from the test above stay set
    type_into(page, "#cgan-tiny-seed-b input", 1)
    type_into(page, "#cgan-tiny-steps input[type=number]", 6)
    click(page, "cgan-tiny-interpolate")
    strip, _ = shown_picture(page, "cgan-tiny-strip")
    page.save_screenshot(str(shots / "cgan-strip.png"))
    ends = tc.sample("cgan-tiny", [5, 1], label=2, url=servers.http_url, protocol="http")
    h, w = ends.shape[1:3]
    strip = hwc(strip).astype(np.int16)
    assert strip.shape == (h + 4, 6 * (w + 2) + 2, 1)
    cells = [strip[2:2 + h, 2 + i * (w + 2):2 + i * (w + 2) + w] for i in range(6)]
    assert int(np.abs(cells[0] - ends[0]).max()) <= 1 and int(np.abs(cells[-1] - ends[1]).max()) <= 1
    # every frame: the generator (ONNX Runtime, in process) on the textbook slerp of the two seeds' latents
    contract = tc.served_contract("cgan-tiny", url=servers.http_url, protocol="http")
    a, b = (contract.generator_feeds([s], label=2) for s in (5, 1))
    (z,) = (g.name for g in contract.io.inputs if g.role == gio.LATENT)
    omega = np.arccos(np.dot(a[z][0], b[z][0]) / np.linalg.norm(a[z][0]) / np.linalg.norm(b[z][0]))
    ts = np.linspace(0, 1, 6)[:, None]
    path = (np.sin((1 - ts) * omega) * a[z] + np.sin(ts * omega) * b[z]) / np.sin(omega)
    feeds = {k: (path.astype(np.float32) if k == z else np.repeat(v, 6, axis=0)) for k, v in a.items()}
    session = ort.InferenceSession(str(exports["cgan-tiny"] / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = gio.to_uint8(session.run(None, feeds)[0])
    for cell, ref in zip(cells, expected, strict=True):
        assert int(np.abs(cell - ref).max()) <= 1


def test_codes_and_truncation_show_the_sdks_picture(page: Any, servers: Servers, shots: Path) -> None:
    open_tab(page, "infogan-tiny")
    type_into(page, "#infogan-tiny-seed input", 42)
    choose(page, "infogan-tiny-code", "7")
    type_into(page, "#infogan-tiny-continuous-0 input[type=number]", 0.5)
    type_into(page, "#infogan-tiny-truncation input[type=number]", 0.7)
    type_into(page, "#infogan-tiny-n input[type=number]", 1)
    click(page, "infogan-tiny-generate")
    shown, _ = shown_picture(page, "infogan-tiny-image")
    page.save_screenshot(str(shots / "infogan.png"))
    sdk = tc.sample("infogan-tiny", [42], code=7, continuous=[0.5, 0.0], truncation=0.7, url=servers.http_url,
                    protocol="http")
    np.testing.assert_array_equal(hwc(shown)[2:-2, 2:-2], sdk[0])
    default = tc.sample("infogan-tiny", [42], code=7, url=servers.http_url, protocol="http")
    assert not np.array_equal(default[0], sdk[0])  # the sliders did reach the server


def test_points_model_shows_a_scatter_of_the_sdks_points(page: Any, servers: Servers) -> None:
    open_tab(page, "mlp-tiny")
    assert not _has(page, "#mlp-tiny-interpolate")  # a strip of points is not a picture: none offered
    type_into(page, "#mlp-tiny-seed input", 100)
    type_into(page, "#mlp-tiny-n input[type=number]", 16)
    click(page, "mlp-tiny-generate")
    shown, _ = shown_picture(page, "mlp-tiny-image")
    sdk = tc.sample("mlp-tiny", range(100, 116), url=servers.http_url, protocol="http")  # float32 [16, 2]
    np.testing.assert_array_equal(shown, points_picture(sdk))


def test_uploaded_picture_is_translated_and_a_broken_one_is_a_message(page: Any, servers: Servers, shots: Path,
                                                                      tmp_path: Path) -> None:
    open_tab(page, "cyclegan-tiny")
    channels = tc.served_contract("cyclegan-tiny", url=servers.http_url, protocol="http").in_channels
    picture = np.random.default_rng(3).integers(0, 256, (40, 48, channels), dtype=np.uint8)
    upload = tmp_path / "horse.png"
    upload.write_bytes(encode_png(picture))
    _el(page, "#cyclegan-tiny-upload input[type=file]").send_keys(str(upload))
    wait_for(page, lambda: "horse" in _text(page, "cyclegan-tiny-upload"), "the uploaded file")
    click(page, "cyclegan-tiny-translate")
    result, src = shown_picture(page, "cyclegan-tiny-result")
    page.save_screenshot(str(shots / "cyclegan.png"))
    sdk = np.asarray(Image.open(io.BytesIO(tc.translate("cyclegan-tiny", [upload.read_bytes()],
                                                        url=servers.http_url, protocol="http")[0])))
    assert result.shape[:2] == (40, 48)
    np.testing.assert_array_equal(result, sdk)

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    _el(page, "#cyclegan-tiny-upload button[aria-label='Clear']").click()
    wait_for(page, lambda: page.find_elements("css selector", "#cyclegan-tiny-upload input[type=file]"),
             "the upload box again")
    _el(page, "#cyclegan-tiny-upload input[type=file]").send_keys(str(broken))
    wait_for(page, lambda: "broken" in _text(page, "cyclegan-tiny-upload"), "the broken file")
    click(page, "cyclegan-tiny-translate")
    wait_for(page, lambda: "refused" in _text(page, "cyclegan-tiny-status"), "the server's refusal on the page")
    assert "400" in _text(page, "cyclegan-tiny-status")  # INVALID_ARG over HTTP
    page.save_screenshot(str(shots / "cyclegan-refused.png"))
    assert _text(page, "server-status").find("ready") >= 0  # the page and the server are still up


def test_page_survives_a_server_restart(page: Any, page_url: str, servers: Servers, shots: Path) -> None:
    open_tab(page, "cgan-tiny")
    servers.stop()
    wait_for(page, lambda: "server not reachable" in _text(page, "server-status"), "the status to say so")
    click(page, "cgan-tiny-generate")
    wait_for(page, lambda: "server not reachable" in _text(page, "cgan-tiny-status"), "the action to say so")
    page.save_screenshot(str(shots / "server-down.png"))
    assert _answers(page_url)
    servers.start()
    wait_for(page, lambda: "ready" in _text(page, "server-status"), "the status to recover")
    type_into(page, "#cgan-tiny-n input[type=number]", 1)
    before = _el(page, "#cgan-tiny-image img").get_attribute("src") if \
        page.find_elements("css selector", "#cgan-tiny-image img") else None
    click(page, "cgan-tiny-generate")
    shown, _ = shown_picture(page, "cgan-tiny-image", previous=before)
    sdk = tc.sample("cgan-tiny", [5], label=2, url=servers.http_url, protocol="http")
    np.testing.assert_array_equal(hwc(shown)[2:-2, 2:-2], sdk[0])


@contextlib.contextmanager
def _screenshot_server(servers: Servers, tmp_path: Path) -> Iterator[TritonServer]:
    """This module's server, or with ``GANDEPLOY_UI_REPOSITORY`` a server on that repository (make demo's)."""
    repository = os.environ.get("GANDEPLOY_UI_REPOSITORY")
    if not repository and servers.current is not None:
        yield servers.current
        return
    holder = Servers(Path(repository or "model_repository"), tmp_path)
    try:
        yield holder.start()
    finally:
        holder.stop()


def test_readme_screenshot(browser: Any, servers: Servers, tmp_path: Path) -> None:
    """The README's picture: the first sampling model of a repository, 16 samples, and its interpolation.

    Runs on this module's tiny repository into the tmp dir; ``GANDEPLOY_UI_SCREENSHOT=docs/ui.png`` with
    ``GANDEPLOY_UI_REPOSITORY`` (default ``model_repository``, e.g. make demo's) writes the README's file.
    """
    target = Path(os.environ.get("GANDEPLOY_UI_SCREENSHOT") or tmp_path / "ui.png")
    with _screenshot_server(servers, tmp_path) as server:
        with running_ui(server.http_url, tmp_path / "ui.log") as url:
            browser.set_window_size(1200, 1180)
            browser.get(url)
            wait_for(browser, lambda: "ready" in _text(browser, "server-status"), "the server status line")
            sampling = [m for m in server.model_states() if _has(browser, f"#{m}-generate")]
            assert sampling, "no sampling model on the page"
            slug = sampling[0]
            open_tab(browser, slug)
            type_into(browser, f"#{slug}-seed input", 3)
            type_into(browser, f"#{slug}-n input[type=number]", 16)
            click(browser, f"{slug}-generate")
            shown_picture(browser, f"{slug}-image")
            if _has(browser, f"#{slug}-interpolate"):
                click(browser, f"{slug}-interpolate")
                shown_picture(browser, f"{slug}-strip")
            browser.execute_script("window.scrollTo(0, 0);")
            png = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
            png.quantize(colors=64).save(target, optimize=True)
    with Image.open(target) as shot:
        assert shot.size[0] >= 1000 and shot.size[1] >= 800, shot.size


def _has(driver: Any, css: str) -> bool:
    return bool(driver.find_elements("css selector", css))
