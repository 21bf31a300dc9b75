"""Fixtures for the integration tests (real Docker engine; `make test` starts it and builds the base image)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Runner, write_project


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path / "home")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def make(files: dict[str, str]) -> Path:
        return write_project(tmp_path / "proj", files)

    return make


@pytest.fixture(scope="session")
def docker_api() -> Iterator[object]:
    import docker

    client = docker.from_env()
    yield client
    client.close()
