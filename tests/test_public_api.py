"""The public surface: module paths, ``__all__`` contents and ``__module__`` of public names.

API.md §0.1 fixes the public import paths and requires each public module's ``__all__`` to
list exactly the names given for it; STYLE.md asks public objects to report their public
module in ``__module__``, so tracebacks and docs show ``runtime.threading.Event``.
"""

from __future__ import annotations

import importlib
import inspect
import sys

import pytest

EXPECTED: dict[str, set[str]] = {
    "runtime.threading": {
        "DEFAULT_PARALLELISM",
        "TASK_SUSPEND_AFTER",
        "TASK_KEEP_ALIVE",
        "POLL_INTERVAL",
        "ThreadingException",
        "InterruptException",
        "Event",
        "AutoClearEvent",
        "OneTimeEvent",
        "terminate_event",
        "ContinueWhen",
        "Interrupt",
        "InterruptSignal",
        "LockBase",
        "Lock",
        "Semaphore",
        "acquire_or_fail",
        "synclock",
        "sleep",
        "signal_after",
        "handle_signals",
    },
    "runtime.threading.concurrent": {"Queue"},
    "runtime.threading.tasks": {
        "Task",
        "task",
        "TaskProto",
        "ContinuationProto",
        "TaskState",
        "ContinuationOptions",
        "AggregateException",
        "TaskException",
        "TaskCompletedError",
        "TaskNotScheduledError",
        "TaskAlreadyRunningError",
        "TaskAlreadyScheduledError",
        "AwaitedTaskInterruptedError",
        "DEFAULT_PARALLELISM",
        "TASK_SUSPEND_AFTER",
        "TASK_KEEP_ALIVE",
        "POLL_INTERVAL",
    },
    "runtime.threading.tasks.schedulers": {
        "TaskScheduler",
        "ConcurrentTaskScheduler",
        "SchedulerClosedError",
        "TaskAlreadyStartedOrScheduledError",
    },
    "runtime.threading.parallel": {
        "ProducerConsumerQueue",
        "ProducerConsumerQueueIterator",
        "process",
        "ProcessProto",
        "map",
        "MapProto",
        "for_each",
        "ForEachProto",
        "background",
        "BackgroundProto",
        "distribute",
        "Distributor",
        "ParallelException",
        "DistributionAlreadyStartedError",
        "QueueCompletedError",
        "QueueLinkedToAnotherQueueError",
    },
    "runtime.threading.parallel.pipeline": {
        "PIterable",
        "PIterator",
        "PContext",
        "PFn",
        "NullPFn",
        "PFilter",
        "PFork",
        "PipelineException",
    },
}

@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_lists_exactly_the_specified_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert isinstance(exported, tuple), "__all__ is a tuple"
    assert len(exported) == len(set(exported)), "__all__ has no duplicates"
    assert set(exported) == EXPECTED[module_name]
    for name in exported:
        assert hasattr(module, name), f"{module_name}.{name} is listed but missing"


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_classes_and_functions_report_their_public_module(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        home = value.__module__
        assert home.startswith("runtime.threading"), (name, home)
        assert "._" not in home and not home.rsplit(".", 1)[-1].startswith("_"), (
            f"{module_name}.{name} reports the private module {home}"
        )
        assert name in EXPECTED.get(home, set()), (
            f"{module_name}.{name} reports {home}, which does not export it"
        )


def test_constants_are_the_same_objects_everywhere() -> None:
    threading_module = importlib.import_module("runtime.threading")
    tasks_module = importlib.import_module("runtime.threading.tasks")
    for name in ("DEFAULT_PARALLELISM", "TASK_SUSPEND_AFTER", "TASK_KEEP_ALIVE", "POLL_INTERVAL"):
        assert getattr(tasks_module, name) is getattr(threading_module, name)
    assert 2 <= threading_module.DEFAULT_PARALLELISM <= 4


def test_submodules_are_reachable_as_attributes() -> None:
    from runtime.threading import concurrent, parallel, tasks
    from runtime.threading.parallel import pipeline
    from runtime.threading.tasks import schedulers

    assert concurrent.__name__ == "runtime.threading.concurrent"
    assert parallel.pipeline is pipeline
    assert tasks.schedulers is schedulers


def test_runtime_is_a_namespace_package() -> None:
    import runtime

    assert getattr(runtime, "__file__", None) is None
    assert "runtime" in sys.modules


def test_generic_classes_subscript_at_run_time() -> None:
    from runtime.threading.concurrent import Queue
    from runtime.threading.parallel import Distributor, ProducerConsumerQueue
    from runtime.threading.parallel.pipeline import PFilter, PFork
    from runtime.threading.tasks import Task

    assert Task[int] is not None
    assert isinstance(ProducerConsumerQueue[str](), ProducerConsumerQueue)
    assert isinstance(Queue[int](), Queue)
    assert Distributor[str] is not None
    assert PFilter[int] is not None and PFork[int, int] is not None
