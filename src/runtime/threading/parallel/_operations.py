"""Parallel operations: ``process``, ``map``, ``for_each``, ``background`` and ``distribute``.

Every operation (API §5.3 to §5.7, SEMANTICS §10) follows the same shape:

* It owns a fresh :class:`InterruptSignal` linked to the caller's interrupt. Every worker task
  gets that signal's interrupt, so signaling the caller's interrupt reaches every worker, and
  the operation can stop its own workers without touching anything outside it.
* Input is pulled **lazily**. A ``ProducerConsumerQueueIterator`` is used as it is (the queue
  is already safe for many consumers); any other iterable is advanced by one worker at a time
  through a :class:`_SharedSource`, so a huge or endless generator works and is never read
  ahead.
* Workers loop: check the interrupt, pull an item, check again, call ``fn`` and emit every
  element of its result (a flat-map). They block only through library waits.
* Failures go through a :class:`FailurePolicy`: record the error, fail the outputs with an
  ``AggregateException`` of what was recorded, *then* signal the operation's interrupt. The
  order matters: a consumer woken by the failure sees the aggregate, never the interrupt.
* One inline ``ALL`` continuation over the workers settles the operation once every worker is
  terminal (:func:`settle_when_done`). It is also the task returned by ``for_each``,
  ``background`` and ``process`` with an output queue.

The pipeline module builds on :func:`run_operation`, :func:`settle_when_done` and
:class:`FailurePolicy`, which is why they take the operation's signal, its outputs and a
parent policy explicitly.
"""

from __future__ import annotations

import _thread
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import Any, Concatenate, Final, Generic, ParamSpec, TypeVar, overload

from .. import _constants
from .._blocking import cond_wait, subscribe_notify, unsubscribe_notify
from .._errors import (
    AggregateException,
    DistributionAlreadyStartedError,
    InterruptException,
    QueueCompletedError,
    QueueLinkedToAnotherQueueError,
)
from .._events import ContinueWhen
from .._interrupts import Interrupt, InterruptSignal, validate_interrupt
from .._protocols import PIterable, PIterator
from ..tasks._scheduler import TaskScheduler
from ..tasks._task import (
    ContinuationOptions,
    ContinuationProto,
    Task,
    _is_interruption,  # the task layer's own classification (SEMANTICS §3.3)
    _names_of,
)
from ._pcqueue import ProducerConsumerQueue, ProducerConsumerQueueIterator

__all__ = (
    "BackgroundProto",
    "Distributor",
    "ForEachProto",
    "MapProto",
    "ProcessProto",
    "background",
    "callable_name",
    "distribute",
    "for_each",
    "map",
    "FailurePolicy",
    "process",
    "run_operation",
    "settle_when_done",
    "start_workers",
)

T = TypeVar("T")
Tin = TypeVar("Tin")
Tout = TypeVar("Tout")
P = ParamSpec("P")

_NOTHING: Final[tuple[bool, Any]] = (False, None)

# Runs the settling continuation whatever the workers' states, on the thread that finished
# the last worker (it only completes or fails queues, which never blocks).
_SETTLE_OPTIONS: Final = (
    ContinuationOptions.INLINE
    | ContinuationOptions.ON_COMPLETED_SUCCESSFULLY
    | ContinuationOptions.ON_FAILED
    | ContinuationOptions.ON_INTERRUPTED
)


# -- argument checks --------------------------------------------------------------------------


def callable_name(fn: Callable[..., Any]) -> str:
    """The task name derived from a function, as the task layer names tasks (``module.name``)."""
    return _names_of(fn)[0]


def _check_fn(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"'fn' must be callable, not {type(fn).__name__}")


def _check_common(
    task_name: str | None,
    parallelism: int | None,
    interrupt: Interrupt | None,
    scheduler: TaskScheduler | None,
) -> None:
    if task_name is not None and not isinstance(task_name, str):
        raise TypeError(f"'task_name' must be a str or None, not {type(task_name).__name__}")
    if parallelism is not None:
        if isinstance(parallelism, bool) or not isinstance(parallelism, int):
            raise TypeError(
                f"'parallelism' must be an int or None, not {type(parallelism).__name__}"
            )
        if parallelism < 0:
            raise ValueError("'parallelism' must be a non-negative int")
    validate_interrupt(interrupt)
    if scheduler is not None and not isinstance(scheduler, TaskScheduler):
        raise TypeError(
            f"'scheduler' must be a TaskScheduler or None, not {type(scheduler).__name__}"
        )


def _workers_for(parallelism: int | None) -> int:
    # DEFAULT_PARALLELISM is read at call time so it can be tuned (API §1.1).
    return parallelism or _constants.DEFAULT_PARALLELISM


def _fail_queue(queue: ProducerConsumerQueue[Any], error: Exception) -> None:
    """Fail ``queue`` with ``error`` unless it is already complete or failed."""
    try:
        queue.fail_if_not_complete(error)
    except QueueLinkedToAnotherQueueError:
        pass  # a caller-supplied linked queue: writing to it already failed, nothing to do


# -- input -----------------------------------------------------------------------------------


class _QueueSource:
    """Input taken straight from a producer/consumer queue, which many workers may share."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: ProducerConsumerQueueIterator[Any]) -> None:
        self._iterator = iterator

    def pull(self, interrupt: Interrupt) -> tuple[bool, Any]:
        """Take the next item, blocking until one arrives or the queue completes."""
        try:
            return True, self._iterator.next(None, interrupt)
        except StopIteration:
            return _NOTHING


class _SharedSource:
    """A plain iterator shared by the workers; one worker at a time advances it.

    The turn is handed over through a condition and :func:`cond_wait`, so a worker waiting
    for its turn cooperates with the scheduler and wakes on its interrupt.
    """

    __slots__ = ("_busy", "_cond", "_exhausted", "_iterator", "_timed")

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        # A PIterator is advanced with the worker's interrupt, so a blocking step wakes on it.
        self._timed = isinstance(iterator, PIterator)
        # Guards _busy (a worker is advancing the iterator) and _exhausted (the iterator
        # ended or raised: it is never advanced again). Waiters for a turn park on it.
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._exhausted = False

    def pull(self, interrupt: Interrupt) -> tuple[bool, Any]:
        """Advance the iterator once, waiting for the turn of another worker to end.

        Raises:
            InterruptException: ``interrupt`` became signaled while waiting for the turn.
            Exception: whatever advancing the iterator raised; the source is then exhausted.
        """
        cond = self._cond
        with cond:
            if self._busy and not self._exhausted:
                self._wait_turn(interrupt)
            if self._exhausted:
                return _NOTHING
            self._busy = True
        exhausted = True
        try:
            iterator: Any = self._iterator
            item = iterator.next(None, interrupt) if self._timed else next(iterator)
            exhausted = False
            return True, item
        except StopIteration:
            return _NOTHING
        except InterruptException:
            exhausted = False  # this worker stops; the source itself is still usable
            raise
        finally:
            with cond:
                self._busy = False
                if exhausted:
                    self._exhausted = True
                    cond.notify_all()
                else:
                    cond.notify()

    def _wait_turn(self, interrupt: Interrupt) -> None:
        # Called with _cond held. The interrupt is re-checked under the condition after
        # subscribing, so a signal in between is never lost.
        cond = self._cond
        handle = subscribe_notify(interrupt, cond)
        try:
            while self._busy and not self._exhausted:
                if interrupt.is_signaled:
                    break
                cond_wait(cond, None)
        finally:
            unsubscribe_notify(interrupt, handle)
        if interrupt.is_signaled:
            if not self._busy:
                cond.notify()  # pass on the turn this waiter may have absorbed
            interrupt.raise_if_signaled()


_Source = _QueueSource | _SharedSource


def _source_for(items: Iterable[Any]) -> _Source:
    if isinstance(items, ProducerConsumerQueueIterator):
        return _QueueSource(items)
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(f"'items' must be iterable, not {type(items).__name__}") from None
    return _SharedSource(iterator)


# -- failure policy and settling ------------------------------------------------------------


class FailurePolicy:
    """Records the failures of one operation and stops it (SEMANTICS §10, steps 1 to 3).

    A nested operation (a stage inside a pipeline fork) has a ``parent``: its failures are
    reported there first, so the outer output is failed with the aggregate before anything
    inside is interrupted.
    """

    __slots__ = ("_failures", "_lock", "_outputs", "_parent", "signal")

    def __init__(
        self,
        signal: InterruptSignal,
        outputs: Sequence[ProducerConsumerQueue[Any]],
        parent: FailurePolicy | None = None,
    ) -> None:
        self.signal = signal
        self._outputs = tuple(outputs)
        self._parent = parent
        # Guards _failures. Held only to append and to snapshot, never while calling out.
        self._lock = threading.Lock()
        self._failures: list[Exception] = []

    def fail(self, error: Exception) -> None:
        """Record ``error``, fail the outputs with the aggregate so far, stop the operation.

        The same error object reported by several workers (an upstream failure read by each
        of them) is recorded once.
        """
        with self._lock:
            if any(recorded is error for recorded in self._failures):
                return
            self._failures.append(error)
            recorded = tuple(self._failures)
        if self._parent is not None:
            self._parent.fail(error)
        for queue in self._outputs:
            _fail_queue(queue, AggregateException(recorded))
        self.signal.signal()

    def is_recorded(self, error: BaseException) -> bool:
        """Whether this exact error object has been recorded."""
        with self._lock:
            return any(recorded is error for recorded in self._failures)

    @property
    def failures(self) -> tuple[Exception, ...]:
        """Every failure recorded so far, in order."""
        with self._lock:
            return tuple(self._failures)

    @property
    def stopping(self) -> bool:
        """Whether this operation, or one it belongs to, has recorded a failure."""
        with self._lock:
            failed = bool(self._failures)
        return failed or (self._parent is not None and self._parent.stopping)


class _Settlement:
    """What the settling continuation needs: the policy, the outputs and their ownership."""

    __slots__ = ("adopt_failures", "outcome", "outputs", "owns_outputs", "policy")

    def __init__(
        self,
        policy: FailurePolicy,
        outputs: Sequence[ProducerConsumerQueue[Any]],
        owns_outputs: bool,
        adopt_failures: bool,
    ) -> None:
        self.policy = policy
        self.outputs = tuple(outputs)
        self.owns_outputs = owns_outputs
        self.adopt_failures = adopt_failures
        # Signaled only by the settling continuation itself, to end INTERRUPTED. It is the
        # continuation's interrupt: it cannot be signaled before the continuation starts, so
        # the continuation always runs (and can end FAILED even after the operation was
        # interrupted by its own failure policy).
        self.outcome = InterruptSignal()


def _settle(task: Task[None], workers: Sequence[Task[Any]], settlement: _Settlement) -> None:
    """Settle an operation once all its workers are terminal (SEMANTICS §10, step 4)."""
    policy = settlement.policy
    if settlement.adopt_failures:
        for worker in workers:
            # A worker that ended FAILED without reporting (a KeyboardInterrupt, SystemExit
            # or an error the task layer classified differently) is reported now.
            error = worker.exception
            if worker.is_failed and error is not None and not policy.is_recorded(error):
                policy.fail(error)
    failures = policy.failures
    if failures:
        raise AggregateException(failures)
    if any(worker.is_interrupted for worker in workers):
        interrupt = policy.signal.interrupt
        for queue in settlement.outputs:
            _fail_queue(queue, InterruptException(interrupt))
        settlement.outcome.signal()
        task.interrupt.raise_if_signaled()
    if settlement.owns_outputs:
        for queue in settlement.outputs:
            try:
                queue.complete()
            except QueueCompletedError:
                pass  # failed meanwhile by an enclosing operation


def settle_when_done(
    workers: Sequence[Task[Any]],
    policy: FailurePolicy,
    outputs: Sequence[ProducerConsumerQueue[Any]],
    *,
    owns_outputs: bool,
    name: str,
    adopt_failures: bool = True,
) -> Task[None]:
    """Return the task that settles an operation once every one of ``workers`` is terminal.

    The task ends ``FAILED`` with an ``AggregateException`` of every recorded failure,
    ``INTERRUPTED`` if a worker was interrupted and nothing failed (the outputs are then
    failed with an ``InterruptException`` of the operation's interrupt), and ``COMPLETED``
    otherwise, completing the outputs if ``owns_outputs``. With no workers it settles at once.

    With ``adopt_failures``, a FAILED worker whose exception was never reported to ``policy``
    is reported when settling. Pass ``False`` when the "workers" are themselves settled
    operations that reported to ``policy`` as their parent: their aggregates would repeat it.
    """
    settlement = _Settlement(policy, outputs, owns_outputs, adopt_failures)
    proto = ContinuationProto(
        workers,
        ContinueWhen.ALL,
        options=_SETTLE_OPTIONS,
        name=name,
        interrupt=settlement.outcome.interrupt,
    )
    return proto.run(_settle, settlement)


# -- workers ---------------------------------------------------------------------------------


class _Work:
    """Everything the workers of one operation share. Read-only once the workers start."""

    __slots__ = ("args", "fn", "kwargs", "outputs", "policy", "source")

    def __init__(
        self,
        source: _Source | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        outputs: tuple[ProducerConsumerQueue[Any], ...],
        policy: FailurePolicy,
    ) -> None:
        self.source = source
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs
        self.policy = policy


def _emit(task: Task[Any], work: _Work, result: Iterable[Any]) -> None:
    """Put every element of ``result`` into every output, in the order produced."""
    interrupt = task.interrupt
    outputs = work.outputs
    try:
        if len(outputs) == 1:
            put = outputs[0].put
            for element in result:
                put(element, interrupt=interrupt)
        else:
            for element in result:
                for queue in outputs:
                    queue.put(element, interrupt=interrupt)
    except QueueCompletedError:
        if work.policy.stopping or interrupt.is_signaled:
            # The output was failed by a sibling's (or an enclosing operation's) failure,
            # which signals this operation right after: stop as interrupted, not failed.
            work.policy.signal.signal()
            interrupt.raise_if_signaled()
        raise


def _work_loop(task: Task[None], work: _Work) -> None:
    """The target of every worker task."""
    try:
        source = work.source
        fn, args, kwargs = work.fn, work.args, work.kwargs
        if source is None:  # background: call fn once
            fn(task, *args, **kwargs)
            return
        interrupt = task.interrupt
        emits = bool(work.outputs)
        while True:
            interrupt.raise_if_signaled()
            found, item = source.pull(interrupt)
            if not found:
                return
            interrupt.raise_if_signaled()
            result = fn(task, item, *args, **kwargs)
            if emits:
                _emit(task, work, result)
    except Exception as error:
        if not _is_interruption(error, task.interrupt):
            work.policy.fail(error)
        raise
    except BaseException:
        # KeyboardInterrupt or SystemExit: stop the siblings; the task layer records the
        # failure and the settling continuation reports it.
        work.policy.signal.signal()
        raise


def start_workers(
    source_items: Iterable[Any] | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: str,
    count: int,
    policy: FailurePolicy,
    outputs: Sequence[ProducerConsumerQueue[Any]],
    scheduler: TaskScheduler | None,
    target_fn: Callable[..., Any] | None = None,
) -> list[Task[None]]:
    """Start ``count`` worker tasks over ``source_items`` (``None``: call ``fn`` once each).

    Each worker runs with ``policy.signal``'s interrupt. Its ``target`` names ``target_fn``
    (default ``fn``), the user's function, not the internal loop it executes (API §3.3). If
    starting a worker fails (for example on a closed scheduler), the error is recorded as a
    failure, the workers already started are stopped, and the error propagates.
    """
    source = None if source_items is None else _source_for(source_items)
    work = _Work(source, fn, args, kwargs, tuple(outputs), policy)
    proto = Task.create(name=name, interrupt=policy.signal.interrupt, scheduler=scheduler)
    target = _names_of(fn if target_fn is None else target_fn)[1]
    workers: list[Task[None]] = []
    try:
        for _ in range(count):
            # Planned, given the user's target while no other thread can see it, then
            # scheduled: schedule() resolves the scheduler as run() would (the proto's, else
            # the captured open PContext's, else TaskScheduler.current()).
            worker = proto.plan(_work_loop, work)
            worker._target = target
            worker.schedule()
            workers.append(worker)
    except Exception as error:
        policy.fail(error)
        settle_when_done(workers, policy, outputs, owns_outputs=False, name=name)
        raise
    return workers


def cancel_when_dropped(
    output: PIterable[T], queue: ProducerConsumerQueue[Any], signal: InterruptSignal
) -> PIterable[T]:
    """Interrupt an operation once nobody holds its output iterator any more.

    Without this, an operation over a huge or endless input whose consumer stopped early
    (``break`` out of the ``for`` loop) would keep its workers producing into ``queue``, which
    nobody can read any more, and those non-daemon workers would keep the interpreter from
    exiting. Dropping the last reference to ``output`` while ``queue`` is still open signals
    the operation's own ``signal``, so the workers stop at their next check.
    """
    try:
        weakref.finalize(output, _cancel_abandoned, queue, signal)
    except TypeError:  # an object without weak reference support: nothing to watch
        pass
    return output


def _cancel_abandoned(queue: ProducerConsumerQueue[Any], signal: InterruptSignal) -> None:
    # A finalizer runs wherever the last reference happens to drop, possibly while this very
    # thread holds a lock that signal() takes (the interrupt graph's, an event's). So the
    # signal is sent from a fresh low-level thread, which takes no Python-level lock to start
    # and simply waits for any lock this thread holds.
    if not queue.is_complete:
        _thread.start_new_thread(signal.signal, ())


def operation_signal(interrupt: Interrupt | None) -> InterruptSignal:
    """A fresh signal for one operation, linked to its external ``interrupt`` if any."""
    return InterruptSignal(interrupt) if interrupt is not None else InterruptSignal()


def run_operation(
    items: Iterable[Any] | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: str | None,
    count: int,
    signal: InterruptSignal,
    scheduler: TaskScheduler | None,
    outputs: Sequence[ProducerConsumerQueue[Any]] = (),
    owns_outputs: bool = False,
    parent: FailurePolicy | None = None,
    target_fn: Callable[..., Any] | None = None,
) -> Task[None]:
    """Run one operation and return the task that settles it (see :func:`settle_when_done`).

    ``signal`` is the operation's own signal (see :func:`operation_signal`); every worker
    runs with its interrupt. ``items=None`` calls ``fn`` once per worker; an empty ``Sized``
    input starts no worker. Failures are reported to ``parent`` too, before the operation's
    own outputs are failed. The workers' ``target`` names ``target_fn``, by default ``fn``:
    a caller whose ``fn`` wraps the user's function passes the user's function here.

    Raises:
        TypeError: ``fn`` is not callable or ``items`` is not iterable.
    """
    _check_fn(fn)
    name = name or callable_name(fn)
    if isinstance(items, Sized) and len(items) == 0:
        count = 0  # zero items: no workers, the operation settles at once
    policy = FailurePolicy(signal, outputs, parent)
    workers = start_workers(
        items,
        fn,
        args,
        kwargs,
        name=name,
        count=count,
        policy=policy,
        outputs=outputs,
        scheduler=scheduler,
        target_fn=target_fn,
    )
    return settle_when_done(workers, policy, outputs, owns_outputs=owns_outputs, name=name)


# -- process and map ---------------------------------------------------------------------------


class _Options:
    """The options every operation proto shares, validated once. Never changed afterwards."""

    __slots__ = ("_interrupt", "_parallelism", "_scheduler", "_task_name")

    def __init__(
        self,
        task_name: str | None,
        parallelism: int | None,
        interrupt: Interrupt | None,
        scheduler: TaskScheduler | None,
    ) -> None:
        _check_common(task_name, parallelism, interrupt, scheduler)
        self._task_name = task_name
        self._parallelism = parallelism
        self._interrupt = interrupt
        self._scheduler = scheduler


class _ItemsProto(_Options, Generic[Tin]):
    __slots__ = ("_items",)

    def __init__(
        self,
        items: Iterable[Tin],
        task_name: str | None = None,
        parallelism: int | None = None,
        interrupt: Interrupt | None = None,
        scheduler: TaskScheduler | None = None,
    ) -> None:
        super().__init__(task_name, parallelism, interrupt, scheduler)
        self._items = items

    def _start(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        output: ProducerConsumerQueue[Any] | None,
        *,
        owns_output: bool,
        cap: bool,
        signal: InterruptSignal | None = None,
    ) -> Task[None]:
        count = _workers_for(self._parallelism)
        if cap and isinstance(self._items, Sized):
            count = min(count, len(self._items))
        return run_operation(
            self._items,
            fn,
            args,
            kwargs,
            name=self._task_name,
            count=count,
            signal=operation_signal(self._interrupt) if signal is None else signal,
            scheduler=self._scheduler,
            outputs=() if output is None else (output,),
            owns_outputs=owns_output,
        )

    def _map(
        self, fn: Callable[..., Iterable[Tout]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> PIterable[Tout]:
        output: ProducerConsumerQueue[Tout] = ProducerConsumerQueue()
        signal = operation_signal(self._interrupt)
        self._start(fn, args, kwargs, output, owns_output=True, cap=False, signal=signal)
        return cancel_when_dropped(output.get_iterator(), output, signal)


class ProcessProto(_ItemsProto[Tin]):
    """An immutable recipe for a parallel flat-map over ``items``; nothing runs until ``do``.

    Args:
        items: the input. A ``ProducerConsumerQueueIterator`` is consumed directly; anything
            else is iterated lazily, one worker at a time.
        task_name: the worker tasks' name; defaults to the function name of ``fn``.
        parallelism: the number of workers; ``None`` or ``0`` means ``DEFAULT_PARALLELISM``.
        interrupt: an external interrupt that stops the whole operation.
        scheduler: where workers run; defaults to the current non-root ``PContext``'s
            scheduler, otherwise ``TaskScheduler.current()``.

    Raises:
        ValueError: ``parallelism`` is negative.
        TypeError: an argument has the wrong type.
    """

    __slots__ = ()

    @overload
    def do(
        self,
        fn: Callable[..., Iterable[Tout]],
        /,
        *args: Any,
        output_queue: ProducerConsumerQueue[Tout],
        **kwargs: Any,
    ) -> Task[None]: ...

    @overload
    def do(
        self,
        fn: Callable[..., Iterable[Tout]],
        /,
        *args: Any,
        output_queue: None = None,
        **kwargs: Any,
    ) -> PIterable[Tout] | Task[None]: ...

    def do(
        self,
        fn: Callable[..., Iterable[Tout]],
        /,
        *args: Any,
        output_queue: ProducerConsumerQueue[Tout] | None = None,
        **kwargs: Any,
    ) -> PIterable[Tout] | Task[None]:
        """Start the workers; each calls ``fn(worker_task, item, *args, **kwargs)``.

        Every element of each returned iterable is emitted (a flat-map); output order across
        items is unspecified. Returns at once; nothing blocks.

        Args:
            fn: the per-item function; it must return an iterable.
            output_queue: where results go (keyword-only). It is not completed on success,
                and is failed with ``fail_if_not_complete`` on failure or interrupt. For
                compatibility, a ``ProducerConsumerQueue`` given as the first extra positional
                argument is taken as ``output_queue`` and not passed to ``fn``.

        Returns:
            Without an output queue, the iterator of a new queue that completes when every
            worker succeeded, or fails with an ``AggregateException`` (a worker failed) or an
            ``InterruptException`` (the operation was interrupted). With one, a task that
            ends ``COMPLETED``, ``FAILED`` or ``INTERRUPTED`` likewise.

        Raises:
            TypeError: ``fn`` is not callable, ``items`` is not iterable or ``output_queue``
                is not a ``ProducerConsumerQueue``.
        """
        if output_queue is None and args and isinstance(args[0], ProducerConsumerQueue):
            output_queue, args = args[0], args[1:]
        if output_queue is None:
            return self._map(fn, args, kwargs)
        if not isinstance(output_queue, ProducerConsumerQueue):
            raise TypeError(
                "'output_queue' must be a ProducerConsumerQueue or None, "
                f"not {type(output_queue).__name__}"
            )
        return self._start(fn, args, kwargs, output_queue, owns_output=False, cap=False)


class MapProto(_ItemsProto[Tin]):
    """An immutable recipe for a parallel flat-map over ``items`` into a new queue.

    Takes the same arguments as :class:`ProcessProto`.
    """

    __slots__ = ()

    def do(
        self,
        fn: Callable[Concatenate[Task[Any], Tin, P], Iterable[Tout]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> PIterable[Tout]:
        """Start the workers and return the output iterator at once.

        Exactly ``ProcessProto.do`` without an output queue: every positional argument goes
        to ``fn``, none is ever taken as an output queue.

        Raises:
            TypeError: ``fn`` is not callable or ``items`` is not iterable.
        """
        return self._map(fn, args, kwargs)


class ForEachProto(_ItemsProto[T]):
    """An immutable recipe for calling a function once per item, in parallel.

    Takes the same arguments as :class:`ProcessProto`. For a ``Sized`` input the number of
    workers is capped at ``len(items)``.
    """

    __slots__ = ()

    def do(
        self,
        fn: Callable[Concatenate[Task[Any], T, P], Any],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Task[None]:
        """Start the workers, each calling ``fn(worker_task, item, *args, **kwargs)``.

        Returns at once a task that ends ``COMPLETED`` once every item was processed (at once
        for an empty input), ``FAILED`` with an ``AggregateException`` of the workers'
        exceptions if a call raised (the other workers are then interrupted and take no more
        items), or ``INTERRUPTED`` if the external interrupt stopped it and nothing failed.
        Return values of ``fn`` are ignored.

        Raises:
            TypeError: ``fn`` is not callable or ``items`` is not iterable.
        """
        return self._start(fn, args, kwargs, None, owns_output=False, cap=True)


def process(
    items: Iterable[Tin],
    /,
    task_name: str | None = None,
    parallelism: int | None = None,
    interrupt: Interrupt | None = None,
    scheduler: TaskScheduler | None = None,
) -> ProcessProto[Tin]:
    """Return ``ProcessProto(items, task_name, parallelism, interrupt, scheduler)``."""
    return ProcessProto(items, task_name, parallelism, interrupt, scheduler)


def map(  # the public name shadows the builtin inside this module only
    items: Iterable[Tin],
    /,
    task_name: str | None = None,
    parallelism: int | None = None,
    interrupt: Interrupt | None = None,
    scheduler: TaskScheduler | None = None,
) -> MapProto[Tin]:
    """Return ``MapProto(items, task_name, parallelism, interrupt, scheduler)``."""
    return MapProto(items, task_name, parallelism, interrupt, scheduler)


def for_each(
    items: Iterable[T],
    task_name: str | None = None,
    parallelism: int | None = None,
    interrupt: Interrupt | None = None,
    scheduler: TaskScheduler | None = None,
) -> ForEachProto[T]:
    """Return ``ForEachProto(items, task_name, parallelism, interrupt, scheduler)``."""
    return ForEachProto(items, task_name, parallelism, interrupt, scheduler)


# -- background --------------------------------------------------------------------------------


class BackgroundProto(_Options):
    """An immutable recipe for running a function on several tasks at once.

    Args:
        task_name: the tasks' name; defaults to the function name of ``fn``.
        parallelism: the number of tasks; ``None`` or ``0`` means ``DEFAULT_PARALLELISM``.
        interrupt: an external interrupt that stops the whole operation.
        scheduler: where the tasks run (resolved as for :class:`ProcessProto`).

    Raises:
        ValueError: ``parallelism`` is negative.
        TypeError: an argument has the wrong type.
    """

    __slots__ = ()

    def __init__(
        self,
        task_name: str | None = None,
        parallelism: int | None = None,
        interrupt: Interrupt | None = None,
        scheduler: TaskScheduler | None = None,
    ) -> None:
        super().__init__(task_name, parallelism, interrupt, scheduler)

    def do(
        self, fn: Callable[Concatenate[Task[Any], P], Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Task[None]:
        """Start ``parallelism`` tasks, each running ``fn(task, *args, **kwargs)`` once.

        Returns at once a task that ends ``COMPLETED`` when all of them completed, ``FAILED``
        with an ``AggregateException`` if any failed (the others are interrupted), and
        ``INTERRUPTED`` if the operation was interrupted and nothing failed.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        return run_operation(
            None,
            fn,
            args,
            kwargs,
            name=self._task_name,
            count=_workers_for(self._parallelism),
            signal=operation_signal(self._interrupt),
            scheduler=self._scheduler,
        )


_SHARED_BACKGROUND: Final = BackgroundProto()


def background(
    *,
    task_name: str | None = None,
    parallelism: int | None = None,
    interrupt: Interrupt | None = None,
    scheduler: TaskScheduler | None = None,
) -> BackgroundProto:
    """Return a :class:`BackgroundProto`; the same shared instance when called with no argument."""
    if task_name is None and parallelism is None and interrupt is None and scheduler is None:
        return _SHARED_BACKGROUND
    return BackgroundProto(task_name, parallelism, interrupt, scheduler)


# -- distribute ----------------------------------------------------------------------------------


class Distributor(Generic[T]):
    """Broadcast ``items``: every consumer receives every item, in source order.

    Register consumers with :meth:`take`, then call :meth:`start`. A single forwarding task
    reads the source and puts each item into every consumer's queue. Consumer queues are
    unbounded: a consumer that stops taking makes its own buffer grow.

    Args:
        items: the source; a ``PIterable`` is used as it is, anything else is iterated
            lazily by the forwarder.
        scheduler: where the forwarder runs; resolved as for :class:`ProcessProto` when
            omitted.

    Raises:
        TypeError: ``scheduler`` is not a ``TaskScheduler``.
    """

    __slots__ = ("_consumers", "_lock", "_scheduler", "_source", "_started")

    def __init__(self, items: Iterable[T], /, scheduler: TaskScheduler | None = None) -> None:
        _check_common(None, None, None, scheduler)
        self._source = items
        self._scheduler = scheduler
        # Guards _consumers and _started, so take() and start() are mutually atomic.
        self._lock = threading.Lock()
        self._consumers: list[ProducerConsumerQueue[T]] = []
        self._started = False

    def take(self) -> PIterable[T]:
        """Register a new consumer and return its iterator.

        Raises:
            DistributionAlreadyStartedError: ``start()`` has been called.
        """
        with self._lock:
            if self._started:
                raise DistributionAlreadyStartedError()
            queue: ProducerConsumerQueue[T] = ProducerConsumerQueue()
            self._consumers.append(queue)
        return queue.get_iterator()

    def start(self, interrupt: Interrupt | None = None) -> Task[None]:
        """Seal the distributor and start forwarding; returns the forwarding task at once.

        When the source ends, every consumer queue completes and the task ends
        ``COMPLETED``. When reading the source raises ``error``, every consumer queue fails
        with ``AggregateException([error])`` and the task ends ``FAILED`` with one too. When
        ``interrupt`` is signaled, every consumer queue fails with an ``InterruptException``
        of the forwarder's interrupt (a descendant of ``interrupt``), buffered items are
        discarded, and the task ends ``INTERRUPTED``. With no consumers the source is drained.

        Raises:
            DistributionAlreadyStartedError: called a second time.
            TypeError: ``interrupt`` is not an ``Interrupt``.
        """
        _check_common(None, None, interrupt, None)
        with self._lock:
            if self._started:
                raise DistributionAlreadyStartedError()
            self._started = True
            consumers = tuple(self._consumers)
            self._consumers.clear()
        signal = operation_signal(interrupt)
        proto = Task.create(
            name=callable_name(Distributor), interrupt=signal.interrupt, scheduler=self._scheduler
        )
        try:
            return proto.run(_forward, self._source, consumers)
        except Exception as error:
            for queue in consumers:
                _fail_queue(queue, AggregateException([error]))
            raise


def _forward(
    task: Task[None], source: Iterable[Any], consumers: tuple[ProducerConsumerQueue[Any], ...]
) -> None:
    """The distributor's forwarding task: read ``source`` in order into every consumer."""
    interrupt = task.interrupt
    try:
        iterator: Any = iter(source)
        timed = isinstance(iterator, PIterator)
        while True:
            interrupt.raise_if_signaled()
            try:
                item = iterator.next(None, interrupt) if timed else next(iterator)
            except StopIteration:
                break
            for queue in consumers:
                queue.put(item)
    except Exception as error:
        if _is_interruption(error, interrupt):
            for queue in consumers:
                _fail_queue(queue, InterruptException(interrupt))
            raise
        for queue in consumers:
            _fail_queue(queue, AggregateException([error]))
        raise AggregateException([error]) from error
    for queue in consumers:
        queue.complete()


def distribute(items: Iterable[T], /, scheduler: TaskScheduler | None = None) -> Distributor[T]:
    """Return ``Distributor(items, scheduler=scheduler)``."""
    return Distributor(items, scheduler=scheduler)


for _public in (ProcessProto, MapProto, ForEachProto, BackgroundProto, Distributor):
    _public.__module__ = "runtime.threading.parallel"
for _function in (process, map, for_each, background, distribute):
    _function.__module__ = "runtime.threading.parallel"
del _public, _function
