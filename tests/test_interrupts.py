"""``sigint_seen``: a Ctrl-C that lands inside a callback Python cannot raise from (here a weakref callback, as in
importlib's module locks) is noted and not printed; any other unraisable error still reaches the hook."""

from __future__ import annotations

import signal
import sys
import weakref

from gandeploy.utils.interrupts import sigint_seen


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
