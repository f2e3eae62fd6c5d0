"""Tests for runtime.threading._protocols: the PIterator and PIterable protocols."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.threading import InterruptException, InterruptSignal
from runtime.threading._interrupts import Interrupt
from runtime.threading._protocols import PIterable, PIterator
from runtime.threading.concurrent import Queue


class Countdown(PIterator[int]):
    """An explicit subclass: inherits the default ``__next__`` and ``__iter__``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls: list[tuple[float | None, Interrupt | None]] = []

    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> int:
        self.calls.append((timeout, interrupt))
        if interrupt is not None:
            interrupt.raise_if_signaled()
        if self.n == 0:
            raise StopIteration
        self.n -= 1
        return self.n


class Source(PIterable[int]):
    """An explicit subclass: inherits the default ``drain``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.iterators: list[Countdown] = []

    def __iter__(self) -> Countdown:
        iterator = Countdown(self.n)
        self.iterators.append(iterator)
        return iterator


class Structural:
    """Implements PIterator without subclassing it."""

    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> int:
        raise StopIteration

    def __next__(self) -> int:
        return self.next()

    def __iter__(self) -> Structural:
        return self


class NoNext:
    def __next__(self) -> int:
        raise StopIteration

    def __iter__(self) -> NoNext:
        return self


class NoIter:
    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> int:
        raise StopIteration

    def __next__(self) -> int:
        raise StopIteration


class DrainableStructural:
    def __iter__(self) -> Structural:
        return Structural()

    def drain(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> None:
        pass


def test_default_next_calls_next_and_iter_returns_self() -> None:
    countdown = Countdown(3)
    assert iter(countdown) is countdown
    assert list(countdown) == [2, 1, 0]
    assert countdown.calls == [(None, None)] * 4


def test_pi_iterator_isinstance_is_structural() -> None:
    assert isinstance(Countdown(1), PIterator)
    assert isinstance(Structural(), PIterator)
    assert not isinstance(NoNext(), PIterator)
    assert not isinstance(NoIter(), PIterator)
    assert not isinstance(iter([1, 2]), PIterator)
    assert isinstance(iter(Queue[int]()), PIterator)


def test_pi_iterable_isinstance_is_structural() -> None:
    assert isinstance(Source(1), PIterable)
    assert isinstance(DrainableStructural(), PIterable)
    assert not isinstance([1, 2, 3], PIterable)
    assert not isinstance(Queue[int](), PIterable)  # a Queue has no drain


def test_drain_takes_one_iterator_and_passes_the_arguments_on() -> None:
    source = Source(3)
    interrupt = InterruptSignal().interrupt
    source.drain(0.5, interrupt)
    assert len(source.iterators) == 1
    assert source.iterators[0].calls == [(0.5, interrupt)] * 4


def test_drain_defaults() -> None:
    source = Source(2)
    source.drain()
    assert source.iterators[0].calls == [(None, None)] * 3


def test_drain_propagates_the_interrupt() -> None:
    signal = InterruptSignal()
    signal.signal()
    with pytest.raises(InterruptException):
        Source(5).drain(interrupt=signal.interrupt)


def test_drain_propagates_other_errors() -> None:
    class Failing(PIterable[int]):
        def __iter__(self) -> PIterator[int]:
            class Broken(PIterator[int]):
                def next(
                    self, timeout: float | None = None, interrupt: Interrupt | None = None
                ) -> int:
                    raise KeyError("source failed")

            return Broken()

    with pytest.raises(KeyError, match="source failed"):
        Failing().drain()


def test_protocols_are_generic_and_covariant() -> None:
    protocols: tuple[Any, ...] = (PIterator, PIterable)
    for protocol in protocols:
        (parameter,) = protocol.__parameters__
        assert parameter.__covariant__
        alias: Any = protocol[int]
        assert alias.__origin__ is protocol


def test_protocols_are_presented_in_the_pipeline_module() -> None:
    assert PIterator.__module__ == "runtime.threading.parallel.pipeline"
    assert PIterable.__module__ == "runtime.threading.parallel.pipeline"


def test_explicit_subclasses_have_no_instance_dict_by_default_from_the_protocol() -> None:
    # The protocols declare empty __slots__, so a slotted implementation stays slotted.
    class Slotted(PIterator[int]):
        __slots__ = ()

        def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> int:
            raise StopIteration

    assert not hasattr(Slotted(), "__dict__")
