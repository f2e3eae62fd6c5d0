"""Cooperative cancellation: :class:`InterruptSignal` (write side) and :class:`Interrupt`.

Interrupts form a directed graph of links (a child may have several parents). One
process-wide lock, ``_graph_lock``, guards every interrupt's signaled state, its links and its
callbacks. Holding one lock for the whole graph is what makes linking and signaling mutually
atomic: a child is linked only under the lock after checking its parents, and a signal marks
the whole reachable subgraph under the lock, so a child created concurrently with its
parent's ``signal()`` is either marked by that call or created already signaled.

Callbacks and wait events are run *after* the lock is released, on the signaling thread.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Final, NoReturn

from ._errors import InterruptException
from ._events import Event, OneTimeEvent, _run_all

__all__ = ("Interrupt", "InterruptSignal", "raise_if_interrupted", "validate_interrupt")

# Guards, for every Interrupt: _signal_id, _exception, _children, _callbacks, _event creation.
_graph_lock = threading.Lock()

# Process-unique, never-reused signal ids (itertools.count is atomic under the GIL).
_signal_ids = itertools.count(1)


class Interrupt:
    """The read side of a cancellation token.

    Instances normally come from :attr:`InterruptSignal.interrupt` or :meth:`Interrupt.none`.
    ``Interrupt()`` called directly gives an interrupt that can never be signaled. Equality and
    hashing are by identity.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_can_signal",
        "_children",
        "_event",
        "_exception",
        "_parents",
        "_signal_id",
    )

    def __init__(self) -> None:
        self._init(can_signal=False)

    def _init(self, *, can_signal: bool) -> None:
        self._can_signal = can_signal
        self._signal_id: int | None = None
        self._exception: InterruptException | None = None
        # Children are held weakly: a long-lived parent does not keep dropped children alive.
        self._children: weakref.WeakSet[Interrupt] | None = (
            weakref.WeakSet() if can_signal else None
        )
        # The parents this interrupt is linked to, held strongly until it is signaled. Parents
        # hold their children only weakly, so without this an intermediate interrupt whose
        # signal was dropped would be collected and cut the path to its live descendants.
        # A node thus lives as long as it, or a descendant it must reach, is alive.
        self._parents: list[Interrupt] | None = None
        # Callables run once when this interrupt becomes signaled (wake-ups of blocked waits).
        self._callbacks: dict[object, Callable[[], None]] | None = {} if can_signal else None
        self._event: OneTimeEvent | None = None

    @classmethod
    def _signalable(cls) -> Interrupt:
        interrupt = cls.__new__(cls)
        interrupt._init(can_signal=True)
        return interrupt

    _none: Interrupt

    @staticmethod
    def none() -> Interrupt:
        """The process-wide interrupt that is never signaled and records no children."""
        return _NONE

    @property
    def is_signaled(self) -> bool:
        """Whether the interrupt has been signaled."""
        return self._signal_id is not None

    @property
    def signal_id(self) -> int | None:
        """``None`` until signaled; then the id of the :class:`InterruptSignal` that caused it."""
        return self._signal_id

    @property
    def wait_event(self) -> Event:
        """A :class:`OneTimeEvent` signaled at the moment the interrupt becomes signaled."""
        event = self._event
        if event is None:
            with _graph_lock:
                event = self._event
                if event is None:
                    event = OneTimeEvent(purpose="INTERRUPT_NOTIFY")
                    if self._signal_id is not None:
                        event.signal()
                    self._event = event
        return event

    def propagates_to(self, interrupt: Interrupt) -> bool:
        """Whether signaling ``self`` would, through the current links, signal ``interrupt``.

        ``False`` for ``self`` itself unless links form a cycle, and ``False`` once ``self``
        is signaled, because links are dropped on signaling.
        """
        if not isinstance(interrupt, Interrupt):
            raise TypeError(f"'interrupt' must be an Interrupt, not {type(interrupt).__name__}")
        with _graph_lock:
            if self._children is None:
                return False
            stack = list(self._children)
            seen: set[int] = set()
            while stack:
                node = stack.pop()
                if node is interrupt:
                    return True
                if id(node) in seen or node._children is None:
                    continue
                seen.add(id(node))
                stack.extend(node._children)
        return False

    def raise_if_signaled(self) -> None:
        """Raise this interrupt's :class:`InterruptException` if it is signaled.

        The same exception object is raised every time, with its traceback reset so that
        repeated raises do not make it grow.
        """
        exception = self._exception
        if exception is not None:
            _raise(exception)

    def wait(self, timeout: float | None = None, /, interrupt: Interrupt | None = None) -> bool:
        """Block until this interrupt is signaled; same as ``self.wait_event.wait(...)``."""
        return self.wait_event.wait(timeout, interrupt)

    def __repr__(self) -> str:
        if self is _NONE:
            return "<Interrupt none>"
        state = f"signaled by #{self._signal_id}" if self._signal_id is not None else "not signaled"
        return f"<Interrupt {state}>"

    # -- wake-up registrations, used by blocking waits ----------------------------------------

    def _subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when this interrupt becomes signaled.

        Callers re-check :attr:`is_signaled` after subscribing; a callback registered after
        the signal is simply never called.
        """
        with _graph_lock:
            if self._callbacks is not None and self._signal_id is None:
                self._callbacks[callback] = callback

    def _unsubscribe(self, callback: Callable[[], None]) -> None:
        with _graph_lock:
            if self._callbacks is not None:
                self._callbacks.pop(callback, None)


def validate_interrupt(interrupt: object) -> None:
    """Check an ``interrupt`` argument.

    Raises:
        TypeError: ``interrupt`` is neither an :class:`Interrupt` nor ``None``.
    """
    if interrupt is not None and not isinstance(interrupt, Interrupt):
        raise TypeError(f"'interrupt' must be an Interrupt or None, not {type(interrupt).__name__}")


def raise_if_interrupted(interrupt: Interrupt | None) -> None:
    """The entry check of acquire/take operations (SEMANTICS §2.2): validate, then raise.

    Raises:
        TypeError: ``interrupt`` is neither an :class:`Interrupt` nor ``None``.
        InterruptException: ``interrupt`` is signaled (its own exception, per API §0.7).
    """
    if interrupt is not None:
        validate_interrupt(interrupt)
        interrupt.raise_if_signaled()


def _raise(exception: BaseException) -> NoReturn:
    raise exception.with_traceback(None)


_NONE: Final = Interrupt()


def _mark(node: Interrupt, signal_id: int) -> None:
    """Mark ``node`` signaled. Called with ``_graph_lock`` held."""
    # The exception is stored before the id: readers take no lock, and a thread that sees
    # ``is_signaled`` must find the exception that ``raise_if_signaled()`` raises.
    node._exception = InterruptException(node)
    node._signal_id = signal_id
    node._parents = None


def _signal_graph(root: Interrupt, signal_id: int) -> None:
    fired: list[tuple[Interrupt, list[Callable[[], None]]]] = []
    with _graph_lock:
        if root._signal_id is not None:
            return
        stack = [root]
        while stack:
            node = stack.pop()
            if node._signal_id is not None:
                continue  # already signaled: also what stops cycles
            _mark(node, signal_id)
            children = list(node._children) if node._children else []
            node._children = None  # links are dropped once signaled
            callbacks = list(node._callbacks.values()) if node._callbacks else []
            node._callbacks = None
            fired.append((node, callbacks))
            stack.extend(reversed(children))  # depth first
    # Every wait event is signaled and every callback run even if one of them raises (a
    # continuation on a wait event, say): the others are wake-ups of blocked waiters.
    calls: list[Callable[[], None]] = []
    for node, callbacks in fired:
        if node._event is not None:
            calls.append(node._event.signal)
        calls.extend(callbacks)
    _run_all(calls)


class InterruptSignal:
    """The write side of a cancellation token.

    ``InterruptSignal(*linked_interrupts)`` creates a new :class:`Interrupt` with a fresh,
    process-unique signal id. If parents are given, the new interrupt becomes a child of each:
    signaling any parent signals the child. If a parent is already signaled, the child is
    created signaled, with that parent's ``signal_id``.
    """

    __slots__ = ("__weakref__", "_id", "_interrupt")

    def __init__(self, *linked_interrupts: Interrupt) -> None:
        for parent in linked_interrupts:
            if not isinstance(parent, Interrupt):
                raise TypeError(
                    "'linked_interrupts' must be Interrupt objects, "
                    f"not {type(parent).__name__}"
                )
        self._id = next(_signal_ids)
        child = Interrupt._signalable()
        self._interrupt = child
        if not linked_interrupts:
            return
        with _graph_lock:
            for parent in linked_interrupts:
                if parent._signal_id is not None:
                    _mark(child, parent._signal_id)
                    child._children = None
                    child._callbacks = None
                    return
            parents: list[Interrupt] = []
            for parent in linked_interrupts:
                if parent._children is not None:
                    parent._children.add(child)
                    parents.append(parent)
            child._parents = parents

    @property
    def interrupt(self) -> Interrupt:
        """The interrupt this signal controls."""
        return self._interrupt

    @property
    def signal_id(self) -> int:
        """This signal's process-unique id (extension)."""
        return self._id

    def signal(self) -> None:
        """Signal the interrupt, then every descendant not yet signaled, depth first.

        All are signaled with this signal's id before the call returns; links are then
        dropped. A second call has no effect. Safe to call concurrently with linking and with
        other ``signal()`` calls.
        """
        _signal_graph(self._interrupt, self._id)

    def __repr__(self) -> str:
        state = "signaled" if self._interrupt.is_signaled else "armed"
        return f"<InterruptSignal #{self._id} {state}>"


for _cls in (Interrupt, InterruptSignal):
    _cls.__module__ = "runtime.threading"
del _cls
