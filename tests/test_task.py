"""Tests for runtime.threading.tasks._task: Task, TaskProto, ContinuationProto, TaskState, task."""

from __future__ import annotations

import contextvars
import gc
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers import ThreadRunner, wait_until_blocked
from runtime.threading import (
    Event,
    Interrupt,
    InterruptException,
    InterruptSignal,
    ThreadingException,
)
from runtime.threading.tasks import (
    AggregateException,
    AwaitedTaskInterruptedError,
    ContinuationOptions,
    ContinuationProto,
    Task,
    TaskAlreadyRunningError,
    TaskAlreadyScheduledError,
    TaskCompletedError,
    TaskException,
    TaskNotScheduledError,
    TaskProto,
    TaskState,
    task,
)
from runtime.threading.tasks import _task as task_module
from runtime.threading.tasks.schedulers import (
    ConcurrentTaskScheduler,
    SchedulerClosedError,
    TaskScheduler,
)

CO = ContinuationOptions
LONG = 10.0  # generous bound for anything that must finish "soon"


@pytest.fixture
def scheduler() -> Iterator[ConcurrentTaskScheduler]:
    with ConcurrentTaskScheduler(2) as s:
        yield s


def wait_for(predicate: Callable[[], bool], timeout: float = LONG) -> None:
    """Poll ``predicate`` (state observation in tests only) until true or fail."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        pause.wait(0.005)
    raise AssertionError("condition not reached")


def identity(task: Task[Any], value: Any) -> Any:
    return value


# -- TaskState and the transition table ---------------------------------------------------------


def test_task_state_values() -> None:
    assert [s.value for s in TaskState] == [0, 1, 2, 3, 4, 5]
    assert [s.name for s in TaskState] == [
        "NOTSTARTED",
        "SCHEDULED",
        "RUNNING",
        "COMPLETED",
        "INTERRUPTED",
        "FAILED",
    ]
    assert TaskState.__module__ == "runtime.threading.tasks"


def test_transition_table_is_the_documented_one() -> None:
    S = TaskState
    legal = {(a, b) for a in S for b in S if task_module._LEGAL[a][b]}
    assert legal == {
        (S.NOTSTARTED, S.SCHEDULED),
        (S.NOTSTARTED, S.RUNNING),
        (S.NOTSTARTED, S.INTERRUPTED),
        (S.SCHEDULED, S.RUNNING),
        (S.SCHEDULED, S.INTERRUPTED),
        (S.RUNNING, S.COMPLETED),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.INTERRUPTED),
    }


def test_illegal_transition_raises_task_exception() -> None:
    with pytest.raises(
        TaskException, match="Task cannot transition from state 'COMPLETED' to 'RUNNING'"
    ):
        task_module._check(TaskState.COMPLETED, TaskState.RUNNING)


# -- construction and properties ----------------------------------------------------------------


def test_constructor_defaults() -> None:
    t = Task(lambda t: 1)
    assert t.state is TaskState.NOTSTARTED
    assert t.name == f"Task_{t.id}"
    assert t.interrupt is Interrupt.none()
    assert t.parent is None
    assert not t.is_lazy
    assert t.target == f"{__name__}.test_constructor_defaults.<locals>.<lambda>"
    assert repr(t) == f"Task 'Task_{t.id}' NOTSTARTED"
    assert not (t.is_completed or t.is_scheduled or t.is_running or t.is_failed)


def test_ids_increase_and_names() -> None:
    a, b = Task(lambda t: 1), Task(lambda t: 1, name="named")
    assert b.id == a.id + 1
    assert b.name == "named"
    b.name = ""
    assert b.name == f"Task_{b.id}"
    b.name = "again"
    assert b.name == "again"


def test_constructor_validates_arguments() -> None:
    with pytest.raises(TypeError, match="'fn' must be callable"):
        Task(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'name'"):
        Task(lambda t: 1, name=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'interrupt'"):
        Task(lambda t: 1, interrupt="x")  # type: ignore[arg-type]


def test_plan_names_after_the_function() -> None:
    t = Task.plan(identity, 1)
    assert t.name == f"{__name__}.identity"
    assert t.target == f"{__name__}.identity"
    assert t.state is TaskState.NOTSTARTED
    lam = Task.plan(lambda t: 1)
    assert lam.name == f"{__name__}.<lambda>"


def test_generic_alias_reaches_static_methods() -> None:
    assert Task[int].run(identity, 5).result == 5
    planned = Task[str].plan(identity, "x")
    planned.schedule()
    assert planned.result == "x"
    assert Task[int].from_result(3).result == 3


def test_run_returns_result_and_passes_arguments() -> None:
    def fn(t: Task[Any], a: int, b: int, *, c: int) -> tuple[Any, ...]:
        return (t is Task.current(), a, b, c)

    t = Task.run(fn, 1, 2, c=3)
    assert t.result == (True, 1, 2, 3)
    assert t.is_completed_successfully and t.is_completed
    assert t.exception is None
    assert t.wait() is True


def test_target_and_arguments_are_released_after_completion() -> None:
    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    t = Task.run(identity, payload)
    t.wait()
    del payload
    t_result = t.result
    del t_result
    # the task keeps its result (the payload), so drop the result holder too
    t._result = None
    gc.collect()
    assert ref() is None


def test_parent_is_the_creating_task() -> None:
    def outer(t: Task[Any]) -> Task[Any]:
        return Task.plan(identity, 1)

    o = Task.run(outer)
    inner = o.result
    assert inner.parent is o
    assert Task.plan(identity, 1).parent is None


def test_wait_event_is_a_one_time_event_signaled_after_completion() -> None:
    gate = Event()
    t = Task.run(lambda t: gate.wait(LONG))
    event = t.wait_event
    assert event.purpose == "TASK_NOTIFY"
    assert not event.is_signaled
    gate.signal()
    assert event.wait(LONG)
    assert t.is_completed
    late = Task.from_result(1).wait_event
    assert late.is_signaled
    with pytest.raises(ThreadingException):
        late.clear()


# -- failure and interruption ---------------------------------------------------------------------


def test_failed_task_reraises_the_same_exception_without_growing_traceback() -> None:
    error = ValueError("boom")

    def fail(t: Task[Any]) -> None:
        raise error

    t = Task.run(fail)
    assert t.wait(LONG)
    assert t.is_failed and t.exception is error
    sizes = []
    for _ in range(3):
        with pytest.raises(ValueError) as info:
            _ = t.result
        assert info.value is error
        sizes.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert sizes[0] == sizes[1] == sizes[2]


def test_interrupt_signaled_before_start_skips_the_target() -> None:
    signal = InterruptSignal()
    signal.signal()
    called = []
    t = Task.create(interrupt=signal.interrupt).run(lambda t: called.append(1))
    assert t.wait(LONG)
    assert t.is_interrupted and not called
    assert isinstance(t.exception, InterruptException)
    assert t.exception.interrupt is signal.interrupt
    with pytest.raises(InterruptException):
        _ = t.result


def test_raising_own_signaled_interrupt_is_interrupted() -> None:
    signal = InterruptSignal()
    started, go = Event(), Event()

    def poll(t: Task[None]) -> None:
        started.signal()
        go.wait(LONG)
        t.interrupt.raise_if_signaled()

    t = Task.create(interrupt=signal.interrupt).run(poll)
    assert started.wait(LONG)
    signal.signal()
    go.signal()
    assert t.wait(LONG) and t.is_interrupted


def test_raising_a_parent_signal_is_interrupted() -> None:
    parent = InterruptSignal()
    child = InterruptSignal(parent.interrupt)
    started, go = Event(), Event()

    def body(t: Task[None]) -> None:
        started.signal()
        go.wait(LONG)
        parent.interrupt.raise_if_signaled()

    t = Task.create(interrupt=child.interrupt).run(body)
    assert started.wait(LONG)
    parent.signal()
    go.signal()
    assert t.wait(LONG) and t.is_interrupted


def test_hand_made_interrupt_exception_fails_the_task() -> None:
    t = Task.run(lambda t: (_ for _ in ()).throw(InterruptException(t.interrupt)))
    assert t.wait(LONG)
    assert t.is_failed


def test_unrelated_signal_fails_the_task_even_after_own_signal_is_dropped() -> None:
    for _ in range(20):
        own = InterruptSignal()
        started, go = Event(), Event()

        def body(t: Task[None], started: Event, go: Event) -> None:
            started.signal()
            go.wait(LONG)
            other = InterruptSignal()
            other.signal()
            other.interrupt.raise_if_signaled()

        t = Task.create(interrupt=own.interrupt).run(body, started, go)
        assert started.wait(LONG)
        own.signal()
        del own
        gc.collect()
        go.signal()
        assert t.wait(LONG)
        assert t.is_failed


def test_target_ignoring_its_interrupt_completes() -> None:
    signal = InterruptSignal()
    started, go = Event(), Event()

    def body(t: Task[int]) -> int:
        started.signal()
        go.wait(LONG)
        return 7

    t = Task.create(interrupt=signal.interrupt).run(body)
    assert started.wait(LONG)
    signal.signal()
    go.signal()
    assert t.result == 7


@pytest.mark.parametrize("error_type", [SystemExit, KeyboardInterrupt])
def test_base_exception_on_a_worker_fails_the_task_and_is_reported(
    error_type: type[BaseException], capsys: pytest.CaptureFixture[str]
) -> None:
    with ConcurrentTaskScheduler(1, keep_alive=LONG) as s:
        idents: list[int] = []

        def body(t: Task[None]) -> None:
            idents.append(threading.get_ident())
            raise error_type(3)

        t = Task.create(scheduler=s).run(body)
        after = t.continue_with(CO.ON_FAILED, lambda c, a: "released")
        assert t.wait(LONG)
        assert t.state is TaskState.FAILED and t.is_completed
        assert isinstance(t.exception, ThreadingException)
        assert isinstance(t.exception.__cause__, error_type)
        assert after.result == "released"
        # the worker carries on
        nxt = Task.create(scheduler=s).run(lambda t: threading.get_ident())
        assert nxt.result == idents[0]
    err = capsys.readouterr().err
    assert error_type.__name__ in err and t.name in err


def test_base_exception_on_the_main_thread_is_reraised_after_finalising() -> None:
    seen: list[Any] = []
    t = Task.plan(lambda t: (_ for _ in ()).throw(SystemExit(5)))
    t.continue_with(CO.DEFAULT, lambda c, a: seen.append((a.state, Task.current() is c)))
    with pytest.raises(SystemExit):
        t.run_synchronously()
    assert t.is_failed
    assert isinstance(t.exception, ThreadingException)
    assert seen == [(TaskState.FAILED, True)]
    assert Task.current() is None


# -- contextvars -----------------------------------------------------------------------------


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST", default="none")


def test_task_runs_in_a_copy_of_the_creators_context() -> None:
    token = REQUEST.set("outer")
    try:

        def body(t: Task[str]) -> str:
            seen = REQUEST.get()
            REQUEST.set("inside")
            return seen

        t = Task.run(body)
        assert t.result == "outer"
        assert REQUEST.get() == "outer"
        # the context is copied at construction, not at run time
        planned = Task.plan(lambda t: REQUEST.get())
        REQUEST.set("later")
        planned.run_synchronously()
        assert planned.result == "outer"
    finally:
        REQUEST.reset(token)


def test_context_values_set_by_a_task_do_not_reach_the_next_task_on_its_worker() -> None:
    with ConcurrentTaskScheduler(1, keep_alive=LONG) as s:

        def setter(t: Task[int]) -> int:
            REQUEST.set("leaked?")
            return threading.get_ident()

        def getter(t: Task[tuple[int, str]]) -> tuple[int, str]:
            return threading.get_ident(), REQUEST.get()

        first = Task.create(scheduler=s).run(setter).result
        second, seen = Task.create(scheduler=s).run(getter).result
        assert first == second  # the same worker thread
        assert seen == "none"


def test_wait_event_observers_see_the_final_state_and_a_clean_thread() -> None:
    from runtime.threading import ContinueWhen
    from runtime.threading._events import EventContinuation

    gate = Event()
    t = Task.run(lambda t: gate.wait(LONG))
    seen: list[Any] = []
    EventContinuation(
        [t.wait_event],
        ContinueWhen.ALL,
        lambda: seen.append((t.state, t.result, Task.current() is t)),
    )
    gate.signal()
    assert t.wait(LONG)
    wait_for(lambda: bool(seen))
    assert seen == [(TaskState.COMPLETED, True, False)]


# -- scheduling ------------------------------------------------------------------------------


def test_schedule_errors_in_order(scheduler: ConcurrentTaskScheduler) -> None:
    gate = Event()
    running = Task.create(scheduler=scheduler).run(lambda t: gate.wait(LONG))
    wait_for(lambda: running.is_running)
    with pytest.raises(TaskAlreadyRunningError):
        running.schedule()
    with pytest.raises(TaskAlreadyRunningError):
        running.run_synchronously()
    armed = running.continue_with(CO.DEFAULT, lambda c, a: None)
    with pytest.raises(TaskAlreadyScheduledError):
        armed.schedule()
    with pytest.raises(TaskAlreadyScheduledError):
        armed.run_synchronously()
    gate.signal()
    assert armed.wait(LONG)
    with pytest.raises(TaskCompletedError):
        running.schedule()
    with pytest.raises(TaskCompletedError):
        running.run_synchronously()
    with pytest.raises(TypeError):
        Task.plan(identity, 1).schedule("s")  # type: ignore[arg-type]


def test_task_refused_by_a_closed_scheduler_stays_notstarted() -> None:
    closed = ConcurrentTaskScheduler(1)
    closed.close()
    t = Task.plan(identity, 4)
    with pytest.raises(SchedulerClosedError):
        t.schedule(closed)
    assert t.state is TaskState.NOTSTARTED
    with pytest.raises(SchedulerClosedError):
        Task.create(scheduler=closed).run(identity, 1)
    with ConcurrentTaskScheduler(1) as other:
        t.schedule(other)
        assert t.result == 4


def test_planned_task_remembers_the_proto_scheduler(scheduler: ConcurrentTaskScheduler) -> None:
    t = Task.create(scheduler=scheduler).plan(lambda t: TaskScheduler.current())
    assert t.state is TaskState.NOTSTARTED
    t.schedule()
    assert t.result is scheduler


def test_run_synchronously_on_the_calling_thread() -> None:
    t = Task.plan(lambda t: (threading.get_ident(), Task.current() is t))
    t.run_synchronously()
    assert t.result == (threading.get_ident(), True)
    assert Task.current() is None
    assert threading.current_thread().name == "MainThread"


def test_run_synchronously_of_a_task_queued_on_the_current_scheduler() -> None:
    with ConcurrentTaskScheduler(1) as s:
        calls: list[int] = []

        def outer(t: Task[bool]) -> bool:
            queued = Task.create(scheduler=s).run(lambda t: calls.append(1))
            assert queued.is_scheduled
            queued.run_synchronously()
            return queued.is_completed_successfully

        assert Task.create(scheduler=s).run(outer).result
        assert calls == [1]


def test_run_synchronously_refuses_a_task_queued_elsewhere() -> None:
    with ConcurrentTaskScheduler(1) as s:
        gate = Event()
        blocker = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        queued = Task.create(scheduler=s).run(identity, 1)
        with pytest.raises(TaskAlreadyScheduledError):
            queued.run_synchronously()
        gate.signal()
        assert queued.result == 1 and blocker.result


def test_worker_names_thread_after_task() -> None:
    t = Task.create(name="the-name").run(lambda t: threading.current_thread().name)
    assert t.result == "the-name"

    def rename(t: Task[str]) -> str:
        t.name = "renamed"
        return threading.current_thread().name

    assert Task.run(rename).result == "renamed"


# -- waiting -------------------------------------------------------------------------------------


def test_wait_timeout_and_validation() -> None:
    gate = Event()
    t = Task.run(lambda t: gate.wait(LONG))
    assert t.wait(0) is False
    assert t.wait(0.01) is False
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        t.wait(-1)
    gate.signal()
    assert t.wait(LONG) is True
    with pytest.raises(ValueError):
        t.wait(-1)
    assert not t._callbacks


def test_wait_interrupt_takes_precedence() -> None:
    signal = InterruptSignal()
    signal.signal()
    done = Task.from_result(1)
    assert done.wait(interrupt=signal.interrupt) is False
    gate = Event()
    t = Task.run(lambda t: gate.wait(LONG))
    waiter_signal = InterruptSignal()
    runner = ThreadRunner(t.wait, None, waiter_signal.interrupt)
    wait_until_blocked(runner.thread)
    waiter_signal.signal()
    assert runner.join() is False
    assert not t._callbacks
    gate.signal()
    assert t.wait(LONG)


def test_waiting_on_a_notstarted_task_waits_for_someone_to_schedule_it() -> None:
    t = Task.plan(identity, 9)
    runner = ThreadRunner(t.wait, LONG)
    wait_until_blocked(runner.thread)
    t.schedule()
    assert runner.join() is True
    assert t.result == 9


def test_result_of_a_notstarted_task_raises() -> None:
    with pytest.raises(TaskNotScheduledError):
        _ = Task.plan(identity, 1).result


def test_lazy_task_is_started_by_result_from_the_main_thread() -> None:
    t = Task.create(lazy=True).plan(lambda t: threading.get_ident())
    assert t.is_lazy and t.state is TaskState.NOTSTARTED
    assert t.result != threading.get_ident()


def test_lazy_task_runs_inline_in_an_awaiting_task(scheduler: ConcurrentTaskScheduler) -> None:
    def outer(t: Task[Any]) -> tuple[Any, ...]:
        lazy = Task.create(lazy=True).plan(lambda inner: (threading.get_ident(), Task.current()))
        ident, current = lazy.result
        return ident == threading.get_ident(), current is lazy, Task.current() is t

    assert Task.create(scheduler=scheduler).run(outer).result == (True, True, True)


def test_lazy_task_started_by_wait_any_and_wait_all() -> None:
    a = Task.create(lazy=True).plan(identity, 1)
    assert Task.wait_any([a], LONG)
    b = Task.create(lazy=True).plan(identity, 2)
    c = Task.create(lazy=True).plan(identity, 3)
    assert Task.wait_all([b, c], LONG)
    assert (a.result, b.result, c.result) == (1, 2, 3)


def test_lazy_has_no_effect_on_run() -> None:
    gate = Event()
    t = Task.create(lazy=True).run(lambda t: gate.signal())
    assert gate.wait(LONG)
    assert t.wait(LONG)


# -- wait_any / wait_all ---------------------------------------------------------------------


def failing(task: Task[Any], message: str) -> None:
    raise ValueError(message)


def test_wait_all_and_any_of_nothing() -> None:
    assert Task.wait_all([]) is True
    assert Task.wait_any([]) is False
    signal = InterruptSignal()
    signal.signal()
    assert Task.wait_all([], interrupt=signal.interrupt) is False


def test_wait_all_aggregates_failures_in_list_order() -> None:
    tasks = [Task.run(failing, "b"), Task.run(identity, 1), Task.run(failing, "a")]
    with pytest.raises(AggregateException) as info:
        Task.wait_all(tasks, LONG)
    assert [str(e) for e in info.value.exceptions] == ["b", "a"]


def test_wait_all_interrupted_tasks_count_as_finished() -> None:
    signal = InterruptSignal()
    signal.signal()
    tasks = [Task.create(interrupt=signal.interrupt).run(identity, 1), Task.run(identity, 2)]
    assert Task.wait_all(tasks, LONG) is True
    with pytest.raises(AwaitedTaskInterruptedError):
        Task.wait_all(tasks, LONG, fail_on_interrupt=True)
    with pytest.raises(AwaitedTaskInterruptedError):
        Task.wait_any(tasks, LONG, fail_on_interrupt=True)


def test_wait_any_returns_on_first_and_reports_failures_at_that_moment() -> None:
    gate = Event()
    slow = Task.run(lambda t: gate.wait(LONG))
    bad = Task.run(failing, "x")
    assert bad.wait(LONG)
    with pytest.raises(AggregateException) as info:
        Task.wait_any([slow, bad], LONG)
    assert len(info.value.exceptions) == 1
    fast = Task.run(identity, 1)
    assert Task.wait_any([slow, fast], LONG) is True
    gate.signal()
    assert slow.wait(LONG)


def test_wait_any_timeout_and_interrupt_leave_no_registration() -> None:
    gate = Event()
    a, b = Task.run(lambda t: gate.wait(LONG)), Task.run(lambda t: gate.wait(LONG))
    for _ in range(50):
        assert Task.wait_any([a, b], 0.001) is False
    assert Task.wait_all([a, b], 0.001) is False
    signal = InterruptSignal()
    runner = ThreadRunner(Task.wait_any, [a, b], None, False, signal.interrupt)
    wait_until_blocked(runner.thread)
    signal.signal()
    assert runner.join() is False
    assert not a._callbacks and not b._callbacks
    gate.signal()
    assert Task.wait_all([a, b], LONG)


def test_multi_waits_validate_arguments() -> None:
    with pytest.raises(TypeError):
        Task.wait_all([1])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        Task.wait_any([Task.from_result(1)], -1)


# -- from_result, create, protos --------------------------------------------------------------


def test_from_result() -> None:
    t = Task.from_result("x")
    assert t.is_completed_successfully and t.result == "x" and t.wait(0)
    assert t.continue_with(CO.ON_COMPLETED_SUCCESSFULLY, lambda c, a: a.result * 2).result == "xx"


def test_create_with_defaults_returns_a_shared_immutable_proto() -> None:
    assert Task.create() is Task.create()
    proto = Task.create(name="n", lazy=True)
    assert proto is not Task.create()
    assert (proto.name, proto.lazy, proto.scheduler) == ("n", True, None)
    with pytest.raises(AttributeError):
        proto.name = "other"  # type: ignore[misc]
    assert TaskProto(lazy=None).lazy is False
    with pytest.raises(TypeError):
        TaskProto(scheduler="s")  # type: ignore[arg-type]


def test_proto_plan_uses_name_interrupt_and_laziness() -> None:
    signal = InterruptSignal()
    t = TaskProto("proto-name", signal.interrupt, None, True).plan(identity, 1)
    assert t.name == "proto-name" and t.interrupt is signal.interrupt and t.is_lazy
    assert t.target == f"{__name__}.identity"


def test_shared_proto_resolves_scheduler_per_thread() -> None:
    """D11: Task.run outside any context never lands on another thread's context scheduler."""
    from runtime.threading.parallel.pipeline import PContext

    with ConcurrentTaskScheduler(2) as ctx_scheduler:
        stop = threading.Event()
        inside_ok: list[bool] = []

        def in_context() -> None:
            with PContext(2, scheduler=ctx_scheduler):
                while not stop.is_set():
                    t = Task.run(lambda t: TaskScheduler.current())
                    inside_ok.append(t.result is ctx_scheduler)

        runner = ThreadRunner(in_context)
        wrong = 0
        for _ in range(300):
            t = Task.run(lambda t: TaskScheduler.current())
            wrong += t.result is ctx_scheduler
        stop.set()
        runner.join()
        assert wrong == 0
        assert inside_ok and all(inside_ok)


# -- the task decorator -----------------------------------------------------------------------


def test_task_decorator() -> None:
    @task
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    t = add(1, 2)
    assert isinstance(t, Task)
    assert t.result == 3
    assert t.name == f"{__name__}.add"
    assert t.target == f"{__name__}.test_task_decorator.<locals>.add"
    assert add.__name__ == "add" and add.__doc__ == "Add."
    with pytest.raises(TypeError):
        task(5)  # type: ignore[arg-type]


def test_task_decorator_function_does_not_receive_the_task() -> None:
    @task
    def work(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args, kwargs, Task.current() is not None

    assert work(1, k=2).result == ((1,), {"k": 2}, True)


# -- continuations (members of Task) ----------------------------------------------------------


def test_continue_with_runs_on_selected_state_only() -> None:
    parsed = Task.run(lambda t: int("42"))
    labelled = parsed.continue_with(
        CO.ON_COMPLETED_SUCCESSFULLY, lambda c, a, u: f"{a.result} {u}", "apples"
    )
    on_error = parsed.continue_with(CO.ON_FAILED, lambda c, a: "bad input")
    assert labelled.result == "42 apples"
    assert on_error.wait(LONG) and on_error.is_interrupted
    assert isinstance(on_error.exception, InterruptException)
    assert on_error.exception.interrupt is on_error.interrupt


def test_continuation_properties() -> None:
    gate = Event()
    antecedent = Task.run(lambda t: gate.wait(LONG))
    cont = antecedent.continue_with(CO.DEFAULT, identity)
    assert cont.is_scheduled
    assert cont.name == f"{__name__}.identity"
    assert cont.interrupt is Interrupt.none()
    gate.signal()
    assert cont.result is antecedent


def test_continue_with_on_a_terminal_antecedent_runs_inline_before_returning() -> None:
    done = Task.from_result(1)
    ident: list[int] = []
    cont = done.continue_with(CO.DEFAULT, lambda c, a: ident.append(threading.get_ident()))
    assert cont.is_completed and ident == [threading.get_ident()]
    assert Task.current() is None


def test_inline_continuation_leaves_no_registration_on_the_main_thread() -> None:
    """D25."""
    with ConcurrentTaskScheduler(2) as s:
        t = Task.create(scheduler=s).run(lambda t: 1)
        t.wait()
        seen: list[Any] = []
        t.continue_with(
            CO.ON_COMPLETED_SUCCESSFULLY | CO.INLINE, lambda c, p: seen.append(Task.current() is c)
        ).wait()
        assert seen == [True]
    assert Task.current() is None
    assert Task.plan(lambda t: 0).parent is None
    assert TaskScheduler.current() is TaskScheduler.default()


def test_continue_with_validates_options() -> None:
    t = Task.from_result(1)
    with pytest.raises(ValueError):
        t.continue_with(4, identity)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        t.continue_with("x", identity)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        t.continue_with(CO.DEFAULT, None)  # type: ignore[arg-type]


def test_with_all_and_with_any_return_protos() -> None:
    a, b = Task.from_result(1), Task.from_result(2)
    proto = Task.with_all([a, b])
    assert isinstance(proto, ContinuationProto)
    assert proto.run(lambda c, tasks: sum(t.result for t in tasks)).result == 3
    assert Task.with_any([a, b]).run(lambda c, tasks: len(tasks)).result == 2
    totals = [Task.run(lambda t, s: int(s), s) for s in ("1", "2", "3")]
    summed = Task.with_all(totals).run(lambda t, tasks: sum(x.result for x in tasks))
    assert summed.result == 6


# -- run_after -------------------------------------------------------------------------------


def test_run_after_queues_on_the_proto_scheduler_with_its_name() -> None:
    """D36."""
    with ConcurrentTaskScheduler(2) as s:
        r = Task.create(scheduler=s).run_after(0.05, lambda t: TaskScheduler.current() is s)
        assert r.is_scheduled
        assert s.active_threads == 0  # the delay occupies no worker
        assert r.result is True
        assert r.name == f"{__name__}.<lambda>"
        named = Task.create(scheduler=s, name="later").run_after(0, lambda t: t.name)
        assert named.result == "later"


def test_run_after_interrupted_during_the_delay() -> None:
    signal = InterruptSignal()
    called: list[int] = []
    r = Task.create(interrupt=signal.interrupt).run_after(LONG, lambda t: called.append(1))
    assert r.is_scheduled
    signal.signal()
    assert r.wait(LONG)
    assert r.is_interrupted and not called
    already = InterruptSignal()
    already.signal()
    r2 = Task.create(interrupt=already.interrupt).run_after(LONG, lambda t: called.append(1))
    assert r2.is_interrupted


def test_run_after_validates_time() -> None:
    with pytest.raises(ValueError, match="'time' must be a non-negative number"):
        Task.run_after(-1, identity, 1)
    with pytest.raises(TypeError):
        Task.run_after("x", identity, 1)  # type: ignore[arg-type]
    assert Task.run_after(0, identity, 5).result == 5
    closed = ConcurrentTaskScheduler(1)
    closed.close()
    with pytest.raises(SchedulerClosedError):
        Task.create(scheduler=closed).run_after(1, identity, 1)


# -- the seed example --------------------------------------------------------------------------


def test_seed_example_runs_verbatim() -> None:
    from runtime.threading.parallel import ProducerConsumerQueue

    def fn_produce(task: Task[None], queue: ProducerConsumerQueue[int], n: int) -> None:
        try:
            for i in range(n):
                queue.put(i)
            queue.complete()
        except Exception as ex:
            queue.fail(ex)

    def fn_consume(task: Task[list[int]], queue: ProducerConsumerQueue[int]) -> list[int]:
        return [i for i in queue.get_iterator()]

    queue = ProducerConsumerQueue[int]()
    task_producer = Task.run(fn_produce, queue, 5)
    task_consumer = Task.run(fn_consume, queue)

    assert task_consumer.result == list(range(5))
    assert task_producer.wait(LONG) and task_producer.is_completed_successfully


def test_interrupt_example() -> None:
    stop = InterruptSignal()

    def poll(task: Task[None]) -> None:
        while True:
            task.interrupt.raise_if_signaled()
            task.interrupt.wait(0.05)

    worker = Task.create(interrupt=stop.interrupt).run(poll)
    stop.signal()
    assert worker.wait(LONG)
    assert worker.is_interrupted and isinstance(worker.exception, InterruptException)


def test_public_module_paths() -> None:
    for cls in (Task, TaskProto, ContinuationProto, TaskState, ContinuationOptions):
        assert cls.__module__ == "runtime.threading.tasks"
    assert task.__module__ == "runtime.threading.tasks"
