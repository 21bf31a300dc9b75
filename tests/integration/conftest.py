"""Fixtures for the integration tests (real Docker engine; `make test` starts it and builds the base image)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def docker_api() -> Iterator[object]:
    import docker

    client = docker.from_env()
    yield client
    client.close()
