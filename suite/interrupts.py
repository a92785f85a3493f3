"""SIGINT and SIGTERM as a request to stop a run, honoured only where stopping is safe.

LoadGen (6.0.17) cannot be cancelled from Python: its bindings have no ``AbortTest``, and destroying
its SUT or QSL while its test still runs crashes the process. So a signal never unwinds code by
default: the handler records it, and the code asks (``raise_if_stopped``) where stopping is safe.
While LoadGen runs, the handler also calls the harness back (``StopSignals.on_stop``): the harness
stops calling the backend, answers every outstanding sample with an empty response and gives
LoadGen a moment to end by itself (see ``suite.harness``). Where nothing needs protecting (a
backend loading), a ``StopSignals.raising`` block makes the first signal raise
:class:`~suite.errors.RunInterrupted` at once. A second signal never raises: it only cuts the
harness's wait short.

Handlers can only be installed from the main thread (Python's rule); elsewhere
:func:`stop_signals` yields a :class:`StopSignals` that never fires. The previous handlers come back
when the outermost block ends, so one process may run many runs (tests, ``suite tune``). A signal
that was ignored when the block began (``nohup``, a background job) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from suite.errors import RunInterrupted

#: The signals a run stops on.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``SIGINT`` for 2, ``SIGTERM`` for 15."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """The stop request of one process: which signal came first, when, and whether another followed."""

    def __init__(self) -> None:
        #: The first signal received, or None.
        self.signum: int | None = None
        #: True once a second signal came: stop waiting for LoadGen. (A plain flag: a handler that
        #: took a lock could deadlock against the code it interrupted.)
        self.repeated = False
        self._on_stop: Callable[[int], None] | None = None
        self._raising = 0

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal_name(self.signum) if self.signum is not None else ""

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """The signal handler (runs in the main thread, between two bytecodes)."""
        if self.signum is not None:
            self.repeated = True
            return
        self.signum = signum
        if self._on_stop is not None:
            self._on_stop(signum)
        elif self._raising:
            raise RunInterrupted(f"interrupted by {signal_name(signum)}", signum=signum)

    @contextmanager
    def on_stop(self, callback: Callable[[int], None]) -> Iterator[None]:
        """Within this block the first signal calls ``callback(signum)``, and never raises (one that
        came before the block is passed on at entry).

        ``callback`` runs inside the signal handler, on the main thread, between two bytecodes of
        whatever that thread runs: it must only set flags, never block or take a lock.
        """
        previous, self._on_stop = self._on_stop, callback
        if self.signum is not None:
            callback(self.signum)
        try:
            yield
        finally:
            self._on_stop = previous

    @contextmanager
    def raising(self) -> Iterator[None]:
        """Within this block the first signal raises :class:`RunInterrupted` where the main thread
        is (one that came before the block raises on entry): for code that may be abandoned
        anywhere, such as a backend loading."""
        self.raise_if_stopped()
        self._raising += 1
        try:
            yield
        finally:
            self._raising -= 1

    @contextmanager
    def held(self) -> Iterator[None]:
        """Within this block no signal raises, even inside a :meth:`raising` block: for code that
        must not be cut anywhere, such as LoadGen's set-up and tear-down. Inside a raising block,
        a signal the block held back raises when it ends."""
        saved, self._raising = self._raising, 0
        try:
            yield
        finally:
            self._raising = saved
        if saved:
            self.raise_if_stopped()

    def raise_if_stopped(self, what: str = "") -> None:
        """Raise :class:`RunInterrupted` if a signal has come."""
        if self.signum is not None:
            raise RunInterrupted(f"interrupted by {self.name}{what}", signum=self.signum)


_active: StopSignals | None = None


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Catch SIGINT and SIGTERM for the block; nested blocks share the outermost one's request."""
    global _active
    if _active is not None:
        yield _active
        return
    stop = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is signal.SIG_IGN:
            continue
        previous[signum] = handler
        signal.signal(signum, stop.handle)
    _active = stop
    try:
        yield stop
    finally:
        _active = None
        for restored, handler in previous.items():
            signal.signal(restored, handler if handler is not None else signal.SIG_DFL)
