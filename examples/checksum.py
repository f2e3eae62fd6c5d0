#!/usr/bin/env python3
"""Checksum every file under a directory tree with one producer and several consumer tasks.

Usage::

    python examples/checksum.py [DIRECTORY] [--workers N] [--capacity N] [--no-baseline]

``DIRECTORY`` defaults to the Python standard library directory. One producer task walks the
tree and puts the path of every regular file into a bounded ``ProducerConsumerQueue``; when the
queue is full the producer blocks until a consumer takes a path (back-pressure). ``N`` consumer
tasks take paths from the queue and hash each file with SHA-256 in 1 MiB chunks. ``hashlib``
releases the GIL while it hashes a large buffer, so large files are hashed in parallel; for
small files the per-file Python work and system calls, which hold the GIL, dominate, and the
baseline shows what the threads gain or cost on the tree at hand.

The main thread refreshes a progress line while the job runs, prints a summary, then hashes
the same files again on its own (the single-threaded baseline) and checks that both runs give
the same combined digest. Ctrl+C stops the job cleanly: the tasks are interrupted, a partial
summary is printed and the exit code is 130.

Exit codes: 0 success (unreadable files are reported, not fatal), 1 the two runs disagree or a
task failed, 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from runtime.threading import DEFAULT_PARALLELISM, Interrupt, InterruptSignal
from runtime.threading.parallel import ProducerConsumerQueue
from runtime.threading.tasks import AggregateException, ContinuationOptions, Task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler

T = TypeVar("T")

#: Bytes read and hashed per call; large enough for hashlib to release the GIL.
CHUNK_SIZE = 1 << 20
#: Default bound on paths waiting in the queue.
DEFAULT_CAPACITY = 1024
#: Seconds between two refreshes of the progress line.
PROGRESS_INTERVAL = 0.1
#: When stdout is not a terminal, print a plain progress line every this many refreshes.
PLAIN_PROGRESS_EVERY = 10
#: Unreadable entries listed on stderr; the rest are only counted.
MAX_LISTED_ERRORS = 10
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# O_NONBLOCK keeps ``open`` from hanging on a FIFO that replaced a file after the walk saw it;
# it has no effect on regular files. O_BINARY matters on Windows, which has no O_NONBLOCK.
_OPEN_FLAGS: int = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
# os.readv reads straight into the reused buffer (POSIX); elsewhere os.read copies a chunk.
_HAS_READV = hasattr(os, "readv")


@dataclass(slots=True)
class WalkStats:
    """What the producer found.

    Written only by the producer task. The main thread reads ``files`` while the job runs (a
    single int read, possibly a little stale) and the rest once the producer has finished.
    """

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class HashStats:
    """What one consumer (or the sequential baseline) hashed.

    Written only by its owner. The main thread reads ``files`` and ``size`` for the progress
    line while the job runs, and the dictionaries once the owner has finished.
    """

    files: int = 0
    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def hash_file(path: str, buffer: bytearray, interrupt: Interrupt) -> tuple[str, int]:
    """Hash the regular file at ``path`` with SHA-256.

    Reads the file in ``len(buffer)`` chunks into ``buffer``; blocks only on file I/O. Reading
    stops after the size the file had when it was opened, which saves one ``read`` per file:
    every system call releases and re-takes the GIL, and with tens of thousands of small files
    those hand-offs between threads are a large part of the cost.

    Args:
        path: the file to hash.
        buffer: scratch space reused across calls, so no chunk is allocated.
        interrupt: checked after every chunk, so a huge file does not delay a stop.

    Returns:
        The hex digest and the number of bytes hashed.

    Raises:
        OSError: the file cannot be opened or read, or is not a regular file.
        InterruptException: ``interrupt`` is signaled.
    """
    digest = hashlib.sha256()
    view = memoryview(buffer)
    size = 0
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {path!r}")
        while size < info.st_size:
            count = _read_into(fd, view)
            if not count:
                break  # the file shrank after it was opened
            digest.update(view[:count])
            size += count
            interrupt.raise_if_signaled()
    finally:
        os.close(fd)
    return digest.hexdigest(), size


def _read_into(fd: int, view: memoryview) -> int:
    """Read up to ``len(view)`` bytes from ``fd`` into ``view``; return the count."""
    if _HAS_READV:
        return os.readv(fd, (view,))
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def describe(error: OSError) -> str:
    """Return a one-line reason for ``error``, without the path."""
    return error.strerror or str(error) or type(error).__name__


def walk_files(root: str, walk: WalkStats, interrupt: Interrupt) -> Iterator[str]:
    """Yield the path of every regular file under ``root``.

    The walk uses ``os.scandir`` and an explicit stack, never follows symbolic links (they
    are counted and skipped) and records unreadable directories and entries in ``walk``
    instead of stopping. Each directory is read completely and closed before its files are
    yielded, so at most one directory handle is open at a time.

    Raises:
        InterruptException: ``interrupt`` is signaled (checked once per directory).
    """
    pending = [root]
    while pending:
        interrupt.raise_if_signaled()
        directory = pending.pop()
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except OSError as error:
            walk.errors.append((directory, describe(error)))
            continue
        walk.directories += 1
        subdirectories: list[str] = []
        for entry in entries:
            try:
                if entry.is_symlink():
                    walk.symlinks += 1
                    continue
                is_directory = entry.is_dir(follow_symlinks=False)
                is_file = not is_directory and entry.is_file(follow_symlinks=False)
            except OSError as error:
                walk.errors.append((entry.path, describe(error)))
                continue
            if is_directory:
                subdirectories.append(entry.path)
            elif is_file:
                yield entry.path
        # Reversed, so the stack pops subdirectories in the order scandir listed them.
        pending.extend(reversed(subdirectories))


def produce(
    task: Task[WalkStats], paths: ProducerConsumerQueue[str], root: str, walk: WalkStats
) -> WalkStats:
    """Put the path of every file under ``root`` into ``paths``, then complete the queue.

    Blocks in ``put`` while the queue is at capacity, until a consumer takes a path or the
    task's interrupt is signaled. On any error, including that interrupt, the queue is failed
    with the error, so every consumer blocked on it wakes up and sees it.

    Raises:
        InterruptException: the job was stopped.
    """
    try:
        for path in walk_files(root, walk, task.interrupt):
            paths.put(path, interrupt=task.interrupt)
            walk.files += 1
        paths.complete()
    except Exception as error:
        paths.fail(error)
        raise
    return walk


def iterate(queue: ProducerConsumerQueue[T], interrupt: Interrupt) -> Iterator[T]:
    """Yield the items taken from ``queue`` until it is complete and empty.

    Blocks for each item until one arrives, the queue completes, or ``interrupt`` is signaled.

    Raises:
        InterruptException: ``interrupt`` is signaled.
        Exception: the error the queue was failed with.
    """
    items = iter(queue.get_iterator())
    while True:
        try:
            item = items.next(None, interrupt)
        except StopIteration:
            return
        yield item


def consume(
    task: Task[HashStats], paths: ProducerConsumerQueue[str], stats: HashStats
) -> HashStats:
    """Hash every file whose path this consumer takes from ``paths``.

    Blocks while the queue is empty and still open. A file that cannot be read is recorded in
    ``stats.errors``; it does not stop the consumer.

    Raises:
        InterruptException: the job was stopped.
    """
    buffer = bytearray(CHUNK_SIZE)
    for path in iterate(paths, task.interrupt):
        try:
            digest, size = hash_file(path, buffer, task.interrupt)
        except OSError as error:
            stats.errors[path] = describe(error)
            continue
        stats.digests[path] = digest
        stats.size += size
        stats.files += 1
    return stats


def stop_job(task: Task[None], failed: Task[HashStats], stop: InterruptSignal) -> None:
    """Stop the whole job: a continuation run inline when a consumer fails."""
    stop.signal()


def combined_digest(root: str, digests: Mapping[str, str]) -> str:
    """Return a SHA-256 over the sorted ``"<digest>  <relative path>"`` lines of ``digests``.

    The result does not depend on the order in which files were hashed, so a parallel and a
    sequential run over the same files give the same value.
    """
    prefix = os.path.join(root, "")
    lines: list[bytes] = []
    for path, digest in digests.items():
        relative = path[len(prefix) :] if path.startswith(prefix) else path
        name = os.fsencode(relative.replace(os.sep, "/"))
        lines.append(name + b"\0" + digest.encode("ascii"))
    lines.sort()
    total = hashlib.sha256()
    for line in lines:
        name, _, hex_digest = line.partition(b"\0")
        total.update(hex_digest + b"  " + name + b"\n")
    return total.hexdigest()


def megabytes(size: int) -> float:
    """Return ``size`` in megabytes (10**6 bytes)."""
    return size / 1e6


def rate(size: int, seconds: float) -> float:
    """Return the throughput in MB/s, 0 for an empty interval."""
    return megabytes(size) / seconds if seconds > 0 else 0.0


class Progress:
    """The live progress line, written by the main thread only."""

    __slots__ = ("_stream", "_ticks", "_tty", "_width")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._ticks = 0
        self._width = 0

    def update(self, walk: WalkStats, stats: Sequence[HashStats], started: float) -> None:
        """Show the current counts: in place on a terminal, about once a second otherwise."""
        self._ticks += 1
        if not self._tty and self._ticks % PLAIN_PROGRESS_EVERY:
            return
        files = sum(s.files for s in stats)
        size = sum(s.size for s in stats)
        seconds = time.perf_counter() - started
        line = (
            f"{walk.files:,} found, {files:,} hashed, {megabytes(size):,.1f} MB, "
            f"{rate(size, seconds):,.1f} MB/s"
        )
        if self._tty:
            self._stream.write("\r  " + line.ljust(self._width))
            self._width = max(self._width, len(line))
        else:
            self._stream.write(f"  progress: {line}\n")
        self._stream.flush()

    def clear(self) -> None:
        """Erase the in-place line, if one was drawn."""
        if self._tty and self._width:
            self._stream.write("\r" + " " * (self._width + 2) + "\r")
            self._stream.flush()
            self._width = 0


def start_tasks(
    tasks: list[Task[Any]],
    scheduler: ConcurrentTaskScheduler,
    stop: InterruptSignal,
    paths: ProducerConsumerQueue[str],
    root: str,
    walk: WalkStats,
    stats: Sequence[HashStats],
) -> None:
    """Start the producer and one consumer per entry of ``stats`` on ``scheduler``.

    Each task is appended to ``tasks`` as soon as it is started, so that after a Ctrl+C in
    the middle of this call the caller still waits for every task that did start.
    """
    producer = Task.create(name="producer", interrupt=stop.interrupt, scheduler=scheduler)
    tasks.append(producer.run(produce, paths, root, walk))
    for n, own in enumerate(stats, 1):
        proto = Task.create(name=f"consumer-{n}", interrupt=stop.interrupt, scheduler=scheduler)
        consumer = proto.run(consume, paths, own)
        tasks.append(consumer)
        # A consumer that fails stops the job, so the producer is never left blocked on a
        # full queue that nobody drains any more.
        consumer.continue_with(
            ContinuationOptions.ON_FAILED | ContinuationOptions.INLINE, stop_job, stop
        )


def run_parallel(
    root: str, workers: int, capacity: int, progress: Progress
) -> tuple[WalkStats, list[HashStats], float, bool, list[Exception]]:
    """Checksum ``root`` with one producer and ``workers`` consumer tasks.

    Blocks until every task has finished, refreshing ``progress`` every
    ``PROGRESS_INTERVAL`` seconds. Ctrl+C (``KeyboardInterrupt`` in the main thread) signals
    the interrupt shared by the tasks; the function then waits for them to stop.

    Returns:
        The producer's and consumers' statistics, the elapsed seconds, whether the job was
        interrupted, and the exceptions of tasks that failed (a bug, never an unreadable file).
    """
    walk = WalkStats()
    stats = [HashStats() for _ in range(workers)]
    stop = InterruptSignal()
    # The bound is what makes the producer wait for slow consumers instead of listing a huge
    # tree into memory first.
    paths = ProducerConsumerQueue[str](capacity=capacity)
    interrupted = False
    failures: list[Exception] = []
    started = time.perf_counter()
    # One thread per task: the producer plus the consumers. Leaving the block closes the
    # scheduler, which waits until every task has finished and every worker has exited.
    with ConcurrentTaskScheduler(workers + 1) as scheduler:
        tasks: list[Task[Any]] = []
        try:
            try:
                start_tasks(tasks, scheduler, stop, paths, root, walk, stats)
                while not Task.wait_all(tasks, PROGRESS_INTERVAL):
                    progress.update(walk, stats, started)
            except KeyboardInterrupt:
                interrupted = True
                progress.clear()
                print("Interrupted: stopping the tasks...", flush=True)
                stop.signal()
                while True:
                    try:
                        Task.wait_all(tasks)
                        break
                    except KeyboardInterrupt:
                        continue  # already stopping; the tasks end within one chunk
        except AggregateException as error:
            failures.extend(error.exceptions)
        finally:
            progress.clear()
    return walk, stats, time.perf_counter() - started, interrupted, failures


def run_sequential(files: Sequence[str]) -> tuple[HashStats, float]:
    """Hash ``files`` one after the other on the calling thread.

    Returns:
        The statistics and the elapsed seconds.

    Raises:
        KeyboardInterrupt: Ctrl+C.
    """
    stats = HashStats()
    buffer = bytearray(CHUNK_SIZE)
    never = Interrupt.none()
    started = time.perf_counter()
    for path in files:
        try:
            digest, size = hash_file(path, buffer, never)
        except OSError as error:
            stats.errors[path] = describe(error)
            continue
        stats.digests[path] = digest
        stats.size += size
        stats.files += 1
    return stats, time.perf_counter() - started


def merge(stats: Sequence[HashStats]) -> HashStats:
    """Return one ``HashStats`` holding the union of ``stats``."""
    total = HashStats()
    for part in stats:
        total.files += part.files
        total.size += part.size
        total.digests.update(part.digests)
        total.errors.update(part.errors)
    return total


def report_errors(errors: Sequence[tuple[str, str]]) -> None:
    """List the first ``MAX_LISTED_ERRORS`` unreadable entries on stderr."""
    for path, reason in errors[:MAX_LISTED_ERRORS]:
        print(f"  unreadable: {path}: {reason}", file=sys.stderr)
    if len(errors) > MAX_LISTED_ERRORS:
        print(f"  ... and {len(errors) - MAX_LISTED_ERRORS:,} more", file=sys.stderr)


def summary_line(label: str, stats: HashStats, seconds: float, detail: str) -> str:
    """Format one result line of the summary."""
    return (
        f"{label:<12}{stats.files:,} files, {megabytes(stats.size):,.1f} MB in {seconds:.2f} s"
        f" = {rate(stats.size, seconds):,.1f} MB/s ({detail})"
    )


def positive_int(text: str) -> int:
    """Parse a command-line integer that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; exits with code 2 on bad arguments."""
    parser = argparse.ArgumentParser(
        description="Checksum every file under DIRECTORY with one producer task and "
        "several consumer tasks sharing a bounded ProducerConsumerQueue."
    )
    parser.add_argument(
        "directory",
        nargs="?",
        default=sysconfig.get_paths()["stdlib"],
        help="the tree to checksum (default: the Python standard library, %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_PARALLELISM,
        metavar="N",
        help="number of consumer tasks (default: %(default)s)",
    )
    parser.add_argument(
        "--capacity",
        type=positive_int,
        default=DEFAULT_CAPACITY,
        metavar="N",
        help="maximum number of paths waiting in the queue (default: %(default)s)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the single-threaded run and the comparison",
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.directory):
        parser.error(f"not a directory: {args.directory}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    args = parse_args(argv)
    root = os.path.abspath(args.directory)
    workers: int = args.workers
    print(
        f"Checksumming {root} with {workers} consumer tasks "
        f"(queue capacity {args.capacity:,}, {CHUNK_SIZE >> 20} MiB chunks)",
        flush=True,
    )
    walk, stats, seconds, interrupted, failures = run_parallel(
        root, workers, args.capacity, Progress(sys.stdout)
    )
    parallel = merge(stats)
    errors = walk.errors + sorted(parallel.errors.items())
    label = "Partial:" if interrupted else "Parallel:"
    print(summary_line(label, parallel, seconds, f"{workers} consumer tasks"))
    print(f"{'Walked:':<12}{walk.directories:,} directories, {walk.symlinks:,} symlinks skipped")
    if errors:
        print(f"{'Unreadable:':<12}{len(errors):,} (listed on stderr)")
        report_errors(errors)
    for failure in failures:
        print(f"error: a task failed: {type(failure).__name__}: {failure}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    if failures:
        return EXIT_FAILED
    digest = combined_digest(root, parallel.digests)
    print(f"{'Digest:':<12}{digest} (parallel)")
    if args.no_baseline:
        return EXIT_OK

    files = sorted([*parallel.digests, *parallel.errors])
    try:
        baseline, baseline_seconds = run_sequential(files)
    except KeyboardInterrupt:
        print("Interrupted: single-threaded baseline skipped")
        return EXIT_INTERRUPTED
    print(summary_line("Sequential:", baseline, baseline_seconds, "main thread, warm cache"))
    if seconds > 0:
        print(f"{'Speed-up:':<12}{baseline_seconds / seconds:.2f}x")
    baseline_digest = combined_digest(root, baseline.digests)
    print(f"{'Digest:':<12}{baseline_digest} (sequential)")
    if baseline_digest != digest:
        print(
            "error: the parallel and sequential digests differ "
            "(did files change between the two runs?)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print("Digests match.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
