"""Fixtures for the browser tests of `runner ui`: real runs on the real Docker engine, headless Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from support import Runner, write_project
from uibrowser import chrome


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path / "home")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def make(files: dict[str, str]) -> Path:
        return write_project(tmp_path / "proj", files)

    return make


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    d = tmp_path / "downloads"
    d.mkdir()
    return d


@pytest.fixture
def browser(downloads: Path) -> Iterator[webdriver.Chrome]:
    with chrome(downloads) as d:
        yield d
