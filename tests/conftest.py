"""Shared pytest configuration for the runtime.threading test suite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

#: How long a test's threads get to finish after the test before they count as leaked.
THREAD_LEAK_TIMEOUT = 5.0

#: Long-lived library threads that may be started lazily and are allowed to outlive a test.
ALLOWED_THREAD_PREFIXES: tuple[str, ...] = ("runtime-threading-timer",)


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    current = threading.current_thread()
    dummy_type: type[threading.Thread] | None = getattr(threading, "_DummyThread", None)
    return [
        t
        for t in threading.enumerate()
        if t not in before
        and t is not current
        and t.is_alive()
        and not t.name.startswith(ALLOWED_THREAD_PREFIXES)
        # Threads not started by the threading module cannot be joined.
        and not (dummy_type is not None and isinstance(t, dummy_type))
    ]


@pytest.fixture(autouse=True)
def _fail_on_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads (daemon or not) running after it returns."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_LEAK_TIMEOUT
    while True:
        pending = _new_threads(before)
        if not pending:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for thread in pending:
            thread.join(max(0.0, deadline - time.monotonic()))
    names = ", ".join(
        f"{t.name!r} (daemon={t.daemon})" for t in sorted(pending, key=lambda t: t.name)
    )
    pytest.fail(
        f"test leaked {len(pending)} thread(s) still alive after {THREAD_LEAK_TIMEOUT:.0f} s: "
        f"{names}",
        pytrace=False,
    )
