"""Generated assets for the CycleGAN tests: tiny unpaired image folders, their zip, a local HTTP server."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

LAYOUT = {"trainA": 5, "trainB": 4, "testA": 2, "testB": 3}


def make_unpaired_folder(root: Path, counts: dict[str, int] | None = None, size: int = 40, seed: int = 0) -> Path:
    """``root/{trainA,trainB,testA,testB}`` of small random JPEG/PNG pictures (A reddish, B bluish)."""
    rng = np.random.default_rng(seed)
    for sub, n in (counts or LAYOUT).items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pix = rng.integers(0, 256, (size + i, size, 3), dtype=np.uint8)  # sizes differ: resized on load
            pix[..., 0 if sub.endswith("A") else 2] = 255
            ext = "jpg" if i % 2 else "png"
            Image.fromarray(pix).save(root / sub / f"{sub}_{i}.{ext}")
    return root


def make_dataset_zip(tmp: Path, name: str) -> bytes:
    """The bytes of ``<name>.zip`` laid out like the authors' archives (``<name>/trainA/...``)."""
    folder = make_unpaired_folder(tmp / "zipsrc" / name, size=12)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return buf.getvalue()


def corrupt_member(data: bytes) -> bytes:
    """Flip bytes inside the first stored member's data: the archive opens, its CRC check fails."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = next(i for i in zf.infolist() if i.file_size > 64)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # local header + name
    out = bytearray(data)
    for k in range(start + 20, start + 40):
        out[k] ^= 0xFF
    return bytes(out)


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[bytes, int | None]] = {}  # path -> (body, bytes actually sent or None for all)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path not in self.routes:
            self.send_error(404, "not found")
            return
        body, sent = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if sent is None else body[:sent])  # a short write, then the connection closes
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@contextmanager
def serve_files(routes: dict[str, tuple[bytes, int | None]]) -> Iterator[str]:
    """Serve ``routes`` on 127.0.0.1 at a free port; yields the base URL."""
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
