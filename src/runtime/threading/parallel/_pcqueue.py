"""The producer/consumer queue: :class:`ProducerConsumerQueue` and its iterator.

Design (SEMANTICS §9):

* One ``collections.deque`` buffer, one lock and two conditions sharing it: ``_not_empty``
  for blocked consumers and, with a capacity, ``_not_full`` for blocked producers. The state
  (open, complete, failed) changes only under the lock.
* **Producers take the lock.** ``put`` checks the state and appends under it, which is what
  makes ``put`` linearizable with ``complete()`` and ``fail()``: an item is either appended
  before the transition (and delivered, or discarded by ``fail``) or rejected with
  ``QueueCompletedError``.
* **Consumers try lock-free first.** ``deque.popleft()`` is atomic, so ``take``, ``next`` and
  iteration first pop without the lock and take the lock only when the buffer looks empty.
  ``fail()`` clears the buffer under the lock and nothing is appended after it, so a lock-free
  pop either precedes the failure or finds the buffer empty: "the failure takes precedence
  over buffered items" stays linearizable.
* **No lock convoys.** A thread blocked inside a builtin ``lock.acquire()`` is handed the lock
  by ``release()`` while it does not hold the GIL yet; the releaser's next ``put`` then
  blocks in turn, and from then on every put costs two context switches. So a contended
  acquirer never blocks inside the builtin: it parks in a gate (:class:`_QueueLock`) and
  retries once it runs again, and every release wakes one parked acquirer.
* **Waiters are small objects in a deque**: the conditions' waiter deques (and the gate) hold
  one lock per blocked thread, released by whoever makes progress possible (a put, a take, a
  completion, an interrupt). A put wakes one consumer only when one is waiting; completion
  and failure wake all. An asynchronous consumer could later register its own waiter object
  with the same ``release()`` interface in that deque without a redesign.
* **Linked queues** (``ProducerConsumerQueue(src.get_iterator())``) have no buffer and no
  thread: they take from the source, on demand, in the consuming thread, using the caller's
  single deadline. Chains collapse to their first queue, so a take through ``q0 → … → qn``
  costs the same as a take on ``q0``, completion and failure propagate by construction, and
  an abandoned linked queue costs nothing.

The fast paths. Under the GIL a single-producer, single-consumer run costs the producer's CPU
time per item plus the consumer's, so every bytecode of ``put`` and of the iterator's
``__next__`` counts (see the "ProducerConsumerQueue" section of benchmarks/README.md for the
measurements). What is kept, and why:

* **The put count rides in the lock token.** In token mode (:class:`_QueueLock`) the token is
  the number of items put so far: ``put`` pops ``n`` and releases with ``n + 1``, which is
  cheaper than a separate ``self._puts += 1``; ``statistics()`` reads it under the lock.
* **One flag after the fast put.** Waking a parked consumer, waking an acquirer parked in the
  lock's gate and re-signaling a consumed ``wait_event`` are all announced by one attribute,
  ``_todo``, which ``put`` reads once, after releasing the token; :meth:`_after_put
  <ProducerConsumerQueue._after_put>` does the work. Whoever creates such work sets the flag
  after making the work visible; ``_after_put`` clears it before looking, so nothing is lost
  (each case is argued where it is set). The wait event is a private
  :class:`AutoClearEvent` subclass whose consumption sets the flag, so puts stop touching it
  while it stays signaled, also for queues that linked queues draw from.
* **Bounded queues share the path** after one ``capacity`` check: a separate locked path
  (an exception or a call more) measured slower, and the bounded scenario is far ahead of
  ``queue.Queue`` anyway. Iterating over a bounded queue uses an iterator whose
  ``__next__`` checks for blocked producers itself, one Python call per item fewer.
* **Consumers keep the bound ``popleft``** on the iterator and on the queue: ``__next__`` and
  ``take(0)`` are one attribute load and one C call when an item is there.
* **Contention is rare**: parking in the gate happens a handful of times per 400,000 items
  even with four producers and four consumers, because the GIL is almost never handed over
  between the token's pop and its append; the gate stays for correctness, not speed.

Every blocking wait goes through :func:`~runtime.threading._blocking.cond_wait` or
:func:`~runtime.threading._blocking.park`, so it cooperates with the task scheduler;
interrupts wake waiters by notification (:func:`~runtime.threading._blocking.subscribe_notify`),
never by polling.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from time import monotonic
from types import TracebackType
from typing import Any, Final, Generic, Literal, NamedTuple, TypeVar, cast, final

from .._blocking import cond_wait, deadline_for, park, subscribe_notify, unsubscribe_notify
from .._errors import QueueCompletedError, QueueLinkedToAnotherQueueError
from .._events import AutoClearEvent, Event
from .._interrupts import Interrupt, raise_if_interrupted
from .._locks import Lock, LockBase
from .._protocols import PIterable, PIterator

__all__ = (
    "ProducerConsumerQueue",
    "ProducerConsumerQueueIterator",
    "ProducerConsumerQueueStatistics",
)

T = TypeVar("T")

_allocate_lock = threading.Lock

# Queue states. COMPLETE and FAILED are final; FAILED implies complete.
_OPEN: Final = 0
_COMPLETE: Final = 1
_FAILED: Final = 2
_STATE_NAMES: Final = ("open", "complete", "failed")

@final
class _NoItem:
    """Why a take produced no item (returned internally instead of raising)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"<no item: {self.message}>"


# The queue is complete (or, for a linked queue, its source is) and empty: permanent.
_DRAINED: Final = _NoItem("the queue is complete and empty")
# The deadline passed while the queue was open and empty.
_TIMED_OUT: Final = _NoItem("no item arrived within the timeout")


@final
class _HintEvent(AutoClearEvent):
    """The ``wait_event`` of a queue: an :class:`AutoClearEvent` that tells puts to re-signal.

    Puts skip signaling an event that is still signaled (see
    :meth:`ProducerConsumerQueue._signal_hints`), and the fast path of ``put`` does not even
    read the event: it reads only the queue's ``_todo`` flag. So whatever clears this event
    (a wait consuming its signal, ``clear()``) sets ``_todo`` on the queue whose puts signal
    it, *after* clearing the flag: a put that reads ``_todo`` afterwards signals the event
    again, and one that read it before added its item before the signal was consumed, so the
    observer that consumed it finds that item when it looks at the queue.

    It holds that queue weakly (no reference cycle; an event that outlives its queue is
    never signaled again anyway). For a linked queue, that is the first queue of its chain.
    """

    __slots__ = ("_queue_ref",)

    def __init__(self, queue_ref: weakref.ref[ProducerConsumerQueue[Any]]) -> None:
        super().__init__(purpose="PRODUCER_CONSUMER_QUEUE_NOTIFY")
        self._queue_ref = queue_ref

    def _consume_locked(self) -> None:
        self._event._flag = False  # type: ignore[attr-defined]
        self._mark()

    def clear(self) -> None:
        """Reset the flag; the next put signals the event again."""
        super().clear()
        self._mark()

    def _mark(self) -> None:
        queue = self._queue_ref()
        if queue is not None:
            queue._todo = True

    def __repr__(self) -> str:
        state = "signaled" if self.is_signaled else "clear"
        return f"<AutoClearEvent {self.purpose!r} {state}>"


class ProducerConsumerQueueStatistics(NamedTuple):
    """A snapshot of a queue, returned by :meth:`ProducerConsumerQueue.statistics`.

    For a linked queue, which has no buffer of its own, the counts describe the source queue
    it draws from; ``capacity`` and ``state`` are the linked queue's own.
    """

    #: Items buffered now.
    buffered_items: int
    #: The capacity, or ``None`` when unbounded.
    capacity: int | None
    #: Consumers blocked in ``take``/``try_take``/``next``/iteration.
    consumers_waiting: int
    #: Producers blocked in ``put``/``put_many`` because the queue is full.
    producers_waiting: int
    #: Items accepted so far (the initial ``data`` included).
    items_put: int
    #: Items delivered to consumers so far.
    items_taken: int
    #: ``"open"``, ``"complete"`` or ``"failed"``.
    state: Literal["open", "complete", "failed"]


@final
class _QueueLock:
    """The queue's lock: mutual exclusion over the buffer and the state.

    It has two modes, switched once and for good:

    * **Token mode** (open, unlinked queues): the lock is a deque holding one token while
      free; ``token.pop()`` acquires (atomically, in C, with no argument parsing) and
      ``token.append(...)`` releases. The token is an int, the number of items put so far:
      ``put``'s fast path pops ``n`` and releases with ``n + 1``, so counting costs no
      attribute write; any other holder (:meth:`acquire`) keeps the popped count in
      :attr:`held`, may add to it, and puts it back on :meth:`release`.
    * **Builtin mode** (after :meth:`to_builtin`: on completion or failure, when
      ``synchronization_lock`` is handed out, and from the start for linked queues and
      queues built from an iterable): the lock is the builtin ``lock``, or, once ``sync``
      is set, the library :class:`Lock` wrapping it, so that threads waiting in its
      ``acquire()`` are woken too. The count stays in :attr:`held` for good. The token is
      never returned, so ``put``'s fast path always fails over to the slow path.

    A contended acquirer never blocks inside a builtin: under the GIL, a thread blocked in
    ``lock.acquire()`` is handed the lock by ``release()`` while it does not hold the GIL
    yet, so the releaser's next ``put`` blocks in turn, and from then on every put costs two
    context switches (a lock convoy). Instead it queues a waiter lock in ``gate``, sets the
    queue's ``_todo`` flag (``put``'s fast path releases the token and then reads only that
    flag), tries once more, and parks on the waiter (cooperating with the scheduler) until a
    release pops and releases it; then it retries. Every :meth:`release`, and every fast
    ``put`` that finds ``_todo`` set, wakes one parked acquirer, if any; a woken acquirer
    that gets the lock wakes the next one on its own release, and one that does not parks
    again the same way.

    It implements the lock protocol of :class:`threading.Condition` (``_release_save``,
    ``_acquire_restore``, ``_is_owned``). It is not re-entrant.
    """

    __slots__ = ("gate", "held", "lock", "owner", "sync", "token", "tokened")

    def __init__(self, tokened: bool, owner: weakref.ref[Any]) -> None:
        self.lock = _allocate_lock()
        # One token (the put count) while the lock is free in token mode; empty otherwise,
        # for good in builtin mode.
        self.token: deque[int] = deque([0] if tokened else ())
        # The put count, valid while the lock is held through acquire() (and for good in
        # builtin mode); read and written only by the holder.
        self.held = 0
        # Which mode the lock is in. Switched to False only by a thread holding the token,
        # which then holds the builtin instead: whoever holds the lock knows which it holds.
        self.tokened = tokened
        # Waiter locks of parked acquirers. Appended by acquirers and popped by releasers
        # without any lock (deque operations are atomic): an acquirer appends (and sets the
        # queue's _todo flag) before its last try, so a release after that try finds it.
        self.gate: deque[Any] = deque()
        self.sync: Lock | None = None
        # The queue, whose _todo flag a parking acquirer sets (weakly: no reference cycle).
        self.owner = owner

    def acquire(self) -> bool:
        """Acquire, waiting with no limit (cooperatively when contended)."""
        if self.tokened:
            try:
                self.held = self.token.pop()
                return True
            except IndexError:
                pass
        elif self.sync is None:
            if self.lock.acquire(False):
                return True
        else:
            return self.sync.acquire()
        return self._acquire_contended()

    def _acquire_contended(self) -> bool:
        gate = self.gate
        while True:
            waiter = _allocate_lock()
            waiter.acquire()
            gate.append(waiter)
            owner = self.owner()
            if owner is not None:
                owner._todo = True  # a fast put releasing from now on wakes the gate
            if self._try():
                try:
                    gate.remove(waiter)
                except ValueError:
                    # A release popped this waiter: the wake-up it spent is passed on by
                    # this thread's own release, which pops the next parked acquirer.
                    pass
                return True
            try:
                park(waiter, None)
            except BaseException:
                try:
                    gate.remove(waiter)
                except ValueError:
                    self.wake()  # popped meanwhile: pass on the wake-up it spent
                raise
            sync = self.sync
            if sync is not None:
                # Handed out meanwhile: its own acquire() waits and is woken properly.
                return sync.acquire()

    def _try(self) -> bool:
        if self.tokened:
            try:
                self.held = self.token.pop()
            except IndexError:
                return False
            return True
        if self.sync is not None:
            return False  # acquired through the library lock, which knows how to wait
        return bool(self.lock.acquire(False))

    def release(self) -> None:
        """Release and wake one parked acquirer."""
        if self.tokened:
            self.token.append(self.held)
        elif self.sync is None:
            self.lock.release()
        else:
            self.sync.release()
        if self.gate:
            self.wake()

    def wake(self) -> None:
        """Wake one parked acquirer, if any is still parked."""
        try:
            waiter = self.gate.popleft()
        except IndexError:
            return
        waiter.release()

    def to_builtin(self) -> None:
        """Switch to builtin mode for good. Called with the lock held; it stays held."""
        if self.tokened:
            # Nothing takes the builtin in token mode, so it is free. The count popped by
            # acquire() stays in held.
            self.lock.acquire(False)
            self.tokened = False

    # -- the lock protocol of threading.Condition -------------------------------------------

    def _release_save(self) -> None:
        self.release()

    def _acquire_restore(self, state: None) -> None:
        self.acquire()

    def _is_owned(self) -> bool:
        return not self.token if self.tokened else self.lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@final
class _RoomPop:
    """The lock-free pop of a bounded queue: pop, then wake one blocked producer if any.

    It holds the buffer, the ``_not_full`` condition and the queue lock but not the queue,
    so the queue's fast-path attribute creates no reference cycle.
    """

    __slots__ = ("_cond", "_popleft", "_qlock", "waiting")

    def __init__(
        self, buffer: deque[Any], not_full: threading.Condition, qlock: _QueueLock
    ) -> None:
        self._popleft = buffer.popleft
        self._cond = not_full
        self._qlock = qlock
        # Producers blocked on a full buffer, notified or not. Written under the queue lock;
        # read here without it, which is safe: a producer increments it *before* its last
        # check for room, so a pop that this check missed sees the count and wakes it.
        self.waiting = 0

    def __call__(self) -> Any:
        item = self._popleft()  # IndexError propagates: the buffer is empty
        if self.waiting:
            self.wake()
        return item

    def wake(self) -> None:
        """Wake one blocked producer; its waiter is released after the queue lock.

        Skipped when the lock is free and no producer is parked: then every counted producer
        has been notified already and re-checks for room when it runs, and one that had
        checked for room before the pop holds the lock until it is parked. (The lock is
        read first: a producer parked after a free-lock reading checked for room after the
        pop.) This keeps a burst of pops from taking the lock once each while a notified
        producer waits for the GIL.
        """
        cond = self._cond
        waiters: deque[Any] = cond._waiters  # type: ignore[attr-defined]
        if not (self._qlock._is_owned() or waiters):
            return
        cond.acquire()
        try:
            waiter = waiters.popleft() if waiters else None
        finally:
            cond.release()
        if waiter is not None:
            waiter.release()


def _check_error(error: object) -> None:
    if not isinstance(error, BaseException):
        raise TypeError(f"'error' must be an exception instance, not {type(error).__name__}")


class ProducerConsumerQueue(Generic[T]):
    """A blocking multi-producer, multi-consumer work queue with an explicit end.

    Producers :meth:`put` items and finally :meth:`complete` the queue (or :meth:`fail` it);
    consumers :meth:`take`/:meth:`try_take` items or iterate over :meth:`get_iterator`. Each
    item goes to exactly one consumer, in insertion order.

    Args:
        data: ``None`` for an empty, open queue. A :class:`ProducerConsumerQueueIterator`
            makes a *linked* queue, which delivers the items of that iterator's queue (pulled
            on demand in the consuming thread), completes when it is complete and drained,
            and fails with its error. Any other iterable is consumed at once, in order, into
            the queue, which is then complete.
        capacity: at most this many items are buffered; ``put`` blocks while the buffer is
            full. ``None`` (the default) means unbounded. The initial ``data`` and linked
            delivery are not limited by it.

    Raises:
        TypeError: ``data`` is not iterable, or ``capacity`` is not an int.
        ValueError: ``capacity`` is less than 1.
    """

    __slots__ = (
        "__weakref__",
        "_buf",
        "_capacity",
        "_cwaiters",
        "_cwaiting",
        "_discarded",
        "_downstream",
        "_error",
        "_error_tb",
        "_event",
        "_gate",
        "_not_empty",
        "_not_full",
        "_popleft",
        "_qlock",
        "_room",
        "_root",
        "_source",
        "_state",
        "_todo",
        "_token",
    )

    def __init__(self, data: Iterable[T] | None = None, *, capacity: int | None = None) -> None:
        if capacity is not None:
            if capacity.__class__ is bool or not isinstance(capacity, int):
                raise TypeError(
                    f"'capacity' must be an int or None, not {type(capacity).__name__}"
                )
            if capacity < 1:
                raise ValueError("'capacity' must be at least 1")
        # The lock guards _state, _error, _error_tb, _discarded, _cwaiting, _downstream, the
        # put count (in the token or qlock.held, see _QueueLock), every append to _buf and the
        # clearing of _buf by fail(), and the waiters of both conditions. Lock-free pops from
        # _buf happen outside it. put()'s fast path uses its token directly.
        self_ref = weakref.ref(self)
        qlock = _QueueLock(data is None, self_ref)
        self._qlock = qlock
        self._token = qlock.token
        self._gate = qlock.gate
        buf: deque[T] = deque()
        self._buf = buf
        # Consumers blocked on an empty buffer; puts pop waiters from _cwaiters.
        self._not_empty = threading.Condition(qlock)  # type: ignore[arg-type]
        self._cwaiters: deque[Any] = self._not_empty._waiters  # type: ignore[attr-defined]
        self._cwaiting = 0
        self._capacity = capacity
        self._not_full: threading.Condition | None = None
        self._room: _RoomPop | None = None
        # The lock-free pop of consumers: the buffer's own, or one that wakes producers.
        self._popleft: Callable[[], T] = buf.popleft
        if capacity is not None:
            self._not_full = threading.Condition(qlock)  # type: ignore[arg-type]
            self._room = _RoomPop(buf, self._not_full, qlock)
            self._popleft = self._room
        self._state = _OPEN
        self._error: BaseException | None = None
        self._error_tb: TracebackType | None = None
        self._discarded = 0
        # Weak references to the wait events of linked queues drawing from this queue.
        self._downstream: tuple[weakref.ref[Event], ...] = ()
        self._root: ProducerConsumerQueue[T] | None = None
        self._source: ProducerConsumerQueueIterator[T] | None = None
        # The one thing put()'s fast path reads after releasing the lock: truthy whenever a
        # put may have more to do than append (see _after_put). Set, without the lock, by
        # whoever creates such work, *after* making it visible: a consumer about to park
        # (under the lock), an acquirer parking in the gate, a consumed or cleared wait
        # event, a linked queue added or dropped. Cleared only by _after_put, *before* it
        # looks for that work, so no setting is lost. Invariant: while a consumer is parked
        # and not yet notified, it is set (a consumer sets it under the lock just before
        # parking; _after_put sets it again under the lock if consumers stay parked), except
        # between an _after_put's clearing and its taking the lock, and that _after_put
        # then wakes a consumer for every item added meanwhile. It starts set: the wait
        # event starts clear, and the first put signals it.
        self._todo = True
        if data is None:
            self._event: AutoClearEvent = _HintEvent(self_ref)
        elif isinstance(data, ProducerConsumerQueueIterator):
            upstream = data._queue
            root = upstream if upstream._root is None else upstream._root
            self._root = root
            self._source = data
            # Takes go to the first queue of the chain, and so does its fast pop. Its puts
            # signal this queue's wait event too.
            self._popleft = root._popleft
            self._event = _HintEvent(weakref.ref(root))
            root._add_downstream(self._event)
        else:
            self._event = _HintEvent(self_ref)
            try:
                items = iter(data)
            except TypeError:
                raise TypeError(
                    f"'data' must be an iterable or None, not {type(data).__name__}"
                ) from None
            buf.extend(items)
            qlock.held = len(buf)
            self._state = _COMPLETE
            self._event.signal()

    # -- properties ------------------------------------------------------------------------

    @property
    def is_complete(self) -> bool:
        """Whether the queue is complete (also when failed).

        A linked queue is complete once its source is complete and drained, or failed.
        """
        root = self._root
        if root is None:
            return self._state != _OPEN
        state = root._state
        return state == _FAILED or (state == _COMPLETE and not root._buf)

    @property
    def is_failed(self) -> bool:
        """Whether the queue has failed (for a linked queue: whether its source has)."""
        root = self._root
        return (self if root is None else root)._state == _FAILED

    @property
    def is_async(self) -> bool:
        """Whether the queue is linked to (consumes from) another queue's iterator."""
        return self._root is not None

    @property
    def capacity(self) -> int | None:
        """The maximum number of buffered items, or ``None`` when unbounded (extension)."""
        return self._capacity

    @property
    def wait_event(self) -> Event:
        """An :class:`AutoClearEvent` signaled when items are added and on completion or failure.

        It is a hint for outside observers only: the queue's own takes never wait on it, so
        consuming its signal can never make a consumer miss a wake-up. An observer that wakes
        on it should then take until the queue is empty (a put skips re-signaling an event
        that is still signaled). A linked queue's event is signaled when its source receives
        items or ends; a freshly created linked queue's event is not signaled.
        """
        return self._event

    @property
    def synchronization_lock(self) -> Lock:
        """The queue's internal lock, as a library :class:`Lock` (not re-entrant).

        Holding it holds back producers, state changes and blocked consumers, not the
        lock-free pops of consumers that find an item. While holding it, do not call a
        method of this queue that takes the lock (``put``, ``put_many``, ``complete``,
        ``fail``, ``fail_if_not_complete``, ``statistics``, or a take that finds the queue
        empty): the lock is not re-entrant, so the call would wait for ever.

        The first access switches the queue for good to taking its lock through the library
        lock, so that threads waiting in ``synchronization_lock.acquire()`` are woken:
        producers then leave their fast path and each ``put`` costs a little more.
        """
        qlock = self._qlock
        sync = qlock.sync
        if sync is not None:
            return sync
        qlock.acquire()
        try:
            sync = qlock.sync
            if sync is None:
                # A Lock around *this* queue's builtin: Lock() would create its own, so the
                # instance is initialised through its base class, which wraps a given one.
                qlock.to_builtin()
                sync = Lock.__new__(Lock)
                LockBase.__init__(sync, qlock.lock)
                qlock.sync = sync
        finally:
            qlock.release()
        return sync

    # -- producers -------------------------------------------------------------------------

    def put(
        self, item: T, *, timeout: float | None = None, interrupt: Interrupt | None = None
    ) -> None:
        """Append ``item`` (any value, ``None`` and other falsy values included).

        Without a capacity, never blocks (beyond the brief wait for the internal lock), and
        ``timeout`` and ``interrupt`` are ignored. With a capacity, blocks while the buffer
        is full: at most ``timeout`` seconds in total (``None``: no limit), cooperating with
        the scheduler. Wakes one blocked consumer.

        Args:
            item: the item to add.
            timeout: with a capacity, how long to wait for room at most.
            interrupt: with a capacity, an interrupt for this call (checked first).

        Raises:
            QueueLinkedToAnotherQueueError: the queue is linked (checked first).
            QueueCompletedError: the queue is complete or failed, or it completes or fails
                while this call waits for room.
            TimeoutError: with a capacity, no room within ``timeout``.
            InterruptException: with a capacity, ``interrupt`` is or becomes signaled.
            ValueError: with a capacity, ``timeout`` is negative.
        """
        token = self._token
        try:
            n = token.pop()  # the lock, in token mode, and the put count (see _QueueLock)
        except IndexError:
            # Contended, or not in token mode: complete, failed, linked or exposed.
            self._put_slow(item, timeout, interrupt)
            return
        if self._capacity is not None and (
            len(self._buf) >= self._capacity or timeout is not None or interrupt is not None
        ):
            # Full, or a timeout to validate or an interrupt to check first.
            self._release_token(n)
            self._put_slow(item, timeout, interrupt)
            return
        try:
            self._buf.append(item)
        except BaseException:  # MemoryError: nothing was added
            self._release_token(n)
            raise
        token.append(n + 1)
        if self._todo:
            self._after_put()

    def _release_token(self, count: int) -> None:
        """Release a token popped by ``put``'s fast path, putting back ``count`` unchanged."""
        qlock = self._qlock
        qlock.held = count
        qlock.release()

    def _after_put(self) -> None:
        """Do the extra work that ``_todo`` announces: wake consumers, an acquirer, hints.

        Called after an addition, outside the lock. ``_todo`` is cleared *first*, then every
        kind of work is looked for, so whatever sets it meanwhile is either found here or
        left set for a later put.

        * Consumers (looked for only if some are registered; a consumer registers before
          it parks): under the lock, where no put can append and no consumer can stand
          between its last look at the buffer and parking, one parked consumer is woken per
          buffered item, up to the number parked. Usually that is one consumer for this
          put's item; more only when a put read ``_todo`` between its clearing and this lock
          and so skipped its own wake-up (its item is counted here). If consumers stay
          parked, ``_todo`` is set again for the next put. Consumers notified but not yet
          running need nothing: if they park again, they set it again.
        * Acquirers parked in the gate: that lock's release wakes one (or, with no
          consumer registered, :meth:`_QueueLock.wake` does); a woken acquirer that gets
          the lock wakes the next on its own release, and one that does not parks again and
          sets ``_todo``.
        * Hints: :meth:`_signal_hints` signals every wait event that is clear.
        """
        self._todo = False
        if self._cwaiting:
            cwaiters = self._cwaiters
            waiter = None
            more: list[Any] = []
            qlock = self._qlock
            qlock.acquire()
            try:
                if cwaiters:
                    buffered = len(self._buf)
                    if buffered:
                        waiter = cwaiters.popleft()
                        if buffered > 1 and cwaiters:
                            for _ in range(min(buffered - 1, len(cwaiters))):
                                more.append(cwaiters.popleft())
                    if cwaiters:
                        self._todo = True
            finally:
                qlock.release()
            if waiter is not None:
                # Released after the queue lock, so the woken consumer does not wake into it.
                waiter.release()
                for waiter in more:
                    waiter.release()
        elif self._gate:
            self._qlock.wake()
        if self._downstream or not self._event._event._flag:  # type: ignore[attr-defined]
            self._signal_hints()

    def _put_slow(self, item: T, timeout: float | None, interrupt: Interrupt | None) -> None:
        if self._root is not None:
            raise QueueLinkedToAnotherQueueError
        deadline = None
        if self._capacity is not None:
            deadline = None if timeout is None else deadline_for(timeout)
            if interrupt is not None:
                raise_if_interrupted(interrupt)
        self._put_one(item, deadline, interrupt)

    def _put_one(self, item: T, deadline: float | None, interrupt: Interrupt | None) -> None:
        """Append under the lock; with a capacity, wait for room until ``deadline``."""
        qlock = self._qlock
        buf = self._buf
        capacity = self._capacity
        qlock.acquire()
        try:
            if self._state:
                raise QueueCompletedError
            if capacity is not None and len(buf) >= capacity:
                self._wait_for_room(capacity, deadline, interrupt)
            buf.append(item)
            qlock.held += 1
            waiter = self._cwaiters.popleft() if self._cwaiters else None
        finally:
            qlock.release()
        if waiter is not None:
            waiter.release()
        if self._todo:
            self._after_put()

    def _wait_for_room(
        self, capacity: int, deadline: float | None, interrupt: Interrupt | None
    ) -> None:
        """Block until the buffer has room. Called with the lock held; returns with it held."""
        if deadline is not None and deadline <= monotonic():
            raise TimeoutError("the queue is full")
        buf = self._buf
        cond = cast(threading.Condition, self._not_full)
        room = cast(_RoomPop, self._room)
        handle = subscribe_notify(interrupt, cond)
        room.waiting += 1
        try:
            while True:
                if interrupt is not None and interrupt.is_signaled:
                    if len(buf) < capacity and cond._waiters:  # type: ignore[attr-defined]
                        cond.notify()  # pass on a wake-up this producer may have absorbed
                    interrupt.raise_if_signaled()
                if self._state:
                    raise QueueCompletedError
                if len(buf) < capacity:
                    return
                if deadline is not None and deadline <= monotonic():
                    raise TimeoutError("the queue is full")
                cond_wait(cond, deadline)
        finally:
            room.waiting -= 1
            unsubscribe_notify(interrupt, handle)

    def put_many(
        self,
        items: Iterable[T],
        *,
        timeout: float | None = None,
        interrupt: Interrupt | None = None,
    ) -> None:
        """Append every item of ``items``, one by one, in order.

        The state is checked (as by :meth:`put`) before ``items`` is read. If reading
        ``items`` raises, the error propagates and the items added so far stay queued. With a
        capacity, each item may wait for room; ``timeout`` is one deadline for the whole call.

        Args:
            items: the items to add.
            timeout: with a capacity, how long the whole call may wait for room at most.
            interrupt: with a capacity, an interrupt for this call (checked first).

        Raises:
            QueueLinkedToAnotherQueueError: the queue is linked (checked first).
            QueueCompletedError: the queue is complete or failed; when it completes midway,
                at the first item that could not be added.
            TimeoutError: with a capacity, no room within ``timeout``.
            InterruptException: with a capacity, ``interrupt`` is or becomes signaled.
            ValueError: with a capacity, ``timeout`` is negative.
        """
        if self._root is not None:
            raise QueueLinkedToAnotherQueueError
        if self._capacity is not None:
            deadline = deadline_for(timeout)
            raise_if_interrupted(interrupt)
            if self._state:
                raise QueueCompletedError
            put_one = self._put_one
            for item in items:
                put_one(item, deadline, interrupt)
            return
        if self._state:
            raise QueueCompletedError
        if items.__class__ is list or items.__class__ is tuple:
            self._put_sequence(cast("list[T] | tuple[T, ...]", items))
            return
        put = self.put
        for item in items:
            put(item)

    def _put_sequence(self, items: list[T] | tuple[T, ...]) -> None:
        """Append a list or tuple in one step (reading it runs no user code)."""
        if not items:
            return
        waiters: list[Any] = []
        qlock = self._qlock
        qlock.acquire()
        try:
            if self._state:
                raise QueueCompletedError
            self._buf.extend(items)
            qlock.held += len(items)
            cwaiters = self._cwaiters
            for _ in range(min(len(items), len(cwaiters))):
                waiters.append(cwaiters.popleft())
        finally:
            qlock.release()
        for waiter in waiters:
            waiter.release()
        if self._todo:
            self._after_put()

    def complete(self) -> None:
        """Mark the queue complete: it accepts no more items; buffered items stay available.

        Wakes every blocked consumer and producer and signals :attr:`wait_event`.

        Raises:
            QueueLinkedToAnotherQueueError: the queue is linked (checked first).
            QueueCompletedError: the queue is already complete or failed.
        """
        if self._root is not None:
            raise QueueLinkedToAnotherQueueError
        qlock = self._qlock
        qlock.acquire()
        try:
            if self._state:
                raise QueueCompletedError
            self._state = _COMPLETE
            qlock.to_builtin()
            self._wake_all_locked()
        finally:
            qlock.release()
        self._signal_hints()

    def fail(self, error: Exception) -> None:
        """Mark the queue failed with ``error`` and discard every buffered item.

        Items not yet taken are never delivered: the queue drops its references to them at
        once. From then on every take raises ``error`` itself, with the traceback it had
        when stored. Wakes every blocked consumer and producer and signals
        :attr:`wait_event`.

        Args:
            error: the exception consumers will get.

        Raises:
            QueueLinkedToAnotherQueueError: the queue is linked (checked first).
            QueueCompletedError: the queue is already complete or failed.
            TypeError: ``error`` is not an exception instance.
        """
        if self._root is not None:
            raise QueueLinkedToAnotherQueueError
        _check_error(error)
        qlock = self._qlock
        qlock.acquire()
        try:
            if self._state:
                raise QueueCompletedError
            discarded = self._fail_locked(error)
        finally:
            qlock.release()
        discarded.clear()  # outside the lock: item finalizers may run here
        self._signal_hints()

    def fail_if_not_complete(self, error: Exception) -> None:
        """Fail the queue with ``error`` (as :meth:`fail`) if it is open; otherwise do nothing.

        Args:
            error: the exception consumers will get.

        Raises:
            QueueLinkedToAnotherQueueError: the queue is linked.
            TypeError: ``error`` is not an exception instance.
        """
        if self._root is not None:
            raise QueueLinkedToAnotherQueueError
        _check_error(error)
        qlock = self._qlock
        qlock.acquire()
        try:
            if self._state:
                return
            discarded = self._fail_locked(error)
        finally:
            qlock.release()
        discarded.clear()
        self._signal_hints()

    def _fail_locked(self, error: BaseException) -> deque[T]:
        """Switch to FAILED; return the discarded items, to be released outside the lock."""
        self._state = _FAILED
        self._qlock.to_builtin()
        self._error = error
        self._error_tb = error.__traceback__
        buf = self._buf
        discarded = buf.copy()
        buf.clear()
        # Exact unless a lock-free pop lands between the copy and the clear: that item is
        # delivered (the pop precedes the failure) and also counted here, in statistics only.
        self._discarded = len(discarded)
        self._wake_all_locked()
        return discarded

    def _wake_all_locked(self) -> None:
        self._not_empty.notify_all()
        if self._not_full is not None:
            self._not_full.notify_all()

    # -- consumers -------------------------------------------------------------------------

    def take(self, timeout: float | None = 0, /, interrupt: Interrupt | None = None) -> T:
        """Remove and return the oldest item.

        **The default timeout is 0: non-blocking.** With a positive timeout, blocks at most
        that long in total; with ``None``, until an item arrives or the queue completes or
        fails. Cooperates with the scheduler.

        Args:
            timeout: seconds to wait at most; ``0`` never blocks, ``None`` has no limit.
            interrupt: an interrupt for this call, checked first.

        Returns:
            The oldest item, even after ``complete()``; falsy items are items like any other.

        Raises:
            TimeoutError: the queue is complete and empty (at once, whatever the timeout), or
                no item arrived in time.
            Exception: the queue failed: its error, the same object on every call.
            InterruptException: ``interrupt`` is or becomes signaled; the queue is unchanged.
            ValueError: ``timeout`` is negative.
        """
        if timeout == 0 and interrupt is None:
            try:
                return self._popleft()
            except IndexError:
                pass
        item = self._take(timeout, interrupt)
        if item.__class__ is _NoItem:
            raise TimeoutError(item.message)
        return cast(T, item)

    def try_take(
        self, timeout: float | None = 0, /, interrupt: Interrupt | None = None
    ) -> tuple[T | None, bool]:
        """Like :meth:`take`, but return ``(None, False)`` where ``take`` raises TimeoutError.

        Returns:
            ``(item, True)`` for an item, ``(None, False)`` when the queue is complete and
            empty or no item arrived in time.

        Raises:
            Exception: the queue failed: its error, the same object on every call.
            InterruptException: ``interrupt`` is or becomes signaled.
            ValueError: ``timeout`` is negative.
        """
        if timeout == 0 and interrupt is None:
            try:
                return self._popleft(), True
            except IndexError:
                pass
        item = self._take(timeout, interrupt)
        if item.__class__ is _NoItem:
            return None, False
        return cast(T, item), True

    def _take(self, timeout: float | None, interrupt: Interrupt | None) -> T | _NoItem:
        deadline = deadline_for(timeout)
        raise_if_interrupted(interrupt)
        root = self._root
        return (self if root is None else root)._wait_item(deadline, interrupt)

    def _wait_item(self, deadline: float | None, interrupt: Interrupt | None) -> T | _NoItem:
        """Take an item from this (unlinked) queue, waiting until ``deadline``.

        The interrupt has been checked on entry by the caller. Returns the item, or
        ``_DRAINED``/``_TIMED_OUT``; raises the failure error or the interrupt's exception.
        """
        try:
            return self._popleft()
        except IndexError:
            pass
        qlock = self._qlock
        qlock.acquire()
        try:
            buf = self._buf
            cond = self._not_empty
            handle = None
            waiting = False
            try:
                while True:
                    if waiting and interrupt is not None and interrupt.is_signaled:
                        if buf and self._cwaiters:
                            cond.notify()  # pass on a wake-up this consumer may have absorbed
                        interrupt.raise_if_signaled()
                    try:
                        # Under the lock, but other consumers' lock-free pops still race.
                        item = buf.popleft()
                    except IndexError:
                        pass
                    else:
                        room = self._room
                        if room is not None and room.waiting:
                            cast(threading.Condition, self._not_full).notify()
                        return item
                    if self._state:
                        return self._end_locked()
                    if deadline is not None and deadline <= monotonic():
                        return _TIMED_OUT
                    if not waiting:
                        # Subscribed under the lock, then the interrupt is checked again at
                        # the top: a signal since the caller's check is not missed.
                        handle = subscribe_notify(interrupt, cond)
                        self._cwaiting += 1
                        waiting = True
                        continue
                    # Still under the lock, after the last look at the buffer: from here
                    # until this consumer is notified, puts do their extra work.
                    self._todo = True
                    cond_wait(cond, deadline)
            finally:
                if waiting:
                    self._cwaiting -= 1
                    unsubscribe_notify(interrupt, handle)
        finally:
            qlock.release()

    def _end_locked(self) -> _NoItem:
        """The outcome of a take on a closed, empty queue: the failure, or ``_DRAINED``."""
        if self._state == _FAILED:
            error = cast(BaseException, self._error)
            raise error.with_traceback(self._error_tb)
        return _DRAINED

    def get_iterator(self) -> ProducerConsumerQueueIterator[T]:
        """Return a new :class:`ProducerConsumerQueueIterator` over this queue.

        Any number of iterators may exist; each item goes to exactly one consumer, whichever
        iterator or take obtains it first.
        """
        return ProducerConsumerQueueIterator(self)

    # -- observation -----------------------------------------------------------------------

    def statistics(self) -> ProducerConsumerQueueStatistics:
        """Return a snapshot of the queue's counters and state (takes the lock briefly)."""
        root = self._root
        source = self if root is None else root
        qlock = source._qlock
        qlock.acquire()
        try:
            buffered = len(source._buf)
            puts = qlock.held
            discarded = source._discarded
            consumers = source._cwaiting
            room = source._room
            producers = room.waiting if room is not None else 0
            state = source._state
        finally:
            qlock.release()
        if root is not None and state == _COMPLETE and buffered:
            state = _OPEN  # a linked queue completes once its source is drained
        return ProducerConsumerQueueStatistics(
            buffered_items=buffered,
            capacity=self._capacity,
            consumers_waiting=consumers,
            producers_waiting=producers,
            items_put=puts,
            items_taken=puts - buffered - discarded,
            state=_STATE_NAMES[state],
        )

    def __repr__(self) -> str:
        if self._root is not None:
            state = "failed" if self.is_failed else "complete" if self.is_complete else "open"
            kind = "linked, " + state
            buffered = len(self._root._buf)
        else:
            kind = _STATE_NAMES[self._state]
            buffered = len(self._buf)
        bound = "" if self._capacity is None else f"/{self._capacity}"
        return f"<{type(self).__name__} {kind}, {buffered}{bound} buffered>"

    # -- hints -----------------------------------------------------------------------------

    def _add_downstream(self, event: Event) -> None:
        """Also signal ``event`` (a linked queue's wait event) on this queue's hints."""
        owner = self._qlock.owner

        def dropped(_: object) -> None:
            # The linked queue is gone: the next put prunes its reference.
            queue = owner()
            if queue is not None:
                queue._todo = True

        qlock = self._qlock
        qlock.acquire()
        try:
            live = tuple(ref for ref in self._downstream if ref() is not None)
            self._downstream = (*live, weakref.ref(event, dropped))
        finally:
            qlock.release()
        self._todo = True  # the new event starts clear: the next put signals it

    def _signal_hints(self) -> None:
        """Signal the wait event, and those of linked queues drawing from this queue.

        Called after an addition or a transition, outside the lock. Skipping an event that is
        already signaled loses nothing: an observer that consumes that signal looks at the
        queue afterwards and finds the new item (and consuming it sets ``_todo``, see
        :class:`_HintEvent`, so the next put signals it again).
        """
        own = self._event
        if not own._event._flag:  # type: ignore[attr-defined]
            own.signal()
        downstream = self._downstream
        if not downstream:
            return
        dead = False
        for ref in downstream:
            event = ref()
            if event is None:
                dead = True
            elif not event._event._flag:  # type: ignore[attr-defined]
                event.signal()
        if dead:
            qlock = self._qlock
            qlock.acquire()
            try:
                self._downstream = tuple(ref for ref in self._downstream if ref() is not None)
            finally:
                qlock.release()


class ProducerConsumerQueueIterator(PIterable[T], PIterator[T]):
    """An interruptible, timed iterator over a :class:`ProducerConsumerQueue`.

    It is both a ``PIterable`` and a ``PIterator`` and holds no state beyond its queue: items
    are never prefetched, so an abandoned or slow iterator hides nothing from other
    consumers. Several threads may share one iterator.

    Args:
        queue: the queue to take from.

    Raises:
        TypeError: ``queue`` is not a :class:`ProducerConsumerQueue`.
    """

    __slots__ = ("__weakref__", "_popleft", "_queue", "_source")

    def __init__(self, queue: ProducerConsumerQueue[T]) -> None:
        if not isinstance(queue, ProducerConsumerQueue):
            raise TypeError(
                f"'queue' must be a ProducerConsumerQueue, not {type(queue).__name__}"
            )
        self._queue = queue
        root = queue._root
        # The queue that holds the items: the queue itself, or the first queue of its chain.
        self._source: ProducerConsumerQueue[T] = queue if root is None else root
        self._popleft = queue._popleft

    @property
    def queue(self) -> ProducerConsumerQueue[T]:
        """The queue this iterator takes from (extension)."""
        return self._queue

    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> T:
        """Take the next item: ``queue.take(timeout, interrupt)``, but end with StopIteration.

        Blocks at most ``timeout`` seconds (``None``, the default: until an item arrives or
        the queue ends). Cooperates with the scheduler.

        Raises:
            StopIteration: the queue is complete and empty (then on every later call too), or
                nothing arrived within ``timeout``.
            Exception: the queue failed: its error.
            InterruptException: ``interrupt`` is or becomes signaled.
            ValueError: ``timeout`` is negative.
        """
        if timeout is None and interrupt is None:
            try:
                return self._popleft()
            except IndexError:
                pass
            deadline = None
        else:
            deadline = deadline_for(timeout)
            raise_if_interrupted(interrupt)
        item = self._source._wait_item(deadline, interrupt)
        if item.__class__ is _NoItem:
            raise StopIteration
        return cast(T, item)

    def __next__(self) -> T:
        """Take the next item, blocking until one arrives or the queue ends."""
        try:
            return self._popleft()
        except IndexError:
            pass
        item = self._source._wait_item(None, None)
        if item.__class__ is _NoItem:
            raise StopIteration
        return cast(T, item)

    def __iter__(self) -> PIterator[T]:
        """Return an iterator over the same queue: ``self``, except over a bounded queue.

        Iteration blocks until items arrive and ends on completion. Over a bounded queue the
        iterator is a new one of the same queue, whose ``__next__`` checks for blocked
        producers itself instead of calling the queue's waking pop (one Python call per item
        fewer); it keeps ``self`` alive.
        """
        if self._source._room is None:
            return self
        return _BoundedQueueIterator(self)

    def drain(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> None:
        """Take and discard every remaining item until the queue ends (or ``timeout``).

        ``timeout`` bounds each wait for the next item, not the whole drain.

        Raises:
            Exception: the queue failed: its error.
            InterruptException: ``interrupt`` is or becomes signaled.
        """
        while True:
            try:
                self.next(timeout, interrupt)
            except StopIteration:
                return

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._queue!r}>"


@final
class _BoundedQueueIterator(ProducerConsumerQueueIterator[T]):
    """The iterator that iterating over an iterator of a bounded queue uses.

    The same as :class:`ProducerConsumerQueueIterator`, with the lock-free pop of
    :class:`_RoomPop` written into ``__next__``: pop, then wake a blocked producer if one is
    counted. It keeps the iterator it was made from alive while it is in use, so whoever
    watches that iterator's lifetime (to learn that its consumer is gone) does not see it
    dropped in the middle of a ``for`` loop.
    """

    __slots__ = ("_origin", "_pop", "_room")

    def __init__(self, origin: ProducerConsumerQueueIterator[T]) -> None:
        super().__init__(origin._queue)
        self._origin = origin
        source = self._source
        self._pop = source._buf.popleft
        self._room = cast(_RoomPop, source._room)

    def __next__(self) -> T:
        """Take the next item, blocking until one arrives or the queue ends."""
        try:
            item = self._pop()
        except IndexError:
            pass
        else:
            if self._room.waiting:
                self._room.wake()
            return item
        # Waited for outside the handler, so that an error raised here (the failure error,
        # the stored object) does not get the IndexError as its context.
        got = self._source._wait_item(None, None)
        if got.__class__ is _NoItem:
            raise StopIteration
        return cast(T, got)

    def __iter__(self) -> PIterator[T]:
        """Return ``self``."""
        return self


for _cls in (ProducerConsumerQueue, ProducerConsumerQueueIterator):
    _cls.__module__ = "runtime.threading.parallel"
del _cls
