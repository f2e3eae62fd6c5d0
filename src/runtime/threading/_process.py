"""Process-level helpers: ``terminate_event``, opt-in signal handling, ``sleep``, ``signal_after``.

Importing this module changes no signal disposition and starts no thread. It registers one
interpreter-shutdown hook, :func:`threading._register_atexit` (the hook
``concurrent.futures`` uses), which signals :data:`terminate_event` when the interpreter
begins to shut down, *before* it joins non-daemon threads, so tasks watching the event can
finish and the process can exit. An uncaught ``KeyboardInterrupt`` in the main thread goes
through the same shutdown, so it signals the event too.

Signal handling is opt-in through :func:`handle_signals`, which chains to the dispositions it
replaces.
"""

from __future__ import annotations

import atexit
import signal as _signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, final

from ._errors import ThreadingException
from ._events import Event
from ._interrupts import Interrupt, InterruptSignal, validate_interrupt
from ._timer import call_later

__all__ = ("handle_signals", "signal_after", "sleep", "terminate_event")

#: The cooperative "the application is stopping" flag (purpose ``"TERMINATE"``).
terminate_event: Final = Event(purpose="TERMINATE")


def _register_shutdown_hook() -> None:
    register: Callable[[Callable[[], None]], None] | None = getattr(
        threading, "_register_atexit", None
    )
    try:
        if register is not None:
            register(terminate_event.signal)
        else:  # an interpreter without the hook: atexit runs after the threads are joined
            atexit.register(terminate_event.signal)
    except RuntimeError:
        # Imported while the interpreter is already shutting down: too late to register,
        # and the shutdown has begun, so say so.
        terminate_event.signal()


_register_shutdown_hook()


# -- signal handling ------------------------------------------------------------------------


def _signals_named(*names: str) -> frozenset[int]:
    return frozenset(int(getattr(_signal, name)) for name in names if hasattr(_signal, name))


# Signals whose default action does not end the process (it ignores, stops or continues it).
# Every other signal left at SIG_DFL would terminate it, which the handler turns into a
# graceful SystemExit(128 + signum).
_NON_TERMINATING: Final = _signals_named(
    "SIGCHLD", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGWINCH"
)

_Disposition = Callable[[int, FrameType | None], Any] | int | _signal.Handlers | None


@final
class _ChainingHandler:
    """Signal handler installed by :func:`handle_signals`.

    It signals :data:`terminate_event`, then does what the replaced disposition would have
    done.
    """

    __slots__ = ("previous", "signum")

    def __init__(self, signum: int, previous: _Disposition) -> None:
        self.signum = signum
        #: The disposition this handler replaced and chains to.
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        _signal_terminate_from_handler()
        previous = self.previous
        if callable(previous):
            # Python's own SIGINT handler (default_int_handler) raises KeyboardInterrupt.
            previous(signum, frame)
        elif previous == _signal.SIG_DFL:
            if signum not in _NON_TERMINATING:
                # The default would kill the process; exit gracefully instead, with the
                # status a shell reports for a death by this signal.
                raise SystemExit(128 + signum)
            # Ignore, stop or continue: reproduce it with the real default disposition.
            _signal.signal(signum, _signal.SIG_DFL)
            try:
                _signal.raise_signal(signum)
            finally:
                _signal.signal(signum, self)
        # SIG_IGN is never replaced, and a handler not installed from Python (None) cannot be
        # chained to: nothing more to do.

    def __repr__(self) -> str:
        try:
            name = _signal.Signals(self.signum).name
        except ValueError:
            name = str(self.signum)
        return f"<runtime.threading signal handler for {name}>"


def _signal_terminate_from_handler() -> None:
    """Signal :data:`terminate_event` from a signal handler, without risking a deadlock.

    A Python signal handler runs on the main thread between two bytecodes, possibly while
    that thread holds the event's (non-re-entrant) lock, inside an operation on the event.
    Signaling there would deadlock. When the lock is free, no other thread can take it back
    from under the handler in a way that blocks it for long, and the event is signaled here
    and now; otherwise the shared timer thread signals it as soon as the lock is released.
    """
    lock = terminate_event._cond
    if lock.acquire(False):
        lock.release()
        terminate_event.signal()
    else:
        call_later(0, terminate_event.signal)


def handle_signals(*signals: int) -> None:
    """Opt in to signal handling: signals ``terminate_event``, then chain to the previous one.

    Installs, for each signal, a handler that signals :data:`terminate_event` (at once; or,
    if the signal interrupted the main thread in the middle of an operation on that event,
    from the timer thread moments later) and then does what the replaced disposition did:
    a Python handler is called (so the default SIGINT handler still raises
    ``KeyboardInterrupt``); a disposition of ``SIG_DFL`` that would kill the process raises
    ``SystemExit(128 + signum)`` in the main thread instead, so a SIGTERM ends the process
    gracefully with status 143; a default that ignores or stops the process is reproduced. A
    signal whose disposition is ``SIG_IGN`` is left alone. Calling it again is harmless: a
    signal already handled keeps its handler and its chain.

    Args:
        signals: signal numbers; by default ``SIGINT`` and ``SIGTERM``.

    Raises:
        ThreadingException: not called from the main thread.
        ValueError: a signal number is invalid.
        OSError: a signal cannot be caught (``SIGKILL``, ``SIGSTOP``).
        TypeError: a signal is not an int.
    """
    if threading.current_thread() is not threading.main_thread():
        raise ThreadingException("handle_signals() must be called from the main thread")
    if not signals:
        signals = (_signal.SIGINT, _signal.SIGTERM)
    for signum in signals:
        if not isinstance(signum, int) or isinstance(signum, bool):
            raise TypeError(f"'signals' must be signal numbers, not {type(signum).__name__}")
    # Every number is checked (getsignal raises ValueError) before any handler is installed.
    previous = [(int(signum), _signal.getsignal(signum)) for signum in signals]
    for signum, disposition in previous:
        if isinstance(disposition, _ChainingHandler) or disposition == _signal.SIG_IGN:
            continue
        _signal.signal(signum, _ChainingHandler(signum, disposition))


# -- sleep and signal_after -----------------------------------------------------------------


def _check_time(time: float) -> None:
    try:
        valid = time >= 0
    except TypeError:
        raise TypeError(f"'time' must be a number, not {type(time).__name__}") from None
    if not valid:
        raise ValueError("'time' must be a non-negative number")


def sleep(time: float, /, interrupt: Interrupt | None = None) -> None:
    """Sleep ``time`` seconds, or less once termination is requested or ``interrupt`` fires.

    Use it instead of ``time.sleep`` in tasks: it waits on :data:`terminate_event`, so it
    cooperates with the scheduler and returns early, without raising, once termination has
    been requested (every later call then returns at once) or when ``interrupt`` is or
    becomes signaled. ``time == 0`` returns at once.

    Raises:
        ValueError: ``time`` is negative.
        TypeError: ``time`` is not a number, or ``interrupt`` is not an Interrupt.
    """
    _check_time(time)
    validate_interrupt(interrupt)
    if time == 0:
        return
    terminate_event.wait(time, interrupt)


def signal_after(signal: InterruptSignal, time: float) -> None:
    """Call ``signal.signal()`` ``time`` seconds from now; return at once.

    The delay is kept by the library's one shared timer thread: no scheduler worker and no
    thread per call is used, and a pending call does not keep the interpreter alive at exit.
    ``time == 0`` signals before returning.

    Raises:
        ValueError: ``time`` is negative.
        TypeError: ``signal`` is not an InterruptSignal, or ``time`` is not a number.
    """
    if not isinstance(signal, InterruptSignal):
        raise TypeError(f"'signal' must be an InterruptSignal, not {type(signal).__name__}")
    _check_time(time)
    if time == 0:
        signal.signal()
    elif not signal.interrupt.is_signaled:
        call_later(time, signal.signal)


for _fn in (handle_signals, sleep, signal_after):
    _fn.__module__ = "runtime.threading"
del _fn
