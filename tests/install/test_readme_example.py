"""The README's Python API example runs as written: extracted from README.md and executed in a fresh process in
an empty folder (its workspace), tiny settings included, on the real tritonserver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PORTS = (8000, 8001, 8002)  # gandeploy.Server()'s defaults, which the example uses


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section shows one python block"
    return blocks[0]


@pytest.mark.e2e
def test_readme_python_example_runs(tmp_path: Path) -> None:
    from gandeploy.serving.server import port_in_use

    busy = [p for p in PORTS if port_in_use("127.0.0.1", p)]
    if busy:
        pytest.skip(f"the example serves on the default ports and {busy} are in use here")
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    env = {k: v for k, v in os.environ.items() if k != "GANDEPLOY_HOME"}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "(8, 32, 32, 1)" in result.stdout, result.stdout
    assert (tmp_path / "training" / "runs" / "cgan-digits" / "config.json").is_file()
    assert (tmp_path / "export" / "cgan-digits" / "manifest.json").is_file()
    assert (tmp_path / "model_repository" / "cgan-digits").is_dir()
    assert list((tmp_path / "serving" / "logs").glob("tritonserver-*.log"))
