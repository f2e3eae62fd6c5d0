"""Pipelines: ``PFn``, ``NullPFn``, ``PFilter`` and ``PFork`` (API §6.4 to §6.7, SEMANTICS §11).

A pipeline is an immutable chain of stages. ``a | b`` returns a *copy* of ``b`` (converted if
needed) whose most upstream stage has ``a`` as its upstream; no operand is ever modified, so
stages and partial pipelines can be shared freely.

Calling a pipeline evaluates the chain from the most upstream stage down. Each stage is one
parallel operation (``_operations.run_operation``) reading the previous stage's output
queue; the call returns the last output iterator at once. Everything a call needs lives in
local variables and in the :class:`_Env` it passes down (the parameters read from
``PContext.current()`` at call time), so one pipeline object can be called any number of
times, concurrently.

Interrupts follow the data backwards. The last stage's signal is linked to the context's
interrupt, and each upstream stage's signal is linked to the signal of the stage it feeds.
So every worker's interrupt descends from the context's (leaving the context stops them
all), and a stage that fails stops the stages feeding it, after it has failed its own
output, so an endless source stops being read once nobody can use its items. A failure
still travels *downstream* as data: the next stage sees it as its input failure and wraps
it again.

The queues *between* stages (and a fork's branch queues) are bounded by ``STAGE_CAPACITY``.
A stage whose consumer lags then blocks in ``put``, a library wait, which lets the scheduler
suspend it and hand its slot to the stages downstream: without that, CPU-bound upstream
workers over an endless input would keep every slot and starve the rest of the pipeline, and
their queue would grow without limit. The queue returned to the caller is unbounded.

A fork groups its fan-out and branches under one :class:`FailurePolicy` and one signal: a
failure anywhere inside fails the merged output with the aggregate first and then stops
every part of the fork and what feeds it, so no branch worker stays blocked.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, Generic, TypeVar

from .._blocking import deadline_for
from .._interrupts import Interrupt, InterruptSignal
from .._protocols import PIterable, PIterator
from ..tasks._context import PContext
from ..tasks._scheduler import TaskScheduler
from ..tasks._task import Task
from ._operations import (
    FailurePolicy,
    callable_name,
    cancel_when_dropped,
    operation_signal,
    run_operation,
    settle_when_done,
)
from ._pcqueue import ProducerConsumerQueue, ProducerConsumerQueueIterator

__all__ = ("STAGE_CAPACITY", "NullPFn", "PFilter", "PFn", "PFork")

T = TypeVar("T")
Tin = TypeVar("Tin")
Tout = TypeVar("Tout")

_PARALLELISM_INT_ERROR: Final = "Parallelism must be an int between 1 and 32"
_PARALLELISM_FLOAT_ERROR: Final = "Parallelism must be a float between 0.0 and 1.0"
_MAX_INT_PARALLELISM: Final = 32

#: Capacity of the internal queues between stages and of a fork's branch queues.
STAGE_CAPACITY: Final = 256


def _check_parallelism(parallelism: int | float) -> int | float:
    if isinstance(parallelism, bool):
        raise TypeError("Parallelism must be an int or a float, not bool")
    if isinstance(parallelism, int):
        if not 1 <= parallelism <= _MAX_INT_PARALLELISM:
            raise ValueError(_PARALLELISM_INT_ERROR)
        return parallelism
    if isinstance(parallelism, float):
        if not 0.0 < parallelism <= 1.0:  # also rejects NaN
            raise ValueError(_PARALLELISM_FLOAT_ERROR)
        return parallelism
    raise TypeError(f"Parallelism must be an int or a float, not {type(parallelism).__name__}")


def _pass_through(task: Task[Any], item: T) -> tuple[T]:
    return (item,)


def _filter_step(
    task: Task[Any], item: T, predicate: Callable[[Task[Any], T], object], name: str
) -> tuple[T] | tuple[()]:
    """Emit ``item`` if ``predicate(task, item)`` is truthy, with the task named ``name``."""
    previous = task.name
    if previous == name:
        keep = predicate(task, item)
    else:
        task.name = name
        try:
            keep = predicate(task, item)
        finally:
            task.name = previous
    return (item,) if keep else ()


class _Env:
    """The parameters of one pipeline call, read from ``PContext.current()`` at call time.

    ``interrupt`` is the external interrupt of the stage being built: the context's for the
    last stage, the downstream stage's own interrupt for the stages feeding it. Inside a fork,
    ``policy`` is the fork's failure policy, so every stage of every branch reports to it.
    """

    __slots__ = ("interrupt", "max_parallelism", "policy", "scheduler")

    def __init__(
        self,
        interrupt: Interrupt,
        scheduler: TaskScheduler,
        max_parallelism: int,
        policy: FailurePolicy | None,
    ) -> None:
        self.interrupt = interrupt
        self.scheduler = scheduler
        self.max_parallelism = max_parallelism
        self.policy = policy

    @staticmethod
    def current() -> _Env:
        context = PContext.current()
        return _Env(context.interrupt, context.scheduler, context.max_parallelism, None)

    def feeding(self, signal: InterruptSignal) -> _Env:
        """The environment of the stages that feed the stage owning ``signal``."""
        return _Env(signal.interrupt, self.scheduler, self.max_parallelism, self.policy)


class PFn(Generic[Tin, Tout]):
    """A parallel function stage: a flat-map ``fn(task, item) -> Iterable[Tout]``.

    Args:
        fn: the stage function; every element of its result is emitted.
        parallelism: an ``int`` in ``[1, 32]`` is a number of workers; a ``float`` in
            ``(0.0, 1.0]`` is a fraction of ``PContext.current().max_parallelism`` at call
            time (at least one worker). ``1`` means one worker, ``1.0`` the whole context.

    Raises:
        ValueError: ``parallelism`` is out of range.
        TypeError: ``fn`` is not callable or ``parallelism`` is not an int or a float.
    """

    __slots__ = ("_fn", "_parallelism", "_upstream")

    def __init__(
        self, fn: Callable[[Task[Any], Tin], Iterable[Tout]], parallelism: int | float = 1.0
    ) -> None:
        if not callable(fn):
            raise TypeError(f"'fn' must be callable, not {type(fn).__name__}")
        self._setup(fn, parallelism)

    def _setup(self, fn: Callable[..., Iterable[Any]], parallelism: int | float) -> None:
        self._fn = fn
        self._parallelism = _check_parallelism(parallelism)
        self._upstream: PFn[Any, Any] | None = None

    @property
    def parallelism(self) -> int | float:
        """The parallelism given at construction."""
        return self._parallelism

    def __call__(self, items: Iterable[Tin]) -> PIterable[Tout]:
        """Run the whole chain over ``items`` and return the output iterator at once.

        Parameters (scheduler, interrupt, ``max_parallelism``) come from
        ``PContext.current()`` now. The output is unordered. A failure anywhere surfaces to
        the consumer as an ``AggregateException``; cancellation (the context exiting) as an
        ``InterruptException``. Nothing blocks.
        """
        env = _Env.current()
        # The whole chain hangs under one signal of its own, signaled once the caller drops
        # the output iterator, so an abandoned pipeline over an endless input stops.
        cancel = operation_signal(env.interrupt)
        output = self._call(items, env.feeding(cancel), None)
        queue = output.queue if isinstance(output, ProducerConsumerQueueIterator) else None
        return output if queue is None else cancel_when_dropped(output, queue, cancel)

    def __or__(self, next: object) -> PFn[Any, Any]:
        """Compose: ``self`` feeds ``next``. Returns a new pipeline; neither operand changes.

        Args:
            next: a ``PFn`` (a composed chain is kept whole, with ``self`` attached at its
                most upstream end), a list or tuple of ``PFn`` (becomes a ``PFork``), or a
                callable ``(task, item) -> bool`` (becomes a ``PFilter``). ``NullPFn()``
                gives ``self``.

        Raises:
            TypeError: ``next`` is none of these.
        """
        stage = _convert(next)
        if isinstance(stage, NullPFn):
            return self
        return stage._attached_to(self)

    def __repr__(self) -> str:
        own = f"{type(self).__name__}({self._describe()})"
        return own if self._upstream is None else f"{self._upstream!r} | {own}"

    # -- internals ---------------------------------------------------------------------------

    def _describe(self) -> str:
        return f"{callable_name(self._fn)}, parallelism={self._parallelism!r}"

    def _attached_to(self, root: PFn[Any, Any]) -> PFn[Any, Any]:
        """A copy of this chain whose most upstream stage has ``root`` as its upstream."""
        clone = copy.copy(self)
        upstream = self._upstream
        clone._upstream = root if upstream is None else upstream._attached_to(root)
        return clone

    def _workers(self, env: _Env) -> int:
        parallelism = self._parallelism
        if isinstance(parallelism, int):
            return parallelism
        return max(1, math.ceil(parallelism * env.max_parallelism))

    def _stage(self) -> tuple[Callable[..., Iterable[Any]], tuple[Any, ...], str]:
        """The per-item function of this stage, its extra arguments and the workers' name."""
        return self._fn, (), callable_name(self._fn)

    def _call(self, items: Iterable[Any], env: _Env, capacity: int | None) -> PIterable[Any]:
        """Run the chain over ``items`` into a new queue and return its iterator."""
        output: ProducerConsumerQueue[Any] = ProducerConsumerQueue(capacity=capacity)
        self._run(items, env, output, owns_output=True)
        return output.get_iterator()

    def _upstream_output(self, items: Iterable[Any], env: _Env) -> Iterable[Any]:
        upstream = self._upstream
        return items if upstream is None else upstream._call(items, env, STAGE_CAPACITY)

    def _run(
        self,
        items: Iterable[Any],
        env: _Env,
        output: ProducerConsumerQueue[Any],
        *,
        owns_output: bool,
    ) -> Task[None]:
        """Start the chain, this stage writing into ``output``; return its settling task."""
        signal = operation_signal(env.interrupt)
        source = self._upstream_output(items, env.feeding(signal))
        fn, args, name = self._stage()
        return run_operation(
            source,
            fn,
            args,
            {},
            name=name,
            count=self._workers(env),
            signal=signal,
            scheduler=env.scheduler,
            outputs=(output,),
            owns_outputs=owns_output,
            parent=env.policy,
            # A filter's workers run _filter_step; their target is the user's predicate.
            target_fn=args[0] if fn is _filter_step else fn,
        )


def _convert(stage: object) -> PFn[Any, Any]:
    if isinstance(stage, PFn):
        return stage
    if isinstance(stage, (list, tuple)):
        return PFork(stage)
    if callable(stage):
        return PFilter(stage)
    raise TypeError(
        "a pipeline can only be composed with a PFn, a list or tuple of PFn, or a callable "
        f"(task, item) -> bool, not {type(stage).__name__}"
    )


class NullPFn(PFn[Any, Any]):
    """The identity stage.

    ``NullPFn() | x`` is the conversion of ``x`` alone, which is convenient to start a
    pipeline with a fork or a filter (``NullPFn() | [f1, f2]``); ``a | NullPFn()`` is ``a``.
    Calling it returns a ``PIterable`` yielding the items unchanged.
    """

    __slots__ = ()

    def __init__(self) -> None:
        self._setup(_pass_through, 1)

    def __call__(self, items: Iterable[Any]) -> PIterable[Any]:
        """Return ``items`` itself if it is a ``PIterable``, else a lazy one over it."""
        return self._call(items, None, None)

    def __or__(self, next: object) -> PFn[Any, Any]:
        """Return the conversion of ``next`` alone (see :meth:`PFn.__or__`)."""
        return _convert(next)

    def _describe(self) -> str:
        return ""

    def _stage(self) -> tuple[Callable[..., Iterable[Any]], tuple[Any, ...], str]:
        # Used when the identity is a fork branch: one worker copies its items along.
        return _pass_through, (), callable_name(NullPFn)

    def _call(self, items: Iterable[Any], env: _Env | None, capacity: int | None) -> PIterable[Any]:
        if isinstance(items, PIterable):
            return items
        return _ItemsIterable(items)


class _ItemsIterable(PIterable[T]):
    """A lazy ``PIterable`` over a plain iterable: each iterator calls ``iter(items)``."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T]) -> None:
        iter(items)  # fail now, with the builtin TypeError, if ``items`` is not iterable
        self._items = items

    def __iter__(self) -> PIterator[T]:
        return _ItemsIterator(iter(self._items))


class _ItemsIterator(PIterator[T]):
    """A ``PIterator`` over a plain iterator; ``timeout`` never applies (nothing waits)."""

    __slots__ = ("_iterator",)

    def __init__(self, iterator: Iterator[T]) -> None:
        self._iterator = iterator

    def next(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> T:
        """Return the next item; ``StopIteration`` when exhausted.

        Raises:
            InterruptException: ``interrupt`` is signaled.
            ValueError: ``timeout`` is negative.
        """
        deadline_for(timeout)
        if interrupt is not None:
            interrupt.raise_if_signaled()
        return next(self._iterator)


class PFilter(PFn[T, T]):
    """A filter stage: emits each item for which ``fn(task, item)`` is truthy.

    Args:
        fn: the predicate; ``None`` makes a catch-all filter that lets everything through.
        parallelism: as for :class:`PFn`, default ``2`` (two workers).

    While ``fn`` runs, the worker task is named after ``fn``; the previous name is restored
    even if ``fn`` raises.

    Raises:
        ValueError: ``parallelism`` is out of range.
        TypeError: ``fn`` is neither callable nor ``None``.
    """

    __slots__ = ("_predicate",)

    def __init__(
        self, fn: Callable[[Task[Any], T], object] | None = None, *, parallelism: int | float = 2
    ) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"'fn' must be callable or None, not {type(fn).__name__}")
        self._setup(_pass_through, parallelism)
        self._predicate = fn

    @property
    def is_catch_all(self) -> bool:
        """Whether this filter lets every item through (it was built with ``fn=None``)."""
        return self._predicate is None

    def _describe(self) -> str:
        predicate = "None" if self._predicate is None else callable_name(self._predicate)
        return f"{predicate}, parallelism={self._parallelism!r}"

    def _stage(self) -> tuple[Callable[..., Iterable[Any]], tuple[Any, ...], str]:
        predicate = self._predicate
        if predicate is None:
            return _pass_through, (), callable_name(PFilter)
        name = callable_name(predicate)
        return _filter_step, (predicate, name), name


class PFork(PFn[Tin, Tout]):
    """A fork: every upstream item goes to **every** branch; the outputs are merged.

    Args:
        fns: the branches; each may itself be a composed pipeline.

    Each call gives each branch its own internal queue, fed by a fan-out stage of
    ``min(len(fns), max(1, ceil(max_parallelism)))`` workers. The merged output, unordered,
    completes when the upstream and every branch have finished. If anything fails, it fails
    with an ``AggregateException`` and every part of the fork is stopped; if the context's
    interrupt is signaled, it fails with an ``InterruptException``.

    Raises:
        ValueError: ``fns`` is empty.
        TypeError: ``fns`` is not a list or tuple of ``PFn``.
    """

    __slots__ = ("_branches",)

    def __init__(self, fns: Sequence[PFn[Tin, Tout]]) -> None:
        if isinstance(fns, (str, bytes)) or not isinstance(fns, Sequence):
            raise TypeError(f"'fns' must be a sequence of PFn, not {type(fns).__name__}")
        branches = tuple(fns)
        if not branches:
            raise ValueError("'fns' must hold at least one PFn")
        for branch in branches:
            if not isinstance(branch, PFn):
                raise TypeError(f"'fns' must hold PFn objects, not {type(branch).__name__}")
        self._setup(_pass_through, 1.0)
        self._branches: tuple[PFn[Any, Any], ...] = branches

    def _describe(self) -> str:
        return "[" + ", ".join(repr(branch) for branch in self._branches) + "]"

    def _run(
        self,
        items: Iterable[Any],
        env: _Env,
        output: ProducerConsumerQueue[Any],
        *,
        owns_output: bool,
    ) -> Task[None]:
        name = callable_name(PFork)
        signal = operation_signal(env.interrupt)
        source = self._upstream_output(items, env.feeding(signal))
        policy = FailurePolicy(signal, (output,), env.policy)
        inner = _Env(signal.interrupt, env.scheduler, env.max_parallelism, policy)
        branches = self._branches
        queues: tuple[ProducerConsumerQueue[Any], ...] = tuple(
            ProducerConsumerQueue(capacity=STAGE_CAPACITY) for _ in branches
        )
        parts = [
            run_operation(
                source,
                _pass_through,
                (),
                {},
                name=name,
                count=min(len(branches), max(1, math.ceil(env.max_parallelism))),
                signal=operation_signal(inner.interrupt),
                scheduler=inner.scheduler,
                outputs=queues,
                owns_outputs=True,
                parent=policy,
            )
        ]
        parts.extend(
            branch._run(queue.get_iterator(), inner, output, owns_output=False)
            for branch, queue in zip(branches, queues, strict=True)
        )
        return settle_when_done(
            parts, policy, (output,), owns_outputs=owns_output, name=name, adopt_failures=False
        )


for _cls in (PFn, NullPFn, PFilter, PFork):
    _cls.__module__ = "runtime.threading.parallel.pipeline"
del _cls
