"""Test namespaces on the real local cluster, as a new user gets them: empty, with an identity that has the
built-in `admin` ClusterRole there (not cluster admin); runner sets the namespace up itself."""

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

import yaml
from support import Runner

from runner.targets.kubernetes.objects import MANIFESTS

ADMIN_KUBECONFIG = os.environ.get("RUNNER_E2E_ADMIN_KUBECONFIG", "/var/lib/runner-cluster/kubeconfig")
KUBECTL = os.environ.get("RUNNER_E2E_KUBECTL", "/var/lib/runner-cluster/bin/kubectl")
REGISTRY = os.environ.get("RUNNER_E2E_REGISTRY", "127.0.0.1:5000")
#: the test namespaces' names start with this (several sessions may share a cluster)
PREFIX = os.environ.get("RUNNER_E2E_NAMESPACE_PREFIX", "runner-e2e")
#: where the test users live: ServiceAccounts in a namespace of their own, as people are outside the namespaces they use
USERS = f"{PREFIX}-users"
#: the admin's manifest, as installed (package data)
RBAC = MANIFESTS / "rbac.yaml"


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


def rbac_document(kind: str, name: str) -> str:
    """One object of the packaged rbac.yaml, as YAML (an admin who applies only part of it)."""
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return str(yaml.safe_dump(next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)))


def make_namespace(folder: Path, *, rights: str = "admin") -> tuple[str, Path]:
    """A fresh, empty namespace and a kubeconfig for a user of it (a ServiceAccount token from another namespace).

    ``rights``: ``admin`` binds the user to the built-in `admin` ClusterRole in the namespace
    (a new user's usual rights: runner sets the namespace up itself); ``runner-user`` applies
    only the Role runner-user of rbac.yaml and binds the user to it (fewer rights: an admin
    must set the namespace up).
    """
    ns = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": USERS}})
    )
    kubectl("-n", USERS, "create", "serviceaccount", ns)
    subject = f"--serviceaccount={USERS}:{ns}"
    if rights == "admin":
        kubectl("-n", ns, "create", "rolebinding", "e2e-user", "--clusterrole=admin", subject)
    else:
        kubectl("-n", ns, "apply", "-f", "-", input=rbac_document("Role", rights))
        kubectl("-n", ns, "create", "rolebinding", "e2e-user", f"--role={rights}", subject)
    token = kubectl("-n", USERS, "create", "token", ns, "--duration=2h").strip()
    admin = json.loads(kubectl("config", "view", "--raw", "-o", "json"))
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "e2e",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": "e2e-user", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e-user", "namespace": ns}}],
    }
    path = folder / f"kubeconfig-{ns}"
    path.write_text(json.dumps(config))
    return ns, path


def delete_namespace(ns: str) -> None:
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    kubectl("-n", USERS, "delete", "serviceaccount", ns, "--ignore-not-found", check=False)


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
