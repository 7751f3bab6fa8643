"""Noticing Ctrl-C that a library hides: some catch ``KeyboardInterrupt`` and raise their own error (the torch
exporters, onnxruntime's import raising ``ImportError`` from it) or swallow it. ``sigint_seen`` notes every
SIGINT in a block while Ctrl-C still raises ``KeyboardInterrupt`` as usual. A ``KeyboardInterrupt`` that lands
where Python can only ignore it (a weakref callback, ``__del__``) is noted, not printed as a traceback.
``shield_native_imports`` holds a Ctrl-C that arrives during the first import of torch, numpy or onnxruntime until
that import is done: one landing inside their native start-up can break the process."""

from __future__ import annotations

import contextlib
import importlib.abc
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import Any


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


# Packages whose first import runs native start-up code that a Ctrl-C must not land in. Seen on the CLI (a real
# SIGINT to `gandeploy export` while it imports torch, 2026-12-05): the process aborted (SIGABRT, in torch's start-up),
# or it printed "Aborted (interrupted)." and then ended killed by SIGINT instead of exiting 130 (strace: it sent
# itself SIGINT at exit). The second is CPython's doing: a KeyboardInterrupt that leaves Python code a C extension
# runs through PyRun_String sets its "unhandled KeyboardInterrupt" flag for good, even if the exception is caught
# later (the one such extension found here is numpy.random's Cython `_common`, which torch imports).
SHIELDED_IMPORTS = frozenset({"numpy", "torch", "onnx", "onnxruntime", "tensorrt"})


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a SIGINT that arrives inside the block and deliver it once the block is done, to the handler in force
    then. Changes nothing outside the main thread or where SIGINT's handler is not Python's to restore."""
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is None or previous == signal.SIG_IGN:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


class _HeldLoader:
    """A shielded package's loader: its module code runs under ``sigint_deferred``; anything else is the real one's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self._loader  # the module keeps its own loader
        with sigint_deferred():
            self._loader.exec_module(module)


class _ShieldImports(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands the next finder's spec of a package in ``SHIELDED_IMPORTS`` a held loader."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in SHIELDED_IMPORTS:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _HeldLoader(spec.loader)
                return spec
        return None


def shield_native_imports() -> None:
    """From now on, the first import of each package in ``SHIELDED_IMPORTS`` holds a Ctrl-C until it is done (a
    second or so for torch); the program installs this once, before any command runs."""
    if not any(isinstance(finder, _ShieldImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ShieldImports())
