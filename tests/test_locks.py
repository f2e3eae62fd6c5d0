"""Tests for runtime.threading._locks: LockBase, Lock, Semaphore, acquire_or_fail, synclock.

The first part is a contract suite that runs over every lock kind; the rest covers what is
specific to one kind, acquire_or_fail and synclock.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

import runtime.threading as rt
from helpers import ThreadRunner, wait_until_blocked
from runtime.threading import (
    InterruptException,
    InterruptSignal,
    Lock,
    LockBase,
    Semaphore,
    ThreadingException,
    _blocking,
    _constants,
    acquire_or_fail,
    synclock,
)

# -- the contract suite ---------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[], LockBase]
    #: How many holders at once.
    capacity: int
    #: Whether the holder can acquire again.
    reentrant: bool


KINDS = [
    Kind("Lock()", Lock, 1, True),
    Kind("Lock(reentrant=False)", lambda: Lock(reentrant=False), 1, False),
    Kind("Semaphore(1)", lambda: Semaphore(1), 1, False),
    Kind("Semaphore(3)", lambda: Semaphore(3), 3, False),
]


@pytest.fixture(params=KINDS, ids=[kind.name for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


class Holder:
    """A thread that takes every unit of a lock and keeps them until :meth:`stop`."""

    def __init__(self, lock: LockBase, units: int) -> None:
        self._lock = lock
        self._units = units
        self._held = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-lock-holder", daemon=True)
        self._thread.start()
        assert self._held.wait(5), "holder could not take the lock"

    def _run(self) -> None:
        for _ in range(self._units):
            assert self._lock.acquire(5)
        self._held.set()
        self._stop.wait(30)
        for _ in range(self._units):
            self._lock.release()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


def acquire_and_release(
    lock: LockBase, timeout: float | None, interrupt: rt.Interrupt | None = None
) -> bool:
    """Acquire in the calling thread and release at once (an RLock must be released by its
    owner); return what ``acquire`` returned."""
    if not lock.acquire(timeout, interrupt=interrupt):
        return False
    lock.release()
    return True


@contextlib.contextmanager
def held(lock: LockBase, units: int) -> Iterator[Holder]:
    """Hold every unit of ``lock`` in another thread for the duration of the block."""
    holder = Holder(lock, units)
    try:
        yield holder
    finally:
        holder.stop()


def test_uncontended_acquire_and_release(kind: Kind) -> None:
    lock = kind.make()
    for _ in range(kind.capacity):
        assert lock.acquire() is True
    for _ in range(kind.capacity):
        lock.release()
    assert lock.acquire(0) is True
    lock.release()


def test_context_manager_returns_none_and_releases(kind: Kind) -> None:
    lock = kind.make()
    with lock as value:
        assert value is None
        assert lock.acquire(0) is (kind.capacity > 1 or kind.reentrant)
        if kind.capacity > 1 or kind.reentrant:
            lock.release()
    assert not lock.locked()


def test_context_manager_does_not_suppress(kind: Kind) -> None:
    lock = kind.make()
    with pytest.raises(KeyError), lock:
        raise KeyError("boom")
    assert not lock.locked()


def test_locked_reflects_holders(kind: Kind) -> None:
    lock = kind.make()
    assert lock.locked() is False
    with held(lock, kind.capacity):
        assert lock.locked() is True
    assert lock.locked() is False
    if kind.capacity > 1:
        with held(lock, kind.capacity - 1):
            assert lock.locked() is False  # one unit is still free


def test_zero_timeout_never_blocks(kind: Kind) -> None:
    lock = kind.make()
    with held(lock, kind.capacity):
        started = time.monotonic()
        assert lock.acquire(0) is False
        assert time.monotonic() - started < 5


def test_positive_timeout_expires_not_early(kind: Kind) -> None:
    lock = kind.make()
    with held(lock, kind.capacity):
        started = time.monotonic()
        assert lock.acquire(0.2) is False
        elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 5


def test_positive_timeout_is_exact_with_an_interrupt(kind: Kind) -> None:
    # The reference implementation ended such waits one suspension grace period early.
    lock = kind.make()
    signal = InterruptSignal()
    with held(lock, kind.capacity):
        started = time.monotonic()
        assert lock.acquire(0.3, interrupt=signal.interrupt) is False
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5
    assert signal.interrupt._callbacks == {}, "the timed-out wait left a registration behind"


def test_blocked_acquire_is_woken_by_release(kind: Kind) -> None:
    lock = kind.make()
    with held(lock, kind.capacity) as holder:
        waiter = ThreadRunner(acquire_and_release, lock, 30)
        wait_until_blocked(waiter.thread)
        holder.stop()
        assert waiter.join() is True
    assert not lock.locked()


def test_signaled_interrupt_on_entry_raises_even_when_free(kind: Kind) -> None:
    lock = kind.make()
    signal = InterruptSignal()
    signal.signal()
    with pytest.raises(InterruptException) as info:
        lock.acquire(interrupt=signal.interrupt)
    assert info.value.interrupt is signal.interrupt
    with pytest.raises(InterruptException):
        lock.acquire(0, interrupt=signal.interrupt)
    assert not lock.locked(), "an interrupted acquire must not take the lock"


def test_interrupt_during_wait_raises_promptly(kind: Kind) -> None:
    lock = kind.make()
    signal = InterruptSignal()
    with held(lock, kind.capacity):
        waiter = ThreadRunner(lock.acquire, None, signal.interrupt)
        wait_until_blocked(waiter.thread)
        signal.signal()
        started = time.monotonic()
        with pytest.raises(InterruptException) as info:
            waiter.join(5)
        assert time.monotonic() - started < 5
        assert info.value.interrupt is signal.interrupt
        assert lock.locked(), "the interrupt must not change the lock's state"
    assert not lock.locked()


def test_interrupt_with_timeout_raises_rather_than_returning_false(kind: Kind) -> None:
    lock = kind.make()
    signal = InterruptSignal()
    with held(lock, kind.capacity):
        waiter = ThreadRunner(lock.acquire, 30, signal.interrupt)
        wait_until_blocked(waiter.thread)
        signal.signal()
        with pytest.raises(InterruptException):
            waiter.join(5)


def test_bad_arguments(kind: Kind) -> None:
    lock = kind.make()
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        lock.acquire(-1)
    with pytest.raises(ValueError):
        lock.acquire(float("nan"))
    with pytest.raises(TypeError, match="timeout"):
        lock.acquire("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timeout"):
        lock.acquire(True)
    with pytest.raises(TypeError, match="interrupt"):
        lock.acquire(0, interrupt=object())  # type: ignore[arg-type]
    assert not lock.locked()


def test_every_waiter_gets_the_lock_in_turn(kind: Kind) -> None:
    lock = kind.make()

    def take_and_give_back() -> bool:
        if not lock.acquire(30):
            return False
        lock.release()
        return True

    with held(lock, kind.capacity) as holder:
        waiters = [ThreadRunner(take_and_give_back) for _ in range(5)]
        for waiter in waiters:
            wait_until_blocked(waiter.thread)
        holder.stop()
        assert [waiter.join() for waiter in waiters] == [True] * 5


def test_timed_out_waiter_does_not_strand_another(kind: Kind) -> None:
    lock = kind.make()
    with held(lock, kind.capacity) as holder:
        short = ThreadRunner(acquire_and_release, lock, 0.2)
        patient = ThreadRunner(acquire_and_release, lock, 30)
        wait_until_blocked(patient.thread)
        assert short.join() is False
        holder.stop()
        assert patient.join() is True
    assert not lock.locked()


def test_wait_cooperates_with_the_scheduler_hook(
    kind: Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", 0.01)
    lock = kind.make()
    hook = RecordingHook()
    with held(lock, kind.capacity) as holder:
        waiter = ThreadRunner(with_hook, hook, lambda: acquire_and_release(lock, 30))
        assert hook.entered.wait(5), "a long wait on a worker must suspend its task"
        holder.stop()
        assert waiter.join() is True
    assert hook.suspensions == 1


class RecordingHook:
    """A scheduler hook that records suspensions."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.suspensions = 0

    def suspend_now(self) -> bool:
        return False

    @contextlib.contextmanager
    def suspend(self) -> Iterator[None]:
        self.suspensions += 1
        self.entered.set()
        yield


def with_hook(hook: RecordingHook, fn: Callable[[], bool]) -> bool:
    previous = _blocking.install_hook(hook)
    try:
        return fn()
    finally:
        _blocking.install_hook(previous)


@pytest.mark.stress
def test_capacity_is_never_exceeded_under_contention(kind: Kind) -> None:
    lock = kind.make()
    state = {"inside": 0, "peak": 0, "entries": 0}
    guard = threading.Lock()
    signals = [InterruptSignal() for _ in range(3)]

    def worker(index: int) -> None:
        interrupt = signals[index % 3].interrupt if index % 2 else None
        for round_ in range(200):
            try:
                timeout = None if round_ % 3 else 0.001
                if not lock.acquire(timeout, interrupt=interrupt):
                    continue
            except InterruptException:
                interrupt = None
                continue
            with guard:
                state["inside"] += 1
                state["entries"] += 1
                state["peak"] = max(state["peak"], state["inside"])
            with guard:
                state["inside"] -= 1
            lock.release()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [ThreadRunner(worker, i) for i in range(6)]
        for signal in signals:
            signal.signal()
        for w in workers:
            w.join(30)
    finally:
        sys.setswitchinterval(previous)
    assert state["peak"] <= kind.capacity
    assert state["entries"] > 0
    assert not lock.locked()


@pytest.mark.stress
def test_interrupted_waiter_passes_the_wake_up_on(kind: Kind) -> None:
    # A release and an interrupt racing: the release's notification may go to the waiter
    # that is leaving; the other waiter must still get the lock.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(30):
            lock = kind.make()
            signal = InterruptSignal()
            with held(lock, kind.capacity) as holder:
                leaving = ThreadRunner(acquire_and_release, lock, None, signal.interrupt)
                staying = ThreadRunner(acquire_and_release, lock, 30)
                wait_until_blocked(leaving.thread)
                wait_until_blocked(staying.thread)
                signal.signal()
                holder.stop()
                assert staying.join(10) is True
                with contextlib.suppress(InterruptException):
                    leaving.join(10)
            assert not lock.locked()
    finally:
        sys.setswitchinterval(previous)


# -- kind-specific behaviour -----------------------------------------------------------------


def test_reentrant_lock_can_be_acquired_again_by_its_holder() -> None:
    lock = Lock()
    assert lock.acquire(0)
    assert lock.acquire(0)
    assert lock.locked()
    lock.release()
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


def test_reentrant_lock_held_by_another_thread_blocks() -> None:
    lock = Lock()
    with held(lock, 1):
        assert lock.acquire(0.05) is False


def test_non_reentrant_lock_acquired_again_by_its_holder_waits_for_the_timeout() -> None:
    lock = Lock(reentrant=False)
    assert lock.acquire()
    started = time.monotonic()
    assert lock.acquire(0.1) is False
    assert time.monotonic() - started >= 0.1
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_wraps_the_documented_builtins() -> None:
    assert isinstance(Lock()._lock, type(threading.RLock()))
    assert isinstance(Lock(reentrant=False)._lock, type(threading.Lock()))
    assert isinstance(Semaphore(2)._lock, threading.BoundedSemaphore)


def test_semaphore_over_release_raises_value_error() -> None:
    semaphore = Semaphore(2)
    semaphore.acquire()
    semaphore.release()
    with pytest.raises(ValueError):
        semaphore.release()


def test_semaphore_admits_max_connections_holders() -> None:
    semaphore = Semaphore(3)
    assert [semaphore.acquire(0) for _ in range(4)] == [True, True, True, False]
    semaphore.release()
    assert semaphore.acquire(0)


@pytest.mark.parametrize("bad", [0, -1])
def test_semaphore_rejects_fewer_than_one_connection(bad: int) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        Semaphore(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, None])
def test_semaphore_rejects_non_int(bad: object) -> None:
    with pytest.raises(TypeError, match="max_connections"):
        Semaphore(bad)  # type: ignore[arg-type]


def test_lock_base_wraps_any_builtin_primitive() -> None:
    for primitive in (threading.Lock(), threading.RLock(), threading.Semaphore(2)):
        lock = LockBase(primitive)
        assert lock.acquire(0)
        lock.release()


@pytest.mark.parametrize("bad", [object(), None, Lock()])
def test_lock_base_rejects_other_objects(bad: object) -> None:
    with pytest.raises(TypeError, match="'lock' must be"):
        LockBase(bad)  # type: ignore[arg-type]


def test_releasing_the_builtin_directly_frees_it() -> None:
    # Documented limitation: it does not wake parked acquirers, but the state is right.
    primitive = threading.Lock()
    lock = LockBase(primitive)
    assert lock.acquire()
    primitive.release()
    assert not lock.locked()
    assert lock.acquire(0)
    lock.release()


@pytest.mark.parametrize("make", [Lock, lambda: Lock(reentrant=False)], ids=["rlock", "lock"])
def test_condition_over_a_library_lock(make: Callable[[], LockBase]) -> None:
    lock = make()
    cond = threading.Condition(lock)  # type: ignore[arg-type]
    ready: list[int] = []

    def consumer() -> int:
        with cond:
            while not ready:
                _blocking.cond_wait(cond, time.monotonic() + 30)
            return ready.pop()

    waiter = ThreadRunner(consumer)
    wait_until_blocked(waiter.thread)
    # The consumer released the library lock while waiting: it can be taken here.
    assert lock.acquire(5)
    ready.append(7)
    cond.notify()
    lock.release()
    assert waiter.join() == 7
    assert not lock.locked()


def test_condition_wait_releases_every_reentrant_level() -> None:
    lock = Lock()
    cond = threading.Condition(lock)  # type: ignore[arg-type]
    with cond, cond:
        # While parked, another thread can take the lock; afterwards both levels are back.
        other = ThreadRunner(acquire_and_release, lock, 5)
        assert _blocking.cond_wait(cond, time.monotonic() + 0.3) is False
        assert other.join() is True
        assert cond._is_owned()  # type: ignore[attr-defined]
        lock.release()
        assert cond._is_owned(), "the second level was not restored"  # type: ignore[attr-defined]
        assert lock.acquire(0)
    assert not lock.locked()


def test_public_names_and_modules() -> None:
    for obj in (LockBase, Lock, Semaphore, acquire_or_fail, synclock):
        assert obj.__module__ == "runtime.threading"
        assert getattr(rt, obj.__name__) is obj
    assert issubclass(Lock, LockBase)
    assert issubclass(Semaphore, LockBase)


def test_repr_names_the_state() -> None:
    lock = Lock()
    assert "unlocked" in repr(lock)
    with lock:
        assert "locked" in repr(lock)


# -- acquire_or_fail ----------------------------------------------------------------------------


def test_acquire_or_fail_holds_the_lock_during_the_call() -> None:
    lock = Lock(reentrant=False)
    fail_calls: list[int] = []

    def fail() -> Exception:
        fail_calls.append(1)
        return RuntimeError()

    result = acquire_or_fail(lock, 1, fail)
    assert result
    assert lock.locked()
    with result as value:
        assert value is None
        assert lock.locked()
    assert not lock.locked()
    assert fail_calls == []


def test_acquire_or_fail_releases_once() -> None:
    semaphore = Semaphore(2)
    semaphore.acquire()
    result = acquire_or_fail(semaphore, 0, RuntimeError)
    with result:
        pass
    result.__exit__(None, None, None)  # a second exit must not release again
    assert semaphore.acquire(0)  # one unit is free again: the first acquire still holds one
    assert not semaphore.acquire(0)


def test_acquire_or_fail_unused_result_keeps_the_lock() -> None:
    lock = Lock(reentrant=False)
    acquire_or_fail(lock, 0, RuntimeError)
    assert lock.locked()
    lock.release()


def test_acquire_or_fail_raises_what_fail_returns_on_timeout() -> None:
    lock = Lock()

    class Busy(Exception):
        pass

    with held(lock, 1):
        started = time.monotonic()
        with pytest.raises(Busy, match="busy"):
            acquire_or_fail(lock, 0.1, lambda: Busy("busy"))
        assert time.monotonic() - started >= 0.1
        with pytest.raises(Busy):
            acquire_or_fail(lock, 0, lambda: Busy("busy"))


def test_acquire_or_fail_propagates_the_interrupt_without_calling_fail() -> None:
    lock = Lock()
    signal = InterruptSignal()
    signal.signal()
    calls: list[int] = []

    def fail() -> Exception:
        calls.append(1)
        return RuntimeError()

    with pytest.raises(InterruptException):
        acquire_or_fail(lock, 1, fail, signal.interrupt)
    assert calls == []
    assert not lock.locked()


def test_acquire_or_fail_bad_arguments() -> None:
    with pytest.raises(TypeError, match="'lock'"):
        acquire_or_fail(threading.Lock(), 0, RuntimeError)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'fail'"):
        acquire_or_fail(Lock(), 0, "nope")  # type: ignore[arg-type]
    lock = Lock()
    with held(lock, 1), pytest.raises(TypeError, match="must return an exception"):
        acquire_or_fail(lock, 0, lambda: "not an exception")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        acquire_or_fail(Lock(), -1, RuntimeError)


# -- synclock -------------------------------------------------------------------------------------


def test_synclock_keeps_metadata_and_marks_the_wrapper() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    wrapped = synclock(add)
    assert wrapped(2, 3) == 5
    assert wrapped.__name__ == "add"
    assert wrapped.__doc__ == "Add two numbers."
    assert wrapped.__wrapped__ is add  # type: ignore[attr-defined]
    assert wrapped.__synclock__ is True  # type: ignore[attr-defined]


def test_synclock_serialises_calls() -> None:
    inside = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    @synclock
    def critical(who: str) -> None:
        entered.append(who)
        if who == "first":
            inside.set()
            release.wait(30)

    first = ThreadRunner(critical, "first")
    assert inside.wait(5)
    second = ThreadRunner(critical, "second")
    wait_until_blocked(second.thread)
    assert entered == ["first"]
    release.set()
    first.join()
    second.join()
    assert entered == ["first", "second"]


def test_synclock_lock_is_reentrant() -> None:
    @synclock
    def countdown(n: int) -> int:
        return 0 if n == 0 else 1 + countdown(n - 1)

    assert countdown(5) == 5


def test_synclock_on_a_method_shares_one_lock_across_instances() -> None:
    inside = threading.Event()
    release = threading.Event()

    class Account:
        @synclock
        def work(self, block: bool) -> None:
            if block:
                inside.set()
                release.wait(30)

    first = ThreadRunner(Account().work, True)
    assert inside.wait(5)
    second = ThreadRunner(Account().work, False)
    wait_until_blocked(second.thread)
    release.set()
    first.join()
    second.join()


def test_synclock_by_name_shares_one_lock_between_functions() -> None:
    inside = threading.Event()
    release = threading.Event()

    @synclock("test-locks-shared")
    def one() -> None:
        inside.set()
        release.wait(30)

    @synclock("test-locks-shared")
    def two() -> str:
        return "two"

    first = ThreadRunner(one)
    assert inside.wait(5)
    second = ThreadRunner(two)
    wait_until_blocked(second.thread)
    release.set()
    first.join()
    assert second.join() == "two"


def test_synclock_twice_with_the_same_lock_returns_the_cached_wrapper() -> None:
    def fn() -> None:
        pass

    assert synclock(fn) is synclock(fn)
    named = synclock("test-locks-cache")

    def other() -> None:
        pass

    assert named(other) is synclock("test-locks-cache")(other)


def test_synclock_with_a_different_lock_raises() -> None:
    def fn() -> None:
        pass

    synclock("test-locks-a")(fn)
    with pytest.raises(ThreadingException):
        synclock("test-locks-b")(fn)
    with pytest.raises(ThreadingException):
        synclock(fn)

    def anonymous_first() -> None:
        pass

    synclock(anonymous_first)
    with pytest.raises(ThreadingException):
        synclock("test-locks-a")(anonymous_first)


def test_synclock_on_a_wrapper_raises() -> None:
    wrapped = synclock(lambda: None)
    with pytest.raises(ThreadingException, match=r"^Cannot apply synclock to a function twice$"):
        synclock(wrapped)
    with pytest.raises(ThreadingException, match="Cannot apply synclock to a function twice"):
        synclock("test-locks-wrapper")(wrapped)


def test_synclock_cache_holds_the_function_weakly() -> None:
    def fn() -> None:
        pass

    wrapper = synclock(fn)
    ref = weakref.ref(fn)
    del fn, wrapper
    gc.collect()
    assert ref() is None


def test_synclock_works_on_callables_that_cannot_be_cached() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "called"

    assert synclock(Unhashable())() == "called"


def test_synclock_rejects_non_callables() -> None:
    with pytest.raises(TypeError):
        synclock(42)  # type: ignore[call-overload]
