"""Continuations: their options, their triggers and the firing trampoline (SEMANTICS §6).

A continuation is a task armed at creation (``SCHEDULED``) plus a *trigger* registered in the
``_callbacks`` of each antecedent. When an antecedent is done, its thread calls
:func:`dispatch` (step 6 of SEMANTICS §3.2), which wakes the blocked waiters and then fires
the triggers in registration order. A trigger decides, exactly once, whether its
continuation runs (inline on that thread, or queued on ``TaskScheduler.current()``) or
becomes ``INTERRUPTED`` without running.

Inline continuations that complete and trigger further inline continuations would nest one
stack level per link of a chain; past :data:`_MAX_INLINE_DEPTH` levels on one thread, further
completion-triggered firing is deferred to the outermost firing on that thread (a
trampoline), so chains of any length run in bounded stack depth.

This module sits below ``_task`` and reaches tasks through a few private members only
(``_state``, ``_interrupt``, ``_scheduler``, ``_add_callback``, ``_remove_callback``,
``_cancel``, ``_run_inline``, ``_interrupt_unrun``); it refers to ``Task`` for typing only.
``run_after``'s timer entry (:class:`Delayed`) lives here too: it is a trigger on a timer.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable, Sequence
from operator import index as _index
from typing import TYPE_CHECKING, Any, Final, final

from .._blocking import Waker
from .._errors import SchedulerClosedError
from .._events import ContinueWhen
from .._interrupts import Interrupt
from .._timer import TimerHandle
from ._scheduler import TaskScheduler, ThreadRecord, thread_record, thread_state

if TYPE_CHECKING:
    from ._task import Task

__all__ = (
    "INLINE",
    "ContinuationOptions",
    "Delayed",
    "Gate",
    "Then",
    "check_options",
    "decide",
    "dispatch",
    "fire",
)


class ContinuationOptions(enum.IntFlag):
    """When and how a continuation runs (SEMANTICS §6)."""

    #: Run synchronously on the thread that triggers the continuation instead of queueing.
    INLINE = 1
    #: Run if the antecedent(s) ended ``COMPLETED``.
    ON_COMPLETED_SUCCESSFULLY = 2
    #: Run if the antecedent(s) ended ``FAILED``.
    ON_FAILED = 8
    #: Run if the antecedent(s) ended ``INTERRUPTED``.
    ON_INTERRUPTED = 16
    #: ``INLINE | ON_COMPLETED_SUCCESSFULLY | ON_FAILED | ON_INTERRUPTED``.
    DEFAULT = 27


#: The INLINE flag as a plain int.
INLINE: Final = int(ContinuationOptions.INLINE)
_KNOWN_OPTIONS: Final = int(ContinuationOptions.DEFAULT)
# The option flag that selects each state, indexed by state value (0: not terminal).
_SELECTS: Final = (0, 0, 0, 2, 16, 8)

# Past this depth of nested inline continuations fired by completions on one thread, further
# triggers are deferred to the outermost level (a trampoline), so long chains of inline
# continuations do not exhaust the stack.
_MAX_INLINE_DEPTH: Final = 16


def check_options(options: object) -> int:
    """Validate a ``ContinuationOptions`` argument and return its value as an int."""
    if type(options) is bool or not isinstance(options, int):
        raise TypeError(f"'options' must be ContinuationOptions, not {type(options).__name__}")
    value = _index(options)
    if value & ~_KNOWN_OPTIONS or value < 0:
        raise ValueError(f"'options' has unknown flags: {value!r}")
    return value


# -- firing -------------------------------------------------------------------------------------


def dispatch(antecedent: Task[Any], callbacks: list[Any]) -> None:
    """Step 6: wake the waiters, then fire the continuation triggers in registration order."""
    triggers: list[Any] | None = None
    for callback in callbacks:
        if type(callback) is Waker:
            callback()
        elif triggers is None:
            triggers = [callback]
        else:
            triggers.append(callback)
    if triggers is not None:
        fire(antecedent, triggers, True)


def fire(antecedent: Task[Any], triggers: Sequence[Any], deferrable: bool) -> None:
    """Fire ``triggers`` of ``antecedent`` on this thread, each exactly once.

    A trigger that raises (an inline continuation re-raising ``KeyboardInterrupt`` on a
    non-worker thread) does not keep the others from firing; the first such exception is
    re-raised at the end. Completion-triggered firing (``deferrable``) nested deeper than
    :data:`_MAX_INLINE_DEPTH` is deferred to the outermost firing on this thread.
    """
    try:
        record: ThreadRecord = thread_state.record
    except AttributeError:
        record = thread_record()
    depth = record.fire_depth
    if deferrable and depth >= _MAX_INLINE_DEPTH:
        deferred = record.deferred
        if deferred is None:
            deferred = record.deferred = deque()
        for trigger in triggers:
            deferred.append((trigger, antecedent))
        return
    record.fire_depth = depth + 1
    error: BaseException | None = None
    try:
        for trigger in triggers:
            try:
                trigger.fire(antecedent)
            except BaseException as ex:
                if error is None:
                    error = ex
        if depth == 0:
            deferred = record.deferred
            while deferred:
                trigger, source = deferred.popleft()
                try:
                    trigger.fire(source)
                except BaseException as ex:
                    if error is None:
                        error = ex
    finally:
        record.fire_depth = depth
        if depth == 0:
            record.deferred = None
    if error is not None:
        try:
            raise error
        finally:
            error = None


def _start_continuation(continuation: Task[Any], inline: bool) -> None:
    """Run a triggered continuation inline, or queue it on ``TaskScheduler.current()``.

    A closed current scheduler is replaced by the default one, so no continuation is lost.
    """
    if inline:
        continuation._run_inline()
    else:
        _queue_on(continuation, TaskScheduler.current())


def _queue_on(armed: Task[Any], scheduler: TaskScheduler) -> None:
    """Queue an armed task on ``scheduler``, or on the default one if ``scheduler`` is closed."""
    if scheduler.is_closed:
        scheduler = TaskScheduler.default()
    armed._scheduler = scheduler
    try:
        scheduler.queue(armed)
    except SchedulerClosedError:  # closed meanwhile
        scheduler = TaskScheduler.default()
        armed._scheduler = scheduler
        scheduler.queue(armed)


@final
class Then:
    """The trigger of a ``continue_with`` continuation on its single antecedent."""

    __slots__ = ("continuation", "mask")

    def __init__(self, continuation: Task[Any], mask: int) -> None:
        self.continuation = continuation
        self.mask = mask

    def fire(self, antecedent: Task[Any]) -> None:
        decide(self.continuation, self.mask, antecedent)


def decide(continuation: Task[Any], mask: int, antecedent: Task[Any]) -> None:
    """Run (inline or queued) or cancel ``continuation`` of the terminal ``antecedent``."""
    if not _SELECTS[antecedent._state] & mask:
        continuation._cancel()
    elif mask & INLINE:
        continuation._run_inline()
    else:
        _queue_on(continuation, TaskScheduler.current())


@final
class _Release:
    """Removes a gate's interrupt subscription once its continuation is done."""

    __slots__ = ("callback", "interrupt")

    def __init__(self, interrupt: Interrupt, callback: Callable[[], None]) -> None:
        self.interrupt = interrupt
        self.callback = callback

    def fire(self, antecedent: Task[Any]) -> None:
        self.interrupt._unsubscribe(self.callback)


@final
class Gate:
    """The trigger of a continuation over several antecedents (SEMANTICS §6.2).

    Registered once per antecedent (duplicates included); ``remaining`` counts the
    antecedents not yet terminal. The first evaluation that can decide sets ``decided``
    under ``lock``, so the continuation starts or is cancelled exactly once.
    """

    __slots__ = ("any", "continuation", "decided", "lock", "mask", "remaining", "tasks")

    def __init__(
        self, continuation: Task[Any], tasks: tuple[Task[Any], ...], when: ContinueWhen, mask: int
    ) -> None:
        self.continuation = continuation
        self.tasks = tasks
        self.any = when is ContinueWhen.ANY
        self.mask = mask
        # Guards `remaining` and `decided`.
        self.lock = threading.Lock()
        self.remaining = len(tasks)
        self.decided = False

    def arm(self) -> None:
        continuation = self.continuation
        if not self.tasks:
            self.decided = True
            if self.any:  # an empty ANY can never be satisfied
                continuation._cancel()
            else:  # an empty ALL is satisfied at once
                self._start()
            return
        interrupt = continuation._interrupt
        if interrupt._can_signal:
            interrupt._subscribe(self.interrupted)
            if interrupt._signal_id is not None:
                self.interrupted()
                return
        ready = [item for item in self.tasks if not item._add_callback(self)]
        if self.decided:  # interrupted while registering: drop what was registered
            self._detach()
            return
        for item in ready:
            fire(item, (self,), False)

    def fire(self, antecedent: Task[Any]) -> None:
        with self.lock:
            if self.decided:
                return
            self.remaining -= 1
            if self.any:
                if _SELECTS[antecedent._state] & self.mask:
                    run = True
                elif self.remaining:
                    return
                else:
                    run = False
            elif self.remaining:
                return
            else:
                run = all(_SELECTS[item._state] & self.mask for item in self.tasks)
            self.decided = True
        self._detach()
        if run:
            self._start()
        else:
            self._unsubscribe()
            self.continuation._cancel()

    def interrupted(self) -> None:
        """The proto's interrupt was signaled: cancel the continuation if it has not started."""
        with self.lock:
            undecided = not self.decided
            self.decided = True
        if undecided:
            self._detach()
        self.continuation._cancel()

    def _detach(self) -> None:
        for item in self.tasks:
            item._remove_callback(self)

    def _unsubscribe(self) -> None:
        interrupt = self.continuation._interrupt
        if interrupt._can_signal:
            interrupt._unsubscribe(self.interrupted)

    def _start(self) -> None:
        continuation = self.continuation
        interrupt = continuation._interrupt
        if interrupt._can_signal:
            # Until it starts, the continuation can still be cancelled by the interrupt; the
            # subscription is dropped when it is done.
            release = _Release(interrupt, self.interrupted)
            if not continuation._add_callback(release):
                release.fire(continuation)
            if interrupt._signal_id is not None:
                continuation._cancel()
                return
        _start_continuation(continuation, bool(self.mask & INLINE))


# -- run_after -----------------------------------------------------------------------------------


@final
class Delayed:
    """A ``run_after`` task waiting for its timer; queued when due, unless interrupted first."""

    __slots__ = ("handle", "scheduler", "task")

    def __init__(self, delayed: Task[Any], scheduler: TaskScheduler) -> None:
        self.task = delayed
        self.scheduler = scheduler
        self.handle: TimerHandle | None = None

    def due(self) -> None:
        """On the timer thread: queue the task (on the default scheduler if ours closed)."""
        delayed = self.task
        interrupt = delayed._interrupt
        if interrupt._can_signal:
            interrupt._unsubscribe(self.interrupted)
        if delayed.is_scheduled:
            _queue_on(delayed, self.scheduler)

    def interrupted(self) -> None:
        """The interrupt was signaled during the delay: end INTERRUPTED, withdraw the timer.

        Whichever comes first wins: this transition, or a worker starting the task after
        :meth:`due` queued it (the worker then sees the signaled interrupt and ends the task
        ``INTERRUPTED`` without calling the target).
        """
        delayed = self.task
        if delayed._interrupt_unrun(delayed._interrupt._exception):
            handle = self.handle
            if handle is not None:
                handle.cancel()


ContinuationOptions.__module__ = "runtime.threading.tasks"
