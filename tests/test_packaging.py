"""Packaging invariants: namespace layout, typing marker, no runtime dependencies."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = REPO_ROOT / "src"


def test_runtime_is_a_namespace_package() -> None:
    runtime = importlib.import_module("runtime")
    assert getattr(runtime, "__file__", None) is None
    assert runtime.__spec__ is not None
    assert runtime.__spec__.origin is None
    assert type(runtime.__path__).__name__ == "_NamespacePath"
    assert not (SRC_DIR / "runtime" / "__init__.py").exists()


def test_py_typed_marker_exists() -> None:
    assert (SRC_DIR / "runtime" / "threading" / "py.typed").is_file()


def test_no_runtime_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert project.get("dependencies", []) == []
    assert project["requires-python"] == ">=3.10"
