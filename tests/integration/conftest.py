"""Fixtures for the integration tests (real Docker engine; `make test` starts it and builds the base image)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Runner


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path / "home")


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "proj"
        for name, text in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        return root

    return make


@pytest.fixture(scope="session")
def docker_api() -> Iterator[object]:
    import docker

    client = docker.from_env()
    yield client
    client.close()
