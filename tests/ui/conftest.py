"""Fixtures for the browser tests of `runner ui`: real runs on the real Docker engine, headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from uibrowser import chrome


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    d = tmp_path / "downloads"
    d.mkdir()
    return d


@pytest.fixture
def browser(downloads: Path) -> Iterator[webdriver.Chrome]:
    with chrome(downloads) as d:
        yield d
