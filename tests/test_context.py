"""Tests for runtime.threading.tasks._context: PContext."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from helpers import ThreadRunner
from runtime.threading import DEFAULT_PARALLELISM, Event, InterruptSignal
from runtime.threading._errors import PipelineException
from runtime.threading.tasks import Task
from runtime.threading.tasks._context import PContext
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler, TaskScheduler

LONG = 10.0


def test_public_module_path() -> None:
    assert PContext.__module__ == "runtime.threading.parallel.pipeline"


def test_validation() -> None:
    with pytest.raises(ValueError, match="Argument max_parallelism must be greater than 0"):
        PContext(0)
    with pytest.raises(TypeError):
        PContext("2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PContext(2, interrupt="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PContext(2, scheduler="x")  # type: ignore[arg-type]


def test_ids_count_roots_too() -> None:
    a = PContext(2)
    root_id = ThreadRunner(lambda: PContext.root().id).join()
    b = PContext(2)
    assert a.id < root_id < b.id
    assert PContext.root().id >= 0


def test_root_is_per_thread_never_closed_and_follows_the_default_scheduler() -> None:
    root = PContext.root()
    assert PContext.root() is root
    assert PContext.current() is root
    assert root.max_parallelism == DEFAULT_PARALLELISM
    assert not root.closed and not root.interrupt.is_signaled
    assert root.scheduler is TaskScheduler.default()
    other = ThreadRunner(PContext.root).join()
    assert other is not root
    with pytest.raises(PipelineException):
        root.__enter__()
    with pytest.raises(PipelineException):
        root.__exit__(None, None, None)
    default = TaskScheduler.default()
    default._finalizer()  # a new default scheduler is created
    assert root.scheduler is TaskScheduler.default() is not default


def test_enter_and_exit_form_a_stack() -> None:
    with ConcurrentTaskScheduler(1) as s:
        with PContext(3, scheduler=s) as outer:
            assert PContext.current() is outer
            assert outer.scheduler is s and outer.max_parallelism == 3
            with PContext(1) as inner:
                assert PContext.current() is inner
                assert inner.scheduler is TaskScheduler.default()
            assert inner.closed and inner.interrupt.is_signaled
            assert PContext.current() is outer
        assert outer.closed
        # properties stay readable after exit (D40)
        assert outer.scheduler is s and outer.interrupt.is_signaled and outer.max_parallelism == 3
    assert PContext.current() is PContext.root()


def test_exit_signals_a_child_of_the_given_interrupt() -> None:
    parent = InterruptSignal()
    ctx = PContext(2, interrupt=parent.interrupt)
    assert parent.interrupt.propagates_to(ctx.interrupt)
    with ctx:
        assert not ctx.interrupt.is_signaled
    assert ctx.interrupt.is_signaled and not parent.interrupt.is_signaled
    linked = PContext(2, interrupt=parent.interrupt)
    parent.signal()
    assert linked.interrupt.is_signaled


def test_out_of_order_and_double_exit_raise() -> None:
    outer, inner = PContext(2), PContext(2)
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(PipelineException):
        outer.__exit__(None, None, None)
    assert not outer.closed
    inner.__exit__(None, None, None)
    with pytest.raises(PipelineException):
        inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)
    with pytest.raises(PipelineException):
        outer.__enter__()
    ctx = PContext(2)
    with ctx, pytest.raises(PipelineException):
        ctx.__enter__()


def test_exit_on_another_thread_raises() -> None:
    ctx = PContext(2)
    with ctx:
        runner = ThreadRunner(ctx.__exit__, None, None, None)
        with pytest.raises(PipelineException):
            runner.join()
    assert ctx.closed


def test_tasks_inherit_a_context_on_its_scheduler() -> None:
    with ConcurrentTaskScheduler(2) as s:
        with PContext(2, scheduler=s) as ctx:

            def body(t: Task[Any]) -> tuple[Any, ...]:
                nested = Task.run(lambda u: (TaskScheduler.current(), PContext.current()))
                return PContext.current(), TaskScheduler.current(), nested.result

            current, scheduler, (nested_scheduler, nested_ctx) = Task.run(body).result
            assert current is ctx and scheduler is s
            assert nested_scheduler is s and nested_ctx is ctx
        # the worker's own stack is clean again
        assert Task.create(scheduler=s).run(lambda t: PContext.current()).result is not ctx


def test_tasks_on_another_scheduler_do_not_inherit() -> None:
    with ConcurrentTaskScheduler(1) as s, ConcurrentTaskScheduler(1) as other:
        with PContext(2, scheduler=s) as ctx:
            t = Task.create(scheduler=other).run(lambda t: PContext.current())
            seen = t.result
        assert seen is not ctx
        assert seen.max_parallelism == DEFAULT_PARALLELISM


def test_a_closed_context_is_not_inherited() -> None:
    with ConcurrentTaskScheduler(1) as s:
        with PContext(2, scheduler=s) as ctx:
            planned = Task.plan(lambda t: PContext.current())
        planned.schedule(s)
        assert planned.result is not ctx and not planned.result.closed


def test_schedule_uses_the_captured_open_context() -> None:
    with ConcurrentTaskScheduler(1) as s:
        with PContext(2, scheduler=s):
            planned = Task.plan(lambda t: TaskScheduler.current())
            planned.schedule()
            assert planned.result is s
        late = None
        with PContext(2, scheduler=s):
            late = Task.plan(lambda t: TaskScheduler.current())
        late.schedule()  # the context is closed now: TaskScheduler.current()
        assert late.result is TaskScheduler.default()


def test_a_context_does_not_change_taskscheduler_current() -> None:
    with ConcurrentTaskScheduler(1) as s, PContext(2, scheduler=s):
        assert TaskScheduler.current() is TaskScheduler.default()


def test_exiting_a_context_interrupts_work_started_under_it() -> None:
    with ConcurrentTaskScheduler(2) as s:
        started = Event()
        with PContext(2, scheduler=s) as ctx:
            t = Task.create(interrupt=ctx.interrupt).run(
                lambda t: (started.signal(), t.interrupt.wait(LONG))[1]
            )
            assert started.wait(LONG)
        assert t.result is True


def test_stacks_are_per_thread() -> None:
    ready, done = threading.Event(), threading.Event()

    def other() -> PContext:
        ready.wait(LONG)
        current = PContext.current()
        done.set()
        return current

    runner = ThreadRunner(other)
    with PContext(2) as ctx:
        ready.set()
        done.wait(LONG)
        assert runner.join() is not ctx
