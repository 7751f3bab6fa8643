"""Suite-wide set-up: few threads (CI has 2 cores), GPU/TensorRT markers that skip with a reason, strict mode.

Strict mode (``GANDEPLOY_STRICT=1``, set by ``.ci/run``): a skip whose cause is not the hardware (no CUDA GPU,
no TensorRT, too few GPUs for NCCL) fails the run, so a missing tool (perf_analyzer's libraries, chromium,
tritonserver) can never turn a test green by skipping it.
"""

from __future__ import annotations

import importlib.util
import os

# One intra-op thread for torch here and in every subprocess the tests start (CLI runs, DDP workers). The
# suite shares 2 cores with tritonserver and those subprocesses; OpenMP's spin-waiting under that
# oversubscription made a tiny MLP's training step ~30x slower with 2 threads than with 1 (measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

STRICT_ENV = "GANDEPLOY_STRICT"
# Skip reasons that strict mode accepts: they name the hardware (or its absence) as the cause. Tests skipped
# by the ``gpu`` / ``tensorrt`` markers are accepted whatever their reason.
HARDWARE_REASONS = ("no CUDA GPU visible", "TensorRT is not installed", "TensorRT and a GPU are present here",
                    "NCCL DDP needs 2 CUDA devices")


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C must reach the tests that send it. A shell starts a background job (``make test &``, ``nohup ... &``)
    with SIGINT ignored, and every child inherits that, so the Ctrl-C tests of export and training would see no
    interrupt at all: give this process, and through it every child, the normal SIGINT disposition."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _cuda_reason() -> str | None:
    return None if torch.cuda.is_available() else "no CUDA GPU visible on this machine"


def _tensorrt_reason() -> str | None:
    """TensorRT importable and a GPU the CUDA driver reports (not torch.cuda: the Makefile's torch is CPU-only)."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip extra 'tensorrt'; needs an NVIDIA GPU)"
    from gandeploy.runtimes.tensorrt_rt import unavailable_reason

    return unavailable_reason()


def strict() -> bool:
    """True when ``GANDEPLOY_STRICT`` is set to anything but empty / 0 / false."""
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def hardware_skip(reason: str, keywords: object = ()) -> bool:
    """Whether a skip is one strict mode accepts: a ``gpu``/``tensorrt`` marked test, or a hardware reason."""
    if any(marker in keywords for marker in ("gpu", "tensorrt")):  # type: ignore[operator]
        return True
    return any(reason.startswith(prefix) for prefix in HARDWARE_REASONS)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ").strip()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "stress" not in (config.getoption("markexpr") or ""):  # minutes-long repeats: only when asked for
        stress = [item for item in items if "stress" in item.keywords]
        if stress:
            config.hook.pytest_deselected(items=stress)
            items[:] = [item for item in items if "stress" not in item.keywords]
    reasons = {"gpu": _cuda_reason(), "tensorrt": _tensorrt_reason()}
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


_OFFENDING: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In strict mode a skip that is not the hardware's becomes a failure that names the skip."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (strict() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = _skip_reason(report)
    if hardware_skip(reason, item.keywords):
        return
    _OFFENDING.append(f"{item.nodeid}: {reason}")
    report.outcome = "failed"
    report.longrepr = (f"{STRICT_ENV}=1: this test skipped for a cause other than a missing GPU/TensorRT, which "
                       f"strict mode does not allow. Install what it needs or make it run.\n  reason: {reason}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A whole module skipped at collection (``importorskip`` at the top) is offending too in strict mode."""
    if strict() and report.skipped:
        reason = _skip_reason(report)
        if not hardware_skip(reason):
            _OFFENDING.append(f"{report.nodeid} (collection): {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OFFENDING and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if _OFFENDING:
        terminalreporter.section(f"{STRICT_ENV}=1: skips that are not a missing GPU/TensorRT", red=True)
        for line in _OFFENDING:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def perf_analyzer() -> object:
    """NVIDIA's perf_analyzer, runnable here (``make test`` installs libb64-0d and libcudart.so.12); else the
    test skips with what is missing, which strict mode turns into a failure."""
    from gandeploy.errors import BackendUnavailable
    from gandeploy.evaluation.bench.perf_analyzer import find_perf_analyzer

    try:
        return find_perf_analyzer()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
