"""The iteration protocols of interruptible, timed iteration: ``PIterator`` and ``PIterable``.

They are public in ``runtime.threading.parallel.pipeline`` but defined here, below the
concurrent queue, because ``Queue.Iterator`` implements :class:`PIterator`. Both are
runtime-checkable structural protocols with default methods that explicit subclasses inherit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

from ._interrupts import Interrupt

__all__ = ("PIterable", "PIterator")

T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class PIterator(Iterator[T_co], Protocol[T_co]):
    """An iterator whose steps can be bounded by a timeout and cancelled by an interrupt.

    ``isinstance(x, PIterator)`` checks structurally for ``next``, ``__next__`` and
    ``__iter__``.
    """

    __slots__ = ()

    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> T_co:
        """Return the next item, blocking at most ``timeout`` seconds for it.

        Raises:
            StopIteration: nothing arrived within ``timeout``, or the source is exhausted.
            InterruptException: ``interrupt`` is or becomes signaled.
        """
        ...

    def __next__(self) -> T_co:
        """Return ``self.next()``: the next item, waiting as the iterator's default does."""
        return self.next()

    def __iter__(self) -> PIterator[T_co]:
        """Return the iterator itself."""
        return self


@runtime_checkable
class PIterable(Iterable[T_co], Protocol[T_co]):
    """An iterable whose iterators are :class:`PIterator` objects and that can be drained.

    ``isinstance(x, PIterable)`` checks structurally for ``__iter__`` and ``drain``; a plain
    list is not a ``PIterable``.
    """

    __slots__ = ()

    def __iter__(self) -> PIterator[T_co]:
        """Return a new :class:`PIterator` over the items."""
        ...

    def drain(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> None:
        """Consume and discard every remaining item.

        Takes one iterator and calls its ``next(timeout, interrupt)`` until ``StopIteration``:
        ``timeout`` bounds each wait for the next item, not the whole drain.

        Raises:
            InterruptException: ``interrupt`` is or becomes signaled.
            Exception: any other error of the iterator propagates (for example a failure
                ``AggregateException``).
        """
        iterator = iter(self)
        while True:
            try:
                iterator.next(timeout, interrupt)
            except StopIteration:
                return


for _cls in (PIterator, PIterable):
    _cls.__module__ = "runtime.threading.parallel.pipeline"
del _cls
