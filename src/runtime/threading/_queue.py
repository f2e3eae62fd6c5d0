"""The concurrent double-ended FIFO queue, :class:`Queue` (``runtime.threading.concurrent``).

One lock per queue, a library :class:`~runtime.threading.Lock` (re-entrant), guards the
deque; one :class:`threading.Condition` built on that same lock parks blocked
:meth:`Queue.dequeue` calls. The lock is public as :attr:`Queue.synchronization_lock`, and
because the condition uses it (not a lock of its own), holding it really excludes every
queue operation. Acquiring it in the queue's own operations goes through the library lock
too, so acquirers of ``synchronization_lock`` are woken whenever the queue lets it go.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from time import monotonic as _monotonic
from typing import Generic, TypeVar, final

from ._blocking import cond_wait, deadline_for, subscribe_notify, unsubscribe_notify
from ._interrupts import Interrupt, raise_if_interrupted
from ._locks import Lock
from ._protocols import PIterator

__all__ = ("Queue",)

T = TypeVar("T")
# The item type of Queue.Iterator (a nested class cannot reuse the outer class's variable).
U = TypeVar("U")


class Queue(Generic[T]):
    """A thread-safe, unbounded double-ended FIFO queue.

    ``enqueue`` appends at the tail, ``requeue`` puts an item back at the head; each wakes one
    blocked :meth:`dequeue`. Iterating consumes: each step is a :meth:`try_dequeue`, and
    iteration stops as soon as the queue is empty, so ``tuple(queue)`` drains it.

    The queue defines no ``__len__`` and no ``__bool__``: an instance is always truthy.
    """

    __slots__ = ("__weakref__", "_cond", "_items", "_lock")

    def __init__(self) -> None:
        # The one lock of the queue: guards _items and the dequeuers parked on _cond.
        self._lock = Lock()
        # Built on the library lock itself (see LockBase's Condition protocol), so waiting
        # releases it, and re-acquires it, through the library lock.
        self._cond = threading.Condition(self._lock)  # type: ignore[arg-type]
        self._items: deque[T] = deque()

    @staticmethod
    def from_items(items: Iterable[T]) -> Queue[T]:
        """Return a new queue holding ``items`` in order (head first)."""
        queue: Queue[T] = Queue()
        queue._items.extend(items)
        return queue

    @property
    def synchronization_lock(self) -> Lock:
        """The queue's internal lock. While a thread holds it, no queue operation proceeds.

        A :meth:`dequeue` that has to wait releases it completely (every re-entrant level)
        for the duration of the wait, as ``threading.Condition`` does.
        """
        return self._lock

    # -- producers ---------------------------------------------------------------------------

    def enqueue(self, item: T) -> None:
        """Append ``item`` at the tail and wake one blocked :meth:`dequeue`."""
        cond = self._cond
        with cond:
            self._items.append(item)
            if cond._waiters:  # type: ignore[attr-defined]
                cond.notify(1)

    def requeue(self, item: T) -> None:
        """Put ``item`` at the head, so it is returned next, and wake one blocked dequeue.

        Meant for handing back an item a consumer could not process.
        """
        cond = self._cond
        with cond:
            self._items.appendleft(item)
            if cond._waiters:  # type: ignore[attr-defined]
                cond.notify(1)

    # -- consumers ---------------------------------------------------------------------------

    def try_dequeue(
        self, timeout: float | None = None, interrupt: Interrupt | None = None
    ) -> tuple[T | None, bool]:
        """Remove and return the head if there is one. Never waits for an item.

        ``timeout`` bounds only the acquisition of the internal lock, which is immediate
        unless another thread holds :attr:`synchronization_lock`.

        Returns:
            ``(item, True)`` if the queue held an item (falsy items too), otherwise
            ``(None, False)``, also when the lock could not be acquired in time.

        Raises:
            ValueError: ``timeout`` is negative.
            InterruptException: ``interrupt`` is or becomes signaled; nothing is removed.
        """
        lock = self._lock
        if not lock.acquire(timeout, interrupt):
            return None, False
        try:
            items = self._items
            if items:
                return items.popleft(), True
            return None, False
        finally:
            lock.release()

    def dequeue(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> T:
        """Remove and return the head, blocking while the queue is empty.

        Sleeps (no busy waiting) until an enqueue, a requeue, the interrupt or the deadline;
        ``timeout`` bounds the whole call, lock acquisition included. On a worker thread the
        wait cooperates with the scheduler.

        Raises:
            TimeoutError: the queue stayed empty for ``timeout`` seconds (at once for ``0``).
            ValueError: ``timeout`` is negative.
            InterruptException: ``interrupt`` is or becomes signaled; nothing is removed.
        """
        deadline = deadline_for(timeout)
        raise_if_interrupted(interrupt)
        lock = self._lock
        if not lock._acquire_until(deadline, interrupt):
            raise TimeoutError("Queue.dequeue timed out")
        try:
            items = self._items
            if items:
                return items.popleft()
            if timeout == 0:
                raise TimeoutError("Queue.dequeue timed out: the queue is empty")
            return self._wait_for_item(deadline, interrupt)
        finally:
            lock.release()

    def _wait_for_item(self, deadline: float | None, interrupt: Interrupt | None) -> T:
        """Wait on the condition for an item. Called with the lock held, queue empty."""
        cond = self._cond
        items = self._items
        handle = subscribe_notify(interrupt, cond)
        got = False
        try:
            while True:
                # Re-checked under the lock after subscribing: no signal is lost in between.
                if interrupt is not None and interrupt.is_signaled:
                    interrupt.raise_if_signaled()
                if items:
                    got = True
                    return items.popleft()
                if deadline is not None and _monotonic() >= deadline:
                    raise TimeoutError("Queue.dequeue timed out")
                cond_wait(cond, deadline)
        finally:
            unsubscribe_notify(interrupt, handle)
            if not got and items:
                # An enqueue's notification may have been absorbed by this leaving waiter.
                cond.notify(1)

    # -- inspection ----------------------------------------------------------------------------

    def remove(self, item: T) -> bool:
        """Unlink the first entry that *is* ``item`` (identity, not equality), atomically.

        Other entries keep their order. Used by the scheduler to take a prioritised task out
        of its queue.

        Returns:
            ``True`` if an entry was removed.
        """
        with self._cond:
            items = self._items
            for index, entry in enumerate(items):
                if entry is item:
                    del items[index]
                    return True
            return False

    def _snapshot(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def __contains__(self, item: object) -> bool:
        """Whether an entry equals ``item``. Non-destructive: tested on a snapshot."""
        return item in self._snapshot()  # compared outside the lock: == may run user code

    def __iter__(self) -> Queue.Iterator[T]:
        """Return a consuming iterator: each step dequeues, and it stops when empty."""
        return Queue.Iterator(self)

    def __repr__(self) -> str:
        """``"(a, b, c)"``: the ``str()`` of the items, head to tail."""
        return "(" + ", ".join(str(item) for item in self._snapshot()) + ")"

    @final
    class Iterator(PIterator[U]):
        """The consuming iterator of a :class:`Queue`.

        Each step is a :meth:`Queue.try_dequeue`: it never waits for an item, and it ends the
        iteration (``StopIteration``) as soon as the queue is empty.
        """

        __slots__ = ("_queue",)

        def __init__(self, queue: Queue[U]) -> None:
            if not isinstance(queue, Queue):
                raise TypeError(f"'queue' must be a Queue, not {type(queue).__name__}")
            self._queue = queue

        def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> U:
            """Dequeue the head without waiting for one (``timeout`` bounds the lock only).

            Raises:
                StopIteration: the queue is empty.
                InterruptException: ``interrupt`` is or becomes signaled.
            """
            item, ok = self._queue.try_dequeue(timeout, interrupt)
            if not ok:
                raise StopIteration
            return item  # type: ignore[return-value]

        def __next__(self) -> U:
            return self.next()

        def __iter__(self) -> Queue.Iterator[U]:
            return self


Queue.__module__ = "runtime.threading.concurrent"
Queue.Iterator.__module__ = "runtime.threading.concurrent"
