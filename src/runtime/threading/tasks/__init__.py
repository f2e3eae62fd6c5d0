"""``runtime.threading.tasks``: tasks, continuations and their protos.

``Task.run(fn, *args, **kwargs)`` calls ``fn(task, *args, **kwargs)`` on a scheduler and returns
the task at once; ``task.result`` blocks until it is done and returns what ``fn`` returned (or
re-raises what it raised). ``continue_with``, ``Task.with_any`` and ``Task.with_all`` chain
work on the outcome of other tasks; ``task.interrupt`` is the task's cooperative cancellation
token. The schedulers are in the submodule :mod:`.schedulers`, reachable as an attribute of
this package.

Context variables: each task runs in a copy of the :mod:`contextvars` context of the code
that created it. The copy is taken when the task is created (``Task.run``, ``Task.plan``,
``continue_with``, ...), and the target runs inside it, so a ``ContextVar`` set before
``Task.run`` has the same value in the task, even on a worker thread, and values the task sets
stay in the task: they are not seen by its creator, by other tasks, or by the next task that
runs on the same worker. This goes beyond the original contract, which left tasks with
whatever context their worker thread happened to have.
"""

from .._constants import DEFAULT_PARALLELISM, POLL_INTERVAL, TASK_KEEP_ALIVE, TASK_SUSPEND_AFTER
from .._errors import (
    AggregateException,
    AwaitedTaskInterruptedError,
    TaskAlreadyRunningError,
    TaskAlreadyScheduledError,
    TaskCompletedError,
    TaskException,
    TaskNotScheduledError,
)
from . import schedulers
from ._task import ContinuationOptions, ContinuationProto, Task, TaskProto, TaskState, task

__all__ = (
    "Task",
    "task",
    "TaskProto",
    "ContinuationProto",
    "TaskState",
    "ContinuationOptions",
    "AggregateException",
    "TaskException",
    "TaskCompletedError",
    "TaskNotScheduledError",
    "TaskAlreadyRunningError",
    "TaskAlreadyScheduledError",
    "AwaitedTaskInterruptedError",
    "DEFAULT_PARALLELISM",
    "TASK_SUSPEND_AFTER",
    "TASK_KEEP_ALIVE",
    "POLL_INTERVAL",
)
