"""Fixtures for the end-to-end tests on the real local cluster (`make cluster-up`), registry and Docker engine.

One namespace per session, made as admin, with manifests/rbac.yaml applied; runner itself
runs with a kubeconfig for the ServiceAccount bound to the runner-user Role, not as admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import HELPER_IMAGE, REGISTRY, delete_namespace, make_namespace

BASE_IMAGE = os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Namespace:
    name: str
    kubeconfig: Path


class KubeRunner:
    def __init__(self, home: Path, ns: Namespace) -> None:
        self.home = home
        self.ns = ns
        self.env = {
            **os.environ, "RUNNER_HOME": str(home), "RUNNER_BASE_IMAGE": BASE_IMAGE, "KUBECONFIG": str(ns.kubeconfig),
            "RUNNER_REGISTRY": REGISTRY, "RUNNER_HELPER_IMAGE": HELPER_IMAGE,
        }  # fmt: skip

    def __call__(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        p = subprocess.run([sys.executable, "-m", "runner", *args], env={**self.env, **(env or {})}, input=input,
                           capture_output=True, text=True, timeout=timeout)  # fmt: skip
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "runner", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def json(self, *args: str) -> Any:
        r = self(*args, "--json")
        assert r.code == 0, r.err
        return json.loads(r.out)

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


def run_name(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("run "):
            return line.split()[1]
    raise AssertionError(f"no run name in:\n{stderr}")


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
        root = tmp_path / "proj"
        for name, text in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
        return root

    return make
