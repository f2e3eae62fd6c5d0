"""Tasks: ``Task``, its protos, its states and the ``task`` decorator.

A :class:`Task` wraps a target ``fn(task, *args, **kwargs)``. Its life cycle is the state
machine of SEMANTICS §3.1, written down as data in :data:`_TRANSITIONS` (and, for the hot
paths, as the lookup table :data:`_LEGAL`); state changes are checked against it. A task
that starts life armed (a continuation, a ``run_after`` task) or completed
(``Task.from_result``) is *constructed* in that state, which is not a transition; a
scheduling whose ``queue()`` raised is *undone* (``Task._unschedule``), as if it never
happened.

Locks
    A task's mutable state (``_state``, ``_callbacks``, ``_event``, the outcome) is guarded by
    one of :data:`_STRIPES` striped locks chosen by the task id, so tasks carry no lock of
    their own. No code path holds two of these locks at once, nor calls out (callbacks,
    continuations, schedulers) while holding one.

Completion
    There is no per-task event on the fast path: waiters and continuation triggers are kept
    in ``_callbacks`` and called after the outcome is recorded. ``wait_event`` is created on
    first access. A blocked ``wait`` parks through ``runtime.threading._blocking`` on a
    :class:`Waker`, so it cooperates with the scheduler.

Continuations (SEMANTICS §6) are armed tasks (``SCHEDULED``) plus a trigger registered on
their antecedents; the triggers and the firing trampoline live in ``_continuations``.
"""

from __future__ import annotations

import enum
import functools
import itertools
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextvars import Context, copy_context
from time import monotonic
from types import TracebackType
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar, final, overload

from .._blocking import Waker, deadline_for, park
from .._errors import (
    AggregateException,
    AwaitedTaskInterruptedError,
    InterruptException,
    SchedulerClosedError,
    TaskAlreadyRunningError,
    TaskAlreadyScheduledError,
    TaskCompletedError,
    TaskException,
    TaskNotScheduledError,
    ThreadingException,
)
from .._events import ContinueWhen, Event, OneTimeEvent
from .._interrupts import Interrupt, validate_interrupt
from .._timer import call_later
from ._context import PContext, inherit, uninherit
from ._continuations import (
    INLINE,
    ContinuationOptions,
    Delayed,
    Gate,
    Then,
    check_options,
    decide,
    dispatch,
)
from ._scheduler import TaskScheduler, ThreadRecord, thread_record, thread_state

__all__ = ("ContinuationOptions", "ContinuationProto", "Task", "TaskProto", "TaskState", "task")

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class TaskState(enum.IntEnum):
    """The life-cycle state of a task; the three states ``>= COMPLETED`` are terminal."""

    NOTSTARTED = 0
    SCHEDULED = 1
    RUNNING = 2
    COMPLETED = 3
    INTERRUPTED = 4
    FAILED = 5


NOTSTARTED: Final = TaskState.NOTSTARTED
SCHEDULED: Final = TaskState.SCHEDULED
RUNNING: Final = TaskState.RUNNING
COMPLETED: Final = TaskState.COMPLETED
INTERRUPTED: Final = TaskState.INTERRUPTED
FAILED: Final = TaskState.FAILED

# SEMANTICS §3.1: the legal transitions. Any other is a library bug and raises TaskException.
_TRANSITIONS: Final[dict[TaskState, frozenset[TaskState]]] = {
    NOTSTARTED: frozenset({SCHEDULED, RUNNING, INTERRUPTED}),
    SCHEDULED: frozenset({RUNNING, INTERRUPTED}),
    RUNNING: frozenset({COMPLETED, FAILED, INTERRUPTED}),
    COMPLETED: frozenset(),
    INTERRUPTED: frozenset(),
    FAILED: frozenset(),
}
# The same table as nested tuples indexed by state value: the one lookup of _check.
_LEGAL: Final = tuple(tuple(to in _TRANSITIONS[frm] for to in TaskState) for frm in TaskState)


def _check(frm: TaskState, to: TaskState) -> None:
    if not _LEGAL[frm][to]:
        raise TaskException(f"Task cannot transition from state '{frm.name}' to '{to.name}'")


# Striped locks guarding the tasks' state; see the module docstring.
_STRIPES: Final = 64
_locks: Final = tuple(threading.Lock() for _ in range(_STRIPES))


def _reinit_locks_after_fork() -> None:
    # A stripe held by another thread at fork time would stay held forever in the child.
    for lock in _locks:
        lock._at_fork_reinit()  # type: ignore[attr-defined]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_locks_after_fork)

# Task ids, from 1 (itertools.count is atomic under the GIL).
_ids = itertools.count(1)

_NONE: Final = Interrupt.none()
_main_thread: Final = threading.main_thread()
_main_ident: Final = _main_thread.ident
_get_ident: Final = threading.get_ident
_current_thread: Final = threading.current_thread
_object_new: Final = object.__new__

# -- names --------------------------------------------------------------------------------------

# (module, __name__, __qualname__) -> (task name, target string). Bounded: cleared when full.
_names: dict[tuple[object, object, object], tuple[str, str]] = {}
_NAMES_MAX: Final = 4096


def _names_of(fn: object) -> tuple[str, str]:
    """The task name (``module.name``) and target string (``module.qualname``) of ``fn``."""
    try:
        key: tuple[object, object, object] | None = (fn.__module__, fn.__name__, fn.__qualname__)  # type: ignore[attr-defined]
    except AttributeError:  # not a plain function: partial objects, callable instances
        key = None
    else:
        try:
            return _names[key]  # type: ignore[index]
        except KeyError:
            pass
        except TypeError:  # an unhashable attribute: compute without the cache
            key = None
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__name__", None)
    qualname = getattr(fn, "__qualname__", name)
    if not isinstance(name, str):
        name = type(fn).__name__
    if not isinstance(qualname, str):
        qualname = name
    if not isinstance(module, str):
        module = ""
    names = (f"{module}.{name}", f"{module}.{qualname}") if module else (name, qualname)
    if key is not None:
        if len(_names) >= _NAMES_MAX:
            _names.clear()
        _names[key] = names
    return names


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"'fn' must be callable, not {type(fn).__name__}")


def _check_name(name: object) -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"'name' must be a str or None, not {type(name).__name__}")


def _check_delay(time: object) -> None:
    try:
        valid = time >= 0  # type: ignore[operator]
    except TypeError:
        raise TypeError(f"'time' must be a number, not {type(time).__name__}") from None
    if not valid:
        raise ValueError("'time' must be a non-negative number")


def _task_tuple(tasks: object) -> tuple[Task[Any], ...]:
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Iterable):
        raise TypeError(f"'tasks' must be a sequence of Task, not {type(tasks).__name__}")
    items = tuple(tasks)
    for item in items:
        if not isinstance(item, Task):
            raise TypeError(f"'tasks' must hold Task objects, not {type(item).__name__}")
    return items


def _state_error(state: TaskState) -> TaskException:
    """The error ``schedule`` raises for a task in ``state`` (fresh instance)."""
    if state is SCHEDULED:
        return TaskAlreadyScheduledError()
    if state is RUNNING:
        return TaskAlreadyRunningError()
    return TaskCompletedError()


def _is_interruption(error: Exception, interrupt: Interrupt) -> bool:
    """SEMANTICS §3.3: the exception stems from the signal that reached the task's interrupt."""
    if not isinstance(error, InterruptException):
        return False
    signal_id = interrupt._signal_id
    if signal_id is None:
        return False
    source = getattr(error, "_interrupt", None)
    return isinstance(source, Interrupt) and source._signal_id == signal_id


def _report_escape(task: Task[Any], error: BaseException) -> None:
    """Print a ``BaseException`` that ended a task on a worker to ``sys.stderr``."""
    try:
        print(
            f"Exception in task {task.name!r} on thread {_current_thread().name!r} "
            f"(the task ended FAILED; the exception is not propagated further):",
            file=sys.stderr,
        )
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    except Exception:
        pass  # stderr is gone (interpreter shutdown): nothing left to report with


@final
class Task(Generic[T]):
    """A unit of work executed by a scheduler; its target receives the task first.

    Build tasks with :meth:`plan`, :meth:`run` or :meth:`create`. A task runs its target at
    most once, ``fn(task, *args, **kwargs)``, and ends ``COMPLETED`` (the target returned),
    ``FAILED`` (it raised) or ``INTERRUPTED`` (its interrupt was signaled before it started,
    or the target raised that interrupt's exception; SEMANTICS §3.3). Waiting for it
    (:meth:`wait`, :attr:`result`) cooperates with the scheduler.

    A ``KeyboardInterrupt`` or ``SystemExit`` raised by a target also ends the task
    ``FAILED``, with a ``ThreadingException`` whose ``__cause__`` is the original; waiters and
    continuations are released as usual. On a worker thread the original is then printed,
    with its traceback, to ``sys.stderr`` and goes no further (the worker carries on); on any
    other thread (inline or ``run_synchronously`` execution, the main thread say) it is
    re-raised once the task is finalised, so Ctrl+C still reaches the application.

    Each task runs in a copy of the :mod:`contextvars` context of the code that created it:
    the context is copied when the task is constructed and the target is called inside that
    copy, so context variables set before ``Task.run`` are visible in the task, and values
    the task sets do not leak into the creator or into other tasks.

    Args:
        fn: the target, called as ``fn(task)``.
        name: the task name; ``None`` or empty gives ``"Task_<id>"``.
        interrupt: the task's interrupt; defaults to ``Interrupt.none()``.
        lazy: the task starts only when awaited (SEMANTICS §3.6).

    Raises:
        TypeError: an argument of the wrong type.
    """

    __slots__ = (
        "__weakref__",
        "_args",
        "_callbacks",
        "_ctx",
        "_done",
        "_event",
        "_exception",
        "_fn",
        "_id",
        "_interrupt",
        "_kwargs",
        "_lazy",
        "_lock",
        "_name",
        "_parent",
        "_pcontext",
        "_result",
        "_scheduler",
        "_state",
        "_target",
        "_tb",
        "_thread",
    )

    _fn: Callable[..., T] | None
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any] | None
    _ctx: Context | None
    _result: T | None
    _exception: Exception | None
    _tb: TracebackType | None
    _state: TaskState
    # Waiters (Waker) and continuation triggers, called once when the task is done; None
    # when there are none yet, and after completion.
    _callbacks: list[Any] | None
    _done: bool
    _event: OneTimeEvent | None
    # Before scheduling: the scheduler remembered from the plan. Once SCHEDULED: the
    # scheduler the task was queued on (None for armed continuations and pending run_after).
    _scheduler: TaskScheduler | None
    # The thread executing the task, while it runs.
    _thread: threading.Thread | None

    def __init__(
        self,
        fn: Callable[[Task[T]], T],
        name: str | None = None,
        interrupt: Interrupt | None = None,
        lazy: bool = False,
    ) -> None:
        _check_callable(fn)
        _check_name(name)
        validate_interrupt(interrupt)
        self._setup(fn, (), None, name or None, interrupt or _NONE, bool(lazy), _names_of(fn)[1])

    def _setup(
        self,
        fn: Callable[..., T] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        name: str | None,
        interrupt: Interrupt,
        lazy: bool,
        target: str,
    ) -> None:
        task_id = next(_ids)
        self._id = task_id
        self._lock = _locks[task_id % _STRIPES]
        self._state = NOTSTARTED
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._ctx = copy_context()
        self._result = None
        self._exception = None
        self._tb = None
        self._interrupt = interrupt
        try:
            record: ThreadRecord = thread_state.record
        except AttributeError:
            record = thread_record()
        self._parent = record.task
        stack = record.contexts
        # The captured non-root PContext (the root is never on the stack).
        self._pcontext: PContext | None = stack[-1] if stack else None
        self._lazy = lazy
        self._callbacks = None
        self._done = False
        self._event = None
        self._scheduler = None
        self._thread = None
        self._name: str | None = name
        self._target = target

    # -- properties ---------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """A process-wide number, from 1, increasing with each task."""
        return self._id

    @property
    def name(self) -> str:
        """The task name. Setting an empty value restores ``"Task_<id>"``.

        While the task runs, its thread carries the name too (except the main thread).
        """
        return self._name or f"Task_{self._id}"

    @name.setter
    def name(self, value: str | None) -> None:
        _check_name(value)
        self._name = value or None
        thread = self._thread
        if thread is not None and thread is not _main_thread:
            thread.name = self.name

    @property
    def state(self) -> TaskState:
        """The current state."""
        return self._state

    @property
    def parent(self) -> Task[Any] | None:
        """The task that was running on the creating thread when this task was created."""
        return self._parent

    @property
    def target(self) -> str:
        """``"<module>.<qualname>"`` of the user function, for diagnostics."""
        return self._target

    @property
    def is_completed(self) -> bool:
        """Whether the state is terminal (``COMPLETED``, ``INTERRUPTED`` or ``FAILED``)."""
        return self._state >= COMPLETED

    @property
    def is_completed_successfully(self) -> bool:
        """Whether the state is ``COMPLETED``."""
        return self._state is COMPLETED

    @property
    def is_failed(self) -> bool:
        """Whether the state is ``FAILED``."""
        return self._state is FAILED

    @property
    def is_interrupted(self) -> bool:
        """Whether the state is ``INTERRUPTED``."""
        return self._state is INTERRUPTED

    @property
    def is_scheduled(self) -> bool:
        """Whether the state is ``SCHEDULED`` (armed continuations included)."""
        return self._state is SCHEDULED

    @property
    def is_running(self) -> bool:
        """Whether the state is ``RUNNING``."""
        return self._state is RUNNING

    @property
    def is_lazy(self) -> bool:
        """Whether the task starts only when awaited."""
        return self._lazy

    @property
    def interrupt(self) -> Interrupt:
        """The task's interrupt."""
        return self._interrupt

    @property
    def exception(self) -> Exception | None:
        """The exception that ended the task, or ``None``.

        For ``FAILED``, what the target raised (a ``ThreadingException`` whose ``__cause__``
        is the original for ``KeyboardInterrupt``/``SystemExit``); for ``INTERRUPTED``, the
        ``InterruptException`` that ended it.
        """
        return self._exception

    @property
    def result(self) -> T:
        """Block until the task is terminal and return the target's return value.

        A lazy task that has not started is started first (inline when the caller is a
        running task). Blocks without limit; the wait cooperates with the scheduler.

        Raises:
            TaskNotScheduledError: the task is ``NOTSTARTED`` and not lazy.
            Exception: the target's exception if the task ``FAILED``, or the
                ``InterruptException`` if it was ``INTERRUPTED`` (the same object each time,
                with its traceback reset to the recorded one).
        """
        if not self._done:
            if self._state is NOTSTARTED and not self._lazy:
                raise TaskNotScheduledError()
            self._wait(None, None, True)
        if self._state is COMPLETED:
            return self._result  # type: ignore[return-value]
        error = self._exception
        assert error is not None
        raise error.with_traceback(self._tb)

    @property
    def wait_event(self) -> Event:
        """A ``OneTimeEvent`` (purpose ``"TASK_NOTIFY"``) signaled when the task is done.

        It is signaled after the outcome is recorded and the executing thread's registration
        is cleaned up. Created on first access.
        """
        event = self._event
        if event is None:
            with self._lock:
                event = self._event
                if event is None:
                    event = OneTimeEvent(purpose="TASK_NOTIFY")
                    if self._done:
                        event.signal()  # a new event has no watcher: nothing runs under the lock
                    self._event = event
        return event

    def __repr__(self) -> str:
        return f"Task '{self.name}' {self._state.name}"

    # -- state changes ------------------------------------------------------------------------

    # Hot paths take the stripe lock with explicit acquire()/release(): on CPython 3.10 to
    # 3.13 that costs about half of a ``with`` block.

    def _transition(self, frm: TaskState, to: TaskState) -> bool:
        """Move from ``frm`` to ``to`` atomically; ``False`` if the state is not ``frm``."""
        if not _LEGAL[frm][to]:
            _check(frm, to)
        lock = self._lock
        lock.acquire()
        try:
            if self._state is not frm:
                return False
            self._state = to
        finally:
            lock.release()
        return True

    def _begin_queued(self) -> bool:
        """Claim a ``SCHEDULED`` task for execution (a worker taking a queue entry)."""
        lock = self._lock
        lock.acquire()
        try:
            if self._state is not SCHEDULED:
                return False
            self._state = RUNNING  # SCHEDULED -> RUNNING is legal (_LEGAL)
        finally:
            lock.release()
        return True

    def _begin_unstarted(self) -> bool:
        """Claim a ``NOTSTARTED`` task for execution (inline or synchronous)."""
        return self._transition(NOTSTARTED, RUNNING)

    def _run_by(self, scheduler: TaskScheduler) -> None:
        """Execute on the calling worker of ``scheduler`` if it can still start; else skip."""
        if self._begin_queued() or self._transition(NOTSTARTED, RUNNING):
            self._execute(scheduler)

    def _finish(
        self,
        frm: TaskState,
        to: TaskState,
        result: Any,
        error: Exception | None,
        tb: TracebackType | None,
    ) -> bool:
        """Record the outcome and release waiters and continuations (steps 4 and 6).

        Returns ``False``, changing nothing, if the state is no longer ``frm``.
        """
        if not _LEGAL[frm][to]:
            _check(frm, to)
        lock = self._lock
        lock.acquire()
        try:
            if self._state is not frm:
                return False
            self._state = to
            self._result = result
            self._exception = error
            self._tb = tb
            # Let go of the target, its arguments and context, so they can be collected.
            self._fn = None
            self._args = ()
            self._kwargs = None
            self._ctx = None
            self._done = True
            callbacks = self._callbacks
            self._callbacks = None
            event = self._event
        finally:
            lock.release()
        if event is not None:
            event.signal()
        if callbacks is not None:
            dispatch(self, callbacks)
        return True

    def _run_inline(self) -> None:
        """Execute an armed continuation on the calling thread, if nobody started it yet."""
        if self._begin_queued():
            self._execute(None)

    def _interrupt_unrun(self, error: Exception | None) -> bool:
        """End a ``SCHEDULED`` task that never ran as ``INTERRUPTED`` with ``error``."""
        return self._finish(SCHEDULED, INTERRUPTED, None, error, None)

    def _cancel(self) -> bool:
        """End a ``SCHEDULED`` task that never ran as ``INTERRUPTED`` (a new exception)."""
        return self._finish(SCHEDULED, INTERRUPTED, None, InterruptException(self._interrupt), None)

    def _add_callback(self, callback: Any) -> bool:
        """Register ``callback`` for completion; ``False`` (not registered) if already done."""
        lock = self._lock
        lock.acquire()
        try:
            if self._done:
                return False
            callbacks = self._callbacks
            if callbacks is None:
                self._callbacks = [callback]
            else:
                callbacks.append(callback)
        finally:
            lock.release()
        return True

    def _remove_callback(self, callback: Any) -> None:
        lock = self._lock
        lock.acquire()
        try:
            callbacks = self._callbacks
            if callbacks is not None:
                try:
                    callbacks.remove(callback)
                except ValueError:
                    pass
        finally:
            lock.release()

    # -- execution ----------------------------------------------------------------------------

    def _execute(self, host: TaskScheduler | None) -> None:
        """Run a task already moved to ``RUNNING`` on the calling thread (SEMANTICS §3.2).

        ``host`` is the scheduler to register the thread with, or ``None`` to keep the
        thread's current registration (workers, inline continuations). A ``BaseException``
        that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``) ends the task
        ``FAILED``; it is then re-raised here after the task is finalised, unless the thread
        is a worker, where it is printed to ``sys.stderr`` and goes no further.
        """
        # Step 1: register the thread, name it, apply the inherited PContext.
        try:
            record: ThreadRecord = thread_state.record
        except AttributeError:
            record = thread_record()
        previous_task = record.task
        previous_scheduler = record.scheduler
        record.task = self
        if host is not None:
            record.scheduler = host
        worker = record.worker
        thread: threading.Thread | None
        previous_name: str | None = None
        if worker is not None:
            if worker.pending is not None:
                # An inline continuation on a worker that kept queued continuations for
                # itself: they must not wait for this one.
                worker.scheduler._flush(worker)
            thread = worker.thread
        elif _get_ident() == _main_ident:
            thread = None  # the main thread is never renamed
        else:
            thread = _current_thread()
        if thread is not None:
            previous_name = thread.name
            thread.name = self._name or f"Task_{self._id}"
        self._thread = thread
        context = self._pcontext
        depth = -1 if context is None else inherit(context, record)
        # Steps 2 and 3: check the interrupt, call the target.
        escaped: BaseException | None = None
        result: Any = None
        error: Exception | None = None
        tb: TracebackType | None = None
        interrupt = self._interrupt
        if interrupt._signal_id is not None:
            state = INTERRUPTED
            error = interrupt._exception
        else:
            try:
                fn = self._fn
                assert fn is not None and self._ctx is not None
                kwargs = self._kwargs
                if kwargs is None:
                    result = self._ctx.run(fn, self, *self._args)
                else:
                    result = self._ctx.run(fn, self, *self._args, **kwargs)
                state = COMPLETED
            except Exception as ex:
                error = ex
                tb = ex.__traceback__
                state = INTERRUPTED if _is_interruption(ex, interrupt) else FAILED
            except BaseException as ex:
                escaped = ex
                error = ThreadingException(f"the task's target raised {type(ex).__name__}")
                error.__cause__ = ex
                state = FAILED
        # Step 5: restore the registration, the name and the PContext stack.
        if depth >= 0:
            uninherit(record, depth)
        self._thread = None
        if thread is not None:
            thread.name = previous_name  # type: ignore[assignment]
        record.task = previous_task
        record.scheduler = previous_scheduler
        # Steps 4 and 6: record the outcome, then wake waiters and fire continuations. The
        # outcome is published under the task's lock after step 5, together with the "done"
        # flag, so whoever sees the task terminal also sees the thread's registration restored.
        self._finish(RUNNING, state, result, error, tb)
        if escaped is not None:
            if record.is_worker:
                _report_escape(self, escaped)
            else:
                try:
                    raise escaped
                finally:
                    escaped = None

    def run_synchronously(self) -> None:
        """Run the task to completion on the calling thread; return when it is terminal.

        A task queued on the current scheduler may be run this way: its queue entry is then
        skipped. The target's exceptions are recorded, not raised (a ``KeyboardInterrupt``
        or ``SystemExit`` is re-raised after the task is finalised, except on a worker).
        While the task runs, ``Task.current()`` returns it; afterwards it is restored.

        Raises:
            TaskCompletedError: the task is terminal.
            TaskAlreadyRunningError: the task is running.
            TaskAlreadyScheduledError: it is an armed continuation, a pending ``run_after``,
                or queued on a scheduler other than ``TaskScheduler.current()``.
        """
        state = self._state
        if state is SCHEDULED:
            scheduler = self._scheduler
            if scheduler is None or scheduler is not TaskScheduler.current():
                raise TaskAlreadyScheduledError()
            scheduler._unlink(self)
            if not self._transition(SCHEDULED, RUNNING):
                raise _state_error(self._state)
            self._execute(scheduler)
            return
        if state is not NOTSTARTED or not self._transition(NOTSTARTED, RUNNING):
            raise _state_error(self._state)
        # Off a worker, the thread runs for the scheduler the plan remembered, if any; a
        # worker keeps its own registration.
        self._execute(None if thread_record().is_worker else self._scheduler)

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(self, scheduler: TaskScheduler | None = None) -> None:
        """Queue a ``NOTSTARTED`` task; it is ``SCHEDULED`` when this returns.

        Never blocks. The scheduler is ``scheduler``; otherwise the one remembered from
        ``Task.create(scheduler=...).plan(...)``; otherwise that of the task's captured
        ``PContext`` if it is still open; otherwise ``TaskScheduler.current()``. A failed
        call leaves the task ``NOTSTARTED``, so it can be scheduled elsewhere.

        Raises:
            TaskAlreadyScheduledError: the task is ``SCHEDULED`` (armed continuations too).
            TaskCompletedError: the task is terminal.
            TaskAlreadyRunningError: the task is running.
            SchedulerClosedError: the chosen scheduler is closed.
        """
        state = self._state
        if state is not NOTSTARTED:
            raise _state_error(state)
        if scheduler is None:
            scheduler = self._default_scheduler()
        elif not isinstance(scheduler, TaskScheduler):
            raise TypeError(
                f"'scheduler' must be a TaskScheduler or None, not {type(scheduler).__name__}"
            )
        if scheduler.is_closed:
            raise SchedulerClosedError()
        with self._lock:
            state = self._state
            if state is not NOTSTARTED:
                raise _state_error(state)
            _check(NOTSTARTED, SCHEDULED)
            remembered = self._scheduler
            self._state = SCHEDULED
            self._scheduler = scheduler
        try:
            scheduler.queue(self)
        except BaseException:
            self._unschedule(remembered)
            raise

    def _unschedule(self, remembered: TaskScheduler | None) -> None:
        """Undo a scheduling whose ``queue()`` raised: the task was never queued.

        This restores the previous state rather than making a transition (SEMANTICS §3.1
        has no ``SCHEDULED → NOTSTARTED``): to everyone else the scheduling never happened.
        """
        with self._lock:
            if self._state is SCHEDULED:
                self._state = NOTSTARTED
                self._scheduler = remembered

    def _default_scheduler(self) -> TaskScheduler:
        """The scheduler ``schedule()`` without an argument uses (SEMANTICS §5.1)."""
        scheduler = self._scheduler
        if scheduler is not None:
            return scheduler
        context = self._pcontext
        if context is not None and not context._closed:
            return context.scheduler
        return TaskScheduler.current()

    def _launch(self, scheduler: TaskScheduler) -> None:
        """Schedule a task built by the caller and not yet visible to any other thread."""
        remembered = self._scheduler
        self._state = SCHEDULED
        self._scheduler = scheduler
        try:
            scheduler.queue(self)
        except BaseException:
            self._state = NOTSTARTED
            self._scheduler = remembered
            raise

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, /, interrupt: Interrupt | None = None) -> bool:
        """Block until the task is terminal, whichever terminal state.

        Blocks at most ``timeout`` seconds (``None``: no limit, ``0``: never blocks). A lazy
        task that has not started is started first; a ``NOTSTARTED`` task that is not lazy is
        simply waited for, since it may be scheduled later. On a worker the wait cooperates
        with the scheduler.

        Returns:
            ``True`` once the task is terminal; ``False`` on timeout or when ``interrupt`` is
            or becomes signaled (a signaled interrupt wins).

        Raises:
            ValueError: ``timeout`` is negative.
        """
        if self._done:
            if timeout is not None:
                deadline_for(timeout)
            if interrupt is None:
                return True
            validate_interrupt(interrupt)
            return interrupt._signal_id is None
        return self._wait(deadline_for(timeout), interrupt, timeout is None)

    def _wait(self, deadline: float | None, interrupt: Interrupt | None, unbounded: bool) -> bool:
        if interrupt is not None:
            validate_interrupt(interrupt)
            if interrupt._signal_id is not None:
                return False
        if not self._done:
            self._help(unbounded and (interrupt is None or not interrupt._can_signal))
        return self._block(deadline, interrupt)

    def _help(self, may_inline: bool) -> None:
        """Start the awaited task if the waiter is what starts it (SEMANTICS §5.5).

        A lazy ``NOTSTARTED`` task is started (inline when the waiter is a running task). A
        task still queued on the waiting task's own scheduler is run inline when the wait has
        no deadline and no interrupt (``may_inline``), since the waiter blocks until it ends.
        """
        state = self._state
        if state is NOTSTARTED:
            if self._lazy:
                self._start_lazy()
        elif state is SCHEDULED and may_inline:
            record = thread_record()
            scheduler = self._scheduler
            if record.task is not None and scheduler is not None and scheduler is record.scheduler:
                try:
                    scheduler.prioritise(self)
                except TaskException:
                    pass  # taken by a worker meanwhile, or closing: just wait

    def _start_lazy(self) -> None:
        record = thread_record()
        if record.task is not None:
            scheduler = TaskScheduler.current()  # prioritise() then runs it inline
        else:
            scheduler = self._default_scheduler()
        try:
            scheduler.prioritise(self)
        except SchedulerClosedError:
            if scheduler is TaskScheduler.default():
                raise
            try:
                TaskScheduler.default().prioritise(self)
            except SchedulerClosedError:
                raise
            except TaskException:
                pass
        except TaskException:
            pass  # started by someone else meanwhile: just wait

    def _block(self, deadline: float | None, interrupt: Interrupt | None) -> bool:
        """Park until done, the deadline or the interrupt. The interrupt was checked already."""
        if self._done:
            return True
        if deadline is not None and deadline <= monotonic():
            return False
        waker = Waker()
        if not self._add_callback(waker):
            return True
        watching = interrupt is not None and interrupt._can_signal
        if watching:
            interrupt._subscribe(waker)  # type: ignore[union-attr]
        try:
            while True:
                if interrupt is not None and interrupt._signal_id is not None:
                    return False
                if self._done:
                    return True
                if not park(waker.lock, deadline):
                    if interrupt is not None and interrupt._signal_id is not None:
                        return False
                    return self._done
        finally:
            if not self._done:
                self._remove_callback(waker)
            if watching:
                interrupt._unsubscribe(waker)  # type: ignore[union-attr]

    # -- continuations ------------------------------------------------------------------------

    def continue_with(
        self,
        options: ContinuationOptions,
        fn: Callable[Concatenate[Task[R], Task[T], P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[R]:
        """Create and return an armed continuation (``SCHEDULED``) of this task.

        When this task becomes terminal in a state selected by ``options``, the continuation
        runs ``fn(continuation, antecedent, *args, **kwargs)``: inline on the thread that
        finished this task with ``INLINE`` (``DEFAULT`` includes it), otherwise queued on
        ``TaskScheduler.current()`` as seen by that thread. In any other terminal state it
        becomes ``INTERRUPTED`` without running. If this task is already terminal, the
        decision is made now, on the calling thread. Never blocks (except by running an
        inline continuation). The continuation's interrupt is ``Interrupt.none()``; only this
        task's terminal state decides.

        Raises:
            TypeError: ``fn`` is not callable or ``options`` is not a ContinuationOptions.
            ValueError: ``options`` has unknown flags.
        """
        mask = check_options(options)
        _check_callable(fn)
        name, target = _names_of(fn)
        continuation: Task[R] = _new(fn, (self, *args), kwargs or None, name, _NONE, False, target)
        continuation._state = SCHEDULED  # armed at once; no other thread sees it yet
        if not self._done:
            trigger = Then(continuation, mask)
            if self._add_callback(trigger):
                return continuation
        # Already terminal: decide now, on this thread (no trampoline: the caller's nesting).
        decide(continuation, mask, self)
        return continuation

    # -- static methods -----------------------------------------------------------------------

    @staticmethod
    def current() -> Task[Any] | None:
        """Return the task running on the calling thread, or ``None``.

        ``None`` again once inline or synchronous execution on a non-worker thread is over.
        """
        return thread_record().task

    @staticmethod
    def create(
        *,
        name: str | None = None,
        interrupt: Interrupt | None = None,
        scheduler: TaskScheduler | None = None,
        lazy: bool = False,
    ) -> TaskProto:
        """Return a :class:`TaskProto` with these settings (a shared one for all defaults)."""
        if name is None and interrupt is None and scheduler is None and not lazy:
            return _DEFAULT_PROTO
        return TaskProto(name, interrupt, scheduler, lazy)

    @staticmethod
    def plan(
        fn: Callable[Concatenate[Task[R], P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Task[R]:
        """Create a ``NOTSTARTED`` task that will call ``fn(task, *args, **kwargs)``.

        Its name is the function name of ``fn``. Same as ``Task.create().plan(...)``.
        """
        _check_callable(fn)
        name, target = _names_of(fn)
        return _new(fn, args, kwargs or None, name, _NONE, False, target)

    @staticmethod
    def run(
        fn: Callable[Concatenate[Task[R], P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Task[R]:
        """Create a task calling ``fn(task, *args, **kwargs)`` and schedule it.

        The scheduler is that of ``PContext.current()`` if it is not the thread's root,
        otherwise ``TaskScheduler.current()``. Never blocks.

        Returns:
            The task, ``SCHEDULED`` (or already running or finished).

        Raises:
            SchedulerClosedError: the chosen scheduler is closed.
        """
        _check_callable(fn)
        name, target = _names_of(fn)
        new_task: Task[R] = _new(fn, args, kwargs or None, name, _NONE, False, target)
        new_task._launch(_run_scheduler(new_task._pcontext))
        return new_task

    @staticmethod
    def run_after(
        time: float,
        fn: Callable[Concatenate[Task[R], P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[R]:
        """Like :meth:`run`, but the target starts no earlier than ``time`` seconds from now.

        See :meth:`TaskProto.run_after`.
        """
        return _DEFAULT_PROTO.run_after(time, fn, *args, **kwargs)

    @staticmethod
    def from_result(result: R) -> Task[R]:
        """Return a task already ``COMPLETED`` with ``result``."""
        done: Task[R] = _new(None, (), None, None, _NONE, False, "")
        done._ctx = None
        done._state = COMPLETED
        done._result = result
        done._done = True
        return done

    @staticmethod
    def wait_any(
        tasks: Sequence[Task[Any]],
        timeout: float | None = None,
        /,
        fail_on_interrupt: bool = False,
        interrupt: Interrupt | None = None,
    ) -> bool:
        """Block until at least one of ``tasks`` is terminal.

        Blocks at most ``timeout`` seconds; lazy tasks that have not started are started. The
        wait cooperates with the scheduler and leaves no registration behind.

        Returns:
            ``True`` once a task is terminal; ``False`` on timeout, on interrupt, and at once
            for an empty sequence.

        Raises:
            AwaitedTaskInterruptedError: ``fail_on_interrupt`` and a task is ``INTERRUPTED``.
            AggregateException: tasks are ``FAILED``; their exceptions, in sequence order.
            ValueError: ``timeout`` is negative.
        """
        deadline = deadline_for(timeout)
        items = _task_tuple(tasks)
        validate_interrupt(interrupt)
        if interrupt is not None and interrupt._signal_id is not None:
            return False
        if not items:
            return False
        for item in items:
            if item._state is NOTSTARTED and item._lazy:
                item._start_lazy()
        if not any(item._done for item in items) and not _wait_any(items, deadline, interrupt):
            return False
        _raise_failures(items, fail_on_interrupt)
        return True

    @staticmethod
    def wait_all(
        tasks: Sequence[Task[Any]],
        timeout: float | None = None,
        /,
        fail_on_interrupt: bool = False,
        interrupt: Interrupt | None = None,
    ) -> bool:
        """Block until every one of ``tasks`` is terminal.

        Blocks at most ``timeout`` seconds in total; lazy tasks that have not started are
        started. ``INTERRUPTED`` tasks count as finished. The wait cooperates with the
        scheduler and leaves no registration behind.

        Returns:
            ``True`` once all are terminal (at once for an empty sequence); ``False`` on
            timeout or interrupt.

        Raises:
            AwaitedTaskInterruptedError: ``fail_on_interrupt`` and a task is ``INTERRUPTED``.
            AggregateException: tasks are ``FAILED``; their exceptions, in sequence order
                (interrupted tasks never appear in it).
            ValueError: ``timeout`` is negative.
        """
        deadline = deadline_for(timeout)
        items = _task_tuple(tasks)
        validate_interrupt(interrupt)
        if interrupt is not None and interrupt._signal_id is not None:
            return False
        for item in items:
            if item._state is NOTSTARTED and item._lazy:
                item._start_lazy()
        unbounded = timeout is None and (interrupt is None or not interrupt._can_signal)
        for item in items:
            if not item._done and not item._wait(deadline, interrupt, unbounded):
                return False
        if interrupt is not None and interrupt._signal_id is not None:
            return False
        _raise_failures(items, fail_on_interrupt)
        return True

    @staticmethod
    def with_any(
        tasks: Sequence[Task[Any]],
        /,
        options: ContinuationOptions = ContinuationOptions.ON_COMPLETED_SUCCESSFULLY,
        interrupt: Interrupt | None = None,
    ) -> ContinuationProto:
        """Return ``ContinuationProto(tasks, ContinueWhen.ANY, options=..., interrupt=...)``."""
        return ContinuationProto(tasks, ContinueWhen.ANY, options=options, interrupt=interrupt)

    @staticmethod
    def with_all(
        tasks: Sequence[Task[Any]],
        /,
        options: ContinuationOptions = ContinuationOptions.ON_COMPLETED_SUCCESSFULLY,
        interrupt: Interrupt | None = None,
    ) -> ContinuationProto:
        """Return ``ContinuationProto(tasks, ContinueWhen.ALL, options=..., interrupt=...)``."""
        return ContinuationProto(tasks, ContinueWhen.ALL, options=options, interrupt=interrupt)


def _run_scheduler(context: PContext | None) -> TaskScheduler:
    """SEMANTICS §5.1 for ``run``: the captured non-root context's scheduler, else the current."""
    if context is not None:
        return context.scheduler
    try:
        scheduler: TaskScheduler | None = thread_state.record.scheduler
    except AttributeError:
        scheduler = None
    return scheduler or TaskScheduler.default()


def _new(
    fn: Callable[..., Any] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    name: str | None,
    interrupt: Interrupt,
    lazy: bool,
    target: str,
) -> Task[Any]:
    """Build a task without the validation of the public constructor."""
    new_task: Task[Any] = _object_new(Task)
    new_task._setup(fn, args, kwargs, name, interrupt, lazy, target)
    return new_task


def _wait_any(
    items: tuple[Task[Any], ...], deadline: float | None, interrupt: Interrupt | None
) -> bool:
    """Park until one of ``items`` is done; one :class:`Waker` registered on each."""
    if deadline is not None and deadline <= monotonic():
        return False
    waker = Waker()
    registered: list[Task[Any]] = []
    watching = interrupt is not None and interrupt._can_signal
    try:
        for item in items:
            if not item._add_callback(waker):
                return True
            registered.append(item)
        if watching:
            interrupt._subscribe(waker)  # type: ignore[union-attr]
        while True:
            if interrupt is not None and interrupt._signal_id is not None:
                return False
            if any(item._done for item in items):
                return True
            if not park(waker.lock, deadline):
                if interrupt is not None and interrupt._signal_id is not None:
                    return False
                return any(item._done for item in items)
    finally:
        for item in registered:
            item._remove_callback(waker)
        if watching:
            interrupt._unsubscribe(waker)  # type: ignore[union-attr]


def _raise_failures(items: tuple[Task[Any], ...], fail_on_interrupt: bool) -> None:
    """SEMANTICS §7: report interrupted and failed tasks after a successful multi-wait."""
    if fail_on_interrupt and any(item._state is INTERRUPTED for item in items):
        raise AwaitedTaskInterruptedError()
    failures = [item._exception for item in items if item._state is FAILED]
    if failures:
        raise AggregateException(failures)


def _marker(continuation: Task[None], antecedents: Sequence[Task[Any]]) -> None:
    """The target of a marker continuation: nothing to do."""


@final
class ContinuationProto:
    """A recipe for continuations over several tasks (SEMANTICS §6.2).

    Normally obtained from :meth:`Task.with_any` or :meth:`Task.with_all`. The continuation
    runs when the condition is met: with ``ANY``, as soon as one antecedent ends in a state
    selected by ``options``; with ``ALL``, when every antecedent is terminal and all are in
    selected states. Otherwise, or if ``interrupt`` is signaled before it starts, it becomes
    ``INTERRUPTED`` without running.

    Args:
        tasks: the antecedents, copied into a tuple.
        when: ``ContinueWhen.ANY`` or ``ContinueWhen.ALL``.
        options: the selected states, and ``INLINE``.
        name: the continuation's name; defaults to the function name.
        interrupt: the continuation's interrupt; defaults to ``Interrupt.none()``.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: ``when`` is not a ``ContinueWhen`` or ``options`` has unknown flags.
    """

    __slots__ = ("_interrupt", "_mask", "_name", "_tasks", "_when")

    def __init__(
        self,
        tasks: Sequence[Task[Any]],
        when: ContinueWhen,
        /,
        options: ContinuationOptions = ContinuationOptions.ON_COMPLETED_SUCCESSFULLY,
        name: str | None = None,
        interrupt: Interrupt | None = None,
    ) -> None:
        self._tasks = _task_tuple(tasks)
        self._when = ContinueWhen(when)
        self._mask = check_options(options)
        _check_name(name)
        validate_interrupt(interrupt)
        self._name = name or None
        self._interrupt = interrupt or _NONE

    def run(
        self,
        fn: Callable[Concatenate[Task[R], Sequence[Task[Any]], P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[R]:
        """Return an armed continuation that calls ``fn(continuation, tasks, *args, **kwargs)``.

        ``tasks`` is the tuple of antecedents. It runs inline on the triggering thread with
        ``INLINE``, otherwise it is queued on ``TaskScheduler.current()`` as seen by that
        thread. Never blocks (except by running an inline continuation).
        """
        _check_callable(fn)
        name, target = _names_of(fn)
        return self._arm(fn, (self._tasks, *args), kwargs or None, self._name or name, target, 0)

    @overload
    def plan(self, /) -> Task[None]: ...

    @overload
    def plan(
        self,
        fn: Callable[Concatenate[Task[R], Sequence[Task[Any]], P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[R]: ...

    def plan(self, fn: Callable[..., Any] | None = None, /, *args: Any, **kwargs: Any) -> Task[Any]:
        """Without ``fn``, return an armed marker; with ``fn``, the same as :meth:`run`.

        The marker ends ``COMPLETED`` with ``None`` when the condition is met (it runs inline,
        doing nothing) and ``INTERRUPTED`` when it can no longer be met or the interrupt is
        signaled first.
        """
        if fn is None:
            return self._arm(_marker, (self._tasks,), None, self._name, "", INLINE)
        return self.run(fn, *args, **kwargs)

    def _arm(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        name: str | None,
        target: str,
        extra: int,
    ) -> Task[Any]:
        continuation = _new(fn, args, kwargs, name, self._interrupt, False, target)
        continuation._state = SCHEDULED  # armed at once; no other thread sees it yet
        Gate(continuation, self._tasks, self._when, self._mask | extra).arm()
        return continuation


# -- protos ---------------------------------------------------------------------------------------


@final
class TaskProto:
    """An immutable recipe for tasks, normally obtained from :meth:`Task.create`.

    Instances are never modified after construction, so one can be shared between threads.

    Args:
        name: the name of the tasks; defaults to the function name.
        interrupt: their interrupt; defaults to ``Interrupt.none()``.
        scheduler: where :meth:`run` puts them, and the default of ``schedule()`` for
            planned ones.
        lazy: planned tasks start only when awaited; ``None`` means ``False``.

    Raises:
        TypeError: an argument of the wrong type.
    """

    __slots__ = ("_interrupt", "_lazy", "_name", "_scheduler")

    def __init__(
        self,
        name: str | None = None,
        interrupt: Interrupt | None = None,
        scheduler: TaskScheduler | None = None,
        lazy: bool | None = None,
    ) -> None:
        _check_name(name)
        validate_interrupt(interrupt)
        if scheduler is not None and not isinstance(scheduler, TaskScheduler):
            raise TypeError(
                f"'scheduler' must be a TaskScheduler or None, not {type(scheduler).__name__}"
            )
        self._name = name or None
        self._interrupt = interrupt or _NONE
        self._scheduler = scheduler
        self._lazy = bool(lazy)

    @property
    def name(self) -> str | None:
        """The name given to tasks, or ``None`` for the function name."""
        return self._name

    @property
    def interrupt(self) -> Interrupt:
        """The interrupt given to tasks."""
        return self._interrupt

    @property
    def scheduler(self) -> TaskScheduler | None:
        """The scheduler of the proto, if any."""
        return self._scheduler

    @property
    def lazy(self) -> bool:
        """Whether planned tasks are lazy."""
        return self._lazy

    def __repr__(self) -> str:
        return (
            f"TaskProto(name={self._name!r}, interrupt={self._interrupt!r}, "
            f"scheduler={self._scheduler!r}, lazy={self._lazy!r})"
        )

    def plan(
        self, fn: Callable[Concatenate[Task[R], P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Task[R]:
        """Create a ``NOTSTARTED`` task calling ``fn(task, *args, **kwargs)``.

        It gets the proto's name (else the function name), interrupt and laziness, and
        remembers the proto's scheduler as its default for ``schedule()``.
        """
        _check_callable(fn)
        name, target = _names_of(fn)
        planned: Task[R] = _new(
            fn, args, kwargs or None, self._name or name, self._interrupt, self._lazy, target
        )
        planned._scheduler = self._scheduler
        return planned

    def _resolve(self, context: PContext | None) -> TaskScheduler:
        """SEMANTICS §5.1: the proto's scheduler, the non-root context's, or the current."""
        return self._scheduler or _run_scheduler(context)

    def run(
        self, fn: Callable[Concatenate[Task[R], P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Task[R]:
        """:meth:`plan` the task, then schedule it; never blocks.

        The scheduler is the proto's; otherwise that of ``PContext.current()`` if it is not
        the thread's root; otherwise ``TaskScheduler.current()``. ``lazy`` has no effect.

        Raises:
            SchedulerClosedError: the chosen scheduler is closed.
        """
        _check_callable(fn)
        name, target = _names_of(fn)
        new_task: Task[R] = _new(
            fn, args, kwargs or None, self._name or name, self._interrupt, False, target
        )
        new_task._launch(self._resolve(new_task._pcontext))
        return new_task

    def run_after(
        self,
        time: float,
        fn: Callable[Concatenate[Task[R], P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[R]:
        """Return at once a ``SCHEDULED`` task whose target starts ``time`` seconds from now.

        The task has the proto's name (else the function name) and interrupt. When the delay
        ends it is queued on the scheduler chosen as for :meth:`run` (chosen now; the
        default scheduler if that one is closed by then). The delay runs on the library's
        shared timer and occupies no worker. If the interrupt is signaled before the delay
        ends, the task becomes ``INTERRUPTED`` without running. ``time == 0`` queues at once.

        Raises:
            ValueError: ``time`` is negative.
            SchedulerClosedError: the chosen scheduler is closed.
        """
        _check_delay(time)
        _check_callable(fn)
        name, target = _names_of(fn)
        delayed: Task[R] = _new(
            fn, args, kwargs or None, self._name or name, self._interrupt, False, target
        )
        scheduler = self._resolve(delayed._pcontext)
        if scheduler.is_closed:
            raise SchedulerClosedError()
        if time == 0:
            delayed._launch(scheduler)
            return delayed
        delayed._state = SCHEDULED  # armed; no other thread sees it yet
        interrupt = delayed._interrupt
        if interrupt._signal_id is not None:
            delayed._interrupt_unrun(interrupt._exception)
            return delayed
        waiting = Delayed(delayed, scheduler)
        if interrupt._can_signal:
            # Subscribed before the timer exists, so due() always finds it to remove.
            interrupt._subscribe(waiting.interrupted)
        waiting.handle = call_later(time, waiting.due)
        if interrupt._signal_id is not None:
            waiting.interrupted()
        return delayed


_DEFAULT_PROTO: Final = TaskProto()


# -- the task decorator ---------------------------------------------------------------------------


def _call_plain(
    running: Task[R], fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> R:
    """The target of ``@task`` tasks: check the interrupt, then call ``fn`` without the task."""
    running._interrupt.raise_if_signaled()
    return fn(*args, **kwargs)


def task(fn: Callable[P, R]) -> Callable[P, Task[R]]:
    """Turn ``fn`` into a function that starts ``Task.run`` of it and returns the task.

    The task checks its interrupt, then calls ``fn(*args, **kwargs)``: ``fn`` does not
    receive the task. Tasks are named after ``fn``; the returned function keeps ``fn``'s
    metadata (``functools.wraps``).

    Raises:
        TypeError: ``fn`` is not callable.
    """
    _check_callable(fn)
    name, target = _names_of(fn)

    @functools.wraps(fn)
    def start(*args: P.args, **kwargs: P.kwargs) -> Task[R]:
        new_task: Task[R] = _new(_call_plain, (fn, args, kwargs), None, name, _NONE, False, target)
        new_task._launch(_run_scheduler(new_task._pcontext))
        return new_task

    return start


for _cls in (Task, TaskProto, ContinuationProto, TaskState):
    _cls.__module__ = "runtime.threading.tasks"
task.__module__ = "runtime.threading.tasks"
del _cls
