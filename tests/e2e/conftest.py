"""Fixtures for the end-to-end tests on the real local cluster (`make cluster-up`), registry and Docker engine.

One namespace per session, made as admin, with manifests/rbac.yaml applied; runner itself
runs with a kubeconfig for the ServiceAccount bound to the runner-user Role, not as admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import REGISTRY, delete_namespace, make_namespace
from support import Runner, write_project

@dataclass
class Namespace:
    name: str
    kubeconfig: Path


class KubeRunner(Runner):
    """The CLI as a user of one namespace: their kubeconfig and the test registry (nothing a new user would not set)."""

    def __init__(self, home: Path, ns: Namespace) -> None:
        super().__init__(home, {"KUBECONFIG": str(ns.kubeconfig), "RUNNER_REGISTRY": REGISTRY})
        self.ns = ns

    def experiment(self, name: str) -> dict[str, Any]:
        run = name.rsplit("-exp", 1)[0]
        doc = self.json("status", run)
        return next(e for e in doc["experiment_list"] if e["name"] == name)

    def wait_for(self, name: str, ok: Callable[[dict[str, Any]], bool], *, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            exp = self.experiment(name)
            if ok(exp):
                return exp
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never got there: {exp}")
            time.sleep(1)


@pytest.fixture(scope="session")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    name, kubeconfig = make_namespace(tmp_path_factory.mktemp("kube"))
    yield Namespace(name, kubeconfig)
    delete_namespace(name)


@pytest.fixture
def kr(tmp_path: Path, namespace: Namespace) -> KubeRunner:
    return KubeRunner(tmp_path / "home", namespace)


@pytest.fixture
def project(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def make(files: dict[str, str]) -> Path:
        return write_project(tmp_path / "proj", files)

    return make
