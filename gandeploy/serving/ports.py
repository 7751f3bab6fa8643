"""Local TCP ports for tritonserver: whether one is taken, and free ones chosen together (never one twice)."""

from __future__ import annotations

import contextlib
import socket


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free right now: all are bound at once before any is released, so one
    call never returns a port twice. Another program may still take one before Triton binds it: ``start``
    retries on fresh ports when that happens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(family, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = "127.0.0.1") -> int:
    """One port that is free right now (several for one server: ``free_ports``)."""
    return free_ports(1, host)[0]
