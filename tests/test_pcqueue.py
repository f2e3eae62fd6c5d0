"""Tests for ``runtime.threading.parallel._pcqueue``: ProducerConsumerQueue and its iterator.

Organised as: the user page's example and one test per sentence of that page; the life-cycle
tables of SEMANTICS §9.2 and §9.3; then the defects of the older implementation that must not
come back (IMPROVEMENTS D1, D2, D4, D5, D6, D19, D23, D27, D28); capacity; linked queues;
``synchronization_lock``, ``statistics()``, argument checks; Ctrl+C; consumers that are tasks.

Every wait on another thread is bounded by a generous timeout, and a call that must block is
proven blocked (``wait_until_blocked``) before it is released.
"""

from __future__ import annotations

import functools
import gc
import itertools
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from helpers import REPO_ROOT, SRC_DIR, ThreadRunner, wait_until_blocked
from runtime.threading import (
    AutoClearEvent,
    Event,
    InterruptException,
    InterruptSignal,
    Lock,
    _constants,
)
from runtime.threading.parallel import (
    ProducerConsumerQueue,
    ProducerConsumerQueueIterator,
    QueueCompletedError,
    QueueLinkedToAnotherQueueError,
)
from runtime.threading.parallel.pipeline import PIterable, PIterator
from runtime.threading.tasks import Task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler

#: Generous bound for anything that should happen "at once" on another thread.
TIMEOUT = 10.0

FALSY: tuple[Any, ...] = (None, 0, "", False)


class Boom(Exception):
    """A distinctive failure error."""


def blocked(fn: Callable[[], Any]) -> ThreadRunner[Any]:
    """Run ``fn`` on a new thread and return once that thread is parked in a library wait."""
    runner: ThreadRunner[Any] = ThreadRunner(fn)
    wait_until_blocked(runner.thread)
    return runner


def raises_in(runner: ThreadRunner[Any], kind: type[BaseException]) -> BaseException:
    """Join ``runner`` and return the exception of type ``kind`` it raised."""
    with pytest.raises(kind) as caught:
        runner.join(TIMEOUT)
    return caught.value


def linked_to(source: ProducerConsumerQueue[Any]) -> ProducerConsumerQueue[Any]:
    return ProducerConsumerQueue(source.get_iterator())


def producing(queue: ProducerConsumerQueue[int], n: int) -> Callable[[], None]:
    """A producer that puts ``range(n)`` one by one, then completes the queue."""

    def produce() -> None:
        for i in range(n):
            queue.put(i)
        queue.complete()

    return produce


# -- the user page ---------------------------------------------------------------------------

SEED_EXAMPLE = '''
from runtime.threading.parallel import ProducerConsumerQueue
from runtime.threading.tasks import Task

def fn_produce(task: Task[None], queue: ProducerConsumerQueue[int], n: int) -> None:
        try:
            for i in range(n):
                queue.put(i)
            queue.complete()
        except Exception as ex:
            queue.fail(ex)

def fn_consume(task: Task[list[int]], queue: ProducerConsumerQueue[int]) -> list[int]:
     return [ i for i in queue.get_iterator() ]

queue = ProducerConsumerQueue[int]()
task_producer = Task.run(fn_produce, queue, 5)
task_consumer = Task.run(fn_consume, queue)

assert task_consumer.result == list(range(5))
'''


def test_the_example_of_the_user_page_runs_verbatim() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(SEED_EXAMPLE, "<ProducerConsumerQueue example>", "exec"), namespace)
    assert namespace["task_producer"].wait(TIMEOUT)
    assert namespace["task_producer"].is_completed_successfully


def test_the_example_runs_in_a_fresh_interpreter() -> None:
    code = SEED_EXAMPLE + "\nprint('done')\n"
    env = {"PYTHONPATH": str(SRC_DIR)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_work_can_be_added_and_consumed_asynchronously_on_different_threads() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = ThreadRunner(lambda: list(queue.get_iterator()))
    producer = ThreadRunner(producing(queue, 100))
    producer.join(TIMEOUT)
    assert consumer.join(TIMEOUT) == list(range(100))
    assert consumer.thread.ident != producer.thread.ident


def test_the_producer_puts_items_and_then_calls_complete_when_done() -> None:
    queue: ProducerConsumerQueue[str] = ProducerConsumerQueue()
    for job in ("a", "b"):
        queue.put(job)
    assert not queue.is_complete
    queue.complete()
    assert queue.is_complete
    assert list(queue.get_iterator()) == ["a", "b"]


def test_the_consumer_may_call_try_take_repeatedly() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    producer = ThreadRunner(producing(queue, 50))
    got: list[int] = []
    deadline = time.monotonic() + TIMEOUT
    while not (queue.is_complete and got == list(range(50))):
        item, ok = queue.try_take(0.05)
        if ok:
            got.append(item)  # type: ignore[arg-type]
        assert time.monotonic() < deadline
    producer.join(TIMEOUT)
    assert got == list(range(50))
    assert queue.try_take() == (None, False)


def test_the_consumer_may_iterate_over_an_iterator_from_get_iterator() -> None:
    queue = ProducerConsumerQueue([1, 2, 3])
    iterator = queue.get_iterator()
    assert isinstance(iterator, ProducerConsumerQueueIterator)
    assert [x for x in iterator] == [1, 2, 3]


def test_multiple_iterators_can_be_used_simultaneously_to_parallelise_consumption() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    started = threading.Barrier(4)

    def consume() -> list[int]:
        started.wait(TIMEOUT)
        return list(queue.get_iterator())

    consumers = [ThreadRunner(consume) for _ in range(3)]
    started.wait(TIMEOUT)
    queue.put_many(range(3000))
    queue.complete()
    parts = [c.join(TIMEOUT) for c in consumers]
    assert sorted(x for part in parts for x in part) == list(range(3000))
    for part in parts:
        assert part == sorted(part)  # each consumer gets its items in insertion order


def test_init_creates_a_new_empty_queue() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert not queue.is_complete and not queue.is_failed and not queue.is_async
    assert queue.try_take() == (None, False)
    assert queue.statistics().buffered_items == 0


def test_init_with_data_creates_a_queue_with_existing_work() -> None:
    queue = ProducerConsumerQueue(iter(["x", "y"]))
    assert queue.is_complete and not queue.is_failed
    assert [queue.take(), queue.take()] == ["x", "y"]
    with pytest.raises(TimeoutError):
        queue.take()
    assert ProducerConsumerQueue([]).is_complete


def test_is_complete_indicates_if_the_queue_is_complete() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert queue.is_complete is False
    queue.complete()
    assert queue.is_complete is True


def test_is_failed_indicates_if_the_queue_is_failed() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert queue.is_failed is False
    queue.fail(Boom())
    assert queue.is_failed is True
    assert queue.is_complete is True  # FAILED implies complete


def test_is_async_indicates_if_the_queue_consumes_from_another_queue() -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert source.is_async is False
    assert linked_to(source).is_async is True
    assert ProducerConsumerQueue([1]).is_async is False


@pytest.mark.parametrize(
    "transition", ["put", "put_many", "complete", "fail", "fail_if_not_complete"]
)
def test_wait_event_is_signaled_when_items_are_added_or_the_queue_ends(transition: str) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    event = queue.wait_event
    assert isinstance(event, AutoClearEvent)
    assert event.purpose == "PRODUCER_CONSUMER_QUEUE_NOTIFY"
    assert not event.is_signaled
    actions: dict[str, Callable[[], object]] = {
        "put": lambda: queue.put(1),
        "put_many": lambda: queue.put_many([1, 2]),
        "complete": queue.complete,
        "fail": lambda: queue.fail(Boom()),
        "fail_if_not_complete": lambda: queue.fail_if_not_complete(Boom()),
    }
    actions[transition]()
    assert event.wait(0)
    assert not event.is_signaled  # auto-clear: consumed by that wait


def test_wait_event_wakes_an_outside_observer() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    observer = blocked(lambda: queue.wait_event.wait(TIMEOUT))
    queue.put(0)
    assert observer.join(TIMEOUT) is True
    assert queue.take() == 0


def test_put_adds_an_item_to_the_queue() -> None:
    queue: ProducerConsumerQueue[object] = ProducerConsumerQueue()
    item = object()
    queue.put(item)
    assert queue.take() is item


def test_put_many_adds_multiple_items_to_the_queue() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.put_many([1, 2])
    queue.put_many((3,))
    queue.put_many(x for x in (4, 5))
    queue.put_many([])
    queue.complete()
    assert list(queue.get_iterator()) == [1, 2, 3, 4, 5]


def test_take_tries_to_take_an_item_and_defaults_to_a_zero_timeout() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        queue.take()  # default 0: never blocks
    assert time.monotonic() - started < 1.0
    queue.put(7)
    assert queue.take() == 7


def test_take_with_a_timeout_blocks_until_an_item_can_be_produced() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = blocked(lambda: queue.take(TIMEOUT))
    queue.put(3)
    assert consumer.join(TIMEOUT) == 3


def test_take_with_a_timeout_blocks_until_the_timeout_is_met_then_raises() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        queue.take(0.1)
    assert time.monotonic() - started >= 0.1


def test_take_raises_timeout_error_when_no_item_can_be_produced() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = blocked(lambda: queue.take(None))
    queue.complete()
    raises_in(consumer, TimeoutError)


def test_take_accepts_an_interrupt_for_this_call() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()
    consumer = blocked(lambda: queue.take(None, stop.interrupt))
    stop.signal()
    error = raises_in(consumer, InterruptException)
    assert isinstance(error, InterruptException) and error.interrupt is stop.interrupt


def test_try_take_returns_the_item_and_a_success_flag() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert queue.try_take() == (None, False)
    queue.put(0)
    assert queue.try_take() == (0, True)
    consumer = blocked(lambda: queue.try_take(TIMEOUT))
    queue.put(5)
    assert consumer.join(TIMEOUT) == (5, True)
    assert queue.try_take(0.05) == (None, False)


def test_complete_marks_the_queue_completed_and_it_accepts_no_more_items() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.put(1)
    queue.complete()
    with pytest.raises(QueueCompletedError):
        queue.put(2)
    with pytest.raises(QueueCompletedError):
        queue.put_many([2])
    assert list(queue.get_iterator()) == [1]


def test_fail_marks_the_queue_failed_and_it_accepts_no_more_items() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    error = Boom("broken")
    queue.fail(error)
    with pytest.raises(QueueCompletedError):
        queue.put(1)
    with pytest.raises(Boom) as caught:
        queue.take()
    assert caught.value is error


def test_fail_raises_queue_linked_error_if_the_queue_consumes_from_another_queue() -> None:
    with pytest.raises(QueueLinkedToAnotherQueueError):
        linked_to(ProducerConsumerQueue()).fail(Boom())


def test_fail_if_not_complete_fails_an_open_queue_only() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    error = Boom()
    queue.fail_if_not_complete(error)
    assert queue.is_failed
    with pytest.raises(QueueCompletedError):
        queue.put(1)
    queue.fail_if_not_complete(Boom())  # no effect, no error
    with pytest.raises(Boom) as caught:
        queue.take()
    assert caught.value is error
    done: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    done.complete()
    done.fail_if_not_complete(Boom())
    assert done.is_complete and not done.is_failed


def test_fail_if_not_complete_raises_queue_linked_error_if_linked() -> None:
    with pytest.raises(QueueLinkedToAnotherQueueError):
        linked_to(ProducerConsumerQueue()).fail_if_not_complete(Boom())


def test_get_iterator_returns_a_blocking_interruptible_iterator() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    iterator = queue.get_iterator()
    assert isinstance(iterator, ProducerConsumerQueueIterator)
    assert isinstance(iterator, PIterable) and isinstance(iterator, PIterator)
    assert iterator.queue is queue
    assert isinstance(iter(iterator), PIterator)
    stop = InterruptSignal()
    consumer = blocked(lambda: iterator.next(None, stop.interrupt))
    stop.signal()
    raises_in(consumer, InterruptException)
    consumer = blocked(lambda: next(iterator))
    queue.put(4)
    assert consumer.join(TIMEOUT) == 4


# -- SEMANTICS §9.2: what producers see ------------------------------------------------------

STATES = ("OPEN", "COMPLETE", "FAILED", "LINKED")


def queue_in(state: str) -> ProducerConsumerQueue[int]:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    if state == "COMPLETE":
        queue.complete()
    elif state == "FAILED":
        queue.fail(Boom())
    elif state == "LINKED":
        queue = linked_to(queue)
    return queue


PRODUCER_OPS: dict[str, Callable[[ProducerConsumerQueue[int]], object]] = {
    "put": lambda q: q.put(1),
    "put_many": lambda q: q.put_many([1, 2]),
    "complete": lambda q: q.complete(),
    "fail": lambda q: q.fail(Boom()),
    "fail_if_not_complete": lambda q: q.fail_if_not_complete(Boom()),
}

# (state, operation) -> the error raised, or the state reached.
PRODUCER_TABLE: dict[tuple[str, str], object] = {
    ("OPEN", "put"): "OPEN",
    ("OPEN", "put_many"): "OPEN",
    ("OPEN", "complete"): "COMPLETE",
    ("OPEN", "fail"): "FAILED",
    ("OPEN", "fail_if_not_complete"): "FAILED",
    ("COMPLETE", "put"): QueueCompletedError,
    ("COMPLETE", "put_many"): QueueCompletedError,
    ("COMPLETE", "complete"): QueueCompletedError,
    ("COMPLETE", "fail"): QueueCompletedError,
    ("COMPLETE", "fail_if_not_complete"): "COMPLETE",
    ("FAILED", "put"): QueueCompletedError,
    ("FAILED", "put_many"): QueueCompletedError,
    ("FAILED", "complete"): QueueCompletedError,
    ("FAILED", "fail"): QueueCompletedError,
    ("FAILED", "fail_if_not_complete"): "FAILED",
    **{("LINKED", op): QueueLinkedToAnotherQueueError for op in PRODUCER_OPS},
}


def state_of(queue: ProducerConsumerQueue[Any]) -> str:
    if queue.is_failed:
        return "FAILED"
    return "COMPLETE" if queue.is_complete else "OPEN"


@pytest.mark.parametrize(("state", "op"), sorted(PRODUCER_TABLE))
def test_what_producers_see(state: str, op: str) -> None:
    queue = queue_in(state)
    expected = PRODUCER_TABLE[state, op]
    if isinstance(expected, type):
        with pytest.raises(expected) as caught:
            PRODUCER_OPS[op](queue)
        assert str(caught.value) == str(expected)  # named error, default message
    else:
        PRODUCER_OPS[op](queue)
        assert state_of(queue) == expected


@pytest.mark.parametrize("source_state", ["COMPLETE", "FAILED"])
@pytest.mark.parametrize("op", sorted(PRODUCER_OPS))
def test_the_linked_error_is_checked_before_the_completed_check(
    source_state: str, op: str
) -> None:
    source = queue_in(source_state)
    queue = ProducerConsumerQueue(source.get_iterator(), capacity=1)
    assert queue.is_complete
    with pytest.raises(QueueLinkedToAnotherQueueError):
        PRODUCER_OPS[op](queue)


def test_a_producer_blocked_in_a_full_queue_is_released_by_completion() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=1)
    queue.put(0)
    producer = blocked(lambda: queue.put(1))
    queue.complete()
    raises_in(producer, QueueCompletedError)
    assert list(queue.get_iterator()) == [0]


# -- SEMANTICS §9.3: what consumers see ------------------------------------------------------

TAKES: dict[str, Callable[..., Any]] = {
    "take": lambda q, t, i: q.take(t, i),
    "try_take": lambda q, t, i: q.try_take(t, i),
    "next": lambda q, t, i: q.get_iterator().next(t, i),
}


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("state", STATES)
def test_a_signaled_interrupt_is_checked_first_in_every_state(how: str, state: str) -> None:
    source = queue_in("OPEN")
    queue = linked_to(source) if state == "LINKED" else queue_in(state)
    if state == "OPEN":
        queue.put(1)
    elif state == "LINKED":
        source.put(1)
    stop = InterruptSignal()
    stop.signal()
    with pytest.raises(InterruptException):
        TAKES[how](queue, 0, stop.interrupt)
    if state in ("OPEN", "LINKED"):
        assert queue.take() == 1  # the interrupted take left the item


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("timeout", [0, 0.05, None])
def test_a_failed_queue_raises_its_error_on_every_call_for_every_consumer(
    how: str, timeout: float | None
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.put(1)
    error = Boom()
    queue.fail(error)
    for _ in range(3):
        with pytest.raises(Boom) as caught:
            TAKES[how](queue, timeout, None)
        assert caught.value is error
    other = ThreadRunner(lambda: TAKES[how](queue, timeout, None))
    assert raises_in(other, Boom) is error


def test_a_stored_error_keeps_its_traceback_and_it_does_not_grow() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    try:
        raise Boom("stored")
    except Boom as error:
        stored = error
        stored_tb = error.__traceback__
    queue.fail(stored)
    depths = []
    for _ in range(5):
        with pytest.raises(Boom) as caught:
            queue.take()
        assert caught.value is stored
        tb = caught.value.__traceback__
        assert tb is not None
        depth = 0
        while tb is not None:
            depth += 1
            tb = tb.tb_next
        depths.append(depth)
    assert len(set(depths)) == 1
    assert stored_tb is not None


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("state", ["OPEN", "COMPLETE", "LINKED"])
@pytest.mark.parametrize("item", (*FALSY, 1))
def test_a_buffered_item_is_returned_oldest_first(how: str, state: str, item: Any) -> None:
    if state == "COMPLETE":
        queue: ProducerConsumerQueue[Any] = ProducerConsumerQueue([item, "later"])
    elif state == "LINKED":
        queue = linked_to(ProducerConsumerQueue([item, "later"]))
    else:
        queue = ProducerConsumerQueue()
        queue.put(item)
        queue.put("later")
    got = TAKES[how](queue, 0, None)
    assert got == ((item, True) if how == "try_take" else item)
    assert type(got[0] if how == "try_take" else got) is type(item)


@pytest.mark.parametrize("timeout", [0, 0.05, None, 1e9])
def test_a_complete_empty_queue_reports_no_item_at_once_and_permanently(
    timeout: float | None,
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue([1])
    assert queue.take() == 1
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            queue.take(timeout)
        assert queue.try_take(timeout) == (None, False)
        with pytest.raises(StopIteration):
            queue.get_iterator().next(timeout)
        assert list(queue.get_iterator()) == []
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("state", ["OPEN", "LINKED"])
def test_an_open_empty_queue_with_a_zero_timeout_raises_at_once(state: str) -> None:
    queue = queue_in(state)
    with pytest.raises(TimeoutError):
        queue.take(0)
    assert queue.try_take(0) == (None, False)
    with pytest.raises(StopIteration):
        queue.get_iterator().next(0)


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("state", ["OPEN", "LINKED"])
def test_an_open_empty_queue_with_a_positive_timeout_waits_then_reports_no_item(
    how: str, state: str
) -> None:
    queue = queue_in(state)
    started = time.monotonic()
    if how == "try_take":
        assert TAKES[how](queue, 0.1, None) == (None, False)
    else:
        with pytest.raises(StopIteration if how == "next" else TimeoutError):
            TAKES[how](queue, 0.1, None)
    assert 0.1 <= time.monotonic() - started < 5.0


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("state", ["OPEN", "LINKED"])
@pytest.mark.parametrize("outcome", ["item", "complete", "fail"])
def test_an_open_empty_queue_with_no_timeout_waits_for_an_item_or_the_end(
    how: str, state: str, outcome: str
) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue = linked_to(source) if state == "LINKED" else source
    consumer = blocked(lambda: TAKES[how](queue, None, None))
    error = Boom()
    if outcome == "item":
        source.put(0)
        assert consumer.join(TIMEOUT) == ((0, True) if how == "try_take" else 0)
    elif outcome == "complete":
        source.complete()
        if how == "try_take":
            assert consumer.join(TIMEOUT) == (None, False)
        else:
            raises_in(consumer, StopIteration if how == "next" else TimeoutError)
    else:
        source.fail(error)
        assert raises_in(consumer, Boom) is error


def test_iteration_ends_on_completion_and_stays_ended() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    iterator = queue.get_iterator()
    consumer = blocked(lambda: list(iterator))
    queue.put_many([1, 2])
    queue.complete()
    assert consumer.join(TIMEOUT) == [1, 2]
    for _ in range(3):
        with pytest.raises(StopIteration):
            next(iterator)


def test_a_failure_propagates_out_of_a_for_loop() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    seen: list[int] = []
    got_one = threading.Event()

    def loop() -> None:
        for item in queue.get_iterator():
            seen.append(item)
            got_one.set()

    consumer = blocked(loop)
    queue.put(1)
    error = Boom()
    assert got_one.wait(TIMEOUT)
    wait_until_blocked(consumer.thread)
    queue.fail(error)
    assert raises_in(consumer, Boom) is error
    assert seen == [1]


def test_drain_takes_everything_and_propagates_failures() -> None:
    queue = ProducerConsumerQueue(range(10))
    queue.get_iterator().drain()
    assert queue.try_take() == (None, False)
    failed: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    drainer = blocked(lambda: failed.get_iterator().drain())
    error = Boom()
    failed.fail(error)
    assert raises_in(drainer, Boom) is error
    open_queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    open_queue.put(1)
    open_queue.get_iterator().drain(0.05)  # the timeout bounds each wait
    assert open_queue.try_take() == (None, False)


# -- D1: falsy items -------------------------------------------------------------------------


@pytest.mark.parametrize("item", FALSY)
def test_falsy_items_travel_through_every_path(item: Any) -> None:
    queue: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
    queue.put(item)
    queue.put_many([item, item])
    queue.put_many(x for x in [item])
    assert queue.take() == item
    assert queue.try_take() == (item, True)
    assert queue.get_iterator().next() == item
    assert next(iter(queue.get_iterator())) == item
    consumer = blocked(lambda: queue.take(None))
    queue.put(item)
    assert consumer.join(TIMEOUT) == item
    queue.put(item)
    queue.complete()
    assert list(queue.get_iterator()) == [item]
    assert list(ProducerConsumerQueue([item, item]).get_iterator()) == [item, item]
    assert list(linked_to(ProducerConsumerQueue([item])).get_iterator()) == [item]
    bounded: ProducerConsumerQueue[Any] = ProducerConsumerQueue(capacity=1)
    bounded.put(item)
    producer = blocked(lambda: bounded.put(item))
    assert bounded.take() == item
    producer.join(TIMEOUT)
    assert bounded.take() == item


@pytest.mark.parametrize("item", FALSY)
def test_a_falsy_last_item_racing_with_complete_is_never_dropped(item: Any) -> None:
    for _ in range(150):
        queue: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
        go = threading.Barrier(2)

        def produce(queue: ProducerConsumerQueue[Any] = queue, go: threading.Barrier = go) -> None:
            go.wait(TIMEOUT)
            queue.put(item)
            queue.complete()

        producer = ThreadRunner(produce)
        go.wait(TIMEOUT)
        got = []
        while True:
            value, ok = queue.try_take(0.001)
            if ok:
                got.append(value)
            elif queue.is_complete and queue.try_take() == (None, False):
                break
        producer.join(TIMEOUT)
        assert got == [item]


@pytest.mark.parametrize("item", FALSY)
def test_a_falsy_last_item_reaches_a_blocked_iterator_before_completion(item: Any) -> None:
    for _ in range(50):
        queue: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
        consumer = ThreadRunner(list, queue.get_iterator())
        queue.put(item)
        queue.complete()
        assert consumer.join(TIMEOUT) == [item]


# -- D2: every blocked consumer is woken by completion and failure -----------------------------


@pytest.mark.parametrize("how", sorted(TAKES))
def test_every_consumer_blocked_without_timeout_is_woken_by_complete(how: str) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumers = [blocked(lambda: TAKES[how](queue, None, None)) for _ in range(5)]
    queue.complete()
    for consumer in consumers:
        if how == "try_take":
            assert consumer.join(TIMEOUT) == (None, False)
        else:
            raises_in(consumer, StopIteration if how == "next" else TimeoutError)


@pytest.mark.parametrize("how", sorted(TAKES))
def test_every_consumer_blocked_without_timeout_is_woken_by_fail(how: str) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumers = [blocked(lambda: TAKES[how](queue, None, None)) for _ in range(5)]
    error = Boom()
    queue.fail(error)
    for consumer in consumers:
        assert raises_in(consumer, Boom) is error


def test_every_iterating_consumer_ends_on_complete() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumers = [blocked(lambda: list(queue.get_iterator())) for _ in range(6)]
    queue.complete()
    assert [c.join(TIMEOUT) for c in consumers] == [[]] * 6


def test_consuming_the_wait_event_from_outside_never_makes_a_consumer_miss_a_wake_up() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumers = [blocked(lambda: queue.take(None)) for _ in range(3)]

    def steal() -> None:  # consumes every hint signal, as an outside observer may
        while not queue.is_complete:
            queue.wait_event.wait(TIMEOUT)

    thief = blocked(steal)
    queue.put_many([1, 2, 3])
    assert sorted(c.join(TIMEOUT) for c in consumers) == [1, 2, 3]
    queue.complete()
    thief.join(TIMEOUT)


# -- D4: an interrupt during a blocking take -------------------------------------------------


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("timeout", [None, TIMEOUT])
@pytest.mark.parametrize("state", ["OPEN", "LINKED"])
def test_an_interrupt_during_a_blocking_take_raises_interrupt_exception(
    how: str, timeout: float | None, state: str
) -> None:
    queue = queue_in(state)
    stop = InterruptSignal()
    consumer = blocked(lambda: TAKES[how](queue, timeout, stop.interrupt))
    signaled = time.monotonic()
    stop.signal()
    error = raises_in(consumer, InterruptException)
    assert isinstance(error, InterruptException) and error.interrupt is stop.interrupt
    assert time.monotonic() - signaled < 5.0
    queue_state = state_of(queue)
    assert queue_state == "OPEN"  # an interrupt never changes the queue


def test_an_interrupt_stops_a_for_loop_with_interrupt_exception_not_silently() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()
    got: list[int] = []
    got_one = threading.Event()

    def loop() -> None:
        iterator = queue.get_iterator()
        while True:
            got.append(iterator.next(None, stop.interrupt))
            got_one.set()

    consumer = blocked(loop)
    queue.put(1)
    assert got_one.wait(TIMEOUT)
    wait_until_blocked(consumer.thread)
    stop.signal()
    raises_in(consumer, InterruptException)
    assert got == [1]


def test_an_interrupted_consumer_passes_on_the_wake_up_it_absorbed() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()
    interrupted = blocked(lambda: queue.take(None, stop.interrupt))
    other = blocked(lambda: queue.take(None))
    stop.signal()  # wakes both; only the first one leaves
    raises_in(interrupted, InterruptException)
    queue.put(9)
    assert other.join(TIMEOUT) == 9


def test_no_registration_is_left_on_the_interrupt_after_a_take() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()
    for _ in range(50):
        with pytest.raises(TimeoutError):
            queue.take(0.001, stop.interrupt)
    assert not stop.interrupt._callbacks  # every wait unsubscribed in finally


# -- D19: one deadline -----------------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(TAKES))
@pytest.mark.parametrize("with_interrupt", [False, True])
def test_a_timeout_is_one_deadline_never_doubled(how: str, with_interrupt: bool) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    interrupt = InterruptSignal().interrupt if with_interrupt else None
    started = time.monotonic()
    try:
        TAKES[how](queue, 0.2, interrupt)
    except (TimeoutError, StopIteration):
        pass
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 0.35


def test_try_take_keeps_one_deadline_across_stolen_wake_ups() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = threading.Event()

    def steal() -> None:
        while not stop.is_set():
            queue.put(1)
            queue.try_take()  # usually steals the item from the waiting consumer
            stop.wait(0.005)  # pacing, not synchronisation

    thief = ThreadRunner(steal)
    try:
        started = time.monotonic()
        while True:
            _, ok = queue.try_take(0.3)
            if not ok:
                break
            started = time.monotonic()
        assert time.monotonic() - started < 0.3 + 0.3
    finally:
        stop.set()
        thief.join(TIMEOUT)


# -- D23: put racing with complete -----------------------------------------------------------


def test_a_put_racing_with_complete_is_either_delivered_or_rejected() -> None:
    for _ in range(100):
        queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        go = threading.Barrier(3)
        accepted: list[int] = []

        def produce(
            base: int,
            queue: ProducerConsumerQueue[int] = queue,
            go: threading.Barrier = go,
            accepted: list[int] = accepted,
        ) -> None:
            go.wait(TIMEOUT)
            for i in range(base, base + 20):
                try:
                    queue.put(i)
                except QueueCompletedError:
                    return
                accepted.append(i)

        producers = [ThreadRunner(produce, 0), ThreadRunner(produce, 100)]
        go.wait(TIMEOUT)
        queue.complete()
        for producer in producers:
            producer.join(TIMEOUT)
        assert sorted(queue.get_iterator()) == sorted(accepted)


# -- D28: fail() releases the buffered items ---------------------------------------------------


class Payload:
    pass


@pytest.mark.parametrize("how", ["fail", "fail_if_not_complete"])
def test_fail_discards_and_releases_buffered_items(how: str) -> None:
    queue: ProducerConsumerQueue[Payload] = ProducerConsumerQueue()
    items = [Payload() for _ in range(5)]
    refs = [weakref.ref(item) for item in items]
    queue.put_many(items)
    del items
    getattr(queue, how)(Boom())
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert queue.statistics().buffered_items == 0
    with pytest.raises(Boom):
        queue.take()


def test_an_abandoned_iterator_holds_no_items() -> None:
    queue: ProducerConsumerQueue[Payload] = ProducerConsumerQueue()
    payload = Payload()
    ref = weakref.ref(payload)
    queue.put(payload)
    del payload
    iterator = iter(queue.get_iterator())
    next(iterator)
    gc.collect()
    assert ref() is None
    queue.put(Payload())
    assert queue.statistics().buffered_items == 1  # nothing was prefetched
    del iterator


# -- D27: capacity ---------------------------------------------------------------------------


def full_queue(capacity: int = 2) -> ProducerConsumerQueue[int]:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)
    queue.put_many(range(capacity))
    assert queue.statistics().buffered_items == capacity
    return queue


def test_put_blocks_when_full_and_a_take_releases_it() -> None:
    queue = full_queue()
    assert queue.capacity == 2
    producer = blocked(lambda: queue.put(2))
    assert queue.statistics().producers_waiting == 1
    assert queue.take() == 0
    producer.join(TIMEOUT)
    assert [queue.take(), queue.take()] == [1, 2]


def test_an_iterator_take_releases_a_blocked_producer() -> None:
    queue = full_queue(1)
    producer = blocked(lambda: queue.put(1))
    assert next(iter(queue.get_iterator())) == 0
    producer.join(TIMEOUT)
    assert queue.take() == 1


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_every_blocked_producer_is_released_by_complete_or_fail(end: str) -> None:
    queue = full_queue()
    producers = [blocked(lambda: queue.put(9)) for _ in range(3)]
    many = blocked(lambda: queue.put_many([7, 8]))
    if end == "complete":
        queue.complete()
    else:
        queue.fail(Boom())
    for producer in [*producers, many]:
        raises_in(producer, QueueCompletedError)


def test_a_blocked_put_times_out_with_one_deadline() -> None:
    queue = full_queue()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        queue.put(2, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.35
    with pytest.raises(TimeoutError):
        queue.put(2, timeout=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        queue.put_many([1, 2, 3], timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.35


def test_put_many_has_one_deadline_for_the_whole_call() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=1)
    stop = threading.Event()

    def drip() -> None:  # frees one slot every 50 ms
        while not stop.wait(0.05):
            queue.try_take()

    dripper = ThreadRunner(drip)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            queue.put_many(range(1000), timeout=0.3)
        assert time.monotonic() - started < 0.3 + 0.3
    finally:
        stop.set()
        dripper.join(TIMEOUT)


def test_an_interrupt_releases_a_blocked_put() -> None:
    queue = full_queue()
    stop = InterruptSignal()
    producer = blocked(lambda: queue.put(2, interrupt=stop.interrupt))
    stop.signal()
    raises_in(producer, InterruptException)
    assert queue.statistics().buffered_items == 2
    stop2 = InterruptSignal()
    stop2.signal()
    with pytest.raises(InterruptException):
        ProducerConsumerQueue[int](capacity=5).put(1, interrupt=stop2.interrupt)


def test_an_interrupted_producer_passes_on_the_wake_up_it_absorbed() -> None:
    queue = full_queue(1)
    stop = InterruptSignal()
    interrupted = blocked(lambda: queue.put(1, interrupt=stop.interrupt))
    other = blocked(lambda: queue.put(2))
    stop.signal()
    raises_in(interrupted, InterruptException)
    assert queue.take() == 0
    other.join(TIMEOUT)
    assert queue.take() == 2


def test_without_capacity_put_never_blocks_and_ignores_timeout_and_interrupt() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()
    stop.signal()
    queue.put(1, timeout=-1, interrupt=stop.interrupt)
    queue.put_many(range(10_000), timeout=0)
    assert queue.statistics().buffered_items == 10_001


def test_a_bounded_queue_never_holds_more_than_its_capacity() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=8)
    seen_max = [0]

    def consume() -> list[int]:
        out = []
        for item in queue.get_iterator():
            seen_max[0] = max(seen_max[0], queue.statistics().buffered_items)
            out.append(item)
        return out

    consumer = ThreadRunner(consume)
    producers = [ThreadRunner(queue.put_many, range(base, base + 500)) for base in (0, 1000)]
    for producer in producers:
        producer.join(TIMEOUT)
    queue.complete()
    assert sorted(consumer.join(TIMEOUT)) == [*range(500), *range(1000, 1500)]
    assert seen_max[0] <= 8


def test_the_initial_data_and_linked_delivery_are_not_limited_by_capacity() -> None:
    queue = ProducerConsumerQueue(range(10), capacity=2)
    assert queue.statistics().buffered_items == 10
    source = ProducerConsumerQueue(range(5))
    linked = ProducerConsumerQueue(source.get_iterator(), capacity=1)
    assert list(linked.get_iterator()) == list(range(5))


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_capacity_below_one_is_rejected(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        ProducerConsumerQueue(capacity=capacity)


@pytest.mark.parametrize("capacity", [1.5, "2", True])
def test_a_capacity_that_is_not_an_int_is_rejected(capacity: Any) -> None:
    with pytest.raises(TypeError, match="capacity"):
        ProducerConsumerQueue(capacity=capacity)


# -- D5, D6: linked queues -------------------------------------------------------------------


def test_a_linked_queue_pulls_on_demand_in_the_consumer_thread_with_no_thread_of_its_own() -> None:
    before = threading.active_count()
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    linked = [linked_to(source) for _ in range(20)]
    assert threading.active_count() == before
    source.put_many([1, 2, 3])
    assert source.statistics().buffered_items == 3  # nothing was forwarded
    assert linked[5].take() == 1
    assert source.take() == 2  # the source competes like any consumer
    assert linked[7].get_iterator().next() == 3
    assert threading.active_count() == before
    del linked
    gc.collect()
    assert threading.active_count() == before


def test_an_abandoned_linked_queue_does_not_keep_the_interpreter_alive() -> None:
    code = textwrap.dedent(
        """
        from runtime.threading.parallel import ProducerConsumerQueue
        source = ProducerConsumerQueue()
        linked = ProducerConsumerQueue(source.get_iterator())
        print("created")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(SRC_DIR)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created"


def test_a_linked_queue_completes_when_its_source_is_complete_and_drained() -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    linked = linked_to(source)
    source.put(1)
    source.complete()
    assert source.is_complete and not linked.is_complete  # not drained yet
    assert linked.statistics().state == "open"
    assert linked.take() == 1
    assert linked.is_complete and not linked.is_failed
    assert linked.statistics().state == "complete"
    with pytest.raises(TimeoutError):
        linked.take(None)


def test_a_linked_queue_fails_with_the_source_error_itself() -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    linked = linked_to(source)
    consumer = blocked(lambda: list(linked.get_iterator()))
    error = Boom()
    source.fail(error)
    assert raises_in(consumer, Boom) is error
    assert linked.is_failed and linked.is_complete
    with pytest.raises(Boom) as caught:
        linked.take()
    assert caught.value is error


def test_a_chain_of_ten_linked_queues_delivers_everything_and_propagates_the_end() -> None:
    head: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    chain = [head]
    for _ in range(10):
        chain.append(linked_to(chain[-1]))
    tail = chain[-1]
    consumer = ThreadRunner(lambda: list(tail.get_iterator()))
    for i in range(1000):
        head.put(i)
    head.complete()
    assert consumer.join(TIMEOUT) == list(range(1000))
    assert all(queue.is_complete for queue in chain)
    failing: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    chain = [failing]
    for _ in range(10):
        chain.append(linked_to(chain[-1]))
    error = Boom()
    failing.fail(error)
    with pytest.raises(Boom) as caught:
        chain[-1].take(None)
    assert caught.value is error


def test_a_linked_queue_uses_the_remaining_time_of_one_deadline() -> None:
    linked = linked_to(linked_to(ProducerConsumerQueue()))
    started = time.monotonic()
    assert linked.try_take(0.2) == (None, False)
    assert 0.2 <= time.monotonic() - started < 0.35


def test_a_linked_queue_wait_event_starts_clear_and_follows_its_source() -> None:
    source = ProducerConsumerQueue([1])
    assert source.wait_event.is_signaled
    linked = linked_to(ProducerConsumerQueue())
    assert not linked.wait_event.is_signaled
    upstream: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    first = linked_to(upstream)
    second = linked_to(first)
    upstream.put(1)
    assert first.wait_event.wait(0) and second.wait_event.wait(0)
    upstream.complete()
    assert first.wait_event.wait(0) and second.wait_event.wait(0)
    del first
    gc.collect()
    upstream_again: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    dropped = linked_to(upstream_again)
    del dropped
    gc.collect()
    upstream_again.put(1)  # a dead linked queue's event is pruned, not signaled
    assert upstream_again.take() == 1


def test_a_linked_queue_over_a_bounded_source_wakes_its_producers() -> None:
    source = full_queue(1)
    linked = linked_to(source)
    producer = blocked(lambda: source.put(1))
    assert linked.take() == 0
    producer.join(TIMEOUT)
    assert next(iter(linked.get_iterator())) == 1


# -- synchronization_lock ----------------------------------------------------------------------


def test_synchronization_lock_is_the_internal_lock_as_a_library_lock() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    lock = queue.synchronization_lock
    assert isinstance(lock, Lock)
    assert queue.synchronization_lock is lock
    with lock:
        producer = blocked(lambda: queue.put(1))
        completer = blocked(queue.complete)
    producer.join(TIMEOUT)
    completer.join(TIMEOUT)
    assert list(queue.get_iterator()) == [1]


def test_a_thread_waiting_for_the_synchronization_lock_is_woken_by_queue_releases() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    lock = queue.synchronization_lock
    consumer = blocked(lambda: queue.take(None))
    lock.acquire()
    producer = blocked(lambda: queue.put(5))

    def use_lock() -> bool:
        acquired = lock.acquire(TIMEOUT)
        lock.release()
        return acquired

    user = blocked(use_lock)
    lock.release()  # whichever of the put and the user gets it next, the other is woken
    assert user.join(TIMEOUT) is True
    producer.join(TIMEOUT)
    assert consumer.join(TIMEOUT) == 5


def test_the_queue_keeps_working_after_the_synchronization_lock_is_handed_out() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.put(1)
    _ = queue.synchronization_lock
    queue.put(2)
    consumer = blocked(lambda: [queue.take(None) for _ in range(3)])
    queue.put(3)
    assert consumer.join(TIMEOUT) == [1, 2, 3]
    queue.complete()
    with pytest.raises(QueueCompletedError):
        queue.put(4)


# -- statistics ------------------------------------------------------------------------------


def test_statistics_is_a_frozen_snapshot_of_the_queue() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=3)
    queue.put_many([1, 2, 3])
    assert queue.take() == 1
    consumerless = queue.statistics()
    assert consumerless.buffered_items == 2
    assert consumerless.capacity == 3
    assert consumerless.items_put == 3 and consumerless.items_taken == 1
    assert consumerless.state == "open"
    assert consumerless.consumers_waiting == 0 and consumerless.producers_waiting == 0
    with pytest.raises(AttributeError):
        consumerless.items_put = 0  # type: ignore[misc]
    producer = blocked(lambda: queue.put_many([4, 5]))
    assert queue.statistics().producers_waiting == 1
    queue.fail(Boom())
    raises_in(producer, QueueCompletedError)
    failed = queue.statistics()
    assert failed.state == "failed" and failed.buffered_items == 0
    empty: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = blocked(lambda: empty.take(None))
    assert empty.statistics().consumers_waiting == 1
    empty.complete()
    raises_in(consumer, TimeoutError)
    assert empty.statistics().consumers_waiting == 0
    assert empty.statistics().state == "complete"


# -- the fast path's bookkeeping ---------------------------------------------------------------
#
# put() releases its lock and then reads one flag to learn whether it has more to do (wake a
# consumer, wake a thread waiting for the lock, re-signal a consumed wait event). These tests
# pin each source of that flag, and the count the lock token carries.


def _consume(event: Event, how: str) -> None:
    if how == "wait":
        assert event.wait(0)
    elif how == "wait_any":
        assert Event.wait_any([event], 0)
    elif how == "wait_all":
        assert Event.wait_all([event], 0)
    else:
        event.clear()


@pytest.mark.parametrize("how", ["wait", "wait_any", "wait_all", "clear"])
def test_a_consumed_or_cleared_wait_event_is_signaled_again_by_the_next_put(how: str) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    event = queue.wait_event
    for i in range(3):
        queue.put(i)
        queue.put(i)  # skips signaling: the event is still signaled
        assert event.is_signaled
        _consume(event, how)
        assert not event.is_signaled
    queue.put(3)
    assert event.is_signaled
    assert [queue.take() for _ in range(7)] == [0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("how", ["wait", "clear"])
def test_a_consumed_linked_wait_event_is_signaled_again_by_the_next_source_put(how: str) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    first = linked_to(source)
    second = linked_to(first)
    for i in range(3):
        source.put(i)
        for queue in (source, first, second):
            assert queue.wait_event.is_signaled
        _consume(second.wait_event, how)
        source.put(i)
        assert second.wait_event.is_signaled
        for queue in (source, first, second):
            _consume(queue.wait_event, how)
    assert list(itertools.islice(second.get_iterator(), 6)) == [0, 0, 1, 1, 2, 2]


def test_the_wait_event_is_an_auto_clear_event_that_reads_as_one() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    event = queue.wait_event
    assert isinstance(event, AutoClearEvent)
    assert repr(event) == "<AutoClearEvent 'PRODUCER_CONSUMER_QUEUE_NOTIFY' clear>"
    queue.put(1)
    assert repr(event) == "<AutoClearEvent 'PRODUCER_CONSUMER_QUEUE_NOTIFY' signaled>"
    del queue
    gc.collect()
    event.clear()  # outliving its queue is harmless
    assert not event.is_signaled


def test_an_observer_that_consumes_every_signal_sees_every_item_of_a_fast_producer() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    rounds, per_round = 30, 200
    caught_up = [threading.Event() for _ in range(rounds)]

    def observe() -> list[int]:
        seen: list[int] = []
        while len(seen) < rounds * per_round:
            assert queue.wait_event.wait(TIMEOUT)
            while True:  # take until empty, as a wait_event observer must
                item, found = queue.try_take()
                if not found:
                    break
                assert item is not None
                seen.append(item)
                if len(seen) % per_round == 0:
                    caught_up[len(seen) // per_round - 1].set()
        return seen

    observer = ThreadRunner(observe)
    put = queue.put
    for r in range(rounds):
        for i in range(r * per_round, (r + 1) * per_round):
            put(i)
        # The observer drains this round and waits on the event again: the next round's
        # first put must signal it once more.
        assert caught_up[r].wait(TIMEOUT)
    assert observer.join(TIMEOUT) == list(range(rounds * per_round))
    queue.complete()


def test_a_dropped_linked_queue_is_pruned_by_the_next_put() -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    kept = linked_to(source)
    dropped = linked_to(source)
    source.put(0)
    assert len(source._downstream) == 2
    del dropped
    gc.collect()
    source.put(1)
    assert len(source._downstream) == 1
    assert kept.wait_event.wait(0)
    assert kept.take() == 0 and kept.take() == 1


def _pause_inside_put(queue: ProducerConsumerQueue[Any], item: Any) -> tuple[
    ThreadRunner[None], threading.Event, threading.Event
]:
    """Start ``queue.put(item)`` on a thread that stops while holding the queue's lock.

    A profile hook stops the thread at the call that appends ``item`` to the buffer, which
    put's fast path makes between taking the lock token and giving it back.
    """
    inside = threading.Event()
    go = threading.Event()
    buffer = queue._buf

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__self__", None) is buffer:
            sys.setprofile(None)
            inside.set()
            go.wait(TIMEOUT)

    def produce() -> None:
        sys.setprofile(hook)
        try:
            queue.put(item)
        finally:
            sys.setprofile(None)

    producer = ThreadRunner(produce)
    assert inside.wait(TIMEOUT)
    return producer, inside, go


@pytest.mark.parametrize("waiter", ["take", "put", "statistics"])
def test_a_put_wakes_a_thread_that_waited_for_the_lock_while_the_put_held_it(
    waiter: str,
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    producer, _, go = _pause_inside_put(queue, 1)
    calls: dict[str, Callable[[], Any]] = {
        "take": lambda: queue.take(None),  # finds no item, so it needs the lock
        "put": lambda: queue.put(2),
        "statistics": lambda: queue.statistics().items_put,
    }
    other = blocked(calls[waiter])  # parked until the lock is released
    go.set()
    producer.join(TIMEOUT)
    result = other.join(TIMEOUT)
    assert result == {"take": 1, "put": None, "statistics": 1}[waiter]
    assert queue.statistics().items_put == (2 if waiter == "put" else 1)


def test_a_put_held_inside_its_lock_still_wakes_a_consumer_parked_before_it() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = blocked(lambda: queue.take(None))
    producer, _, go = _pause_inside_put(queue, 7)
    late = blocked(lambda: queue.take(None))  # parks in the lock's gate meanwhile
    go.set()
    producer.join(TIMEOUT)
    queue.put(8)
    assert sorted([consumer.join(TIMEOUT), late.join(TIMEOUT)]) == [7, 8]


def test_a_consumer_that_finds_its_item_taken_parks_again_and_is_woken_by_the_next_put() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumer = blocked(lambda: queue.take(None))
    for i in range(20):
        queue.put(i)  # wakes the consumer; this thread may take the item first
        try:
            stolen = queue.take()
        except TimeoutError:
            assert consumer.join(TIMEOUT) == i
            break
        assert stolen == i
        wait_until_blocked(consumer.thread)  # parked again, and must be woken again
    else:
        queue.put(99)
        assert consumer.join(TIMEOUT) == 99


@pytest.mark.parametrize("capacity", [None, 3])
def test_consumers_parked_together_are_woken_one_per_put(capacity: int | None) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)
    consumers = [blocked(lambda: queue.take(None)) for _ in range(3)]
    assert queue.statistics().consumers_waiting == 3
    for i in range(3):
        queue.put(i)
    assert sorted(c.join(TIMEOUT) for c in consumers) == [0, 1, 2]


def test_a_put_that_skips_its_wake_up_while_another_put_is_waking_gets_its_consumer() -> None:
    # Two consumers are parked. Put A sees the flag, clears it and (stopped here by a profile
    # hook) has not yet taken the lock to wake a consumer; put B then finds the flag clear
    # and skips its own wake-up. A must wake a consumer for B's item too.
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    consumers = [blocked(lambda: queue.take(None)) for _ in range(2)]
    stopped = threading.Event()
    go = threading.Event()

    def hook(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_name == "acquire" and code.co_filename.endswith(
            "_pcqueue.py"
        ):
            sys.setprofile(None)
            stopped.set()
            go.wait(TIMEOUT)

    def put_a() -> None:
        sys.setprofile(hook)
        try:
            queue.put(1)
        finally:
            sys.setprofile(None)

    a = ThreadRunner(put_a)
    assert stopped.wait(TIMEOUT)
    queue.put(2)  # put B
    go.set()
    a.join(TIMEOUT)
    assert sorted(c.join(TIMEOUT) for c in consumers) == [1, 2]


def test_items_put_counts_every_path_exactly() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.put(0)
    queue.put_many([1, 2])
    queue.put_many(iter([3]))
    queue.put_many(())
    assert queue.statistics().items_put == 4
    producers = [ThreadRunner(queue.put_many, range(500)) for _ in range(4)]
    for producer in producers:
        producer.join(TIMEOUT)
    assert queue.statistics().items_put == 2004
    _ = queue.synchronization_lock  # the count moves out of the lock token
    queue.put(5)
    queue.put_many([6, 7])
    assert queue.statistics().items_put == 2007
    queue.complete()
    stats = queue.statistics()
    assert stats.items_put == 2007 and stats.items_taken == 0
    bounded: ProducerConsumerQueue[int] = ProducerConsumerQueue([1, 2], capacity=1)
    assert bounded.statistics().items_put == 2
    full = full_queue(2)
    producer = blocked(lambda: full.put(2, timeout=TIMEOUT))
    assert full.take() == 0
    producer.join(TIMEOUT)
    assert full.statistics().items_put == 3 and full.statistics().items_taken == 1


@pytest.mark.parametrize("capacity", [None, 4])
def test_iterating_gives_an_iterator_over_the_same_queue(capacity: int | None) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)
    iterator = queue.get_iterator()
    loop = iter(iterator)
    if capacity is None:
        assert loop is iterator
    assert isinstance(loop, ProducerConsumerQueueIterator) and isinstance(loop, PIterator)
    assert loop.queue is queue and iter(loop) is loop
    iterator_ref = weakref.ref(iterator)
    del iterator
    gc.collect()
    kept = iterator_ref()  # a loop keeps the iterator it comes from alive
    assert kept is not None
    queue.put_many([1, 2, 3])
    assert next(loop) == 1 and loop.next(0) == 2 and next(kept) == 3
    with pytest.raises(StopIteration):
        loop.next(0)
    queue.complete()
    assert list(loop) == []


def test_iterating_over_a_bounded_queue_wakes_its_blocked_producers() -> None:
    queue = full_queue(2)
    producers = [blocked(functools.partial(queue.put, 10 + i)) for i in range(2)]
    got: list[int] = []
    for item in queue.get_iterator():
        got.append(item)
        if len(got) == 4:
            break
    for producer in producers:
        producer.join(TIMEOUT)
    assert got[:2] == [0, 1] and sorted(got[2:]) == [10, 11]
    linked = linked_to(full_queue(1))
    source = linked._root
    assert source is not None
    producer = blocked(lambda: source.put(5))
    assert next(iter(linked.get_iterator())) == 0
    producer.join(TIMEOUT)


@pytest.mark.parametrize("capacity", [None, 2])
@pytest.mark.parametrize("blocked_first", [False, True])
def test_a_failure_error_raised_by_iteration_gets_no_context(
    capacity: int | None, blocked_first: bool
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)
    error = Boom()

    def iterate() -> None:
        for _ in queue.get_iterator():
            pass

    if blocked_first:
        consumer = blocked(iterate)
        queue.fail(error)
        assert raises_in(consumer, Boom) is error
    else:
        queue.fail(error)
        with pytest.raises(Boom):
            iterate()
    assert error.__context__ is None and error.__cause__ is None


# -- arguments, types and protocol ------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(TAKES))
def test_a_negative_timeout_is_rejected_before_anything_else(how: str) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue([1])
    stop = InterruptSignal()
    stop.signal()
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        TAKES[how](queue, -1, stop.interrupt)
    assert queue.take() == 1
    with pytest.raises(ValueError, match="non-negative"):
        ProducerConsumerQueue[int](capacity=1).put(1, timeout=-0.5)


def test_bad_arguments_raise_typed_errors_naming_the_argument() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    with pytest.raises(TypeError, match="timeout"):
        queue.take("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="interrupt"):
        queue.take(0, "stop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="error"):
        queue.fail("boom")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        ProducerConsumerQueue(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="queue"):
        ProducerConsumerQueueIterator([1])  # type: ignore[arg-type]
    assert not queue.is_complete


def test_the_queue_has_no_len_and_is_always_truthy() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    assert bool(queue) is True
    assert not hasattr(queue, "__len__")
    queue.complete()
    assert bool(queue) is True


def test_public_names_generics_and_reprs() -> None:
    assert ProducerConsumerQueue.__module__ == "runtime.threading.parallel"
    assert ProducerConsumerQueueIterator.__module__ == "runtime.threading.parallel"
    queue = ProducerConsumerQueue[str](["a"], capacity=4)
    assert ProducerConsumerQueueIterator[str](queue).next() == "a"
    assert re.search(r"complete, 0/4 buffered", repr(queue))
    assert "linked" in repr(linked_to(queue))
    assert "ProducerConsumerQueueIterator" in repr(queue.get_iterator())
    assert isinstance(queue.wait_event, Event)


def test_several_threads_may_share_one_iterator() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    iterator = queue.get_iterator()
    consumers = [ThreadRunner(lambda: list(iterator)) for _ in range(3)]
    queue.put_many(range(600))
    queue.complete()
    assert sorted(x for c in consumers for x in c.join(TIMEOUT)) == list(range(600))


# -- Ctrl+C ----------------------------------------------------------------------------------


def wait_until_sleeping(pid: int) -> None:
    """Return once process ``pid`` sleeps in the kernel (blocked), where /proc tells."""
    stat = f"/proc/{pid}/stat"
    pause = threading.Event()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(stat) as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            pause.wait(0.2)  # no /proc: give the child a moment to reach its wait
            return
        if fields[0] == "S":
            # Asleep now; confirm on a second look that it is not a passing moment.
            pause.wait(0.05)
            with open(stat) as file:
                if file.read().rsplit(")", 1)[1].split()[0] == "S":
                    return
        pause.wait(0.01)
    raise AssertionError(f"process {pid} did not block")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_main_thread_blocked_in_a_for_loop() -> None:
    code = textwrap.dedent(
        """
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from runtime.threading.parallel import ProducerConsumerQueue
        queue = ProducerConsumerQueue()
        print("blocked", flush=True)
        for item in queue.get_iterator():
            pass
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(SRC_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "blocked"
        wait_until_sleeping(child.pid)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=10)
        assert time.monotonic() - sent < 5.0
        assert child.returncode != 0
        assert "KeyboardInterrupt" in stderr
        assert "Traceback" in stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


# -- consumers and producers that are tasks ---------------------------------------------------


def test_task_consumers_share_the_items() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()

    def consume(task: Task[list[int]], queue: ProducerConsumerQueue[int]) -> list[int]:
        return list(queue.get_iterator())

    with ConcurrentTaskScheduler(3) as scheduler:
        consumers = [Task.create(scheduler=scheduler).run(consume, queue) for _ in range(3)]
        queue.put_many(range(300))
        queue.complete()
        results = [c.result for c in consumers]
    assert sorted(x for r in results for x in r) == list(range(300))


def test_a_producer_and_a_consumer_on_a_one_slot_scheduler_do_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each hand-over waits out the suspension grace period once: keep it short.
    monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", 0.01)
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=2)

    def consume(task: Task[list[int]]) -> list[int]:
        return list(queue.get_iterator())

    def produce(task: Task[None]) -> None:
        for i in range(50):
            queue.put(i)
        queue.complete()

    with ConcurrentTaskScheduler(1) as scheduler:
        consumer = Task.create(scheduler=scheduler).run(consume)
        producer = Task.create(scheduler=scheduler).run(produce)
        assert producer.wait(TIMEOUT)
        assert consumer.result == list(range(50))


def test_a_task_consumer_is_interrupted_by_its_own_interrupt() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    stop = InterruptSignal()

    def consume(task: Task[int]) -> int:
        return queue.take(None, task.interrupt)

    with ConcurrentTaskScheduler(1) as scheduler:
        consumer = Task.create(scheduler=scheduler, interrupt=stop.interrupt).run(consume)
        stop.signal()  # before or during the take: either way it raises InterruptException
        assert consumer.wait(TIMEOUT)
        assert consumer.is_interrupted
