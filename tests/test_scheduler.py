"""Tests for runtime.threading.tasks._scheduler: TaskScheduler and ConcurrentTaskScheduler."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest

from helpers import ThreadRunner, run_in_subprocess, wait_until_blocked
from runtime.threading import Event, Lock, ThreadingException, _blocking
from runtime.threading import _constants as constants
from runtime.threading.tasks import ContinuationOptions, Task, TaskState
from runtime.threading.tasks.schedulers import (
    ConcurrentTaskScheduler,
    SchedulerClosedError,
    TaskAlreadyStartedOrScheduledError,
    TaskScheduler,
)

LONG = 10.0


def wait_for(predicate: Callable[[], bool], timeout: float = LONG) -> None:
    """Poll ``predicate`` (state observation in tests only) until true or fail."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        pause.wait(0.005)
    raise AssertionError("condition not reached")


@pytest.fixture
def fast_suspend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "TASK_SUSPEND_AFTER", 0.01)


def counts(s: ConcurrentTaskScheduler) -> tuple[int, int, int]:
    return s.active_threads, s.suspended_threads, s.allocated_threads


# -- construction ------------------------------------------------------------------------------


def test_validation_happens_first() -> None:
    with pytest.raises(ValueError, match="Argument max_parallelism must be greater than 0"):
        ConcurrentTaskScheduler(0)
    with pytest.raises(ValueError, match="keep_alive"):
        ConcurrentTaskScheduler(1, -1)
    with pytest.raises(TypeError):
        ConcurrentTaskScheduler("2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ConcurrentTaskScheduler(1, "x")  # type: ignore[arg-type]


def test_failed_constructor_leaves_no_finalizer_behind() -> None:
    """D40: nothing is printed at interpreter exit after a failed constructor."""
    proc = run_in_subprocess(
        "from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler\n"
        "try:\n    ConcurrentTaskScheduler(0)\nexcept ValueError:\n    pass\n"
        "import runtime.threading.tasks as t\n"
        "print(t.Task.run(lambda task: 7).result)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "7"
    assert proc.stderr == ""


def test_finalizer_tolerates_a_half_initialised_scheduler() -> None:
    """The base constructor ran (finalizer registered) but the subclass's did not finish."""
    proc = run_in_subprocess(
        "from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler, TaskScheduler\n"
        "half = object.__new__(ConcurrentTaskScheduler)\n"
        "TaskScheduler.__init__(half)\n"
        "print(half.finalized)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    assert proc.stderr == ""


def test_finalizer_reports_a_failing_subclass_finalize() -> None:
    proc = run_in_subprocess(
        "from runtime.threading.tasks.schedulers import TaskScheduler\n"
        "class Half(TaskScheduler):\n"
        "    is_closed = property(lambda self: False)\n"
        "    def queue(self, task): pass\n"
        "    def prioritise(self, task): pass\n"
        "    def suspend(self): pass\n"
        "    def __finalize__(self): self.missing\n"
        "h = Half()\n"
    )
    assert proc.returncode == 0
    assert "AttributeError" in proc.stderr  # reported; the exit goes on


def test_interpreter_exit_waits_for_running_tasks_but_not_for_idle_workers() -> None:
    proc = run_in_subprocess(
        "import threading\n"
        "from runtime.threading.tasks import Task\n"
        "from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler\n"
        "s = ConcurrentTaskScheduler(2, keep_alive=60.0)\n"
        "print(Task.create(scheduler=s).run(lambda t: 'idle worker left').result)\n"
        "def slow(t):\n"
        "    threading.Event().wait(0.3)\n"
        "    print('running task finished', flush=True)\n"
        "Task.create(scheduler=s).run(slow)\n"
        "Task.run_after(60.0, lambda t: print('never'))\n",
        timeout=30.0,  # far below the 60 s keep-alive
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["idle worker left", "running task finished"]
    assert proc.stderr == ""


def test_properties_and_repr() -> None:
    with ConcurrentTaskScheduler(3, 0.5) as s:
        assert s.max_parallelism == 3 and s.keep_alive == 0.5
        assert counts(s) == (0, 0, 0)
        assert not s.is_closed and not s.finalized and not s.finalizing
        assert isinstance(s.synchronization_lock, type(threading.RLock()))
        assert "max_parallelism=3" in repr(s)
    assert s.is_closed
    assert ConcurrentTaskScheduler.__module__ == "runtime.threading.tasks.schedulers"
    assert TaskScheduler.__module__ == "runtime.threading.tasks.schedulers"


def test_defaults_are_read_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "TASK_KEEP_ALIVE", 0.25)
    monkeypatch.setattr(constants, "DEFAULT_PARALLELISM", 3)
    with ConcurrentTaskScheduler() as s:
        assert s.keep_alive == 0.25 and s.max_parallelism == 3


# -- default and current -----------------------------------------------------------------------


def test_default_scheduler_cannot_be_closed_and_is_recreated_after_finalization() -> None:
    default = TaskScheduler.default()
    assert TaskScheduler.default() is default
    assert isinstance(default, ConcurrentTaskScheduler)
    with pytest.raises(ThreadingException, match="Cannot close default scheduler"):
        default.close()
    default._finalizer()  # what interpreter exit does
    assert default.finalized and default.is_closed
    fresh = TaskScheduler.default()
    assert fresh is not default
    assert Task.run(lambda t: 1).result == 1


def test_current_is_the_running_tasks_scheduler() -> None:
    assert TaskScheduler.current() is TaskScheduler.default()
    assert TaskScheduler.current_task() is None
    with ConcurrentTaskScheduler(1) as s:
        t = Task.create(scheduler=s).run(
            lambda t: (
                TaskScheduler.current(),
                TaskScheduler.current_task() is t,
                Task.current() is t,
            )
        )
        assert t.result == (s, True, True)
        # a nested Task.run inside lands on the same scheduler
        nested = Task.create(scheduler=s).run(
            lambda t: Task.run(lambda u: TaskScheduler.current()).result
        )
        assert nested.result is s


def test_suspend_is_a_no_op_outside_a_worker() -> None:
    with ConcurrentTaskScheduler(1) as s, s.suspend():
        assert counts(s) == (0, 0, 0)


# -- the worker model ------------------------------------------------------------------------


def test_queue_after_close_raises() -> None:
    s = ConcurrentTaskScheduler(1)
    s.close()
    with pytest.raises(SchedulerClosedError):
        s.queue(Task.plan(lambda t: 1))
    s.close()  # a second close returns at once


def test_worker_threads_are_non_daemon_and_named_after_their_task() -> None:
    with ConcurrentTaskScheduler(1) as s:
        t = Task.create(scheduler=s, name="job").run(lambda t: threading.current_thread())
        thread = t.result
        assert not thread.daemon
        assert thread.name != "job"  # the name is restored once the task is done


def test_idle_worker_is_reused_within_keep_alive() -> None:
    """D34: no new thread per task after an idle gap shorter than keep_alive."""
    with ConcurrentTaskScheduler(4, keep_alive=LONG) as s:
        idents = set()
        pause = threading.Event()
        for _ in range(10):
            idents.add(Task.create(scheduler=s).run(lambda t: threading.get_ident()).result)
            pause.wait(0.02)  # an idle gap, far shorter than keep_alive
        assert len(idents) == 1
        assert s.active_threads == 1


def test_idle_workers_exit_after_keep_alive() -> None:
    with ConcurrentTaskScheduler(2, keep_alive=0.05) as s:
        assert Task.create(scheduler=s).run(lambda t: 1).result == 1
        wait_for(lambda: counts(s) == (0, 0, 0))


def test_max_parallelism_is_never_exceeded() -> None:
    with ConcurrentTaskScheduler(3) as s:
        lock = threading.Lock()
        running = [0]
        peak = [0]
        gate = Event()

        def body(t: Task[None]) -> None:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            assert gate.wait(LONG)
            with lock:
                running[0] -= 1
            assert s.active_threads <= 3

        tasks = [Task.create(scheduler=s).run(body) for _ in range(30)]
        gate.signal()
        assert Task.wait_all(tasks, LONG)
        assert peak[0] <= 3


def test_suspension_injects_threads_only_for_queued_work(fast_suspend: None) -> None:
    started: set[int] = set()
    gate = Event()
    with ConcurrentTaskScheduler(2) as s:

        def body(t: Task[None]) -> None:
            started.add(threading.get_ident())
            assert gate.wait(LONG)

        tasks = [Task.create(scheduler=s).run(body) for _ in range(10)]
        wait_for(lambda: s.suspended_threads == 10)
        assert s.active_threads == 0
        assert len(started) == 10  # one thread per blocked task, not one per suspension
        gate.signal()
        assert Task.wait_all(tasks, LONG)
    assert counts(s) == (0, 0, 0)


def test_a_lone_waiter_suspends_after_the_grace_period(fast_suspend: None) -> None:
    with ConcurrentTaskScheduler(1) as s:
        gate = Event()
        t = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        wait_for(lambda: s.suspended_threads == 1)
        assert s.active_threads == 0 and s.allocated_threads == 0
        gate.signal()
        assert t.result is True


def test_resumers_come_before_queued_tasks(fast_suspend: None) -> None:
    order: list[str] = []
    event = Event()
    hold = threading.Event()  # invisible to the scheduler: B keeps its slot
    with ConcurrentTaskScheduler(1) as s:

        def a(t: Task[None]) -> None:
            assert event.wait(LONG)
            order.append("A")

        def b(t: Task[None]) -> None:
            hold.wait(LONG)
            order.append("B")

        def c(t: Task[None]) -> None:
            order.append("C")

        ta = Task.create(scheduler=s).run(a)
        wait_for(lambda: s.suspended_threads == 1)
        tb = Task.create(scheduler=s).run(b)
        wait_for(lambda: tb.is_running)
        tc = Task.create(scheduler=s).run(c)
        event.signal()  # A resumes and waits for B's slot
        wait_for(lambda: s.suspended_threads == 0 and s.allocated_threads == 2)
        assert s.active_threads == 1
        hold.set()
        assert Task.wait_all([ta, tb, tc], LONG)
        assert order == ["B", "A", "C"]


def test_nested_waits_inside_a_suspended_wait_do_not_suspend_again(fast_suspend: None) -> None:
    with ConcurrentTaskScheduler(1) as s:
        worker_hooks: list[Any] = []

        def body(t: Task[bool]) -> bool:
            hook = _blocking.current_hook()
            worker_hooks.append(hook)
            assert hook is not None
            with s.suspend():
                inner = s.suspend()
                assert isinstance(inner, nullcontext)
                assert s.suspended_threads == 1
                with inner:
                    pass
            return s.suspended_threads == 0

        assert Task.create(scheduler=s).run(body).result


# -- deadlock avoidance (SEMANTICS §5.6) ----------------------------------------------------


def build_tree(s: ConcurrentTaskScheduler, size: int, *, use_wait_all: bool) -> Task[int]:
    def node(t: Task[int], index: int) -> int:
        children = [
            Task.create(scheduler=s).run(node, child)
            for child in (2 * index + 1, 2 * index + 2)
            if child < size
        ]
        if use_wait_all:
            assert Task.wait_all(children, 30.0)  # a deadline: never inlined, must suspend
        return 1 + sum(child.result for child in children)

    return Task.create(scheduler=s).run(node, 0)


@pytest.mark.parametrize("use_wait_all", [False, True])
def test_tree_of_200_tasks_waiting_on_children_completes(use_wait_all: bool) -> None:
    with ConcurrentTaskScheduler(2) as s:
        root = build_tree(s, 200, use_wait_all=use_wait_all)
        assert root.wait(30.0)
        assert root.result == 200
    assert counts(s) == (0, 0, 0)


def test_tasks_waiting_on_tasks_scheduled_after_them_complete() -> None:
    with ConcurrentTaskScheduler(2) as s:
        later = [Task.create(scheduler=s).plan(lambda t, i: i, i) for i in range(50)]
        waiters = [
            Task.create(scheduler=s).run(lambda t, other: other.wait(30.0) and other.result, other)
            for other in later
        ]
        for task in later:
            task.schedule()
        assert Task.wait_all(waiters, 30.0)
        assert [w.result for w in waiters] == list(range(50))


def test_tasks_waiting_on_events_set_by_later_tasks_complete() -> None:
    with ConcurrentTaskScheduler(2) as s:
        events = [Event() for _ in range(50)]
        waiters = [Task.create(scheduler=s).run(lambda t, e: e.wait(30.0), e) for e in events]
        setters = [Task.create(scheduler=s).run(lambda t, e: e.signal(), e) for e in events]
        assert Task.wait_all(waiters + setters, 30.0)
        assert all(w.result for w in waiters)


def test_short_polling_waits_let_the_awaited_task_run() -> None:
    """D26: a task polling other.wait(0.05) on a saturated 1-slot scheduler."""
    with ConcurrentTaskScheduler(1) as s:
        other = Task.plan(lambda t: "done")

        def poller(t: Task[str]) -> str:
            other.schedule(s)
            for n in range(200):
                if other.wait(0.05):
                    return f"after {n}"
            return "starved"

        assert Task.create(scheduler=s).run(poller).result.startswith("after")


def test_a_task_waiting_on_a_lock_held_by_a_queued_task() -> None:
    with ConcurrentTaskScheduler(1) as s:
        lock = Lock()
        holder_started = Event()

        def holder(t: Task[None]) -> None:
            with lock:
                holder_started.signal()

        def first(t: Task[bool]) -> bool:
            h = Task.create(scheduler=s).run(holder)
            assert holder_started.wait(30.0)
            return h.wait(30.0) and lock.acquire(30.0)

        assert Task.create(scheduler=s).run(first).result


# -- inlining ----------------------------------------------------------------------------------


def test_prioritise_unlinks_only_the_awaited_entry() -> None:
    """D13."""
    with ConcurrentTaskScheduler(1) as s:
        ran: list[str] = []

        def outer(t: Task[None]) -> None:
            queued = [Task.create(scheduler=s).run(lambda t, n: ran.append(n), n) for n in "abc"]
            s.prioritise(queued[1])
            assert queued[1].is_completed and not queued[0].is_completed
            ran.append("outer")

        o = Task.create(scheduler=s).run(outer)
        assert o.wait(LONG)
        wait_for(lambda: len(ran) == 4)
        assert ran == ["b", "outer", "a", "c"]


def test_prioritise_rules() -> None:
    with ConcurrentTaskScheduler(1) as s, ConcurrentTaskScheduler(1) as other:
        done = Task.from_result(1)
        with pytest.raises(TaskAlreadyStartedOrScheduledError):
            s.prioritise(done)
        gate = Event()
        blocker = Task.create(scheduler=other).run(lambda t: gate.wait(LONG))
        queued_elsewhere = Task.create(scheduler=other).run(lambda t: 1)
        with pytest.raises(TaskAlreadyStartedOrScheduledError):
            s.prioritise(queued_elsewhere)
        wait_for(lambda: blocker.is_running)
        with pytest.raises(TaskAlreadyStartedOrScheduledError):
            other.prioritise(blocker)
        other.prioritise(queued_elsewhere)  # from outside: left alone
        assert queued_elsewhere.is_scheduled
        planned = Task.plan(lambda t: threading.get_ident())
        s.prioritise(planned)  # from outside: scheduled here
        assert planned.result != threading.get_ident()
        gate.signal()
        assert queued_elsewhere.result == 1
    with pytest.raises(SchedulerClosedError):
        s.prioritise(Task.plan(lambda t: 1))


def test_awaiting_a_queued_task_without_deadline_runs_it_inline() -> None:
    with ConcurrentTaskScheduler(1) as s:

        def outer(t: Task[bool]) -> bool:
            child = Task.create(scheduler=s).run(lambda c: threading.get_ident())
            return bool(child.result == threading.get_ident())

        assert Task.create(scheduler=s).run(outer).result


def test_worker_skips_entries_that_are_no_longer_scheduled() -> None:
    with ConcurrentTaskScheduler(1) as s:
        calls: list[int] = []
        gate = Event()
        blocker = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        queued = Task.create(scheduler=s).run(lambda t: calls.append(1))
        wait_for(lambda: blocker.is_running)
        # cancel the queued task behind the scheduler's back, as a continuation cancel would
        assert queued._cancel()
        after = Task.create(scheduler=s).run(lambda t: calls.append(2))
        gate.signal()
        assert after.wait(LONG) and calls == [2]
        assert queued.state is TaskState.INTERRUPTED


# -- close --------------------------------------------------------------------------------------


def test_close_waits_for_queued_work_and_counts_are_zero_afterwards() -> None:
    """D16."""
    s = ConcurrentTaskScheduler(1)
    gate = Event()
    tasks = [Task.create(scheduler=s).run(lambda t: gate.wait(LONG)) for _ in range(5)]
    closer = ThreadRunner(s.close)
    wait_until_blocked(closer.thread)
    assert s.is_closed and not any(t.is_completed for t in tasks)
    with pytest.raises(SchedulerClosedError):
        Task.create(scheduler=s).run(lambda t: 1)
    gate.signal()
    closer.join()
    assert all(t.is_completed_successfully for t in tasks)
    assert counts(s) == (0, 0, 0)


def test_close_right_after_queue_waits_for_the_work() -> None:
    for _ in range(20):
        s = ConcurrentTaskScheduler(2)
        tasks = [Task.create(scheduler=s).run(lambda t: sum(range(1000))) for _ in range(5)]
        s.close()
        assert all(t.is_completed_successfully for t in tasks)
        assert counts(s) == (0, 0, 0)


def test_close_makes_idle_workers_exit_at_once() -> None:
    s = ConcurrentTaskScheduler(2, keep_alive=60.0)
    assert Task.create(scheduler=s).run(lambda t: 1).result == 1
    assert s.active_threads == 1
    closer = ThreadRunner(s.close)
    closer.join(LONG)  # returns well before keep_alive
    assert counts(s) == (0, 0, 0)


def test_close_from_one_of_its_own_tasks_waits_for_the_others() -> None:
    s = ConcurrentTaskScheduler(2)
    gate = Event()
    other = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))

    def closing(t: Task[bool]) -> bool:
        gate.signal()
        s.close()
        return other.is_completed

    c = Task.create(scheduler=s).run(closing)
    assert c.result is True
    wait_for(lambda: counts(s) == (0, 0, 0))


def test_close_waits_for_suspended_tasks(fast_suspend: None) -> None:
    s = ConcurrentTaskScheduler(1)
    gate = Event()
    t = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
    wait_for(lambda: s.suspended_threads == 1)
    closer = ThreadRunner(s.close)
    wait_until_blocked(closer.thread)
    gate.signal()
    closer.join()
    assert t.result is True
    assert counts(s) == (0, 0, 0)


# -- custom schedulers through the base-class helpers ---------------------------------------


class InlineScheduler(TaskScheduler):
    """Runs each queued task at once on a dedicated thread, through ``_run``."""

    def __init__(self) -> None:
        super().__init__()
        self._closed = False
        self.threads: list[threading.Thread] = []

    @property
    def is_closed(self) -> bool:
        return self._closed

    def queue(self, task: Task[Any]) -> None:
        if self._closed:
            raise SchedulerClosedError()
        thread = threading.Thread(target=self._run, args=(task,))
        self.threads.append(thread)
        thread.start()

    def prioritise(self, task: Task[Any]) -> None:
        pass

    def suspend(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def __finalize__(self) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        for thread in self.threads:
            thread.join()


@pytest.fixture
def inline_scheduler() -> Iterator[InlineScheduler]:
    s = InlineScheduler()
    yield s
    s.close()


def test_custom_scheduler_registers_threads_through_run(inline_scheduler: InlineScheduler) -> None:
    t = Task.create(scheduler=inline_scheduler).run(
        lambda t: (TaskScheduler.current(), Task.current() is t, threading.current_thread().name)
    )
    scheduler, is_current, name = t.result
    assert scheduler is inline_scheduler and is_current
    assert name == t.name
    inline_scheduler._finalizer()
    assert inline_scheduler.finalized and not inline_scheduler.finalizing


def test_base_class_registration_helpers(inline_scheduler: InlineScheduler) -> None:
    def body() -> tuple[Any, ...]:
        inline_scheduler._register()
        registered = TaskScheduler.current()
        probe = Task.plan(lambda t: 1)
        inline_scheduler._resume(probe)
        resumed = Task.current()
        probe.name = "probe"
        inline_scheduler._refresh_task()
        name = threading.current_thread().name
        inline_scheduler._unregister()
        return registered, resumed is probe, name, Task.current(), TaskScheduler.current()

    registered, resumed, name, after, current = ThreadRunner(body).join()
    assert registered is inline_scheduler and resumed and name == "probe"
    assert after is None and current is TaskScheduler.default()


# -- continuations queued by a finishing worker --------------------------------------------


def test_continuations_queued_by_a_finishing_worker_still_run_in_parallel() -> None:
    with ConcurrentTaskScheduler(4) as s:
        barrier = threading.Barrier(4, timeout=LONG)  # passes only if all four run at once
        gate = Event()
        # Still running while the continuations are armed, so its worker queues them.
        antecedent = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        conts = [
            antecedent.continue_with(
                ContinuationOptions.ON_COMPLETED_SUCCESSFULLY, lambda c, a: barrier.wait()
            )
            for _ in range(4)
        ]
        gate.signal()
        assert Task.wait_all(conts, LONG)


def test_an_inline_continuation_does_not_hold_back_queued_ones() -> None:
    with ConcurrentTaskScheduler(2) as s:
        gate = Event()
        antecedent = Task.create(scheduler=s).run(lambda t: gate.wait(LONG))
        queued = antecedent.continue_with(
            ContinuationOptions.ON_COMPLETED_SUCCESSFULLY, lambda c, a: threading.get_ident()
        )
        # Runs inline on the finishing worker and waits (with a deadline, so it is not
        # inlined) for the continuation queued before it.
        inline = antecedent.continue_with(
            ContinuationOptions.DEFAULT, lambda c, a: queued.wait(LONG) and queued.result
        )
        gate.signal()
        assert inline.result != 0
        assert inline.result == queued.result


def test_a_continuation_queued_by_a_finishing_worker_waits_behind_older_work() -> None:
    with ConcurrentTaskScheduler(1) as s:
        order: list[str] = []
        gate = Event()
        first = Task.create(scheduler=s).run(lambda t: (gate.wait(LONG), order.append("first")))
        first.continue_with(
            ContinuationOptions.ON_COMPLETED_SUCCESSFULLY, lambda c, a: order.append("cont")
        )
        older = Task.create(scheduler=s).run(lambda t: order.append("older"))
        gate.signal()
        wait_for(lambda: len(order) == 3)
        assert order == ["first", "older", "cont"]
        assert older.is_completed


# -- stress ------------------------------------------------------------------------------------


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.stress
def test_stress_mixed_waits_suspensions_and_continuations(
    tiny_switch_interval: None, fast_suspend: None
) -> None:
    rng = random.Random(1234)
    with ConcurrentTaskScheduler(3) as s:
        events = [Event() for _ in range(150)]
        tasks: list[Task[Any]] = []

        def waiter(t: Task[bool], event: Event) -> bool:
            return event.wait(30.0)

        def setter(t: Task[None], event: Event) -> None:
            event.signal()

        def parent(t: Task[int], depth: int) -> int:
            if depth == 0:
                return 1
            kids = [Task.create(scheduler=s).run(parent, depth - 1) for _ in range(2)]
            return 1 + sum(k.result for k in kids)

        for index, event in enumerate(events):
            tasks.append(Task.create(scheduler=s).run(waiter, event))
            tasks.append(Task.create(scheduler=s).run(parent, rng.randint(0, 4)))
            if index % 3 == 0:
                tasks.append(
                    tasks[-1].continue_with(ContinuationOptions.DEFAULT, lambda c, a: a.result)
                )
        for event in rng.sample(events, len(events)):
            tasks.append(Task.create(scheduler=s).run(setter, event))
        assert Task.wait_all(tasks, 60.0)
        assert all(t.is_completed_successfully for t in tasks)
        assert s.active_threads <= 3
    assert counts(s) == (0, 0, 0)


def _produce_until_refused(
    s: ConcurrentTaskScheduler, accepted: list[Task[int]], started: threading.Event
) -> int:
    """Queue tasks on ``s`` until it refuses one; return how many were accepted."""
    for i in range(100_000):
        try:
            accepted.append(Task.create(scheduler=s).run(lambda t, i: i, i))
        except SchedulerClosedError:
            return i
        if i == 20:
            started.set()
    raise AssertionError("the scheduler never closed")


@pytest.mark.stress
def test_stress_close_races_with_queueing(tiny_switch_interval: None) -> None:
    for _ in range(30):
        s = ConcurrentTaskScheduler(2)
        accepted: list[Task[int]] = []
        started = threading.Event()
        runner = ThreadRunner(_produce_until_refused, s, accepted, started)
        assert started.wait(LONG)
        s.close()
        count = runner.join(60.0)
        # Everything accepted before the close ran to completion before close() returned.
        assert len(accepted) == count
        assert all(t.is_completed_successfully for t in accepted)
        assert counts(s) == (0, 0, 0)


@pytest.mark.stress
def test_stress_multi_waits_leave_no_registrations(tiny_switch_interval: None) -> None:
    with ConcurrentTaskScheduler(2) as s:
        for _ in range(100):
            tasks = [Task.create(scheduler=s).run(lambda t: sum(range(50))) for _ in range(4)]
            Task.wait_any(tasks, 0.001)
            assert Task.wait_all(tasks, 30.0)
            assert all(t._callbacks is None for t in tasks)
