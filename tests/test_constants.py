"""Tests for ``runtime.threading._constants`` (API §1.1)."""

from __future__ import annotations

import os

import pytest

from helpers import run_in_subprocess
from runtime.threading import _constants


def test_all_names_the_four_constants() -> None:
    assert isinstance(_constants.__all__, tuple)
    assert set(_constants.__all__) == {
        "DEFAULT_PARALLELISM",
        "TASK_SUSPEND_AFTER",
        "TASK_KEEP_ALIVE",
        "POLL_INTERVAL",
    }


def test_values_and_types() -> None:
    assert type(_constants.TASK_SUSPEND_AFTER) is float
    assert type(_constants.TASK_KEEP_ALIVE) is float
    assert type(_constants.POLL_INTERVAL) is float
    assert _constants.TASK_SUSPEND_AFTER == 0.1
    assert _constants.TASK_KEEP_ALIVE == 0.1
    assert _constants.POLL_INTERVAL == 0.1


def test_default_parallelism_follows_the_cpu_count() -> None:
    assert type(_constants.DEFAULT_PARALLELISM) is int
    assert 2 <= _constants.DEFAULT_PARALLELISM <= 4
    assert min(4, max(2, os.cpu_count() or 1)) == _constants.DEFAULT_PARALLELISM


@pytest.mark.parametrize(
    ("cpu_count", "expected"),
    [(None, 2), (1, 2), (2, 2), (3, 3), (4, 4), (64, 4)],
)
def test_default_parallelism_is_computed_at_import(cpu_count: int | None, expected: int) -> None:
    code = (
        "import os\n"
        f"os.cpu_count = lambda: {cpu_count!r}\n"
        "from runtime.threading import _constants\n"
        "print(_constants.DEFAULT_PARALLELISM)\n"
    )
    result = run_in_subprocess(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


def test_constants_are_tunable_by_assignment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The library reads the module attribute on each use (see test_blocking for the effect on
    # parking); assigning must simply stick until restored.
    monkeypatch.setattr(_constants, "TASK_SUSPEND_AFTER", 0.01)
    monkeypatch.setattr(_constants, "POLL_INTERVAL", 0.5)
    assert _constants.TASK_SUSPEND_AFTER == 0.01
    assert _constants.POLL_INTERVAL == 0.5
