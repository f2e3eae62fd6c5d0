"""Stress and property tests for ``runtime.threading.parallel._pcqueue``.

Bounded in count and time: many producers and consumers with exactly-once delivery and
per-producer order, the same shaken with a tiny switch interval, a hypothesis state machine
driving the queue from two threads against a simple model, flat memory while streaming a
million items, and a bounded queue that never holds more than its capacity.
"""

from __future__ import annotations

import itertools
import queue as stdlib_queue
import sys
import threading
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpers import ThreadRunner
from runtime.threading.parallel import ProducerConsumerQueue, QueueCompletedError

TIMEOUT = 60.0

pytestmark = pytest.mark.stress


def run_mpmc(producers: int, consumers: int, per_producer: int, capacity: int | None) -> None:
    """Every item is delivered exactly once; each consumer sees each producer's items in order."""
    queue: ProducerConsumerQueue[tuple[int, int]] = ProducerConsumerQueue(capacity=capacity)
    start = threading.Barrier(producers + consumers)
    remaining = [producers]
    guard = threading.Lock()

    def produce(p: int) -> None:
        start.wait(TIMEOUT)
        put = queue.put
        for i in range(per_producer):
            put((p, i))
        with guard:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            queue.complete()

    def consume() -> list[tuple[int, int]]:
        start.wait(TIMEOUT)
        return list(queue.get_iterator())

    consumer_runs = [ThreadRunner(consume) for _ in range(consumers)]
    producer_runs = [ThreadRunner(produce, p) for p in range(producers)]
    for run in producer_runs:
        run.join(TIMEOUT)
    results = [run.join(TIMEOUT) for run in consumer_runs]
    delivered = Counter(item for result in results for item in result)
    assert len(delivered) == producers * per_producer
    assert set(delivered.values()) == {1}
    for result in results:
        last_seen = [-1] * producers
        for p, i in result:
            assert i > last_seen[p], "a consumer saw a producer's items out of order"
            last_seen[p] = i
    stats = queue.statistics()
    assert stats.items_put == stats.items_taken == producers * per_producer
    assert stats.state == "complete"


def test_eight_producers_eight_consumers_exactly_once_in_order() -> None:
    run_mpmc(8, 8, 20_000, None)


def test_eight_producers_eight_consumers_bounded_exactly_once_in_order() -> None:
    run_mpmc(8, 8, 5_000, 64)


def test_one_consumer_sees_every_producer_in_order() -> None:
    run_mpmc(8, 1, 10_000, None)


@pytest.fixture
def shaken() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.usefixtures("shaken")
def test_shaken_mpmc_exactly_once_in_order() -> None:
    run_mpmc(4, 4, 1_500, None)


@pytest.mark.usefixtures("shaken")
def test_shaken_bounded_mpmc_exactly_once_in_order() -> None:
    run_mpmc(3, 3, 1_000, 4)


@pytest.mark.usefixtures("shaken")
def test_shaken_single_puts_always_reach_parked_consumers_before_completion() -> None:
    """Consumers park and unpark around every item; a lost wake-up leaves an item stranded.

    Three producers each put one item and wait until a consumer has delivered it, while the
    queue is still open (completion would wake every consumer and hide a lost wake-up), so
    puts of several producers keep meeting parked consumers. A thief takes items on
    wait_event signals, so consumers also wake to find their item gone and park again.
    """
    producers, per_producer = 3, 700
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    channels: list[stdlib_queue.SimpleQueue[int]] = [
        stdlib_queue.SimpleQueue() for _ in range(producers)
    ]

    def deliver(item: int) -> None:
        channels[item % producers].put(item)

    def consume() -> None:
        for item in queue.get_iterator():
            deliver(item)

    def steal() -> None:
        while queue.wait_event.wait(TIMEOUT) and not queue.is_complete:
            item, found = queue.try_take()
            if found:
                assert item is not None
                deliver(item)

    def produce(p: int) -> list[int]:
        got: list[int] = []
        for i in range(p, producers * per_producer, producers):
            queue.put(i)
            got.append(channels[p].get(timeout=TIMEOUT))  # delivered while still open
        return got

    consumers = [ThreadRunner(consume) for _ in range(4)]
    thief = ThreadRunner(steal)
    runners = [ThreadRunner(produce, p) for p in range(producers)]
    got = [item for runner in runners for item in runner.join(TIMEOUT)]
    queue.complete()
    for consumer in consumers:
        consumer.join(TIMEOUT)
    thief.join(TIMEOUT)
    assert sorted(got) == list(range(producers * per_producer))


@pytest.mark.usefixtures("shaken")
def test_shaken_put_racing_complete_is_delivered_or_rejected() -> None:
    for _ in range(60):
        queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        accepted: list[int] = []
        go = threading.Barrier(2)

        def produce(
            queue: ProducerConsumerQueue[int] = queue,
            accepted: list[int] = accepted,
            go: threading.Barrier = go,
        ) -> None:
            go.wait(TIMEOUT)
            for i in range(50):
                try:
                    queue.put(i)
                except QueueCompletedError:
                    return
                accepted.append(i)

        producer = ThreadRunner(produce)
        go.wait(TIMEOUT)
        queue.complete()
        producer.join(TIMEOUT)
        assert list(queue.get_iterator()) == accepted


@pytest.mark.usefixtures("shaken")
def test_shaken_falsy_last_items_are_never_lost() -> None:
    for _ in range(40):
        queue: ProducerConsumerQueue[Any] = ProducerConsumerQueue()
        consumers = [ThreadRunner(list, queue.get_iterator()) for _ in range(2)]
        for item in (0, None, "", False):
            queue.put(item)
        queue.complete()
        got = [x for c in consumers for x in c.join(TIMEOUT)]
        assert Counter(map(repr, got)) == Counter(map(repr, [0, None, "", False]))


def test_a_million_items_stream_in_flat_memory() -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    total = 1_000_000
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        consumer = ThreadRunner(lambda: sum(1 for _ in queue.get_iterator()))
        put = queue.put
        for i in range(total):
            put(i)
        queue.complete()
        assert consumer.join(TIMEOUT) == total
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A million buffered ints would need well over 30 MB; streaming keeps a small backlog.
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_bounded_queue_never_holds_more_than_its_capacity_under_load() -> None:
    capacity = 16
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)

    def consume() -> tuple[list[int], int]:
        got: list[int] = []
        high = 0
        for item in queue.get_iterator():
            got.append(item)
            if len(got) % 7 == 0:  # sample the buffer while producers push against it
                high = max(high, queue.statistics().buffered_items)
        return got, high

    consumer = ThreadRunner(consume)
    producers = [ThreadRunner(queue.put_many, range(p, 40_000, 4)) for p in range(4)]
    for producer in producers:
        producer.join(TIMEOUT)
    queue.complete()
    got, high = consumer.join(TIMEOUT)
    assert sorted(got) == list(range(40_000))
    assert 0 < high <= capacity


# -- a state machine over two threads ---------------------------------------------------------


class _Worker:
    """A thread that runs the calls it is given, one at a time, and returns their outcome."""

    def __init__(self) -> None:
        self._jobs: stdlib_queue.SimpleQueue[Callable[[], Any] | None] = stdlib_queue.SimpleQueue()
        self._results: stdlib_queue.SimpleQueue[tuple[bool, Any]] = stdlib_queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pcqueue-state-machine")
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._results.put((True, job()))
            except BaseException as error:  # handed back to the test thread
                self._results.put((False, error))

    def call(self, job: Callable[[], Any]) -> Any:
        self._jobs.put(job)
        ok, value = self._results.get(timeout=TIMEOUT)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(TIMEOUT)


class QueueMachine(RuleBasedStateMachine):
    """Drive put/put_many/take/try_take/complete/fail from two threads against a model.

    Items are unique integers, so a lost or duplicated item shows as a model mismatch. The
    model is the FIFO list of buffered items and the state.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        self.model: list[int] = []
        self.state = "open"
        self.error: Exception | None = None
        self.fresh = itertools.count()
        self.workers = (_Worker(), _Worker())

    def teardown(self) -> None:
        for worker in self.workers:
            worker.close()

    def on(self, which: int, job: Callable[[], Any]) -> Any:
        return self.workers[which].call(job)

    threads = st.integers(min_value=0, max_value=1)

    @rule(which=threads)
    def put(self, which: int) -> None:
        item = next(self.fresh)
        if self.state == "open":
            self.on(which, lambda: self.queue.put(item))
            self.model.append(item)
        else:
            with pytest.raises(QueueCompletedError):
                self.on(which, lambda: self.queue.put(item))

    @rule(which=threads, count=st.integers(min_value=0, max_value=5), as_list=st.booleans())
    def put_many(self, which: int, count: int, as_list: bool) -> None:
        items = [next(self.fresh) for _ in range(count)]
        source: Any = items if as_list else iter(items)
        if self.state == "open":
            self.on(which, lambda: self.queue.put_many(source))
            self.model.extend(items)
        else:
            with pytest.raises(QueueCompletedError):
                self.on(which, lambda: self.queue.put_many(source))

    @rule(which=threads)
    def take(self, which: int) -> None:
        if self.state == "failed":
            error = self.error
            assert error is not None
            with pytest.raises(type(error)) as caught:
                self.on(which, self.queue.take)
            assert caught.value is error
        elif self.model:
            assert self.on(which, self.queue.take) == self.model.pop(0)
        else:
            with pytest.raises(TimeoutError):
                self.on(which, self.queue.take)

    @rule(which=threads, blocking=st.booleans())
    def try_take(self, which: int, blocking: bool) -> None:
        timeout = 0.001 if blocking else 0
        if self.state == "failed":
            with pytest.raises(ValueError):
                self.on(which, lambda: self.queue.try_take(timeout))
        elif self.model:
            assert self.on(which, lambda: self.queue.try_take(timeout)) == (self.model.pop(0), True)
        else:
            assert self.on(which, lambda: self.queue.try_take(timeout)) == (None, False)

    @rule(which=threads)
    def take_concurrently(self, which: int) -> None:
        """Both threads take at once: together they get the two oldest items, once each."""
        if self.state == "failed" or len(self.model) < 2:
            return
        go = threading.Barrier(2)

        def grab() -> int:
            go.wait(TIMEOUT)
            return self.queue.take()

        other = ThreadRunner(lambda: self.on(1 - which, grab))
        mine = self.on(which, grab)
        assert sorted([mine, other.join(TIMEOUT)]) == sorted(self.model[:2])
        del self.model[:2]

    @precondition(lambda self: self.state == "open")
    @rule(which=threads)
    def complete(self, which: int) -> None:
        self.on(which, self.queue.complete)
        self.state = "complete"

    @precondition(lambda self: self.state == "open")
    @rule(which=threads)
    def fail(self, which: int) -> None:
        self.error = ValueError("failed")
        error = self.error
        self.on(which, lambda: self.queue.fail(error))
        self.state = "failed"
        self.model.clear()

    @rule(which=threads)
    def complete_when_closed(self, which: int) -> None:
        if self.state != "open":
            with pytest.raises(QueueCompletedError):
                self.on(which, self.queue.complete)

    @invariant()
    def matches_the_model(self) -> None:
        stats = self.queue.statistics()
        assert stats.buffered_items == len(self.model)
        assert stats.state == self.state
        assert self.queue.is_complete == (self.state != "open")
        assert self.queue.is_failed == (self.state == "failed")


QueueMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueMachine = pytest.mark.stress(QueueMachine.TestCase)
