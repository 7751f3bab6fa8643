"""The real ``tritonserver`` (2.51, bundled in the nvidia-pytriton wheel), started and stopped from Python.

``TritonServer`` prepares a backend directory (the wheel's python backend plus the backend stub for the running
Python) in a cache dir, checks that its ports are free, starts the server bound to 127.0.0.1 with the venv's
``bin/`` first on PATH (so backend stubs import this environment's numpy / onnxruntime / PIL), copies its log
to a file and/or stderr, and waits until every model in the repository is READY. A model that fails to load
raises ``ServingError`` naming the model and the reason from Triton's log. Leaving the ``with`` block (or
``stop()``) sends SIGTERM and waits for a clean exit.

The server runs under ``supervise.py``, a small stdlib-only supervisor: it ends the server's whole process tree
(python backend stubs included; SIGTERM, then SIGKILL) when ``stop()`` asks, when the server exits, or when
this *process* dies, whichever thread started the server. Ports given as 0 are chosen here, all at once (never
one port twice), and a start that loses such a port to another program before Triton binds it is retried on
fresh ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import IO

from gandeploy.errors import ServingError, UserInputError
from gandeploy.serving.ports import free_port, free_ports, port_in_use
from gandeploy.serving.triton_install import find_tritonserver, prepare_backend_dir
from gandeploy.utils.logging import get_logger

__all__ = ["TritonServer", "default_log_file", "find_tritonserver", "free_port", "free_ports", "port_in_use",
           "prepare_backend_dir"]

log = get_logger("serving.server")

FAILED_LOAD = re.compile(r"failed to load '([^']+)' version \d+: (.*)")
LOADED = re.compile(r"successfully loaded '([^']+)'")
LOADING = re.compile(r"loading: ([^:\s]+):\d+")
PORT_FLAGS = {"http": "--http-port", "grpc": "--grpc-port", "metrics": "--metrics-port"}
POLL_SECONDS = 2  # how often a serving tritonserver looks for new or rebuilt models in its repository


def default_log_file(folder: Path | None = None) -> Path:
    """One log per start (``serving/logs/tritonserver-20261201-084700.log`` under the workspace), never appending
    to an old one."""
    import datetime as dt

    from gandeploy.utils import paths

    folder = folder if folder is not None else paths.logs_dir()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"tritonserver-{stamp}.log", 1
    while path.exists():
        n += 1
        path = folder / f"tritonserver-{stamp}-{n}.log"
    return path


SUPERVISOR = Path(__file__).with_name("supervise.py")
START_ATTEMPTS = 3  # starts on fresh ports when an auto-chosen port was taken before Triton bound it


class TritonServer:
    """A running ``tritonserver`` over one model repository; use as a context manager."""

    def __init__(self, model_repository: str | os.PathLike[str] = "model_repository", *, host: str = "127.0.0.1",
                 http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
                 log_file: str | os.PathLike[str] | None = None, stream: IO[str] | None = None,
                 ready_timeout: float = 180.0, verbose: bool = False, exit_timeout: int = 10,
                 poll_seconds: int = POLL_SECONDS, extra_args: tuple[str, ...] = ()) -> None:
        self.repository = Path(model_repository)
        self.host = host
        self.ports = {"http": int(http_port), "grpc": int(grpc_port), "metrics": int(metrics_port)}
        self.auto_ports = {kind for kind, port in self.ports.items() if port == 0}  # chosen at start
        self.log_file = Path(log_file) if log_file else None
        self.stream = stream
        self.ready_timeout = ready_timeout
        self.verbose = verbose
        self.exit_timeout = exit_timeout
        self.poll_seconds = int(poll_seconds)  # 0: load once at start (Triton's model control mode "none")
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None
        self._tail: deque[str] = deque(maxlen=400)
        self._failures: dict[str, str] = {}
        self._logged_states: dict[str, str] = {}  # model → LOADING / READY, from Triton's log
        self._reader: threading.Thread | None = None

    # --- addresses ---
    @property
    def client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else ("::1" if self.host == "::" else self.host)

    @property
    def http_url(self) -> str:
        return f"{self.client_host}:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"{self.client_host}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.client_host}:{self.ports['metrics']}/metrics"

    def url(self, protocol: str) -> str:
        return self.grpc_url if protocol == "grpc" else self.http_url

    # --- lifecycle ---
    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self, backend_dir: Path, binary: Path) -> list[str]:
        return [str(binary), f"--model-repository={self.repository.resolve()}", f"--backend-directory={backend_dir}",
                f"--http-address={self.host}", f"--grpc-address={self.host}", f"--metrics-address={self.host}",
                f"--http-port={self.ports['http']}", f"--grpc-port={self.ports['grpc']}",
                f"--metrics-port={self.ports['metrics']}", "--disable-auto-complete-config",
                f"--exit-timeout-secs={self.exit_timeout}", f"--log-verbose={1 if self.verbose else 0}",
                *self.model_control_args(), *self.extra_args]

    def model_control_args(self) -> list[str]:
        """Poll the repository, so models that 'gandeploy repo' adds or rebuilds there load while serving."""
        if self.poll_seconds <= 0:
            return ["--model-control-mode=none"]
        return ["--model-control-mode=poll", f"--repository-poll-secs={self.poll_seconds}"]

    def start(self) -> TritonServer:
        """Start the server and block until every model is READY (or raise ``ServingError``)."""
        if not self.repository.is_dir() or not any(p.is_dir() and (p / "config.pbtxt").is_file()
                                                   for p in self.repository.iterdir()):
            raise UserInputError(f"model repository '{self.repository}' has no models: run 'gandeploy repo "
                                 "EXPORT_DIR' first (or pass --model-repository).")
        for kind, port in self.ports.items():
            if kind in self.auto_ports:
                continue
            if not 0 < port < 65536:
                raise UserInputError(f"{PORT_FLAGS[kind]} must be between 0 (any free port) and 65535, got {port}.")
            if port_in_use(self.host, port):
                raise ServingError(f"port {port} ({PORT_FLAGS[kind]}) is already in use on {self.host}: stop what "
                                   f"is listening there or pass another {PORT_FLAGS[kind]} (0: any free port).")
        fixed = [port for kind, port in self.ports.items() if kind not in self.auto_ports]
        if len(set(fixed)) != len(fixed):
            raise UserInputError(f"--http-port, --grpc-port and --metrics-port must differ, got {self.ports}.")
        for attempt in range(1, START_ATTEMPTS + 1):
            self._choose_ports(fixed)
            try:
                return self._start_once()
            except ServingError as exc:
                if not (self.auto_ports and self._lost_a_port()) or attempt == START_ATTEMPTS:
                    raise
                log.warning("a chosen port was taken before tritonserver bound it (%s); retrying on fresh ports", exc)
        raise AssertionError("unreachable")  # noqa: S101 - the loop returns or raises

    def _choose_ports(self, fixed: list[int]) -> None:
        """Fill the ports given as 0 with free ones, distinct from each other and from the fixed ones."""
        if not self.auto_ports:
            return
        fresh = [p for p in free_ports(len(self.auto_ports) + len(fixed), self.host) if p not in fixed]
        for kind in sorted(self.auto_ports):
            self.ports[kind] = fresh.pop(0)

    def _lost_a_port(self) -> bool:
        return any(re.search(pattern, line) for line in self._tail
                   for pattern in (r"failed to start \w+ service", r"[Aa]ddress already in use", r"already in use"))

    def _start_once(self) -> TritonServer:
        root = find_tritonserver()
        backend_dir = prepare_backend_dir(root)
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        libs = root.parent.parent / "nvidia_pytriton.libs"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(libs), env.get("LD_LIBRARY_PATH", "")) if p)
        cmd = self.command(backend_dir, root / "bin" / "tritonserver")
        log.debug("starting %s", " ".join(cmd))
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._tail.clear()
        self._failures.clear()
        self._logged_states.clear()
        started = time.perf_counter()
        # the supervisor: its stdin is our lifeline (EOF when this process dies, whichever thread started it)
        self.process = subprocess.Popen([sys.executable, str(SUPERVISOR), str(self.exit_timeout + 5), "--", *cmd],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        self._reader = threading.Thread(target=self._pump, name="tritonserver-log", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.perf_counter() - started
        log.info("tritonserver ready in %.1f s (HTTP %s, gRPC %s)", self.ready_seconds, self.http_url, self.grpc_url)
        return self

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None  # noqa: S101 - internal invariant
        sink = open(self.log_file, "a", encoding="utf-8") if self.log_file else None  # noqa: SIM115
        try:
            for raw in self.process.stdout:
                line = raw.decode("utf-8", "replace")
                self._tail.append(line.rstrip("\n"))
                match = FAILED_LOAD.search(line)
                if match:
                    self._failures[match.group(1)] = _clean_reason(match.group(2))
                for pattern, state in ((LOADING, "LOADING"), (LOADED, "READY")):
                    found = pattern.search(line)
                    if found:
                        self._logged_states[found.group(1)] = state
                if sink:
                    sink.write(line)
                    sink.flush()
                if self.stream:
                    self.stream.write(line)
                    self.stream.flush()
        finally:
            if sink:
                sink.close()

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.ready_timeout
        while time.perf_counter() < deadline:
            if self.process is None or self.process.poll() is not None:
                self._raise_exit()
            states = self._model_states()
            all_ready = bool(states) and all(s == "READY" for s in states.values())
            if all_ready and self._get("/v2/health/ready") == 200:
                return
            time.sleep(0.2)
        raise ServingError(f"tritonserver was not ready after {self.ready_timeout:g} s: {self._not_ready()}; "
                           f"see {self.log_hint()} (a slow machine may need a larger --ready-timeout).")

    def _not_ready(self) -> str:
        """Which models are not READY and why, from Triton's repository index (state, reason) and its log."""
        index = self._repository_index()
        if index is None:  # Triton opens HTTP only once its first models are loaded: read its log instead
            names = sorted(p.name for p in self.repository.iterdir() if (p / "config.pbtxt").is_file())
            states = self._logged_states
            parts = [f"{name} ({self._failures.get(name) or ('LOADING' if name in states else 'not loading yet')})"
                     for name in names if states.get(name) != "READY"]
            return "models not READY (from the log; HTTP was not up yet): " + "; ".join(parts)
        parts = []
        for model in sorted(index, key=lambda m: str(m.get("name"))):
            name, state = str(model.get("name")), str(model.get("state") or "not loaded yet")
            if state == "READY":
                continue
            reason = self._failures.get(name) or _clean_reason(str(model.get("reason") or "")) or "no reason given"
            parts.append(f"{name} {state} ({reason})")
        return "models not READY: " + ("; ".join(parts) or "none listed by the repository index")

    def _raise_exit(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)
        code = self.process.returncode if self.process else None
        if self._failures:
            lines = [f"model '{name}' failed to load: {reason}" for name, reason in sorted(self._failures.items())]
            raise ServingError("tritonserver stopped: " + "; ".join(lines) + f" (log: {self.log_hint()}).")
        text = "\n".join(self._tail)
        busy = re.search(r"failed to start (\w+) service: .*", text) or re.search(r"already in use.*", text)
        reason = busy.group(0) if busy else (self._last_error() or f"exit code {code}")
        raise ServingError(f"tritonserver stopped before it was ready: {reason} (log: {self.log_hint()}).")

    def _last_error(self) -> str | None:
        for line in reversed(self._tail):
            if line.startswith("error:") or line.startswith("E"):
                return line.strip()[:400]
        return None

    def log_hint(self) -> str:
        return str(self.log_file) if self.log_file else "the server log above"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def _get(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=2) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (OSError, ValueError):
            return None

    def _repository_index(self) -> list[dict[str, object]] | None:
        """Triton's repository index (name, version, state, reason per model), or None while HTTP is not up."""
        req = urllib.request.Request(f"http://{self.http_url}/v2/repository/index", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310
                index = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        return [m for m in index if isinstance(m, dict)] if isinstance(index, list) else None

    def _model_states(self) -> dict[str, str] | None:
        """Model name → state from the repository index, or None while the HTTP endpoint is not up."""
        index = self._repository_index()
        return None if index is None else {str(m["name"]): str(m.get("state", "")) for m in index}

    def model_states(self) -> dict[str, str]:
        return self._model_states() or {}

    def is_ready(self) -> bool:
        return self.running and self._get("/v2/health/ready") == 200

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM to the supervisor, which ends the server and its backend stubs (SIGKILL after the grace time);
        returns the server's exit code. Idempotent; leaves no process of the server behind."""
        if self.process is None:
            return None
        wait = timeout or self.exit_timeout + 20
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                log.warning("tritonserver did not stop within %s s; killing it and its backend stubs", wait)
                from gandeploy.serving.supervise import descendants

                for pid in [*descendants(self.process.pid), self.process.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.process.returncode

    def __repr__(self) -> str:
        return f"TritonServer({str(self.repository)!r}, http={self.http_url}, grpc={self.grpc_url})"


def _clean_reason(text: str) -> str:
    """First line of a Triton log message (messages are quoted, with escaped newlines)."""
    reason = text.strip().rstrip('"').replace("\\n", "\n").split("\n")[0].strip()
    return reason[:400]

