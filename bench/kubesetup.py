"""Shared set-up of the Kubernetes benchmarks: the cluster's kubectl, a namespace with runner's RBAC,
and the environment a runner process needs to use it (its own RUNNER_HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = os.environ.get("KUBECONFIG") or "/var/lib/runner-cluster/kubeconfig"
KUBECTL = shutil.which("kubectl") or "/var/lib/runner-cluster/bin/kubectl"


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    return subprocess.run(
        [KUBECTL, *args],
        input=input,
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
    ).stdout


def prepare(namespace: str, registry: str, *, script_name: str, script: str) -> tuple[str, Path, dict[str, str]]:
    """Make the namespace (with manifests/rbac.yaml) and a project holding one script.

    Returns the temporary RUNNER_HOME (the caller removes it), the script's path, and
    the environment for runner.
    """
    if subprocess.run(
        [KUBECTL, "get", "namespace", namespace], capture_output=True, env={**os.environ, "KUBECONFIG": KUBECONFIG}
    ).returncode:
        kubectl("create", "namespace", namespace)
    kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        input=(REPO / "manifests/rbac.yaml").read_text().replace("NAMESPACE", namespace),
    )
    home = tempfile.mkdtemp(prefix="runner-bench-")
    proj = Path(home) / "benchproj"
    proj.mkdir()
    (proj / script_name).write_text(script)
    env = {
        **os.environ,
        "RUNNER_HOME": home,
        "KUBECONFIG": KUBECONFIG,
        "RUNNER_NAMESPACE": namespace,
        "RUNNER_REGISTRY": registry,
        "RUNNER_BASE_IMAGE": os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11"),
    }
    return home, proj / script_name, env
