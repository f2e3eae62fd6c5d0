"""Tests for ``runtime.threading.parallel._pipeline``: PFn, NullPFn, PFilter and PFork
(API §6.4 to §6.7, SEMANTICS §11)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import ThreadRunner
from runtime.threading import Event, InterruptException, InterruptSignal
from runtime.threading.parallel import ProducerConsumerQueue, _operations, _pipeline
from runtime.threading.parallel.pipeline import (
    NullPFn,
    PContext,
    PFilter,
    PFn,
    PFork,
    PIterable,
)
from runtime.threading.tasks import AggregateException, Task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler, TaskScheduler

TIMEOUT = 5.0

EXAMPLE_PIPELINE = """
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler
from runtime.threading.parallel.pipeline import PContext, PFn, PFilter

def is_odd(task, x: int) -> bool:
    return x % 2 == 1

def triple(task, x: int):
    yield x * 3

def up(task, x: int):
    yield x + 1

def down(task, x: int):
    yield x - 1

with ConcurrentTaskScheduler(4) as scheduler, PContext(4, scheduler=scheduler):
    flow = PFilter(is_odd) | PFn(triple) | [PFn(up), PFn(down)]   # the list becomes a PFork
    values = sorted(flow(range(6)))          # 1,3,5 -> 3,9,15 -> each item +1 and -1
assert values == [2, 4, 8, 10, 14, 16]
"""


def inc(task: Task[Any], x: int) -> Iterator[int]:
    yield x + 1


def dbl(task: Task[Any], x: int) -> Iterator[int]:
    yield x * 2


def neg(task: Task[Any], x: int) -> Iterator[int]:
    yield -x


def is_even(task: Task[Any], x: int) -> bool:
    return x % 2 == 0


def naturals() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


@pytest.fixture
def context() -> Iterator[PContext]:
    """A context of 4 on a scheduler of its own, closed after the test."""
    with ConcurrentTaskScheduler(4) as pool, PContext(4, scheduler=pool) as ctx:
        yield ctx


class WorkerCounter:
    """Records the worker count of every operation a pipeline call starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: list[tuple[str, int]] = []
        real = _operations.start_workers

        def recording(*args: Any, **kwargs: Any) -> list[Task[None]]:
            self.counts.append((kwargs["name"], kwargs["count"]))
            return real(*args, **kwargs)

        monkeypatch.setattr(_operations, "start_workers", recording)


def test_api_example_runs_verbatim() -> None:
    exec(compile(EXAMPLE_PIPELINE, "<example>", "exec"), {"__name__": "__example__"})


def test_public_classes_name_their_public_module() -> None:
    for cls in (PFn, NullPFn, PFilter, PFork):
        assert cls.__module__ == "runtime.threading.parallel.pipeline"


def test_classes_are_subscriptable_generics(context: PContext) -> None:
    stage = PFn[int, int](inc) | PFilter[int](is_even) | PFork[int, int]([PFn(dbl)])
    assert sorted(stage([1, 2, 3])) == [4, 8]


# -- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [0, 33, -1])
def test_int_parallelism_out_of_range(parallelism: int) -> None:
    with pytest.raises(ValueError) as caught:
        PFn(inc, parallelism)
    assert str(caught.value) == "Parallelism must be an int between 1 and 32"
    with pytest.raises(ValueError) as caught:
        PFilter(is_even, parallelism=parallelism)
    assert str(caught.value) == "Parallelism must be an int between 1 and 32"


@pytest.mark.parametrize("parallelism", [0.0, 1.5, -0.5, math.nan])
def test_float_parallelism_out_of_range(parallelism: float) -> None:
    with pytest.raises(ValueError) as caught:
        PFn(inc, parallelism)
    assert str(caught.value) == "Parallelism must be a float between 0.0 and 1.0"


def test_other_constructor_arguments_are_type_checked() -> None:
    with pytest.raises(TypeError):
        PFn(inc, "2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PFn(inc, True)
    with pytest.raises(TypeError):
        PFn(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PFilter(5)  # type: ignore[arg-type]
    assert PFn(inc, 32).parallelism == 32 and PFn(inc, 1.0).parallelism == 1.0


def test_fork_needs_a_non_empty_sequence_of_stages() -> None:
    with pytest.raises(ValueError):
        PFork([])
    with pytest.raises(TypeError):
        PFork([PFn(inc), inc])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PFork("ab")  # type: ignore[arg-type]


def test_filter_catch_all() -> None:
    assert PFilter().is_catch_all
    assert not PFilter(is_even).is_catch_all


# -- composition -----------------------------------------------------------------------------


def test_composition_never_mutates_its_operands(context: PContext) -> None:
    # D17.
    a, b, c = PFn(inc), PFn(dbl), PFn(neg)
    p1 = a | b
    assert p1 is not a and p1 is not b
    assert sorted(p1([1, 2, 3])) == [4, 6, 8]
    p2 = c | b
    assert sorted(p2([1, 2, 3])) == [-6, -4, -2]
    assert sorted(p1([1, 2, 3])) == [4, 6, 8]
    assert sorted(b([1, 2, 3])) == [2, 4, 6]  # b alone is still a single stage


def test_composition_reads_left_to_right(context: PContext) -> None:
    assert list((PFn(inc) | PFn(dbl) | PFn(neg))([1])) == [-4]
    assert list(((PFn(inc) | PFn(dbl)) | PFn(neg))([1])) == [-4]


def test_a_composed_right_hand_side_is_kept_whole(context: PContext) -> None:
    tail = PFn(dbl) | PFn(neg)
    flow = PFn(inc) | tail
    assert list(flow([1])) == [-4]  # inc -> dbl -> neg
    assert list(tail([1])) == [-2]  # the tail itself is unchanged


def test_composition_converts_lists_tuples_and_callables(context: PContext) -> None:
    assert isinstance(PFn(inc) | [PFn(dbl), PFn(neg)], PFork)
    assert isinstance(PFn(inc) | (PFn(dbl), PFn(neg)), PFork)
    assert isinstance(PFn(inc) | is_even, PFilter)
    assert sorted((PFn(inc) | (PFn(dbl), PFn(neg)))([1, 2])) == [-3, -2, 4, 6]
    assert sorted((PFn(inc) | is_even)(range(6))) == [2, 4, 6]


@pytest.mark.parametrize("other", [5, "abc", None, object()])
def test_composition_with_anything_else_is_a_type_error(other: object) -> None:
    with pytest.raises(TypeError):
        PFn(inc) | other


def test_null_stage_composition(context: PContext) -> None:
    a = PFn(inc)
    assert a | NullPFn() is a
    assert NullPFn() | a is a
    assert isinstance(NullPFn() | [PFn(inc), PFn(dbl)], PFork)
    assert isinstance(NullPFn() | is_even, PFilter)
    assert sorted((NullPFn() | [PFn(inc), PFn(dbl)])([1, 2])) == [2, 2, 3, 4]
    with pytest.raises(TypeError):
        NullPFn() | 3


def test_calling_the_null_stage_yields_the_items_unchanged() -> None:
    # D40.
    out = NullPFn()([1, 2, 3])
    assert isinstance(out, PIterable)
    assert list(out) == [1, 2, 3]
    assert list(out) == [1, 2, 3]  # each iterator starts over a list
    out.drain()
    queue = ProducerConsumerQueue([7])
    assert NullPFn()(queue.get_iterator()) is not None
    assert list(NullPFn()(queue.get_iterator())) == [7]


def test_null_stage_iterator_honours_its_interrupt() -> None:
    stop = InterruptSignal()
    stop.signal()
    iterator = iter(NullPFn()(naturals()))
    assert iterator.next() == 1
    with pytest.raises(InterruptException):
        iterator.next(interrupt=stop.interrupt)
    with pytest.raises(ValueError):
        iterator.next(-1)


def test_null_stage_as_a_fork_branch(context: PContext) -> None:
    flow = PFn(inc) | [NullPFn(), PFn(dbl)]
    assert sorted(flow([1, 2])) == [2, 3, 4, 6]


# -- evaluation ------------------------------------------------------------------------------


def test_a_pipeline_reads_a_queue_iterator(context: PContext) -> None:
    source: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    out = iter((PFn(inc) | PFn(dbl))(source.get_iterator()))
    source.put(1)
    assert out.next(TIMEOUT) == 4
    source.put(2)
    source.complete()
    assert list(out) == [6]


def test_a_pipeline_of_an_endless_generator_returns_at_once(context: PContext) -> None:
    flow = PFn(inc) | is_even | [PFn(dbl), PFn(neg)]
    out = iter(flow(naturals()))
    got = [out.next(TIMEOUT) for _ in range(20)]
    assert all(n % 2 == 0 for n in got)


def test_parameters_come_from_the_current_context_at_call_time() -> None:
    seen: list[tuple[TaskScheduler, Any]] = []
    guard = threading.Lock()

    def record(task: Task[Any], x: int) -> list[int]:
        with guard:
            seen.append((TaskScheduler.current(), task.interrupt))
        return [x]

    flow = PFn(record) | [PFn(record), PFilter(lambda t, x: bool(record(t, x)))]
    with ConcurrentTaskScheduler(3) as pool, PContext(3, scheduler=pool) as ctx:
        assert sorted(flow([1, 2])) == [1, 1, 2, 2]
        assert {scheduler for scheduler, _ in seen} == {pool}
        for _, interrupt in seen:
            assert interrupt is not ctx.interrupt
            assert ctx.interrupt.propagates_to(interrupt)


def test_float_parallelism_is_resolved_from_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = WorkerCounter(monkeypatch)
    stages = [PFn(inc, 0.5), PFn(inc, 1.0), PFn(inc, 1), PFn(inc, 0.1), PFilter(is_even)]
    with ConcurrentTaskScheduler(4) as pool:
        for size in (4, 3):
            with PContext(size, scheduler=pool):
                for stage in stages:
                    list(stage([1, 2]))
    counts = [count for _, count in counter.counts]
    assert counts == [2, 4, 1, 1, 2, 2, 3, 1, 1, 2]


def test_fork_fan_out_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = WorkerCounter(monkeypatch)
    with ConcurrentTaskScheduler(4) as pool:
        with PContext(4, scheduler=pool):
            list(PFork([PFn(inc, 1), PFn(dbl, 1), PFn(neg, 1)])([1]))
        with PContext(2, scheduler=pool):
            list(PFork([PFn(inc, 1), PFn(dbl, 1), PFn(neg, 1)])([1]))
    fan_outs = [count for name, count in counter.counts if name.endswith("PFork")]
    assert fan_outs == [3, 2]


def test_fork_sends_every_item_to_every_branch(context: PContext) -> None:
    fork = PFork([PFn(inc), PFn(dbl), NullPFn() | PFn(neg)])
    assert sorted(fork(range(50))) == sorted(
        [x + 1 for x in range(50)] + [x * 2 for x in range(50)] + [-x for x in range(50)]
    )


def test_nested_forks_and_composed_branches(context: PContext) -> None:
    flow = PFn(inc) | [PFn(dbl) | [PFn(inc), PFn(neg)], PFn(neg) | PFn(dbl)] | PFn(inc)
    # 1 -> 2 -> {4 -> {5, -4}, -2 -> -4} -> +1
    assert sorted(flow([1])) == [-3, -3, 6]


def test_a_pipeline_can_be_called_repeatedly(context: PContext) -> None:
    fork = PFn(inc) | [PFn(dbl), PFn(neg)]
    for _ in range(3):
        assert sorted(fork([1, 2])) == [-3, -2, 4, 6]


def test_three_concurrent_calls_of_one_fork_pipeline_complete(context: PContext) -> None:
    # D12: all per-call state is local, so concurrent calls neither share nor deadlock.
    fork = PFn(inc) | [PFn(dbl), PFn(neg)]

    def run(k: int) -> list[int]:
        with PContext(4, scheduler=context.scheduler):
            return sorted(fork(range(k * 100, k * 100 + 50)))

    runners = [ThreadRunner(run, k) for k in range(3)]
    for k, runner in enumerate(runners):
        items = range(k * 100, k * 100 + 50)
        assert runner.join(TIMEOUT * 2) == sorted(
            [(x + 1) * 2 for x in items] + [-(x + 1) for x in items]
        )


def test_filter_names_the_task_after_its_function_and_restores_it() -> None:
    names: list[str] = []

    def predicate(task: Task[Any], x: int) -> bool:
        names.append(task.name)
        if x < 0:
            raise ValueError("negative")
        return True

    def body(task: Task[Any]) -> tuple[str, list[Any], str]:
        kept = list(_pipeline._filter_step(task, 1, predicate, "filter-name"))
        with pytest.raises(ValueError):
            _pipeline._filter_step(task, -1, predicate, "filter-name")
        return task.name, kept, threading.current_thread().name

    with ConcurrentTaskScheduler(1) as pool:
        outcome = Task.create(name="outer", scheduler=pool).run(body).result
    assert outcome == ("outer", [1], "outer")
    assert names == ["filter-name", "filter-name"]


def test_filter_workers_carry_the_filter_name(context: PContext) -> None:
    names: list[str] = []

    def keep_all(task: Task[Any], x: int) -> bool:
        names.append(task.name)
        return True

    assert sorted(PFilter(keep_all)([1, 2])) == [1, 2]
    assert set(names) == {f"{__name__}.keep_all"}


# -- failure and cancellation ----------------------------------------------------------------


def boom(task: Task[Any], x: int) -> Iterator[int]:
    if x == 2:
        raise ValueError("stage failed")
    yield x


def test_a_failing_stage_surfaces_as_an_aggregate(context: PContext) -> None:
    with pytest.raises(AggregateException) as caught:
        list((PFn(inc) | PFn(boom))([0, 1, 5]))
    assert isinstance(caught.value.flatten(), ValueError)


def test_an_upstream_failure_is_wrapped_again_downstream(context: PContext) -> None:
    with pytest.raises(AggregateException) as caught:
        list((PFn(boom) | PFn(inc))([2]))
    (inner,) = caught.value.exceptions
    assert isinstance(inner, AggregateException)
    assert isinstance(caught.value.flatten(), ValueError)


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param(lambda: PFn(boom) | [PFn(inc), PFn(dbl)], id="upstream"),
        pytest.param(lambda: PFn(inc) | [PFn(boom), PFn(dbl)], id="branch"),
        pytest.param(lambda: PFork([PFn(dbl), PFn(inc) | PFn(boom)]), id="inner-stage"),
    ],
)
def test_a_failure_anywhere_in_a_fork_fails_its_output_and_stops_it(flow: Any) -> None:
    # Every branch queue is failed, so no branch worker stays blocked: closing the scheduler
    # (which waits for every task) returns while the context, whose exit would interrupt
    # everything, is still open.
    pool = ConcurrentTaskScheduler(4)
    try:
        with PContext(4, scheduler=pool):
            with pytest.raises(AggregateException) as caught:
                list(flow()(naturals()))
            assert isinstance(caught.value.flatten(), ValueError)
            ThreadRunner(pool.close).join(TIMEOUT)
    finally:
        pool.close()


def test_leaving_the_context_cancels_its_stages() -> None:
    started = Event()

    def slow(task: Task[Any], x: int) -> Iterator[int]:
        started.signal()
        task.interrupt.wait(TIMEOUT)  # ends early when the context is left
        yield x

    with ConcurrentTaskScheduler(4) as pool:
        with PContext(4, scheduler=pool):
            out = (PFn(inc) | PFn(slow))(naturals())
            assert started.wait(TIMEOUT)
        with pytest.raises(InterruptException):
            out.drain(TIMEOUT)


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param(lambda: PFn(inc) | PFn(dbl), id="chain"),
        pytest.param(lambda: PFn(inc) | is_even | [PFn(dbl), PFn(neg) | PFn(inc)], id="fork"),
        pytest.param(lambda: NullPFn() | [PFn(inc), NullPFn()], id="null-branch"),
    ],
)
def test_an_endless_pipeline_consumed_partially_stops_with_its_context(flow: Any) -> None:
    # No thread is left behind: the scheduler closes (it waits for every task) and the
    # autouse leak check passes.
    with ConcurrentTaskScheduler(4) as pool:
        with PContext(4, scheduler=pool):
            out = iter(flow()(naturals()))
            assert [out.next(TIMEOUT) for _ in range(10)]
        with pytest.raises(InterruptException):
            while True:
                out.next(TIMEOUT)


def test_an_interrupted_fork_fails_its_output_with_an_interrupt() -> None:
    stop = InterruptSignal()
    with ConcurrentTaskScheduler(4) as pool, PContext(4, stop.interrupt, scheduler=pool):
        out = iter((NullPFn() | [PFn(inc), PFn(dbl)])(naturals()))
        assert out.next(TIMEOUT) > 0
        stop.signal()
        with pytest.raises(InterruptException) as caught:
            while True:
                out.next(TIMEOUT)
        assert caught.value.interrupt.signal_id == stop.signal_id


# -- stress ------------------------------------------------------------------------------------


@pytest.mark.stress
def test_stress_concurrent_calls_of_shared_pipelines() -> None:
    shared = PFn(inc) | is_even | [PFn(dbl), NullPFn() | PFn(neg)]
    expected = sorted(
        [x * 2 for x in range(1, 41) if x % 2 == 0] + [-x for x in range(1, 41) if x % 2 == 0]
    )

    def run() -> None:
        with PContext(4, scheduler=pool):
            for _ in range(10):
                assert sorted(shared(range(40))) == expected

    with ConcurrentTaskScheduler(4) as pool:
        runners = [ThreadRunner(run) for _ in range(4)]
        for runner in runners:
            runner.join(TIMEOUT * 4)


@pytest.mark.stress
def test_stress_a_failing_stage_always_surfaces_as_an_aggregate() -> None:
    with ConcurrentTaskScheduler(4) as pool, PContext(4, scheduler=pool):
        for run in range(40):
            bad = 2 + run % 10  # both flows see every value from 2 up

            def fail_at(task: Task[Any], x: int, bad: int = bad) -> Iterator[int]:
                if x == bad:
                    raise LookupError(x)
                yield x

            flow = [PFn(inc) | PFn(fail_at), PFn(fail_at) | [PFn(inc), PFn(dbl)]][run % 2]
            with pytest.raises(AggregateException) as caught:
                flow(naturals()).drain(TIMEOUT)
            assert isinstance(caught.value.flatten(), LookupError)
