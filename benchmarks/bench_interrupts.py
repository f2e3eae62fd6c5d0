"""Interrupt wake-up latency and timeout accuracy of library waits, against the stdlib.

Run it as ``python benchmarks/bench_interrupts.py`` (``--samples N`` for the number of latency
samples per scenario, default 200). Plain standard library; see benchmarks/README.md.

1. Wake-up latency after ``InterruptSignal.signal()`` of a thread blocked in
   ``Event.wait(interrupt=)``, ``Lock.acquire(interrupt=)`` (the lock held by another thread)
   and ``Queue.dequeue(interrupt=)``, next to a bare ``threading.Event.wait()`` woken by
   ``set()``. Then, for reference, the wake-up after the ordinary state change (``signal()``,
   ``release()``, ``enqueue()``) next to ``threading.Lock`` and ``queue.Queue``.
   Scenarios are sampled in alternation so that machine noise hits them all alike.
2. Timeout accuracy: the actual duration of 0.05 s and 0.2 s timeouts of ``Event.wait``,
   ``Lock.acquire`` and ``Queue.dequeue`` (each given an interrupt that stays clear, the
   path on which the reference implementation ended waits early), next to
   ``threading.Event.wait``.
"""

from __future__ import annotations

import argparse
import queue as stdlib_queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

try:
    import runtime.threading  # noqa: F401
except ImportError:  # not installed: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from runtime.threading import Event, InterruptException, InterruptSignal, Lock
from runtime.threading.concurrent import Queue

Block = Callable[[], object]
Trigger = Callable[[], object]
Setup = Callable[[], tuple[Block, Trigger, Callable[[], None]]]

# Innermost Python frames of a parked thread: the library's park and threading's waits. A
# builtin lock's acquire() has no frame of its own: the waiter's loop (_run) is innermost.
_PARKED_FRAMES = frozenset({"_acquire", "wait", "_run"})


class Waiter:
    """A thread that runs one blocking call per sample and stamps the moment it returns."""

    def __init__(self) -> None:
        self._jobs: stdlib_queue.SimpleQueue[
            tuple[Block, list[float], threading.Event, threading.Event] | None
        ] = stdlib_queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bench-waiter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            block, stamp, started, done = job
            started.set()
            block()
            stamp.append(time.perf_counter())
            done.set()

    def run(self, block: Block) -> tuple[list[float], threading.Event]:
        stamp: list[float] = []
        started, done = threading.Event(), threading.Event()
        self._jobs.put((block, stamp, started, done))
        started.wait()
        return stamp, done

    def wait_parked(self) -> None:
        """Return once the waiter sits still in a blocking frame (two polls alike)."""
        ident = self._thread.ident
        assert ident is not None
        previous: tuple[object, int] | None = None
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.0005)
            frame = sys._current_frames().get(ident)
            if frame is None or frame.f_code.co_name not in _PARKED_FRAMES:
                previous = None
                continue
            here = (frame, frame.f_lasti)
            if previous is not None and previous[0] is here[0] and previous[1] == here[1]:
                return
            previous = here
        raise RuntimeError("the waiter never blocked")

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(5)


def sample(waiter: Waiter, setup: Setup) -> float:
    """One latency sample: seconds from the trigger to the blocked call's return."""
    block, trigger, cleanup = setup()
    stamp, done = waiter.run(block)
    waiter.wait_parked()
    started = time.perf_counter()
    trigger()
    if not done.wait(10):
        raise RuntimeError("the blocked call was not woken")
    cleanup()
    return stamp[0] - started


def _nothing() -> None:
    pass


# -- latency scenarios: each returns (blocking call, trigger, cleanup) ------------------------


def baseline_event() -> tuple[Block, Trigger, Callable[[], None]]:
    event = threading.Event()
    return event.wait, event.set, _nothing


def interrupt_event_wait() -> tuple[Block, Trigger, Callable[[], None]]:
    signal, event = InterruptSignal(), Event()
    return (lambda: event.wait(None, signal.interrupt)), signal.signal, _nothing


def interrupt_lock_acquire() -> tuple[Block, Trigger, Callable[[], None]]:
    signal, lock = InterruptSignal(), Lock(reentrant=False)
    lock.acquire()

    def block() -> None:
        try:
            lock.acquire(None, interrupt=signal.interrupt)
        except InterruptException:
            pass

    return block, signal.signal, lock.release


def interrupt_queue_dequeue() -> tuple[Block, Trigger, Callable[[], None]]:
    signal, queue = InterruptSignal(), Queue[int]()

    def block() -> None:
        try:
            queue.dequeue(None, signal.interrupt)
        except InterruptException:
            pass

    return block, signal.signal, _nothing


def state_event_signal() -> tuple[Block, Trigger, Callable[[], None]]:
    event = Event()
    return event.wait, event.signal, _nothing


def baseline_lock_release() -> tuple[Block, Trigger, Callable[[], None]]:
    lock = threading.Lock()
    lock.acquire()
    return lock.acquire, lock.release, lock.release


def state_lock_release() -> tuple[Block, Trigger, Callable[[], None]]:
    lock = Lock(reentrant=False)
    lock.acquire()
    return lock.acquire, lock.release, lock.release


def baseline_queue_put() -> tuple[Block, Trigger, Callable[[], None]]:
    queue: stdlib_queue.Queue[int] = stdlib_queue.Queue()
    return queue.get, (lambda: queue.put(1)), _nothing


def state_queue_enqueue() -> tuple[Block, Trigger, Callable[[], None]]:
    queue = Queue[int]()
    return queue.dequeue, (lambda: queue.enqueue(1)), _nothing


EVENT_BASELINE = "threading.Event.wait() woken by set()  [baseline]"
LOCK_BASELINE = "threading.Lock.acquire() woken by release()  [baseline]"
QUEUE_BASELINE = "queue.Queue.get() woken by put()  [baseline]"

# (name, setup, the baseline row its ratio is computed against)
INTERRUPT_SCENARIOS: list[tuple[str, Setup, str | None]] = [
    (EVENT_BASELINE, baseline_event, None),
    ("Event.wait(interrupt=) woken by signal()", interrupt_event_wait, EVENT_BASELINE),
    ("Lock.acquire(interrupt=) woken by signal()", interrupt_lock_acquire, EVENT_BASELINE),
    ("Queue.dequeue(interrupt=) woken by signal()", interrupt_queue_dequeue, EVENT_BASELINE),
]

STATE_SCENARIOS: list[tuple[str, Setup, str | None]] = [
    (EVENT_BASELINE, baseline_event, None),
    ("Event.wait() woken by Event.signal()", state_event_signal, EVENT_BASELINE),
    (LOCK_BASELINE, baseline_lock_release, None),
    ("Lock.acquire() woken by Lock.release()", state_lock_release, LOCK_BASELINE),
    (QUEUE_BASELINE, baseline_queue_put, None),
    ("Queue.dequeue() woken by enqueue()", state_queue_enqueue, QUEUE_BASELINE),
]


def measure(
    scenarios: list[tuple[str, Setup, str | None]], samples: int, waiter: Waiter
) -> dict[str, list[float]]:
    """Sample every scenario ``samples`` times, in alternation."""
    results: dict[str, list[float]] = {name: [] for name, _, _ in scenarios}
    for _ in range(samples):
        for name, setup, _ in scenarios:
            results[name].append(sample(waiter, setup))
    return results


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f}"


def print_latency_table(
    title: str, scenarios: list[tuple[str, Setup, str | None]], results: dict[str, list[float]]
) -> None:
    baselines = {name: base for name, _, base in scenarios if base is not None}
    print(title)
    print(f"  {'scenario':<58} {'median':>9} {'p90':>9} {'max':>9}  ratio")
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, values in results.items():
        ordered = sorted(values)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        base = baselines.get(name)
        ratio = f"{medians[name] / medians[base]:5.2f}x" if base else "    -"
        print(f"  {name:<58} {us(medians[name])} {us(p90)} {us(ordered[-1])}  {ratio}")
    print("  (microseconds; ratio = median / median of the baseline it is compared with)")
    print()


# -- timeout accuracy --------------------------------------------------------------------------


def timed(call: Callable[[float], object], timeout: float) -> float:
    started = time.perf_counter()
    call(timeout)
    return time.perf_counter() - started


def timeout_calls() -> list[tuple[str, Callable[[float], object]]]:
    clear = InterruptSignal().interrupt  # never signaled: exercises the interrupt path
    held = Lock(reentrant=False)
    held.acquire()
    empty = Queue[int]()

    def dequeue(timeout: float) -> None:
        try:
            empty.dequeue(timeout, clear)
        except TimeoutError:
            pass

    return [
        ("threading.Event.wait(t)  [baseline]", threading.Event().wait),
        ("Event.wait(t, interrupt=)", lambda t: Event().wait(t, clear)),
        ("Lock.acquire(t, interrupt=)", lambda t: held.acquire(t, interrupt=clear)),
        ("Queue.dequeue(t, interrupt=)", dequeue),
    ]


def print_timeout_table(rounds: dict[float, int]) -> None:
    print("Timeout accuracy (actual duration of a wait that times out)")
    print(
        f"  {'wait':<38} {'requested':>9} {'min':>9} {'median':>9} {'max':>9}"
        f" {'overshoot':>10}  ratio"
    )
    calls = timeout_calls()
    for timeout, count in rounds.items():
        actual: dict[str, list[float]] = {name: [] for name, _ in calls}
        for _ in range(count):
            for name, call in calls:
                actual[name].append(timed(call, timeout))
        base_name = calls[0][0]
        base_over = statistics.median(actual[base_name]) - timeout
        for name, _ in calls:
            values = actual[name]
            median = statistics.median(values)
            over = median - timeout
            ratio = "    -" if name == base_name else f"{median / (timeout + base_over):5.3f}x"
            early = "  EARLY" if min(values) < timeout else ""
            print(
                f"  {name:<38} {timeout * 1e3:7.1f}ms {min(values) * 1e3:7.2f}ms"
                f" {median * 1e3:7.2f}ms {max(values) * 1e3:7.2f}ms {over * 1e3:8.3f}ms"
                f"  {ratio}{early}"
            )
    print("  (overshoot = median - requested; ratio = median / baseline median)")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=200, help="latency samples per scenario")
    parser.add_argument(
        "--timeout-rounds", type=int, default=10, help="samples per timeout value (0.05 s)"
    )
    args = parser.parse_args(argv)
    print(
        f"Python {sys.version.split()[0]} on {sys.platform}, "
        f"switch interval {sys.getswitchinterval() * 1e3:.1f} ms\n"
    )
    waiter = Waiter()
    try:
        for title, scenarios in (
            ("Wake-up latency after InterruptSignal.signal()", INTERRUPT_SCENARIOS),
            ("Wake-up latency after the state change", STATE_SCENARIOS),
        ):
            results = measure(scenarios, args.samples, waiter)
            print_latency_table(f"{title} ({args.samples} samples each)", scenarios, results)
    finally:
        waiter.close()
    print_timeout_table({0.05: args.timeout_rounds, 0.2: max(1, args.timeout_rounds // 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
