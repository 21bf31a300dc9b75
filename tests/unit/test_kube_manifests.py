"""Manifest rendering (runner.kube) against golden YAML, and state from cluster objects.

Regenerate the golden files after an intended change with RUNNER_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import kube
from runner.kubetarget import parse_datastore, tree_digest
from runner.errors import UsageError

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, objects: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True)
    path = GOLDEN / name
    if os.environ.get("RUNNER_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_default_job_requests_one_cpu_and_runs_the_launcher() -> None:
    spec = kube.JobSpec(run="lucky-urchin-502", experiment="lucky-urchin-502-exp0",
                        image="127.0.0.1:5000/runner/proj@sha256:abc", command=("python3", "argecho.py", "--arg1", "1"))  # fmt: skip
    check_golden("job-default.yaml", [kube.make_job(spec)])


def test_job_with_everything() -> None:
    spec = kube.JobSpec(
        run="bold-otter-123", experiment="bold-otter-123-exp0", image="reg/runner/p@sha256:def",
        command=("python3", "train.py", "$(HOME)", "$HOME", "a b", ""), env={"SEED": "1", "PRICE": "$5"},
        secrets=("wandb",), cpus=0.5, memory="2G", gpus=1, timeout=60, retries=2,
        datastores=(kube.DatastoreMount(name="mnist", version=2, digest="d" * 32, mount_dir="/datastores/mnist"),),
    )  # fmt: skip
    check_golden("job-full.yaml", [kube.make_job(spec)])


def test_run_configmap_and_infrastructure() -> None:
    doc = {"name": "bold-otter-123", "script": "train.py", "launched": True,
           "experiments": [{"name": "bold-otter-123-exp0", "index": 0, "command": ["python3", "train.py"]}]}  # fmt: skip
    check_golden("infra.yaml", [kube.make_run_configmap(doc), kube.make_data_pvc(storage_class="standard"),
                                kube.make_data_pod(image="busybox:1.36"), kube.make_datastore_configmap("mnist", [])])  # fmt: skip


def test_launcher_configmap_ships_the_launcher_source() -> None:
    cm = kube.make_launcher_configmap()
    assert cm["metadata"]["name"] == kube.LAUNCHER_CONFIGMAP
    assert cm["data"]["launcher.py"] == kube.LAUNCHER.read_text()
    compile(cm["data"]["launcher.py"], "launcher.py", "exec")


def test_dollar_signs_survive_kubernetes_expansion() -> None:
    assert kube.escape_arg("$(HOME) $$ $x") == "$$(HOME) $$$$ $$x"


@pytest.mark.parametrize(("cpus", "quantity"), [(1, "1"), (0.5, "500m"), (2.25, "2250m"), (4.0, "4")])
def test_cpu_quantity(cpus: float, quantity: str) -> None:
    assert kube.cpu_quantity(cpus) == quantity


def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "creationTimestamp": "2026-11-21T05:00:00Z"}, "status": {"phase": phase, **status}}


ACTIVE_JOB: dict[str, Any] = {"status": {"active": 1}}


def test_unschedulable_pod_says_why() -> None:
    p = pod("Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}])  # fmt: skip
    seen = kube.observe(end=None, stop=False, job=ACTIVE_JOB, pods=[p], launched=True)
    assert seen.state == "queued" and seen.message and seen.message.startswith("Unschedulable: 0/1 nodes")


def test_image_pull_backoff_says_why() -> None:
    p = pod("Pending", containerStatuses=[{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}])
    seen = kube.observe(end=None, stop=False, job=ACTIVE_JOB, pods=[p], launched=True)
    assert seen.state == "queued" and seen.message == "ImagePullBackOff: no such image"


def test_container_oom_killed_without_a_recorded_end() -> None:
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    p = pod("Failed", containerStatuses=[{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}])
    seen = kube.observe(end=None, stop=False, job=job, pods=[p], launched=True)
    assert (seen.state, seen.exit_code, seen.final) == ("failed", 137, True)
    assert seen.message and seen.message.startswith("OOMKilled")


def test_deadline_and_eviction() -> None:
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}]}}
    assert kube.observe(end=None, stop=False, job=job, pods=[], launched=True).message == "deadline exceeded: Job was active longer"
    evicted = pod("Failed", reason="Evicted", message="low on memory")
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    assert kube.observe(end=None, stop=False, job=failed, pods=[evicted], launched=True).message == "evicted: low on memory"


def test_recorded_end_wins_once_the_job_is_done_or_gone() -> None:
    end = {"state": "failed", "exit_code": 3, "message": "exit code 3"}
    assert kube.observe(end=end, stop=False, job=None, pods=[], launched=True).exit_code == 3
    # with retries left the Job is still active: one pod's end is not the experiment's
    running = pod("Running", containerStatuses=[{"state": {"running": {}}}])
    assert kube.observe(end=end, stop=False, job=ACTIVE_JOB, pods=[running], launched=True).state == "running"


def test_deleted_job_without_end() -> None:
    assert kube.observe(end=None, stop=True, job=None, pods=[], launched=True).state == "stopped"
    assert kube.observe(end=None, stop=False, job=None, pods=[], launched=True).state == "failed"


def test_datastore_option_parsing() -> None:
    assert parse_datastore("mnist") == ("mnist", None, None)
    assert parse_datastore("mnist:2") == ("mnist", 2, None)
    assert parse_datastore("mnist:/data") == ("mnist", None, "/data")
    assert parse_datastore("mnist:3:/data") == ("mnist", 3, "/data")
    with pytest.raises(UsageError):
        parse_datastore("mnist:x")


def test_tree_digest_depends_on_content_not_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("1")
    first, files = tree_digest(tmp_path)
    os.utime(tmp_path / "a" / "f.txt", (1, 1))
    assert tree_digest(tmp_path)[0] == first and len(files) == 1
    (tmp_path / "a" / "f.txt").write_text("2")
    assert tree_digest(tmp_path)[0] != first
