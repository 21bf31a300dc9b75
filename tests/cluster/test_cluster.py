"""Checks that the development cluster (make cluster-up) is real Kubernetes.

Runs against the running cluster through its kubeconfig and the kubectl built
into the cluster's multi-call binary; every test fails when the cluster is not
up (`make test` starts it). Each test works in its own namespace, deleted afterwards. No timing
assertions: waits only have generous time limits.

    make cluster-up && make cluster-test
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STATE_DIR = Path("/var/lib/runner-cluster")
KUBECONFIG = STATE_DIR / "kubeconfig"
KUBECTL = STATE_DIR / "bin" / "kubectl"
NODE = "runner-node"
IMAGE = "127.0.0.1:5000/runner-cluster/busybox:1.35"
API_SERVICE_IP = "10.96.0.1"


def _cluster_up() -> bool:
    if not (KUBECONFIG.exists() and KUBECTL.exists()):
        return False
    try:
        return _run("get", "--raw", "/readyz", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run(
    *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    return _run(*args, stdin=stdin, timeout=timeout).stdout


def apply(obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    ns = ["-n", namespace] if namespace else []
    return json.loads(kubectl("get", kind, name, *ns, "-o", "json"))


def wait_until(what: str, predicate: Any, timeout: float = 120, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module", autouse=True)
def cluster_running() -> None:
    # `make test` brings the cluster up first; a cluster that is down is a failure, not a skip
    assert _cluster_up(), "the development cluster is not up: run `make cluster-up` first"


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"cluster-test-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    # The service account controller creates "default" in each new namespace.
    wait_until(
        "default service account",
        lambda: _run("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
        timeout=60,
    )
    yield name
    _run("delete", "namespace", name, "--wait=false", check=False)


def pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": IMAGE,
        "command": command,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container], **spec},
    }


def test_node_ready_with_version() -> None:
    node = get("node", NODE)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    version = json.loads(kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == version["serverVersion"]["gitVersion"]


def test_job_completes_and_its_log_is_read(ns: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hello"},
        "spec": {"backoffLimit": 0, "template": {"spec": pod("x", ["sh", "-c", "echo hello from job"])["spec"]}},
    }
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(job))
    kubectl("-n", ns, "wait", "--for=condition=complete", "job/hello", "--timeout=120s", timeout=150)
    assert kubectl("-n", ns, "logs", "job/hello").strip() == "hello from job"


def test_exec_and_copy_out_of_a_pod(ns: str, tmp_path: Path) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(pod("sleeper", ["sleep", "3600"])))
    kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s", timeout=150)
    out = kubectl("-n", ns, "exec", "sleeper", "--", "sh", "-c", "echo artifact > /tmp/result.txt && echo done")
    assert out.strip() == "done"
    # kubectl cp runs tar in the container through exec.
    kubectl("-n", ns, "cp", "sleeper:/tmp/result.txt", str(tmp_path / "result.txt"))
    assert (tmp_path / "result.txt").read_text() == "artifact\n"


def test_service_account_token_reaches_api_server(ns: str) -> None:
    script = (
        "t=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token) && "
        f'timeout 10 wget -q -O - --no-check-certificate --header "Authorization: Bearer $t" '
        f"https://{API_SERVICE_IP}/api/v1/namespaces/{ns}/serviceaccounts/default"
    )
    # RBAC: the default service account may not read service accounts...
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(pod("denied", ["sh", "-c", script])))
    wait_until(
        "pod denied to finish", lambda: get("pod", "denied", ns)["status"].get("phase") in ("Succeeded", "Failed")
    )
    assert get("pod", "denied", ns)["status"]["phase"] == "Failed"
    assert "403" in kubectl("-n", ns, "logs", "denied")
    # ...until a Role allows it.
    kubectl("-n", ns, "create", "role", "sa-reader", "--verb=get", "--resource=serviceaccounts")
    kubectl("-n", ns, "create", "rolebinding", "sa-reader", "--role=sa-reader", f"--serviceaccount={ns}:default")
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(pod("allowed", ["sh", "-c", script])))
    wait_until(
        "pod allowed to finish", lambda: get("pod", "allowed", ns)["status"].get("phase") in ("Succeeded", "Failed")
    )
    log = kubectl("-n", ns, "logs", "allowed")
    assert get("pod", "allowed", ns)["status"]["phase"] == "Succeeded", log
    assert json.loads(log)["metadata"]["name"] == "default"


def test_scheduling_honours_resource_requests(ns: str) -> None:
    huge = pod("huge", ["true"], container={"resources": {"requests": {"cpu": "1000"}}})
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(huge))

    def unschedulable() -> bool:
        conds = get("pod", "huge", ns)["status"].get("conditions", [])
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)

    wait_until("huge pod to be found unschedulable", unschedulable, timeout=60)


def test_pvc_binds_and_a_pod_writes_to_it(ns: str) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
    }
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(pvc))
    wait_until("PVC bound", lambda: get("pvc", "data", ns)["status"].get("phase") == "Bound", timeout=60)
    claim = get("pvc", "data", ns)
    assert claim["spec"]["storageClassName"] == "standard"  # the default class
    volume = get("pv", claim["spec"]["volumeName"])
    host_dir = Path(volume["spec"]["hostPath"]["path"])

    writer = pod(
        "writer",
        ["sh", "-c", "echo stored > /data/file && id -u > /data/uid"],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(writer))
    wait_until("writer to succeed", lambda: get("pod", "writer", ns)["status"].get("phase") == "Succeeded")
    assert (host_dir / "file").read_text() == "stored\n"

    # Reclaim policy Delete: deleting the claim removes the volume and its directory.
    kubectl("-n", ns, "delete", "pod", "writer")
    kubectl("-n", ns, "delete", "pvc", "data")
    wait_until(
        "PV deleted", lambda: _run("get", "pv", volume["metadata"]["name"], check=False).returncode != 0, timeout=60
    )
    assert not host_dir.exists()


def test_extended_resource_gpu_requests_are_scheduled(ns: str) -> None:
    # Advertise two fake GPUs on the node, as a device plugin would.
    patch = [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "2"}]
    kubectl("patch", "node", NODE, "--subresource=status", "--type=json", "-p", json.dumps(patch))
    try:
        wait_until(
            "GPUs allocatable",
            lambda: get("node", NODE)["status"]["allocatable"].get("nvidia.com/gpu") == "2",
            timeout=60,
        )
        gpu = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "10m", "nvidia.com/gpu": "1"}}
        kubectl(
            "-n",
            ns,
            "apply",
            "-f",
            "-",
            stdin=json.dumps(pod("one-gpu", ["sh", "-c", "echo ok"], container={"resources": gpu})),
        )
        wait_until("one-gpu pod to succeed", lambda: get("pod", "one-gpu", ns)["status"].get("phase") == "Succeeded")
        assert get("pod", "one-gpu", ns)["spec"]["nodeName"] == NODE

        three = {"limits": {"nvidia.com/gpu": "3"}, "requests": {"nvidia.com/gpu": "3"}}
        kubectl(
            "-n", ns, "apply", "-f", "-", stdin=json.dumps(pod("three-gpus", ["true"], container={"resources": three}))
        )

        def unschedulable() -> bool:
            conds = get("pod", "three-gpus", ns)["status"].get("conditions", [])
            return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)

        wait_until("three-gpus pod to be unschedulable", unschedulable, timeout=60)
    finally:
        remove = [{"op": "remove", "path": "/status/capacity/nvidia.com~1gpu"}]
        _run("patch", "node", NODE, "--subresource=status", "--type=json", "-p", json.dumps(remove), check=False)


def test_images_pushed_to_local_registry_run(ns: str) -> None:
    # The registry is plain HTTP on 127.0.0.1:5000; the pause and busybox images are in it.
    for repo in ("runner-cluster/pause", "runner-cluster/busybox"):
        out = subprocess.run(
            ["curl", "-fsS", f"http://127.0.0.1:5000/v2/{repo}/tags/list"], capture_output=True, text=True, check=True
        ).stdout
        assert json.loads(out)["tags"]
    kubectl("-n", ns, "apply", "-f", "-", stdin=json.dumps(pod("env", ["sh", "-c", "echo $KUBERNETES_SERVICE_HOST"])))
    wait_until("env pod to succeed", lambda: get("pod", "env", ns)["status"].get("phase") == "Succeeded")
    assert kubectl("-n", ns, "logs", "env").strip() == API_SERVICE_IP
    assert os.path.exists(STATE_DIR / "logs" / "kubelet.log")
