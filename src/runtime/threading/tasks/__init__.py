"""``runtime.threading.tasks``: tasks, continuations and their protos.

Users write ``Task.run(fn, *args)``: ``fn(task, *args)`` runs on a scheduler and ``task.result``
returns what it returned. The schedulers are in the submodule :mod:`.schedulers`, reachable as
an attribute of this package.
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
