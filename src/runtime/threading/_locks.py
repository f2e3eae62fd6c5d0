"""Locks and semaphores that honour timeouts and interrupts, and the ``synclock`` decorator.

A :class:`LockBase` wraps a builtin primitive (``threading.Lock``, ``threading.RLock`` or a
``threading.Semaphore``). The primitive alone decides who holds it; the wrapper adds a way to
*wait* for it that a builtin cannot offer: an exact deadline, an interrupt that wakes the
waiter by notification, and cooperation with the task scheduler.

* Uncontended ``acquire()`` is a single non-blocking ``primitive.acquire(False)``.
* A contended acquirer parks on a small internal :class:`threading.Condition` (through
  :func:`~runtime.threading._blocking.cond_wait`) and retries ``primitive.acquire(False)`` in a
  predicate loop. :meth:`LockBase.release` notifies one parked acquirer; an interrupt notifies
  all of them (each re-checks its own interrupt). An acquirer that leaves without the
  primitive (timeout, interrupt) passes its possible wake-up on to the next one.

Consequence, by design: releasing the wrapped builtin directly, bypassing
:meth:`LockBase.release`, frees it but does not wake acquirers parked in the wrapper. They
notice only when they are notified for another reason or when their deadline passes.

A :class:`LockBase` also implements the private lock protocol of :class:`threading.Condition`
(``_is_owned``, ``_release_save``, ``_acquire_restore``), so ``threading.Condition(lock)``
over a library lock waits and re-acquires through the wrapper and wakes its acquirers. The
concurrent queue relies on that.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from time import monotonic as _monotonic
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, final, overload

from ._blocking import cond_wait, deadline_for, subscribe_notify, unsubscribe_notify
from ._errors import ThreadingException
from ._interrupts import Interrupt, raise_if_interrupted

__all__ = ("Lock", "LockBase", "Semaphore", "acquire_or_fail", "synclock")

P = ParamSpec("P")
R = TypeVar("R")

_LOCK_TYPE: Final = type(threading.Lock())
_RLOCK_TYPES: Final = tuple({type(threading.RLock()), threading._PyRLock})  # type: ignore[attr-defined]


class LockBase:
    """A lock or semaphore whose acquisition honours a timeout and an interrupt.

    Wraps a builtin primitive. Re-entrancy and capacity are the primitive's: an ``RLock``
    may be re-acquired by its holder, a ``threading.Lock`` acquired again by its holder
    blocks until the timeout, a semaphore admits as many holders as its counter allows.

    Releasing the wrapped primitive directly (not through :meth:`release`) frees it but does
    not wake acquirers already waiting in :meth:`acquire`; always release through the
    wrapper.

    Args:
        lock: the builtin primitive to wrap.

    Raises:
        TypeError: ``lock`` is not a ``threading.Lock``, ``threading.RLock`` or
            ``threading.Semaphore`` (``BoundedSemaphore`` included).
    """

    __slots__ = ("__weakref__", "_cond", "_lock", "_waiting")

    def __init__(self, lock: threading.RLock | threading.Lock | threading.Semaphore) -> None:
        if not isinstance(lock, (_LOCK_TYPE, *_RLOCK_TYPES, threading.Semaphore)):
            raise TypeError(
                "'lock' must be a threading.Lock, threading.RLock or threading.Semaphore, "
                f"not {type(lock).__name__}"
            )
        # The primitive: the only state that says who holds the lock.
        self._lock: Any = lock
        # Guards _waiting and the acquirers parked on it. It is never held while the
        # primitive is acquired blockingly, so holding it is always brief.
        self._cond = threading.Condition(threading.Lock())
        # Number of acquirers inside the slow path. Written under _cond; read without it by
        # release(), which is safe: an acquirer increments it *before* its first failed try,
        # so a release that happens after that try sees it non-zero and notifies (taking
        # _cond, which the acquirer only gives up inside cond_wait).
        self._waiting = 0

    # -- acquisition -------------------------------------------------------------------------

    def acquire(self, timeout: float | None = None, interrupt: Interrupt | None = None) -> bool:
        """Acquire the lock, blocking while it is held elsewhere.

        Blocks at most ``timeout`` seconds in total (``None``: no limit; ``0``: try once and
        never block). The deadline is exact, with or without ``interrupt``. On a worker thread
        the wait cooperates with the scheduler.

        Args:
            timeout: seconds to wait at most, or ``None``. Not positional-only.
            interrupt: an interrupt for this call. Signaled on entry or during the wait, it
                raises its :class:`InterruptException` promptly (by notification).

        Returns:
            ``True`` once acquired, ``False`` on timeout.

        Raises:
            ValueError: ``timeout`` is negative.
            TypeError: ``timeout`` is not a number, or ``interrupt`` is not an Interrupt.
            InterruptException: ``interrupt`` is or becomes signaled; the lock is not taken.
        """
        if timeout is None:
            deadline = None
        else:
            if timeout.__class__ is bool:
                # acquire(True) in threading style would silently mean "wait one second".
                raise TypeError("'timeout' must be a number or None, not bool")
            deadline = deadline_for(timeout)
        if interrupt is not None:
            raise_if_interrupted(interrupt)
        if self._lock.acquire(False):
            return True
        if timeout == 0:
            return False
        return self._acquire_slow(deadline, interrupt)

    def _acquire_until(self, deadline: float | None, interrupt: Interrupt | None) -> bool:
        """Acquire with an absolute deadline already computed (and interrupt checked)."""
        if self._lock.acquire(False):
            return True
        if deadline is not None and _monotonic() >= deadline:
            return False
        return self._acquire_slow(deadline, interrupt)

    def _acquire_slow(self, deadline: float | None, interrupt: Interrupt | None) -> bool:
        lock = self._lock
        cond = self._cond
        acquired = False
        with cond:
            self._waiting += 1
            handle = subscribe_notify(interrupt, cond)
            try:
                while True:
                    # Checked after subscribing, under _cond: a signal cannot slip in between.
                    if interrupt is not None and interrupt.is_signaled:
                        interrupt.raise_if_signaled()
                    if lock.acquire(False):
                        acquired = True
                        return True
                    if deadline is not None and _monotonic() >= deadline:
                        return False
                    cond_wait(cond, deadline)
            finally:
                self._waiting -= 1
                unsubscribe_notify(interrupt, handle)
                if not acquired and self._waiting:
                    # This acquirer may have absorbed a release's notification: pass it on.
                    cond.notify(1)

    def release(self) -> None:
        """Release the lock and wake one waiting acquirer.

        Raises:
            RuntimeError: the lock is not held (from the primitive).
            ValueError: a bounded semaphore is released more times than it was acquired.
        """
        self._lock.release()
        if self._waiting:
            with self._cond:
                self._cond.notify(1)

    def locked(self) -> bool:
        """Whether the lock is held now, like ``threading.Lock.locked()`` (extension).

        For a re-entrant lock: held by any thread, the caller included. For a semaphore:
        every unit is taken, so an ``acquire(0)`` would fail. The answer is a snapshot.
        """
        lock = self._lock
        if isinstance(lock, _LOCK_TYPE):
            return lock.locked()
        if isinstance(lock, threading.Semaphore):
            return lock._value == 0
        if lock._is_owned():
            return True
        if lock.acquire(False):
            self.release()  # through the wrapper: a parked acquirer may have missed a release
            return False
        return True

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> None:
        """Acquire with no timeout and no interrupt."""
        self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release; exceptions are not suppressed."""
        self.release()

    # -- the private lock protocol of threading.Condition ----------------------------------

    def _is_owned(self) -> bool:
        is_owned = getattr(self._lock, "_is_owned", None)
        if is_owned is not None:
            return bool(is_owned())
        if self._lock.acquire(False):
            self.release()
            return False
        return True

    def _release_save(self) -> Any:
        """Release completely (every recursion level of an RLock) and wake an acquirer."""
        save = getattr(self._lock, "_release_save", None)
        if save is not None:
            state = save()
        else:
            self._lock.release()
            state = None
        if self._waiting:
            with self._cond:
                self._cond.notify(1)
        return state

    def _acquire_restore(self, state: Any) -> None:
        """Re-acquire after :meth:`_release_save`, waiting cooperatively; no deadline."""
        self._acquire_until(None, None)
        if state is not None:
            # An RLock's saved state is (count, owner). We own it once now; the other levels
            # are re-entrant acquisitions, which cannot fail.
            for _ in range(state[0] - 1):
                self._lock.acquire(False)

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<{type(self).__name__} {state} ({type(self._lock).__name__})>"


@final
class Lock(LockBase):
    """A mutual-exclusion lock: re-entrant by default.

    Args:
        reentrant: ``True`` wraps a ``threading.RLock``; ``False`` a plain ``threading.Lock``,
            which its holder cannot acquire again (a second acquisition waits until its
            timeout).
    """

    __slots__ = ()

    def __init__(self, reentrant: bool = True) -> None:
        super().__init__(threading.RLock() if reentrant else threading.Lock())


@final
class Semaphore(LockBase):
    """A bounded counting semaphore admitting up to ``max_connections`` holders at once.

    Args:
        max_connections: the number of holders allowed at once.

    Raises:
        TypeError: ``max_connections`` is not an int.
        ValueError: ``max_connections`` is less than 1.
    """

    __slots__ = ()

    def __init__(self, max_connections: int = 1) -> None:
        if not isinstance(max_connections, int) or isinstance(max_connections, bool):
            raise TypeError(
                f"'max_connections' must be an int, not {type(max_connections).__name__}"
            )
        if max_connections < 1:
            raise ValueError("'max_connections' must be at least 1")
        super().__init__(threading.BoundedSemaphore(max_connections))


# -- acquire_or_fail ------------------------------------------------------------------------


@final
class _Acquired:
    """The context manager returned by :func:`acquire_or_fail`: releases the lock once."""

    __slots__ = ("_lock",)

    def __init__(self, lock: LockBase) -> None:
        # The lock still to release; None once released.
        self._lock: LockBase | None = lock

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __repr__(self) -> str:
        return f"<acquired {self._lock!r}>" if self._lock is not None else "<released>"


def acquire_or_fail(
    lock: Lock | Semaphore,
    timeout: float | None,
    fail: Callable[[], Exception],
    interrupt: Interrupt | None = None,
) -> AbstractContextManager[None]:
    """Acquire ``lock`` now, or raise the exception built by ``fail``.

    Blocks at most ``timeout`` seconds in :meth:`LockBase.acquire`. The lock is held when the
    call returns; the returned context manager releases it once on exit. If the result is
    never used in a ``with`` block, the lock stays held.

    Args:
        lock: the library lock or semaphore to acquire.
        timeout: seconds to wait at most (``0`` tries once, ``None`` waits without limit).
        fail: called only when the lock could not be acquired in time; returns the
            exception to raise.
        interrupt: an interrupt for this call.

    Returns:
        A truthy context manager whose ``__enter__`` returns ``None`` and whose ``__exit__``
        releases the lock.

    Raises:
        Exception: the exception returned by ``fail()``, on timeout.
        InterruptException: ``interrupt`` is or becomes signaled (``fail`` is not called).
        TypeError: ``lock`` is not a library lock, ``fail`` is not callable or did not
            return an exception.
    """
    if not isinstance(lock, LockBase):
        raise TypeError(f"'lock' must be a Lock or Semaphore, not {type(lock).__name__}")
    if not callable(fail):
        raise TypeError(f"'fail' must be callable, not {type(fail).__name__}")
    if lock.acquire(timeout, interrupt=interrupt):
        return _Acquired(lock)
    error = fail()
    if not isinstance(error, BaseException):
        raise TypeError(f"'fail' must return an exception, not {type(error).__name__}")
    raise error


# -- synclock -------------------------------------------------------------------------------

# Guards _named_locks and _wrappers.
_synclock_guard = threading.Lock()
# Process-wide locks of synclock(name), created on first use and kept for the process.
_named_locks: dict[str, Lock] = {}


class _Anonymous:
    """The lock key of ``synclock(fn)``: a lock dedicated to the function."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<dedicated lock>"


_ANONYMOUS: Final = _Anonymous()


@final
class _CacheEntry:
    """What synclock remembers about an original function (held weakly by key)."""

    __slots__ = ("key", "lock", "wrapper")

    def __init__(self, key: str | _Anonymous, lock: Lock, wrapper: Callable[..., Any]) -> None:
        self.key = key
        self.lock = lock
        # Weak: the wrapper refers to the function, so a strong reference here would keep
        # the function (the weak key) alive for ever.
        self.wrapper: weakref.ref[Callable[..., Any]] = weakref.ref(wrapper)


# Original function -> its entry. Weak keys: decorating does not keep functions alive.
_wrappers: weakref.WeakKeyDictionary[Callable[..., Any], _CacheEntry] = weakref.WeakKeyDictionary()


def _make_wrapper(fn: Callable[P, R], lock: Lock) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with lock:
            return fn(*args, **kwargs)

    wrapper.__synclock__ = True  # type: ignore[attr-defined]
    return wrapper


def _synclock(fn: Callable[P, R], key: str | _Anonymous) -> Callable[P, R]:
    if not callable(fn):
        raise TypeError(f"synclock needs a callable, not {type(fn).__name__}")
    if getattr(fn, "__synclock__", False) is True:
        raise ThreadingException("Cannot apply synclock to a function twice")
    with _synclock_guard:
        try:
            entry = _wrappers.get(fn)
        except TypeError:  # neither hashable nor weakly referenceable: no caching possible
            entry = None
            cacheable = False
        else:
            cacheable = True
        if entry is not None:
            if entry.key != key:
                raise ThreadingException(
                    f"synclock was already applied to {getattr(fn, '__qualname__', fn)!r} "
                    f"with a different lock ({entry.key!r}, not {key!r})"
                )
            cached = entry.wrapper()
            if cached is not None:
                return cached
            lock = entry.lock
        elif isinstance(key, str):
            named = _named_locks.get(key)
            if named is None:
                named = _named_locks[key] = Lock()
            lock = named
        else:
            lock = Lock()
        wrapper = _make_wrapper(fn, lock)
        if cacheable:
            try:
                _wrappers[fn] = _CacheEntry(key, lock, wrapper)
            except TypeError:  # not weakly referenceable: the wrapper is simply not cached
                pass
        return wrapper


@overload
def synclock(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def synclock(name: str, /) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def synclock(
    fn_or_name: Callable[P, R] | str, /
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Serialise calls: each call of the wrapped function holds a re-entrant :class:`Lock`.

    ``@synclock`` gives the function a dedicated lock (for methods: one lock per function,
    shared by all instances). ``@synclock("name")`` makes every function decorated with that
    name share one process-wide lock, created on first use. A call blocks, without limit,
    until it holds the lock.

    The wrapper keeps the function's metadata (``functools.wraps``) and has
    ``__synclock__ = True``. Decorating the same function again with the same lock returns
    the same wrapper (the cache holds the function weakly).

    Raises:
        ThreadingException: the argument is already a synclock wrapper, or the function was
            already decorated with a different lock.
        TypeError: the argument is neither a callable nor a str.
    """
    if isinstance(fn_or_name, str):
        name = fn_or_name

        def decorator(fn: Callable[P, R]) -> Callable[P, R]:
            return _synclock(fn, name)

        return decorator
    return _synclock(fn_or_name, _ANONYMOUS)


for _obj in (LockBase, Lock, Semaphore, acquire_or_fail, synclock):
    _obj.__module__ = "runtime.threading"
del _obj
