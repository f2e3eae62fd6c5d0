"""``runtime.threading``: tasks, interrupts and synchronization primitives for threads.

Layering, each layer importing only from the layers before it:
errors, constants & blocking (``_errors``, ``_constants``, ``_blocking``) → events &
interrupts (``_events``, ``_interrupts``) → locks, timer, process-level helpers & iteration
protocols (``_locks``, ``_timer``, ``_process``, ``_protocols``) → concurrent queue
(``_queue``) → tasks, contexts & schedulers (``tasks``) → producer/consumer queue →
parallel operations & pipelines (``parallel``).

This module re-exports the synchronization layer. The submodules ``concurrent``, ``tasks``
and ``parallel`` are reachable as attributes once imported, for example with
``from runtime.threading import tasks``. Importing the package starts no thread and changes
no signal disposition (see :func:`handle_signals`).
"""

from ._constants import DEFAULT_PARALLELISM, POLL_INTERVAL, TASK_KEEP_ALIVE, TASK_SUSPEND_AFTER
from ._errors import InterruptException, ThreadingException
from ._events import AutoClearEvent, ContinueWhen, Event, OneTimeEvent
from ._interrupts import Interrupt, InterruptSignal
from ._locks import Lock, LockBase, Semaphore, acquire_or_fail, synclock
from ._process import handle_signals, signal_after, sleep, terminate_event

__all__ = (
    "DEFAULT_PARALLELISM",
    "TASK_SUSPEND_AFTER",
    "TASK_KEEP_ALIVE",
    "POLL_INTERVAL",
    "ThreadingException",
    "InterruptException",
    "Event",
    "AutoClearEvent",
    "OneTimeEvent",
    "terminate_event",
    "ContinueWhen",
    "Interrupt",
    "InterruptSignal",
    "LockBase",
    "Lock",
    "Semaphore",
    "acquire_or_fail",
    "synclock",
    "sleep",
    "signal_after",
    "handle_signals",
)
