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
