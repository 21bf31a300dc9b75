"""Test namespace on the real local cluster, with runner's RBAC and a kubeconfig for a user bound to it (not admin)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import Runner

ADMIN_KUBECONFIG = os.environ.get("RUNNER_E2E_ADMIN_KUBECONFIG", "/var/lib/runner-cluster/kubeconfig")
KUBECTL = os.environ.get("RUNNER_E2E_KUBECTL", "/var/lib/runner-cluster/bin/kubectl")
REGISTRY = os.environ.get("RUNNER_E2E_REGISTRY", "127.0.0.1:5000")
#: test namespaces are named PREFIX-<random>: people sharing a cluster tell theirs apart
NAMESPACE_PREFIX = os.environ.get("RUNNER_E2E_NAMESPACE_PREFIX", "runner-e2e")
RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"


def kubectl(*args: str, input: str | None = None, check: bool = True, kubeconfig: str = ADMIN_KUBECONFIG) -> str:
    p = subprocess.run(
        [KUBECTL, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {p.stderr}")
    return p.stdout


def make_namespace(folder: Path) -> tuple[str, Path]:
    """A fresh namespace with manifests/rbac.yaml applied; a kubeconfig for its runner-user (a ServiceAccount token)."""
    ns = f"{NAMESPACE_PREFIX}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    kubectl("-n", ns, "apply", "-f", "-", input=RBAC.read_text().replace("NAMESPACE", ns))
    token = kubectl("-n", ns, "create", "token", "runner-user", "--duration=2h").strip()
    admin = json.loads(kubectl("config", "view", "--raw", "-o", "json"))
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "e2e",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": "runner-user", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "runner-user", "namespace": ns}}],
    }
    path = folder / f"kubeconfig-{ns}"
    path.write_text(json.dumps(config))
    return ns, path


def delete_namespace(ns: str) -> None:
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


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
