"""Manifest rendering (runner.targets.kubernetes.objects) against golden YAML, and state from cluster objects.

Regenerate the golden files after an intended change with RUNNER_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.errors import UsageError
from runner.targets.kubernetes import objects as kube
from runner.targets.kubernetes import parse_datastore, tree_digest

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, objects: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True)
    path = GOLDEN / name
    if os.environ.get("RUNNER_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_default_job_requests_one_cpu_and_runs_the_launcher() -> None:
    spec = kube.JobSpec(
        run="lucky-urchin-502",
        experiment="lucky-urchin-502-exp0",
        image="127.0.0.1:5000/runner/proj@sha256:abc",
        command=("python3", "argecho.py", "--arg1", "1"),
    )
    check_golden("job-default.yaml", [kube.make_job(spec)])


def test_job_with_everything() -> None:
    spec = kube.JobSpec(
        run="bold-otter-123",
        experiment="bold-otter-123-exp0",
        image="reg/runner/p@sha256:def",
        command=("python3", "train.py", "$(HOME)", "$HOME", "a b", ""),
        env={"SEED": "1", "PRICE": "$5"},
        secrets=("wandb",),
        cpus=0.5,
        memory="2G",
        gpus=1,
        timeout=60,
        retries=2,
        datastores=(kube.DatastoreMount(name="mnist", version=2, digest="d" * 32, mount_dir="/datastores/mnist"),),
    )
    check_golden("job-full.yaml", [kube.make_job(spec)])


def test_run_configmap_and_infrastructure() -> None:
    doc = {
        "name": "bold-otter-123",
        "script": "train.py",
        "launched": True,
        "experiments": [{"name": "bold-otter-123-exp0", "index": 0, "command": ["python3", "train.py"]}],
    }
    check_golden(
        "infra.yaml",
        [
            *kube.make_run_configmaps(doc),
            kube.make_data_pvc(storage_class="standard"),
            kube.make_data_pod(image="busybox:1.36"),
            kube.make_datastore_configmap("mnist", []),
        ],
    )


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
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-11-21T05:00:00Z"},
        "status": {"phase": phase, **status},
    }


ACTIVE_JOB: dict[str, Any] = {"status": {"active": 1}}


def test_unschedulable_pod_says_why() -> None:
    p = pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
            }
        ],
    )
    seen = kube.observe(end=None, stop=False, job=ACTIVE_JOB, pods=[p], launched=True)
    assert seen.state == "queued" and seen.message and seen.message.startswith("Unschedulable: 0/1 nodes")


def test_a_running_pod_outranks_a_newer_pending_one() -> None:
    """A second pod of the same attempt (a Job controller with a stale cache) waits for the one that runs."""
    running = pod("Running")
    second = {**pod("Pending"), "metadata": {"name": "q", "creationTimestamp": "2026-11-21T05:01:00Z"}}
    seen = kube.observe(end=None, stop=False, job=ACTIVE_JOB, pods=[second, running], launched=True)
    assert (seen.state, seen.message) == ("running", None)


def test_image_pull_backoff_says_why() -> None:
    p = pod(
        "Pending",
        containerStatuses=[{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}],
    )
    seen = kube.observe(end=None, stop=False, job=ACTIVE_JOB, pods=[p], launched=True)
    assert seen.state == "queued" and seen.message == "ImagePullBackOff: no such image"


def test_container_oom_killed_without_a_recorded_end() -> None:
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    p = pod("Failed", containerStatuses=[{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}])
    seen = kube.observe(end=None, stop=False, job=job, pods=[p], launched=True)
    assert (seen.state, seen.exit_code, seen.final) == ("failed", 137, True)
    assert seen.message and seen.message.startswith("OOMKilled")


def test_deadline_and_eviction() -> None:
    job = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}
            ]
        }
    }
    assert (
        kube.observe(end=None, stop=False, job=job, pods=[], launched=True).message
        == "deadline exceeded: Job was active longer"
    )
    evicted = pod("Failed", reason="Evicted", message="low on memory")
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    assert (
        kube.observe(end=None, stop=False, job=failed, pods=[evicted], launched=True).message
        == "evicted: low on memory"
    )


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


# -- --max-parallel: suspended Jobs and the release chain ------------------------------------


def test_queued_job_is_suspended_and_releases_its_successor() -> None:
    chain = kube.release_chain([f"calm-heron-7-exp{i}" for i in range(5)], 2)
    specs = [
        kube.JobSpec(
            run="calm-heron-7",
            experiment=name,
            image="reg/runner/p@sha256:abc",
            command=("python3", "sweep.py", "--lr", str(i)),
            suspend=suspend,
            release=release,
        )
        for i, (name, (suspend, release)) in enumerate(chain.items())
    ]
    # exp0 runs now and releases exp2; exp2 waits suspended and releases exp4; exp4 releases nobody
    check_golden("job-sweep.yaml", [kube.make_job(specs[0]), kube.make_job(specs[2]), kube.make_job(specs[4])])


def test_release_chain_gives_each_queued_experiment_exactly_one_releaser() -> None:
    names = [f"e{i}" for i in range(10)]
    chain = kube.release_chain(names, 4)
    assert [n for n, (suspended, _) in chain.items() if not suspended] == ["e0", "e1", "e2", "e3"]
    released = [r for _, r in chain.values() if r is not None]
    assert sorted(released) == sorted(n for n, (s, _) in chain.items() if s)  # every queued one, once
    assert len(released) == len(set(released))
    assert chain["e0"] == (False, "e4") and chain["e9"] == (True, None)


@pytest.mark.parametrize("max_parallel", [None, 3, 10])
def test_no_queue_when_everything_fits(max_parallel: int | None) -> None:
    chain = kube.release_chain(["a", "b", "c"], max_parallel)
    assert all(v == (False, None) for v in chain.values())


def test_without_max_parallel_jobs_are_not_suspended_and_release_nothing() -> None:
    job = kube.make_job(kube.JobSpec(run="r", experiment="r-exp0", image="i", command=("python3", "s.py")))
    assert "suspend" not in job["spec"]
    assert not any(e["name"] == "RUNNER_RELEASE" for e in job["spec"]["template"]["spec"]["containers"][0]["env"])


def test_a_suspended_job_shows_as_queued_waiting_for_a_slot() -> None:
    seen = kube.observe(
        end=None,
        stop=False,
        job={
            "spec": {"suspend": True, "backoffLimit": 0},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
        },
        pods=[],
        launched=True,
    )
    assert seen.state == "queued" and seen.message == kube.QUEUED_MESSAGE and not seen.final


def test_observers_release_only_queued_successors_of_ended_experiments() -> None:
    names = [f"e{i}" for i in range(6)]
    # e0 ended but e2 is still suspended (its launcher never released it); e1 still runs
    assert kube.to_release(names, 2, suspended={"e2", "e3", "e4", "e5"}, ended={"e0"}) == ["e2"]
    assert kube.to_release(names, 2, suspended={"e3", "e4", "e5"}, ended={"e0"}) == []  # already released
    assert kube.to_release(names, None, suspended=set(), ended=set(names)) == []


def test_launcher_records_the_end_before_it_releases_and_a_gone_job_is_fine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    import urllib.error

    from runner.targets.kubernetes import launcher

    calls: list[tuple[str, str, Any]] = []

    def api(method: str, path: str, body: Any = None, content_type: str = "") -> Any:
        calls.append((method, path, body))
        if "/jobs/" in path:
            raise urllib.error.HTTPError(path, 404, "Not Found", {}, io.BytesIO(b"{}"))  # type: ignore[arg-type]
        return {}

    monkeypatch.setattr(launcher, "api", api)
    monkeypatch.setattr(launcher, "namespace", lambda: "ns")
    monkeypatch.setattr(launcher, "stop_requested", lambda exp: exp == "r-exp0")
    monkeypatch.setenv("RUNNER_CONFIGMAP", "runner-run-r")
    monkeypatch.setenv("RUNNER_RELEASE", "r-exp2")
    launcher.finish("r-exp0", {"state": "completed"}, str(tmp_path))
    assert [(m, p) for m, p, _ in calls] == [
        ("PATCH", "/api/v1/namespaces/ns/configmaps/runner-run-r"),
        ("PATCH", "/apis/batch/v1/namespaces/ns/jobs/r-exp2"),
    ]
    assert calls[1][2] == {"spec": {"suspend": False}}
    assert len(calls) == 2  # 404 and this one was stopped: the run is being deleted, nothing to wait for


def test_launcher_waits_for_a_successor_job_not_created_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import urllib.error

    from runner.targets.kubernetes import launcher

    answers = [404, 404, 200]

    def api(method: str, path: str, body: Any = None, content_type: str = "") -> Any:
        code = answers.pop(0)
        if code == 404:
            raise urllib.error.HTTPError(path, 404, "Not Found", {}, io.BytesIO(b"{}"))  # type: ignore[arg-type]
        return {}

    monkeypatch.setattr(launcher, "api", api)
    monkeypatch.setattr(launcher, "namespace", lambda: "ns")
    monkeypatch.setattr(launcher, "stop_requested", lambda exp: False)
    monkeypatch.setattr("runner.targets.kubernetes.launcher.time.sleep", lambda s: None)
    launcher.release("r-exp4", experiment="r-exp0")
    assert answers == []  # created on the third try, then released


def test_a_queued_experiment_stopped_alone_keeps_its_job_while_a_later_one_waits() -> None:
    names = [f"e{i}" for i in range(6)]  # P=2: e0 -> e2 -> e4, e1 -> e3 -> e5
    queued = {"e2", "e3", "e4", "e5"}
    assert kube.kept_when_stopped(names, 2, suspended=queued, stopping={"e2"}) == {"e2"}  # e4 waits behind it
    assert kube.kept_when_stopped(names, 2, suspended=queued, stopping={"e4"}) == set()  # last of its chain
    assert kube.kept_when_stopped(names, 2, suspended=queued, stopping={"e2", "e4"}) == set()
    assert (
        kube.kept_when_stopped(names, 2, suspended=queued, stopping=set(names)) == set()
    )  # the whole run: no Job stays


def test_launcher_of_an_experiment_stopped_while_queued_only_passes_its_turn_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from runner.targets.kubernetes import launcher

    released: list[str] = []
    monkeypatch.setattr(launcher, "stop_requested", lambda exp: exp == "r-exp2")
    monkeypatch.setattr(launcher, "release", lambda job, **kw: released.append(job))
    monkeypatch.setattr(launcher, "record", lambda *a: pytest.fail("the recorded 'stopped' end must stay"))
    monkeypatch.setenv("RUNNER_EXPERIMENT", "r-exp2")
    monkeypatch.setenv("RUNNER_DATA", str(tmp_path))
    monkeypatch.setenv("RUNNER_QUEUED", "1")
    monkeypatch.setenv("RUNNER_RELEASE", "r-exp4")
    assert launcher.main(["--", "false-command-never-started"]) == 0
    assert released == ["r-exp4"]
    assert "stopped while queued" in (tmp_path / "log").read_text()
