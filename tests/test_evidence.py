"""Acceptance tests: the evidence scripts Ev-01 to Ev-40 of IMPROVEMENTS.md, corrected.

Each evidence script showed a defect (D1 to D41) of an older implementation of this API. Each
test below replays one script against this library, scaled down (fewer runs, shorter waits)
and synchronised with events instead of sleeps, and asserts the behaviour that the defect's
"Must" paragraph, API.md and SEMANTICS.md require. Scripts that poked at the older
implementation's private attributes are replaced by black-box equivalents, or by a forced
interleaving through this library's own internals where the script forced one. Stress-sized
variants are marked ``stress``.

The last section covers spec points that are easy to miss: subscripted generic aliases
(API §0.1), named errors (§0.6), tracebacks of re-raised objects (§0.7), ``Task.target`` of
parallel workers (§3.3), task names (§3.5), scheduler arguments (§4.2), ``close()`` from a
scheduler's own task (SEMANTICS §5.7), ``PContext`` after exit (§6.3) and interpreter exit
(§12).
"""

from __future__ import annotations

import gc
import sys
import textwrap
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from helpers import ThreadRunner, run_in_subprocess, wait_until_blocked
from runtime.threading import (
    AutoClearEvent,
    Event,
    InterruptException,
    InterruptSignal,
    Lock,
    ThreadingException,
    _constants,
    parallel,
    signal_after,
    sleep,
    synclock,
)
from runtime.threading.concurrent import Queue
from runtime.threading.parallel import (
    DistributionAlreadyStartedError,
    Distributor,
    ProducerConsumerQueue,
    QueueCompletedError,
    QueueLinkedToAnotherQueueError,
    _pcqueue,
    distribute,
)
from runtime.threading.parallel.pipeline import NullPFn, PContext, PFilter, PFn, PFork
from runtime.threading.tasks import (
    AggregateException,
    AwaitedTaskInterruptedError,
    ContinuationOptions,
    Task,
    TaskAlreadyRunningError,
    TaskAlreadyScheduledError,
    TaskCompletedError,
    TaskNotScheduledError,
    TaskState,
    task,
)
from runtime.threading.tasks.schedulers import (
    ConcurrentTaskScheduler,
    SchedulerClosedError,
    TaskAlreadyStartedOrScheduledError,
    TaskScheduler,
)

#: Generous bound for anything that should happen "at once" on another thread.
TIMEOUT = 10.0

FALSY: tuple[Any, ...] = (0, None, "", False)

R = TypeVar("R")

CO = ContinuationOptions


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` (observing state in a test, never synchronising code) until true."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("condition not reached within the timeout")
        pause.wait(0.005)


def blocked(fn: Callable[[], Any]) -> ThreadRunner[Any]:
    """Run ``fn`` on a new thread and return once that thread is parked in a library wait."""
    runner: ThreadRunner[Any] = ThreadRunner(fn)
    wait_until_blocked(runner.thread)
    return runner


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make the interpreter switch threads very often, to shake out races."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.fixture
def scheduler() -> Iterator[ConcurrentTaskScheduler]:
    """A private two-worker scheduler, closed after the test."""
    s = ConcurrentTaskScheduler(2)
    try:
        yield s
    finally:
        s.close()


# -- Ev-01, Ev-02 (D1): a falsy last item is never dropped ------------------------------------


def _last_item_trial(item: Any) -> bool:
    """Ev-01's trial: a polling consumer races with ``put(item); complete()``."""
    q: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
    got: list[Any] = []
    go = threading.Event()

    def consume() -> None:
        go.set()
        while True:
            value, ok = q.try_take(0)
            if ok:
                got.append(value)
                continue
            if q.is_complete:
                value, ok = q.try_take(0)
                if ok:
                    got.append(value)
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    go.wait(TIMEOUT)
    q.put(item)
    q.complete()
    consumer.join(TIMEOUT)
    assert not consumer.is_alive()
    return got == [item]


@pytest.mark.parametrize("item", [1, *FALSY], ids=repr)
def test_ev01_falsy_last_item_is_not_lost_with_real_threads(
    item: Any, tiny_switch_interval: None
) -> None:
    lost = sum(not _last_item_trial(item) for _ in range(40))
    assert lost == 0


@pytest.mark.stress
def test_ev01_stress_falsy_last_item_3000_runs(tiny_switch_interval: None) -> None:
    for item in (1, 0):
        assert sum(not _last_item_trial(item) for _ in range(3000)) == 0


@pytest.mark.parametrize("item", [5, *FALSY], ids=repr)
def test_ev02_forced_interleaving_take_finds_empty_then_put_and_complete(item: Any) -> None:
    # The consumer's take finds the queue empty and blocks; then the producer puts the item
    # and completes the queue. The take must return the item, whatever its truth value.
    q: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
    consumer = blocked(lambda: q.take(None))
    q.put(item)
    q.complete()
    assert consumer.join(TIMEOUT) == item
    assert q.try_take() == (None, False)
    with pytest.raises(TimeoutError):
        q.take(None)


@pytest.mark.parametrize("item", FALSY, ids=repr)
def test_ev02_put_and_complete_before_take(item: Any) -> None:
    q: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
    q.put(item)
    q.complete()
    assert q.take(None) == item
    assert list(q.get_iterator()) == []


# -- Ev-03 (D2): no lost wake-up at completion ---------------------------------------------


def test_ev03_consumer_paused_between_check_and_wait_is_woken_by_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Consumer B is paused exactly where the older implementation lost the wake-up: after it
    # found the queue open and empty, before it parks. Here that point is inside the queue's
    # lock, so complete() cannot slip in between: it waits for B to park, then wakes it.
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    real_cond_wait = _pcqueue.cond_wait
    b_paused, b_go = threading.Event(), threading.Event()
    pausing: set[int] = set()

    def pausing_cond_wait(cond: threading.Condition, deadline: float | None) -> bool:
        if threading.get_ident() in pausing:
            pausing.discard(threading.get_ident())
            b_paused.set()
            b_go.wait(TIMEOUT)
        return real_cond_wait(cond, deadline)

    monkeypatch.setattr(_pcqueue, "cond_wait", pausing_cond_wait)

    def consumer_b() -> list[int]:
        pausing.add(threading.get_ident())
        return list(q.get_iterator())

    a = blocked(lambda: list(q.get_iterator()))
    b: ThreadRunner[list[int]] = ThreadRunner(consumer_b)
    assert b_paused.wait(TIMEOUT)
    completer = blocked(q.complete)  # waits for the lock B holds
    b_go.set()
    completer.join(TIMEOUT)
    assert a.join(TIMEOUT) == []
    assert b.join(TIMEOUT) == []


@pytest.mark.stress
def test_ev03_stress_many_consumers_all_finish_after_complete(tiny_switch_interval: None) -> None:
    for _ in range(100):
        q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        consumers = [ThreadRunner(lambda q=q: list(q.get_iterator())) for _ in range(6)]
        q.complete()
        for consumer in consumers:
            assert consumer.join(TIMEOUT) == []


# -- Ev-04 (D4): an interrupt during take raises InterruptException ----------------------------


def test_ev04_interrupt_during_blocking_take_raises_interrupt_exception() -> None:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    s = InterruptSignal()
    taker = blocked(lambda: q.take(None, interrupt=s.interrupt))
    s.signal()
    with pytest.raises(InterruptException) as caught:
        taker.join(TIMEOUT)
    assert caught.value.interrupt is s.interrupt


def test_ev04_already_signaled_interrupt_raises_even_with_an_item() -> None:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    q.put(7)
    s = InterruptSignal()
    s.signal()
    for timeout in (0, 1, None):
        with pytest.raises(InterruptException):
            q.take(timeout, interrupt=s.interrupt)
        with pytest.raises(InterruptException):
            q.try_take(timeout, interrupt=s.interrupt)
    assert q.take() == 7  # the interrupted takes left the queue unchanged


def test_ev04_interrupt_during_iteration_is_not_a_normal_end() -> None:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    s = InterruptSignal()
    iterator = q.get_iterator()
    nexter = blocked(lambda: iterator.next(None, s.interrupt))
    s.signal()
    with pytest.raises(InterruptException):
        nexter.join(TIMEOUT)
    drainer = ThreadRunner(lambda: q.get_iterator().drain(None, s.interrupt))
    with pytest.raises(InterruptException):
        drainer.join(TIMEOUT)


# -- Ev-05 (D5): a source failure propagates through linked queues and distributors ----------


def test_ev05_linked_queue_fails_with_the_source_error() -> None:
    src: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    dst = ProducerConsumerQueue(src.get_iterator())
    src.put(1)
    assert dst.take(TIMEOUT) == 1
    error = RuntimeError("upstream failed")
    src.fail(error)
    assert dst.is_complete and dst.is_failed
    with pytest.raises(RuntimeError) as caught:
        list(dst.get_iterator())
    assert caught.value is error


def test_ev05_linked_chain_blocked_consumer_gets_the_source_error() -> None:
    src: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    middle = ProducerConsumerQueue(src.get_iterator())
    last = ProducerConsumerQueue(middle.get_iterator())
    consumer = blocked(lambda: list(last.get_iterator()))
    error = RuntimeError("upstream failed")
    src.fail(error)
    with pytest.raises(RuntimeError) as caught:
        consumer.join(TIMEOUT)
    assert caught.value is error


def test_ev05_distributor_consumer_gets_the_source_failure() -> None:
    src: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    d = distribute(src.get_iterator())
    consumer = d.take()
    forwarder = d.start()
    src.put(1)
    assert consumer.next(TIMEOUT) == 1
    error = RuntimeError("source broke")
    src.fail(error)
    with pytest.raises(AggregateException) as caught:
        list(consumer)
    assert caught.value.exceptions == (error,)
    assert forwarder.wait(TIMEOUT) and forwarder.is_failed
    assert isinstance(forwarder.exception, AggregateException)
    assert forwarder.exception.exceptions == (error,)


# -- Ev-06, Ev-06b (D6): linked queues hold no thread ----------------------------------------


def test_ev06_dropped_linked_queues_leave_no_thread_and_no_garbage() -> None:
    before = threading.active_count()
    refs: list[weakref.ref[ProducerConsumerQueue[int]]] = []
    for _ in range(20):
        src: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        dst = ProducerConsumerQueue(src.get_iterator())
        refs.append(weakref.ref(src))
        refs.append(weakref.ref(dst))
        del src, dst
    gc.collect()
    assert threading.active_count() == before
    assert all(ref() is None for ref in refs)


def test_ev06b_script_with_an_abandoned_linked_queue_exits() -> None:
    code = textwrap.dedent(
        """
        from runtime.threading.parallel import ProducerConsumerQueue
        src = ProducerConsumerQueue(); dst = ProducerConsumerQueue(src.get_iterator())
        print("main done")
        """
    )
    result = run_in_subprocess(code, timeout=30)  # a hang raises TimeoutExpired
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\n"
    assert result.stderr == ""


# -- Ev-07 (D3): waits that time out leave no registration behind ----------------------------


def test_ev07_timed_out_multi_waits_leave_no_registration() -> None:
    e = Event()
    for _ in range(2000):
        assert not Event.wait_any([e], 0)
        assert not Event.wait_all([e, Event()], 0)
    assert e._watchers == {}
    waiter = ThreadRunner(lambda: Event.wait_any([e], 0.01))
    assert waiter.join(TIMEOUT) is False
    assert e._watchers == {}


def test_ev07_timed_out_waits_with_an_interrupt_leave_no_registration() -> None:
    s, e = InterruptSignal(), Event()
    for timeout in (0, 0.0001):
        for _ in range(200):
            assert not e.wait(timeout, interrupt=s.interrupt)
            assert not Event.wait_any([e], timeout, interrupt=s.interrupt)
    assert e._watchers == {}
    assert not e._cond._waiters  # type: ignore[attr-defined]
    assert not s.interrupt._callbacks
    assert s.interrupt.wait_event._watchers == {}


def test_ev07_timed_out_wait_all_does_not_steal_auto_clear_signals() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    a.signal()
    assert not Event.wait_all([a, b], 0)
    assert a.is_signaled  # a failed wait consumes nothing
    b.signal()
    assert a.is_signaled and b.is_signaled
    assert Event.wait_all([a, b], 0)
    assert not a.is_signaled and not b.is_signaled  # a successful one consumes both


# -- Ev-08 (D22): AutoClearEvent releases one waiter per signal -----------------------------


def test_ev08_one_signal_releases_exactly_one_waiter() -> None:
    e = AutoClearEvent()
    woke: list[tuple[int, bool]] = []
    one_woke = threading.Event()

    def waiter() -> None:
        woke.append((threading.get_ident(), e.wait(TIMEOUT)))
        one_woke.set()

    waiters = [blocked(waiter), blocked(waiter)]
    e.signal()
    assert one_woke.wait(TIMEOUT)
    # Exactly one waiter returned; the other is still parked and the signal is consumed.
    assert [result for _, result in woke] == [True]
    assert not e.is_signaled
    (other,) = [w for w in waiters if w.thread.ident != woke[0][0]]
    wait_until_blocked(other.thread)
    assert len(woke) == 1
    e.signal()
    for w in waiters:
        w.join(TIMEOUT)
    assert [result for _, result in woke] == [True, True]
    assert not e.is_signaled


def test_ev08_wait_any_consumes_exactly_one_member() -> None:
    a, b = AutoClearEvent(), AutoClearEvent()
    a.signal()
    b.signal()
    assert Event.wait_any([a, b], 0)
    assert [a.is_signaled, b.is_signaled].count(True) == 1
    assert Event.wait_any([a, b], 0)
    assert not a.is_signaled and not b.is_signaled
    assert not Event.wait_any([a, b], 0)


# -- Ev-09 (D7): only the antecedent's terminal state decides a continuation ---------------


def _ran(continuation: Task[str], antecedent: Task[Any]) -> str:
    return "ran"


def test_ev09_on_interrupted_continuation_runs_for_a_self_interrupted_antecedent() -> None:
    s = InterruptSignal()
    started = Event()

    def cooperative(t: Task[None]) -> None:
        started.signal()
        t.interrupt.wait()
        t.interrupt.raise_if_signaled()

    a = Task.create(interrupt=s.interrupt).run(cooperative)
    c = a.continue_with(CO.ON_INTERRUPTED, _ran)
    assert started.wait(TIMEOUT)
    s.signal()
    assert a.wait(TIMEOUT) and c.wait(TIMEOUT)
    assert a.state is TaskState.INTERRUPTED
    assert c.state is TaskState.COMPLETED and c.result == "ran"


def test_ev09_antecedent_ignoring_its_interrupt_triggers_on_completed_successfully() -> None:
    s = InterruptSignal()
    started, gate = Event(), threading.Event()

    def ignoring(t: Task[None]) -> None:
        started.signal()
        gate.wait(TIMEOUT)

    b = Task.create(interrupt=s.interrupt).run(ignoring)
    cb = b.continue_with(CO.ON_COMPLETED_SUCCESSFULLY, _ran)
    assert started.wait(TIMEOUT)
    s.signal()
    assert cb.is_scheduled  # the antecedent's interrupt alone changes nothing
    gate.set()
    assert b.wait(TIMEOUT) and cb.wait(TIMEOUT)
    assert b.state is TaskState.COMPLETED
    assert cb.state is TaskState.COMPLETED and cb.result == "ran"


# -- Ev-10 (D9): extra arguments reach fn ------------------------------------------------------


def _scale(task: Task[Any], x: int, k: int) -> Iterator[int]:
    yield x * k


def test_ev10_map_and_process_pass_extra_positional_arguments() -> None:
    assert sorted(parallel.map([1, 2, 3], parallelism=2).do(_scale, 10)) == [10, 20, 30]
    assert sorted(parallel.process([1, 2, 3], parallelism=2).do(_scale, 10)) == [10, 20, 30]
    assert sorted(parallel.map([1, 2], parallelism=2).do(_scale, k=3)) == [3, 6]


def test_ev10_process_compatibility_form_takes_a_queue_as_output() -> None:
    out: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    done = parallel.process([1, 2, 3], parallelism=2).do(_scale, out, 10)
    assert isinstance(done, Task)
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    assert not out.is_complete  # a caller's queue is left open
    assert sorted(out.take() for _ in range(3)) == [10, 20, 30]


def test_ev10_for_each_passes_extra_arguments() -> None:
    acc: list[int] = []
    lock = threading.Lock()

    def record(task: Task[Any], x: int, k: int, *, offset: int) -> None:
        with lock:
            acc.append(x * k + offset)

    t = parallel.for_each([1, 2, 3], parallelism=2).do(record, 10, offset=1)
    assert t.wait(TIMEOUT)
    assert t.state is TaskState.COMPLETED and t.exception is None
    assert sorted(acc) == [11, 21, 31]


# -- Ev-11 (D8): for_each and background report failures --------------------------------------


def test_ev11_for_each_fails_with_the_error_and_stops_the_siblings() -> None:
    error = ValueError("item 3")
    processed: list[int] = []

    def fail_on_3(task: Task[Any], x: int) -> None:
        processed.append(x)
        if x == 3:
            raise error
        if x > 3:  # the sibling's item in flight ends when the operation is stopped
            task.interrupt.wait(TIMEOUT)

    t = parallel.for_each(range(100), parallelism=2).do(fail_on_3)
    assert t.wait(TIMEOUT)
    assert t.state is TaskState.FAILED
    assert isinstance(t.exception, AggregateException)
    assert t.exception.exceptions == (error,)
    assert len([x for x in processed if x > 3]) <= 1  # no further items were taken


def test_ev11_background_fails_with_an_aggregate() -> None:
    b = parallel.background(parallelism=2).do(lambda task: 1 / 0)
    assert b.wait(TIMEOUT)
    assert b.state is TaskState.FAILED
    assert isinstance(b.exception, AggregateException)
    assert b.exception.exceptions
    assert all(isinstance(ex, ZeroDivisionError) for ex in b.exception.exceptions)


# -- Ev-12 (D10): empty inputs complete at once ----------------------------------------------


def test_ev12_empty_inputs_complete_at_once() -> None:
    t = parallel.for_each([]).do(lambda task, x: None)
    assert t.is_completed_successfully
    marker = Task.with_all([]).plan()
    assert marker.is_completed_successfully and marker.result is None
    assert Task.wait_all([], 0.3) is True
    assert Task.wait_all([]) is True
    assert Task.wait_any([]) is False
    assert Task.with_any([]).plan().is_interrupted
    assert Event.wait_all([]) is True
    assert Event.wait_any([]) is False
    assert list(parallel.map([]).do(lambda task, x: [x])) == []
    out: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert parallel.process([]).do(lambda task, x: [x], output_queue=out).wait(TIMEOUT)


# -- Ev-13 (D15): input is read lazily ------------------------------------------------------


def test_ev13_map_over_an_endless_generator_returns_at_once_and_reads_lazily(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    pulled: list[int] = []
    entered = threading.Semaphore(0)
    gate = Event()

    def naturals() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            pulled.append(n)
            yield n

    def hold(task: Task[Any], x: int) -> list[int]:
        entered.release()
        gate.wait(TIMEOUT, task.interrupt)
        return [x]

    stop = InterruptSignal()
    starter = ThreadRunner(
        lambda: parallel.map(
            naturals(), parallelism=2, interrupt=stop.interrupt, scheduler=scheduler
        ).do(hold)
    )
    output = starter.join(TIMEOUT)  # do() returned although the input never ends
    assert entered.acquire(timeout=TIMEOUT) and entered.acquire(timeout=TIMEOUT)
    assert pulled == [1, 2]  # one item per busy worker, nothing read ahead
    gate.signal()
    taken = [output.next(TIMEOUT) for _ in range(5)]
    assert len(set(taken)) == 5
    stop.signal()
    with pytest.raises(InterruptException):
        output.drain(TIMEOUT)


# -- Ev-14 (D11): Task.run never uses another thread's PContext --------------------------------


def test_ev14_task_run_outside_a_context_ignores_other_threads_contexts(
    tiny_switch_interval: None,
) -> None:
    other = ConcurrentTaskScheduler(4)
    stop = threading.Event()
    in_context = threading.Event()

    def inside() -> int:
        count = 0
        with PContext(2, scheduler=other):
            in_context.set()
            while not stop.is_set() and count < 100_000:
                Task.run(lambda t: None)
                count += 1
        return count

    try:
        runner = ThreadRunner(inside)
        assert in_context.wait(TIMEOUT)
        default = TaskScheduler.default()
        wrong = sum(
            Task.run(lambda t: TaskScheduler.current()).result is not default for _ in range(200)
        )
        stop.set()
        assert runner.join(TIMEOUT) > 0
    finally:
        stop.set()
        other.close()
    assert wrong == 0


# -- Ev-15 (D12, D17): pipelines are immutable and reentrant ---------------------------------


def _inc(t: Task[Any], x: int) -> Iterator[int]:
    yield x + 1


def _dbl(t: Task[Any], x: int) -> Iterator[int]:
    yield x * 2


def _neg(t: Task[Any], x: int) -> Iterator[int]:
    yield -x


def _slot_values(obj: object) -> dict[str, Any]:
    return {
        name: getattr(obj, name)
        for cls in type(obj).__mro__
        for name in getattr(cls, "__slots__", ())
        if hasattr(obj, name)
    }


def test_ev15_composition_does_not_mutate_its_operands() -> None:
    a, b, c = PFn(_inc), PFn(_dbl), PFn(_neg)
    b_before = _slot_values(b)
    p1 = a | b
    assert p1 is not b
    assert sorted(p1([1, 2, 3])) == [4, 6, 8]
    _p2 = c | b
    assert sorted(p1([1, 2, 3])) == [4, 6, 8]
    assert _slot_values(b) == b_before


def test_ev15_fork_keeps_no_per_call_state_and_can_be_called_concurrently() -> None:
    fork = PFn(_inc) | [PFn(_dbl), PFn(_neg)]
    before = _slot_values(fork)
    for _ in range(3):
        assert sorted(fork([1, 2])) == [-3, -2, 4, 6]
    assert _slot_values(fork) == before

    def call(k: int) -> list[int]:
        return sorted(fork(range(k * 100, k * 100 + 50)))

    runners = [ThreadRunner(call, k) for k in range(3)]
    for k, runner in enumerate(runners):
        expected = sorted([(x + 1) * 2 for x in range(k * 100, k * 100 + 50)])
        expected = sorted(expected + [-(x + 1) for x in range(k * 100, k * 100 + 50)])
        assert runner.join(TIMEOUT) == expected


# -- Ev-16 (D16): close() waits for queued work ------------------------------------------------


def test_ev16_close_right_after_queueing_waits_for_every_task() -> None:
    for _ in range(20):
        done: list[int] = []
        s = ConcurrentTaskScheduler(1)
        for i in range(5):
            Task.create(scheduler=s).run(lambda t, i=i, done=done: done.append(i))
        s.close()
        assert done == [0, 1, 2, 3, 4]
        assert (s.active_threads, s.suspended_threads, s.allocated_threads) == (0, 0, 0)


def test_ev16_close_blocks_until_queued_tasks_ran() -> None:
    done: list[int] = []
    gate = threading.Event()  # invisible to the scheduler: the first task keeps its slot
    s = ConcurrentTaskScheduler(1)
    Task.create(scheduler=s).run(lambda t: (gate.wait(TIMEOUT), done.append(0)))
    for i in range(1, 5):
        Task.create(scheduler=s).run(lambda t, i=i: done.append(i))
    closer = blocked(s.close)
    assert done == []
    with pytest.raises(SchedulerClosedError):
        Task.create(scheduler=s).run(lambda t: None)
    gate.set()
    closer.join(TIMEOUT)
    assert done == [0, 1, 2, 3, 4]


def test_ev16_close_does_not_wait_out_the_keep_alive() -> None:
    s = ConcurrentTaskScheduler(1, keep_alive=60.0)
    assert Task.create(scheduler=s).run(lambda t: 1).result == 1
    closer = ThreadRunner(s.close)
    closer.join(TIMEOUT)  # far less than the keep-alive: the idle worker exits at once


# -- Ev-17 (D13): membership is non-destructive; prioritise loses nothing --------------------


def test_ev17_in_operator_does_not_consume_the_queue() -> None:
    q = Queue.from_items([1, 2, 3, 4])
    assert 3 in q
    assert 5 not in q
    assert list(q) == [1, 2, 3, 4]


def test_ev17_prioritise_from_another_scheduler_leaves_queued_tasks_alone() -> None:
    s, other = ConcurrentTaskScheduler(1), ConcurrentTaskScheduler(1)
    try:
        gate, started = threading.Event(), Event()
        ran: list[int] = []
        Task.create(scheduler=s).run(lambda t: (started.signal(), gate.wait(TIMEOUT)))
        assert started.wait(TIMEOUT)
        queued = [Task.create(scheduler=s).run(lambda t, i=i: ran.append(i)) for i in range(4)]
        prioritiser = Task.create(scheduler=other).run(lambda t: s.prioritise(queued[2]))
        assert prioritiser.wait(TIMEOUT) and prioritiser.is_completed_successfully
        assert ran == []  # left alone: still queued behind the running task
        gate.set()
        assert Task.wait_all(queued, TIMEOUT)
        assert ran == [0, 1, 2, 3]
        assert all(t.state is TaskState.COMPLETED for t in queued)
    finally:
        gate.set()
        s.close()
        other.close()


def test_ev17_prioritise_on_own_scheduler_runs_the_task_inline_exactly_once() -> None:
    s = ConcurrentTaskScheduler(1)
    try:
        go = threading.Event()  # invisible to the scheduler: nothing else gets the slot
        ran: list[int] = []
        queued: list[Task[None]] = []

        def first(t: Task[None]) -> None:
            go.wait(TIMEOUT)
            s.prioritise(queued[2])

        head = Task.create(scheduler=s).run(first)
        queued.extend(Task.create(scheduler=s).run(lambda t, i=i: ran.append(i)) for i in range(4))
        go.set()
        assert head.wait(TIMEOUT) and head.is_completed_successfully
        assert Task.wait_all(queued, TIMEOUT)
        assert ran == [2, 0, 1, 3]
    finally:
        go.set()
        s.close()


# -- Ev-18 (D14, D41): dequeue() sleeps; try_dequeue never waits --------------------------


def test_ev18_blocked_dequeue_does_not_spin() -> None:
    q: Queue[str] = Queue()
    consumer = blocked(lambda: q.dequeue())
    cpu_before = time.process_time()
    threading.Event().wait(0.2)  # a measuring window, not synchronisation
    used = time.process_time() - cpu_before
    wait_until_blocked(consumer.thread)  # still parked at the same instruction
    q.enqueue("late")
    assert consumer.join(TIMEOUT) == "late"
    assert used < 0.1  # a spinning consumer burns the whole window


def test_ev18_try_dequeue_never_waits_for_an_item() -> None:
    q: Queue[int] = Queue()
    start = time.monotonic()
    assert q.try_dequeue(30) == (None, False)
    assert time.monotonic() - start < 5.0
    q.enqueue(0)
    assert q.try_dequeue(30) == (0, True)


# -- Ev-19 (D18): lock acquisition with an interrupt is notification-driven and exact ------


def test_ev19_interrupt_wakes_a_blocked_acquire_without_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a poll interval far beyond the test's bound, only a notification can wake it.
    monkeypatch.setattr(_constants, "POLL_INTERVAL", 60.0)
    lock = Lock(False)
    lock.acquire()
    try:
        s = InterruptSignal()
        acquirer = blocked(lambda: lock.acquire(None, interrupt=s.interrupt))
        s.signal()
        with pytest.raises(InterruptException):
            acquirer.join(TIMEOUT)
    finally:
        lock.release()


def test_ev19_interrupt_wakes_a_suspended_acquire_on_a_worker(
    monkeypatch: pytest.MonkeyPatch, scheduler: ConcurrentTaskScheduler
) -> None:
    monkeypatch.setattr(_constants, "POLL_INTERVAL", 60.0)
    monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", 0.01)
    lock = Lock(False)
    lock.acquire()
    try:
        s = InterruptSignal()
        t = Task.create(scheduler=scheduler).run(
            lambda t: lock.acquire(None, interrupt=s.interrupt)
        )
        wait_for(lambda: scheduler.suspended_threads == 1)
        s.signal()
        assert t.wait(TIMEOUT)
        assert isinstance(t.exception, InterruptException)
    finally:
        lock.release()


def test_ev19_acquire_timeout_with_an_interrupt_does_not_end_early(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    def timed(timeout: float) -> tuple[bool, float]:
        lock = Lock(False)
        lock.acquire()
        start = time.monotonic()
        acquired = ThreadRunner(
            lambda: lock.acquire(timeout, interrupt=InterruptSignal().interrupt)
        ).join(TIMEOUT)
        return acquired, time.monotonic() - start

    acquired, elapsed = timed(0.2)
    assert acquired is False and 0.2 <= elapsed < 5.0

    def on_worker(t: Task[tuple[bool, float]]) -> tuple[bool, float]:
        lock = Lock(False)
        lock.acquire()  # not re-entrant: acquiring it again waits for the timeout
        start = time.monotonic()
        # Longer than the suspension grace period: the wait suspends and must not end early.
        result = lock.acquire(0.3, interrupt=InterruptSignal().interrupt)
        return result, time.monotonic() - start

    acquired, elapsed = Task.create(scheduler=scheduler).run(on_worker).result
    assert acquired is False and 0.3 <= elapsed < 5.0


# -- Ev-20 (D19): a queue wait uses one deadline -------------------------------------------


def test_ev20_take_and_next_timeouts_use_one_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    real_cond_wait = _pcqueue.cond_wait
    deadlines: list[float | None] = []

    def recording(cond: threading.Condition, deadline: float | None) -> bool:
        deadlines.append(deadline)
        return real_cond_wait(cond, deadline)

    monkeypatch.setattr(_pcqueue, "cond_wait", recording)
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    for call in (lambda: q.try_take(0.2), lambda: q.get_iterator().next(0.2)):
        deadlines.clear()
        start = time.monotonic()
        try:
            outcome: object = call()
        except StopIteration:
            outcome = StopIteration
        end = time.monotonic()
        assert outcome in ((None, False), StopIteration)
        assert deadlines and len(set(deadlines)) == 1  # one deadline, computed on entry
        deadline = deadlines[0]
        assert deadline is not None and start + 0.2 <= deadline <= end
        assert end - start < 5.0


# -- Ev-21 (D20): linking and signaling are atomic ---------------------------------------------


def _link_signal_race(runs: int, children_per_thread: int) -> tuple[int, int]:
    missed = errors = 0
    for _ in range(runs):
        parent = InterruptSignal()
        children: list[InterruptSignal] = []

        def make(
            parent: InterruptSignal = parent, children: list[InterruptSignal] = children
        ) -> None:
            for _ in range(children_per_thread):
                children.append(InterruptSignal(parent.interrupt))

        makers = [threading.Thread(target=make) for _ in range(2)]
        for maker in makers:
            maker.start()
        try:
            parent.signal()
        except RuntimeError:
            errors += 1
        for maker in makers:
            maker.join(TIMEOUT)
        missed += any(not child.interrupt.is_signaled for child in children)
    return missed, errors


def test_ev21_children_linked_during_signal_are_never_left_unsignaled(
    tiny_switch_interval: None,
) -> None:
    assert _link_signal_race(40, 50) == (0, 0)


@pytest.mark.stress
def test_ev21_stress_link_signal_race_300_runs(tiny_switch_interval: None) -> None:
    assert _link_signal_race(300, 200) == (0, 0)


# -- Ev-22 (D24): a task refused by a closed scheduler can be scheduled elsewhere -------------


def test_ev22_schedule_on_a_closed_scheduler_leaves_the_task_not_started() -> None:
    s = ConcurrentTaskScheduler(1)
    s.close()
    t = Task.plan(lambda t: 1)
    with pytest.raises(SchedulerClosedError) as caught:
        t.schedule(s)
    assert str(caught.value) == str(SchedulerClosedError)
    assert t.state is TaskState.NOTSTARTED
    t.schedule()
    assert t.result == 1


# -- Ev-23 (D25): inline execution on a non-worker thread leaves no registration ------------


def test_ev23_inline_continuation_on_this_thread_restores_task_current() -> None:
    def body() -> tuple[Any, ...]:
        before = Task.current()
        with ConcurrentTaskScheduler(2) as s:
            t = Task.create(scheduler=s).run(lambda t: 1)
            t.wait()
            inline = t.continue_with(CO.ON_COMPLETED_SUCCESSFULLY | CO.INLINE, lambda c, p: 1)
            inline.wait()
            assert inline.is_completed_successfully
        return before, Task.current(), Task.plan(lambda t: 0).parent, TaskScheduler.current()

    for outcome in (body(), ThreadRunner(body).join(TIMEOUT)):
        before, after, parent, current = outcome
        assert before is None and after is None and parent is None
        assert current is TaskScheduler.default()


# -- Ev-24 (D26): short waits suspend when work is starving ----------------------------------


def test_ev24_polling_with_short_waits_does_not_starve_the_scheduler() -> None:
    s = ConcurrentTaskScheduler(1)
    try:
        other = Task.plan(lambda t: "done")

        def poller(t: Task[str]) -> str:
            other.schedule(s)
            for n in range(200):
                if other.wait(0.05):
                    return f"other finished after {n} short waits"
            return f"gave up; other is still {other.state.name}"

        result = Task.create(scheduler=s).run(poller).result
        assert result.startswith("other finished"), result
        assert other.result == "done"
    finally:
        s.close()


# -- Ev-25 (D27): opt-in capacity with backpressure --------------------------------------------


def test_ev25_capacity_blocks_producers_until_room() -> None:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=2)
    assert q.capacity == 2
    q.put(1)
    q.put(2)
    with pytest.raises(TimeoutError):
        q.put(3, timeout=0)
    producer = blocked(lambda: q.put(3))
    assert q.statistics().producers_waiting == 1
    assert q.take() == 1
    producer.join(TIMEOUT)
    assert [q.take(), q.take()] == [2, 3]
    assert ProducerConsumerQueue().capacity is None


# -- Ev-26 (D28): fail() releases the buffered items -------------------------------------------


def test_ev26_fail_discards_buffered_items() -> None:
    class Item:
        pass

    q: ProducerConsumerQueue[Item] = ProducerConsumerQueue()
    a, b = Item(), Item()
    refs = [weakref.ref(a), weakref.ref(b)]
    q.put(a)
    q.put(b)
    del a, b
    error = KeyError("bad")
    q.fail(error)
    for _ in range(2):
        with pytest.raises(KeyError) as caught:
            q.take()
        assert caught.value is error
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert q.statistics().buffered_items == 0


# -- Ev-27 (D23): put and complete are linearizable ------------------------------------------


def test_ev27_put_racing_with_complete_is_delivered_or_rejected(
    tiny_switch_interval: None,
) -> None:
    for _ in range(200):
        q: ProducerConsumerQueue[str] = ProducerConsumerQueue()
        accepted = threading.Event()

        def produce(
            q: ProducerConsumerQueue[str] = q, accepted: threading.Event = accepted
        ) -> None:
            try:
                q.put("late")
            except QueueCompletedError:
                return
            accepted.set()

        producer = ThreadRunner(produce)
        q.complete()
        seen = list(q.get_iterator())
        producer.join(TIMEOUT)
        assert seen == (["late"] if accepted.is_set() else [])
        assert q.try_take() == (None, False)


def test_ev27_put_after_complete_or_blocked_put_released_by_complete_is_rejected() -> None:
    q: ProducerConsumerQueue[str] = ProducerConsumerQueue(capacity=1)
    q.put("first")
    producer = blocked(lambda: q.put("late"))
    q.complete()
    with pytest.raises(QueueCompletedError):
        producer.join(TIMEOUT)
    with pytest.raises(QueueCompletedError):
        q.put("after")
    assert list(q.get_iterator()) == ["first"]


# -- Ev-28 (D35): re-raising a stored exception does not grow its traceback ---------------


def _traceback_lengths(raise_it: Callable[[], object], kind: type[BaseException]) -> list[int]:
    caught: list[BaseException] = []
    for _ in range(3):
        try:
            raise_it()
        except kind as ex:
            caught.append(ex)
    assert caught[0] is caught[1] is caught[2]
    return [len(traceback.extract_tb(ex.__traceback__)) for ex in caught]


def test_ev28_raise_if_signaled_traceback_does_not_grow() -> None:
    s = InterruptSignal()
    s.signal()
    lengths = _traceback_lengths(s.interrupt.raise_if_signaled, InterruptException)
    assert lengths[0] == lengths[1] == lengths[2]


def test_ev28_task_result_and_queue_failure_tracebacks_do_not_grow() -> None:
    def boom(t: Task[None]) -> None:
        raise ValueError("boom")

    failed = Task.run(boom)
    assert failed.wait(TIMEOUT)
    lengths = _traceback_lengths(lambda: failed.result, ValueError)
    assert lengths[0] == lengths[1] == lengths[2]
    # The recorded traceback (the frame of ``boom``) is kept, not reset to nothing.
    assert traceback.extract_tb(failed.exception.__traceback__)[-1].name == "boom"  # type: ignore[union-attr]

    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    try:
        raise KeyError("raised before fail()")
    except KeyError as ex:
        q.fail(ex)
    iterator = q.get_iterator()
    for take in (q.take, lambda: next(iterator), lambda: q.try_take(1)):
        lengths = _traceback_lengths(take, KeyError)
        assert lengths[0] == lengths[1] == lengths[2]


# -- Ev-29, Ev-29b (D29): no signal handler at import; import from any thread -------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs os.kill with SIGINT on POSIX")
def test_ev29_import_keeps_ctrl_c_a_keyboard_interrupt() -> None:
    code = textwrap.dedent(
        """
        import os, signal, time
        import runtime.threading as rt
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        try:
            os.kill(os.getpid(), signal.SIGINT); time.sleep(30)
            print("SIGINT: no KeyboardInterrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt", rt.terminate_event.is_signaled)
        """
    )
    result = run_in_subprocess(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "KeyboardInterrupt False\n"


def test_ev29b_first_import_from_a_worker_thread_works_and_starts_no_thread() -> None:
    code = textwrap.dedent(
        """
        import threading
        result = {}
        def imp():
            try:
                import runtime.threading.tasks, runtime.threading.parallel
                result["ok"] = threading.active_count()
            except Exception as ex:
                result["error"] = f"{type(ex).__name__}: {ex}"
        t = threading.Thread(target=imp); t.start(); t.join()
        print(result)
        """
    )
    result = run_in_subprocess(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "{'ok': 2}\n"  # the main thread and the importing thread only


# -- Ev-30 (D30, D41): sleep honours its interrupt; signal_after returns at once -------------


def test_ev30_sleep_returns_at_once_for_a_signaled_interrupt() -> None:
    s = InterruptSignal()
    s.signal()
    start = time.monotonic()
    sleep(30, interrupt=s.interrupt)
    assert time.monotonic() - start < 5.0


def test_ev30_sleep_wakes_when_its_interrupt_is_signaled() -> None:
    s = InterruptSignal()
    sleeper = blocked(lambda: sleep(60, interrupt=s.interrupt))
    s.signal()
    assert sleeper.join(TIMEOUT) is None


def test_ev30_signal_after_returns_at_once_and_signals_later() -> None:
    pending = InterruptSignal()
    start = time.monotonic()
    signal_after(pending, 60)
    assert time.monotonic() - start < 5.0
    assert not pending.interrupt.is_signaled
    soon = InterruptSignal()
    signal_after(soon, 0.05)
    assert soon.interrupt.wait(TIMEOUT)
    now = InterruptSignal()
    signal_after(now, 0)
    assert now.interrupt.is_signaled


# -- Ev-31 (D31, D32): the distributor keeps its scheduler, the order and the interrupt -----


def test_ev31_distribute_runs_the_forwarder_on_the_given_scheduler(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    seen: list[TaskScheduler] = []

    def source() -> Iterator[int]:
        seen.append(TaskScheduler.current())
        yield from range(3)

    d = distribute(source(), scheduler)
    consumer = d.take()
    assert d.start().wait(TIMEOUT)
    assert seen == [scheduler]
    assert list(consumer) == [0, 1, 2]


def test_ev31_every_consumer_sees_the_source_order() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        bad = 0
        for _ in range(10):
            d = distribute(list(range(300)))
            consumers = [d.take() for _ in range(3)]
            d.start()
            bad += any(list(c) != list(range(300)) for c in consumers)
    finally:
        sys.setswitchinterval(previous)
    assert bad == 0


def test_ev31_interrupted_distribution_fails_consumers_with_the_given_interrupt() -> None:
    sig, src = InterruptSignal(), ProducerConsumerQueue[int]()
    d = distribute(src.get_iterator())
    consumer = d.take()
    forwarder = d.start(sig.interrupt)
    src.put(1)
    assert consumer.next(TIMEOUT) == 1  # the forwarder is now blocked on the source
    sig.signal()
    with pytest.raises(InterruptException) as caught:
        list(consumer)
    interrupt = caught.value.interrupt
    assert interrupt is sig.interrupt or interrupt.signal_id == sig.interrupt.signal_id
    assert forwarder.wait(TIMEOUT) and forwarder.is_interrupted
    with pytest.raises(DistributionAlreadyStartedError):
        d.start()
    with pytest.raises(DistributionAlreadyStartedError):
        d.take()


# -- Ev-32 (D34): idle workers are reused; injection only for queued work --------------------


@pytest.fixture
def started_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every thread started during the test (as Ev-32 did)."""
    started: list[str] = []
    real_start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    return started


def test_ev32_idle_worker_is_reused(started_threads: list[str]) -> None:
    s = ConcurrentTaskScheduler(4, keep_alive=60.0)
    try:
        for n in range(20):
            assert Task.create(scheduler=s).run(lambda t, n=n: n).result == n
        assert len(started_threads) == 1
    finally:
        s.close()


def test_ev32_suspension_injects_threads_only_for_queued_work(started_threads: list[str]) -> None:
    s = ConcurrentTaskScheduler(2)
    gate = Event()
    try:
        tasks = [Task.create(scheduler=s).run(lambda t: gate.wait(TIMEOUT)) for _ in range(10)]
        wait_for(lambda: s.suspended_threads == 10)
        # 2 workers, then one injected per suspension while tasks were queued: 8 more. The
        # last suspensions, with nothing queued, start none.
        assert len(started_threads) == 10
        assert s.allocated_threads == 0 and s.active_threads == 0
        gate.signal()
        assert Task.wait_all(tasks, TIMEOUT)
        assert all(t.result for t in tasks)
        assert len(started_threads) == 10  # resumed workers took their slots back
    finally:
        gate.signal()
        s.close()


# -- Ev-33 (D40): a failed constructor leaves nothing to crash at exit -----------------------


def test_ev33_failed_scheduler_constructor_exits_cleanly() -> None:
    code = textwrap.dedent(
        """
        import gc
        from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler
        for args in ((0,), (1, -1.0)):
            try: ConcurrentTaskScheduler(*args)
            except ValueError as ex: print(ex)
        gc.collect()
        """
    )
    result = run_in_subprocess(code, timeout=30)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "Argument max_parallelism must be greater than 0"
    assert "keep_alive" in result.stdout.splitlines()[1]
    assert result.stderr == ""  # no finalizer traceback at exit


# -- Ev-34 (D36): run_after, names, planning with a scheduler -----------------------------


def _add(a: int, b: int) -> int:
    return a + b


def test_ev34_run_after_uses_the_protos_scheduler_and_the_user_functions_name(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    def on_requested(t: Task[bool]) -> bool:
        return TaskScheduler.current() is scheduler

    r = Task.create(scheduler=scheduler).run_after(0.05, on_requested)
    assert r.result is True
    assert r.name == f"{__name__}.on_requested"
    named = Task.create(scheduler=scheduler, name="delayed").run_after(0, on_requested)
    assert named.result is True and named.name == "delayed"


def test_ev34_task_decorator_names_the_task_after_the_user_function() -> None:
    add = task(_add)
    started = add(1, 2)
    assert started.result == 3
    assert started.name == f"{__name__}._add"
    assert started.target == f"{__name__}._add"
    assert add.__name__ == "_add"


def test_ev34_planned_task_remembers_its_scheduler(scheduler: ConcurrentTaskScheduler) -> None:
    planned = Task.create(scheduler=scheduler).plan(lambda t: TaskScheduler.current())
    assert planned.state is TaskState.NOTSTARTED
    planned.schedule()
    assert planned.result is scheduler


# -- Ev-35 (D37): multi-waits re-read a wrapped builtin event ---------------------------


@pytest.mark.parametrize("wait", [Event.wait_any, Event.wait_all], ids=["any", "all"])
def test_ev35_multi_wait_sees_an_external_set_at_its_deadline(
    wait: Callable[[list[Event], float], bool],
) -> None:
    raw = threading.Event()
    ev = Event(raw)
    waiter = blocked(lambda: wait([ev], 0.3))
    raw.set()
    assert waiter.join(TIMEOUT) is True
    assert ev.wait(0) is True


# -- Ev-36 (D38): a hand-made InterruptException fails the task -------------------------------


def test_ev36_interrupt_exception_for_a_never_signaled_interrupt_fails_the_task() -> None:
    def raise_own(t: Task[None]) -> None:
        raise InterruptException(t.interrupt)

    t = Task.run(raise_own)
    assert t.wait(TIMEOUT) and t.state is TaskState.FAILED
    s = InterruptSignal()
    t2 = Task.create(interrupt=s.interrupt).run(raise_own)
    assert t2.wait(TIMEOUT) and t2.state is TaskState.FAILED
    assert isinstance(t2.exception, InterruptException)


# -- Ev-37 (D39): negative timeouts raise ValueError everywhere -----------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: Event().wait(-1),
        lambda: Event.wait_any([Event()], -1),
        lambda: Event.wait_all([Event()], -1),
        lambda: InterruptSignal().interrupt.wait(-1),
        lambda: ProducerConsumerQueue().take(-1),
        lambda: ProducerConsumerQueue().try_take(-1),
        lambda: ProducerConsumerQueue().get_iterator().next(-1),
        lambda: ProducerConsumerQueue(capacity=1).put(1, timeout=-1),
        lambda: Queue().dequeue(-1),
        lambda: Lock().acquire(-1),
        lambda: Task.from_result(1).wait(-1),
        lambda: Task.plan(lambda t: 1).wait(-1),
        lambda: Task.wait_all([], -1),
        lambda: Task.wait_any([], -1),
    ],
)
def test_ev37_negative_timeout_raises_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^'timeout' must be a non-negative number$"):
        call()


def test_ev37_negative_times_raise_value_error() -> None:
    with pytest.raises(ValueError):
        sleep(-1)
    with pytest.raises(ValueError):
        signal_after(InterruptSignal(), -1)
    with pytest.raises(ValueError):
        Task.run_after(-1, lambda t: None)


# -- Ev-38 (D40): assorted robustness --------------------------------------------------------


def test_ev38_pcontext_properties_stay_readable_after_exit() -> None:
    with PContext(2) as ctx:
        pass
    assert ctx.closed
    assert ctx.scheduler is TaskScheduler.default()
    assert ctx.interrupt.is_signaled
    assert ctx.max_parallelism == 2
    assert isinstance(ctx.id, int)


def test_ev38_null_pfn_flatten_and_synclock() -> None:
    assert list(NullPFn()([1, 2])) == [1, 2]
    empty = AggregateException([])
    assert empty.flatten() is empty

    @synclock
    def work() -> int:
        """Documented."""
        return 1

    assert work.__name__ == "work" and work.__doc__ == "Documented."
    assert work() == 1

    def f() -> int:
        return 1

    wrapper = synclock("evidence-a")(f)
    assert synclock("evidence-a")(f) is wrapper
    with pytest.raises(ThreadingException):
        synclock("evidence-b")(f)
    with pytest.raises(ThreadingException, match="Cannot apply synclock to a function twice"):
        synclock(wrapper)


# -- Ev-39 (D33): SystemExit / KeyboardInterrupt in a target end the task FAILED -------------


def test_ev39_system_exit_in_a_worker_target_fails_the_task() -> None:
    def leave(t: Task[None]) -> None:
        raise SystemExit(3)

    t = Task.run(leave)
    after = t.continue_with(CO.ON_FAILED, _ran)
    assert t.wait(TIMEOUT)
    assert t.state is TaskState.FAILED and t.is_completed
    assert isinstance(t.exception, ThreadingException)
    assert isinstance(t.exception.__cause__, SystemExit)
    assert after.result == "ran"
    # The worker carried on: the same scheduler still runs tasks.
    assert Task.run(lambda t: 5).result == 5


def test_ev39_keyboard_interrupt_on_a_non_worker_thread_is_re_raised_after_finalising() -> None:
    def ctrl_c(t: Task[None]) -> None:
        raise KeyboardInterrupt

    t = Task.plan(ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        t.run_synchronously()
    assert t.state is TaskState.FAILED
    assert isinstance(t.exception, ThreadingException)
    assert isinstance(t.exception.__cause__, KeyboardInterrupt)
    assert t.wait(0) and Task.current() is None


# -- Ev-40 (D21): signal ids are never reused -------------------------------------------------


def test_ev40_unrelated_interrupt_exception_fails_the_task_even_after_gc() -> None:
    def run(drop_signal: bool) -> int:
        hits = 0
        for _ in range(50):
            a = InterruptSignal()
            keep = [a]
            started, gate = Event(), Event()

            def target(t: Task[None], started: Event = started, gate: Event = gate) -> None:
                started.signal()
                gate.wait(TIMEOUT)
                b = InterruptSignal()  # an unrelated signal...
                b.signal()
                b.interrupt.raise_if_signaled()  # ...whose exception escapes the target

            running = Task.create(interrupt=a.interrupt).run(target)
            assert started.wait(TIMEOUT)
            a.signal()
            if drop_signal:
                keep.clear()
                del a
                gc.collect()
            gate.signal()
            assert running.wait(TIMEOUT)
            hits += running.is_interrupted
        return hits

    assert run(False) == 0
    assert run(True) == 0


# -- spec points that are easy to miss ------------------------------------------------------


def _echo(t: Task[str]) -> str:
    return "x"


def test_api_0_1_static_methods_through_subscripted_aliases() -> None:
    assert Task[str].plan(_echo).state is TaskState.NOTSTARTED
    assert Task[R].run(_echo).result == "x"  # type: ignore[valid-type]
    assert Task[int].run_after(0, lambda t: 1).result == 1
    assert Task[int].from_result(3).result == 3
    assert Task[int].wait_all([Task[int].from_result(1)])
    assert sorted(PFork[int, int]([PFn(_inc), PFn(_dbl)])([1])) == [2, 2]
    assert list(PFilter[int](lambda t, x: x > 1)([1, 2])) == [2]
    d = Distributor[str](["a", "b"])
    consumer = d.take()
    d.start()
    assert list(consumer) == ["a", "b"]
    assert ProducerConsumerQueue[str](["s"]).take() == "s"
    assert Queue[int].from_items([1]).dequeue(0) == 1


NAMED_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (TaskCompletedError, "task has already completed"),
    (TaskNotScheduledError, "task is not scheduled"),
    (TaskAlreadyRunningError, "task is already running"),
    (TaskAlreadyScheduledError, "task is already scheduled"),
    (AwaitedTaskInterruptedError, "an awaited task was interrupted"),
    (SchedulerClosedError, "task scheduler is closed"),
    (TaskAlreadyStartedOrScheduledError, "task is already running or scheduled elsewhere"),
    (DistributionAlreadyStartedError, "distribution has already started"),
    (QueueCompletedError, "queue is complete"),
    (
        QueueLinkedToAnotherQueueError,
        "queue is fed by another queue's iterator and cannot be written to or completed directly",
    ),
)


@pytest.mark.parametrize(
    ("error", "message"), NAMED_ERRORS, ids=lambda x: getattr(x, "__name__", "")
)
def test_api_0_6_named_errors(error: type[Exception], message: str) -> None:
    assert str(error) == message
    assert repr(error) == f"<class '{error.__module__}.{error.__name__}'>"
    assert str(error()) == message
    try:
        raise error
    except error as raised:
        first = raised
    try:
        raise error
    except error as raised:
        second = raised
    assert str(first) == message and first is not second


def test_api_0_6_named_errors_from_real_raise_sites_are_fresh() -> None:
    done = Task.from_result(1)
    caught = []
    for _ in range(2):
        with pytest.raises(TaskCompletedError) as info:
            done.schedule()
        caught.append(info.value)
    assert caught[0] is not caught[1]
    assert str(caught[0]) == str(TaskCompletedError)
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue([])
    with pytest.raises(QueueCompletedError, match=f"^{QueueCompletedError!s}$"):
        q.put(1)
    with pytest.raises(TaskNotScheduledError):
        Task.plan(lambda t: 1).result  # noqa: B018


def _probe_fn(t: Task[Any], x: int) -> list[tuple[str, str]]:
    return [(t.name, t.target)]


def _probe_each(t: Task[Any], x: int, seen: list[tuple[str, str]]) -> None:
    seen.append((t.name, t.target))


def _probe_background(t: Task[Any], seen: list[tuple[str, str]]) -> None:
    seen.append((t.name, t.target))


def _probe_predicate(t: Task[Any], x: int) -> bool:
    return t.target == f"{__name__}._probe_predicate" and t.name == f"{__name__}._probe_predicate"


def test_api_3_3_parallel_worker_tasks_report_the_user_function_as_target() -> None:
    expected = (f"{__name__}._probe_fn", f"{__name__}._probe_fn")
    assert list(parallel.map([1], parallelism=1).do(_probe_fn)) == [expected]
    out: ProducerConsumerQueue[tuple[str, str]] = ProducerConsumerQueue()
    assert parallel.process([1], parallelism=1).do(_probe_fn, output_queue=out).wait(TIMEOUT)
    assert out.take() == expected
    assert list(PFn(_probe_fn)([1])) == [expected]
    seen: list[tuple[str, str]] = []
    assert parallel.for_each([1], parallelism=1).do(_probe_each, seen).wait(TIMEOUT)
    assert parallel.background(parallelism=1).do(_probe_background, seen).wait(TIMEOUT)
    assert seen == [
        (f"{__name__}._probe_each", f"{__name__}._probe_each"),
        (f"{__name__}._probe_background", f"{__name__}._probe_background"),
    ]
    assert list(PFilter(_probe_predicate)([1])) == [1]
    named = list(parallel.map([1], task_name="custom", parallelism=1).do(_probe_fn))
    assert named == [("custom", f"{__name__}._probe_fn")]


class _Holder:
    def method(self, t: Task[tuple[str, str]]) -> tuple[str, str]:
        return t.name, t.target


def test_api_3_5_task_names_and_targets() -> None:
    assert Task.plan(_echo).name == f"{__name__}._echo"
    assert Task.plan(lambda t: 0).name == f"{__name__}.<lambda>"
    holder = _Holder()
    assert Task.run(holder.method).result == (
        f"{__name__}.method",
        f"{__name__}._Holder.method",
    )
    direct = Task(_echo)
    assert direct.name == f"Task_{direct.id}"
    assert direct.target == f"{__name__}._echo"
    c = Task.from_result(1).continue_with(CO.DEFAULT, _ran)
    assert c.name == f"{__name__}._ran" and c.result == "ran"


def test_api_3_5_names_in_a_main_script() -> None:
    code = textwrap.dedent(
        """
        from runtime.threading import parallel
        from runtime.threading.tasks import Task
        def work(t): return t.name
        print(Task.run(lambda t: t.name).result)
        print(Task.run(work).result, Task.plan(work).target)
        print(list(parallel.map([1], parallelism=1).do(lambda t, x: [t.target]))[0])
        """
    )
    result = run_in_subprocess(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "__main__.<lambda>",
        "__main__.work __main__.work",
        "__main__.<lambda>",
    ]


def test_api_4_2_scheduler_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"^Argument max_parallelism must be greater than 0$"):
        ConcurrentTaskScheduler(0)
    with pytest.raises(ValueError, match="keep_alive"):
        ConcurrentTaskScheduler(2, -0.5)
    s = ConcurrentTaskScheduler(2, 0.0)
    try:
        assert Task.create(scheduler=s).run(lambda t: 1).result == 1
    finally:
        s.close()


def test_semantics_5_7_close_from_one_of_its_own_tasks_waits_for_the_others() -> None:
    s = ConcurrentTaskScheduler(2)
    gate = Event()
    order: list[str] = []
    closer_thread: list[threading.Thread] = []
    other_started = Event()

    def other(t: Task[None]) -> None:
        other_started.signal()
        gate.wait(TIMEOUT)
        order.append("other finished")

    def closer(t: Task[str]) -> str:
        closer_thread.append(threading.current_thread())
        s.close()
        order.append("close returned")
        return "closed"

    try:
        first = Task.create(scheduler=s).run(other)
        assert other_started.wait(TIMEOUT)
        closing = Task.create(scheduler=s).run(closer)
        wait_for(lambda: bool(closer_thread))
        wait_until_blocked(closer_thread[0])
        assert s.is_closed and not closing.is_completed
        gate.signal()
        assert closing.result == "closed"
        assert first.wait(TIMEOUT)
        assert order == ["other finished", "close returned"]
    finally:
        gate.signal()
        s.close()
    assert (s.active_threads, s.suspended_threads, s.allocated_threads) == (0, 0, 0)


def test_semantics_12_script_that_starts_tasks_and_returns_exits_promptly() -> None:
    code = textwrap.dedent(
        """
        from runtime.threading import parallel, sleep
        from runtime.threading.tasks import Task
        from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler
        tasks = [Task.run(lambda t, i=i: i) for i in range(20)]
        Task.run(lambda t: sleep(60))  # returns early once termination is requested
        s = ConcurrentTaskScheduler(2, keep_alive=60.0)
        Task.create(scheduler=s).run(lambda t: 1).wait()
        parallel.for_each(range(10)).do(lambda t, x: None)
        print("main done")
        """
    )
    start = time.monotonic()
    result = run_in_subprocess(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\n"
    assert result.stderr == ""
    assert time.monotonic() - start < 25.0  # neither keep-alive nor the sleep held it
