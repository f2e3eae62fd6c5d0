"""Tests for the examples and for the code blocks of the user documentation.

``examples/checksum.py`` runs in a subprocess on a small generated tree. Every fenced
``python`` block of ``README.md`` and ``docs/guide.md`` runs in a fresh interpreter, so the
documentation cannot drift from the library.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import REPO_ROOT, SRC_DIR

CHECKSUM = REPO_ROOT / "examples" / "checksum.py"
DOCUMENTS = (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "guide.md")

#: Seconds a subprocess may run; pytest-timeout gets a margin above it.
SUBPROCESS_TIMEOUT = 60.0

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC_DIR) if not existing else os.pathsep.join([str(SRC_DIR), existing])
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@contextlib.contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Let a child process get Python's default Ctrl+C handling.

    A child inherits an ignored SIGINT (as in a background job of a non-interactive shell),
    and Python then raises no ``KeyboardInterrupt`` in it. A caught signal, on the other hand,
    is reset to its default by ``exec``, so a handler is installed here while the child starts.
    """
    if (
        not hasattr(signal, "SIGINT")
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(args: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    with _sigint_not_ignored():
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
    with process:
        try:
            stdout, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{args[:2]} still running after {SUBPROCESS_TIMEOUT} s\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}"
            ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _field(output: str, label: str) -> str:
    """Return the rest of the first summary line starting with ``label``."""
    match = re.search(rf"^{re.escape(label)}\s+(.*)$", output, re.MULTILINE)
    assert match, f"no {label!r} line in output:\n{output}"
    return match.group(1)


def _file_count(line: str) -> int:
    match = re.match(r"([\d,]+) files", line)
    assert match, line
    return int(match.group(1).replace(",", ""))


def _digest(output: str, run: str) -> str:
    match = re.search(rf"^Digest:\s+([0-9a-f]{{64}}) \({run}\)$", output, re.MULTILINE)
    assert match, f"no {run} digest in output:\n{output}"
    return match.group(1)


def _expected_digest(root: Path, files: list[Path]) -> str:
    """The combined digest, computed independently of the example."""
    lines = sorted(
        (
            os.fsencode(path.relative_to(root).as_posix()),
            hashlib.sha256(path.read_bytes()).hexdigest().encode(),
        )
        for path in files
    )
    total = hashlib.sha256()
    for name, digest in lines:
        total.update(digest + b"  " + name + b"\n")
    return total.hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A small tree: empty, text and binary files, files around the 1 MiB chunk size, nested
    and empty directories, and a symlink (skipped by the walk). Returns the root and the
    regular files."""
    root = tmp_path / "tree"
    nested = root / "a" / "b" / "c"
    nested.mkdir(parents=True)
    (root / "empty-dir").mkdir()
    files = {
        root / "empty.txt": b"",
        root / "hello.txt": b"hello, world\n",
        root / "a" / "binary.bin": bytes(range(256)) * 64,
        root / "a" / "b" / "one-chunk.bin": b"\x00\xff" * (1 << 19),
        nested / "two-and-a-half-chunks.bin": bytes(range(251)) * 10_443,
        nested / "naïve ünïcode.txt": "ünïcode\n".encode(),
    }
    for path, data in files.items():
        path.write_bytes(data)
    if hasattr(os, "symlink"):
        try:
            (root / "link-to-hello").symlink_to(root / "hello.txt")
            (root / "link-to-a").symlink_to(root / "a", target_is_directory=True)
        except OSError:
            pass  # no symlink privilege (Windows)
    return root, sorted(files)


def test_checksum_hashes_every_file_and_runs_agree(tree: tuple[Path, list[Path]]) -> None:
    root, files = tree
    result = _run([str(CHECKSUM), str(root), "--workers", "3", "--capacity", "2"])
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert _file_count(_field(out, "Parallel:")) == len(files)
    assert _file_count(_field(out, "Sequential:")) == len(files)
    expected = _expected_digest(root, files)
    assert _digest(out, "parallel") == expected
    assert _digest(out, "sequential") == expected
    assert "Digests match." in out
    assert "Unreadable:" not in out


def test_checksum_without_baseline(tree: tuple[Path, list[Path]]) -> None:
    root, files = tree
    result = _run([str(CHECKSUM), str(root), "--workers", "1", "--no-baseline"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert _file_count(_field(result.stdout, "Parallel:")) == len(files)
    assert _digest(result.stdout, "parallel") == _expected_digest(root, files)
    assert "Sequential:" not in result.stdout


def _split(output: str) -> tuple[int, int, int]:
    """Return the files hashed by the producer and by the consumers, and the batch count."""
    line = _field(output, "Split:")
    match = re.fullmatch(
        r"producer (?:([\d,]+) files under .*?|none \(--small-file 0\)); "
        r"consumers ([\d,]+) files \(.*?\) in ([\d,]+) batches",
        line,
    )
    assert match, line
    producer, consumers, batches = (int((g or "0").replace(",", "")) for g in match.groups())
    return producer, consumers, batches


def test_checksum_splits_files_between_producer_and_consumers(
    tree: tuple[Path, list[Path]],
) -> None:
    # The default --small-file is 64 KiB: the 1 MiB and 2.6 MB files go through the queue,
    # the four small ones are hashed by the producer.
    root, files = tree
    result = _run([str(CHECKSUM), str(root), "--no-baseline"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert _split(result.stdout) == (4, 2, 1)
    assert _digest(result.stdout, "parallel") == _expected_digest(root, files)


def test_checksum_every_file_through_the_queue_in_batches(
    tree: tuple[Path, list[Path]],
) -> None:
    # 150 more files: with --small-file 0 every file goes through the queue, in batches of
    # at most 64 files, and a capacity of one batch makes the producer wait for the consumers.
    root, files = tree
    many = root / "many"
    many.mkdir()
    for n in range(150):
        path = many / f"{n:03}.txt"
        path.write_bytes(b"x" * n)
        files.append(path)
    args = [str(CHECKSUM), str(root), "--small-file", "0", "--capacity", "1", "--workers", "2"]
    result = _run(args)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    producer, consumers, batches = _split(out)
    assert (producer, consumers) == (0, len(files))
    assert batches == 3  # 156 files of less than 4 MiB in all: 64 + 64 + 28
    expected = _expected_digest(root, files)
    assert _digest(out, "parallel") == _digest(out, "sequential") == expected
    assert "Digests match." in out


def test_checksum_compare_stdlib(tree: tuple[Path, list[Path]]) -> None:
    root, files = tree
    result = _run([str(CHECKSUM), str(root), "--compare-stdlib", "--capacity", "1"])
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert _file_count(_field(out, "Stdlib:")) == len(files)
    assert "threading.Thread + queue.Queue" in _field(out, "Stdlib:")
    expected = _expected_digest(root, files)
    assert _digest(out, "parallel") == _digest(out, "stdlib") == expected
    assert _digest(out, "sequential") == expected
    assert "Digests match." in out


@pytest.mark.timeout(SUBPROCESS_TIMEOUT + 30)
def test_checksum_ctrl_c_during_the_stdlib_comparison(tree: tuple[Path, list[Path]]) -> None:
    # In the plain-threads run the main thread is the producer. Once a consumer thread is
    # inside the first batch, the producer raises KeyboardInterrupt, exactly where Ctrl+C
    # would. Every consumer thread must stop and be joined, and the exit code is 130.
    root, _ = tree
    driver = textwrap.dedent(
        f"""
        import sys, threading
        sys.path.insert(0, {str(CHECKSUM.parent)!r})
        import checksum

        original_walk, original_hash = checksum.walk_in_batches, checksum.hash_files
        hashing = threading.Event()

        def hash_and_tell(*args):
            if threading.current_thread().name.startswith("plain-consumer-"):
                hashing.set()
            return original_hash(*args)

        def walk_then_ctrl_c(*args):
            for batch in original_walk(*args):
                yield batch
                if threading.current_thread() is threading.main_thread():
                    if not hashing.wait({SUBPROCESS_TIMEOUT / 2}):
                        print("no consumer thread hashed a batch", file=sys.stderr)
                        sys.exit(3)
                    raise KeyboardInterrupt

        checksum.walk_in_batches = walk_then_ctrl_c
        checksum.hash_files = hash_and_tell
        code = checksum.main([{str(root)!r}, "--compare-stdlib", "--small-file", "0"])
        others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        print("threads left:", others)
        sys.exit(code)
        """
    )
    result = _run(["-c", driver])
    out = result.stdout
    assert result.returncode == 130, out + result.stderr
    assert "Interrupted: comparison with the standard library skipped" in out
    assert "threads left: []" in out
    assert "Stdlib:" not in out
    assert "Sequential:" not in out
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="needs a POSIX non-root user for a file to be unreadable",
)
def test_checksum_counts_an_unreadable_file(tree: tuple[Path, list[Path]]) -> None:
    root, files = tree
    locked = root / "a" / "locked.bin"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    try:
        result = _run([str(CHECKSUM), str(root), "--workers", "2"])
    finally:
        locked.chmod(0o600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert _file_count(_field(out, "Parallel:")) == len(files)
    assert _field(out, "Unreadable:").startswith("1 ")
    assert "locked.bin" in result.stderr
    assert _digest(out, "parallel") == _digest(out, "sequential") == _expected_digest(root, files)


def test_checksum_rejects_bad_arguments(tmp_path: Path) -> None:
    missing = _run([str(CHECKSUM), str(tmp_path / "missing")])
    assert missing.returncode == 2
    assert "not a directory" in missing.stderr
    zero = _run([str(CHECKSUM), str(tmp_path), "--workers", "0"])
    assert zero.returncode == 2
    assert "--workers" in zero.stderr
    negative = _run([str(CHECKSUM), str(tmp_path), "--small-file", "-1"])
    assert negative.returncode == 2
    assert "--small-file" in negative.stderr


@pytest.mark.timeout(SUBPROCESS_TIMEOUT + 30)
def test_checksum_ctrl_c_stops_cleanly(tree: tuple[Path, list[Path]]) -> None:
    # The producer and every consumer are held inside their first file until the job's
    # interrupt is signaled, so the job cannot finish on its own. The main thread's first
    # progress refresh (the tasks are all started by then) raises SIGINT, exactly what Ctrl+C
    # does. The main thread must stop every task and print a partial summary with exit code
    # 130.
    root, _ = tree
    driver = textwrap.dedent(
        f"""
        import signal, sys
        sys.path.insert(0, {str(CHECKSUM.parent)!r})
        import checksum

        original_hash, original_update = checksum.hash_open, checksum.Progress.update
        ticks = []

        def hash_until_stopped(fd, size, buffer, interrupt):
            if not interrupt.wait({SUBPROCESS_TIMEOUT / 2}):
                print("the job's interrupt was never signaled", file=sys.stderr)
                sys.exit(3)
            interrupt.raise_if_signaled()
            return original_hash(fd, size, buffer, interrupt)

        def update_then_ctrl_c(self, *args):
            original_update(self, *args)
            if not ticks:
                ticks.append(1)
                signal.raise_signal(signal.SIGINT)

        checksum.hash_open = hash_until_stopped
        checksum.Progress.update = update_then_ctrl_c
        sys.exit(checksum.main([{str(root)!r}, "--workers", "2"]))
        """
    )
    result = _run(["-c", driver])
    out = result.stdout
    assert result.returncode == 130, out + result.stderr
    assert "Interrupted: stopping the tasks..." in out
    assert _file_count(_field(out, "Partial:")) == 0
    assert "Traceback" not in result.stderr
    assert "Digest:" not in out
    assert "Sequential:" not in out


def _code_blocks() -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    for document in DOCUMENTS:
        if not document.exists():
            continue
        text = document.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{document.relative_to(REPO_ROOT).as_posix()}:{line}", match.group(1)))
    return blocks


_BLOCKS = _code_blocks()


def test_documentation_has_code_blocks() -> None:
    documents = {name.partition(":")[0] for name, _ in _BLOCKS}
    assert documents == {"README.md", "docs/guide.md"}


@pytest.mark.timeout(SUBPROCESS_TIMEOUT + 30)
@pytest.mark.parametrize("code", [code for _, code in _BLOCKS], ids=[name for name, _ in _BLOCKS])
def test_documentation_code_block_runs(code: str, tmp_path: Path) -> None:
    result = _run(["-c", code], cwd=tmp_path)
    report = (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert result.returncode == 0, report
    assert result.stderr == "", report  # no warning, and no traceback from a worker thread
