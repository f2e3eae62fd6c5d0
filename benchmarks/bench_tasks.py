"""Tasks against ``concurrent.futures``: throughput, continuation chains, memory per task.

Run it as ``python benchmarks/bench_tasks.py`` (``--rounds N``, default 5; ``--tasks N``,
default 20,000; ``--chain N``, default 10,000; ``--memory N``, default 100,000). Plain
standard library; see benchmarks/README.md.

Scenarios (each ours against a baseline measured in the same run, alternating ours and the
baseline round by round, the median of the rounds reported; the ratio is baseline / ours,
so above 1.0 means ours is faster or smaller):

1. ``throughput``: create, schedule and collect the results of N trivial tasks on 4 workers:
   ``Task.create(scheduler=s).run(fn)`` for each, then ``.result`` of each, on a
   ``ConcurrentTaskScheduler(4)``. Baseline: ``ThreadPoolExecutor(4).submit(fn)`` for each,
   then ``Future.result()`` of each.
2. ``chain-inline``: a chain of N ``continue_with(ContinuationOptions.DEFAULT, fn)`` (which
   includes ``INLINE``), each link added to the previous, already finished one, so it runs
   at once on the calling thread. Baseline: a chain of N futures, each completed by a
   ``Future.add_done_callback`` callback of the previous, already finished one.
3. ``chain-armed``: the same N inline continuations armed first on a task that has not run,
   then triggered all at once by running it (the trampoline keeps the stack flat). No
   stdlib peer: a pre-built chain of done-callbacks recurses once per link and overflows the
   stack after a few hundred links, so the baseline is the ``chain-inline`` one.
4. ``chain-queued``: a chain of N non-inline continuations on a 4-worker scheduler, each link
   queued on the scheduler when the previous one finishes. Baseline: futures whose done
   callback ``submit()``s the next link to a ``ThreadPoolExecutor(4)``.
5. ``memory``: bytes per task for N completed tasks kept alive (``tracemalloc``, after
   ``gc.collect()``), against N completed futures.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

try:
    import runtime.threading  # noqa: F401
except ImportError:  # not installed: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from runtime.threading.tasks import ContinuationOptions, Task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler

WORKERS = 4


def target(task: Task[int]) -> int:
    return 1


def plain() -> int:
    return 1


def step(continuation: Task[int], antecedent: Task[int]) -> int:
    return antecedent.result + 1


# -- throughput ---------------------------------------------------------------------------------


def throughput_ours(scheduler: ConcurrentTaskScheduler, n: int) -> float:
    start = time.perf_counter()
    tasks = [Task.create(scheduler=scheduler).run(target) for _ in range(n)]
    total = sum(task.result for task in tasks)
    elapsed = time.perf_counter() - start
    assert total == n
    return elapsed


def throughput_executor(executor: ThreadPoolExecutor, n: int) -> float:
    start = time.perf_counter()
    futures = [executor.submit(plain) for _ in range(n)]
    total = sum(future.result() for future in futures)
    elapsed = time.perf_counter() - start
    assert total == n
    return elapsed


# -- chains -------------------------------------------------------------------------------------


def chain_inline_ours(n: int) -> float:
    start = time.perf_counter()
    tail = Task.from_result(0)
    for _ in range(n):
        tail = tail.continue_with(ContinuationOptions.DEFAULT, step)
    elapsed = time.perf_counter() - start
    assert tail.result == n
    return elapsed


def chain_inline_futures(n: int) -> float:
    start = time.perf_counter()
    tail: Future[int] = Future()
    tail.set_result(0)
    for _ in range(n):
        following: Future[int] = Future()
        tail.add_done_callback(lambda done, f=following: f.set_result(done.result() + 1))
        tail = following
    elapsed = time.perf_counter() - start
    assert tail.result() == n
    return elapsed


def chain_armed_ours(n: int) -> float:
    start = time.perf_counter()
    root = Task.plan(lambda task: 0)
    tail = root
    for _ in range(n):
        tail = tail.continue_with(ContinuationOptions.DEFAULT, step)
    root.run_synchronously()
    elapsed = time.perf_counter() - start
    assert tail.result == n
    return elapsed


def chain_queued_ours(scheduler: ConcurrentTaskScheduler, n: int) -> float:
    start = time.perf_counter()
    root = Task.create(scheduler=scheduler).plan(lambda task: 0)
    tail = root
    for _ in range(n):
        tail = tail.continue_with(ContinuationOptions.ON_COMPLETED_SUCCESSFULLY, step)
    root.schedule()
    result = tail.result
    elapsed = time.perf_counter() - start
    assert result == n
    return elapsed


def chain_queued_futures(executor: ThreadPoolExecutor, n: int) -> float:
    start = time.perf_counter()
    finished: Future[int] = Future()

    def link(done: Future[int], index: int) -> None:
        value = done.result() + 1
        if index == n:
            finished.set_result(value)
            return
        following = executor.submit(lambda: value)
        following.add_done_callback(lambda f: link(f, index + 1))

    executor.submit(lambda: 0).add_done_callback(lambda f: link(f, 1))
    result = finished.result()
    elapsed = time.perf_counter() - start
    assert result == n
    return elapsed


# -- memory -------------------------------------------------------------------------------------


def _bytes_per_item(make: Callable[[], list[Any]], n: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    del kept
    return (after - before) / n


def memory_ours(scheduler: ConcurrentTaskScheduler, n: int) -> float:
    def make() -> list[Any]:
        tasks = [Task.create(scheduler=scheduler).run(target) for _ in range(n)]
        for task in tasks:
            task.wait()
        return tasks

    return _bytes_per_item(make, n)


def memory_futures(executor: ThreadPoolExecutor, n: int) -> float:
    def make() -> list[Any]:
        futures = [executor.submit(plain) for _ in range(n)]
        for future in futures:
            future.result()
        return futures

    return _bytes_per_item(make, n)


# -- driver -------------------------------------------------------------------------------------


def _alternate(
    rounds: int, ours: Callable[[], float], baseline: Callable[[], float]
) -> tuple[float, float]:
    ours_runs: list[float] = []
    baseline_runs: list[float] = []
    for _ in range(rounds):
        ours_runs.append(ours())
        baseline_runs.append(baseline())
    return statistics.median(ours_runs), statistics.median(baseline_runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--chain", type=int, default=10_000)
    parser.add_argument("--memory", type=int, default=100_000)
    args = parser.parse_args(argv)
    rounds, n_tasks, n_chain, n_memory = args.rounds, args.tasks, args.chain, args.memory

    rows: list[tuple[str, str, float, float, str]] = []
    with ConcurrentTaskScheduler(WORKERS) as scheduler, ThreadPoolExecutor(WORKERS) as executor:
        # Warm both pools up, so thread start-up is not measured.
        throughput_ours(scheduler, 1000)
        throughput_executor(executor, 1000)

        ours, base = _alternate(
            rounds,
            lambda: throughput_ours(scheduler, n_tasks),
            lambda: throughput_executor(executor, n_tasks),
        )
        rows.append(("throughput", f"{n_tasks} tasks, {WORKERS} workers", ours, base, "ms"))

        ours, base = _alternate(
            rounds, lambda: chain_inline_ours(n_chain), lambda: chain_inline_futures(n_chain)
        )
        rows.append(("chain-inline", f"{n_chain} links", ours, base, "ms"))

        ours, base = _alternate(
            rounds, lambda: chain_armed_ours(n_chain), lambda: chain_inline_futures(n_chain)
        )
        rows.append(("chain-armed", f"{n_chain} links (baseline: chain-inline)", ours, base, "ms"))

        ours, base = _alternate(
            rounds,
            lambda: chain_queued_ours(scheduler, n_chain),
            lambda: chain_queued_futures(executor, n_chain),
        )
        rows.append(("chain-queued", f"{n_chain} links, {WORKERS} workers", ours, base, "ms"))

        ours, base = _alternate(
            max(1, rounds // 2),
            lambda: memory_ours(scheduler, n_memory),
            lambda: memory_futures(executor, n_memory),
        )
        rows.append(("memory", f"{n_memory} completed, kept alive", ours, base, "B/item"))

    print(f"Python {sys.version.split()[0]}, {rounds} rounds, medians")
    header = f"{'scenario':<14} {'size':<40} {'ours':>9} {'baseline':>9} {'unit':<6} {'ratio':>6}"
    print(header)
    for name, size, ours, base, unit in rows:
        scale = 1e3 if unit == "ms" else 1.0
        print(
            f"{name:<14} {size:<40} {ours * scale:>9.1f} {base * scale:>9.1f} {unit:<6} "
            f"{base / ours:>5.2f}x"
        )
    print("ratio = baseline / ours: above 1.0, ours is faster (or smaller)")


if __name__ == "__main__":
    main()
