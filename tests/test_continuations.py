"""Tests for runtime.threading.tasks._continuations: options, triggers and the trampoline."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from helpers import ThreadRunner
from runtime.threading import ContinueWhen, Event, InterruptException, InterruptSignal
from runtime.threading.tasks import (
    ContinuationOptions,
    ContinuationProto,
    Task,
    TaskState,
    _continuations,
)
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler, TaskScheduler

CO = ContinuationOptions
LONG = 10.0


def blocked_task(gate: Event, result: Any = None, *, fail: bool = False) -> Task[Any]:
    def body(t: Task[Any]) -> Any:
        assert gate.wait(LONG)
        if fail:
            raise ValueError(result)
        return result

    return Task.run(body)


def test_option_values() -> None:
    assert int(CO.INLINE) == 1
    assert int(CO.ON_COMPLETED_SUCCESSFULLY) == 2
    assert int(CO.ON_FAILED) == 8
    assert int(CO.ON_INTERRUPTED) == 16
    assert CO.DEFAULT == CO.INLINE | CO.ON_COMPLETED_SUCCESSFULLY | CO.ON_FAILED | CO.ON_INTERRUPTED
    assert CO.__module__ == "runtime.threading.tasks"
    assert _continuations.check_options(CO.ON_FAILED | CO.INLINE) == 9
    with pytest.raises(ValueError):
        _continuations.check_options(4)
    with pytest.raises(TypeError):
        _continuations.check_options(True)


# -- single antecedent -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "selected"),
    [
        ("ok", CO.ON_COMPLETED_SUCCESSFULLY),
        ("fail", CO.ON_FAILED),
        ("interrupt", CO.ON_INTERRUPTED),
    ],
)
def test_only_the_terminal_state_decides(outcome: str, selected: CO) -> None:
    signal = InterruptSignal()
    started, gate = Event(), Event()

    def body(t: Task[str]) -> str:
        started.signal()
        assert gate.wait(LONG)
        if outcome == "fail":
            raise ValueError("x")
        if outcome == "interrupt":
            t.interrupt.raise_if_signaled()
        return "done"

    antecedent = Task.create(interrupt=signal.interrupt).run(body)
    conts = {
        option: antecedent.continue_with(option, lambda c, a: a.state)
        for option in (CO.ON_COMPLETED_SUCCESSFULLY, CO.ON_FAILED, CO.ON_INTERRUPTED)
    }
    assert started.wait(LONG)
    signal.signal()  # the antecedent's interrupt alone never decides (D7)
    assert all(c.is_scheduled for c in conts.values())
    gate.signal()
    for option, cont in conts.items():
        assert cont.wait(LONG)
        if option == selected:
            assert cont.is_completed_successfully, option
        else:
            assert cont.is_interrupted, option


def test_continuations_fire_once_in_registration_order() -> None:
    gate = Event()
    antecedent = blocked_task(gate)
    order: list[int] = []
    conts = [
        antecedent.continue_with(CO.DEFAULT, lambda c, a, i: order.append(i), i) for i in range(10)
    ]
    gate.signal()
    assert Task.wait_all(conts, LONG)
    assert order == list(range(10))


def test_a_failing_continuation_does_not_affect_others() -> None:
    gate = Event()
    antecedent = blocked_task(gate, 1)
    bad = antecedent.continue_with(CO.DEFAULT, lambda c, a: 1 / 0)
    good = antecedent.continue_with(CO.DEFAULT, lambda c, a: a.result + 1)
    gate.signal()
    assert good.result == 2
    assert bad.wait(LONG) and bad.is_failed
    assert isinstance(bad.exception, ZeroDivisionError)
    assert antecedent.is_completed_successfully


def test_inline_continuation_runs_on_the_triggering_thread() -> None:
    gate = Event()
    antecedent = Task.run(lambda t: (gate.wait(LONG), threading.get_ident())[1])
    cont = antecedent.continue_with(CO.DEFAULT, lambda c, a: threading.get_ident() == a.result)
    gate.signal()
    assert cont.result is True


def test_non_inline_continuation_is_queued_on_the_triggering_threads_scheduler() -> None:
    with ConcurrentTaskScheduler(2) as s:
        gate = Event()
        antecedent = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        cont = antecedent.continue_with(
            CO.ON_COMPLETED_SUCCESSFULLY, lambda c, a: TaskScheduler.current()
        )
        gate.signal()
        assert cont.result is s


def test_non_inline_continuation_falls_back_to_the_default_scheduler_when_closed() -> None:
    s = ConcurrentTaskScheduler(1)
    gate, closing = Event(), Event()

    def body(t: Task[None]) -> None:
        assert gate.wait(LONG)

    antecedent = Task.create(scheduler=s).run(body)
    cont = antecedent.continue_with(
        CO.ON_COMPLETED_SUCCESSFULLY, lambda c, a: TaskScheduler.current()
    )
    closer = ThreadRunner(lambda: (closing.signal(), s.close()))
    assert closing.wait(LONG)
    # close() has started once the scheduler reports closed
    for _ in range(1000):
        if s.is_closed:
            break
        threading.Event().wait(0.005)
    assert s.is_closed
    gate.signal()
    closer.join()
    assert cont.result is TaskScheduler.default()


def test_already_terminal_non_inline_continuation_is_queued_from_the_creating_thread() -> None:
    done = Task.from_result(1)
    cont = done.continue_with(CO.ON_COMPLETED_SUCCESSFULLY, lambda c, a: threading.get_ident())
    assert cont.result != threading.get_ident()


# -- the trampoline ------------------------------------------------------------------------


def test_a_long_chain_of_inline_continuations_does_not_exhaust_the_stack() -> None:
    root = Task.plan(lambda t: 0)
    tail = root
    for _ in range(5000):
        tail = tail.continue_with(CO.DEFAULT, lambda c, a: a.result + 1)
    root.run_synchronously()
    assert tail.result == 5000
    assert Task.current() is None


def test_a_chain_created_on_terminal_antecedents() -> None:
    tail = Task.from_result(0)
    for _ in range(2000):
        tail = tail.continue_with(CO.DEFAULT, lambda c, a: a.result + 1)
    assert tail.is_completed and tail.result == 2000


def test_shallow_inline_chains_complete_before_the_trigger_returns() -> None:
    root = Task.plan(lambda t: 0)
    first = root.continue_with(CO.DEFAULT, lambda c, a: 1)
    second = first.continue_with(CO.DEFAULT, lambda c, a: 2)
    root.run_synchronously()
    assert first.is_completed and second.is_completed


def test_base_exception_in_inline_continuation_on_main_thread_is_reraised_last() -> None:
    root = Task.plan(lambda t: 0)
    bad = root.continue_with(CO.DEFAULT, lambda c, a: (_ for _ in ()).throw(KeyboardInterrupt()))
    good = root.continue_with(CO.DEFAULT, lambda c, a: "ok")
    with pytest.raises(KeyboardInterrupt):
        root.run_synchronously()
    assert bad.is_failed and good.result == "ok"
    assert Task.current() is None


# -- several antecedents ---------------------------------------------------------------------


def test_empty_all_fires_at_once_and_empty_any_is_interrupted_at_once() -> None:
    """D10."""
    assert Task.with_all([]).plan().result is None
    marker = Task.with_any([]).plan()
    assert marker.is_interrupted
    assert Task.with_all([]).run(lambda c, tasks: tasks).result == ()


def test_all_runs_only_if_every_antecedent_is_selected() -> None:
    gates = [Event(), Event()]
    a = blocked_task(gates[0], 1)
    b = blocked_task(gates[1], "x", fail=True)
    ok = Task.with_all([a, b], options=CO.ON_COMPLETED_SUCCESSFULLY).plan()
    either = Task.with_all([a, b], options=CO.ON_COMPLETED_SUCCESSFULLY | CO.ON_FAILED).run(
        lambda c, tasks: [t.state for t in tasks]
    )
    gates[0].signal()
    assert ok.is_scheduled and either.is_scheduled
    gates[1].signal()
    assert ok.wait(LONG) and ok.is_interrupted
    assert either.result == [TaskState.COMPLETED, TaskState.FAILED]


def test_any_runs_on_the_first_selected_antecedent() -> None:
    slow_gate, fast_gate = Event(), Event()
    slow = blocked_task(slow_gate, "slow")
    fast = blocked_task(fast_gate, "fast")
    cont = Task.with_any([slow, fast]).run(lambda c, tasks: [t.is_completed for t in tasks])
    fast_gate.signal()
    assert cont.result == [False, True]
    assert not slow._callbacks  # its registration was removed
    slow_gate.signal()
    assert slow.wait(LONG)


def test_any_is_interrupted_when_no_antecedent_is_selected() -> None:
    gate = Event()
    a = blocked_task(gate, "a", fail=True)
    b = blocked_task(gate, "b", fail=True)
    cont = Task.with_any([a, b]).plan()
    gate.signal()
    assert cont.wait(LONG) and cont.is_interrupted


def test_duplicate_antecedents_count_per_occurrence() -> None:
    gate = Event()
    a = blocked_task(gate, 1)
    cont = Task.with_all([a, a]).run(lambda c, tasks: len(tasks))
    gate.signal()
    assert cont.result == 2


def test_proto_interrupt_cancels_before_start() -> None:
    gate = Event()
    a = blocked_task(gate, 1)
    signal = InterruptSignal()
    called: list[int] = []
    cont = Task.with_all([a], interrupt=signal.interrupt).run(lambda c, tasks: called.append(1))
    assert cont.interrupt is signal.interrupt
    signal.signal()
    assert cont.is_interrupted and not called
    assert isinstance(cont.exception, InterruptException)
    assert not a._callbacks
    gate.signal()
    assert a.wait(LONG)
    already = InterruptSignal()
    already.signal()
    assert Task.with_any([Task.from_result(1)], interrupt=already.interrupt).plan().is_interrupted


def test_proto_interrupt_subscription_is_released_when_the_continuation_is_done() -> None:
    signal = InterruptSignal()
    cont = Task.with_all([Task.from_result(1)], interrupt=signal.interrupt).run(lambda c, tasks: 1)
    assert cont.result == 1
    assert not signal.interrupt._callbacks


def test_continuation_proto_arguments() -> None:
    a = Task.from_result(1)
    proto = ContinuationProto([a], ContinueWhen.ALL, options=CO.DEFAULT, name="joined")
    cont = proto.run(lambda c, tasks, extra: (c.name, tasks, extra), "e")
    assert cont.result == ("joined", (a,), "e")
    assert proto.plan(lambda c, tasks: 5).result == 5
    with pytest.raises(TypeError):
        ContinuationProto([1], ContinueWhen.ALL)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        ContinuationProto([a], 7)  # type: ignore[arg-type]


def test_continuation_target_receives_the_antecedent_tuple() -> None:
    def join(c: Task[int], tasks: Sequence[Task[Any]], base: int) -> int:
        return base + sum(t.result for t in tasks)

    tasks = [Task.run(lambda t, i: i, i) for i in range(4)]
    assert Task.with_all(tasks).run(join, 100).result == 106


def test_concurrent_completions_fire_a_gate_exactly_once() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(30):
            gate = Event()
            antecedents = [blocked_task(gate, i) for i in range(6)]
            calls: list[int] = []
            any_cont = Task.with_any(antecedents).run(lambda c, tasks, out: out.append(1), calls)
            all_cont = Task.with_all(antecedents).run(lambda c, tasks, out: out.append(2), calls)
            gate.signal()
            assert Task.wait_all([any_cont, all_cont], LONG)
            assert sorted(calls) == [1, 2]
    finally:
        sys.setswitchinterval(previous)


# -- run_after's timer entry ------------------------------------------------------------------


def test_delayed_task_is_queued_on_the_default_scheduler_if_its_own_closed() -> None:
    s = ConcurrentTaskScheduler(1)
    r = Task.create(scheduler=s).run_after(0.05, lambda t: TaskScheduler.current())
    s.close()  # pending delays are not work in flight
    assert r.result is TaskScheduler.default()


def test_delayed_task_leaves_no_interrupt_subscription() -> None:
    signal = InterruptSignal()
    r = Task.create(interrupt=signal.interrupt).run_after(0.01, lambda t: 5)
    assert r.result == 5
    assert not signal.interrupt._callbacks
    # and one interrupted during its delay withdraws its timer entry
    late = Task.create(interrupt=signal.interrupt).run_after(LONG, lambda t: 5)
    signal.signal()
    assert late.is_interrupted
