"""The tritonserver wrapper and ``gandeploy serve``: clean start/stop, taken ports, models that fail to load."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import ServingError, UserInputError
from gandeploy.serving.client import TritonClient
from gandeploy.serving.repository import build_repository
from gandeploy.serving.server import TritonServer, prepare_backend_dir

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small_repository(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest repository (the 2D-point MLP: three models), for the start/stop tests."""
    return build_repository([exports["mlp-tiny"]], tmp_path_factory.mktemp("small") / "model_repository").root


def test_binds_loopback_by_default(small_repository: Path, tmp_path: Path) -> None:
    server = TritonServer(small_repository)
    cmd = server.command(prepare_backend_dir(), Path("tritonserver"))
    assert {"--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"} <= set(cmd)
    assert (prepare_backend_dir() / "python" / "triton_python_backend_stub").is_file()


def test_port_in_use_is_named(small_repository: Path, ports: list[int]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports[1]))
        busy.listen()
        with pytest.raises(ServingError, match=f"port {ports[1]} \\(--grpc-port\\) is already in use"):
            TritonServer(small_repository, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2]).start()
        result = CliRunner().invoke(main, ["serve", "--model-repository", str(small_repository),
                                           "--http-port", str(ports[1])])
        assert result.exit_code == 1 and "--http-port" in result.output and str(ports[1]) in result.output


def test_empty_repository_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="gandeploy repo"):
        TritonServer(tmp_path).start()


def test_model_that_fails_to_load_is_named(small_repository: Path, tmp_path: Path, ports: list[int]) -> None:
    broken = Path(shutil.copytree(small_repository, tmp_path / "broken"))
    (broken / "mlp-tiny_generator" / "1" / "model.onnx").write_bytes(b"this is not an onnx file")
    log = tmp_path / "triton.log"
    start = time.perf_counter()
    with pytest.raises(ServingError) as info:
        TritonServer(broken, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], log_file=log,
                     ready_timeout=120).start()
    message = str(info.value)
    assert "model 'mlp-tiny_generator' failed to load" in message
    assert "onnx" in message.lower() or "protobuf" in message.lower()
    assert str(log) in message and log.is_file()
    assert time.perf_counter() - start < 60


def test_serve_command_runs_until_sigterm(small_repository: Path, tmp_path: Path, ports: list[int]) -> None:
    log = tmp_path / "logs" / "triton.log"
    log.parent.mkdir()  # a file output's folder must exist outside the workspace (cli/options.py OutPath)
    cmd = [sys.executable, "-c", "from gandeploy.cli import main; main()", "serve", "--model-repository",
           str(small_repository), "--http-port", str(ports[0]), "--grpc-port", str(ports[1]), "--metrics-port",
           str(ports[2]), "--log-file", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line or len(lines) > 200:
                break
        output = "".join(lines)
        assert "Triton is ready" in output, output
        assert f"http://127.0.0.1:{ports[0]}" in output
        assert f"Next: gandeploy sample mlp-tiny --n 64 --seed 0 --url 127.0.0.1:{ports[1]}" in output
        with TritonClient(f"127.0.0.1:{ports[1]}", "grpc") as client:
            out = client.infer("mlp-tiny", {"seed": np.array([[0], [1]], np.int64)}, ["sample"])["sample"]
        assert out.shape == (2, 2)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "tritonserver stopped (exit code 0)" in rest
    assert "successfully loaded 'mlp-tiny'" in log.read_text()
    with TritonClient(f"127.0.0.1:{ports[0]}", "http") as client:
        assert not client.server_ready()


# --- process handling: threads, ports, nothing left behind ------------------------------------------------------


def server_processes(repository: Path) -> list[str]:
    """Command lines of live processes that serve ``repository`` (tritonserver, python backend stubs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(repository.resolve()) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def wait_gone(repository: Path, seconds: float = 30) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := server_processes(repository)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_server_started_from_a_thread_outlives_the_thread(small_repository: Path, tmp_path: Path,
                                                          ports: list[int]) -> None:
    """The server belongs to the process, not to the thread that started it (PR_SET_PDEATHSIG did)."""
    import threading

    box: list[TritonServer] = []
    thread = threading.Thread(target=lambda: box.append(TritonServer(
        small_repository, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], log_file=tmp_path / "t.log",
        ready_timeout=240).start()))
    thread.start()
    thread.join()
    server = box[0]
    try:
        for _ in range(20):  # a parent-death SIGTERM took it down within ~5 s (Triton's graceful shutdown)
            time.sleep(0.5)
            assert server.running and server.is_ready(), server.log_tail()
        with TritonClient(server.grpc_url, "grpc") as client:
            assert client.server_ready()
    finally:
        assert server.stop() == 0
    assert wait_gone(small_repository, 5) == []


def test_a_port_taken_before_triton_binds_it_is_retried(small_repository: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Ports given as 0: the first choice includes one another program holds; the start retries on fresh ones."""
    from gandeploy.serving import server as server_mod

    real = server_mod.free_ports
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        calls: list[list[int]] = []

        def first_one_taken(count: int, host: str = "127.0.0.1") -> list[int]:
            ports = real(count, host)
            if not calls:
                ports[0] = taken  # the first port chosen: gRPC (kinds are filled in sorted order)
            calls.append(ports)
            return ports

        monkeypatch.setattr(server_mod, "free_ports", first_one_taken)
        with TritonServer(small_repository, http_port=0, grpc_port=0, metrics_port=0, log_file=tmp_path / "t.log",
                          ready_timeout=240) as server:
            assert len(calls) == 2 and taken not in server.ports.values()
            assert server.is_ready()
    assert wait_gone(small_repository, 5) == []


def test_ready_timeout_names_the_models_and_leaves_no_process(small_repository: Path, tmp_path: Path,
                                                              ports: list[int]) -> None:
    """serve --ready-timeout 1: the error names every model not READY with its state, and no tritonserver or
    python backend stub survives."""
    repo = Path(shutil.copytree(small_repository, tmp_path / "slow_repository"))
    slow = repo / "mlp-tiny" / "1" / "model.py"  # its stub starts, then takes a minute to import the model
    code = slow.read_text()
    future = "from __future__ import annotations\n"
    slow.write_text(code.replace(future, future + "import time\ntime.sleep(60)\n", 1) if future in code
                    else "import time\ntime.sleep(60)\n" + code)
    with pytest.raises(ServingError) as info:
        TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], log_file=tmp_path / "t.log",
                     ready_timeout=4).start()
    message = str(info.value)
    assert "unknown" not in message and "not ready after 4 s" in message
    assert "mlp-tiny (LOADING)" in message or "mlp-tiny LOADING" in message, message  # named, with its state
    assert "mlp-tiny_generator" not in message, message  # that one was READY
    assert wait_gone(repo, 1) == []  # stop() returned only after the whole tree (stubs included) was gone


def test_killed_parent_process_takes_the_server_along(small_repository: Path, tmp_path: Path,
                                                      ports: list[int]) -> None:
    """SIGKILL of the process that started the server (from a worker thread): the server and stubs end too."""
    repo = Path(shutil.copytree(small_repository, tmp_path / "orphan_repository"))
    script = ("import sys, threading, time\n"
              "from gandeploy.serving.server import TritonServer\n"
              "p = [int(x) for x in sys.argv[2:]]\n"
              "s = TritonServer(sys.argv[1], http_port=p[0], grpc_port=p[1], metrics_port=p[2], ready_timeout=240)\n"
              "t = threading.Thread(target=s.start); t.start(); t.join()\n"
              "print('READY', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo), *map(str, ports)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        assert server_processes(repo)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_gone(repo, 40) == []
    finally:
        if proc.poll() is None:
            proc.kill()
