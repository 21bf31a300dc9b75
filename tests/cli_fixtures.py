"""Fixtures of the suites that drive the real CLI (integration, ui, e2e, faults): a runner home, a project folder.

A pytest plugin, listed in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import Runner, write_project


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    """The CLI with a home of its own."""
    return Runner(tmp_path / "home")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Writes a project folder from {relative path: text}, and returns it."""

    def make(files: dict[str, str]) -> Path:
        return write_project(tmp_path / "proj", files)

    return make
