"""Noticing Ctrl-C that a library hides: some catch ``KeyboardInterrupt`` and raise their own error (the torch
exporters, onnxruntime's import raising ``ImportError`` from it) or swallow it. ``sigint_seen`` notes every
SIGINT in a block while Ctrl-C still raises ``KeyboardInterrupt`` as usual. A ``KeyboardInterrupt`` that lands
where Python can only ignore it (a weakref callback, ``__del__``) is noted, not printed as a traceback."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def sigint_seen() -> Iterator[Callable[[], bool]]:
    """Note every SIGINT inside the block; yields a function telling whether one came. A handler installed before
    is called first; the block changes nothing where SIGINT cannot be handled here (not the main thread) or is
    ignored."""
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is None or previous == signal.SIG_IGN:
        yield lambda: False
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def quiet(unraisable: "sys.UnraisableHookArgs") -> None:
        if seen and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # Ctrl-C inside a callback Python cannot raise from: noted in ``seen``, the caller stops on it
        previous_hook(unraisable)

    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = quiet
    try:
        yield lambda: bool(seen)
    finally:
        if sys.unraisablehook is quiet:
            sys.unraisablehook = previous_hook
        if signal.getsignal(signal.SIGINT) is handler:  # code in the block may have set its own: leave that alone
            signal.signal(signal.SIGINT, previous)


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """True when ``exc`` was raised from, or while handling, a ``KeyboardInterrupt``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
