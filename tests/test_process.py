"""Tests for runtime.threading._process: terminate_event, handle_signals, sleep, signal_after.

Everything that touches signal dispositions or interpreter shutdown runs in a subprocess, so
the test process keeps its own handlers and its terminate_event stays clear.
"""

from __future__ import annotations

import atexit
import signal
import sys
import textwrap
import threading
import time

import pytest

import runtime.threading as rt
from helpers import ThreadRunner, run_in_subprocess, wait_until_blocked
from runtime.threading import (
    Event,
    InterruptSignal,
    ThreadingException,
    _process,
    handle_signals,
    signal_after,
    sleep,
    terminate_event,
)
from runtime.threading._timer import THREAD_NAME

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal semantics")


def run(code: str, timeout: float = 30.0) -> tuple[int, list[str], str]:
    result = run_in_subprocess(textwrap.dedent(code), timeout=timeout)
    return result.returncode, result.stdout.splitlines(), result.stderr


# -- terminate_event and import ---------------------------------------------------------------


def test_terminate_event_is_a_clear_event_with_purpose_terminate() -> None:
    assert isinstance(terminate_event, Event)
    assert terminate_event.purpose == "TERMINATE"
    assert rt.terminate_event is terminate_event
    assert not terminate_event.is_signaled


def test_public_functions_live_in_runtime_threading() -> None:
    for fn in (handle_signals, sleep, signal_after):
        assert fn.__module__ == "runtime.threading"
        assert getattr(rt, fn.__name__) is fn


def test_import_changes_no_signal_disposition_and_starts_no_thread() -> None:
    code, out, err = run(
        """
        import signal, threading
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        import runtime.threading
        import runtime.threading.concurrent
        print(sorted(t.name for t in threading.enumerate()))
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        print(all(signal.getsignal(s) == h for s, h in before.items()))
        """
    )
    assert code == 0, err
    assert out == ["['MainThread']", "True", "True"]


def test_import_from_a_thread_that_is_not_the_main_thread() -> None:
    code, out, err = run(
        """
        import threading
        result = {}
        def load():
            try:
                import runtime.threading as rt
                rt.Event().signal()
                result["ok"] = True
            except BaseException as error:
                result["error"] = repr(error)
        worker = threading.Thread(target=load)
        worker.start()
        worker.join()
        print(result)
        """
    )
    assert code == 0, err
    assert out == ["{'ok': True}"]


def test_terminate_event_is_signaled_before_non_daemon_threads_are_joined() -> None:
    code, out, err = run(
        """
        import threading
        from runtime.threading import terminate_event
        def worker():
            print("released", terminate_event.wait(20), flush=True)
        threading.Thread(target=worker).start()
        print("main done", flush=True)
        """
    )
    assert code == 0, err
    assert out == ["main done", "released True"]


@posix_only
def test_an_uncaught_keyboard_interrupt_signals_terminate_event() -> None:
    code, out, err = run(
        """
        import threading
        from runtime.threading import terminate_event
        def worker():
            print("released", terminate_event.wait(20), flush=True)
        threading.Thread(target=worker).start()
        raise KeyboardInterrupt
        """
    )
    assert "KeyboardInterrupt" in err
    assert code != 0
    assert out == ["released True"]


def test_shutdown_hook_falls_back_when_the_threading_hook_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[object] = []
    monkeypatch.delattr(threading, "_register_atexit", raising=False)
    monkeypatch.setattr(atexit, "register", registered.append)
    _process._register_shutdown_hook()
    assert registered == [terminate_event.signal]


def test_shutdown_hook_signals_at_once_when_imported_during_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(callback: object) -> None:
        raise RuntimeError("can't register atexit after shutdown")

    stand_in = Event(purpose="TERMINATE")
    monkeypatch.setattr(threading, "_register_atexit", refuse, raising=False)
    monkeypatch.setattr(_process, "terminate_event", stand_in)
    _process._register_shutdown_hook()
    assert stand_in.is_signaled


# -- handle_signals ------------------------------------------------------------------------------


@posix_only
def test_handled_sigint_still_raises_keyboard_interrupt() -> None:
    code, out, err = run(
        """
        import signal
        from runtime.threading import handle_signals, terminate_event
        handle_signals()
        handler = signal.getsignal(signal.SIGINT)
        print(handler.previous is signal.default_int_handler)
        try:
            signal.raise_signal(signal.SIGINT)
            print("no KeyboardInterrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt", terminate_event.is_signaled)
        """
    )
    assert code == 0, err
    assert out == ["True", "KeyboardInterrupt True"]


@posix_only
def test_handled_sigterm_with_default_disposition_raises_system_exit_143() -> None:
    code, out, err = run(
        """
        import signal
        from runtime.threading import handle_signals, terminate_event
        handle_signals()
        try:
            signal.raise_signal(signal.SIGTERM)
            print("no SystemExit")
        except SystemExit as exit:
            print("SystemExit", exit.code, terminate_event.is_signaled)
        """
    )
    assert code == 0, err
    assert out == [f"SystemExit {128 + signal.SIGTERM} True"]


@posix_only
def test_sigterm_from_outside_exits_gracefully_with_status_143() -> None:
    code, out, err = run(
        """
        import os, signal, threading
        from runtime.threading import handle_signals, terminate_event
        handle_signals()
        def worker():
            terminate_event.wait(20)
            print("worker saw terminate", flush=True)
        threading.Thread(target=worker).start()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(20)
        finally:
            print("finally ran", flush=True)
        """
    )
    assert code == 128 + signal.SIGTERM, err
    text = "\n".join(out)  # two threads print concurrently: their lines may interleave
    assert "finally ran" in text
    assert "worker saw terminate" in text


@posix_only
def test_handle_signals_chains_ignores_and_is_idempotent() -> None:
    code, out, err = run(
        """
        import signal
        from runtime.threading import handle_signals, terminate_event
        calls = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        handle_signals(signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
        first = signal.getsignal(signal.SIGUSR1)
        handle_signals(signal.SIGUSR1, signal.SIGWINCH)          # twice: harmless
        print("same handler", signal.getsignal(signal.SIGUSR1) is first)
        print("ignored left alone", signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN)
        signal.raise_signal(signal.SIGUSR1)
        print("previous handler called", calls == [signal.SIGUSR1])
        print("terminate", terminate_event.is_signaled)
        terminate_event.clear()
        signal.raise_signal(signal.SIGWINCH)                     # default: ignored
        print("winch ignored, terminate", terminate_event.is_signaled)
        handle_signals()
        handle_signals()
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            print("one KeyboardInterrupt")
        """
    )
    assert code == 0, err
    assert out == [
        "same handler True",
        "ignored left alone True",
        "previous handler called True",
        "terminate True",
        "winch ignored, terminate True",
        "one KeyboardInterrupt",
    ]


@posix_only
def test_a_signal_arriving_while_the_main_thread_holds_the_event_lock_does_not_deadlock() -> None:
    code, out, err = run(
        """
        import signal
        from runtime.threading import handle_signals, terminate_event
        calls = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))
        handle_signals(signal.SIGUSR1)
        # As if the signal interrupted the main thread inside an operation on the event.
        with terminate_event._cond:
            signal.raise_signal(signal.SIGUSR1)
            print("handler returned", calls == [signal.SIGUSR1])
        print("signaled soon after", terminate_event.wait(10))
        """
    )
    assert code == 0, err
    assert out == ["handler returned True", "signaled soon after True"]


def test_handle_signals_from_another_thread_raises() -> None:
    before = signal.getsignal(signal.SIGINT)
    worker = ThreadRunner(handle_signals)
    with pytest.raises(ThreadingException, match="main thread"):
        worker.join()
    assert signal.getsignal(signal.SIGINT) is before


def test_handle_signals_rejects_bad_signals_before_installing_anything() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TypeError):
        handle_signals(signal.SIGINT, "SIGTERM")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        handle_signals(signal.SIGINT, 100000)
    assert signal.getsignal(signal.SIGINT) is before


# -- sleep -----------------------------------------------------------------------------------------


def test_sleep_zero_returns_at_once() -> None:
    sleep(0)  # returns at once: the per-test timeout would catch a wait


def test_sleep_waits_at_least_the_time() -> None:
    started = time.monotonic()
    sleep(0.1)
    assert 0.1 <= time.monotonic() - started < 5


def test_sleep_returns_at_once_with_a_signaled_interrupt() -> None:
    signal_ = InterruptSignal()
    signal_.signal()
    started = time.monotonic()
    sleep(30, interrupt=signal_.interrupt)
    assert time.monotonic() - started < 5


def test_sleep_returns_early_when_the_interrupt_fires() -> None:
    signal_ = InterruptSignal()
    sleeper = ThreadRunner(sleep, 30, signal_.interrupt)
    wait_until_blocked(sleeper.thread)
    signal_.signal()
    assert sleeper.join(5) is None


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan")])
def test_sleep_rejects_negative_time(bad: float) -> None:
    with pytest.raises(ValueError, match="'time' must be a non-negative number"):
        sleep(bad)


def test_sleep_rejects_bad_types() -> None:
    with pytest.raises(TypeError, match="'time'"):
        sleep("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'interrupt'"):
        sleep(0.01, interrupt=object())  # type: ignore[arg-type]


def test_sleep_returns_early_once_termination_is_requested() -> None:
    code, out, err = run(
        """
        import threading, time
        from runtime.threading import sleep, terminate_event
        threading.Timer(0.1, terminate_event.signal).start()
        started = time.monotonic()
        sleep(30)
        print("early", time.monotonic() - started < 20)
        started = time.monotonic()
        for _ in range(100):
            sleep(30)
        print("later sleeps at once", time.monotonic() - started < 20)
        """
    )
    assert code == 0, err
    assert out == ["early True", "later sleeps at once True"]


# -- signal_after ------------------------------------------------------------------------------


def test_signal_after_returns_at_once_and_signals_later() -> None:
    signal_ = InterruptSignal()
    started = time.monotonic()
    signal_after(signal_, 0.2)
    returned = time.monotonic()
    if returned - started < 0.2:  # the deadline cannot have passed yet
        assert not signal_.interrupt.is_signaled
    assert returned - started < 5, "signal_after blocked its caller"
    assert signal_.interrupt.wait(5)
    assert time.monotonic() - started >= 0.2


def test_signal_after_zero_signals_before_returning() -> None:
    signal_ = InterruptSignal()
    signal_after(signal_, 0)
    assert signal_.interrupt.is_signaled


def test_signal_after_uses_one_shared_timer_thread() -> None:
    before = threading.active_count()
    signals = [InterruptSignal() for _ in range(20)]
    for index, signal_ in enumerate(signals):
        signal_after(signal_, 0.01 + 0.001 * index)
    assert threading.active_count() <= before + 1
    for signal_ in signals:
        assert signal_.interrupt.wait(5)
    assert [t.name for t in threading.enumerate()].count(THREAD_NAME) == 1


def test_signal_after_on_a_signaled_signal_is_harmless() -> None:
    signal_ = InterruptSignal()
    signal_.signal()
    signal_id = signal_.interrupt.signal_id
    signal_after(signal_, 0.01)
    signal_after(signal_, 0)
    assert signal_.interrupt.signal_id == signal_id


def test_signal_after_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'time' must be a non-negative number"):
        signal_after(InterruptSignal(), -1)
    with pytest.raises(TypeError, match="'signal'"):
        signal_after(InterruptSignal().interrupt, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'time'"):
        signal_after(InterruptSignal(), None)  # type: ignore[arg-type]


def test_a_pending_signal_after_does_not_keep_the_interpreter_alive() -> None:
    code, out, err = run(
        """
        from runtime.threading import InterruptSignal, signal_after
        signal_after(InterruptSignal(), 120)
        print("exiting")
        """
    )
    assert code == 0, err
    assert out == ["exiting"]
