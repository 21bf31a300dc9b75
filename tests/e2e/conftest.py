"""Fixtures for the end-to-end tests on the real local cluster (`make cluster-up`), registry and Docker engine.

One namespace per session, made empty (as a new user gets one); runner runs with a kubeconfig for an
identity bound to the built-in `admin` ClusterRole in that namespace only, and sets the namespace up itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_cluster import KubeRunner, Namespace, delete_namespace, make_namespace


@pytest.fixture(scope="session")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    name, kubeconfig = make_namespace(tmp_path_factory.mktemp("kube"))
    yield Namespace(name, kubeconfig)
    delete_namespace(name)


@pytest.fixture
def kr(tmp_path: Path, namespace: Namespace) -> KubeRunner:
    return KubeRunner(tmp_path / "home", namespace)
