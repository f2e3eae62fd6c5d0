"""Tests for ``runtime.threading._events``.

A contract suite runs over every event kind (``Event``, ``AutoClearEvent``, ``OneTimeEvent``,
each on its own or wrapping a builtin ``threading.Event``). Then come the auto-clear
consumption rules (API §1.5), multi-waits (API §1.4, IMPROVEMENTS D3/D22/D37), ``OneTimeEvent``
and the internal ``EventContinuation``.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from time import monotonic

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ThreadRunner, wait_until_blocked
from runtime.threading import _blocking
from runtime.threading._errors import ThreadingException
from runtime.threading._events import (
    AutoClearEvent,
    ContinueWhen,
    Event,
    EventContinuation,
    OneTimeEvent,
)
from runtime.threading._interrupts import Interrupt, InterruptSignal

TIMEOUT_MESSAGE = "'timeout' must be a non-negative number"
CLEAR_MESSAGE = "a OneTimeEvent cannot be cleared"


@dataclass(frozen=True)
class Kind:
    """One event kind of the contract suite."""

    cls: type[Event]
    wrapped: bool

    @property
    def name(self) -> str:
        return self.cls.__name__ + ("(threading.Event)" if self.wrapped else "")

    @property
    def auto(self) -> bool:
        return issubclass(self.cls, AutoClearEvent)

    @property
    def one_time(self) -> bool:
        return issubclass(self.cls, OneTimeEvent)

    def make(self, purpose: str = "USER") -> Event:
        if self.wrapped:
            return self.cls(threading.Event(), purpose=purpose)
        return self.cls(purpose=purpose)


KINDS = [
    Kind(cls, wrapped) for cls in (Event, AutoClearEvent, OneTimeEvent) for wrapped in (False, True)
]


@pytest.fixture(params=KINDS, ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    result: Kind = request.param
    return result


def assert_no_registrations(*events: Event) -> None:
    for event in events:
        assert event._watchers == {}, event
        assert len(event._cond._waiters) == 0, event  # type: ignore[attr-defined]


def fired_signal() -> InterruptSignal:
    signal = InterruptSignal()
    signal.signal()
    return signal


class FakeHook:
    """A scheduler hook that records suspensions (see test_blocking)."""

    def __init__(self, suspend_now: bool) -> None:
        self.now = suspend_now
        self.entered = threading.Event()

    def suspend_now(self) -> bool:
        return self.now

    @contextlib.contextmanager
    def suspend(self) -> Iterator[None]:
        self.entered.set()
        yield


def with_hook(hook: FakeHook, fn: Callable[[], bool]) -> Callable[[], bool]:
    def run() -> bool:
        previous = _blocking.install_hook(hook)
        try:
            return fn()
        finally:
            _blocking.install_hook(previous)

    return run


# The three ways of waiting on a single event, used to run the same test over each.
WAYS: dict[str, Callable[..., bool]] = {
    "wait": lambda event, *args, **kwargs: event.wait(*args, **kwargs),
    "wait_any": lambda event, *args, **kwargs: Event.wait_any([event], *args, **kwargs),
    "wait_all": lambda event, *args, **kwargs: Event.wait_all([event], *args, **kwargs),
}
ways = pytest.mark.parametrize("way", list(WAYS))


# =============================================================================================
# Contract suite over every event kind
# =============================================================================================


def test_new_event_is_clear_and_has_a_purpose(kind: Kind) -> None:
    event = kind.make()
    assert not event.is_signaled
    assert event.purpose == "USER"
    assert kind.make("TASK_NOTIFY").purpose == "TASK_NOTIFY"
    assert kind.make("").purpose == "USER"
    assert "USER" in repr(event) and "clear" in repr(event)


@pytest.mark.parametrize("cls", [Event, AutoClearEvent, OneTimeEvent])
def test_constructor_validates_its_arguments(cls: type[Event]) -> None:
    with pytest.raises(TypeError, match="'internal_event'"):
        cls(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'purpose'"):
        cls(purpose=1)  # type: ignore[arg-type]


def test_wrapped_builtin_is_the_state(kind: Kind) -> None:
    builtin = threading.Event()
    builtin.set()
    event = kind.cls(builtin)
    assert event.is_signaled
    if not kind.one_time:
        event.clear()
        assert not builtin.is_set()
    event.signal()
    assert builtin.is_set()


def test_is_signaled_never_consumes(kind: Kind) -> None:
    event = kind.make()
    event.signal()
    assert all(event.is_signaled for _ in range(5))
    assert "signaled" in repr(event)


@pytest.mark.parametrize("timeout", [None, 0, 5.0])
@ways
def test_wait_on_a_signaled_event_returns_true(
    kind: Kind, way: str, timeout: float | None
) -> None:
    event = kind.make()
    event.signal()
    assert WAYS[way](event, timeout) is True
    if kind.auto:
        assert not event.is_signaled  # consumed by the successful wait
        assert WAYS[way](event, 0) is False
    else:
        assert event.is_signaled
        assert WAYS[way](event, 0) is True
    assert_no_registrations(event)


def test_signals_are_not_counted(kind: Kind) -> None:
    event = kind.make()
    event.signal()
    event.signal()
    assert event.wait(0) is True
    assert event.wait(0) is (not kind.auto)


def test_clear_resets_the_flag_or_raises_for_one_time_events(kind: Kind) -> None:
    event = kind.make()
    if kind.one_time:
        with pytest.raises(ThreadingException) as before:
            event.clear()
        assert str(before.value) == CLEAR_MESSAGE
        event.signal()
        with pytest.raises(ThreadingException) as after:
            event.clear()
        assert str(after.value) == CLEAR_MESSAGE
        assert before.value is not after.value
        assert event.is_signaled and event.wait(0)
        return
    event.clear()  # clearing a clear event is harmless
    event.signal()
    event.clear()
    assert not event.is_signaled
    assert event.wait(0) is False


@ways
def test_wait_zero_never_blocks_nor_suspends(kind: Kind, way: str) -> None:
    event = kind.make()
    hook = FakeHook(suspend_now=True)
    signal = InterruptSignal()
    assert with_hook(hook, lambda: WAYS[way](event, 0))() is False
    assert with_hook(hook, lambda: WAYS[way](event, 0, interrupt=signal.interrupt))() is False
    assert not hook.entered.is_set()
    assert signal.interrupt._callbacks == {}
    assert_no_registrations(event)


@ways
def test_wait_on_a_signaled_event_never_suspends(kind: Kind, way: str) -> None:
    event = kind.make()
    event.signal()
    hook = FakeHook(suspend_now=True)
    assert with_hook(hook, lambda: WAYS[way](event, None))() is True
    assert not hook.entered.is_set()


@pytest.mark.parametrize("timeout", [-1, -0.5, -1e-9, float("-inf"), float("nan")])
@pytest.mark.parametrize("signaled", [False, True])
@ways
def test_negative_timeout_raises_before_anything_else(
    kind: Kind, way: str, signaled: bool, timeout: float
) -> None:
    event = kind.make()
    if signaled:
        event.signal()
    for interrupt in (None, fired_signal().interrupt):
        with pytest.raises(ValueError) as raised:
            WAYS[way](event, timeout, interrupt=interrupt)
        assert str(raised.value) == TIMEOUT_MESSAGE
    assert event.is_signaled is signaled  # nothing consumed


def test_negative_timeout_on_empty_multi_waits() -> None:
    for wait in (Event.wait_any, Event.wait_all):
        with pytest.raises(ValueError, match=TIMEOUT_MESSAGE):
            wait([], -1)


@ways
def test_timeout_returns_false_and_leaves_nothing_behind(kind: Kind, way: str) -> None:
    event = kind.make()
    signal = InterruptSignal()
    started = monotonic()
    assert WAYS[way](event, 0.02) is False
    assert WAYS[way](event, 0.02, interrupt=signal.interrupt) is False
    assert monotonic() - started >= 0.04 - 0.005
    assert_no_registrations(event)
    assert signal.interrupt._callbacks == {}


@ways
def test_interrupt_signaled_on_entry_returns_false_even_if_signaled(kind: Kind, way: str) -> None:
    event = kind.make()
    event.signal()
    interrupt = fired_signal().interrupt
    for timeout in (None, 0, 5.0):
        assert WAYS[way](event, timeout, interrupt=interrupt) is False
    assert event.is_signaled  # an interrupted wait consumes nothing
    assert_no_registrations(event)


@ways
def test_interrupt_during_the_wait_wakes_the_waiter(kind: Kind, way: str) -> None:
    event = kind.make()
    signal = InterruptSignal()
    runner = ThreadRunner(WAYS[way], event, 30, interrupt=signal.interrupt)
    wait_until_blocked(runner.thread)
    started = monotonic()
    signal.signal()
    assert runner.join(5) is False
    assert monotonic() - started < 5
    assert not event.is_signaled
    assert_no_registrations(event)


@ways
def test_signaled_interrupt_wins_over_a_simultaneous_signal(kind: Kind, way: str) -> None:
    event = kind.make()
    signal = InterruptSignal()
    # Registered before the waiter's own wake-up: when the interrupt fires, this callback
    # signals the event first, so the waiter wakes to find both signaled.
    signal.interrupt._subscribe(event.signal)
    runner = ThreadRunner(WAYS[way], event, 30, interrupt=signal.interrupt)
    wait_until_blocked(runner.thread)
    signal.signal()
    assert runner.join(5) is False
    assert event.is_signaled  # the interrupted wait consumed nothing
    assert_no_registrations(event)


@ways
def test_blocked_wait_is_released_by_signal(kind: Kind, way: str) -> None:
    event = kind.make()
    runner = ThreadRunner(WAYS[way], event, 30)
    wait_until_blocked(runner.thread)
    event.signal()
    assert runner.join(5) is True
    assert event.is_signaled is (not kind.auto)
    assert_no_registrations(event)


def test_signal_releases_every_waiter_of_a_non_consuming_event(kind: Kind) -> None:
    if kind.auto:
        pytest.skip("an auto-clear signal releases exactly one waiter (tested below)")
    event = kind.make()
    runners = [ThreadRunner(WAYS[way], event, 30) for way in WAYS for _ in range(2)]
    for runner in runners:
        wait_until_blocked(runner.thread)
    event.signal()
    assert [runner.join(5) for runner in runners] == [True] * len(runners)
    assert_no_registrations(event)


def _keep_waking(wake: Callable[[], None], runner: ThreadRunner[bool], limit: float) -> None:
    """Cause spurious wake-ups of ``runner`` until it returns (at most ``limit`` seconds)."""
    pause = threading.Event()
    end = monotonic() + limit
    while runner.is_alive() and monotonic() < end:
        wake()
        pause.wait(0.005)  # pacing of the wake-ups, not synchronisation


def test_wait_timeout_is_one_deadline_despite_spurious_wakeups(kind: Kind) -> None:
    event = kind.make()
    cond = event._cond

    def spurious() -> None:
        with cond:
            cond.notify_all()

    started = monotonic()
    runner = ThreadRunner(event.wait, 0.1)
    _keep_waking(spurious, runner, limit=10)
    assert runner.join(5) is False
    assert 0.1 - 0.005 <= monotonic() - started < 5


@pytest.mark.parametrize("multi", ["wait_any", "wait_all"])
def test_multi_wait_timeout_is_one_deadline_despite_wakeups(kind: Kind, multi: str) -> None:
    event = kind.make()
    toggled = Event()  # signaled and cleared again: wakes the multi-wait without satisfying it

    def wake() -> None:
        toggled.signal()
        toggled.clear()

    members = [event, toggled, Event()] if multi == "wait_all" else [event]
    if multi == "wait_any":

        def wake_any() -> None:
            for watcher in list(event._watchers.values()):
                watcher()  # a watcher call that finds nothing to take

        wake = wake_any
    started = monotonic()
    runner = ThreadRunner(getattr(Event, multi), members, 0.1)
    _keep_waking(wake, runner, limit=10)
    assert runner.join(5) is False
    assert 0.1 - 0.005 <= monotonic() - started < 5
    assert_no_registrations(*members)


@ways
def test_blocked_wait_cooperates_with_the_scheduler(kind: Kind, way: str) -> None:
    event = kind.make()
    hook = FakeHook(suspend_now=True)
    runner = ThreadRunner(with_hook(hook, lambda: WAYS[way](event, 30)))
    assert hook.entered.wait(5)
    wait_until_blocked(runner.thread)
    event.signal()
    assert runner.join(5) is True


# =============================================================================================
# AutoClearEvent: exact consumption (API §1.5, IMPROVEMENTS D22)
# =============================================================================================


def test_one_signal_releases_exactly_one_of_several_blocked_waiters() -> None:
    event = AutoClearEvent()
    released = threading.Semaphore(0)

    def waiter() -> bool:
        result = event.wait(30)
        released.release()
        return result

    runners = [ThreadRunner(waiter) for _ in range(5)]
    for runner in runners:
        wait_until_blocked(runner.thread)
    for _ in runners:
        event.signal()
        assert released.acquire(timeout=5)
        assert not released.acquire(timeout=0.05)  # nobody else was released by that signal
        assert not event.is_signaled
    assert [runner.join(5) for runner in runners] == [True] * len(runners)
    assert_no_registrations(event)


def test_auto_clear_flag_stays_set_until_one_waiter_consumes_it() -> None:
    event = AutoClearEvent()
    event.signal()
    assert event.is_signaled and event.is_signaled
    runner = ThreadRunner(event.wait, 5)
    assert runner.join() is True
    assert not event.is_signaled
    assert event.wait(0) is False


def test_blocked_waiters_of_mixed_kinds_share_one_signal() -> None:
    event = AutoClearEvent()
    other = AutoClearEvent()
    released = threading.Semaphore(0)

    def consume(way: Callable[[], bool]) -> Callable[[], bool]:
        def run() -> bool:
            result = way()
            released.release()
            return result

        return run

    runners = [
        ThreadRunner(consume(lambda: event.wait(30))),
        ThreadRunner(consume(lambda: Event.wait_any([other, event], 30))),
        ThreadRunner(consume(lambda: Event.wait_all([event], 30))),
    ]
    for runner in runners:
        wait_until_blocked(runner.thread)
    for _ in runners:
        event.signal()
        assert released.acquire(timeout=5)
        assert not released.acquire(timeout=0.05)
    assert [runner.join(5) for runner in runners] == [True, True, True]
    assert not event.is_signaled and not other.is_signaled
    assert_no_registrations(event, other)


def test_wait_any_consumes_only_the_first_signaled_member_in_order() -> None:
    a, b, c = AutoClearEvent(), AutoClearEvent(), AutoClearEvent()
    b.signal()
    c.signal()
    assert Event.wait_any([a, b, c], 0) is True
    assert (a.is_signaled, b.is_signaled, c.is_signaled) == (False, False, True)
    assert Event.wait_any([a, b, c], 0) is True
    assert (a.is_signaled, b.is_signaled, c.is_signaled) == (False, False, False)
    assert Event.wait_any([a, b, c], 0) is False


def test_wait_any_returns_for_the_first_signaled_member_even_if_it_is_manual() -> None:
    # The first signaled member in sequence order is the one the wait takes: a signaled
    # manual event before an auto-clear one leaves the auto-clear signal in place.
    manual, auto = Event(), AutoClearEvent()
    manual.signal()
    auto.signal()
    assert Event.wait_any([manual, auto], 0) is True
    assert manual.is_signaled and auto.is_signaled
    assert Event.wait_any([auto, manual], 0) is True
    assert manual.is_signaled and not auto.is_signaled


def test_blocked_wait_any_consumes_only_the_member_that_satisfied_it() -> None:
    a, b, c = AutoClearEvent(), AutoClearEvent(), AutoClearEvent()
    runner = ThreadRunner(Event.wait_any, [a, b, c], 30)
    wait_until_blocked(runner.thread)
    b.signal()
    assert runner.join(5) is True
    assert not b.is_signaled
    c.signal()
    assert c.is_signaled  # no stale registration took it
    assert_no_registrations(a, b, c)


def test_wait_all_consumes_every_member_only_when_all_are_signaled() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    manual = Event()
    members = [a, b, manual]
    a.signal()
    manual.signal()
    assert Event.wait_all(members, 0) is False
    assert a.is_signaled and manual.is_signaled  # partial signals are kept
    b.signal()
    assert Event.wait_all(members, 0) is True
    assert not a.is_signaled and not b.is_signaled and manual.is_signaled
    assert_no_registrations(*members)


def test_blocked_wait_all_keeps_partial_signals_until_complete() -> None:
    a, b, c = AutoClearEvent(), AutoClearEvent(), AutoClearEvent()
    runner = ThreadRunner(Event.wait_all, [a, b, c], 30)
    wait_until_blocked(runner.thread)
    a.signal()
    b.signal()
    wait_until_blocked(runner.thread)
    assert a.is_signaled and b.is_signaled  # not consumed while c is missing
    c.signal()
    assert runner.join(5) is True
    assert not (a.is_signaled or b.is_signaled or c.is_signaled)
    assert_no_registrations(a, b, c)


def test_wait_all_competing_with_single_waits_never_splits_a_set() -> None:
    # wait_all takes both signals or neither: a waiter on `a` alone can take `a` only if the
    # wait_all did not complete.
    a, b = AutoClearEvent(), AutoClearEvent()
    all_runner = ThreadRunner(Event.wait_all, [a, b], 30)
    wait_until_blocked(all_runner.thread)
    a.signal()
    wait_until_blocked(all_runner.thread)
    assert a.wait(0) is True  # the partial signal is still available to others
    b.signal()
    wait_until_blocked(all_runner.thread)
    assert b.is_signaled and not a.is_signaled
    a.signal()
    assert all_runner.join(5) is True
    assert not a.is_signaled and not b.is_signaled


def test_timed_out_and_interrupted_waits_consume_nothing() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    a.signal()
    assert Event.wait_all([a, b], 0.01) is False
    assert Event.wait_all([a, b], 0) is False
    interrupt = fired_signal().interrupt
    assert a.wait(0, interrupt=interrupt) is False
    assert Event.wait_any([a], None, interrupt=interrupt) is False
    assert Event.wait_all([a], None, interrupt=interrupt) is False
    assert a.is_signaled and not b.is_signaled


@pytest.mark.stress
def test_auto_clear_signals_are_consumed_exactly_once_under_contention() -> None:
    event = AutoClearEvent()
    never = Event()
    stop = threading.Event()
    consumed = threading.Semaphore(0)
    count_lock = threading.Lock()
    counts = {"taken": 0}

    def consumer(way: Callable[[], bool]) -> None:
        while not stop.is_set():
            if way():
                with count_lock:
                    counts["taken"] += 1
                consumed.release()

    ways_ = [
        lambda: event.wait(0.2),
        lambda: Event.wait_any([never, event], 0.2),
        lambda: Event.wait_all([event], 0.2),
        lambda: event.wait(0),
    ]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        runners = [ThreadRunner(consumer, way) for way in ways_ for _ in range(2)]
        rounds = 300
        for _ in range(rounds):
            event.signal()
            assert consumed.acquire(timeout=5)
    finally:
        sys.setswitchinterval(previous)
        stop.set()
    for runner in runners:
        runner.join(10)
    assert counts["taken"] == rounds
    assert not consumed.acquire(timeout=0)
    assert not event.is_signaled
    assert_no_registrations(event, never)


# -- a model-based test of the consumption rules ----------------------------------------------

# Member kinds: two auto-clear (one wrapping a builtin), two manual (one wrapping a builtin)
# and one one-time event.
MODEL_KINDS = [
    Kind(AutoClearEvent, False),
    Kind(AutoClearEvent, True),
    Kind(Event, False),
    Kind(Event, True),
    Kind(OneTimeEvent, False),
]
_index = st.integers(0, len(MODEL_KINDS) - 1)
_timeout = st.sampled_from([0, 1e-5])
_operation = st.one_of(
    st.tuples(st.just("signal"), _index),
    st.tuples(st.just("clear"), _index),
    st.tuples(st.just("wait"), _index, _timeout, st.booleans()),
    st.tuples(st.just("any"), st.lists(_index, max_size=6), _timeout, st.booleans()),
    st.tuples(st.just("all"), st.lists(_index, max_size=6), _timeout, st.booleans()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_operation, max_size=40))
def test_consumption_matches_the_model(operations: list[tuple[object, ...]]) -> None:
    events = [kind.make() for kind in MODEL_KINDS]
    auto = [kind.auto for kind in MODEL_KINDS]
    flags = [False] * len(events)
    live = InterruptSignal().interrupt
    fired = fired_signal().interrupt

    def unique(indexes: Sequence[int]) -> list[int]:
        return list(dict.fromkeys(indexes))

    for operation in operations:
        name = operation[0]
        if name == "signal":
            (index,) = operation[1:]
            assert isinstance(index, int)
            events[index].signal()
            flags[index] = True
            continue
        if name == "clear":
            (index,) = operation[1:]
            assert isinstance(index, int)
            if MODEL_KINDS[index].one_time:
                with pytest.raises(ThreadingException):
                    events[index].clear()
            else:
                events[index].clear()
                flags[index] = False
            continue
        target, timeout, interrupted = operation[1:]
        assert isinstance(timeout, (int, float)) and isinstance(interrupted, bool)
        interrupt = fired if interrupted else live
        if name == "wait":
            assert isinstance(target, int)
            result = events[target].wait(timeout, interrupt=interrupt)
            expected = flags[target] and not interrupted
            if expected and auto[target]:
                flags[target] = False
        elif name == "any":
            assert isinstance(target, list)
            result = Event.wait_any([events[i] for i in target], timeout, interrupt=interrupt)
            first = next((i for i in unique(target) if flags[i]), None)
            expected = first is not None and not interrupted
            if expected and first is not None and auto[first]:
                flags[first] = False
        else:
            assert isinstance(target, list)
            result = Event.wait_all([events[i] for i in target], timeout, interrupt=interrupt)
            expected = all(flags[i] for i in target) and not interrupted
            if expected:
                for i in unique(target):
                    if auto[i]:
                        flags[i] = False
        assert result is expected, operation
        assert [event.is_signaled for event in events] == flags, operation
    assert_no_registrations(*events)
    assert live._callbacks == {}


# =============================================================================================
# Multi-waits
# =============================================================================================


def test_empty_multi_waits_return_at_once() -> None:
    # With no timeout at all: an empty wait_any must not block forever.
    assert Event.wait_any([]) is False
    assert Event.wait_any((), None) is False
    assert Event.wait_all([]) is True
    assert Event.wait_all((), None) is True
    interrupt = fired_signal().interrupt
    assert Event.wait_any([], None, interrupt=interrupt) is False
    assert Event.wait_all([], None, interrupt=interrupt) is False


def test_duplicates_count_once() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    a.signal()
    assert Event.wait_all([a, a, a], 0) is True  # one signal satisfies every copy
    assert not a.is_signaled
    a.signal()
    b.signal()
    assert Event.wait_any([a, a, b], 0) is True
    assert not a.is_signaled and b.is_signaled  # consumed once, from the first member
    assert Event.wait_all([b, b], 0) is True
    assert not b.is_signaled
    assert_no_registrations(a, b)


def test_multi_waits_accept_any_sequence_of_mixed_kinds() -> None:
    members = [kind.make() for kind in KINDS]
    for event in members:
        event.signal()
    assert Event.wait_all(tuple(members), 0) is True
    assert Event.wait_any(members, 0) is True
    assert_no_registrations(*members)


@pytest.mark.parametrize("wait", [Event.wait_any, Event.wait_all])
def test_multi_waits_reject_non_events_naming_the_argument(
    wait: Callable[..., bool],
) -> None:
    with pytest.raises(TypeError, match="'events'"):
        wait([Event(), threading.Event()], 0)
    with pytest.raises(TypeError, match="'events'"):
        wait([None], 0)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_blocked_wait_any_is_woken_by_any_member(position: int) -> None:
    members = [Event(), AutoClearEvent(), OneTimeEvent()]
    runner = ThreadRunner(Event.wait_any, members, 30)
    wait_until_blocked(runner.thread)
    members[position].signal()
    assert runner.join(5) is True
    assert_no_registrations(*members)


def test_wait_all_over_wrappers_of_one_builtin_does_not_deadlock() -> None:
    # Two Event objects wrapping the same builtin share its (non-reentrant) condition lock.
    builtin = threading.Event()
    first, second = Event(builtin), AutoClearEvent(builtin)
    builtin.set()
    runner = ThreadRunner(Event.wait_all, [first, second], 1)
    assert runner.join(5) is True
    assert not builtin.is_set()  # consumed through the auto-clear wrapper
    waiter = ThreadRunner(Event.wait_all, [second, first], 30)
    wait_until_blocked(waiter.thread)
    first.signal()
    assert waiter.join(5) is True


def test_many_timed_out_multi_waits_leave_no_registration_and_consume_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registrations = [0]
    add_watcher = Event._add_watcher

    def counting_add_watcher(self: Event, key: object, watcher: Callable[[], None]) -> None:
        registrations[0] += 1
        add_watcher(self, key, watcher)

    monkeypatch.setattr(Event, "_add_watcher", counting_add_watcher)
    a, b = AutoClearEvent(), AutoClearEvent()
    manual, wrapped = Event(), Event(threading.Event())
    a.signal()  # wait_all finds a signaled but b missing; wait_any finds nothing
    any_members = [b, manual, wrapped]
    all_members = [a, b, manual, wrapped]
    signal = InterruptSignal()
    interrupt = signal.interrupt
    # 1e-5 s timeouts really register: the deadline has not passed yet when the first check
    # fails (with 1e-6 s, checking four members already takes longer than the timeout).
    for _ in range(5000):
        assert Event.wait_any(any_members, 1e-5) is False
        assert Event.wait_all(all_members, 1e-5) is False
        assert Event.wait_any(any_members, 1e-5, interrupt=interrupt) is False
        assert Event.wait_all(all_members, 1e-5, interrupt=interrupt) is False
    for _ in range(1000):
        assert b.wait(1e-5, interrupt=interrupt) is False
        assert b.wait(0, interrupt=interrupt) is False
    # Most of the 20,000 multi-waits got past the first check and registered on every member.
    assert registrations[0] > 10_000 * 3
    assert_no_registrations(*all_members)
    assert interrupt._callbacks == {}
    assert a.is_signaled and not b.is_signaled  # nothing consumed
    # A live waiter still gets the next signal.
    runner = ThreadRunner(b.wait, 30)
    wait_until_blocked(runner.thread)
    b.signal()
    assert runner.join(5) is True
    assert a.is_signaled and not b.is_signaled


def test_interrupted_multi_waits_leave_no_registration() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    manual = Event()
    a.signal()
    any_members = [b, manual]
    all_members = [a, b, manual]
    pending: queue.Queue[InterruptSignal | None] = queue.Queue()

    def signaler() -> None:
        while (signal := pending.get()) is not None:
            signal.signal()

    runner = ThreadRunner(signaler)
    interrupts: list[Interrupt] = []
    try:
        for round_ in range(1000):
            for wait, members in ((Event.wait_any, any_members), (Event.wait_all, all_members)):
                signal = InterruptSignal()
                interrupts.append(signal.interrupt)
                pending.put(signal)  # signaled on entry or during the wait, whichever
                assert wait(members, 30, interrupt=signal.interrupt) is False, round_
    finally:
        pending.put(None)
    runner.join()
    assert_no_registrations(*all_members)
    assert all(interrupt._callbacks is None for interrupt in interrupts)
    assert a.is_signaled and not b.is_signaled


def test_stale_wait_all_registration_cannot_steal_signals() -> None:
    # IMPROVEMENTS D3: after a timed-out wait_all([a, b]), signaling b cleared a and b.
    a, b = AutoClearEvent(), AutoClearEvent()
    a.signal()
    assert Event.wait_all([a, b], 1e-5) is False
    assert Event.wait_all([a, b], 0) is False
    b.signal()
    assert a.is_signaled and b.is_signaled
    # With a live waiter on b, the signal goes to it and a keeps its own.
    assert b.wait(0) is True
    runner = ThreadRunner(b.wait, 30)
    wait_until_blocked(runner.thread)
    b.signal()
    assert runner.join(5) is True
    assert a.is_signaled and not b.is_signaled
    assert_no_registrations(a, b)


# -- wrapped builtins set from outside (API §1.4, IMPROVEMENTS D37) --------------------------


@pytest.mark.parametrize("cls", [Event, AutoClearEvent, OneTimeEvent])
def test_external_set_is_seen_by_wait_promptly(cls: type[Event]) -> None:
    builtin = threading.Event()
    event = cls(builtin)
    runner = ThreadRunner(event.wait, 30)
    wait_until_blocked(runner.thread)
    builtin.set()
    assert runner.join(5) is True


@pytest.mark.parametrize("multi", ["wait_any", "wait_all"])
def test_external_set_is_seen_by_multi_waits_at_their_deadline(multi: str) -> None:
    builtin = threading.Event()
    wrapped = Event(builtin)
    other = Event()
    if multi == "wait_all":
        other.signal()
        members = [wrapped, other]
    else:
        members = [Event(), wrapped]
    started = monotonic()
    runner = ThreadRunner(getattr(Event, multi), members, 0.3)
    wait_until_blocked(runner.thread)
    builtin.set()  # not pushed to the multi-wait: it re-reads the builtin at the latest at 0.3 s
    assert runner.join(5) is True
    assert monotonic() - started < 5
    assert_no_registrations(*members)


def test_external_set_is_seen_when_a_multi_wait_wakes_for_another_reason() -> None:
    builtin = threading.Event()
    wrapped, other = AutoClearEvent(builtin), Event()
    runner = ThreadRunner(Event.wait_all, [wrapped, other], 30)
    wait_until_blocked(runner.thread)
    builtin.set()
    other.signal()  # wakes the wait, which re-reads the builtin
    assert runner.join(5) is True
    assert not builtin.is_set()  # consumed through the auto-clear wrapper


def test_external_clear_is_seen_by_multi_waits() -> None:
    builtin = threading.Event()
    wrapped = Event(builtin)
    wrapped.signal()
    builtin.clear()
    assert Event.wait_any([wrapped], 0.01) is False
    assert Event.wait_all([wrapped, Event()], 0) is False


# =============================================================================================
# OneTimeEvent
# =============================================================================================


def test_one_time_event_stays_signaled_forever() -> None:
    event = OneTimeEvent()
    event.signal()
    for _ in range(3):
        assert event.wait() is True
        assert event.wait(0) is True
        assert Event.wait_any([event], 0) and Event.wait_all([event], 0)
    with pytest.raises(ThreadingException, match=CLEAR_MESSAGE):
        event.clear()
    assert event.is_signaled


def test_one_time_event_fast_path_still_validates() -> None:
    event = OneTimeEvent()
    event.signal()
    with pytest.raises(ValueError, match=TIMEOUT_MESSAGE):
        event.wait(-1)
    assert event.wait(0, interrupt=fired_signal().interrupt) is False


def test_public_module_and_enum() -> None:
    for cls in (Event, AutoClearEvent, OneTimeEvent, ContinueWhen):
        assert cls.__module__ == "runtime.threading"
    assert issubclass(AutoClearEvent, Event) and issubclass(OneTimeEvent, Event)
    assert int(ContinueWhen.ANY) == 1 and int(ContinueWhen.ALL) == 2
    assert ContinueWhen(2) is ContinueWhen.ALL


# =============================================================================================
# EventContinuation (internal)
# =============================================================================================


class Recorder:
    """A continuation callback that records how often and on which thread it ran."""

    def __init__(self) -> None:
        self.calls: list[threading.Thread] = []

    def __call__(self) -> None:
        self.calls.append(threading.current_thread())


def test_any_continuation_fires_once_on_the_signaling_thread() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    recorder = Recorder()
    continuation = EventContinuation([a, b], ContinueWhen.ANY, recorder)
    assert not continuation.fired and recorder.calls == []
    runner = ThreadRunner(b.signal)
    runner.join()
    assert continuation.fired
    assert recorder.calls == [runner.thread]
    assert not b.is_signaled  # consumed the member that fired it
    a.signal()
    b.signal()
    assert len(recorder.calls) == 1  # exactly once
    assert a.is_signaled and b.is_signaled  # later signals are not consumed
    assert_no_registrations(a, b)


def test_all_continuation_fires_only_when_all_are_signaled() -> None:
    a, b, manual = AutoClearEvent(), AutoClearEvent(), Event()
    recorder = Recorder()
    continuation = EventContinuation([a, b, manual], ContinueWhen.ALL, recorder)
    a.signal()
    manual.signal()
    assert recorder.calls == [] and a.is_signaled  # partial signals are kept
    b.signal()
    assert recorder.calls == [threading.current_thread()]
    assert continuation.fired
    assert not a.is_signaled and not b.is_signaled and manual.is_signaled
    a.signal()
    b.signal()
    assert len(recorder.calls) == 1
    assert_no_registrations(a, b, manual)


@pytest.mark.parametrize("when", [ContinueWhen.ANY, ContinueWhen.ALL])
def test_continuation_whose_condition_holds_fires_at_registration(when: ContinueWhen) -> None:
    a, b = AutoClearEvent(), OneTimeEvent()
    a.signal()
    b.signal()
    recorder = Recorder()
    continuation = EventContinuation([a, b], when, recorder)
    assert continuation.fired
    assert recorder.calls == [threading.current_thread()]
    assert not a.is_signaled
    assert_no_registrations(a, b)


def test_continuations_over_no_events() -> None:
    recorder = Recorder()
    assert EventContinuation([], ContinueWhen.ALL, recorder).fired
    assert len(recorder.calls) == 1
    never = Recorder()
    continuation = EventContinuation([], ContinueWhen.ANY, never)
    assert not continuation.fired and never.calls == []
    assert continuation.cancel() is True


def test_cancel_removes_the_registrations() -> None:
    a, b = AutoClearEvent(), Event()
    recorder = Recorder()
    continuation = EventContinuation([a, b, a], ContinueWhen.ALL, recorder)
    assert set(a._watchers) == {continuation} and set(b._watchers) == {continuation}
    assert continuation.cancel() is True
    assert_no_registrations(a, b)
    a.signal()
    b.signal()
    assert recorder.calls == []
    assert a.is_signaled  # nothing consumed
    assert continuation.cancel() is False  # already spent


def test_cancel_after_firing_returns_false() -> None:
    a = Event()
    recorder = Recorder()
    continuation = EventContinuation([a], ContinueWhen.ANY, recorder)
    a.signal()
    assert continuation.cancel() is False
    assert len(recorder.calls) == 1


def test_continuation_callback_runs_outside_the_event_locks() -> None:
    a = AutoClearEvent()

    def callback() -> None:
        # Event locks are not reentrant: these would deadlock if the signaling thread still
        # held a's lock.
        a.signal()
        assert a.wait(0)
        a.clear()

    EventContinuation([a], ContinueWhen.ANY, callback)
    runner = ThreadRunner(a.signal)
    runner.join(5)
    assert not a.is_signaled


def test_auto_clear_signal_goes_to_a_continuation_or_a_waiter_not_both() -> None:
    a = AutoClearEvent()
    recorder = Recorder()
    runner = ThreadRunner(a.wait, 0.5)
    wait_until_blocked(runner.thread)
    continuation = EventContinuation([a], ContinueWhen.ANY, recorder)
    a.signal()
    waited = runner.join(5)
    assert waited is not continuation.fired  # exactly one of them took the signal
    assert len(recorder.calls) == int(continuation.fired)
    assert not a.is_signaled
    continuation.cancel()


def test_failing_watcher_does_not_stop_the_others() -> None:
    a = Event()

    def boom() -> None:
        raise RuntimeError("continuation failed")

    failing = EventContinuation([a], ContinueWhen.ANY, boom)
    recorder = Recorder()
    healthy = EventContinuation([a], ContinueWhen.ANY, recorder)
    runner = ThreadRunner(Event.wait_any, [a], 30)
    wait_until_blocked(runner.thread)
    with pytest.raises(RuntimeError, match="continuation failed"):
        a.signal()
    assert failing.fired and healthy.fired
    assert len(recorder.calls) == 1
    assert runner.join(5) is True  # the multi-wait was still woken
    assert_no_registrations(a)


def test_continuation_validates_when() -> None:
    with pytest.raises(ValueError):
        EventContinuation([Event()], 3, Recorder())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'events'"):
        EventContinuation([object()], ContinueWhen.ANY, Recorder())  # type: ignore[list-item]
