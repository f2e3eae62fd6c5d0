"""Tests for runtime.threading._timer: the one shared timer thread and its deadline heap."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import pytest

from helpers import run_in_subprocess
from runtime.threading import _timer
from runtime.threading._timer import THREAD_NAME, TimerHandle, call_later


def timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def recorder() -> tuple[list[str], threading.Event, Callable[[str], Callable[[], None]]]:
    calls: list[str] = []
    done = threading.Event()

    def make(tag: str) -> Callable[[], None]:
        def callback() -> None:
            calls.append(tag)
            done.set()

        return callback

    return calls, done, make


def test_callback_runs_after_the_delay_on_the_timer_thread() -> None:
    ran = threading.Event()
    where: list[tuple[str, bool, float]] = []

    def callback() -> None:
        thread = threading.current_thread()
        where.append((thread.name, thread.daemon, time.monotonic()))
        ran.set()

    started = time.monotonic()
    handle = call_later(0.1, callback)
    assert isinstance(handle, TimerHandle)
    assert ran.wait(5)
    name, daemon, at = where[0]
    assert name == THREAD_NAME
    assert daemon is True
    assert at - started >= 0.1
    assert handle.deadline <= at
    assert not handle.pending


def test_call_later_returns_at_once() -> None:
    ran = threading.Event()
    started = time.monotonic()
    handle = call_later(30, ran.set)
    try:
        assert time.monotonic() - started < 5
        assert not ran.is_set()
        assert handle.pending
    finally:
        assert handle.cancel()


def test_callbacks_run_in_deadline_order() -> None:
    calls, _, make = recorder()
    last = threading.Event()
    call_later(0.15, make("c"))
    call_later(0.05, make("a"))
    call_later(0.1, make("b"))
    call_later(0.2, last.set)
    assert last.wait(5)
    assert calls == ["a", "b", "c"]


def test_equal_deadlines_keep_their_order() -> None:
    calls, _, make = recorder()
    last = threading.Event()
    deadline_delay = 0.05
    for tag in "abcde":
        call_later(deadline_delay, make(tag))
    call_later(deadline_delay, last.set)
    assert last.wait(5)
    # Same delay, scheduled in order: deadlines are non-decreasing, ties keep insertion order.
    assert calls == list("abcde")


def test_an_earlier_deadline_wakes_a_timer_sleeping_on_a_later_one() -> None:
    far = call_later(60, lambda: None)
    try:
        ran = threading.Event()
        call_later(0.01, ran.set)
        assert ran.wait(5), "the timer kept sleeping until the later deadline"
    finally:
        far.cancel()


def test_cancel_withdraws_a_pending_callback() -> None:
    calls, _, make = recorder()
    after = threading.Event()
    handle = call_later(0.05, make("cancelled"))
    assert handle.cancel() is True
    assert handle.cancel() is False
    assert not handle.pending
    call_later(0.1, after.set)
    assert after.wait(5)
    assert calls == []


def test_cancel_after_firing_returns_false() -> None:
    ran = threading.Event()
    handle = call_later(0, ran.set)
    assert ran.wait(5)
    assert handle.cancel() is False


def test_cancel_drops_the_callback_reference() -> None:
    handle = call_later(60, lambda: None)
    assert handle.cancel()
    assert handle._callback is None


def test_many_cancellations_compact_the_heap() -> None:
    before = _timer.pending_count()
    handles = [call_later(60, lambda: None) for _ in range(200)]
    assert _timer.pending_count() == before + 200
    for handle in handles:
        assert handle.cancel()
    assert _timer.pending_count() == before
    assert len(_timer._timer._heap) < 200, "cancelled entries were never compacted"
    ran = threading.Event()
    call_later(0, ran.set)
    assert ran.wait(5), "the timer thread lost track of the compacted heap"


def test_a_failing_callback_is_reported_and_the_timer_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    call_later(0, boom)
    call_later(0.05, after.set)
    assert after.wait(5), "the timer died with its callback"
    assert len(reported) == 1
    assert reported[0].exc_type is RuntimeError
    assert str(reported[0].exc_value) == "boom"
    assert reported[0].thread is not None and reported[0].thread.name == THREAD_NAME


def test_a_callback_raising_system_exit_does_not_kill_the_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", reported.append)
    after = threading.Event()

    def leave() -> None:
        raise SystemExit(3)

    call_later(0, leave)
    call_later(0.05, after.set)
    assert after.wait(5)
    assert [r.exc_type for r in reported] == [SystemExit]


def test_one_thread_serves_every_callback() -> None:
    events = [threading.Event() for _ in range(20)]
    for index, event in enumerate(events):
        call_later(0.001 * index, event.set)
    for event in events:
        assert event.wait(5)
    assert len(timer_threads()) == 1


@pytest.mark.parametrize("bad", [-1, -0.001, float("nan")])
def test_negative_delay_raises_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="'delay' must be a non-negative number"):
        call_later(bad, lambda: None)


def test_bad_argument_types() -> None:
    with pytest.raises(TypeError, match="'delay'"):
        call_later("1", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'callback'"):
        call_later(1, None)  # type: ignore[arg-type]


def test_repr_shows_the_state() -> None:
    handle = call_later(60, lambda: None)
    assert "pending" in repr(handle)
    handle.cancel()
    assert "cancelled" in repr(handle)


def test_importing_starts_no_thread_and_the_first_call_starts_one() -> None:
    result = run_in_subprocess(
        "import threading\n"
        "from runtime.threading import _timer\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
        "done = threading.Event()\n"
        "_timer.call_later(0, done.set)\n"
        "assert done.wait(10)\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.splitlines()
    assert before == "['MainThread']"
    assert after == f"['MainThread', '{THREAD_NAME}']"


def test_a_pending_callback_does_not_keep_the_interpreter_alive() -> None:
    result = run_in_subprocess(
        "from runtime.threading import _timer\n_timer.call_later(120, lambda: print('late'))\n",
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "late" not in result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_timer_restarts_in_a_forked_child() -> None:
    result = run_in_subprocess(
        "import os, threading\n"
        "from runtime.threading import _timer\n"
        "first = threading.Event()\n"
        "_timer.call_later(0, first.set)\n"
        "assert first.wait(10)\n"
        "stale = _timer.call_later(120, lambda: print('parent callback in child'))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    code = 1\n"
        "    try:\n"
        "        assert not stale.pending\n"
        "        assert _timer.pending_count() == 0\n"
        "        done = threading.Event()\n"
        "        _timer.call_later(0.01, done.set)\n"
        "        code = 0 if done.wait(10) else 2\n"
        "    finally:\n"
        "        os._exit(code)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
        "stale.cancel()\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"


def test_timer_thread_name_is_allowed_to_outlive_tests() -> None:
    # The thread-leak fixture tolerates the timer thread by this name prefix.
    conftest = sys.modules.get("conftest")
    assert conftest is not None
    assert THREAD_NAME.startswith(conftest.ALLOWED_THREAD_PREFIXES)
