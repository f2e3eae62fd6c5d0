"""``runtime.threading.tasks.schedulers``: where tasks run.

:class:`TaskScheduler` is the abstract base; :class:`ConcurrentTaskScheduler` is the worker pool
every task runs on unless told otherwise (``TaskScheduler.default()``).
"""

from .._errors import SchedulerClosedError, TaskAlreadyStartedOrScheduledError
from ._scheduler import ConcurrentTaskScheduler, TaskScheduler

__all__ = (
    "TaskScheduler",
    "ConcurrentTaskScheduler",
    "SchedulerClosedError",
    "TaskAlreadyStartedOrScheduledError",
)
