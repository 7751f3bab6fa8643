"""``gandeploy ui``: a web demo page for the served models (Gradio), a consumer of the serving floor.

``widgets`` derives each model's controls from its served contract (no Gradio import); ``app`` builds the
page; ``launch`` waits for the server and serves the page on a local address (never a public share link).
"""

from __future__ import annotations

import time

from gandeploy.errors import ServingError, missing_extra
from gandeploy.utils.logging import get_logger

log = get_logger("ui")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def launch(url: str, *, protocol: str = "http", host: str = "127.0.0.1", port: int = 7860,
           wait_s: float = 60.0) -> None:
    """Serve the page on ``host:port`` until Ctrl-C; waits up to ``wait_s`` for the server at ``url`` first."""
    try:
        import gradio  # noqa: F401 - the optional extra
    except ImportError as exc:
        raise missing_extra("the web page", "ui", exc) from None
    from gandeploy.ui.app import CSS, Backend, build_app

    backend = Backend(url, protocol)
    deadline = time.monotonic() + wait_s
    while not backend.ready():
        if time.monotonic() > deadline:
            raise ServingError(f"no Triton server answered at {url} ({protocol}) within {wait_s:.0f} s: start it "
                               "with 'gandeploy serve', or pass --url / --protocol.")
        time.sleep(1.0)
    models = backend.models()
    log.info("serving a page for %d model(s): %s", len(models), ", ".join(m.name for m in models) or "none")
    if host not in LOCAL_HOSTS:
        log.warning("--host %s exposes the page (and through it the Triton server) to the network", host)
    app = build_app(backend, models)
    app.queue(default_concurrency_limit=2)
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False, mcp_server=False,
               footer_links=[], show_error=True, quiet=True, css=CSS)

