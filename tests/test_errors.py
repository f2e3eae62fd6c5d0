"""Tests for ``runtime.threading._errors``: the hierarchy, named errors and aggregation."""

from __future__ import annotations

import importlib
import pickle
import re

import pytest

from runtime.threading import _errors
from runtime.threading._errors import (
    AggregateException,
    AwaitedTaskInterruptedError,
    DistributionAlreadyStartedError,
    InterruptException,
    ParallelException,
    PipelineException,
    QueueCompletedError,
    QueueLinkedToAnotherQueueError,
    SchedulerClosedError,
    TaskAlreadyRunningError,
    TaskAlreadyScheduledError,
    TaskAlreadyStartedOrScheduledError,
    TaskCompletedError,
    TaskException,
    TaskNotScheduledError,
    ThreadingException,
)
from runtime.threading._interrupts import Interrupt, InterruptSignal

# API §7: class -> (direct base, public module).
HIERARCHY: dict[type[Exception], tuple[type[Exception], str]] = {
    ThreadingException: (Exception, "runtime.threading"),
    InterruptException: (ThreadingException, "runtime.threading"),
    AggregateException: (ThreadingException, "runtime.threading.tasks"),
    TaskException: (ThreadingException, "runtime.threading.tasks"),
    TaskCompletedError: (TaskException, "runtime.threading.tasks"),
    TaskNotScheduledError: (TaskException, "runtime.threading.tasks"),
    TaskAlreadyRunningError: (TaskException, "runtime.threading.tasks"),
    TaskAlreadyScheduledError: (TaskException, "runtime.threading.tasks"),
    AwaitedTaskInterruptedError: (TaskException, "runtime.threading.tasks"),
    SchedulerClosedError: (TaskException, "runtime.threading.tasks.schedulers"),
    TaskAlreadyStartedOrScheduledError: (TaskException, "runtime.threading.tasks.schedulers"),
    ParallelException: (ThreadingException, "runtime.threading.parallel"),
    DistributionAlreadyStartedError: (ParallelException, "runtime.threading.parallel"),
    QueueCompletedError: (ParallelException, "runtime.threading.parallel"),
    QueueLinkedToAnotherQueueError: (ParallelException, "runtime.threading.parallel"),
    PipelineException: (ThreadingException, "runtime.threading.parallel.pipeline"),
}

# API §3.8, §4 and §5.8: named error -> default message.
NAMED: dict[type[Exception], str] = {
    TaskCompletedError: "task has already completed",
    TaskNotScheduledError: "task is not scheduled",
    TaskAlreadyRunningError: "task is already running",
    TaskAlreadyScheduledError: "task is already scheduled",
    AwaitedTaskInterruptedError: "an awaited task was interrupted",
    SchedulerClosedError: "task scheduler is closed",
    TaskAlreadyStartedOrScheduledError: "task is already running or scheduled elsewhere",
    DistributionAlreadyStartedError: "distribution has already started",
    QueueCompletedError: "queue is complete",
    QueueLinkedToAnotherQueueError: (
        "queue is fed by another queue's iterator and cannot be written to or completed directly"
    ),
}

def skip_unless_public(cls: type[Exception]) -> None:
    """Skip unless ``cls`` is reachable through its public module (pickle looks it up there)."""
    try:
        module = importlib.import_module(cls.__module__)
    except ImportError:
        module = None
    if getattr(module, cls.__name__, None) is not cls:
        pytest.skip(f"{cls.__module__} does not export {cls.__name__} yet")


named = pytest.mark.parametrize("cls", list(NAMED), ids=lambda c: c.__name__)


# -- hierarchy -------------------------------------------------------------------------------


def test_all_lists_every_class_of_the_hierarchy() -> None:
    assert isinstance(_errors.__all__, tuple)
    assert set(_errors.__all__) == {cls.__name__ for cls in HIERARCHY}


@pytest.mark.parametrize("cls", list(HIERARCHY), ids=lambda c: c.__name__)
def test_hierarchy_and_public_module(cls: type[Exception]) -> None:
    base, module = HIERARCHY[cls]
    assert issubclass(cls, base)
    assert issubclass(cls, ThreadingException) or cls is ThreadingException
    assert cls.__module__ == module
    # The direct public base is the documented one (named errors also derive from a private
    # helper class, which itself derives from ThreadingException).
    public_bases = [b for b in cls.__bases__ if not b.__name__.startswith("_")]
    assert public_bases == [base]


def test_named_errors_are_not_related_to_each_other() -> None:
    for cls in NAMED:
        for other in NAMED:
            if other is not cls:
                assert not issubclass(cls, other)


def test_threading_exception_is_constructed_like_exception() -> None:
    assert str(ThreadingException()) == ""
    assert str(ThreadingException("boom")) == "boom"
    assert ThreadingException("a", 1).args == ("a", 1)
    assert str(TaskException("Task cannot transition from state 'A' to 'B'")) == (
        "Task cannot transition from state 'A' to 'B'"
    )


# -- named errors (API §0.6) -----------------------------------------------------------------


@named
def test_str_of_named_error_class_is_the_default_message(cls: type[Exception]) -> None:
    assert str(cls) == NAMED[cls]


@named
def test_repr_of_named_error_class_is_a_normal_class_repr(cls: type[Exception]) -> None:
    assert repr(cls) == f"<class '{cls.__module__}.{cls.__qualname__}'>"


@named
def test_raise_class_and_raise_instance_give_the_default_message(cls: type[Exception]) -> None:
    with pytest.raises(cls) as bare:
        raise cls
    with pytest.raises(cls) as called:
        raise cls()
    assert str(bare.value) == NAMED[cls]
    assert str(called.value) == NAMED[cls]
    assert bare.value is not called.value


@named
def test_named_error_can_be_matched_by_its_class_string(cls: type[Exception]) -> None:
    with pytest.raises(cls, match=re.escape(str(cls))):
        raise cls
    try:
        raise cls()
    except cls as error:
        assert str(error) == str(cls)


@named
def test_named_error_keeps_an_explicit_message(cls: type[Exception]) -> None:
    error = cls("something specific")
    assert str(error) == "something specific"
    assert str(cls) == NAMED[cls]  # the class message is unaffected


@named
def test_named_errors_are_fresh_instances_and_pickle(cls: type[Exception]) -> None:
    first, second = cls(), cls()
    assert first is not second
    # Pickle finds the class through its public module, which re-exports it.
    skip_unless_public(cls)
    copy = pickle.loads(pickle.dumps(first))
    assert type(copy) is cls
    assert str(copy) == NAMED[cls]


# -- InterruptException ----------------------------------------------------------------------


def test_interrupt_exception_message_and_interrupt() -> None:
    interrupt = Interrupt()
    error = InterruptException(interrupt)
    assert str(error) == "Task or process was interrupted"
    assert error.interrupt is interrupt
    assert isinstance(error, ThreadingException)


def test_interrupt_exception_of_a_signaled_interrupt() -> None:
    signal = InterruptSignal()
    signal.signal()
    error = InterruptException(signal.interrupt)
    assert error.interrupt is signal.interrupt
    assert str(error) == "Task or process was interrupted"


# -- AggregateException (API §3.7) -----------------------------------------------------------


def test_aggregate_message_and_exceptions_in_order() -> None:
    a, b, c = ValueError("a"), KeyError("b"), RuntimeError("c")
    aggregate = AggregateException([a, b, c])
    assert str(aggregate) == "One or more tasks failed"
    assert aggregate.exceptions == (a, b, c)
    assert isinstance(aggregate.exceptions, tuple)


def test_aggregate_accepts_any_iterable_and_copies_it() -> None:
    a, b = ValueError("a"), ValueError("b")
    source = [a, b]
    aggregate = AggregateException(source)
    source.append(ValueError("later"))
    assert aggregate.exceptions == (a, b)
    assert AggregateException(e for e in (a, b)).exceptions == (a, b)
    assert AggregateException(()).exceptions == ()
    assert str(AggregateException([])) == "One or more tasks failed"


def test_aggregate_handle_all_handled_returns_none() -> None:
    errors = [ValueError("a"), ValueError("b")]
    seen: list[Exception] = []

    def predicate(error: Exception) -> bool:
        seen.append(error)
        return True

    AggregateException(errors).handle(predicate)  # returns without raising
    assert seen == errors


def test_aggregate_handle_raises_new_aggregate_of_unhandled_in_order() -> None:
    a, b, c, d = ValueError("a"), KeyError("b"), ValueError("c"), KeyError("d")
    aggregate = AggregateException([a, b, c, d])
    seen: list[Exception] = []

    def predicate(error: Exception) -> object:
        seen.append(error)
        return 1 if isinstance(error, ValueError) else 0  # truthy / falsy, not only bools

    with pytest.raises(AggregateException) as raised:
        aggregate.handle(predicate)
    assert raised.value is not aggregate
    assert raised.value.exceptions == (b, d)
    assert seen == [a, b, c, d]  # called on every exception, in order
    assert aggregate.exceptions == (a, b, c, d)  # the original is untouched


def test_aggregate_handle_on_empty_aggregate_does_nothing() -> None:
    AggregateException([]).handle(lambda error: False)  # nothing to report: no raise


def test_flatten_of_empty_aggregate_is_itself() -> None:
    aggregate = AggregateException([])
    assert aggregate.flatten() is aggregate


def test_flatten_with_several_exceptions_is_itself() -> None:
    aggregate = AggregateException([ValueError("a"), AggregateException([KeyError("b")])])
    assert aggregate.flatten() is aggregate


def test_flatten_with_one_plain_exception_returns_it() -> None:
    error = ValueError("only")
    assert AggregateException([error]).flatten() is error


def test_flatten_unwraps_nested_single_aggregates() -> None:
    error = KeyError("deep")
    nested = AggregateException([AggregateException([AggregateException([error])])])
    assert nested.flatten() is error


def test_flatten_stops_at_a_nested_aggregate_with_several_exceptions() -> None:
    several = AggregateException([ValueError("a"), ValueError("b")])
    assert AggregateException([AggregateException([several])]).flatten() is several


def test_flatten_stops_at_a_nested_empty_aggregate() -> None:
    empty = AggregateException([])
    assert AggregateException([empty]).flatten() is empty


def test_aggregate_pickles_and_has_a_useful_repr() -> None:
    aggregate = AggregateException([ValueError("a")])
    assert "ValueError('a')" in repr(aggregate)
    skip_unless_public(AggregateException)
    copy = pickle.loads(pickle.dumps(aggregate))
    assert type(copy) is AggregateException
    assert [str(e) for e in copy.exceptions] == ["a"]
