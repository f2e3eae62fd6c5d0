"""Tests for runtime.threading._queue: the concurrent double-ended FIFO Queue."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import runtime.threading.concurrent as concurrent
from helpers import ThreadRunner, wait_until_blocked
from runtime.threading import InterruptException, InterruptSignal, Lock, _blocking, _constants
from runtime.threading._protocols import PIterator
from runtime.threading.concurrent import Queue


@contextlib.contextmanager
def lock_held_elsewhere(queue: Queue[Any]) -> Iterator[None]:
    """Hold ``queue.synchronization_lock`` in another thread for the block."""
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with queue.synchronization_lock:
            held.set()
            release.wait(30)

    holder = ThreadRunner(hold)
    assert held.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join()


# -- basic behaviour -------------------------------------------------------------------------


def test_fifo_order_and_requeue_at_the_head() -> None:
    queue: Queue[int] = Queue()
    for item in (1, 2, 3):
        queue.enqueue(item)
    assert queue.dequeue() == 1
    queue.requeue(9)
    assert [queue.dequeue(0) for _ in range(3)] == [9, 2, 3]


def test_from_items_keeps_order_and_accepts_any_iterable() -> None:
    queue = Queue.from_items(x * x for x in range(4))
    assert tuple(queue) == (0, 1, 4, 9)
    typed = Queue[str].from_items("ab")
    assert isinstance(typed, Queue)
    assert list(typed) == ["a", "b"]


def test_try_dequeue_returns_falsy_items_as_found() -> None:
    falsy: list[object] = [0, None, "", False, ()]
    queue = Queue.from_items(falsy)
    assert [queue.try_dequeue() for _ in falsy] == [(item, True) for item in falsy]
    assert queue.try_dequeue() == (None, False)


def test_try_dequeue_never_waits_for_an_item() -> None:
    queue: Queue[int] = Queue()
    started = time.monotonic()
    assert queue.try_dequeue(30) == (None, False)
    assert time.monotonic() - started < 5


def test_try_dequeue_timeout_bounds_only_the_lock() -> None:
    queue = Queue.from_items(["x"])
    with lock_held_elsewhere(queue):
        assert queue.try_dequeue(0) == (None, False)
        started = time.monotonic()
        assert queue.try_dequeue(0.1) == (None, False)
        assert time.monotonic() - started >= 0.1
    assert queue.try_dequeue(0) == ("x", True)


def test_try_dequeue_raises_a_signaled_interrupt_even_with_items() -> None:
    queue = Queue.from_items([1])
    signal = InterruptSignal()
    signal.signal()
    with pytest.raises(InterruptException) as info:
        queue.try_dequeue(interrupt=signal.interrupt)
    assert info.value.interrupt is signal.interrupt
    assert 1 in queue


def test_try_dequeue_interrupted_while_waiting_for_the_lock() -> None:
    queue = Queue.from_items([1])
    signal = InterruptSignal()
    with lock_held_elsewhere(queue):
        waiter = ThreadRunner(queue.try_dequeue, 30, signal.interrupt)
        wait_until_blocked(waiter.thread)
        signal.signal()
        with pytest.raises(InterruptException):
            waiter.join(5)
    assert queue.try_dequeue() == (1, True)


def test_dequeue_zero_timeout() -> None:
    queue: Queue[int] = Queue()
    with pytest.raises(TimeoutError):
        queue.dequeue(0)
    queue.enqueue(5)
    assert queue.dequeue(0) == 5


def test_dequeue_positive_timeout_expires_not_early() -> None:
    queue: Queue[int] = Queue()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        queue.dequeue(0.2)
    assert 0.2 <= time.monotonic() - started < 5


def test_dequeue_timeout_covers_the_lock_acquisition() -> None:
    queue = Queue.from_items(["x"])
    with lock_held_elsewhere(queue):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            queue.dequeue(0.1)
        assert time.monotonic() - started >= 0.1
    assert queue.dequeue(0) == "x"


def test_dequeue_bad_timeout() -> None:
    queue = Queue.from_items([1])
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        queue.dequeue(-1)
    with pytest.raises(ValueError):
        queue.try_dequeue(-1)
    with pytest.raises(TypeError, match="interrupt"):
        queue.dequeue(interrupt="no")  # type: ignore[arg-type]
    assert queue.dequeue(0) == 1


@pytest.mark.parametrize("wake", ["enqueue", "requeue"])
def test_blocked_dequeue_is_woken(wake: str) -> None:
    queue: Queue[str] = Queue()
    consumer = ThreadRunner(queue.dequeue, 30)
    wait_until_blocked(consumer.thread)
    getattr(queue, wake)("item")
    assert consumer.join() == "item"


def test_each_enqueue_wakes_one_of_several_consumers() -> None:
    queue: Queue[int] = Queue()
    consumers = [ThreadRunner(queue.dequeue, 30) for _ in range(3)]
    for consumer in consumers:
        wait_until_blocked(consumer.thread)
    for item in range(3):
        queue.enqueue(item)
    assert sorted(consumer.join() for consumer in consumers) == [0, 1, 2]


def test_dequeue_raises_a_signaled_interrupt_even_with_items() -> None:
    queue = Queue.from_items([1])
    signal = InterruptSignal()
    signal.signal()
    with pytest.raises(InterruptException):
        queue.dequeue(0, interrupt=signal.interrupt)
    with pytest.raises(InterruptException):
        queue.dequeue(interrupt=signal.interrupt)
    assert queue.dequeue(0) == 1


def test_interrupt_during_dequeue_raises_promptly_and_leaves_the_queue_alone() -> None:
    queue: Queue[int] = Queue()
    signal = InterruptSignal()
    consumer = ThreadRunner(queue.dequeue, None, signal.interrupt)
    wait_until_blocked(consumer.thread)
    started = time.monotonic()
    signal.signal()
    with pytest.raises(InterruptException) as info:
        consumer.join(5)
    assert time.monotonic() - started < 5
    assert info.value.interrupt is signal.interrupt
    queue.enqueue(1)
    assert queue.dequeue(0) == 1


def test_a_timed_out_dequeue_leaves_no_registration() -> None:
    queue: Queue[int] = Queue()
    signal = InterruptSignal()
    for _ in range(3):
        with pytest.raises(TimeoutError):
            queue.dequeue(0.01, interrupt=signal.interrupt)
    assert signal.interrupt._callbacks == {}
    assert not queue._cond._waiters  # type: ignore[attr-defined]


def test_timed_out_consumer_does_not_strand_another() -> None:
    queue: Queue[int] = Queue()
    short = ThreadRunner(queue.dequeue, 0.2)
    patient = ThreadRunner(queue.dequeue, 30)
    wait_until_blocked(patient.thread)
    with pytest.raises(TimeoutError):
        short.join()
    queue.enqueue(3)
    assert patient.join() == 3


def test_blocked_dequeue_does_not_spin() -> None:
    queue: Queue[str] = Queue()

    def consume() -> tuple[str, float]:
        cpu = time.thread_time()
        item = queue.dequeue(None)
        return item, time.thread_time() - cpu

    consumer = ThreadRunner(consume)
    wait_until_blocked(consumer.thread)
    wall = time.monotonic()
    threading.Event().wait(0.3)
    queue.enqueue("done")
    item, cpu = consumer.join()
    wall = time.monotonic() - wall
    assert item == "done"
    assert wall >= 0.3
    # A spinning wait would burn about the whole wall time; a sleeping one nearly nothing.
    assert cpu < wall / 3, f"dequeue used {cpu:.3f} s of CPU during a {wall:.3f} s wait"


def test_dequeue_cooperates_with_the_scheduler_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", 0.01)
    queue: Queue[int] = Queue()
    entered = threading.Event()

    class Hook:
        def suspend_now(self) -> bool:
            return False

        @contextlib.contextmanager
        def suspend(self) -> Iterator[None]:
            entered.set()
            yield

    def consume() -> int:
        previous = _blocking.install_hook(Hook())
        try:
            return queue.dequeue(30)
        finally:
            _blocking.install_hook(previous)

    consumer = ThreadRunner(consume)
    assert entered.wait(5), "a long dequeue on a worker must suspend its task"
    queue.enqueue(4)
    assert consumer.join() == 4


# -- the synchronization lock -----------------------------------------------------------------


def test_synchronization_lock_is_the_queue_lock() -> None:
    queue: Queue[int] = Queue()
    lock = queue.synchronization_lock
    assert isinstance(lock, Lock)
    assert lock is queue.synchronization_lock
    with lock:
        queue.enqueue(1)  # re-entrant: the holder may still use the queue
        assert queue.dequeue(0) == 1


def test_holding_the_synchronization_lock_excludes_queue_operations() -> None:
    queue: Queue[int] = Queue()
    with lock_held_elsewhere(queue):
        producer = ThreadRunner(queue.enqueue, 1)
        wait_until_blocked(producer.thread)
        assert queue.try_dequeue(0) == (None, False)
    producer.join()
    assert queue.dequeue(0) == 1


def test_a_parked_dequeue_hands_the_lock_to_a_waiting_acquirer() -> None:
    # The consumer takes the lock, finds the queue empty and parks on the condition: giving
    # the lock up must wake a thread waiting on synchronization_lock.
    queue: Queue[int] = Queue()
    lock = queue.synchronization_lock
    holder_release = threading.Event()
    holder_held = threading.Event()

    def hold() -> None:
        with lock:
            holder_held.set()
            holder_release.wait(30)

    def acquire_and_release() -> bool:
        if not lock.acquire(30):
            return False
        lock.release()
        return True

    holder = ThreadRunner(hold)
    assert holder_held.wait(5)
    consumer = ThreadRunner(queue.dequeue, 30)
    wait_until_blocked(consumer.thread)
    acquirer = ThreadRunner(acquire_and_release)
    wait_until_blocked(acquirer.thread)
    holder_release.set()  # wakes the consumer first (it waited first)
    holder.join()
    assert acquirer.join(10) is True
    queue.enqueue(8)
    assert consumer.join() == 8


def test_dequeue_by_the_lock_holder_releases_it_while_waiting() -> None:
    queue: Queue[int] = Queue()
    lock = queue.synchronization_lock

    def consume_while_holding() -> int:
        with lock, lock:
            item = queue.dequeue(30)
            assert lock._is_owned()
            return item

    consumer = ThreadRunner(consume_while_holding)
    wait_until_blocked(consumer.thread)
    producer = ThreadRunner(queue.enqueue, 6)
    producer.join()
    assert consumer.join() == 6
    assert not lock.locked()


# -- iteration, membership, repr ---------------------------------------------------------------


def test_iteration_consumes_and_stops_when_empty() -> None:
    queue = Queue.from_items(["a", "b", "c"])
    assert " ".join(queue) == "a b c"
    assert tuple(queue) == ()
    queue.enqueue("d")
    assert tuple(queue) == ("d",)


def test_iterator_is_a_pi_iterator() -> None:
    queue = Queue.from_items([1, 2])
    iterator = iter(queue)
    assert isinstance(iterator, Queue.Iterator)
    assert isinstance(iterator, PIterator)
    assert iter(iterator) is iterator
    assert iterator.next(0) == 1
    assert next(iterator) == 2
    with pytest.raises(StopIteration):
        iterator.next(30)  # never waits for an item
    direct = Queue.Iterator(Queue.from_items([7]))
    assert list(direct) == [7]


def test_iterator_next_raises_the_interrupt() -> None:
    queue = Queue.from_items([1])
    signal = InterruptSignal()
    signal.signal()
    with pytest.raises(InterruptException):
        iter(queue).next(interrupt=signal.interrupt)
    assert 1 in queue


def test_iterator_rejects_non_queues() -> None:
    with pytest.raises(TypeError, match="'queue'"):
        Queue.Iterator([1, 2])  # type: ignore[arg-type]


def test_contains_is_not_destructive() -> None:
    queue = Queue.from_items([1, 2, 3, 4])
    assert 3 in queue
    assert 5 not in queue
    assert 3.0 in queue  # compared with ==
    assert list(queue) == [1, 2, 3, 4]


def test_repr_lists_str_of_items_head_to_tail() -> None:
    class Item:
        def __str__(self) -> str:
            return "item"

        def __repr__(self) -> str:
            return "<Item>"

    assert repr(Queue()) == "()"
    assert repr(Queue.from_items([1])) == "(1)"
    assert repr(Queue.from_items(["a", Item(), None])) == "(a, item, None)"


def test_no_len_and_always_truthy() -> None:
    assert not hasattr(Queue, "__len__")
    assert not hasattr(Queue, "__bool__")
    assert bool(Queue())


def test_remove_unlinks_by_identity_only() -> None:
    first, second = [1], [1]  # equal, distinct
    queue = Queue.from_items(["a", first, "b", second, "c"])
    assert queue.remove(second) is True
    assert queue.remove(second) is False
    assert queue.remove([1]) is False
    assert list(queue) == ["a", first, "b", "c"]


def test_public_names_and_modules() -> None:
    assert concurrent.__all__ == ("Queue",)
    assert concurrent.Queue is Queue
    assert Queue.__module__ == "runtime.threading.concurrent"
    assert Queue.Iterator.__module__ == "runtime.threading.concurrent"
    assert Queue.Iterator.__qualname__ == "Queue.Iterator"
    assert not hasattr(Queue(), "__dict__")


# -- stress ---------------------------------------------------------------------------------------


@pytest.mark.stress
def test_every_item_is_delivered_exactly_once_under_contention() -> None:
    queue: Queue[int] = Queue()
    producers, per_producer = 3, 300
    total = producers * per_producer
    received: list[int] = []
    received_lock = threading.Lock()
    stop = InterruptSignal()

    def produce(base: int) -> None:
        for n in range(per_producer):
            if n % 7 == 0:
                queue.requeue(base + n)
            else:
                queue.enqueue(base + n)
            if n % 50 == 0:
                with queue.synchronization_lock:
                    pass

    def consume() -> None:
        while True:
            try:
                item = queue.dequeue(0.005 if len(received) % 3 else None, stop.interrupt)
            except TimeoutError:
                continue
            except InterruptException:
                return
            with received_lock:
                received.append(item)
                if len(received) == total:
                    stop.signal()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        consumers = [ThreadRunner(consume) for _ in range(3)]
        producer_threads = [ThreadRunner(produce, i * per_producer) for i in range(producers)]
        for thread in producer_threads:
            thread.join(30)
        assert stop.interrupt.wait(30), f"only {len(received)} of {total} items arrived"
        for consumer in consumers:
            consumer.join(30)
    finally:
        sys.setswitchinterval(previous)
    assert sorted(received) == list(range(total))
    assert queue.try_dequeue() == (None, False)
