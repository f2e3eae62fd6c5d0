"""Throughput and wake-up latency of ``ProducerConsumerQueue``, against the stdlib queues.

Run it as ``python benchmarks/bench_queue.py`` (``--rounds N``, default 7; ``--items N``,
default 400,000; ``--samples N``, default 300 wake-up samples). Plain standard library; see
benchmarks/README.md.

Scenarios (each ours against a baseline measured in the same run, alternating ours and the
baseline round by round, the median of the rounds reported):

1. ``spsc``: one producer thread calls ``put(i)`` per item then ``complete()``; one consumer
   thread runs ``for x in q.get_iterator()``. Baseline: ``queue.SimpleQueue`` with an end
   sentinel, consumed by ``iter(q.get, END)``.
2. ``mpmc``: the same with 4 producer and 4 consumer threads (each producer puts a quarter
   of the items; the last producer to finish completes the queue; the baseline puts one
   sentinel per consumer).
3. ``chained``: the producer feeds ``q0``; ``q1 = ProducerConsumerQueue(q0.get_iterator())``
   and ``q2`` likewise over ``q1``; the consumer iterates ``q2`` (the linked queues pull on
   demand, with no thread of their own). Baseline: three ``SimpleQueue`` objects joined by two
   forwarding threads, which is what the stdlib needs for the same chain.
4. ``bounded``: ``spsc`` with ``capacity=1024``. Baseline: ``queue.Queue(maxsize=1024)``
   with an end sentinel.
5. ``wake-up``: the consumer is blocked in ``take(None)`` on an empty queue; the time from
   just before ``put`` to the consumer holding the item. Baseline: a consumer blocked in
   ``queue.SimpleQueue.get()``. Lower is better; the ratio is ours over the baseline.

Then, to explain the spsc figure (under the GIL an spsc run costs about the producer's CPU
time per item plus the consumer's), the CPU cost per item on one thread: ``put`` of n items,
then a ``for`` loop over them, for ours, for ``SimpleQueue`` (``put``, ``iter(q.get, END)``)
and for a *floor*: an unsynchronized stand-in whose ``put`` (same signature, keyword-only
``timeout`` and ``interrupt``) only appends and whose iterator's ``__next__`` only pops. No
queue whose ``put`` and ``__next__`` are Python methods can beat the floor's ratio.
"""

from __future__ import annotations

import argparse
import queue as stdlib_queue
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import runtime.threading  # noqa: F401
except ImportError:  # not installed: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from runtime.threading.parallel import ProducerConsumerQueue

END: Any = object()

Run = Callable[[int], float]


def _timed(threads: list[threading.Thread]) -> float:
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


# -- spsc --------------------------------------------------------------------------------


def ours_spsc(n: int, capacity: int | None = None) -> float:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue(capacity=capacity)

    def produce() -> None:
        put = q.put
        for i in range(n):
            put(i)
        q.complete()

    def consume() -> None:
        for _ in q.get_iterator():
            pass

    return _timed([threading.Thread(target=consume), threading.Thread(target=produce)])


def simple_spsc(n: int) -> float:
    q: stdlib_queue.SimpleQueue[Any] = stdlib_queue.SimpleQueue()

    def produce() -> None:
        put = q.put
        for i in range(n):
            put(i)
        put(END)

    def consume() -> None:
        for _ in iter(q.get, END):
            pass

    return _timed([threading.Thread(target=consume), threading.Thread(target=produce)])


# -- mpmc --------------------------------------------------------------------------------

WORKERS = 4


def ours_mpmc(n: int) -> float:
    q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    share = n // WORKERS
    remaining = [WORKERS]
    lock = threading.Lock()

    def produce() -> None:
        put = q.put
        for i in range(share):
            put(i)
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            q.complete()

    def consume() -> None:
        for _ in q.get_iterator():
            pass

    consumers = [threading.Thread(target=consume) for _ in range(WORKERS)]
    producers = [threading.Thread(target=produce) for _ in range(WORKERS)]
    return _timed(consumers + producers)


def simple_mpmc(n: int) -> float:
    q: stdlib_queue.SimpleQueue[Any] = stdlib_queue.SimpleQueue()
    share = n // WORKERS
    remaining = [WORKERS]
    lock = threading.Lock()

    def produce() -> None:
        put = q.put
        for i in range(share):
            put(i)
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            for _ in range(WORKERS):
                put(END)

    def consume() -> None:
        for _ in iter(q.get, END):
            pass

    consumers = [threading.Thread(target=consume) for _ in range(WORKERS)]
    producers = [threading.Thread(target=produce) for _ in range(WORKERS)]
    return _timed(consumers + producers)


# -- chained -----------------------------------------------------------------------------


def ours_chained(n: int) -> float:
    q0: ProducerConsumerQueue[int] = ProducerConsumerQueue()
    q1 = ProducerConsumerQueue(q0.get_iterator())
    q2 = ProducerConsumerQueue(q1.get_iterator())

    def produce() -> None:
        put = q0.put
        for i in range(n):
            put(i)
        q0.complete()

    def consume() -> None:
        for _ in q2.get_iterator():
            pass

    return _timed([threading.Thread(target=consume), threading.Thread(target=produce)])


def simple_chained(n: int) -> float:
    queues: list[stdlib_queue.SimpleQueue[Any]] = [stdlib_queue.SimpleQueue() for _ in range(3)]

    def produce() -> None:
        put = queues[0].put
        for i in range(n):
            put(i)
        put(END)

    def forward(
        source: stdlib_queue.SimpleQueue[Any], target: stdlib_queue.SimpleQueue[Any]
    ) -> None:
        put = target.put
        for item in iter(source.get, END):
            put(item)
        put(END)

    def consume() -> None:
        for _ in iter(queues[2].get, END):
            pass

    forwarders = [
        threading.Thread(target=forward, args=(queues[0], queues[1])),
        threading.Thread(target=forward, args=(queues[1], queues[2])),
    ]
    return _timed([threading.Thread(target=consume), *forwarders, threading.Thread(target=produce)])


# -- bounded -----------------------------------------------------------------------------

CAPACITY = 1024


def ours_bounded(n: int) -> float:
    return ours_spsc(n, capacity=CAPACITY)


def queue_bounded(n: int) -> float:
    q: stdlib_queue.Queue[Any] = stdlib_queue.Queue(maxsize=CAPACITY)

    def produce() -> None:
        put = q.put
        for i in range(n):
            put(i)
        put(END)

    def consume() -> None:
        for _ in iter(q.get, END):
            pass

    return _timed([threading.Thread(target=consume), threading.Thread(target=produce)])


# -- wake-up latency ---------------------------------------------------------------------


Maker = Callable[[], tuple[Callable[[int], None], Callable[[], Any]]]


def _wakeup(samples: int, make: Maker) -> float:
    """Median seconds from just before a put to a blocked consumer holding the item."""
    put, take = make()
    ready = threading.Semaphore(0)
    stamps: list[float] = []

    def consume() -> None:
        for _ in range(samples):
            ready.release()
            take()
            stamps.append(time.perf_counter())

    consumer = threading.Thread(target=consume)
    consumer.start()
    starts: list[float] = []
    pause = threading.Event()
    for i in range(samples):
        ready.acquire()
        # Let the consumer reach its blocking take; a benchmark may afford a short pause.
        pause.wait(0.002)
        starts.append(time.perf_counter())
        put(i)
        while len(stamps) <= i:
            pause.wait(0.0005)
    consumer.join()
    return statistics.median(end - start for start, end in zip(starts, stamps, strict=True))


def ours_wakeup(samples: int) -> float:
    def make() -> tuple[Callable[[int], None], Callable[[], Any]]:
        q: ProducerConsumerQueue[int] = ProducerConsumerQueue()
        return q.put, lambda: q.take(None)

    return _wakeup(samples, make)


def simple_wakeup(samples: int) -> float:
    def make() -> tuple[Callable[[int], None], Callable[[], Any]]:
        q: stdlib_queue.SimpleQueue[int] = stdlib_queue.SimpleQueue()
        return q.put, q.get

    return _wakeup(samples, make)


# -- CPU per item on one thread ----------------------------------------------------------


class _FloorQueue:
    """The least a Python-level put and ``__next__`` can do (no lock, no end, no waiting)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf: deque[Any] = deque()

    def put(self, item: Any, *, timeout: float | None = None, interrupt: Any = None) -> None:
        self._buf.append(item)

    def get_iterator(self) -> _FloorIterator:
        return _FloorIterator(self._buf)


class _FloorIterator:
    __slots__ = ("_popleft",)

    def __init__(self, buf: deque[Any]) -> None:
        self._popleft = buf.popleft

    def __iter__(self) -> _FloorIterator:
        return self

    def __next__(self) -> Any:
        try:
            return self._popleft()
        except IndexError:
            raise StopIteration from None


def _cpu(n: int, make: Callable[[], Any], simple: bool) -> tuple[float, float]:
    """Seconds for n puts, then for a loop over the n items, on this thread."""
    q = make()
    put = q.put
    start = time.perf_counter()
    for i in range(n):
        put(i)
    middle = time.perf_counter()
    if simple:
        put(END)
        for _ in iter(q.get, END):
            pass
    else:
        if isinstance(q, ProducerConsumerQueue):
            q.complete()
        for _ in q.get_iterator():
            pass
    return middle - start, time.perf_counter() - middle


def cpu_per_item(rounds: int, n: int) -> dict[str, tuple[float, float]]:
    """Best of ``rounds`` (put, iterate) ns per item for ours, SimpleQueue and the floor."""
    makers: dict[str, tuple[Callable[[], Any], bool]] = {
        "ours": (ProducerConsumerQueue, False),
        "SimpleQueue": (stdlib_queue.SimpleQueue, True),
        "floor": (_FloorQueue, False),
    }
    best = {name: (float("inf"), float("inf")) for name in makers}
    for _ in range(rounds):
        for name, (make, simple) in makers.items():
            put, get = _cpu(n, make, simple)
            best[name] = (min(best[name][0], put), min(best[name][1], get))
    return {name: (put / n * 1e9, get / n * 1e9) for name, (put, get) in best.items()}


# -- driver ------------------------------------------------------------------------------


def _alternate(rounds: int, ours: Run, baseline: Run, arg: int) -> tuple[float, float]:
    mine: list[float] = []
    theirs: list[float] = []
    for r in range(rounds):
        # Alternate which one goes first, so slow drifts of the machine hit both alike.
        if r % 2:
            theirs.append(baseline(arg))
            mine.append(ours(arg))
        else:
            mine.append(ours(arg))
            theirs.append(baseline(arg))
    return statistics.median(mine), statistics.median(theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per scenario (default 7)")
    parser.add_argument(
        "--items", type=int, default=400_000, help="items per run (default 400,000)"
    )
    parser.add_argument("--samples", type=int, default=300, help="wake-up samples (default 300)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this text")
    args = parser.parse_args(argv)

    n = args.items
    throughput = [
        ("spsc", ours_spsc, simple_spsc, "SimpleQueue", 0.6),
        ("mpmc 4x4", ours_mpmc, simple_mpmc, "SimpleQueue", 0.5),
        ("chained (3 queues)", ours_chained, simple_chained, "3 SimpleQueues + 2 threads", None),
        (f"bounded ({CAPACITY})", ours_bounded, queue_bounded, f"Queue(maxsize={CAPACITY})", 3.0),
    ]

    def selected(name: str) -> bool:
        return not args.only or args.only in name

    print(f"Python {sys.version.split()[0]}, {n:,} items, {args.rounds} rounds (medians)")
    rows = [row for row in throughput if selected(row[0])]
    if rows or selected("wake-up"):
        print()
        header = (
            f"| {'scenario':<20} | {'ours ns/item':>12} | {'baseline':<26} | {'ns/item':>8} |"
            f" {'ratio':>6} | {'target':>7} |"
        )
        print(header)
        print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
        for name, ours, baseline, label, target in rows:
            mine, theirs = _alternate(args.rounds, ours, baseline, n)
            ratio = theirs / mine  # throughput ratio: higher is better
            goal = "" if target is None else f">= {target:.1f}x"
            print(
                f"| {name:<20} | {mine / n * 1e9:>12.0f} | {label:<26} |"
                f" {theirs / n * 1e9:>8.0f} | {ratio:>5.2f}x | {goal:>7} |"
            )
        if selected("wake-up"):
            mine, theirs = _alternate(args.rounds, ours_wakeup, simple_wakeup, args.samples)
            ratio = mine / theirs  # latency ratio: lower is better
            print(
                f"| {'wake-up (median)':<20} | {mine * 1e9:>9.0f} ns | {'SimpleQueue.get':<26} |"
                f" {theirs * 1e9:>5.0f} ns | {ratio:>5.2f}x | {'<= 1.5x':>7} |"
            )
        print()
        print("Throughput ratios are baseline time / our time (higher is better); the wake-up")
        print("ratio is our median latency / the baseline's (lower is better).")
    if selected("cpu per item"):
        costs = cpu_per_item(args.rounds, n)
        simple_total = sum(costs["SimpleQueue"])
        print()
        print("CPU per item on one thread (ns, best of the rounds): n puts, then a for loop.")
        print()
        print(f"| {'queue':<12} | {'put':>5} | {'next':>5} | {'total':>5} | {'ratio':>6} |")
        print(f"|{'-' * 14}|{'-' * 7}|{'-' * 7}|{'-' * 7}|{'-' * 8}|")
        for name, (put, get) in costs.items():
            ratio = simple_total / (put + get)
            print(
                f"| {name:<12} | {put:>5.0f} | {get:>5.0f} | {put + get:>5.0f} | {ratio:>5.2f}x |"
            )
        print()
        print("ratio: SimpleQueue's total / this total. floor: put only appends (same signature),")
        print("__next__ only pops; no queue with a Python put and __next__ does better.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
