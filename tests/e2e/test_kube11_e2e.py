"""Kubernetes first contact (issue 11): no helper image from outside the registry, --name, runner delete, Job TTLs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from e2e_cluster import REGISTRY, KubeRunner, Namespace, delete_namespace, kubectl, make_namespace
from support import run_name

Project = Callable[[dict[str, str]], Path]
WRITER = """\
import os, sys
os.makedirs("out", exist_ok=True)
open(f"out/{sys.argv[1]}.txt", "w").write("made " + sys.argv[1])
print("wrote", sys.argv[1])
"""


def _json(ns: str, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(kubectl("-n", ns, *args, "-o", "json"))


def _on_volume(ns: str, path: str) -> bool:
    out = kubectl(
        "-n", ns, "exec", "runner-data", "--", "sh", "-c", f"test -e /runner-data/{path} && echo yes || echo no"
    )
    return out.strip() == "yes"


def _until(what: str, ok: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(1)


def test_logs_and_artifacts_read_the_volume_with_the_runs_own_image(
    kr: KubeRunner, project: Project, tmp_path: Path
) -> None:
    assert "RUNNER_HELPER_IMAGE" not in kr.env
    root = project({"w.py": WRITER})
    r = kr("run", str(root / "w.py"), "x")
    assert r.code == 0, r.err
    run = run_name(r.err)
    job_image = _json(kr.ns.name, "get", "job", f"{run}-exp0")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job_image.startswith(f"{REGISTRY}/") and "@sha256:" in job_image
    kubectl("-n", kr.ns.name, "delete", "pod", "runner-data", "--ignore-not-found", "--wait=true")
    logs = kr("logs", f"{run}-exp0")
    assert logs.code == 0 and "wrote x" in logs.out, logs.err
    assert _json(kr.ns.name, "get", "pod", "runner-data")["spec"]["containers"][0]["image"] == job_image
    got = kr("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert got.code == 0, got.err
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "out" / "x.txt").read_text() == "made x"
    assert kr("delete", run, "--yes").code == 0  # leave the shared namespace as it was


def test_datastore_in_a_namespace_with_no_runs_says_what_to_set(tmp_path: Path) -> None:
    name, kubeconfig = make_namespace(tmp_path)
    try:
        fresh = KubeRunner(tmp_path / "home", Namespace(name, kubeconfig))
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f.txt").write_text("x")
        r = fresh("datastore", "create", "--source", str(tmp_path / "d"), "--name", "first")
        assert r.code == 2, r.err
        assert "has no runs yet" in r.err and "RUNNER_HELPER_IMAGE" in r.err and len(r.err.strip().splitlines()) == 1
    finally:
        delete_namespace(name)


def test_name_is_unique_in_the_namespace_and_validated(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project({"w.py": WRITER})
    r = kr("run", "--name", "named-e2e", str(root / "w.py"), "n")
    assert r.code == 0 and "run        named-e2e" in r.err, r.err
    assert kr.experiment("named-e2e-exp0")["status"] == "completed"
    # another user of the namespace (another history) cannot take the name
    other = KubeRunner(tmp_path / "other-home", kr.ns)
    again = other("run", "--name", "named-e2e", str(root / "w.py"), "n")
    assert again.code == 2 and "has a run with that name already" in again.err, again.err
    assert [ln for ln in again.err.splitlines() if not ln.startswith("warning: ")] == [
        again.err.strip().splitlines()[-1]
    ]
    bad = other("run", "--name", "Not_OK", str(root / "w.py"), "n")
    assert bad.code == 2 and "--name 'Not_OK' is not a valid name" in bad.err, bad.err
    assert len(bad.err.strip().splitlines()) == 1  # refused before anything else is said
    assert kr("delete", "named-e2e", "--yes").code == 0  # leave the shared namespace as it was


def test_delete_removes_jobs_pods_configmaps_volume_and_history(kr: KubeRunner, project: Project) -> None:
    ns = kr.ns.name
    root = project({"w.py": WRITER})
    r = kr("run", "--name", "doomed", "--sweep", str(root / "w.py"), "['a', 'b']")
    assert r.code == 0, r.err
    assert [e["status"] for e in kr.json("status", "doomed")["experiment_list"]] == ["completed", "completed"]
    # ended and recorded: the Jobs now have a TTL
    for e in ("doomed-exp0", "doomed-exp1"):
        assert _json(ns, "get", "job", e)["spec"].get("ttlSecondsAfterFinished") == 3600
    assert "wrote b" in kr("logs", "doomed-exp1").out  # (also makes the data pod _on_volume execs in)
    assert _on_volume(ns, "runs/doomed/doomed-exp1/artifacts/out/b.txt")

    one = kr.json("delete", "doomed-exp1", "--yes")
    assert one == {
        "run": "doomed",
        "target": "kubernetes",
        "experiments": ["doomed-exp1"],
        "run_deleted": False,
        "notes": [],
    }
    assert [e["name"] for e in kr.json("status", "doomed")["experiment_list"]] == ["doomed-exp0"]
    assert not _json(ns, "get", "jobs", "-l", "runner/experiment=doomed-exp1")["items"]
    assert not _on_volume(ns, "runs/doomed/doomed-exp1") and _on_volume(ns, "runs/doomed/doomed-exp0")
    # the other experiment's record still reads, from another history too
    other = KubeRunner(kr.home.parent / "other", kr.ns)
    assert [e["name"] for e in other.json("status", "doomed")["experiment_list"]] == ["doomed-exp0"]

    r = kr("delete", "doomed", "--yes")
    assert r.code == 0 and r.out.strip() == "deleted doomed (kubernetes)", r.err
    for kind in ("jobs", "configmaps"):
        assert not _json(ns, "get", kind, "-l", "runner/run=doomed")["items"], kind
    _until("the pods are gone", lambda: not _json(ns, "get", "pods", "-l", "runner/run=doomed")["items"])
    assert not _on_volume(ns, "runs/doomed")
    assert "doomed" not in [h["run"] for h in kr.json("history")]
    assert kr("status", "doomed").code == 2
    assert kr("run", "--name", "doomed", str(root / "w.py"), "c").code == 0  # the name is free again
    assert kr("delete", "doomed", "--yes").code == 0  # leave the shared namespace as it was
