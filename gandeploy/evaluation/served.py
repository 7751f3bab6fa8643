"""A throw-away Triton server over exports, for parity and benchmarks run without ``--url``.

The repository is built in a temp dir with ``gandeploy.serving.repository.build_repository`` (local flavour,
python backend + ONNX Runtime) and served on free ports; both are gone when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gandeploy.utils.logging import get_logger

if TYPE_CHECKING:
    from gandeploy.serving.server import TritonServer

log = get_logger("served")


@contextlib.contextmanager
def local_server(export_dirs: Sequence[str | os.PathLike[str]], *, threads: int = 0, instances: int = 1,
                 max_queue_delay_us: int | None = None,
                 keep_log: str | os.PathLike[str] | None = None) -> Iterator[TritonServer]:
    """Yield a READY ``TritonServer`` serving ``export_dirs``; raises ``BackendUnavailable`` without tritonserver
    and ``ExportError`` for an export altered after export.

    ``threads``: ONNX Runtime intra-op threads per generator instance (0: ONNX Runtime's default);
    ``instances`` and ``max_queue_delay_us`` (None: the repository default) as ``gandeploy repo`` takes them.
    """
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.server import TritonServer, find_tritonserver

    with tempfile.TemporaryDirectory(prefix="gandeploy-served-") as tmp:
        repo = Path(tmp) / "model_repository"
        # first: a tampered export is an error even where no server can run
        delay = {} if max_queue_delay_us is None else {"max_queue_delay_us": int(max_queue_delay_us)}
        build_repository([Path(d) for d in export_dirs], repo, flavour="local", threads=threads, instances=instances,
                         **delay)
        find_tritonserver()  # BackendUnavailable with the reason
        log_file = Path(keep_log) if keep_log else Path(tmp) / "tritonserver.log"
        server = TritonServer(repo, http_port=0, grpc_port=0, metrics_port=0, log_file=log_file)  # free ports
        log.info("starting a temporary tritonserver for %s", ", ".join(str(d) for d in export_dirs))
        with server:
            yield server
