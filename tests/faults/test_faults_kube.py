"""Faults on the Kubernetes target, each injected by the test mid-run on the real local cluster.

The cluster's components are plain processes with PID files (tests/cluster/lib.sh); a case stops one
by its PID and starts it again with the very command line it had (faultlib.Component), always, also
when the case fails. These cases disturb everyone using the cluster for 20-40 s.
Checks go through what a user sees (CLI output, `status --json`, `logs`, `artifacts`), not the
cluster's objects, so they hold whatever runner keeps where.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import REGISTRY, kubectl
from faultlib import (
    HOG,
    SLOW_BUILD,
    TICK,
    Component,
    Following,
    build_containers,
    check_consistent,
    fresh_base,
    no_traceback,
    texts,
    ticks,
    wait_for,
)
from support import Runner, run_name

pytestmark = pytest.mark.e2e

Project = Callable[[dict[str, str]], Path]
CPU = ("--cpus", "0.1")  # many small pods fit the one node


def fresh(project: Project, files: dict[str, str]) -> Path:
    """A project whose image is new to the registry and the node (so it is pushed and pulled)."""
    return project({**files, "salt.txt": uuid.uuid4().hex})


def ready(url: str) -> Callable[[], bool]:
    return lambda: subprocess.run(["curl", "-fsSk", "-o", "/dev/null", url], capture_output=True).returncode == 0


@pytest.mark.parametrize("n", [30, 8], ids=["mid-run", "over-the-end"])
def test_apiserver_stopped_for_20_s(kr: Runner, project: Project, tmp_path: Path, n: int) -> None:
    """30 ticks: the script runs on after the outage; 8: it ends while the API server is away."""
    root = project({"tick.py": TICK})
    f = Following(kr, "run", *CPU, str(root / "tick.py"), str(n), "3")
    f.wait_out("tick 3")
    api = Component("kube-apiserver")
    with api.down():
        time.sleep(20)
    wait_for(ready("https://127.0.0.1:6443/readyz"), timeout=120, what="the API server")
    code = f.finish(timeout=300)
    err = f.stderr
    no_traceback(err)
    assert code == 3, err  # the script's exit code, not "cannot reach"
    assert "lost the Kubernetes API server" in err and "waiting up to" in err and "answers again" in err, err
    assert ticks(f.out) == list(range(n)) and f.out[-1] == "done", f.out  # every line, once
    # After an outage the Job controller can start a second pod for the experiment (its cache is stale);
    # that pod finds the experiment ended on the volume and runs nothing, so the stored log has each tick once.
    try:
        check_consistent(
            kr,
            f.run,
            status="failed",
            exit_code=3,
            message="exit code 3",
            upto=n - 1,
            complete=True,
            dest=tmp_path / "dl",
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\nthe experiment's pods:\n{pods_of(kr, f.run)}") from None


def namespace_of(runner: Runner) -> str:
    return str(json.loads(Path(runner.env["KUBECONFIG"]).read_text())["contexts"][0]["context"]["namespace"])


def pods_of(runner: Runner, run: str) -> str:
    """Each pod of a run, its phase and its log's last lines (for a failure's message)."""
    ns = namespace_of(runner)
    pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", f"runner/run={run}", "-o", "json", check=False) or "{}")
    out = []
    for p in pods.get("items", []):
        name = p["metadata"]["name"]
        tail = kubectl("-n", ns, "logs", name, "--tail", "3", check=False).strip().replace("\n", " | ")
        out.append(f"  {name} created {p['metadata']['creationTimestamp']} {p['status'].get('phase')}: {tail}")
    return "\n".join(out) or "  (none)"


def second_pod(runner: Runner, run: str, name: str, *, owned: bool = False) -> None:
    """A second pod for the run's experiment, from its Job's own pod template, as a Job controller with a stale
    cache makes one: same labels, same volume folder, same launcher. ``owned``: the Job's, as the controller's
    would be (else it has only runner's labels, so runner sees it as the experiment's but the Job ignores it)."""
    ns = namespace_of(runner)
    job = json.loads(kubectl("-n", ns, "get", "job", f"{run}-exp0", "-o", "json"))
    template = job["spec"]["template"]
    labels = template["metadata"]["labels"]
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if owned:
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    else:
        meta["labels"] = {k: v for k, v in labels.items() if k.startswith(("runner/", "app.kubernetes.io/"))}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
    kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod))


def pod_gone(runner: Runner, name: str) -> bool:
    return not kubectl("-n", namespace_of(runner), "get", "pod", name, "--ignore-not-found", "-o", "name").strip()


def pod_ended(runner: Runner, name: str) -> dict[str, Any] | None:
    """The pod's container's end (``terminated``), None while it runs."""
    pod = json.loads(kubectl("-n", namespace_of(runner), "get", "pod", name, "-o", "json"))
    for cs in pod["status"].get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return dict(term)
    return None


@pytest.mark.parametrize("when", ["after-the-end", "while-running"])
@pytest.mark.parametrize("code", [3, 0])
def test_a_second_pod_for_the_experiment_runs_nothing(
    kr: Runner, project: Project, tmp_path: Path, when: str, code: int
) -> None:
    """The fault behind a repeated log after an API server outage, injected directly: a second pod of the
    experiment's Job template. After the end it runs nothing; while the script runs it waits for its end (exiting
    at once would make the Job controller end the running pod), then runs nothing. Either way it exits with the
    experiment's outcome and the stored log, status and artifacts are as if it never was."""
    root = project({"tick.py": TICK})
    status = "completed" if code == 0 else "failed"
    f = Following(kr, "run", *CPU, str(root / "tick.py"), "6", str(code))
    f.wait_out("tick 1")
    dup = f"{f.run}-second"
    if when == "while-running":
        second_pod(kr, f.run, dup)
    assert f.finish(timeout=300) == code, f.stderr
    run = f.run
    before = kr("logs", run).out
    if when == "after-the-end":
        second_pod(kr, run, dup)
    wait_for(lambda: pod_ended(kr, dup) is not None, timeout=180, what="the second pod to end")
    term = pod_ended(kr, dup)
    assert term is not None and term["exitCode"] == code, term  # so the Job never fails a completed experiment
    said = kubectl("-n", namespace_of(kr), "logs", dup)
    assert "runs nothing" in said and "tick" not in said, said
    assert kr("logs", run).out == before
    check_consistent(kr, run, status=status, exit_code=code, upto=5, complete=True, dest=tmp_path / "dl")
    assert texts(before)[-1] == "done"


def test_a_second_pod_of_the_job_while_the_script_runs_leaves_it_alone(
    kr: Runner, project: Project, tmp_path: Path
) -> None:
    """The Job's own surplus pod: the Job controller deletes it (more pods than its parallelism). It must go
    without running the script, and without the Job ending the pod that runs it."""
    root = project({"tick.py": TICK})
    f = Following(kr, "run", *CPU, str(root / "tick.py"), "8", "0")
    f.wait_out("tick 1")
    dup = f"{f.run}-second"
    second_pod(kr, f.run, dup, owned=True)
    wait_for(lambda: pod_gone(kr, dup), timeout=120, what="the Job controller to delete its surplus pod")
    assert f.finish(timeout=300) == 0, f.stderr
    assert ticks(f.out) == list(range(8)) and f.out[-1] == "done", f.out
    check_consistent(kr, f.run, status="completed", exit_code=0, upto=7, complete=True, dest=tmp_path / "dl")


def test_kubelet_restarted(kr: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    f = Following(kr, "run", *CPU, str(root / "tick.py"), "15", "3")
    f.wait_out("tick 3")
    kubelet = Component("kubelet")
    with kubelet.down():
        pass  # a restart: stopped, started again at once
    wait_for(ready("http://127.0.0.1:10248/healthz"), timeout=60, what="the kubelet")
    code = f.finish(timeout=300)
    err = f.stderr
    no_traceback(err)
    assert code == 3, err
    assert ticks(f.out) == list(range(15)), f.out
    check_consistent(kr, f.run, status="failed", exit_code=3, upto=14, complete=True, dest=tmp_path / "dl")


def test_registry_down_at_push(kr: Runner, project: Project) -> None:
    root = fresh(project, {"tick.py": TICK})
    registry = Component("registry")
    with registry.down():
        r = kr("run", *CPU, str(root / "tick.py"), "3", "0")
    wait_for(ready(f"http://{REGISTRY}/v2/"), timeout=60, what="the registry")
    no_traceback(r.err)
    assert r.code == 1, r.err
    last = r.err.splitlines()[-1]
    assert "registry" in last and REGISTRY in last, r.err  # the cause, in one line
    run = run_name(r.err)
    doc: Any = kr.json("status", run)
    assert doc["status"] == "failed" and "registry" in (doc["experiment_list"][0]["message"] or ""), doc
    assert [h["status"] for h in kr.json("history") if h["run"] == run] == ["failed"]  # type: ignore[union-attr]


def test_registry_down_at_pull(kr: Runner, project: Project, tmp_path: Path) -> None:
    root = fresh(project, {"tick.py": TICK})
    f = Following(kr, "run", *CPU, str(root / "tick.py"), "5", "3")
    wait_for(
        lambda: any(ln.startswith("pushed ") for ln in f.err) or f.proc.poll() is not None,
        every=0.02,
        timeout=300,
        what="the push",
    )
    registry = Component("registry")
    with registry.down():  # before the node pulls the new image
        wait_for(
            lambda: any("ImagePull" in ln or "ErrImagePull" in ln for ln in f.err),
            timeout=90,
            what="the CLI to say it waits for the image",
        )
        time.sleep(5)
    code = f.finish(timeout=300)
    err = f.stderr
    no_traceback(err)
    assert code == 3, err
    assert ticks(f.out) == list(range(5)), f.out
    check_consistent(kr, f.run, status="failed", exit_code=3, upto=4, complete=True, dest=tmp_path / "dl")


def test_cli_killed_while_following(kr: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    f = Following(kr, "run", *CPU, str(root / "tick.py"), "8", "0")
    f.wait_out("tick 2")
    os.kill(f.proc.pid, signal.SIGKILL)  # our own CLI
    f.finish()
    run = f.run
    wait_for(lambda: kr.json("status", run)["status"] != "running", timeout=120, what="the end")  # type: ignore[index]
    check_consistent(kr, run, status="completed", exit_code=0, upto=7, complete=True, dest=tmp_path / "dl")
    assert texts(kr("logs", run).out)[-1] == "done"


def test_two_clis_submit_ten_runs_each(kr: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    names: list[str] = []
    errors: list[str] = []

    def cli() -> None:
        for _ in range(10):
            res = kr("run", "--detach", *CPU, str(root / "tick.py"), "1", "0")
            if res.code != 0:
                errors.append(res.err)
            else:
                names.append(run_name(res.err))

    threads = [threading.Thread(target=cli) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(names)) == 20

    def ended() -> bool:
        hist: Any = kr.json("history")
        return sum(h["status"] == "completed" for h in hist if h["run"] in names) == 20

    wait_for(ended, timeout=300, every=2, what="all 20 runs to complete")
    for run in names[::7]:
        check_consistent(kr, run, status="completed", exit_code=0, upto=0, complete=True, dest=tmp_path / run)


def test_oom_killed(kr: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"hog.py": HOG})
    r = kr("run", "--cpus", "0.1", "--memory", "64Mi", str(root / "hog.py"))
    no_traceback(r.err)
    assert r.code == 137, r.err
    assert "OOMKilled" in r.err, r.err
    check_consistent(
        kr,
        run_name(r.err),
        status="failed",
        exit_code=137,
        message="OOMKilled",
        upto=2,
        complete=False,
        dest=tmp_path / "dl",
    )


def test_sigint_during_the_build(kr: Runner, project: Project) -> None:
    # a base no build has seen, and pip (slower than uv): the install step runs long enough to be interrupted
    with fresh_base() as base:
        kr.env["RUNNER_INSTALLER"] = "pip"
        root = fresh(project, SLOW_BUILD)
        before = build_containers()
        f = Following(kr, "run", "--base-image", base, *CPU, str(root / "tick.py"), "3", "0")
        f.wait_err("install the lock")  # the build step that installs: its progress line
        wait_for(lambda: bool(build_containers() - before), timeout=60, what="the install step to start")
        mine = build_containers() - before
        f.proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = f.finish(timeout=60)
        err = f.stderr
        no_traceback(err)
        assert code == 130, err
        assert "interrupted" in err, err
        run = f.run
        doc: Any = kr.json("status", run)
        assert doc["status"] == "stopped" and doc["experiment_list"][0]["status"] == "stopped", doc  # as locally
        assert [h["status"] for h in kr.json("history") if h["run"] == run] == ["stopped"]  # type: ignore[union-attr]
        wait_for(lambda: not (build_containers() & mine), timeout=30, what="the build step to go")
        image = next(ln.split()[1] for ln in f.err if ln.startswith("image "))
        time.sleep(5)
        assert subprocess.run(["/usr/bin/docker", "image", "inspect", image], capture_output=True).returncode != 0
