"""Tunable constants (API §1.1).

The library reads these attributes from this module each time it uses them, so a test or an
application can tune them by assigning, for example, ``_constants.TASK_SUSPEND_AFTER = 0.01``.
The names re-exported by the public modules are plain values bound at import.
"""

from __future__ import annotations

import os

__all__ = ("DEFAULT_PARALLELISM", "POLL_INTERVAL", "TASK_KEEP_ALIVE", "TASK_SUSPEND_AFTER")

#: Workers used when a parallelism argument is omitted; always between 2 and 4.
DEFAULT_PARALLELISM: int = min(4, max(2, os.cpu_count() or 1))

#: Grace period (seconds) before a blocking wait on a worker suspends its task.
TASK_SUSPEND_AFTER: float = 0.1

#: Time (seconds) an idle worker thread lingers waiting for new work before it exits.
TASK_KEEP_ALIVE: float = 0.1

#: Slice length (seconds) used only for waits on the Windows main thread, where Python cannot
#: deliver Ctrl+C while the thread is blocked in a native wait. No other code path polls.
POLL_INTERVAL: float = 0.1
