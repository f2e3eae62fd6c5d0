"""``PContext``: the parallel context that supplies parallelism, scheduler and interrupt.

Each thread has a stack of contexts (SEMANTICS §11.3), kept in the thread registry of
``_scheduler``. The bottom is the thread's *root*, created lazily and never on the stack
itself; :meth:`PContext.current` is the top of the stack, else the root.

A task created while a non-root context is current captures it (``Task`` calls
:func:`captured`). When the task executes on a worker of that context's scheduler and the
context is still open, the context is pushed on the worker's stack for the duration of the
task (:func:`inherit` / :func:`uninherit`), so nested ``Task.run`` calls and pipelines use it.

The class lives in the tasks layer because ``Task`` captures it and scheduler resolution
consults it; it is exported from ``runtime.threading.parallel.pipeline``.
"""

from __future__ import annotations

import itertools
import threading
from types import TracebackType
from typing import final

from .. import _constants
from .._errors import PipelineException
from .._interrupts import Interrupt, InterruptSignal, validate_interrupt
from ._scheduler import TaskScheduler, ThreadRecord, thread_record

__all__ = ("PContext", "captured", "inherit", "uninherit")

# Process-wide context ids, starting at 0; root contexts take ids too.
_ids = itertools.count(0)


@final
class PContext:
    """A parallel context, used as a context manager.

    It supplies the degree of parallelism, the scheduler and the interrupt to pipelines, and
    a default scheduler to ``Task.run`` and the parallel operations. Entering pushes it on
    the calling thread's context stack; exiting signals its interrupt (cancelling the work
    started under it), marks it closed and pops it.

    Args:
        max_parallelism: the parallelism pipelines resolve float parallelism against.
        interrupt: an interrupt the context's own interrupt is linked to (a child of it).
        scheduler: the scheduler work started under the context uses; defaults to
            ``TaskScheduler.default()``, read now.

    Raises:
        ValueError: ``max_parallelism < 1``.
        TypeError: an argument of the wrong type.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_entered",
        "_id",
        "_max",
        "_root",
        "_scheduler",
        "_signal",
    )

    def __init__(
        self,
        max_parallelism: int,
        /,
        interrupt: Interrupt | None = None,
        scheduler: TaskScheduler | None = None,
    ) -> None:
        if isinstance(max_parallelism, bool) or not isinstance(max_parallelism, int):
            raise TypeError(
                f"'max_parallelism' must be an int, not {type(max_parallelism).__name__}"
            )
        if max_parallelism < 1:
            raise ValueError("Argument max_parallelism must be greater than 0")
        validate_interrupt(interrupt)
        if scheduler is not None and not isinstance(scheduler, TaskScheduler):
            raise TypeError(
                f"'scheduler' must be a TaskScheduler or None, not {type(scheduler).__name__}"
            )
        self._init(max_parallelism, interrupt, scheduler or TaskScheduler.default(), root=False)

    def _init(
        self,
        max_parallelism: int,
        interrupt: Interrupt | None,
        scheduler: TaskScheduler | None,
        *,
        root: bool,
    ) -> None:
        self._id = next(_ids)
        self._max = max_parallelism
        self._signal = InterruptSignal(interrupt) if interrupt is not None else InterruptSignal()
        # None only for roots, whose scheduler is the default one at each access.
        self._scheduler = scheduler
        self._root = root
        # Written by the entering/exiting thread; read by tasks on other threads, which only
        # need to see a close eventually (a reference or bool is read atomically).
        self._closed = False
        # The thread that entered the context, while it is entered.
        self._entered: threading.Thread | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """A process-wide number, from 0, that also counts root contexts."""
        return self._id

    @property
    def closed(self) -> bool:
        """Whether the context has been exited. A root is never closed."""
        return self._closed

    @property
    def max_parallelism(self) -> int:
        """The context's degree of parallelism."""
        return self._max

    @property
    def scheduler(self) -> TaskScheduler:
        """The context's scheduler; for a root, the current default scheduler at each access.

        Still readable after the context is closed.
        """
        scheduler = self._scheduler
        return TaskScheduler.default() if scheduler is None else scheduler

    @property
    def interrupt(self) -> Interrupt:
        """The context's own interrupt, a child of the one given; signaled on exit.

        Still readable after the context is closed.
        """
        return self._signal.interrupt

    # -- the per-thread stack -----------------------------------------------------------------

    @staticmethod
    def root() -> PContext:
        """Return the calling thread's root context, creating it on first use.

        It has ``DEFAULT_PARALLELISM``, the current default scheduler and an interrupt that
        is never signaled. Each thread has its own; it is never closed.
        """
        record = thread_record()
        root = record.root_context
        if root is None:
            root = PContext.__new__(PContext)
            root._init(_constants.DEFAULT_PARALLELISM, None, None, root=True)
            record.root_context = root
        return root

    @staticmethod
    def current() -> PContext:
        """Return the innermost active context of the calling thread, else its root.

        Inside a task that inherited a context (it was created under the context and runs on
        a worker of the context's scheduler), that is the inherited context.
        """
        stack = thread_record().contexts
        if stack:
            return stack[-1]
        return PContext.root()

    def __enter__(self) -> PContext:
        """Push the context on the calling thread's stack and return it.

        Raises:
            PipelineException: the context is a root, is closed, or is already entered.
        """
        if self._root:
            raise PipelineException("a root context cannot be entered")
        if self._closed:
            raise PipelineException("the context has been exited and cannot be entered again")
        if self._entered is not None:
            raise PipelineException("the context is already entered")
        record = thread_record()
        stack = record.contexts
        if stack is None:
            stack = record.contexts = []
        self._entered = threading.current_thread()
        stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Signal the context's interrupt, mark it closed and pop it.

        Raises:
            PipelineException: the context is not the innermost one entered on the calling
                thread, or it has been exited already.
        """
        if self._closed:
            raise PipelineException("the context has already been exited")
        stack = thread_record().contexts
        if not stack or stack[-1] is not self or self._entered is not threading.current_thread():
            raise PipelineException(
                "contexts must be exited in the reverse order they were entered, "
                "on the thread that entered them"
            )
        try:
            self._signal.signal()
        finally:
            self._closed = True
            self._entered = None
            stack.pop()

    def __repr__(self) -> str:
        kind = "root " if self._root else ""
        state = " closed" if self._closed else ""
        return f"<PContext {kind}#{self._id} max_parallelism={self._max}{state}>"


# -- helpers for Task ---------------------------------------------------------------------------


def captured() -> PContext | None:
    """The context a task created now captures: the calling thread's non-root top, if any."""
    stack = thread_record().contexts
    return stack[-1] if stack else None


def inherit(context: PContext, record: ThreadRecord) -> int:
    """Make ``context`` current for a task starting on this thread, if it may inherit it.

    A task inherits its captured context when it runs on a worker of the context's scheduler
    and the context is still open. Returns the stack depth to restore with :func:`uninherit`,
    or ``-1`` when nothing was pushed.
    """
    if context._closed or not record.is_worker or record.scheduler is not context._scheduler:
        return -1
    stack = record.contexts
    if stack is None:
        stack = record.contexts = []
    depth = len(stack)
    stack.append(context)
    return depth


def uninherit(record: ThreadRecord, depth: int) -> None:
    """Undo :func:`inherit`: truncate the stack to ``depth``.

    Contexts the task entered and did not exit are dropped with it, so they do not leak into
    the worker's later tasks.
    """
    stack = record.contexts
    if stack is not None:
        del stack[depth:]


PContext.__module__ = "runtime.threading.parallel.pipeline"
