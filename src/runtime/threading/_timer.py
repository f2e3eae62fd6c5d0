"""One shared timer for delayed callbacks: ``signal_after``, ``Task.run_after`` and the like.

A single daemon thread, ``runtime-threading-timer``, serves every delayed callback of the
process. It is started lazily by the first :func:`call_later` (never at import) and waits on
a condition for the earliest deadline of a heap; adding an earlier deadline notifies it. So a
pending delay occupies no scheduler worker and no thread of its own, and, the thread being a
daemon, never keeps the interpreter alive at exit.

Callbacks run on the timer thread, one after another, outside the timer's lock. They must be
short and must not block: they signal an interrupt, queue a task, set an event. An exception
from a callback is reported through :func:`threading.excepthook` and never stops the timer.

After ``os.fork()`` the child gets a fresh, empty timer: callbacks pending in the parent do
not fire in the child, and the child's first :func:`call_later` starts its own thread.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import Final, final

from ._blocking import cond_wait

__all__ = ("TimerHandle", "call_later")

THREAD_NAME: Final = "runtime-threading-timer"

# States of a TimerHandle; transitions happen under the timer's lock, PENDING -> one of the
# two others, once.
_PENDING: Final = 0
_CANCELLED: Final = 1
_FIRED: Final = 2

# Cancelled entries stay in the heap until they come due; once they outnumber the live ones
# (and there are at least this many), the heap is rebuilt without them.
_COMPACT_MIN: Final = 64


@final
class TimerHandle:
    """A callback scheduled by :func:`call_later`; :meth:`cancel` withdraws it."""

    __slots__ = ("_callback", "_state", "_timer", "deadline")

    def __init__(self, timer: _Timer, deadline: float, callback: Callable[[], None]) -> None:
        self._timer = timer
        #: The ``time.monotonic()`` value at which the callback becomes due.
        self.deadline = deadline
        # Dropped once fired or cancelled, so a handle kept around holds nothing alive.
        self._callback: Callable[[], None] | None = callback
        self._state = _PENDING

    @property
    def pending(self) -> bool:
        """Whether the callback has neither started nor been cancelled."""
        return self._state == _PENDING

    def cancel(self) -> bool:
        """Withdraw the callback if it has not started yet.

        Returns:
            ``True`` if this call withdrew it (it will never run); ``False`` if it already
            started, ran or was cancelled before.
        """
        return self._timer._cancel(self)

    def __repr__(self) -> str:
        state = ("pending", "cancelled", "fired")[self._state]
        return f"<TimerHandle {state} at {self.deadline:.3f}>"


class _Timer:
    """The heap of deadlines and the thread that serves it."""

    __slots__ = ("_cancelled", "_cond", "_heap", "_seq", "_thread")

    def __init__(self) -> None:
        # Guards _heap, _cancelled, _thread and every handle's _state/_callback.
        self._cond = threading.Condition(threading.Lock())
        # (deadline, sequence number, handle); the sequence keeps equal deadlines in order and
        # spares comparing handles.
        self._heap: list[tuple[float, int, TimerHandle]] = []
        # Cancelled handles still in _heap.
        self._cancelled = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        deadline = _monotonic() + delay
        handle = TimerHandle(self, deadline, callback)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), handle))
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                try:
                    thread.start()  # it waits for _cond before looking at the heap
                except BaseException:  # e.g. no new threads at interpreter shutdown
                    handle._state = _CANCELLED
                    handle._callback = None
                    self._cancelled += 1
                    raise
                self._thread = thread
            elif self._heap[0][2] is handle:
                # A new earliest deadline: the thread is sleeping until a later one.
                self._cond.notify()
        return handle

    def _cancel(self, handle: TimerHandle) -> bool:
        with self._cond:
            if handle._state != _PENDING:
                return False
            handle._state = _CANCELLED
            handle._callback = None
            self._cancelled += 1
            if self._cancelled >= _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
                # In place: the timer thread keeps a reference to the list.
                self._heap[:] = [entry for entry in self._heap if entry[2]._state == _PENDING]
                heapq.heapify(self._heap)
                self._cancelled = 0
            # No notification: the thread waking at a cancelled deadline just skips it.
            return True

    def pending_count(self) -> int:
        """Number of callbacks still due (for tests and diagnostics)."""
        with self._cond:
            return len(self._heap) - self._cancelled

    def _reset_after_fork(self) -> None:
        """Start over in a forked child, which runs a single thread.

        The parent's timer thread does not exist in the child, and the lock may have been
        held at the fork. The parent's pending callbacks are withdrawn: their handles report
        cancelled.
        """
        self._cond = threading.Condition(threading.Lock())
        for _, _, handle in self._heap:
            handle._state = _CANCELLED
            handle._callback = None
        self._heap.clear()
        self._cancelled = 0
        self._thread = None

    def _next_due(self) -> TimerHandle:
        """Block until a pending callback is due, claim it and return it. Holds _cond."""
        heap = self._heap
        while True:
            if not heap:
                cond_wait(self._cond, None)
                continue
            deadline, _, handle = heap[0]
            if handle._state != _PENDING:
                heapq.heappop(heap)
                self._cancelled -= 1
                continue
            if deadline <= _monotonic():
                heapq.heappop(heap)
                handle._state = _FIRED
                return handle
            cond_wait(self._cond, deadline)

    def _run(self) -> None:
        while True:
            with self._cond:
                handle = self._next_due()
                callback, handle._callback = handle._callback, None
            if callback is None:
                continue
            try:
                callback()
            except BaseException:
                _report(*sys.exc_info())
            del callback


def _report(exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
    """Report a callback's exception like an exception escaping a thread."""
    try:
        threading.excepthook(
            threading.ExceptHookArgs((exc_type, exc, tb, threading.current_thread()))
        )
    except BaseException:
        try:
            sys.excepthook(exc_type, exc, tb)  # type: ignore[arg-type]
        except BaseException:
            pass  # nothing left to report with; the timer must keep running


_timer = _Timer()


def call_later(delay: float, callback: Callable[[], None]) -> TimerHandle:
    """Arrange for ``callback()`` to run on the shared timer thread ``delay`` seconds from now.

    Returns at once. The first call of the process starts the timer thread. The callback
    runs no earlier than the delay, after the callbacks due before it; it must be short and
    must not block, since it delays every later callback.

    Args:
        delay: seconds from now; ``0`` means as soon as the timer thread gets to it.
        callback: a function taking no argument. Its exceptions are reported through
            :func:`threading.excepthook`.

    Returns:
        A handle whose :meth:`TimerHandle.cancel` withdraws the callback.

    Raises:
        ValueError: ``delay`` is negative or NaN.
        TypeError: ``delay`` is not a number, or ``callback`` is not callable.
    """
    try:
        valid = delay >= 0
    except TypeError:
        raise TypeError(f"'delay' must be a number, not {type(delay).__name__}") from None
    if not valid:
        raise ValueError("'delay' must be a non-negative number")
    if not callable(callback):
        raise TypeError(f"'callback' must be callable, not {type(callback).__name__}")
    return _timer.call_later(delay, callback)


def pending_count() -> int:
    """Number of callbacks of the shared timer that are still due."""
    return _timer.pending_count()


def _after_fork_in_child() -> None:
    _timer._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
