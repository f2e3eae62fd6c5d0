"""Helpers for tests that coordinate with real threads and subprocesses.

Import them as ``from helpers import ThreadRunner, wait_until_blocked``: the
``tests`` directory is on ``sys.path`` through the pytest configuration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Generic, ParamSpec, TypeVar

__all__ = [
    "BLOCKING_NAME_PARTS",
    "REPO_ROOT",
    "SRC_DIR",
    "ThreadRunner",
    "run_in_subprocess",
    "wait_until_blocked",
]

T = TypeVar("T")
P = ParamSpec("P")

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = REPO_ROOT / "src"

#: A frame counts as blocking when its function name contains one of these.
BLOCKING_NAME_PARTS: tuple[str, ...] = (
    "wait",
    "acquire",
    "park",
    "take",
    "get",
    "dequeue",
    "sleep",
    "put",
)

_POLL_INTERVAL = 0.01


def _is_blocking_frame(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename.replace(os.sep, "/")
    in_threading = (
        filename.endswith("/threading.py")
        or filename.endswith("/queue.py")
        or "/runtime/threading/" in filename
    )
    name = frame.f_code.co_name.lower()
    return in_threading and any(part in name for part in BLOCKING_NAME_PARTS)


def wait_until_blocked(thread: threading.Thread, timeout: float = 5.0) -> None:
    """Return once ``thread`` is parked in a blocking call.

    The thread counts as blocked when its innermost Python frame is a waiting
    function (see ``BLOCKING_NAME_PARTS``) in the stdlib ``threading``/``queue``
    modules or in ``runtime.threading``, and the same frame is still at the same
    instruction on two consecutive polls.

    Raises ``AssertionError`` if the thread exits first or the deadline passes.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    previous: tuple[FrameType, int] | None = None
    last_seen = "<not started>"
    while True:
        if thread.ident is not None and not thread.is_alive():
            raise AssertionError(f"thread {thread.name!r} exited instead of blocking")
        frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
        if frame is not None:
            last_seen = f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})"
            if _is_blocking_frame(frame):
                if previous is not None and previous[0] is frame and previous[1] == frame.f_lasti:
                    return
                previous = (frame, frame.f_lasti)
            else:
                previous = None
        del frame
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"thread {thread.name!r} did not block within {timeout} s; last seen in {last_seen}"
            )
        pause.wait(_POLL_INTERVAL)


class ThreadRunner(Generic[T]):
    """Run ``fn(*args, **kwargs)`` in a new daemon thread, started immediately.

    The outcome is kept: ``join()`` returns the result or re-raises the exception.
    """

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> None:
        with ThreadRunner._counter_lock:
            ThreadRunner._counter += 1
            number = ThreadRunner._counter
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._finished = False

        def target() -> None:
            try:
                self._result = fn(*args, **kwargs)
            except BaseException as ex:
                self._exception = ex
            finally:
                self._finished = True

        self.thread = threading.Thread(
            target=target, name=f"test-runner-{number}-{getattr(fn, '__name__', 'fn')}", daemon=True
        )
        self.thread.start()

    @property
    def name(self) -> str:
        return self.thread.name

    @property
    def exception(self) -> BaseException | None:
        """The exception raised by the callable, once it has finished."""
        return self._exception

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float = 10.0) -> T:
        """Wait for the callable and return its result, re-raising its exception.

        Raises ``AssertionError`` if it is still running after ``timeout`` seconds.
        """
        self.thread.join(timeout)
        if self.thread.is_alive() or not self._finished:
            raise AssertionError(f"thread {self.thread.name!r} still running after {timeout} s")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]


def run_in_subprocess(code: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` in a fresh interpreter with ``src`` importable.

    Output is captured as text; the exit code is not checked. The child starts with the
    default SIGINT disposition even when this process ignores SIGINT (as background jobs of
    a non-interactive shell do), so Python installs its own Ctrl+C handler in the child as it
    would for a user.
    """
    env = dict(os.environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC_DIR) if not existing else os.pathsep.join([str(SRC_DIR), existing])
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_default_sigint if hasattr(signal, "SIGINT") and os.name == "posix" else None,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
