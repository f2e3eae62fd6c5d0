"""How every library wait blocks: deadlines, parking, and the scheduler hook.

This is the lowest layer. A blocking call of the library (event waits, lock acquisition,
queue takes, task waits, ``sleep``) never calls ``threading.Condition.wait`` or
``Lock.acquire(timeout)`` directly; it *parks* through :func:`park`, which

* measures one deadline computed on entry (a retry never restarts the clock);
* tells the scheduler running the current task that the thread is about to block, through
  the :class:`SchedulerHook` installed on the thread by the tasks layer. The scheduler may
  then *suspend* the task, lending its slot to other work (SEMANTICS §5.3): at once when work
  is queued and no slot is free, otherwise after ``TASK_SUSPEND_AFTER`` seconds;
* on the Windows main thread only, cuts the wait into ``POLL_INTERVAL`` slices so Ctrl+C
  stays responsive. No other path polls.

Waking a parked thread is always a notification: a waiter lock released by whoever changes
the state (a signal, an enqueue, a release, an interrupt).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

from . import _constants

if TYPE_CHECKING:
    from ._interrupts import Interrupt

__all__ = (
    "SchedulerHook",
    "Waker",
    "cond_wait",
    "current_hook",
    "deadline_for",
    "install_hook",
    "park",
    "remaining",
    "subscribe_notify",
    "unsubscribe_notify",
)

_allocate_lock = threading.Lock
# The longest timeout a builtin lock accepts; longer (or infinite) timeouts are waited out in
# slices of this length, since ``Lock.acquire`` raises OverflowError beyond it.
_TIMEOUT_MAX = threading.TIMEOUT_MAX
_IS_WINDOWS = sys.platform == "win32"
_main_thread = threading.main_thread()


class SchedulerHook(Protocol):
    """What a scheduler offers a worker thread that is about to block."""

    def suspend_now(self) -> bool:
        """Whether the wait should suspend at once (queued work and no free slot)."""
        ...

    def suspend(self) -> AbstractContextManager[Any]:
        """A context in which the calling worker holds no slot. Leaving it waits for one.

        It must be a no-op when the thread is already suspended, so nested waits are safe.
        """
        ...


class _ThreadState(threading.local):
    # The hook of the task running on this thread, or None outside tasks. Written only by the
    # thread itself, so it needs no lock.
    hook: SchedulerHook | None = None


_state = _ThreadState()


def current_hook() -> SchedulerHook | None:
    """The scheduler hook installed on the calling thread, if any."""
    return _state.hook


def install_hook(hook: SchedulerHook | None) -> SchedulerHook | None:
    """Install ``hook`` on the calling thread and return the previous one."""
    previous = _state.hook
    _state.hook = hook
    return previous


def deadline_for(timeout: float | None) -> float | None:
    """Validate a ``timeout`` argument and turn it into an absolute deadline.

    Raises:
        ValueError: ``timeout`` is negative (or NaN).
        TypeError: ``timeout`` is not a number.
    """
    if timeout is None:
        return None
    try:
        valid = timeout >= 0
    except TypeError:
        raise TypeError(
            f"'timeout' must be a number or None, not {type(timeout).__name__}"
        ) from None
    if not valid:
        raise ValueError("'timeout' must be a non-negative number")
    return monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative), or ``None`` for no deadline."""
    if deadline is None:
        return None
    left = deadline - monotonic()
    return left if left > 0.0 else 0.0


def _acquire(lock: Any, deadline: float | None) -> bool:
    """Block on ``lock`` until it is released to us or ``deadline`` passes."""
    if _IS_WINDOWS and threading.current_thread() is _main_thread:
        # Python cannot deliver Ctrl+C to a main thread blocked in a native wait on Windows.
        while True:
            left = remaining(deadline)
            step = _constants.POLL_INTERVAL if left is None else min(left, _constants.POLL_INTERVAL)
            if lock.acquire(True, step):
                return True
            if left is not None and left <= step:
                return False
    if deadline is None:
        return bool(lock.acquire())
    left = deadline - monotonic()
    if left <= 0.0:
        return bool(lock.acquire(False))
    while left > _TIMEOUT_MAX:
        # A huge or infinite timeout (``wait(float("inf"))``) is a valid non-negative number.
        if lock.acquire(True, _TIMEOUT_MAX):
            return True
        left = deadline - monotonic()
    return bool(lock.acquire(True, left))


def park(lock: Any, deadline: float | None) -> bool:
    """Block until ``lock`` (a held waiter lock) is released by a waker, or until ``deadline``.

    Returns ``True`` if woken, ``False`` if the deadline passed. On a worker thread running a
    task, the wait cooperates with the scheduler: it suspends the task at once when queued work
    is starved, otherwise after ``TASK_SUSPEND_AFTER`` seconds. Must be called with no lock
    held, since leaving a suspension waits for a scheduler slot.
    """
    hook = _state.hook
    if hook is None:
        return _acquire(lock, deadline)
    if deadline is not None and deadline <= monotonic():
        # Nothing left to wait for (a ``0`` timeout, or a deadline that passed meanwhile):
        # try once and never suspend, since resuming would wait for a slot (SEMANTICS §5.3).
        return bool(lock.acquire(False))
    if hook.suspend_now():
        with hook.suspend():
            return _acquire(lock, deadline)
    grace = _constants.TASK_SUSPEND_AFTER
    if deadline is not None and deadline - monotonic() <= grace:
        # The whole wait fits in the grace period; the scheduler still gets a chance to
        # suspend at once (above) when work is starving.
        return _acquire(lock, deadline)
    if lock.acquire(True, grace) if grace > 0 else lock.acquire(False):
        return True
    with hook.suspend():
        return _acquire(lock, deadline)


def cond_wait(cond: threading.Condition, deadline: float | None) -> bool:
    """``cond.wait()`` until ``deadline``, parking cooperatively (see :func:`park`).

    The caller holds ``cond``. The waiter is registered exactly as ``Condition.wait`` does, so
    ``notify``/``notify_all`` wake it; the condition's lock is released while parked and
    re-acquired before returning, whatever happens. Returns ``True`` if notified.
    """
    waiter = _allocate_lock()
    waiter.acquire()
    cond._waiters.append(waiter)  # type: ignore[attr-defined]
    saved = cond._release_save()  # type: ignore[attr-defined]
    notified = False
    try:
        notified = park(waiter, deadline)
        return notified
    finally:
        cond._acquire_restore(saved)  # type: ignore[attr-defined]
        if not notified:
            try:
                cond._waiters.remove(waiter)  # type: ignore[attr-defined]
            except ValueError:
                pass


def _notify_all(cond: threading.Condition) -> None:
    with cond:
        cond.notify_all()


def subscribe_notify(
    interrupt: Interrupt | None, cond: threading.Condition
) -> Callable[[], None] | None:
    """Arrange for ``cond.notify_all()`` when ``interrupt`` becomes signaled.

    Returns a handle for :func:`unsubscribe_notify`, or ``None`` when there is nothing to
    watch (no interrupt, or one that can never be signaled). The caller re-checks
    ``interrupt.is_signaled`` under ``cond`` after subscribing, so a signal that lands between
    its check and the subscription is never lost.
    """
    if interrupt is None or not interrupt._can_signal:
        return None
    callback = _Notifier(cond)
    interrupt._subscribe(callback)
    return callback


def unsubscribe_notify(interrupt: Interrupt | None, handle: Callable[[], None] | None) -> None:
    """Remove a registration made by :func:`subscribe_notify`."""
    if handle is not None and interrupt is not None:
        interrupt._unsubscribe(handle)


class _Notifier:
    __slots__ = ("_cond",)

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond

    def __call__(self) -> None:
        _notify_all(self._cond)


class Waker:
    """A one-thread wake-up handle for waits on several objects at once.

    ``lock`` starts held; :meth:`__call__` releases it (idempotently) and :func:`park` on it
    returns. Used as the registration of multi-waits on events and interrupts.
    """

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = _allocate_lock()
        self.lock.acquire()

    def __call__(self) -> None:
        try:
            self.lock.release()
        except RuntimeError:  # already released by another waker: one wake-up is enough
            pass
