"""Static type tests for the task API, checked by ``mypy --strict`` (not run by pytest).

Correct calls must type-check. Each wrong call carries ``# type: ignore[arg-type]`` (or the
error code mypy reports): with ``warn_unused_ignores`` (part of ``--strict``), an ignore that
stops being needed is itself an error, so a regression in the ``ParamSpec``/``Concatenate``
typing of ``Task.run`` and friends makes the type check fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.threading import Interrupt
from runtime.threading.tasks import ContinuationOptions, Task, task
from runtime.threading.tasks.schedulers import ConcurrentTaskScheduler


def add(t: Task[int], a: int, b: int) -> int:
    return a + b


def greet(t: Task[str], name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def describe(c: Task[str], antecedent: Task[int], unit: str) -> str:
    return f"{antecedent.result} {unit}"


def total(c: Task[int], tasks: Sequence[Task[Any]], base: int) -> int:
    return base + len(tasks)


def correct_calls(scheduler: ConcurrentTaskScheduler, interrupt: Interrupt) -> None:
    r1: Task[int] = Task.run(add, 1, 2)
    r2: Task[str] = Task.run(greet, "bob", punctuation="?")
    r3: Task[int] = Task.plan(add, 1, 2)
    r4: Task[int] = Task.run_after(0.1, add, 1, 2)
    r5: Task[int] = Task.create(scheduler=scheduler, interrupt=interrupt).run(add, 1, 2)
    r6: Task[str] = Task.create(lazy=True).plan(greet, "x")
    r7: Task[int] = Task.create().run_after(0, add, 1, 2)
    r8: Task[str] = r1.continue_with(ContinuationOptions.DEFAULT, describe, "apples")
    r9: Task[int] = Task.with_all([r1, r2]).run(total, 10)
    r10: Task[None] = Task.with_any([r1]).plan()
    r11: Task[int] = Task.with_any([r1]).plan(total, 1)
    r12: Task[int] = Task[int].run(add, 1, 2)
    r13: Task[str] = Task[str].plan(greet, "y")
    value: int = r1.result
    text: str = r8.result
    del r2, r3, r4, r5, r6, r7, r9, r10, r11, r12, r13, value, text


@task
def plain(a: int, b: str) -> float:
    return float(a)


def decorator_calls() -> None:
    t: Task[float] = plain(1, "x")
    plain("1", "x")  # type: ignore[arg-type]
    del t


def wrong_calls(scheduler: ConcurrentTaskScheduler) -> None:
    Task.run(add, 1, "2")  # type: ignore[arg-type]
    Task.run(greet, 3)  # type: ignore[arg-type]
    Task.run(greet, "bob", punctuation=1)  # type: ignore[arg-type]
    Task.plan(add, "1", 2)  # type: ignore[arg-type]
    Task.run_after(0.1, add, 1, None)  # type: ignore[arg-type]
    Task.create(scheduler=scheduler).run(add, b"1", 2)  # type: ignore[arg-type]
    Task.create().plan(greet, 1.5)  # type: ignore[arg-type]
    Task.from_result(1).continue_with(ContinuationOptions.DEFAULT, describe, 5)  # type: ignore[arg-type]
    Task.with_all([]).run(total, "10")  # type: ignore[arg-type]
    Task[int].run(add, 1, [2])  # type: ignore[arg-type]
    wrong_result: str = Task.run(add, 1, 2).result  # type: ignore[assignment]
    del wrong_result
