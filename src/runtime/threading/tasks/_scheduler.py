"""Schedulers: the :class:`TaskScheduler` base, the worker pool and the thread registry.

Layering inside the tasks layer: this module is the lowest (``_task`` and ``_context`` import
it; it refers to ``Task`` only for type checking). It talks to tasks through a handful of
private members (``_state``, ``_scheduler``, ``_begin_queued``, ``_execute``), so the task's
life cycle stays in ``_task``.

The thread registry
    One record per thread (:func:`thread_record`, kept in a :class:`threading.local`) says
    which task the thread is executing, which scheduler it belongs to, and whether it is a
    worker. Records live and die with their threads, so a finished thread leaves nothing
    behind. The same record also carries the thread's ``PContext`` stack and the
    continuation trampoline, so a task's execution reads one thread-local object.

The worker model of :class:`ConcurrentTaskScheduler` (SEMANTICS §5.2 to §5.4)
    ``max_parallelism`` *slots*. A worker must hold a slot to run task code. Idle workers keep
    their slot for ``keep_alive`` seconds (once) and are handed new work directly, through a
    per-worker lock, before any new thread is started (a worker finishing a task keeps the
    continuations it queues for itself, as the idle worker it is about to be, sparing a
    thread wake-up per link of a chain). A worker whose task blocks in a
    library wait may *suspend*: it gives its slot away (to the longest-waiting resumer, else
    to a queued task, on a new worker) and, when the wait ends, queues as a *resumer* until a
    slot is handed back to it. Resumers come before queued tasks. Nothing polls.
"""

from __future__ import annotations

import abc
import itertools
import os
import sys
import threading
import traceback
import weakref
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, final

from .. import _constants
from .._blocking import cond_wait, install_hook
from .._errors import SchedulerClosedError, TaskAlreadyStartedOrScheduledError, ThreadingException

if TYPE_CHECKING:
    from ._context import PContext
    from ._task import Task

__all__ = (
    "ConcurrentTaskScheduler",
    "TaskScheduler",
    "ThreadRecord",
    "thread_record",
    "thread_state",
)

_allocate_lock = threading.Lock
_main_thread: Final = threading.main_thread()
# The longest timeout a builtin lock accepts.
_TIMEOUT_MAX: Final = threading.TIMEOUT_MAX

#: The context manager returned by ``suspend()`` when there is nothing to suspend.
_NO_SUSPENSION: Final[AbstractContextManager[Any]] = nullcontext()


@final
class ThreadRecord:
    """Per-thread execution state. Each field is written only by its own thread."""

    __slots__ = (
        "contexts",
        "deferred",
        "fire_depth",
        "is_worker",
        "root_context",
        "scheduler",
        "task",
        "worker",
    )

    def __init__(self) -> None:
        #: The task this thread is executing (the innermost one, for inline execution).
        self.task: Task[Any] | None = None
        #: The scheduler the thread executes for: a worker's scheduler for the worker's whole
        #: life, or the scheduler of an inline execution while it lasts.
        self.scheduler: TaskScheduler | None = None
        #: Whether the thread is a scheduler worker (a ConcurrentTaskScheduler thread, or a
        #: thread inside ``TaskScheduler._run``).
        self.is_worker = False
        #: The ConcurrentTaskScheduler worker running on this thread, if any.
        self.worker: _Worker | None = None
        #: The PContext stack (``_context``), created on first use; the root is not on it.
        self.contexts: list[PContext] | None = None
        #: This thread's root PContext (``_context``), created on first use.
        self.root_context: PContext | None = None
        #: Continuation trampoline (``_continuations``): nesting depth of inline firing, and
        #: the triggers deferred by the deepest level to the outermost one.
        self.fire_depth = 0
        self.deferred: deque[Any] | None = None


#: Holds each thread's ThreadRecord as ``thread_state.record``; a record dies with its thread.
#: Hot paths read ``thread_state.record`` directly (one thread-local lookup, then plain slot
#: accesses) and fall back to :func:`thread_record` on AttributeError.
thread_state: Final = threading.local()


def thread_record() -> ThreadRecord:
    """The calling thread's record, created on first use."""
    try:
        return thread_state.record  # type: ignore[no-any-return]
    except AttributeError:
        record = thread_state.record = ThreadRecord()
        return record


def _report_exception(header: str) -> None:
    """Print the exception being handled to stderr, under ``header``."""
    try:
        print(header, file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
    except Exception:
        pass  # stderr is gone (interpreter shutdown): nothing left to report with


class TaskScheduler(abc.ABC):
    """The abstract base of schedulers; it also tracks which thread runs which task.

    The tracking is a per-thread record (see the module docstring) that dies with its thread,
    so the registry holds threads weakly and a finished thread leaves no entry behind.

    Subclasses call ``TaskScheduler.__init__()`` *after* validating their own arguments: it
    creates the synchronization lock and registers the finalizer, which calls
    :meth:`__finalize__` at interpreter exit (a scheduler that is garbage-collected earlier
    holds no thread, since workers keep their scheduler alive, so there is nothing left to
    release). The finalizer tolerates half-initialised objects.
    """

    __slots__ = ("__weakref__", "_finalized", "_finalizer", "_finalizing", "_lock")

    def __init__(self) -> None:
        # The scheduler's internal lock; subclasses guard their own state with it.
        self._lock = threading.RLock()
        self._finalizing = False
        self._finalized = False
        # Holds the scheduler weakly: the finalizer must not keep it alive.
        self._finalizer = weakref.finalize(self, _finalize, weakref.ref(self))

    # -- properties ---------------------------------------------------------------------------

    @property
    def synchronization_lock(self) -> threading.RLock:
        """The scheduler's internal lock."""
        return self._lock

    @property
    @abc.abstractmethod
    def is_closed(self) -> bool:
        """Whether the scheduler has been closed (it accepts no more tasks)."""

    @property
    def finalized(self) -> bool:
        """Whether the finalizer has run."""
        return getattr(self, "_finalized", False)

    @property
    def finalizing(self) -> bool:
        """Whether the finalizer is running now."""
        return getattr(self, "_finalizing", False)

    # -- static helpers -----------------------------------------------------------------------

    @staticmethod
    def default() -> TaskScheduler:
        """Return the process-wide default :class:`ConcurrentTaskScheduler`.

        It is created on first use, and created again if the previous one has been closed or
        is being finalized. Creation is thread-safe.
        """
        scheduler = _default
        if scheduler is not None and not scheduler._closed and not scheduler._finalizing:
            return scheduler
        return _new_default()

    @staticmethod
    def current() -> TaskScheduler:
        """Return the scheduler of the task running on the calling thread, else :meth:`default`.

        A worker belongs to its scheduler while it runs tasks and their continuations; a
        ``PContext`` does not change the result.
        """
        try:
            scheduler = thread_state.record.scheduler
        except AttributeError:
            scheduler = None
        if scheduler is None:
            return TaskScheduler.default()
        return scheduler  # type: ignore[no-any-return]

    @staticmethod
    def current_task() -> Task[Any] | None:
        """Return the task running on the calling thread, or ``None``; as ``Task.current()``."""
        return thread_record().task

    # -- abstract members ---------------------------------------------------------------------

    @abc.abstractmethod
    def queue(self, task: Task[Any]) -> None:
        """Accept a task that ``Task.schedule`` has just moved to ``SCHEDULED``; run it later.

        Raises:
            SchedulerClosedError: the scheduler is closed.
        """

    @abc.abstractmethod
    def prioritise(self, task: Task[Any]) -> None:
        """Start an awaited task as soon as possible (SEMANTICS §5.5).

        From a running task on a thread of this scheduler, run ``task`` inline when it is
        ``NOTSTARTED`` or still waiting in this scheduler's queue. From elsewhere, schedule a
        ``NOTSTARTED`` task here and leave a task queued here alone.

        Raises:
            TaskAlreadyStartedOrScheduledError: ``task`` is running, terminal, or scheduled
                elsewhere.
            SchedulerClosedError: the scheduler is closed.
        """

    @abc.abstractmethod
    def suspend(self) -> AbstractContextManager[Any]:
        """Return a context in which the calling worker holds no slot (SEMANTICS §5.3).

        A no-op context when the calling thread is not a worker of this scheduler running a
        task, or is already suspended.
        """

    @abc.abstractmethod
    def __finalize__(self) -> None:
        """Release the scheduler's resources; called once by the finalizer."""

    # -- protected helpers for subclasses -----------------------------------------------------

    def _register(self) -> None:
        """Register the calling thread as belonging to this scheduler."""
        thread_record().scheduler = self

    def _unregister(self) -> None:
        """Remove the calling thread's registration, if it is with this scheduler."""
        record = thread_record()
        if record.scheduler is self:
            record.scheduler = None
            record.task = None

    def _run(self, task: Task[Any]) -> None:
        """Execute ``task`` on the calling thread as a worker of this scheduler.

        Registers the thread as running ``task`` (named after it, except the main thread),
        runs it to completion and restores the previous registration and name. A task that is
        no longer ``SCHEDULED`` (or ``NOTSTARTED``) is skipped silently. While it runs,
        library waits call :meth:`suspend` when they block.
        """
        record = thread_record()
        saved = (record.scheduler, record.is_worker)
        record.scheduler = self
        record.is_worker = True
        previous_hook = install_hook(_SchedulerAdapterHook(self)) if record.worker is None else None
        try:
            task._run_by(self)
        finally:
            if record.worker is None:
                install_hook(previous_hook)
            record.scheduler, record.is_worker = saved

    def _resume(self, task: Task[Any]) -> None:
        """Re-register ``task`` as the task running on the calling thread."""
        record = thread_record()
        record.task = task
        record.scheduler = self

    def _refresh_task(self) -> None:
        """Update the calling thread's name from the name of the task it is running."""
        task = thread_record().task
        thread = threading.current_thread()
        if task is not None and thread is not _main_thread:
            thread.name = task.name

    def _unlink(self, task: Task[Any]) -> bool:
        """Remove ``task`` from this scheduler's queue; ``True`` if it was there.

        The base class keeps no queue; subclasses that do override this so a task run
        synchronously or inline leaves no entry behind.
        """
        return False

    def _finalize_now(self) -> None:
        if getattr(self, "_finalized", True) or getattr(self, "_finalizing", True):
            return  # already done, or the constructor did not get this far
        self._finalizing = True
        try:
            self.__finalize__()
        except Exception:
            _report_exception(f"Exception finalizing {type(self).__name__}:")
        finally:
            self._finalizing = False
            self._finalized = True


def _finalize(ref: weakref.ReferenceType[TaskScheduler]) -> None:
    """The finalizer: runs ``__finalize__`` if the scheduler still exists (interpreter exit)."""
    scheduler = ref()
    if scheduler is not None:
        scheduler._finalize_now()


@final
class _SchedulerAdapterHook:
    """The blocking hook installed by :meth:`TaskScheduler._run` for custom schedulers."""

    __slots__ = ("_scheduler",)

    def __init__(self, scheduler: TaskScheduler) -> None:
        self._scheduler = scheduler

    def suspend_now(self) -> bool:
        return False

    def suspend(self) -> AbstractContextManager[Any]:
        return self._scheduler.suspend()


# -- the default scheduler ----------------------------------------------------------------------

# Guards the creation of _default (reads are lock-free: a reference is read atomically).
_default_lock = threading.Lock()
_default: ConcurrentTaskScheduler | None = None


def _reset_after_fork() -> None:
    """In a forked child: forget the parent's default scheduler, whose workers do not exist.

    The child's first ``TaskScheduler.default()`` creates a new one. Other schedulers of the
    parent are unusable in the child.
    """
    global _default, _default_lock, _exit_hook_lock
    _default = None
    _default_lock = threading.Lock()
    _exit_hook_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# -- interpreter shutdown -------------------------------------------------------------------

# Every live ConcurrentTaskScheduler, held weakly, for the shutdown hook.
_live: weakref.WeakSet[ConcurrentTaskScheduler] = weakref.WeakSet()
# Set when the interpreter starts shutting down: from then on idle workers exit at once
# instead of lingering for keep_alive, so non-daemon workers do not delay the exit. Read
# without a lock (a bool is read atomically).
_exiting = False
# Guards the one-time registration of the shutdown hook (not _default_lock: the default
# scheduler is created while that one is held).
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _at_shutdown() -> None:
    """Runs when the interpreter starts shutting down, before non-daemon threads are joined."""
    global _exiting
    _exiting = True
    for scheduler in list(_live):
        scheduler._release_idle()


def _watch_shutdown(scheduler: ConcurrentTaskScheduler) -> None:
    """Track ``scheduler`` for the shutdown hook, registering the hook on first use.

    ``threading._register_atexit`` is the hook ``concurrent.futures`` uses; it is registered
    when the first scheduler is created, never at import.
    """
    global _exit_hook_registered, _exiting
    _live.add(scheduler)
    if _exit_hook_registered:
        return
    with _exit_hook_lock:
        if _exit_hook_registered:
            return
        register: Any = getattr(threading, "_register_atexit", None)
        try:
            if register is not None:
                register(_at_shutdown)
        except RuntimeError:  # created while the interpreter is already shutting down
            _exiting = True
        _exit_hook_registered = True


def _new_default() -> TaskScheduler:
    global _default
    with _default_lock:
        scheduler = _default
        if scheduler is None or scheduler._closed or scheduler._finalizing:
            scheduler = ConcurrentTaskScheduler()
            _default = scheduler
        return scheduler


# -- ConcurrentTaskScheduler ----------------------------------------------------------------


@final
class _Worker:
    """One worker thread of a :class:`ConcurrentTaskScheduler`; also its blocking hook.

    ``wake`` is held while nobody has handed the worker anything: an idle worker blocks on it
    waiting for a task, a resuming worker waiting for a slot. A hand-off sets ``task`` (or
    leaves it ``None`` to say "exit") and releases ``wake``, under the scheduler's lock.
    """

    __slots__ = ("pending", "scheduler", "suspended", "task", "thread", "wake")

    def __init__(self, scheduler: ConcurrentTaskScheduler) -> None:
        self.scheduler = scheduler
        self.wake = _allocate_lock()
        self.wake.acquire()
        # The task handed to the idle worker; None with `wake` released means "exit".
        self.task: Task[Any] | None = None
        # Tasks queued by this worker itself while it finishes a task (its continuations),
        # kept for it instead of waking an idle worker for each; see queue(). Guarded by the
        # scheduler's lock.
        self.pending: list[Task[Any]] | None = None
        # Whether the worker's task is in a suspended wait (written by the worker only).
        self.suspended = False
        self.thread: threading.Thread | None = None

    # SchedulerHook (runtime.threading._blocking)

    def suspend_now(self) -> bool:
        """Whether a wait should suspend at once: work is waiting and no slot is free."""
        scheduler = self.scheduler
        return (
            not self.suspended
            and bool(scheduler._queue or scheduler._resumers)
            and not scheduler._idle
            and scheduler._active >= scheduler._max
        )

    def suspend(self) -> AbstractContextManager[Any]:
        """The suspension context, or a no-op one when already suspended (nested waits)."""
        if self.suspended or thread_record().task is None:
            return _NO_SUSPENSION
        return self

    def __enter__(self) -> None:
        self.scheduler._enter_suspension(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.scheduler._leave_suspension(self)


@final
class ConcurrentTaskScheduler(TaskScheduler):
    """A pool of worker threads with a fixed limit on concurrent execution.

    Tasks run on at most ``max_parallelism`` threads at once. A task given to :meth:`queue`
    goes to an idle worker if there is one, else to a new worker if a slot is free, else to
    a FIFO queue. Idle workers linger ``keep_alive`` seconds, then exit. Worker threads are
    non-daemon threads named after the task they run. A task blocked in a library wait gives
    its slot away (suspension), so waiting for other tasks of the same scheduler does not
    deadlock; see SEMANTICS §5.

    Args:
        max_parallelism: the number of slots; defaults to ``DEFAULT_PARALLELISM``.
        keep_alive: seconds an idle worker waits for new work before it exits; defaults to
            ``TASK_KEEP_ALIVE``. Both defaults are read when the scheduler is created.

    Raises:
        ValueError: ``max_parallelism < 1`` or a negative ``keep_alive``.
        TypeError: an argument of the wrong type.
    """

    __slots__ = (
        "_active",
        "_all_done",
        "_closed",
        "_idle",
        "_inflight",
        "_keep_alive",
        "_max",
        "_queue",
        "_resumers",
        "_started",
        "_suspended",
        "_thread_name",
        "_threads",
        "_workers",
    )

    # Numbers the schedulers, for their worker thread names.
    _serials: Final = itertools.count(1)

    def __init__(self, max_parallelism: int | None = None, keep_alive: float | None = None) -> None:
        if max_parallelism is None:
            max_parallelism = _constants.DEFAULT_PARALLELISM
        if isinstance(max_parallelism, bool) or not isinstance(max_parallelism, int):
            raise TypeError(
                f"'max_parallelism' must be an int, not {type(max_parallelism).__name__}"
            )
        if max_parallelism < 1:
            raise ValueError("Argument max_parallelism must be greater than 0")
        if keep_alive is None:
            keep_alive = _constants.TASK_KEEP_ALIVE
        if isinstance(keep_alive, bool) or not isinstance(keep_alive, (int, float)):
            raise TypeError(f"'keep_alive' must be a number, not {type(keep_alive).__name__}")
        if not keep_alive >= 0:
            raise ValueError("'keep_alive' must be a non-negative number")
        super().__init__()
        self._max = max_parallelism
        self._keep_alive = float(keep_alive)
        # Everything below is guarded by self._lock (the RLock of the base class).
        # Tasks waiting for a slot, in FIFO order.
        self._queue: deque[Task[Any]] = deque()
        # Idle workers: they hold a slot and block on their `wake` lock. Invariant: when a
        # worker is idle the queue is empty (queue() hands work to idle workers first).
        self._idle: list[_Worker] = []
        # Suspended workers whose wait has ended, waiting for a slot, longest-waiting first.
        # Invariant: non-empty only while every slot is held (_active == _max, no idle).
        self._resumers: deque[_Worker] = deque()
        # Slots held: workers running a task or idle. Invariant: _active <= _max.
        self._active = 0
        # Workers in a suspended wait (they hold no slot).
        self._suspended = 0
        # Live worker threads, from the decision to start one until its last step.
        self._threads = 0
        # Work accepted by queue() and not yet finished: queued, running or suspended.
        self._inflight = 0
        self._closed = False
        # Live workers (and, once closed, the ones that exited, for close() to join).
        self._workers: set[_Worker] = set()
        self._started = 0
        # Notified when _inflight or _threads drop on a closed scheduler (close() waits).
        self._all_done = threading.Condition(self._lock)
        self._thread_name = f"ConcurrentTaskScheduler-{next(ConcurrentTaskScheduler._serials)}"
        _watch_shutdown(self)

    # -- properties ---------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has started; a closed scheduler accepts no new tasks."""
        return self._closed

    @property
    def max_parallelism(self) -> int:
        """The number of slots: the most threads that run task code at once."""
        return self._max

    @property
    def keep_alive(self) -> float:
        """Seconds an idle worker waits for new work before it exits."""
        return self._keep_alive

    @property
    def active_threads(self) -> int:
        """Workers holding a slot (running a task or idle); never above ``max_parallelism``."""
        return self._active

    @property
    def suspended_threads(self) -> int:
        """Workers whose task is blocked in a suspended wait; they hold no slot."""
        return self._suspended

    @property
    def allocated_threads(self) -> int:
        """Live workers that are not suspended: the active ones plus resumers awaiting a slot."""
        with self._lock:
            return self._active + len(self._resumers)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<ConcurrentTaskScheduler {state} max_parallelism={self._max} "
            f"active={self._active} suspended={self._suspended} queued={len(self._queue)}>"
        )

    # -- queueing -----------------------------------------------------------------------------

    def queue(self, task: Task[Any]) -> None:
        """Accept a ``SCHEDULED`` task and run it on a worker.

        Hands the task to an idle worker if there is one; otherwise starts a new worker if a
        slot is free; otherwise appends it to the FIFO queue. Never blocks. A task queued by
        one of this scheduler's workers while it finishes a task (a continuation) is kept by
        that worker, which is about to be idle and takes it as soon as it is done, unless
        older queued work or a resumer comes first; see :meth:`_next`.

        Raises:
            SchedulerClosedError: the scheduler is closed.
            RuntimeError: no worker thread could be started (the task was not accepted).
        """
        try:
            record: ThreadRecord = thread_state.record
        except AttributeError:
            record = thread_record()
        own = record.worker
        # Explicit acquire()/release() on the hot paths: half the cost of a ``with`` block.
        lock = self._lock
        lock.acquire()
        try:
            if self._closed:
                raise SchedulerClosedError()
            self._inflight += 1
            if own is not None and own.scheduler is self and record.task is None:
                # Queued by one of our workers while it finishes a task (a continuation): that
                # worker is about to be free, so it keeps the task rather than waking another
                # thread; _next() or _flush() places whatever it cannot take itself.
                if own.pending is None:
                    own.pending = [task]
                else:
                    own.pending.append(task)
                return
            idle = self._idle
            if idle:
                worker = idle.pop()
                worker.task = task
                worker.wake.release()
                return
            if self._active >= self._max:
                self._queue.append(task)
                return
            self._active += 1
            worker = self._add_worker_locked()
        finally:
            lock.release()
        try:
            self._start(worker, task)
        except BaseException:
            with self._lock:
                self._inflight -= 1
            raise

    def _add_worker_locked(self) -> _Worker:
        worker = _Worker(self)
        self._threads += 1
        self._workers.add(worker)
        return worker

    def _start(self, worker: _Worker, task: Task[Any]) -> None:
        """Start ``worker``'s thread with ``task`` as its first task (no lock held).

        The slot and the thread were counted by the caller; on failure both are given back.
        """
        self._started += 1  # a racy count is fine: it only numbers thread names
        thread = threading.Thread(
            target=self._work,
            args=(worker, task),
            name=f"{self._thread_name}-worker-{self._started}",
            daemon=False,
        )
        worker.thread = thread
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                self._workers.discard(worker)
                self._free_slot_locked()
                if self._closed:
                    self._all_done.notify_all()
            raise

    def _free_slot_locked(self) -> None:
        """Give up a slot: to the longest-waiting resumer if any, else it becomes free."""
        if self._resumers:
            self._resumers.popleft().wake.release()
        else:
            self._active -= 1

    # -- the worker loop ----------------------------------------------------------------------

    def _work(self, worker: _Worker, task: Task[Any] | None) -> None:
        record = thread_record()
        record.worker = worker
        record.scheduler = self
        record.is_worker = True
        install_hook(worker)
        try:
            while task is not None:
                try:
                    if task._begin_queued():
                        task._execute(None)
                except BaseException:
                    # _execute handles everything a target raises; this is a library bug.
                    _report_exception(f"Exception in worker {threading.current_thread().name!r}:")
                task = self._next(worker)
        finally:
            install_hook(None)
            record.worker = None
            record.scheduler = None
            record.is_worker = False
            with self._lock:
                self._threads -= 1
                if self._closed:
                    # Kept for close(), which joins every worker thread.
                    self._all_done.notify_all()
                else:
                    self._workers.discard(worker)

    def _next(self, worker: _Worker) -> Task[Any] | None:
        """Account for the finished entry and return the worker's next task (None: exit).

        Resumers get the slot first; then the oldest queued task; then what the worker queued
        itself while finishing (its first task is kept, the others are placed as by
        :meth:`queue`). Otherwise the worker idles with its slot for ``keep_alive`` seconds,
        once, unless the scheduler is closed.
        """
        lock = self._lock
        lock.acquire()
        try:
            self._inflight -= 1
            if self._closed:
                self._all_done.notify_all()
            pending = worker.pending
            if pending is not None:
                worker.pending = None
                if self._resumers or self._queue:
                    # Older work first: what this worker queued waits its turn.
                    self._queue.extend(pending)
                    pending = None
            if self._resumers:
                # The slot goes to the longest-waiting resumer; this worker exits.
                self._free_slot_locked()
                return None
            if pending is not None:
                starts = self._place_locked(pending, 1)
            elif self._queue:
                return self._queue.popleft()
            elif self._closed or _exiting:
                self._free_slot_locked()
                return None
            else:
                self._idle.append(worker)
                keep_alive = self._keep_alive
        finally:
            lock.release()
        if pending is not None:
            if starts:
                self._start_all(starts)
            return pending[0]
        wake = worker.wake
        if wake.acquire(True, min(keep_alive, _TIMEOUT_MAX)):
            task, worker.task = worker.task, None
            return task
        with lock:
            try:
                self._idle.remove(worker)
            except ValueError:
                pass  # a hand-off raced with the timeout; `wake` was released under the lock
            else:
                self._free_slot_locked()
                return None
        wake.acquire()
        task, worker.task = worker.task, None
        return task

    def _place_locked(self, tasks: list[Task[Any]], first: int) -> list[tuple[_Worker, Task[Any]]]:
        """Place ``tasks[first:]`` as :meth:`queue` does; return the workers to start."""
        starts: list[tuple[_Worker, Task[Any]]] = []
        for index in range(first, len(tasks)):
            task = tasks[index]
            if self._idle:
                idle = self._idle.pop()
                idle.task = task
                idle.wake.release()
            elif self._active < self._max:
                self._active += 1
                starts.append((self._add_worker_locked(), task))
            else:
                self._queue.append(task)
        return starts

    def _start_all(self, starts: list[tuple[_Worker, Task[Any]]]) -> None:
        """Start new workers (no lock held); a task whose thread fails to start is queued."""
        for worker, task in starts:
            try:
                self._start(worker, task)
            except BaseException:
                with self._lock:
                    self._queue.appendleft(task)

    def _flush(self, worker: _Worker) -> None:
        """Place the tasks ``worker`` kept for itself: it is about to run something else."""
        with self._lock:
            pending = worker.pending
            worker.pending = None
            starts = self._place_locked(pending, 0) if pending else []
        if starts:
            self._start_all(starts)

    def _release_idle(self) -> None:
        """Make the idle workers exit now (the interpreter is shutting down)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._active -= len(idle)
            for worker in idle:
                worker.task = None
                worker.wake.release()

    # -- suspension ---------------------------------------------------------------------------

    def _enter_suspension(self, worker: _Worker) -> None:
        """Give the worker's slot away while its task waits (thread injection)."""
        start: Task[Any] | None = None
        with self._lock:
            worker.suspended = True
            self._suspended += 1
            if self._queue and not self._resumers:
                # Thread injection: the slot goes to a new worker for the oldest queued task.
                start = self._queue.popleft()
                new_worker = self._add_worker_locked()
            else:
                self._free_slot_locked()
        if start is not None:
            # If no thread can be injected, the task waits for the next free slot.
            self._start_all([(new_worker, start)])

    def _leave_suspension(self, worker: _Worker) -> None:
        """Get a slot back before returning to task code; block on ``wake`` until one is handed."""
        with self._lock:
            self._suspended -= 1
            if self._resumers:
                self._resumers.append(worker)
                granted = False
            elif self._active < self._max:
                self._active += 1
                granted = True
            elif self._idle:
                # An idle worker's slot is ours; it exits.
                idle = self._idle.pop()
                idle.task = None
                idle.wake.release()
                granted = True
            else:
                self._resumers.append(worker)
                granted = False
        if not granted:
            worker.wake.acquire()
        worker.suspended = False

    def suspend(self) -> AbstractContextManager[Any]:
        """Return the calling worker's suspension context (SEMANTICS §5.3).

        While it is open, the worker holds no slot; leaving it blocks until a slot is handed
        back, resumers first, longest-waiting first. A no-op context when the calling thread
        is not a worker of this scheduler running a task, or is already suspended.
        """
        worker = thread_record().worker
        if worker is None or worker.scheduler is not self:
            return _NO_SUSPENSION
        return worker.suspend()

    # -- inlining -----------------------------------------------------------------------------

    def prioritise(self, task: Task[Any]) -> None:
        """Start an awaited task now (SEMANTICS §5.5).

        Called from a running task on a thread of this scheduler, it runs ``task`` inline on
        that thread, blocking until it is terminal, if ``task`` is ``NOTSTARTED`` or still
        waiting in this scheduler's queue (it is then unlinked atomically, touching no other
        entry). Called from elsewhere, it schedules a ``NOTSTARTED`` task here and leaves a
        task queued here alone.

        Raises:
            SchedulerClosedError: the scheduler is closed.
            TaskAlreadyStartedOrScheduledError: ``task`` is running, terminal, or scheduled
                elsewhere (another scheduler, an armed continuation, a pending ``run_after``).
        """
        if self._closed:
            raise SchedulerClosedError()
        record = thread_record()
        here = record.task is not None and record.scheduler is self
        state = task._state
        if state == 0:  # NOTSTARTED
            if here:
                if task._begin_unstarted():
                    task._execute(self)
                return
            task.schedule(self)
            return
        if state == 1 and task._scheduler is self:  # SCHEDULED, on this scheduler
            if here and self._unlink(task) and task._begin_queued():
                task._execute(self)
            return
        raise TaskAlreadyStartedOrScheduledError()

    def _unlink(self, task: Task[Any]) -> bool:
        with self._lock:
            try:
                # Tasks compare by identity, so this removes exactly that entry.
                self._queue.remove(task)
            except ValueError:
                return False
            self._inflight -= 1
            if self._closed:
                self._all_done.notify_all()
            return True

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting tasks and wait for the work in flight and the workers to finish.

        Blocks until every task queued, running or suspended on this scheduler is terminal
        and every worker thread has exited; idle workers exit at once. Called from one of
        this scheduler's own tasks, it waits for everything except the calling task. A second
        call returns at once. The wait cooperates with the scheduler of the calling task.

        Raises:
            ThreadingException: this is the current default scheduler.
        """
        if self is _default and not self._finalizing:
            raise ThreadingException("Cannot close default scheduler")
        self._close()

    def _close(self) -> None:
        record = thread_record()
        me = (
            record.worker if record.worker is not None and record.worker.scheduler is self else None
        )
        own = 0 if me is None else 1
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._release_idle()  # idle workers exit at once
            while self._inflight > own or self._threads > own:
                cond_wait(self._all_done, None)
            # Every worker has finished its last step; wait for the threads to be gone too.
            threads = [w.thread for w in self._workers if w is not me and w.thread is not None]
            self._workers = {me} if me is not None else set()
        for thread in threads:
            thread.join()

    def __finalize__(self) -> None:
        """Close the scheduler (allowed for the default one, which is being finalized)."""
        if getattr(self, "_closed", True):
            return  # closed already, or the constructor did not get this far
        self._close()

    def __enter__(self) -> ConcurrentTaskScheduler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


for _cls in (TaskScheduler, ConcurrentTaskScheduler):
    _cls.__module__ = "runtime.threading.tasks.schedulers"
del _cls
