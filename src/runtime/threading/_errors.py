"""Every exception class of the library, in one place.

Named errors (API §0.6) carry a fixed default message. ``str()`` of the *class* returns that
message too (through :class:`_NamedErrorMeta`), so code can match a raised instance against
``str(TaskCompletedError)``. Each raise site raises a fresh instance: no instance is shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._interrupts import Interrupt

__all__ = (
    "AggregateException",
    "AwaitedTaskInterruptedError",
    "DistributionAlreadyStartedError",
    "InterruptException",
    "ParallelException",
    "PipelineException",
    "QueueCompletedError",
    "QueueLinkedToAnotherQueueError",
    "SchedulerClosedError",
    "TaskAlreadyRunningError",
    "TaskAlreadyScheduledError",
    "TaskAlreadyStartedOrScheduledError",
    "TaskCompletedError",
    "TaskException",
    "TaskNotScheduledError",
    "ThreadingException",
)


class ThreadingException(Exception):
    """Root of every exception the library defines.

    Also raised directly when a precondition is violated and no more specific class exists,
    for example ``OneTimeEvent.clear()`` or closing the default scheduler.
    """


class InterruptException(ThreadingException):
    """Raised when a task or a blocking call is interrupted.

    Each signaled :class:`Interrupt` owns exactly one instance, created when it becomes
    signaled; ``Interrupt.raise_if_signaled()`` raises that instance every time, with its
    traceback reset so it does not grow. User code may construct instances too.
    """

    MESSAGE = "Task or process was interrupted"

    def __init__(self, interrupt: Interrupt) -> None:
        super().__init__(self.MESSAGE)
        self._interrupt = interrupt

    @property
    def interrupt(self) -> Interrupt:
        """The interrupt that raised this exception."""
        return self._interrupt

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._interrupt,))


class AggregateException(ThreadingException):
    """Carries several exceptions, typically from several tasks or workers.

    Raised by ``Task.wait_any``/``wait_all`` when awaited tasks failed, and by the parallel
    operations when workers failed. The message is always ``"One or more tasks failed"``.
    """

    MESSAGE = "One or more tasks failed"

    def __init__(self, exceptions: Any) -> None:
        super().__init__(self.MESSAGE)
        self._exceptions: tuple[Exception, ...] = tuple(exceptions)

    @property
    def exceptions(self) -> tuple[Exception, ...]:
        """The exceptions, in the order given."""
        return self._exceptions

    def handle(self, predicate: Any) -> None:
        """Call ``predicate`` on each exception; re-raise the unhandled ones.

        Raises:
            AggregateException: a new aggregate holding exactly the exceptions for which
                ``predicate`` returned a falsy value, in order.
        """
        unhandled = [error for error in self._exceptions if not predicate(error)]
        if unhandled:
            raise AggregateException(unhandled)

    def flatten(self) -> Exception:
        """Unwrap single-exception nesting.

        Returns ``self`` when it holds zero or several exceptions. With exactly one, returns
        that exception after unwrapping it while it is an aggregate holding exactly one.
        """
        if len(self._exceptions) != 1:
            return self
        inner = self._exceptions[0]
        while isinstance(inner, AggregateException) and len(inner._exceptions) == 1:
            inner = inner._exceptions[0]
        return inner

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._exceptions,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._exceptions)!r})"


class _NamedErrorMeta(type):
    """Metaclass of named errors: ``str(cls)`` is the class's default message."""

    default_message: str

    def __str__(cls) -> str:
        return cls.default_message


class _NamedError(ThreadingException, metaclass=_NamedErrorMeta):
    default_message = ""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (type(self).default_message,)))


class TaskException(ThreadingException):
    """Base of task and scheduler errors; also raised for an illegal state transition."""


class TaskCompletedError(_NamedError, TaskException):
    """Raised when scheduling or running synchronously a task that is already terminal."""

    default_message = "task has already completed"


class TaskNotScheduledError(_NamedError, TaskException):
    """Raised when reading ``result`` of a ``NOTSTARTED`` task that is not lazy."""

    default_message = "task is not scheduled"


class TaskAlreadyRunningError(_NamedError, TaskException):
    """Raised when scheduling or running synchronously a ``RUNNING`` task."""

    default_message = "task is already running"


class TaskAlreadyScheduledError(_NamedError, TaskException):
    """Raised when scheduling a ``SCHEDULED`` task, or running synchronously a task queued
    on another scheduler."""

    default_message = "task is already scheduled"


class AwaitedTaskInterruptedError(_NamedError, TaskException):
    """Raised by ``Task.wait_any``/``wait_all`` with ``fail_on_interrupt=True`` when an
    awaited task ended ``INTERRUPTED``."""

    default_message = "an awaited task was interrupted"


class SchedulerClosedError(_NamedError, TaskException):
    """Raised when queueing (scheduling) a task on a closed scheduler."""

    default_message = "task scheduler is closed"


class TaskAlreadyStartedOrScheduledError(_NamedError, TaskException):
    """Raised by ``prioritise()`` on a task that cannot be run inline."""

    default_message = "task is already running or scheduled elsewhere"


class ParallelException(ThreadingException):
    """Base of the errors of ``runtime.threading.parallel``."""


class DistributionAlreadyStartedError(_NamedError, ParallelException):
    """Raised by ``Distributor.start()`` called twice, or ``take()`` after ``start()``."""

    default_message = "distribution has already started"


class QueueCompletedError(_NamedError, ParallelException):
    """Raised by ``put``, ``put_many``, ``complete`` or ``fail`` on a complete or failed
    queue, and by a blocked ``put`` when the queue completes or fails meanwhile."""

    default_message = "queue is complete"


class QueueLinkedToAnotherQueueError(_NamedError, ParallelException):
    """Raised by ``put``, ``put_many``, ``complete``, ``fail`` or ``fail_if_not_complete``
    on a queue fed by another queue's iterator."""

    default_message = (
        "queue is fed by another queue's iterator and cannot be written to or completed directly"
    )


class PipelineException(ThreadingException):
    """Raised for pipeline misuse, such as exiting ``PContext`` objects out of order."""


_PUBLIC_MODULES = {
    "ThreadingException": "runtime.threading",
    "InterruptException": "runtime.threading",
    "AggregateException": "runtime.threading.tasks",
    "TaskException": "runtime.threading.tasks",
    "TaskCompletedError": "runtime.threading.tasks",
    "TaskNotScheduledError": "runtime.threading.tasks",
    "TaskAlreadyRunningError": "runtime.threading.tasks",
    "TaskAlreadyScheduledError": "runtime.threading.tasks",
    "AwaitedTaskInterruptedError": "runtime.threading.tasks",
    "SchedulerClosedError": "runtime.threading.tasks.schedulers",
    "TaskAlreadyStartedOrScheduledError": "runtime.threading.tasks.schedulers",
    "ParallelException": "runtime.threading.parallel",
    "DistributionAlreadyStartedError": "runtime.threading.parallel",
    "QueueCompletedError": "runtime.threading.parallel",
    "QueueLinkedToAnotherQueueError": "runtime.threading.parallel",
    "PipelineException": "runtime.threading.parallel.pipeline",
}
for _name, _module in _PUBLIC_MODULES.items():
    globals()[_name].__module__ = _module
del _name, _module
