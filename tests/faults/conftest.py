"""Fixtures of the fault suite: the real Docker engine (shared, or a private one for engine faults) and the real
local cluster (`make cluster-up`), with a namespace of our own (empty: runner sets it up) and a kubeconfig bound to `admin` there only."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # e2e_cluster: namespace and RBAC helpers

from e2e_cluster import REGISTRY, delete_namespace, make_namespace  # noqa: E402
from support import Runner  # noqa: E402


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    name, path = make_namespace(tmp_path_factory.mktemp("kube"))
    yield name, path
    delete_namespace(name)


@pytest.fixture
def kr(tmp_path: Path, kubeconfig: tuple[str, Path]) -> Runner:
    """The CLI as a user of our namespace: their kubeconfig and the cluster's registry (no helper image: runner's own)."""
    return Runner(tmp_path / "home", {"KUBECONFIG": str(kubeconfig[1]), "RUNNER_REGISTRY": REGISTRY})
