"""``sigint_seen``: a Ctrl-C that lands inside a callback Python cannot raise from (here a weakref callback, as in
importlib's module locks) is noted and not printed; any other unraisable error still reaches the hook.
``sigint_deferred`` / ``shield_native_imports``: a Ctrl-C during a shielded package's first import lands after it."""

from __future__ import annotations

import signal
import sys
import weakref

from gandeploy.utils import interrupts
from gandeploy.utils.interrupts import sigint_deferred, sigint_seen


class _Thing:
    pass


def test_ctrl_c_inside_a_weakref_callback_is_noted_not_printed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reported: list[BaseException | None] = []
    def record(unraisable: "sys.UnraisableHookArgs") -> None:
        reported.append(unraisable.exc_value)

    monkeypatch.setattr(sys, "unraisablehook", record)

    def ctrl_c(_: object) -> None:  # the installed SIGINT handler, run where a signal handler would run
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]

    def other_error(_: object) -> None:
        raise ValueError("not a Ctrl-C")

    with sigint_seen() as seen:
        thing = _Thing()
        ref = weakref.ref(thing, ctrl_c)
        del thing  # the callback raises KeyboardInterrupt, which Python can only report as unraisable
        assert seen() and ref() is None
        assert reported == []
        other = _Thing()
        ref2 = weakref.ref(other, other_error)
        del other
        assert ref2() is None
    assert [type(e) for e in reported] == [ValueError]
    assert sys.unraisablehook is record and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_inside_the_block_is_delivered_when_it_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    reached_the_end = False
    try:
        with sigint_deferred():
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, as a user's Ctrl-C delivers it
            reached_the_end = True
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the held Ctrl-C was never delivered")
    assert reached_the_end and signal.getsignal(signal.SIGINT) is before


PACKAGE = """import signal
signal.raise_signal(signal.SIGINT)  # a Ctrl-C in the middle of the package's start-up
import pathlib
pathlib.Path(__file__).with_name("initialised").write_text("yes")
"""


def _shielded_package(tmp_path, monkeypatch, name: str, code: str):  # type: ignore[no-untyped-def]
    """A package ``name`` with ``code`` on sys.path, listed as shielded; sys.meta_path is restored after the test."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the shield is undone with it
    monkeypatch.setattr(interrupts, "SHIELDED_IMPORTS", frozenset({name}))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return pkg


def _import_interrupted_package(tmp_path, monkeypatch, shielded: bool) -> object:  # type: ignore[no-untyped-def]
    pkg = _shielded_package(tmp_path, monkeypatch, "slow_native_pkg", PACKAGE)
    if shielded:
        interrupts.shield_native_imports()
    try:
        import slow_native_pkg  # noqa: F401
    except KeyboardInterrupt:
        return (pkg / "initialised").exists()
    raise AssertionError("the Ctrl-C was lost")


def test_a_shielded_import_finishes_before_the_ctrl_c_lands(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert _import_interrupted_package(tmp_path, monkeypatch, shielded=True) is True


def test_without_the_shield_the_ctrl_c_lands_inside_the_import(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert _import_interrupted_package(tmp_path, monkeypatch, shielded=False) is False


def test_a_shielded_package_keeps_its_own_loader(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _shielded_package(tmp_path, monkeypatch, "plain_pkg", "VALUE = 3\n")
    interrupts.shield_native_imports()
    interrupts.shield_native_imports()  # once only
    assert sum(isinstance(f, interrupts._ShieldImports) for f in sys.meta_path) == 1
    import plain_pkg

    assert plain_pkg.VALUE == 3 and type(plain_pkg.__loader__).__name__ == "SourceFileLoader"
    assert plain_pkg.__spec__.loader is plain_pkg.__loader__
