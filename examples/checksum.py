#!/usr/bin/env python3
"""Checksum every file under a directory tree with one producer and several consumer tasks.

Usage::

    python examples/checksum.py [DIRECTORY] [--workers N] [--capacity N] [--small-file BYTES]
                                [--compare-stdlib] [--no-baseline]

``DIRECTORY`` defaults to the Python standard library directory. One producer task walks the
tree with ``os.scandir`` and puts the regular files, in *batches* of up to ``BATCH_FILES``
files or ``BATCH_BYTES`` bytes, into a bounded ``ProducerConsumerQueue``; when the queue is
full the producer blocks until a consumer takes a batch (back-pressure). ``N`` consumer tasks
take batches from the queue and hash each file with SHA-256: a file of up to 1 MiB with a
single ``read``, a larger one in 1 MiB chunks.

Where the work goes follows from the GIL. ``hashlib`` releases it while it hashes a buffer of
2 KiB or more, so hashing large files runs in parallel. Everything else (walking the tree,
the Python code around each file, and every system call, which releases the GIL and then
takes it back) holds it. When several threads do such work at once, each of their system
calls hands the GIL to another thread, and a job made of small files gets *slower* with more
threads. So the producer, whose walk is GIL-bound anyway, hashes the files smaller than
``--small-file`` (default 64 KiB) itself, and only the larger files, whose hashing releases
the GIL, go through the queue. ``--small-file 0`` sends every file through the queue.

Batches keep the queue traffic low: a few hundred puts and takes, and as many wake-ups,
instead of one per file. To tell small files from large ones the producer opens each file and
measures it with ``fstat`` (cheaper than ``DirEntry.stat()``, an ``lstat`` of the path on
POSIX); a large file's size travels with it in the batch, so its consumer needs no ``fstat``.

The main thread refreshes a progress line while the job runs and prints a summary. Then, for
comparison, it can run the same job with plain ``threading.Thread`` consumers and a
``queue.Queue`` (``--compare-stdlib``), and it runs it single-threaded, walking and hashing on
the main thread alone (the baseline, skipped with ``--no-baseline``); every run must give the
same combined digest. Ctrl+C stops the job cleanly: the tasks are interrupted, a partial
summary is printed and the exit code is 130.

Exit codes: 0 success (unreadable files are reported, not fatal), 1 two runs disagree or a
task failed, 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import stat
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from runtime.threading import DEFAULT_PARALLELISM, Interrupt, InterruptSignal
from runtime.threading.parallel import ProducerConsumerQueue
from runtime.threading.tasks import AggregateException, ContinuationOptions, Task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler

T = TypeVar("T")

#: A regular file to hash: its path and its size, if the producer has measured it.
FileEntry = tuple[str, int | None]
#: What goes through the queue: several files at once.
Batch = list[FileEntry]

#: Bytes read and hashed per call; large enough for hashlib to release the GIL.
CHUNK_SIZE = 1 << 20
#: Default for ``--small-file``: smaller files are hashed by the producer itself.
SMALL_FILE = 64 << 10
#: A batch is put into the queue once it holds this many files...
BATCH_FILES = 64
#: ... or this many bytes, so a few large files make a batch of their own and the consumers
#: share the large files evenly.
BATCH_BYTES = 4 << 20
#: Default bound on batches waiting in the queue.
DEFAULT_CAPACITY = 16
#: Seconds between two refreshes of the progress line.
PROGRESS_INTERVAL = 0.1
#: When stdout is not a terminal, print a plain progress line every this many refreshes.
PLAIN_PROGRESS_EVERY = 10
#: A parallel run shorter than this many seconds is explained as too short to gain anything.
SHORT_JOB = 0.1
#: Unreadable entries listed on stderr; the rest are only counted.
MAX_LISTED_ERRORS = 10
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# O_NONBLOCK keeps ``open`` and ``read`` from hanging on a FIFO that replaced a file after the
# walk saw it; it has no effect on regular files. O_BINARY matters on Windows, which has no
# O_NONBLOCK.
_OPEN_FLAGS: int = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
# os.readv reads straight into the reused buffer (POSIX); elsewhere os.read copies a chunk.
_HAS_READV = hasattr(os, "readv")


@dataclass(slots=True)
class WalkStats:
    """What the producer found.

    Written only by the producer. The main thread reads ``files`` while the job runs (a
    single int read, possibly a little stale) and the rest once the producer has finished.
    """

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    batches: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class HashStats:
    """What one task or thread (or the single-threaded baseline) hashed.

    Written only by its owner. The main thread reads ``files`` and ``size`` for the progress
    line while the job runs, and the dictionaries once the owner has finished.
    """

    files: int = 0
    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class JobResult:
    """The outcome of one parallel run (with the library, or with plain threads)."""

    walk: WalkStats
    #: The files the producer hashed itself (those under ``--small-file``).
    producer: HashStats
    #: One entry per consumer.
    consumers: list[HashStats]
    seconds: float
    interrupted: bool = False
    #: Exceptions of tasks or threads that failed: a bug, never an unreadable file.
    failures: list[BaseException] = field(default_factory=list)

    def merged(self) -> HashStats:
        """Return one ``HashStats`` holding what the producer and every consumer hashed."""
        return merge([self.producer, *self.consumers])


def open_regular(path: str) -> tuple[int, int]:
    """Open the file at ``path`` for reading; return the descriptor and the file's size.

    One ``open`` and one ``fstat``: the walk knows from the directory entry that the path is a
    regular file, and ``fstat`` on the open descriptor gives its size more cheaply than a stat
    of the path would (``DirEntry.stat()`` is an ``lstat`` on POSIX). Every system call
    releases the GIL and takes it back, so with tens of thousands of small files each one
    saved counts.

    Raises:
        OSError: the file cannot be opened, or is no longer a regular file.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {path!r}")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def hash_open(fd: int, size: int, buffer: bytearray, interrupt: Interrupt) -> tuple[str, int]:
    """Hash the first ``size`` bytes of the open file ``fd`` with SHA-256.

    A file of up to ``len(buffer)`` bytes is read with a single ``read``; a larger one in
    ``len(buffer)`` chunks into ``buffer``. Reading stops earlier if the file has shrunk.
    Blocks only on file I/O.

    Args:
        fd: a descriptor open for reading, at offset 0; the caller closes it.
        size: the number of bytes to hash, as measured when the file was opened.
        buffer: scratch space for the chunks, reused across calls.
        interrupt: checked after every chunk, so a huge file does not delay a stop.

    Returns:
        The hex digest and the number of bytes hashed.

    Raises:
        OSError: the file cannot be read.
        InterruptException: ``interrupt`` is signaled.
    """
    if size <= len(buffer):
        data = os.read(fd, size) if size else b""
        if len(data) == size:
            return hashlib.sha256(data).hexdigest(), size
        # A short read: the file has shrunk; the loop below reads what is left, if any.
        digest = hashlib.sha256(data)
        done = len(data)
    else:
        digest = hashlib.sha256()
        done = 0
    view = memoryview(buffer)
    while done < size:
        count = _read_into(fd, view[: min(size - done, len(view))])
        if not count:
            break  # the file shrank after it was measured
        digest.update(view[:count])
        done += count
        interrupt.raise_if_signaled()
    return digest.hexdigest(), done


def _read_into(fd: int, view: memoryview) -> int:
    """Read up to ``len(view)`` bytes from ``fd`` into ``view``; return the count."""
    if _HAS_READV:
        return os.readv(fd, (view,))
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def hash_file(
    path: str, size: int | None, buffer: bytearray, interrupt: Interrupt
) -> tuple[str, int]:
    """Hash the regular file at ``path`` with SHA-256 (see :func:`hash_open`).

    Args:
        path: the file to hash.
        size: the size the producer measured, which saves an ``fstat``; ``None`` if unknown.
        buffer: scratch space for the chunks, reused across calls.
        interrupt: checked after every chunk.

    Returns:
        The hex digest and the number of bytes hashed.

    Raises:
        OSError: the file cannot be opened or read, or is not a regular file.
        InterruptException: ``interrupt`` is signaled.
    """
    if size is None:
        fd, size = open_regular(path)
    else:
        fd = os.open(path, _OPEN_FLAGS)
    try:
        return hash_open(fd, size, buffer, interrupt)
    finally:
        os.close(fd)


def record(stats: HashStats, path: str, digest: str, size: int) -> None:
    """Record in ``stats`` that the file at ``path`` hashed to ``digest`` over ``size`` bytes."""
    stats.digests[path] = digest
    stats.size += size
    stats.files += 1


def hash_files(
    files: Iterable[FileEntry], stats: HashStats, buffer: bytearray, interrupt: Interrupt
) -> None:
    """Hash every file of ``files`` into ``stats``.

    A file that cannot be read is recorded in ``stats.errors``; it does not stop the loop.

    Raises:
        InterruptException: ``interrupt`` is signaled (checked after every chunk).
    """
    for path, size in files:
        try:
            digest, count = hash_file(path, size, buffer, interrupt)
        except OSError as error:
            stats.errors[path] = describe(error)
            continue
        record(stats, path, digest, count)


def describe(error: OSError) -> str:
    """Return a one-line reason for ``error``, without the path."""
    return error.strerror or str(error) or type(error).__name__


def walk_files(root: str, walk: WalkStats, interrupt: Interrupt) -> Iterator[str]:
    """Yield the path of every regular file under ``root``.

    The walk uses ``os.scandir`` and an explicit stack, never follows symbolic links (they
    are counted and skipped) and records unreadable directories and entries in ``walk``
    instead of stopping. Each directory is read completely and closed before its files are
    yielded, so at most one directory handle is open at a time. The type of each entry comes
    from the directory listing, so the walk makes no ``stat`` call of its own on POSIX.

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
                walk.files += 1
                yield entry.path
        # Reversed, so the stack pops subdirectories in the order scandir listed them.
        pending.extend(reversed(subdirectories))


def walk_in_batches(
    root: str,
    walk: WalkStats,
    own: HashStats,
    small_file: int,
    interrupt: Interrupt,
) -> Iterator[Batch]:
    """Walk ``root``; hash the files under ``small_file`` bytes into ``own``; batch the rest.

    This is the producer's work, the same for the library job and the plain-threads one.
    With ``small_file`` > 0 the producer opens every file to measure it (:func:`open_regular`)
    and hashes a small one on the spot, with the descriptor already open; a larger one is
    closed again and batched with its size, which saves its consumer an ``fstat``. With 0,
    every file is batched unopened. A batch is yielded once it holds ``BATCH_FILES`` files or
    ``BATCH_BYTES`` bytes, and the last, partial batch at the end of the walk. A file that
    cannot be read is recorded in ``own.errors``.

    Raises:
        InterruptException: ``interrupt`` is signaled.
    """
    buffer = bytearray(min(CHUNK_SIZE, max(small_file, 1)))
    batch: Batch = []
    batch_bytes = 0
    for path in walk_files(root, walk, interrupt):
        size: int | None = None
        if small_file:
            try:
                fd, size = open_regular(path)
                try:
                    if size < small_file:
                        record(own, path, *hash_open(fd, size, buffer, interrupt))
                        continue
                finally:
                    os.close(fd)
            except OSError as error:
                own.errors[path] = describe(error)
                continue
            batch_bytes += size
        batch.append((path, size))
        if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
            walk.batches += 1
            yield batch
            batch = []
            batch_bytes = 0
    if batch:
        walk.batches += 1
        yield batch


def produce(
    task: Task[WalkStats],
    batches: ProducerConsumerQueue[Batch],
    root: str,
    walk: WalkStats,
    own: HashStats,
    small_file: int,
) -> WalkStats:
    """Walk ``root`` into ``batches`` (see :func:`walk_in_batches`), then complete the queue.

    Blocks in ``put`` while the queue is at capacity, until a consumer takes a batch or the
    task's interrupt is signaled. On any error, including that interrupt, the queue is failed
    with the error, so every consumer blocked on it wakes up and sees it.

    Raises:
        InterruptException: the job was stopped.
    """
    interrupt = task.interrupt
    try:
        for batch in walk_in_batches(root, walk, own, small_file, interrupt):
            batches.put(batch, interrupt=interrupt)
        batches.complete()
    except Exception as error:
        batches.fail(error)
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
    task: Task[HashStats], batches: ProducerConsumerQueue[Batch], stats: HashStats
) -> HashStats:
    """Hash every file of every batch this consumer takes from ``batches``.

    Blocks while the queue is empty and still open. A file that cannot be read is recorded in
    ``stats.errors``; it does not stop the consumer.

    Raises:
        InterruptException: the job was stopped.
    """
    buffer = bytearray(CHUNK_SIZE)
    for batch in iterate(batches, task.interrupt):
        hash_files(batch, stats, buffer, task.interrupt)
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


def kibibytes(size: int) -> str:
    """Format a byte count given on the command line, in KiB when it is a whole number."""
    return f"{size >> 10:,} KiB" if size and not size % 1024 else f"{size:,} bytes"


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
    batches: ProducerConsumerQueue[Batch],
    root: str,
    small_file: int,
    job: JobResult,
) -> None:
    """Start the producer and one consumer per entry of ``job.consumers`` on ``scheduler``.

    Each task is appended to ``tasks`` as soon as it is started, so that after a Ctrl+C in
    the middle of this call the caller still waits for every task that did start.
    """
    producer = Task.create(name="producer", interrupt=stop.interrupt, scheduler=scheduler)
    tasks.append(producer.run(produce, batches, root, job.walk, job.producer, small_file))
    for n, own in enumerate(job.consumers, 1):
        proto = Task.create(name=f"consumer-{n}", interrupt=stop.interrupt, scheduler=scheduler)
        consumer = proto.run(consume, batches, own)
        tasks.append(consumer)
        # A consumer that fails stops the job, so the producer is never left blocked on a
        # full queue that nobody drains any more.
        consumer.continue_with(
            ContinuationOptions.ON_FAILED | ContinuationOptions.INLINE, stop_job, stop
        )


def run_parallel(
    root: str, workers: int, capacity: int, small_file: int, progress: Progress
) -> JobResult:
    """Checksum ``root`` with one producer and ``workers`` consumer tasks.

    Blocks until every task has finished, refreshing ``progress`` every
    ``PROGRESS_INTERVAL`` seconds. Ctrl+C (``KeyboardInterrupt`` in the main thread) signals
    the interrupt shared by the tasks; the function then waits for them to stop.

    Returns:
        What the tasks found and hashed, the elapsed seconds, whether the job was interrupted,
        and the exceptions of tasks that failed.
    """
    job = JobResult(WalkStats(), HashStats(), [HashStats() for _ in range(workers)], 0.0)
    stop = InterruptSignal()
    # The bound is what makes the producer wait for slow consumers instead of listing a huge
    # tree into memory first.
    batches = ProducerConsumerQueue[Batch](capacity=capacity)
    everyone = [job.producer, *job.consumers]
    started = time.perf_counter()
    # One thread per task: the producer plus the consumers. Leaving the block closes the
    # scheduler, which waits until every task has finished and every worker has exited.
    with ConcurrentTaskScheduler(workers + 1) as scheduler:
        tasks: list[Task[Any]] = []
        try:
            try:
                start_tasks(tasks, scheduler, stop, batches, root, small_file, job)
                while not Task.wait_all(tasks, PROGRESS_INTERVAL):
                    progress.update(job.walk, everyone, started)
            except KeyboardInterrupt:
                job.interrupted = True
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
            job.failures.extend(error.exceptions)
        finally:
            progress.clear()
    job.seconds = time.perf_counter() - started
    return job


def run_stdlib(root: str, workers: int, capacity: int, small_file: int) -> JobResult:
    """Run the same job with plain ``threading.Thread`` consumers and a ``queue.Queue``.

    The calling thread is the producer; ``workers`` threads consume. It exists to show what
    the library itself costs: the producer's and the consumers' work are the same functions
    as in :func:`run_parallel`. Blocks until every thread has finished.

    Returns:
        What was found and hashed, the elapsed seconds, and the exceptions of consumer
        threads that failed.

    Raises:
        KeyboardInterrupt: Ctrl+C; the consumer threads have stopped.
    """
    job = JobResult(WalkStats(), HashStats(), [HashStats() for _ in range(workers)], 0.0)
    # None ends a consumer; the producer puts one per consumer, whatever happened.
    batches: queue.Queue[Batch | None] = queue.Queue(capacity)
    # Set on Ctrl+C or when a consumer fails: the producer stops walking and the consumers
    # skip the batches still queued (they keep taking them, so that every end marker is
    # taken and no put blocks for ever).
    stop = threading.Event()
    never = Interrupt.none()

    def consume_plain(stats: HashStats) -> None:
        buffer = bytearray(CHUNK_SIZE)
        while (batch := batches.get()) is not None:
            if stop.is_set():
                continue
            try:
                hash_files(batch, stats, buffer, never)
            except Exception as error:
                job.failures.append(error)
                stop.set()

    threads = [
        threading.Thread(target=consume_plain, args=(own,), name=f"plain-consumer-{n}")
        for n, own in enumerate(job.consumers, 1)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for batch in walk_in_batches(root, job.walk, job.producer, small_file, never):
            if stop.is_set():
                break
            batches.put(batch)
    except BaseException:
        stop.set()
        raise
    finally:
        _end_plain_consumers(batches, threads, stop)
    job.seconds = time.perf_counter() - started
    return job


def _end_plain_consumers(
    batches: queue.Queue[Batch | None], threads: list[threading.Thread], stop: threading.Event
) -> None:
    """Put one end marker per consumer thread and join them all, even through Ctrl+C.

    Raises:
        KeyboardInterrupt: Ctrl+C while ending them; ``stop`` is set, so the consumers skip
            the batches still queued, and they have all been joined.
    """
    interrupted = False
    pending = len(threads)
    while pending:
        try:
            batches.put(None)
            pending -= 1
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
    for thread in threads:
        while True:
            try:
                thread.join()
                break
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
    if interrupted:
        raise KeyboardInterrupt


def run_sequential(root: str) -> tuple[HashStats, float]:
    """Do the whole job on the calling thread: walk ``root`` and hash every file.

    Returns:
        The statistics and the elapsed seconds.

    Raises:
        KeyboardInterrupt: Ctrl+C.
    """
    stats = HashStats()
    buffer = bytearray(CHUNK_SIZE)
    never = Interrupt.none()
    started = time.perf_counter()
    files = ((path, None) for path in walk_files(root, WalkStats(), never))
    hash_files(files, stats, buffer, never)
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


def split_line(job: JobResult, small_file: int) -> str:
    """Format the summary line telling which files the producer and the consumers hashed."""
    producer = job.producer
    consumers = merge(job.consumers)
    own = (
        f"producer {producer.files:,} files under {kibibytes(small_file)} "
        f"({megabytes(producer.size):,.1f} MB)"
        if small_file
        else "producer none (--small-file 0)"
    )
    return (
        f"{'Split:':<12}{own}; consumers {consumers.files:,} files "
        f"({megabytes(consumers.size):,.1f} MB) in {job.walk.batches:,} batches"
    )


def slow_note(seconds: float) -> str:
    """Explain in one line why the parallel run, which took ``seconds``, was the slower one.

    A very short job costs more to start threads for than it gains. Otherwise either the
    files were not in the page cache yet (a first run waits for the disk and leaves them
    cached for the baseline), or they are small: per file, the system calls and the Python
    code hold the GIL, which threads cannot share; only hashing releases it.
    """
    if seconds < SHORT_JOB:
        reason = "too little work: starting the threads costs more than they gain"
    else:
        reason = (
            "slower in parallel: the files were read from disk (run again: the baseline found "
            "them cached) or they are small and GIL-bound (per file, the system calls and "
            "Python code hold the GIL)"
        )
    return f"{'Note:':<12}{reason}"


def positive_int(text: str) -> int:
    """Parse a command-line integer that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse a command-line integer that must be at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
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
        help=f"maximum number of batches (of up to {BATCH_FILES} files or "
        f"{BATCH_BYTES >> 20} MiB) waiting in the queue (default: %(default)s)",
    )
    parser.add_argument(
        "--small-file",
        type=non_negative_int,
        default=SMALL_FILE,
        metavar="BYTES",
        help="files smaller than this are hashed by the producer itself, the others go "
        "through the queue; 0 sends every file through the queue (default: %(default)s)",
    )
    parser.add_argument(
        "--compare-stdlib",
        action="store_true",
        help="also run the same job with threading.Thread consumers and a queue.Queue",
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


def check_digest(label: str, digest: str, expected: str) -> bool:
    """Print ``digest`` for the run ``label``; report on stderr if it differs from ``expected``."""
    print(f"{'Digest:':<12}{digest} ({label})")
    if digest == expected:
        return True
    print(
        f"error: the parallel and {label} digests differ (did files change between the two runs?)",
        file=sys.stderr,
    )
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    args = parse_args(argv)
    root = os.path.abspath(args.directory)
    workers: int = args.workers
    small_file: int = args.small_file
    split = (
        f"hashes the files under {kibibytes(small_file)} and queues the others"
        if small_file
        else "queues every file"
    )
    print(
        f"Checksumming {root} with a producer and {workers} consumer tasks\n"
        f"  the producer {split} in batches of up to {BATCH_FILES} files or "
        f"{BATCH_BYTES >> 20} MiB (queue capacity {args.capacity:,} batches)",
        flush=True,
    )
    job = run_parallel(root, workers, args.capacity, small_file, Progress(sys.stdout))
    parallel = job.merged()
    errors = job.walk.errors + sorted(parallel.errors.items())
    label = "Partial:" if job.interrupted else "Parallel:"
    print(summary_line(label, parallel, job.seconds, f"a producer and {workers} consumer tasks"))
    print(split_line(job, small_file))
    walk = job.walk
    print(f"{'Walked:':<12}{walk.directories:,} directories, {walk.symlinks:,} symlinks skipped")
    if errors:
        print(f"{'Unreadable:':<12}{len(errors):,} (listed on stderr)")
        report_errors(errors)
    for failure in job.failures:
        print(f"error: a task failed: {type(failure).__name__}: {failure}", file=sys.stderr)
    if job.interrupted:
        return EXIT_INTERRUPTED
    if job.failures:
        return EXIT_FAILED
    digest = combined_digest(root, parallel.digests)
    print(f"{'Digest:':<12}{digest} (parallel)")
    agree = True

    if args.compare_stdlib:
        try:
            plain = run_stdlib(root, workers, args.capacity, small_file)
        except KeyboardInterrupt:
            print("Interrupted: comparison with the standard library skipped")
            return EXIT_INTERRUPTED
        for failure in plain.failures:
            print(f"error: a thread failed: {type(failure).__name__}: {failure}", file=sys.stderr)
        if plain.failures:
            return EXIT_FAILED
        merged = plain.merged()
        detail = f"threading.Thread + queue.Queue, {workers} consumer threads"
        print(summary_line("Stdlib:", merged, plain.seconds, detail))
        agree = check_digest("stdlib", combined_digest(root, merged.digests), digest) and agree

    if not args.no_baseline:
        try:
            baseline, baseline_seconds = run_sequential(root)
        except KeyboardInterrupt:
            print("Interrupted: single-threaded baseline skipped")
            return EXIT_INTERRUPTED
        detail = "the main thread walks and hashes, warm cache"
        print(summary_line("Sequential:", baseline, baseline_seconds, detail))
        if job.seconds > 0:
            speed_up = baseline_seconds / job.seconds
            print(f"{'Speed-up:':<12}{speed_up:.2f}x")
            if speed_up < 1.0:
                print(slow_note(job.seconds))
        baseline_digest = combined_digest(root, baseline.digests)
        agree = check_digest("sequential", baseline_digest, digest) and agree

    if not agree:
        return EXIT_FAILED
    if args.compare_stdlib or not args.no_baseline:
        print("Digests match.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
