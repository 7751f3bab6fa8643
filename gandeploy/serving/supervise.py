"""A tiny supervisor between gandeploy and ``tritonserver`` (run as a script: standard library only).

``python supervise.py GRACE -- tritonserver ARGS...`` starts the server in its own process group and becomes
the *subreaper* of everything below it, so python backend stubs orphaned by a dying server are re-parented here
instead of to PID 1. It ends the whole group (SIGTERM, then SIGKILL after GRACE seconds), reaps every
descendant and exits with the server's code when:

* it gets SIGTERM or SIGINT (``TritonServer.stop``),
* its stdin reaches EOF: the gandeploy *process* that holds the other end has gone, whichever thread started it
  (``PR_SET_PDEATHSIG`` would fire when that thread exits, and ``preexec_fn`` is unsafe with threads),
* the server exits on its own (its stubs must not outlive it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int | None = None) -> list[int]:
    """Every process whose parent chain reaches ``root`` (default: this one: the server, its stubs, orphans
    re-parented here)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        parents[int(entry)] = int(fields[1])  # fields: state, ppid, ...
    found, frontier = [], [os.getpid() if root is None else root]
    while frontier:
        pid = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == pid]
        found.extend(kids)
        frontier.extend(kids)
    return found


def _signal_all(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in descendants():  # stubs that left the group, orphans re-parented here
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_everything(server: subprocess.Popen[bytes], grace: float, leftovers_grace: float = 2.0) -> int:
    """SIGTERM to the server (it unloads its models and ends its stubs itself) and up to ``grace`` s for it;
    then SIGTERM to whatever is left below (a hung server, stubs it left behind), SIGKILL after
    ``leftovers_grace`` s; every descendant reaped. Returns the server's exit code."""
    if server.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=grace)
    _signal_all(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + leftovers_grace
    while (server.poll() is None or descendants()) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.05)
    if server.poll() is None or descendants():
        _signal_all(server.pid, signal.SIGKILL)
    code = server.wait()
    while descendants():
        _reap()
        time.sleep(0.02)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


def main(argv: list[str]) -> int:
    grace, cmd = float(argv[0]), argv[2:]  # GRACE -- CMD...
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)  # stdout/err: inherited

    def lifeline() -> None:  # EOF: the gandeploy process is gone (raw reads: no buffered-stdin lock)
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        stop.set()

    threading.Thread(target=lifeline, daemon=True).start()
    while not stop.wait(0.2):
        if server.poll() is not None:
            break
    return end_everything(server, grace)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # the lifeline thread may still sit in read(): skip interpreter shutdown
