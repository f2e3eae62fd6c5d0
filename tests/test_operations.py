"""Tests for ``runtime.threading.parallel._operations``: process, map, for_each, background and
the distributor (API §5.3 to §5.7, SEMANTICS §10)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import ThreadRunner, run_in_subprocess, wait_until_blocked
from runtime.threading import (
    DEFAULT_PARALLELISM,
    Event,
    Interrupt,
    InterruptException,
    InterruptSignal,
    Lock,
)
from runtime.threading import parallel as parallel_module
from runtime.threading.parallel import (
    BackgroundProto,
    DistributionAlreadyStartedError,
    Distributor,
    ForEachProto,
    MapProto,
    ProcessProto,
    ProducerConsumerQueue,
    ProducerConsumerQueueIterator,
    _operations,
    background,
    distribute,
    for_each,
    process,
)
from runtime.threading.parallel import map as parallel_map
from runtime.threading.parallel.pipeline import PIterable
from runtime.threading.tasks import AggregateException, Task, TaskState
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler, TaskScheduler

TIMEOUT = 5.0


@pytest.fixture
def scheduler() -> Iterator[ConcurrentTaskScheduler]:
    pool = ConcurrentTaskScheduler(4)
    try:
        yield pool
    finally:
        pool.close()


def naturals(pulled: list[int] | None = None) -> Iterator[int]:
    n = 0
    while True:
        n += 1
        if pulled is not None:
            pulled.append(n)
        yield n


def take_n(iterable: PIterable[Any], n: int) -> list[Any]:
    iterator = iter(iterable)
    return [iterator.next(TIMEOUT) for _ in range(n)]


class WorkerCounter:
    """Records how many workers ``start_workers`` was asked to start, per operation."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: list[int] = []
        real = _operations.start_workers

        def recording(*args: Any, **kwargs: Any) -> list[Task[None]]:
            self.counts.append(kwargs["count"])
            return real(*args, **kwargs)

        monkeypatch.setattr(_operations, "start_workers", recording)


# -- examples ---------------------------------------------------------------------------------


EXAMPLE_PARALLEL_MAP = """
from runtime.threading import parallel
from runtime.threading.tasks import Task

def powers(task: Task[object], x: int, exponent: int):
    yield x ** exponent                      # may emit zero, one or many items

squares = parallel.map(range(8), parallelism=3).do(powers, 2)
assert sorted(squares) == [x * x for x in range(8)]   # output order is not guaranteed
"""

EXAMPLE_DISTRIBUTOR = """
from runtime.threading import parallel

feed = parallel.distribute(["alpha", "beta", "gamma"])
audit, index = feed.take(), feed.take()      # register every consumer before starting
done = feed.start()
assert list(audit) == ["alpha", "beta", "gamma"]   # every consumer gets every item, in order
assert list(index) == ["alpha", "beta", "gamma"]
assert done.wait() and done.is_completed_successfully
"""


@pytest.mark.parametrize("code", [EXAMPLE_PARALLEL_MAP, EXAMPLE_DISTRIBUTOR])
def test_api_examples_run_verbatim(code: str) -> None:
    exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})


# -- public surface ---------------------------------------------------------------------------


def test_public_classes_name_their_public_module() -> None:
    for cls in (ProcessProto, MapProto, ForEachProto, BackgroundProto, Distributor):
        assert cls.__module__ == "runtime.threading.parallel"
        assert getattr(parallel_module, cls.__name__) is cls


def test_protos_are_subscriptable_generics() -> None:
    assert isinstance(ProcessProto[int]([1]), ProcessProto)
    assert isinstance(MapProto[int]([1]), MapProto)
    assert isinstance(ForEachProto[int]([1]), ForEachProto)
    assert isinstance(Distributor[str](["a"]), Distributor)


def test_functions_return_their_protos() -> None:
    assert isinstance(process([1]), ProcessProto)
    assert isinstance(parallel_map([1]), MapProto)
    assert isinstance(for_each([1]), ForEachProto)
    assert isinstance(for_each(items=[1]), ForEachProto)  # items is positional-or-keyword
    assert isinstance(background(parallelism=2), BackgroundProto)
    assert isinstance(distribute([1]), Distributor)


# -- argument validation ---------------------------------------------------------------------


@pytest.mark.parametrize("factory", [process, parallel_map, for_each])
def test_negative_parallelism_is_a_value_error(factory: Any) -> None:
    with pytest.raises(ValueError, match="parallelism"):
        factory([1], parallelism=-1)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"parallelism": 1.5}, "parallelism"),
        ({"parallelism": True}, "parallelism"),
        ({"task_name": 3}, "task_name"),
        ({"interrupt": object()}, "interrupt"),
        ({"scheduler": object()}, "scheduler"),
    ],
)
def test_wrong_argument_types_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    for factory in (process, parallel_map, for_each):
        with pytest.raises(TypeError, match=argument):
            factory([1], **kwargs)
    with pytest.raises(TypeError, match=argument):
        background(**kwargs)


def test_background_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        background("name")  # type: ignore[call-arg]


def test_do_rejects_a_non_callable_and_a_non_iterable() -> None:
    with pytest.raises(TypeError, match="'fn'"):
        parallel_map([1]).do(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'items'"):
        parallel_map(5).do(lambda t, x: [x])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'fn'"):
        background().do(None)  # type: ignore[arg-type]


def test_output_queue_must_be_a_producer_consumer_queue() -> None:
    with pytest.raises(TypeError, match="output_queue"):
        process([1]).do(lambda t, x: [x], output_queue=[])  # type: ignore[call-overload]


def test_default_parallelism_is_used_for_none_and_zero(
    monkeypatch: pytest.MonkeyPatch, scheduler: ConcurrentTaskScheduler
) -> None:
    counter = WorkerCounter(monkeypatch)
    for parallelism in (None, 0):
        out = parallel_map(iter(range(10)), parallelism=parallelism, scheduler=scheduler).do(
            lambda t, x: [x]
        )
        assert sorted(out) == list(range(10))
    assert counter.counts == [DEFAULT_PARALLELISM, DEFAULT_PARALLELISM]


def test_exactly_parallelism_workers_run_at_once(scheduler: ConcurrentTaskScheduler) -> None:
    workers: set[int] = set()
    guard = threading.Lock()
    everyone_in = Event()

    def fn(task: Task[Any], x: int) -> list[int]:
        with guard:
            workers.add(task.id)
            if len(workers) == 3:
                everyone_in.signal()
        assert everyone_in.wait(TIMEOUT)
        return [x]

    out = parallel_map(range(30), parallelism=3, scheduler=scheduler).do(fn)
    assert sorted(out) == list(range(30))
    assert len(workers) == 3


# -- map and process -------------------------------------------------------------------------


def test_map_is_a_flat_map() -> None:
    def spread(task: Task[Any], x: int) -> Iterator[int]:
        yield from [x] * x  # 0 emits nothing, 3 emits three items

    assert sorted(parallel_map([0, 1, 2, 3]).do(spread)) == [1, 2, 2, 3, 3, 3]
    assert list(parallel_map([1, 2]).do(lambda t, x: [])) == []


def test_each_worker_emits_its_items_in_the_order_produced(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    out = parallel_map(["a", "b"], parallelism=2, scheduler=scheduler).do(
        lambda t, s: [f"{s}{n}" for n in range(50)]
    )
    results = list(out)
    for prefix in "ab":
        mine = [r for r in results if r.startswith(prefix)]
        assert mine == [f"{prefix}{n}" for n in range(50)]


def test_map_output_is_a_pcq_iterator() -> None:
    out = parallel_map([1]).do(lambda t, x: [x])
    assert isinstance(out, ProducerConsumerQueueIterator)
    assert isinstance(out, PIterable)
    assert list(out) == [1]


def test_map_of_an_infinite_generator_returns_at_once_and_yields(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # D15: the input is pulled lazily, never materialised.
    stop = InterruptSignal()
    starting = ThreadRunner(
        lambda: parallel_map(
            naturals(), parallelism=2, interrupt=stop.interrupt, scheduler=scheduler
        ).do(lambda t, x: [x])
    )
    out = starting.join(TIMEOUT)
    got = take_n(out, 20)
    assert len(set(got)) == 20 and all(n >= 1 for n in got)
    stop.signal()
    with pytest.raises(InterruptException):
        out.drain(TIMEOUT)


def test_input_is_read_only_as_workers_take_it(scheduler: ConcurrentTaskScheduler) -> None:
    pulled: list[int] = []
    gate = Event()
    stop = InterruptSignal()
    both_waiting = threading.Barrier(3)

    def hold(task: Task[Any], x: int) -> list[int]:
        both_waiting.wait(TIMEOUT)
        gate.wait(TIMEOUT)
        return [x]

    out = parallel_map(
        naturals(pulled), parallelism=2, interrupt=stop.interrupt, scheduler=scheduler
    ).do(hold)
    both_waiting.wait(TIMEOUT)  # each worker holds exactly one item
    assert pulled == [1, 2]
    stop.signal()
    gate.signal()
    with pytest.raises(InterruptException):
        out.drain(TIMEOUT)
    assert pulled == [1, 2]  # each worker checks its interrupt before taking another item


def test_queue_iterator_input_is_consumed_as_it_is_fed(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    out = iter(
        parallel_map(source.get_iterator(), parallelism=2, scheduler=scheduler).do(
            lambda t, x: [x * 10]
        )
    )
    source.put(1)
    assert out.next(TIMEOUT) == 10  # streamed before the source completes
    source.put_many([2, 3])
    assert sorted([out.next(TIMEOUT), out.next(TIMEOUT)]) == [20, 30]
    consumer = ThreadRunner(lambda: list(out))
    wait_until_blocked(consumer.thread)
    source.complete()
    assert consumer.join(TIMEOUT) == []


def test_queue_iterator_input_failure_reaches_the_consumer_as_an_aggregate(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    out = parallel_map(source.get_iterator(), scheduler=scheduler).do(lambda t, x: [x])
    error = KeyError("source broke")
    source.fail(error)
    with pytest.raises(AggregateException) as caught:
        list(out)
    assert caught.value.exceptions == (error,)  # one entry even if several workers read it


def test_extra_positional_arguments_go_to_fn(scheduler: ConcurrentTaskScheduler) -> None:
    # D9: no extra argument of map is ever taken as an output queue.
    def scale(task: Task[Any], x: int, k: int, *, offset: int = 0) -> list[int]:
        return [x * k + offset]

    assert sorted(parallel_map([1, 2, 3], parallelism=2).do(scale, 10)) == [10, 20, 30]
    out = process([1, 2, 3], parallelism=2).do(scale, 10, offset=1)
    assert isinstance(out, PIterable)  # an iterable, not a task: 10 is no output queue
    assert sorted(out) == [11, 21, 31]

    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    seen: list[object] = []

    def keep(task: Task[Any], x: int, extra: object) -> list[int]:
        seen.append(extra)
        return [x]

    assert list(parallel_map([1], scheduler=scheduler).do(keep, queue)) == [1]
    assert seen == [queue]


def test_process_with_output_queue_keyword(scheduler: ConcurrentTaskScheduler) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    done = process([1, 2, 3], scheduler=scheduler).do(lambda t, x: [x, -x], output_queue=queue)
    assert isinstance(done, Task)
    assert done.wait(TIMEOUT) and done.state is TaskState.COMPLETED
    assert not queue.is_complete  # shared outputs are never completed by one producer
    queue.complete()
    assert sorted(queue.get_iterator()) == [-3, -2, -1, 1, 2, 3]


def test_process_compatibility_form_takes_a_leading_queue(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()

    def scale(task: Task[Any], x: int, k: int) -> list[int]:
        return [x * k]

    done = process([1, 2], scheduler=scheduler).do(scale, queue, 3)
    assert isinstance(done, Task) and done.wait(TIMEOUT) and done.is_completed_successfully
    queue.complete()
    assert sorted(queue.get_iterator()) == [3, 6]


def test_process_output_queue_is_failed_on_failure(scheduler: ConcurrentTaskScheduler) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    error = ValueError("bad item")

    def fn(task: Task[Any], x: int) -> list[int]:
        raise error

    done = process([1], scheduler=scheduler).do(fn, output_queue=queue)
    assert done.wait(TIMEOUT) and done.is_failed
    assert isinstance(done.exception, AggregateException)
    assert done.exception.exceptions == (error,)
    assert queue.is_failed
    with pytest.raises(AggregateException) as caught:
        queue.take()
    assert caught.value.exceptions == (error,)


def test_process_output_queue_already_complete_is_left_alone_on_failure(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    queue.complete()
    done = process([1], scheduler=scheduler).do(lambda t, x: [x], output_queue=queue)
    assert done.wait(TIMEOUT) and done.is_failed  # the put was refused: QueueCompletedError
    assert not queue.is_failed


def test_a_non_iterable_result_is_a_failure(scheduler: ConcurrentTaskScheduler) -> None:
    out: PIterable[int] = parallel_map([1], scheduler=scheduler).do(lambda t, x: 5)  # type: ignore[arg-type, return-value]
    with pytest.raises(AggregateException) as caught:
        list(out)
    assert isinstance(caught.value.flatten(), TypeError)


def test_empty_inputs_complete_at_once(scheduler: ConcurrentTaskScheduler) -> None:
    # D10.
    assert list(parallel_map([], scheduler=scheduler).do(lambda t, x: [x])) == []
    assert list(parallel_map(iter([]), scheduler=scheduler).do(lambda t, x: [x])) == []
    queue: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    done = process([], scheduler=scheduler).do(lambda t, x: [x], output_queue=queue)
    assert done.wait(TIMEOUT) and done.is_completed_successfully


def test_workers_are_interrupted_through_a_signal_of_their_own(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    external = InterruptSignal()
    interrupts: list[Any] = []

    def fn(task: Task[Any], x: int) -> list[int]:
        interrupts.append(task.interrupt)
        return [x]

    out = parallel_map([1, 2, 3], interrupt=external.interrupt, scheduler=scheduler).do(fn)
    assert sorted(out) == [1, 2, 3]
    assert interrupts
    for interrupt in interrupts:
        assert interrupt is not external.interrupt
        assert external.interrupt.propagates_to(interrupt)


def test_an_external_interrupt_fails_the_output_with_the_operation_interrupt(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    external = InterruptSignal()
    started = Event()
    interrupts: list[Any] = []

    def wait_for_stop(task: Task[Any], x: int) -> list[int]:
        interrupts.append(task.interrupt)
        started.signal()
        task.interrupt.wait(TIMEOUT)
        task.interrupt.raise_if_signaled()
        return [x]

    out = parallel_map([1], parallelism=1, interrupt=external.interrupt, scheduler=scheduler).do(
        wait_for_stop
    )
    assert started.wait(TIMEOUT)
    consumer = ThreadRunner(lambda: list(out))
    wait_until_blocked(consumer.thread)
    external.signal()
    with pytest.raises(InterruptException) as caught:
        consumer.join(TIMEOUT)
    assert caught.value.interrupt is interrupts[0]
    assert caught.value.interrupt.signal_id == external.signal_id


def test_a_signaled_external_interrupt_stops_before_any_item(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    external = InterruptSignal()
    external.signal()
    called: list[int] = []
    out = parallel_map([1, 2], interrupt=external.interrupt, scheduler=scheduler).do(
        lambda t, x: called.append(x) or [x]  # type: ignore[func-returns-value]
    )
    with pytest.raises(InterruptException):
        list(out)
    assert called == []


def test_the_consumer_sees_the_aggregate_not_the_interrupt(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # The failure is recorded and the output failed before the siblings are interrupted.
    for _ in range(20):
        siblings_waiting = threading.Barrier(4)
        error = RuntimeError("one worker failed")

        def fn(
            task: Task[Any],
            x: int,
            siblings_waiting: threading.Barrier = siblings_waiting,
            error: RuntimeError = error,
        ) -> list[int]:
            siblings_waiting.wait(TIMEOUT)
            if x == 0:
                raise error
            task.interrupt.wait(TIMEOUT)  # siblings block until the failure interrupts them
            return [x]

        out = parallel_map(range(4), parallelism=4, scheduler=scheduler).do(fn)
        with pytest.raises(AggregateException) as caught:
            list(out)
        assert caught.value.exceptions == (error,)


# -- for_each ----------------------------------------------------------------------------------


def test_for_each_calls_fn_for_every_item_with_extra_arguments(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # D9: *args and **kwargs are forwarded.
    seen: list[str] = []
    guard = Lock()

    def record(task: Task[None], item: int, prefix: str, *, suffix: str) -> int:
        with guard:
            seen.append(f"{prefix}{item}{suffix}")
        return item  # ignored

    done = for_each(range(5), parallelism=2, scheduler=scheduler).do(record, "#", suffix="!")
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    assert done.result is None
    assert sorted(seen) == ["#0!", "#1!", "#2!", "#3!", "#4!"]


def test_for_each_of_nothing_completes_at_once(scheduler: ConcurrentTaskScheduler) -> None:
    # D10.
    done = for_each([], scheduler=scheduler).do(lambda task, x: None)
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    done = for_each(iter(()), scheduler=scheduler).do(lambda task, x: None)
    assert done.wait(TIMEOUT) and done.is_completed_successfully


def test_for_each_caps_workers_at_the_input_size(
    monkeypatch: pytest.MonkeyPatch, scheduler: ConcurrentTaskScheduler
) -> None:
    counter = WorkerCounter(monkeypatch)
    done = for_each([1, 2], parallelism=4, scheduler=scheduler).do(lambda task, x: None)
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    done = for_each(iter([1, 2]), parallelism=4, scheduler=scheduler).do(lambda task, x: None)
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    assert counter.counts == [2, 4]  # an unsized input cannot be capped


def test_for_each_failure_is_reported_and_siblings_stop_taking_items(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # D8: FAILED with an AggregateException of the real error, never INTERRUPTED.
    pulled: list[int] = []
    error = ValueError("item 1")
    sibling_saw_interrupt: list[bool] = []

    def fn(task: Task[None], x: int) -> None:
        if x == 1:
            raise error
        sibling_saw_interrupt.append(task.interrupt.wait(TIMEOUT))

    done = for_each(naturals(pulled), parallelism=2, scheduler=scheduler).do(fn)
    assert done.wait(TIMEOUT)
    assert done.state is TaskState.FAILED
    assert isinstance(done.exception, AggregateException)
    assert done.exception.exceptions == (error,)
    assert sibling_saw_interrupt in ([], [True])
    assert len(pulled) <= 2  # neither worker took another item after the failure


def test_for_each_external_interrupt_ends_interrupted(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    external = InterruptSignal()
    started = Event()

    def fn(task: Task[None], x: int) -> None:
        started.signal()
        task.interrupt.wait(TIMEOUT)

    done = for_each(
        naturals(), parallelism=2, interrupt=external.interrupt, scheduler=scheduler
    ).do(fn)
    assert started.wait(TIMEOUT)
    external.signal()
    assert done.wait(TIMEOUT)
    assert done.state is TaskState.INTERRUPTED
    assert isinstance(done.exception, InterruptException)


# -- background --------------------------------------------------------------------------------


def test_background_without_arguments_is_one_shared_proto() -> None:
    assert background() is background()
    assert background(parallelism=2) is not background()


def test_background_runs_fn_once_per_task_with_arguments(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    calls: list[tuple[int, int]] = []
    guard = Lock()

    def fn(task: Task[None], a: int, *, b: int) -> None:
        with guard:
            calls.append((a, b))

    done = background(parallelism=3, scheduler=scheduler).do(fn, 1, b=2)
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    assert calls == [(1, 2)] * 3


def test_background_failure_is_reported_and_the_others_interrupted(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # D8.
    turn = threading.Lock()
    first = [True]
    others: list[bool] = []

    def fn(task: Task[None]) -> None:
        with turn:
            mine, first[0] = first[0], False
        if mine:
            raise ZeroDivisionError("first task")
        others.append(task.interrupt.wait(TIMEOUT))
        task.interrupt.raise_if_signaled()

    done = background(parallelism=2, scheduler=scheduler).do(fn)
    assert done.wait(TIMEOUT)
    assert done.state is TaskState.FAILED
    assert isinstance(done.exception, AggregateException)
    assert [type(e) for e in done.exception.exceptions] == [ZeroDivisionError]
    assert others in ([], [True])


def test_background_interrupted_from_outside(scheduler: ConcurrentTaskScheduler) -> None:
    external = InterruptSignal()
    started = threading.Barrier(3)

    def fn(task: Task[None]) -> None:
        started.wait(TIMEOUT)
        task.interrupt.wait(TIMEOUT)
        task.interrupt.raise_if_signaled()

    done = background(parallelism=2, interrupt=external.interrupt, scheduler=scheduler).do(fn)
    started.wait(TIMEOUT)
    external.signal()
    assert done.wait(TIMEOUT)
    assert done.state is TaskState.INTERRUPTED


# -- distribute --------------------------------------------------------------------------------


def test_distributor_preserves_order_for_every_consumer() -> None:
    # D32: one forwarder, so no reordering even with very frequent thread switches.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ConcurrentTaskScheduler(4) as pool:
            for _ in range(10):
                feed = distribute(list(range(300)), scheduler=pool)
                consumers = [feed.take() for _ in range(3)]
                done = feed.start()
                readers = [ThreadRunner(list, consumer) for consumer in consumers]
                for reader in readers:
                    assert reader.join(TIMEOUT) == list(range(300))
                assert done.wait(TIMEOUT) and done.is_completed_successfully
    finally:
        sys.setswitchinterval(previous)


def test_distributor_honours_its_scheduler(scheduler: ConcurrentTaskScheduler) -> None:
    # D31.
    seen: list[TaskScheduler] = []

    def source() -> Iterator[int]:
        seen.append(TaskScheduler.current())
        yield 1

    feed = distribute(source(), scheduler)
    consumer = feed.take()
    done = feed.start()
    assert list(consumer) == [1]
    assert done.wait(TIMEOUT)
    assert seen == [scheduler]


def test_distributor_interrupt_fails_consumers_with_a_related_interrupt(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    # D32: the consumers' InterruptException refers to the interrupt given to start().
    stop = InterruptSignal()
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    feed = distribute(source.get_iterator(), scheduler=scheduler)
    consumer = iter(feed.take())
    done = feed.start(stop.interrupt)
    assert stop.interrupt.propagates_to(done.interrupt)
    source.put(1)
    assert consumer.next(TIMEOUT) == 1
    reader = ThreadRunner(lambda: list(consumer))
    wait_until_blocked(reader.thread)
    stop.signal()
    with pytest.raises(InterruptException) as caught:
        reader.join(TIMEOUT)
    assert caught.value.interrupt is done.interrupt
    assert caught.value.interrupt.signal_id == stop.signal_id
    assert done.wait(TIMEOUT) and done.state is TaskState.INTERRUPTED
    source.complete()


def test_distributor_source_failure_fails_every_consumer(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    error = OSError("disk gone")

    def source() -> Iterator[str]:
        yield "a"
        raise error

    feed = distribute(source(), scheduler=scheduler)
    consumers = [feed.take(), feed.take()]
    done = feed.start()
    assert done.wait(TIMEOUT) and done.state is TaskState.FAILED
    assert isinstance(done.exception, AggregateException)
    assert done.exception.exceptions == (error,)
    for consumer in consumers:
        with pytest.raises(AggregateException) as caught:
            list(consumer)
        assert caught.value.exceptions == (error,)


def test_distributor_take_and_start_after_start_raise() -> None:
    feed = distribute(["x"])
    consumer = feed.take()
    done = feed.start()
    with pytest.raises(DistributionAlreadyStartedError):
        feed.take()
    with pytest.raises(DistributionAlreadyStartedError):
        feed.start()
    assert list(consumer) == ["x"]
    assert done.wait(TIMEOUT)


def test_distributor_without_consumers_drains_its_source(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for n in range(5):
            pulled.append(n)
            yield n

    done = distribute(source(), scheduler=scheduler).start()
    assert done.wait(TIMEOUT) and done.is_completed_successfully
    assert pulled == [0, 1, 2, 3, 4]


def test_distributor_reads_an_endless_source_lazily(scheduler: ConcurrentTaskScheduler) -> None:
    stop = InterruptSignal()
    feed = distribute(naturals(), scheduler=scheduler)
    consumer = feed.take()
    done = feed.start(stop.interrupt)
    assert take_n(consumer, 5) == [1, 2, 3, 4, 5]
    stop.signal()
    assert done.wait(TIMEOUT) and done.is_interrupted
    with pytest.raises(InterruptException):
        consumer.drain(TIMEOUT)


def test_distributor_reads_a_queue_source_as_it_is_fed(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    feed = distribute(source.get_iterator(), scheduler=scheduler)
    first, second = iter(feed.take()), iter(feed.take())
    done = feed.start()
    source.put(7)
    assert first.next(TIMEOUT) == 7 and second.next(TIMEOUT) == 7
    source.put(8)
    source.complete()
    assert list(first) == [8] and list(second) == [8]
    assert done.wait(TIMEOUT) and done.is_completed_successfully


def test_distributor_source_queue_failure_reaches_consumers(
    scheduler: ConcurrentTaskScheduler,
) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    feed = distribute(source.get_iterator(), scheduler=scheduler)
    consumer = feed.take()
    done = feed.start()
    error = KeyError("upstream")
    source.fail(error)
    with pytest.raises(AggregateException) as caught:
        list(consumer)
    assert caught.value.exceptions == (error,)
    assert done.wait(TIMEOUT) and done.is_failed


# -- stress ------------------------------------------------------------------------------------


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.stress
def test_stress_a_failure_always_reaches_the_consumer_as_an_aggregate(
    fast_switching: None, scheduler: ConcurrentTaskScheduler
) -> None:
    for run in range(300):
        bad = run % 20

        def fn(task: Task[Any], x: int, bad: int = bad) -> list[int]:
            if x == bad:
                raise LookupError(x)
            return [x]

        out = parallel_map(range(40), parallelism=4, scheduler=scheduler).do(fn)
        with pytest.raises(AggregateException) as caught:
            out.drain(TIMEOUT)
        assert all(isinstance(error, LookupError) for error in caught.value.exceptions)


@pytest.mark.stress
def test_stress_distributor_order(fast_switching: None, scheduler: ConcurrentTaskScheduler) -> None:
    for _ in range(30):
        feed = distribute(iter(range(2000)), scheduler=scheduler)
        consumers = [feed.take() for _ in range(4)]
        done = feed.start()
        readers = [ThreadRunner(list, consumer) for consumer in consumers]
        for reader in readers:
            assert reader.join(TIMEOUT) == list(range(2000))
        assert done.wait(TIMEOUT) and done.is_completed_successfully


@pytest.mark.stress
def test_stress_shared_input_is_taken_exactly_once(
    fast_switching: None, scheduler: ConcurrentTaskScheduler
) -> None:
    for _ in range(30):
        out = parallel_map(iter(range(5000)), parallelism=4, scheduler=scheduler).do(
            lambda t, x: (x,)
        )
        assert sorted(out) == list(range(5000))


# -- an abandoned output stops its operation ---------------------------------------------------

_ABANDON_MAP = """
import itertools
from runtime.threading import parallel
for x in parallel.map(itertools.count(), parallelism=2).do(lambda t, x: [x * x]):
    if x > 100:
        break
print("stopped early")
"""

_ABANDON_PIPELINE = """
import itertools
from runtime.threading.parallel.pipeline import PFilter, PFn
flow = PFilter(lambda t, x: x % 2 == 0) | PFn(lambda t, x: [x * 10])
for x in flow(itertools.count()):
    if x > 1000:
        break
print("stopped early")
"""


@pytest.mark.parametrize("code", [_ABANDON_MAP, _ABANDON_PIPELINE], ids=["map", "pipeline"])
def test_breaking_out_of_an_endless_operation_lets_the_interpreter_exit(code: str) -> None:
    # Without the cancellation, the workers would keep reading the endless input into a
    # queue nobody reads, and the interpreter would wait for them for ever.
    result = run_in_subprocess(code, timeout=30.0)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stopped early"


def test_dropping_the_output_of_a_running_map_interrupts_its_workers() -> None:
    gate = Event()
    started = Event()
    workers: list[Task[Any]] = []
    guard = threading.Lock()

    def slow(task: Task[Any], x: int) -> list[int]:
        with guard:
            if task not in workers:
                workers.append(task)
        started.signal()
        gate.wait(TIMEOUT, task.interrupt)
        return [x]

    with ConcurrentTaskScheduler(2) as pool:
        output = parallel_map(iter(range(10**9)), parallelism=2, scheduler=pool).do(slow)
        assert started.wait(TIMEOUT)
        del output  # nobody can read the results any more
        assert Task.wait_all(list(workers), TIMEOUT)
        assert all(worker.is_interrupted for worker in workers)


def test_a_finished_operation_keeps_its_links_when_its_output_is_dropped() -> None:
    signal = InterruptSignal()
    seen: list[Interrupt] = []

    def record(task: Task[Any], x: int) -> list[int]:
        seen.append(task.interrupt)
        return [x]

    output = parallel_map([1, 2, 3], parallelism=1, interrupt=signal.interrupt).do(record)
    assert sorted(output) == [1, 2, 3]
    del output
    assert seen and all(signal.interrupt.propagates_to(i) and not i.is_signaled for i in seen)
