"""Events: manual-reset, auto-clear and one-time flags, multi-waits and event continuations.

Every :class:`Event` keeps its state in a builtin :class:`threading.Event` (its own, or one
it wraps) and uses that builtin's condition as its lock. So a ``set()`` called directly on a
wrapped builtin still wakes :meth:`Event.wait`, which parks on the same condition.

Multi-waits (:meth:`Event.wait_any`, :meth:`Event.wait_all`) and event continuations register
a *watcher* callback on each member. Watchers run on the signaling thread after its lock is
released, never under it. A wait removes every watcher it registered before it returns,
whatever the outcome, so timed-out waits leave nothing behind and consume nothing.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Sequence
from time import monotonic as _monotonic
from typing import TYPE_CHECKING

from ._blocking import (
    Waker,
    cond_wait,
    deadline_for,
    park,
    subscribe_notify,
    unsubscribe_notify,
)
from ._errors import ThreadingException

if TYPE_CHECKING:
    from ._interrupts import Interrupt

__all__ = ("AutoClearEvent", "ContinueWhen", "Event", "EventContinuation", "OneTimeEvent")



class ContinueWhen(enum.IntEnum):
    """When a continuation over several awaited items fires."""

    #: When any awaited item is done or signaled.
    ANY = 1
    #: When all of them are.
    ALL = 2


class Event:
    """A manual-reset synchronization flag.

    ``signal()`` releases every waiter and the flag stays set until ``clear()``. Events can
    also be waited on several at once (:meth:`wait_any`, :meth:`wait_all`).

    Args:
        internal_event: an existing builtin event to wrap. Its state is this event's state.
            Limitation: a ``set()`` or ``clear()`` called directly on the builtin is seen by
            :meth:`wait`, but is not pushed to multi-waits or continuations; those re-read
            the builtin when they wake for another reason and when their timeout expires.
        purpose: a diagnostic label; an empty string is stored as ``"USER"``.
    """

    __slots__ = ("__weakref__", "_cond", "_event", "_purpose", "_watchers")

    def __init__(
        self, internal_event: threading.Event | None = None, *, purpose: str = "USER"
    ) -> None:
        if internal_event is None:
            internal_event = threading.Event()
        elif not isinstance(internal_event, threading.Event):
            raise TypeError(
                "'internal_event' must be a threading.Event or None, "
                f"not {type(internal_event).__name__}"
            )
        if not isinstance(purpose, str):
            raise TypeError(f"'purpose' must be a str, not {type(purpose).__name__}")
        self._event = internal_event
        # The builtin's condition guards the flag, the waiters parked on it and _watchers.
        self._cond: threading.Condition = internal_event._cond  # type: ignore[attr-defined]
        # Watcher callbacks of multi-waits and continuations, keyed by their registration.
        self._watchers: dict[object, Callable[[], None]] = {}
        self._purpose = purpose or "USER"

    @property
    def is_signaled(self) -> bool:
        """The current flag. Reading it never consumes a signal."""
        return self._event.is_set()

    @property
    def purpose(self) -> str:
        """The diagnostic label given at construction."""
        return self._purpose

    def __repr__(self) -> str:
        state = "signaled" if self.is_signaled else "clear"
        return f"<{type(self).__name__} {self._purpose!r} {state}>"

    # -- hooks for the subclasses ------------------------------------------------------------

    def _release_locked(self) -> None:
        """Wake the waiters a new signal releases. Called with ``_cond`` held."""
        self._cond.notify_all()

    def _consume_locked(self) -> None:
        """Account for one successful wait. Called with ``_cond`` held and the flag set."""

    # -- state changes -------------------------------------------------------------------------

    def signal(self) -> None:
        """Set the flag, release waiters and run registered watchers.

        Signaling an already-signaled event has no further effect; signals are not counted.
        """
        with self._cond:
            if self._event._flag:  # type: ignore[attr-defined]
                return
            self._event._flag = True  # type: ignore[attr-defined]
            self._release_locked()
            watchers = list(self._watchers.values()) if self._watchers else None
        if watchers:
            _run_all(watchers)

    def clear(self) -> None:
        """Reset the flag. Waiters already released are not affected."""
        with self._cond:
            self._event._flag = False  # type: ignore[attr-defined]

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, /, interrupt: Interrupt | None = None) -> bool:
        """Block until the event is signaled.

        Blocks at most ``timeout`` seconds (``None``: no limit, ``0``: never blocks). On a
        worker thread the wait cooperates with the scheduler.

        Returns:
            ``True`` if the event is signaled (also when it already was), ``False`` on timeout
            or when ``interrupt`` is or becomes signaled; a signaled interrupt wins.

        Raises:
            ValueError: ``timeout`` is negative.
        """
        deadline = deadline_for(timeout)
        if interrupt is not None and interrupt.is_signaled:
            return False
        cond = self._cond
        with cond:
            if self._event._flag:  # type: ignore[attr-defined]
                self._consume_locked()
                return True
            if timeout == 0:
                return False
            handle = subscribe_notify(interrupt, cond)
            try:
                while True:
                    if interrupt is not None and interrupt.is_signaled:
                        break
                    if self._event._flag:  # type: ignore[attr-defined]
                        self._consume_locked()
                        return True
                    if deadline is not None and _monotonic() >= deadline:
                        break
                    cond_wait(cond, deadline)
                # Leaving without the signal: pass on a wake-up this waiter may have absorbed.
                if self._event._flag:  # type: ignore[attr-defined]
                    self._release_locked()
                return False
            finally:
                unsubscribe_notify(interrupt, handle)

    # -- watchers (multi-waits and continuations) -------------------------------------------

    def _add_watcher(self, key: object, watcher: Callable[[], None]) -> None:
        with self._cond:
            self._watchers[key] = watcher

    def _remove_watcher(self, key: object) -> None:
        with self._cond:
            self._watchers.pop(key, None)

    def _try_consume(self) -> bool:
        """Take the signal if set (consuming it for auto-clear events)."""
        with self._cond:
            if self._event._flag:  # type: ignore[attr-defined]
                self._consume_locked()
                return True
            return False

    @staticmethod
    def wait_any(
        events: Sequence[Event], timeout: float | None = None, /, interrupt: Interrupt | None = None
    ) -> bool:
        """Block until at least one of ``events`` is signaled.

        On success, consumes exactly one auto-clear member: the first signaled one in sequence
        order. An empty sequence returns ``False`` at once; duplicates count once.

        Returns:
            ``True`` once an event is signaled, ``False`` on timeout or interrupt. A wait that
            returns ``False`` leaves no registration behind and consumes nothing.
        """
        deadline = deadline_for(timeout)
        members = _unique(events)
        if interrupt is not None and interrupt.is_signaled:
            return False
        if not members:
            return False
        return _multi_wait(members, deadline, interrupt, _try_any)

    @staticmethod
    def wait_all(
        events: Sequence[Event], timeout: float | None = None, /, interrupt: Interrupt | None = None
    ) -> bool:
        """Block until every one of ``events`` is signaled at the same moment.

        On success, consumes one signal from every auto-clear member, atomically; while the
        condition is unmet, members signaled so far keep their signal. An empty sequence
        returns ``True`` at once (``False`` if ``interrupt`` is signaled).
        """
        deadline = deadline_for(timeout)
        members = _unique(events)
        if interrupt is not None and interrupt.is_signaled:
            return False
        if not members:
            return True
        return _multi_wait(members, deadline, interrupt, _try_all)


class AutoClearEvent(Event):
    """An auto-reset event: each signal is consumed by exactly one successful wait.

    If several threads are blocked when ``signal()`` is called, exactly one is released; if
    nobody waits, the flag stays set until one waiter consumes it. ``wait_any`` consumes only
    the first signaled member; ``wait_all`` consumes every member atomically, and only when
    all are signaled. A wait that times out or is interrupted consumes nothing, and
    ``is_signaled`` never consumes.
    """

    __slots__ = ()

    def _release_locked(self) -> None:
        self._cond.notify(1)

    def _consume_locked(self) -> None:
        self._event._flag = False  # type: ignore[attr-defined]


class OneTimeEvent(Event):
    """An event that stays signaled forever once signaled.

    Used for task completion, interrupt notification and scheduler shutdown.
    """

    __slots__ = ()

    def clear(self) -> None:
        """Always raises: a one-time event cannot be cleared.

        Raises:
            ThreadingException: always, including before the first signal.
        """
        raise ThreadingException("a OneTimeEvent cannot be cleared")

    def wait(self, timeout: float | None = None, /, interrupt: Interrupt | None = None) -> bool:
        # Lock-free fast path: a one-time event that is signaled stays signaled.
        if self._event._flag and (interrupt is None or not interrupt.is_signaled):  # type: ignore[attr-defined]
            deadline_for(timeout)
            return True
        return super().wait(timeout, interrupt)


def _run_all(callbacks: Iterable[Callable[[], None]]) -> None:
    """Call every callback, even if some raise; then re-raise the first exception.

    A watcher that raises (a continuation callback, say) must not keep the watchers after it
    from running: those are the wake-ups of other waiters, which would otherwise stay blocked.
    """
    error: BaseException | None = None
    for callback in callbacks:
        try:
            callback()
        except BaseException as exc:
            if error is None:
                error = exc
    if error is not None:
        try:
            raise error
        finally:
            error = None  # break the frame <-> traceback reference cycle


def _unique(events: Iterable[Event]) -> list[Event]:
    seen: set[int] = set()
    members: list[Event] = []
    for event in events:
        if not isinstance(event, Event):
            raise TypeError(f"'events' must hold Event objects, not {type(event).__name__}")
        if id(event) not in seen:
            seen.add(id(event))
            members.append(event)
    return members


def _try_any(members: Sequence[Event]) -> bool:
    return any(event._try_consume() for event in members)


def _try_all(members: Sequence[Event]) -> bool:
    # Every member's condition is held at once, taken in id order, so the check and the
    # consumption are atomic with respect to every signal and every other multi-wait.
    # Distinct Event objects wrapping the same builtin share its condition, whose lock is not
    # reentrant: each condition is taken once.
    conds = {id(event._cond): event._cond for event in members}
    ordered = [conds[key] for key in sorted(conds)]
    for cond in ordered:
        cond.acquire()
    try:
        if not all(event._event._flag for event in members):  # type: ignore[attr-defined]
            return False
        for event in members:
            event._consume_locked()
        return True
    finally:
        for cond in reversed(ordered):
            cond.release()


def _multi_wait(
    members: Sequence[Event],
    deadline: float | None,
    interrupt: Interrupt | None,
    attempt: Callable[[Sequence[Event]], bool],
) -> bool:
    if attempt(members):
        return True
    if deadline is not None and _monotonic() >= deadline:
        return False
    waker = Waker()
    for event in members:
        event._add_watcher(waker, waker)
    watching = interrupt is not None and interrupt._can_signal
    if watching:
        interrupt._subscribe(waker)  # type: ignore[union-attr]
    try:
        while True:
            if interrupt is not None and interrupt.is_signaled:
                return False
            # Re-checked after registering, so a signal in between is never lost; wrapped
            # builtins set from outside are re-read here on every wake-up and at the deadline.
            if attempt(members):
                return True
            if deadline is not None and _monotonic() >= deadline:
                return False
            park(waker.lock, deadline)
    finally:
        for event in members:
            event._remove_watcher(waker)
        if watching:
            interrupt._unsubscribe(waker)  # type: ignore[union-attr]


class EventContinuation:
    """Run ``callback`` once when ``events`` satisfy ``when`` (internal).

    ``ANY`` fires when one member is signaled and consumes only that member's auto-clear
    signal; ``ALL`` fires when all are signaled at once and consumes all, atomically. The
    callback runs on the signaling thread (or the registering thread, when the condition
    already holds), outside every event lock. :meth:`cancel` removes the registrations of a
    continuation that has not fired. ``ALL`` over no events fires at once; ``ANY`` over no
    events never fires.
    """

    __slots__ = ("__weakref__", "_callback", "_fired", "_lock", "_members", "_when")

    def __init__(
        self, events: Sequence[Event], when: ContinueWhen, callback: Callable[[], None]
    ) -> None:
        self._members = _unique(events)
        self._when = ContinueWhen(when)
        self._callback: Callable[[], None] | None = callback
        # Guards _fired, so exactly one evaluation wins the right to run the callback.
        self._lock = threading.Lock()
        self._fired = False
        for event in self._members:
            event._add_watcher(self, self._evaluate)
        if self._when is ContinueWhen.ALL and not self._members:
            self._fire()
        else:
            self._evaluate()

    @property
    def fired(self) -> bool:
        """Whether the continuation is spent: its callback was started, or it was cancelled."""
        return self._fired

    def _evaluate(self) -> None:
        if self._fired:
            return
        attempt = _try_all if self._when is ContinueWhen.ALL else _try_any
        with self._lock:
            if self._fired or not attempt(self._members):
                return
            self._fired = True
        self._fire(already_marked=True)

    def _fire(self, already_marked: bool = False) -> None:
        if not already_marked:
            with self._lock:
                if self._fired:
                    return
                self._fired = True
        for event in self._members:
            event._remove_watcher(self)
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def cancel(self) -> bool:
        """Remove the registrations; returns ``False`` if the continuation already fired."""
        with self._lock:
            if self._fired:
                return False
            self._fired = True
        for event in self._members:
            event._remove_watcher(self)
        self._callback = None
        return True


for _cls in (Event, AutoClearEvent, OneTimeEvent, ContinueWhen):
    _cls.__module__ = "runtime.threading"
del _cls
