"""The base install (train, export) works without the serving and UI stacks.

A fresh Python process whose import system refuses ``tritonclient``, ``pytriton`` and ``gradio`` (a meta-path
blocker installed by ``sitecustomize``, as if ``pip install gandeploy`` had left out the ``serve`` and ``ui``
extras) imports gandeploy, trains two steps, exports, and loads the export through the Python API; serving
calls there end in one line naming ``pip install 'gandeploy[serve]'``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKED = ("tritonclient", "pytriton", "gradio")
SITE = textwrap.dedent(f"""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named '{{name}}' (blocked: the base install)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
""")
REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "OMP_NUM_THREADS": "1",
           "GANDEPLOY_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_base_install_imports_trains_and_exports_without_the_serving_stack(tmp_path: Path) -> None:
    check = run(tmp_path, "-c", "import gandeploy; import tritonclient")
    assert check.returncode != 0 and "blocked: the base install" in check.stderr, check.stderr  # the blocker works

    train = run(tmp_path, "-m", "gandeploy.cli", "train", "mlp", "ring8", "--steps", "2", "--arch", "hidden=8",
                "--batch-size", "16", "--device", "cpu", "--monitor-every", "0")
    assert train.returncode == 0, train.stdout + train.stderr
    run_dir = tmp_path / "home" / "training" / "runs" / "mlp-ring8"  # GANDEPLOY_HOME decides the default folder
    assert (run_dir / "checkpoints" / "latest.pt").is_file(), train.stdout

    export = run(tmp_path, "-m", "gandeploy.cli", "export", str(run_dir))
    assert export.returncode == 0, export.stdout + export.stderr
    export_dir = tmp_path / "home" / "export" / "mlp-ring8"
    assert (export_dir / "model.onnx").is_file() and (export_dir / "manifest.json").is_file()

    api = run(tmp_path, "-c", textwrap.dedent(f"""
        import sys
        import gandeploy
        points = gandeploy.load({str(export_dir)!r}).sample(range(4))
        assert points.shape == (4, 2), points.shape
        try:
            gandeploy.load("mlp-ring8", url="127.0.0.1:1").sample([0])
        except gandeploy.api.generator.GanDeployError as exc:
            print("ERROR:", exc)
        assert not any(m.split(".")[0] in {BLOCKED!r} for m in sys.modules)
    """))
    assert api.returncode == 0, api.stdout + api.stderr
    assert "pip install 'gandeploy[serve]'" in api.stdout, api.stdout

    repo = run(tmp_path, "-m", "gandeploy.cli", "repo", str(export_dir))  # Triton configs: the serve extra
    assert repo.returncode == 1 and "pip install 'gandeploy[serve]'" in repo.stderr, repo.stderr
    assert "Traceback" not in repo.stderr and not (tmp_path / "home" / "model_repository").exists()
