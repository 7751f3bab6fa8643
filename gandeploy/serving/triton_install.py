"""The bundled ``tritonserver`` (nvidia-pytriton's wheel) and the backend directory it runs with: the wheel's
python backend plus the backend stub for the running Python, prepared once in gandeploy's cache folder
(``gandeploy.utils.io.cache_dir``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gandeploy.errors import BackendUnavailable
from gandeploy.utils.io import cache_dir


def find_tritonserver() -> Path:
    """``pytriton/tritonserver`` inside the installed nvidia-pytriton wheel."""
    try:
        spec = importlib.util.find_spec("pytriton")
    except ImportError:  # an import hook that refuses the package: not installed either
        spec = None
    root = Path(spec.origin).parent / "tritonserver" if spec and spec.origin else None
    if root is None or not (root / "bin" / "tritonserver").is_file():
        raise BackendUnavailable("tritonserver was not found: pip install 'gandeploy[serve]' (the nvidia-pytriton "
                                 "wheel bundles Triton 2.51 for Linux x86-64).")
    return root


def prepare_backend_dir(root: Path | None = None, cache: Path | None = None) -> Path:
    """A ``--backend-directory`` holding ``python/`` (backend library, utils, stub for this Python), cached."""
    root = root or find_tritonserver()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    backend = root / "backends" / "python"
    if not stub.is_file():
        stubs = root / "python_backend_stubs"
        have = sorted(p.name for p in stubs.iterdir()) if stubs.is_dir() else []
        raise BackendUnavailable(f"the bundled Triton has no python backend stub for Python {version} "
                                 f"(it has: {', '.join(have) or 'none'}); use one of those Python versions.")
    sources = {"libtriton_python.so": backend / "libtriton_python.so",
               "triton_python_backend_utils.py": backend / "triton_python_backend_utils.py",
               "triton_python_backend_stub": stub}
    key = hashlib.sha256("|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                  for p in sources.values()).encode()).hexdigest()[:12]
    target = (cache or cache_dir()) / "triton" / f"backends-py{version}-{key}"
    if (target / "python" / ".complete").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: fall back to the temp dir
        target = Path(tempfile.gettempdir()) / f"gandeploy-{os.getuid()}" / target.name
        if (target / "python" / ".complete").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backends-", dir=target.parent))
    try:
        (staging / "python").mkdir()
        for name, src in sources.items():
            shutil.copy2(src, staging / "python" / name)
        (staging / "python" / "triton_python_backend_stub").chmod(0o755)
        (staging / "python" / ".complete").write_text(key)
        with contextlib.suppress(OSError):  # another process may have won the race: keep theirs
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
