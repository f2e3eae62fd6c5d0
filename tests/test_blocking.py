"""Tests for ``runtime.threading._blocking``: deadlines, parking and the scheduler hook."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from time import monotonic
from typing import TypeVar

import pytest

from helpers import ThreadRunner, run_in_subprocess, wait_until_blocked
from runtime.threading import _blocking, _constants
from runtime.threading._blocking import (
    SchedulerHook,
    Waker,
    cond_wait,
    current_hook,
    deadline_for,
    install_hook,
    park,
    remaining,
    subscribe_notify,
    unsubscribe_notify,
)
from runtime.threading._interrupts import Interrupt, InterruptSignal

T = TypeVar("T")

TIMEOUT_MESSAGE = "'timeout' must be a non-negative number"


class FakeHook:
    """A scheduler hook that records when the parked thread suspends."""

    def __init__(self, suspend_now: bool) -> None:
        self.now = suspend_now
        self.suspend_now_calls = 0
        self.entered = threading.Event()
        self.exited = threading.Event()
        self.entered_at: float | None = None

    def suspend_now(self) -> bool:
        self.suspend_now_calls += 1
        return self.now

    @contextlib.contextmanager
    def suspend(self) -> Iterator[None]:
        self.entered_at = monotonic()
        self.entered.set()
        try:
            yield
        finally:
            self.exited.set()


def with_hook(hook: SchedulerHook, fn: Callable[[], T]) -> Callable[[], T]:
    """Wrap ``fn`` so it runs with ``hook`` installed on its thread (and restored after)."""

    def run() -> T:
        previous = install_hook(hook)
        try:
            return fn()
        finally:
            install_hook(previous)

    return run


def held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@pytest.fixture
def grace(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set ``_constants.TASK_SUSPEND_AFTER`` for the test; restored afterwards."""

    def set_grace(value: float) -> None:
        monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", value)

    return set_grace


# -- deadline_for / remaining ----------------------------------------------------------------


def test_deadline_for_none_is_none() -> None:
    assert deadline_for(None) is None


@pytest.mark.parametrize("timeout", [0, 0.0, 1, 2.5, 1e-6])
def test_deadline_for_is_computed_once_from_now(timeout: float) -> None:
    before = monotonic()
    deadline = deadline_for(timeout)
    after = monotonic()
    assert deadline is not None
    assert before + timeout <= deadline <= after + timeout


@pytest.mark.parametrize("timeout", [-1, -0.001, -1e-300, -math.inf, math.nan])
def test_deadline_for_rejects_negative_and_nan(timeout: float) -> None:
    with pytest.raises(ValueError) as raised:
        deadline_for(timeout)
    assert str(raised.value) == TIMEOUT_MESSAGE


@pytest.mark.parametrize("timeout", ["1", b"1", object(), [1], 1j])
def test_deadline_for_rejects_non_numbers_naming_the_argument(timeout: object) -> None:
    with pytest.raises(TypeError, match="'timeout'"):
        deadline_for(timeout)  # type: ignore[arg-type]


def test_deadline_for_infinity_is_infinite() -> None:
    assert deadline_for(math.inf) == math.inf


def test_remaining() -> None:
    assert remaining(None) is None
    assert remaining(monotonic() - 10) == 0.0
    left = remaining(monotonic() + 100)
    assert left is not None and 99 < left <= 100
    assert remaining(math.inf) == math.inf


# -- hook installation -----------------------------------------------------------------------


def test_hook_is_per_thread_and_install_returns_the_previous_one() -> None:
    first, second = FakeHook(False), FakeHook(True)
    assert current_hook() is None
    assert install_hook(first) is None
    try:
        assert current_hook() is first
        assert install_hook(second) is first
        assert current_hook() is second
        other = ThreadRunner(current_hook)
        assert other.join() is None  # another thread sees no hook
    finally:
        assert install_hook(None) is second
    assert current_hook() is None


# -- park without a hook ---------------------------------------------------------------------


def test_park_returns_true_when_released() -> None:
    lock = held_lock()
    runner = ThreadRunner(park, lock, None)
    wait_until_blocked(runner.thread)
    lock.release()
    assert runner.join() is True


def test_park_returns_false_at_the_deadline_and_keeps_the_lock_held() -> None:
    lock = held_lock()
    assert park(lock, deadline_for(0.02)) is False
    assert lock.locked()


def test_park_with_a_passed_deadline_returns_at_once() -> None:
    lock = held_lock()
    assert park(lock, deadline_for(0)) is False
    assert park(lock, monotonic() - 100) is False
    assert lock.locked()


def test_park_with_an_infinite_deadline_blocks_until_released() -> None:
    # A timeout beyond threading.TIMEOUT_MAX used to raise OverflowError from Lock.acquire.
    lock = held_lock()
    runner = ThreadRunner(park, lock, deadline_for(math.inf))
    wait_until_blocked(runner.thread)
    lock.release()
    assert runner.join() is True
    huge = held_lock()
    huge_runner = ThreadRunner(park, huge, deadline_for(threading.TIMEOUT_MAX * 10))
    wait_until_blocked(huge_runner.thread)
    huge.release()
    assert huge_runner.join() is True


# -- park with a scheduler hook (SEMANTICS §5.3) ---------------------------------------------


def test_park_suspends_at_once_when_the_hook_says_so(grace: Callable[[float], None]) -> None:
    grace(30.0)  # a suspension can only come from suspend_now()
    hook = FakeHook(suspend_now=True)
    lock = held_lock()
    runner = ThreadRunner(with_hook(hook, lambda: park(lock, None)))
    assert hook.entered.wait(5)
    wait_until_blocked(runner.thread)
    assert not hook.exited.is_set()  # still parked inside the suspension
    lock.release()
    assert runner.join() is True
    assert hook.exited.is_set()


def test_park_suspends_only_after_the_grace_period(grace: Callable[[float], None]) -> None:
    grace(0.05)
    hook = FakeHook(suspend_now=False)
    lock = held_lock()
    started: list[float] = []

    def parked() -> bool:
        started.append(monotonic())
        return park(lock, None)

    runner = ThreadRunner(with_hook(hook, parked))
    assert hook.entered.wait(5)
    assert hook.entered_at is not None
    # Lock.acquire(timeout) waits at least its timeout; allow for clock granularity only.
    assert hook.entered_at - started[0] >= 0.05 - 0.005
    wait_until_blocked(runner.thread)
    lock.release()
    assert runner.join() is True
    assert hook.exited.is_set()
    assert hook.suspend_now_calls == 1


def test_grace_period_is_read_on_each_park(grace: Callable[[float], None]) -> None:
    hook = FakeHook(suspend_now=False)
    grace(0.0)  # no grace at all: suspend as soon as the first try fails
    lock = held_lock()
    runner = ThreadRunner(with_hook(hook, lambda: park(lock, None)))
    assert hook.entered.wait(5)
    wait_until_blocked(runner.thread)
    lock.release()
    assert runner.join() is True


def test_wait_that_ends_within_the_grace_period_never_suspends(
    grace: Callable[[float], None],
) -> None:
    grace(30.0)
    hook = FakeHook(suspend_now=False)
    lock = held_lock()
    runner = ThreadRunner(with_hook(hook, lambda: park(lock, None)))
    wait_until_blocked(runner.thread)
    lock.release()
    assert runner.join() is True
    assert not hook.entered.is_set()
    assert hook.suspend_now_calls == 1


def test_wait_whose_deadline_falls_within_the_grace_period_never_suspends(
    grace: Callable[[float], None],
) -> None:
    grace(30.0)
    hook = FakeHook(suspend_now=False)
    lock = held_lock()
    assert with_hook(hook, lambda: park(lock, deadline_for(0.02)))() is False
    assert not hook.entered.is_set()


@pytest.mark.parametrize("suspend_now", [True, False])
def test_timeout_zero_never_suspends(grace: Callable[[float], None], suspend_now: bool) -> None:
    grace(0.0)
    hook = FakeHook(suspend_now=suspend_now)
    lock = held_lock()
    assert with_hook(hook, lambda: park(lock, deadline_for(0)))() is False
    assert with_hook(hook, lambda: park(lock, monotonic() - 1))() is False
    assert not hook.entered.is_set()
    # A free lock is still taken without suspending.
    free = threading.Lock()
    assert with_hook(hook, lambda: park(free, deadline_for(0)))() is True
    assert not hook.entered.is_set()


def test_suspended_park_still_honours_its_deadline(grace: Callable[[float], None]) -> None:
    grace(30.0)
    hook = FakeHook(suspend_now=True)
    lock = held_lock()
    assert with_hook(hook, lambda: park(lock, deadline_for(0.02)))() is False
    assert hook.entered.is_set() and hook.exited.is_set()


# -- cond_wait -------------------------------------------------------------------------------


def test_cond_wait_timeout_leaves_no_waiter_and_keeps_the_lock() -> None:
    cond = threading.Condition()
    with cond:
        assert cond_wait(cond, deadline_for(0.01)) is False
        assert cond._is_owned()  # type: ignore[attr-defined]
        assert len(cond._waiters) == 0  # type: ignore[attr-defined]
        for _ in range(1000):
            assert cond_wait(cond, deadline_for(0)) is False
        assert len(cond._waiters) == 0  # type: ignore[attr-defined]


def test_cond_wait_is_woken_by_notify() -> None:
    cond = threading.Condition(threading.Lock())
    woken: list[bool] = []

    def waiter() -> None:
        with cond:
            woken.append(cond_wait(cond, deadline_for(30)))

    runner = ThreadRunner(waiter)
    wait_until_blocked(runner.thread)
    with cond:
        assert len(cond._waiters) == 1  # type: ignore[attr-defined]
        cond.notify()
    runner.join()
    assert woken == [True]
    assert len(cond._waiters) == 0  # type: ignore[attr-defined]


def test_cond_wait_restores_a_recursively_held_rlock() -> None:
    cond = threading.Condition(threading.RLock())
    with cond, cond:
        assert cond_wait(cond, deadline_for(0.01)) is False
        assert cond._is_owned()  # type: ignore[attr-defined]
    # Both levels were restored: the lock is now free for another thread.

    def acquire_elsewhere() -> bool:
        if not cond.acquire(timeout=5):
            return False
        cond.release()
        return True

    assert ThreadRunner(acquire_elsewhere).join()


def test_cond_wait_releases_the_lock_while_parked() -> None:
    cond = threading.Condition()
    ready = threading.Event()

    def waiter() -> bool:
        with cond:
            ready.set()
            return cond_wait(cond, deadline_for(30))

    runner = ThreadRunner(waiter)
    assert ready.wait(5)
    wait_until_blocked(runner.thread)
    assert cond.acquire(timeout=5)  # would fail if cond_wait kept the lock
    try:
        cond.notify_all()
    finally:
        cond.release()
    assert runner.join() is True


def test_cond_wait_parks_through_the_hook(grace: Callable[[float], None]) -> None:
    grace(30.0)
    hook = FakeHook(suspend_now=True)
    cond = threading.Condition()

    def waiter() -> bool:
        with cond:
            return cond_wait(cond, None)

    runner = ThreadRunner(with_hook(hook, waiter))
    assert hook.entered.wait(5)
    wait_until_blocked(runner.thread)
    with cond:
        cond.notify()
    assert runner.join() is True
    assert hook.exited.is_set()


# -- interrupt notification ------------------------------------------------------------------


def test_subscribe_notify_ignores_interrupts_that_cannot_be_signaled() -> None:
    cond = threading.Condition()
    assert subscribe_notify(None, cond) is None
    assert subscribe_notify(Interrupt.none(), cond) is None
    assert subscribe_notify(Interrupt(), cond) is None
    unsubscribe_notify(None, None)
    unsubscribe_notify(Interrupt.none(), None)


def test_subscribe_and_unsubscribe_notify_leave_nothing_behind() -> None:
    signal = InterruptSignal()
    interrupt = signal.interrupt
    cond = threading.Condition()
    handles = [subscribe_notify(interrupt, cond) for _ in range(100)]
    assert all(handle is not None for handle in handles)
    assert interrupt._callbacks is not None and len(interrupt._callbacks) == 100
    for handle in handles:
        unsubscribe_notify(interrupt, handle)
    assert interrupt._callbacks == {}


def test_interrupt_wakes_a_cond_waiter_through_subscribe_notify() -> None:
    signal = InterruptSignal()
    interrupt = signal.interrupt
    cond = threading.Condition()

    def waiter() -> bool:
        with cond:
            handle = subscribe_notify(interrupt, cond)
            try:
                while not interrupt.is_signaled:
                    cond_wait(cond, None)
                return True
            finally:
                unsubscribe_notify(interrupt, handle)

    runner = ThreadRunner(waiter)
    wait_until_blocked(runner.thread)
    signal.signal()
    assert runner.join(5) is True
    assert interrupt._callbacks is None  # dropped on signaling
    assert len(cond._waiters) == 0  # type: ignore[attr-defined]


def test_subscribe_after_the_signal_is_harmless() -> None:
    signal = InterruptSignal()
    signal.signal()
    cond = threading.Condition()
    handle = subscribe_notify(signal.interrupt, cond)
    unsubscribe_notify(signal.interrupt, handle)
    assert signal.interrupt._callbacks is None


# -- Waker -----------------------------------------------------------------------------------


def test_waker_releases_its_lock_once() -> None:
    waker = Waker()
    assert waker.lock.locked()
    waker()
    waker()  # a second wake-up is absorbed
    assert park(waker.lock, None) is True  # returns at once and re-arms the lock
    assert waker.lock.locked()
    assert park(waker.lock, deadline_for(0)) is False


def test_waker_wakes_a_parked_thread() -> None:
    waker = Waker()
    runner = ThreadRunner(park, waker.lock, deadline_for(30))
    wait_until_blocked(runner.thread)
    waker()
    assert runner.join() is True


# -- module hygiene --------------------------------------------------------------------------


def test_all_is_a_tuple_of_defined_names() -> None:
    assert isinstance(_blocking.__all__, tuple)
    for name in _blocking.__all__:
        assert hasattr(_blocking, name), name


def test_importing_the_lowest_layers_has_no_side_effects() -> None:
    code = (
        "import signal, threading\n"
        "handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}\n"
        "before = threading.active_count()\n"
        "from runtime.threading import _blocking, _constants, _errors, _events, _interrupts\n"
        "assert threading.active_count() == before, threading.enumerate()\n"
        "assert handlers == {s: signal.getsignal(s) for s in handlers}\n"
        "print('ok')\n"
    )
    result = run_in_subprocess(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
