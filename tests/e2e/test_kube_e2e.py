"""`runner run` on Kubernetes, end to end: the real CLI, the real local cluster, registry and Docker engine.

Runner runs as a new user of an empty namespace (the built-in `admin` ClusterRole there, not cluster admin).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import KubeRunner, kubectl
from support import ARGECHO, run_name
from support import TRICKY as BASIC_TRICKY

TRICKY = [*BASIC_TRICKY, "$(HOME)", "$$"]  # Kubernetes expands $(VAR) in args: runner must escape it
SLEEPER = """\
import os, sys, time
os.makedirs("out", exist_ok=True)
open("out/started.txt", "w").write("started\\n")
print("sleeping", flush=True)
time.sleep(float(sys.argv[1]))
print("woke up")
"""
Project = Callable[[dict[str, str]], Path]


def argv_line(out: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if ln.startswith("ARGV "))
    return list(json.loads(line[5:]))


def ended(e: dict[str, Any]) -> bool:
    return e["status"] in ("completed", "failed", "stopped")


def test_arguments_arrive_byte_for_byte_and_a_second_run_neither_builds_nor_pushes(
    kr: KubeRunner, project: Project
) -> None:
    root = project({"argecho.py": ARGECHO})
    local = subprocess.run([sys.executable, "argecho.py", *TRICKY], cwd=root, capture_output=True, text=True)
    first = kr("run", str(root / "argecho.py"), *TRICKY)
    assert first.code == 0, first.err
    assert argv_line(first.out) == argv_line(local.stdout) == ["argecho.py", *TRICKY]
    assert "CWD /project" in first.out and "to stderr" in first.err
    assert "target     kubernetes" in first.err
    assert "warning: no --cpus" in first.err  # 1 CPU by default, with a warning

    second = kr("run", str(root / "argecho.py"), *TRICKY)
    assert second.code == 0, second.err
    assert "(cached)" in second.err and "build |" not in second.err
    assert "(already there)" in second.err and "pushed" not in second.err
    run = run_name(second.err)
    # the pod references the image by digest
    pods = json.loads(
        kubectl(
            "-n", kr.ns.name, "get", "pods", "-l", f"runner/run={run},app.kubernetes.io/managed-by=runner", "-o", "json"
        )
    )
    assert "@sha256:" in pods["items"][0]["spec"]["containers"][0]["image"]

    logs = kr("logs", f"{run}-exp0")
    assert logs.code == 0, logs.err
    lines = logs.out.splitlines()
    assert any(ln.startswith("[stdout] [") and "ARGV " in ln for ln in lines)
    assert any(ln.startswith("[stderr] [") and ln.endswith("to stderr") for ln in lines)

    got = kr("artifacts", run, "--download-dir", str(root.parent / "dl"))
    assert got.code == 0, got.err
    assert json.loads((root.parent / "dl" / run / f"{run}-exp0" / "logs" / "out.json").read_text()) == [
        "argecho.py",
        *TRICKY,
    ]


def test_history_survives_a_killed_cli_and_is_shared(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project({"sleeper.py": SLEEPER})
    p = kr.popen("run", str(root / "sleeper.py"), "4")
    assert p.stdout is not None
    first = p.stdout.readline()  # the pod is running once its output arrives
    assert first.strip() == "sleeping"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.stderr is not None
    run = run_name(p.stderr.read())
    exp = kr.wait_for(f"{run}-exp0", ended)
    assert exp["status"] == "completed" and exp["exit_code"] == 0
    # another user (no local history at all) sees the same run
    other = KubeRunner(tmp_path / "other-home", kr.ns)
    runs = {r["run"]: r for r in other.json("history")}
    assert runs[run]["status"] == "completed"
    logs = other("logs", run)
    assert "woke up" in logs.out, logs.err


def test_failing_experiment_keeps_its_artifacts_and_exit_code(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project(
        {
            "fail.py": "import os\nprint('about to fail')\nos.makedirs('res', exist_ok=True)\nopen('res/partial.txt', 'w').write('x')\nraise SystemExit(3)\n"
        }
    )
    r = kr("run", str(root / "fail.py"))
    assert r.code == 3, r.err
    run = run_name(r.err)
    exp = kr.experiment(f"{run}-exp0")
    assert (exp["status"], exp["exit_code"], exp["message"]) == ("failed", 3, "exit code 3")
    got = kr("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert got.code == 0, got.err
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "res" / "partial.txt").read_text() == "x"
    # Job and pods cleaned up (as a TTL controller or an admin would): status and logs stay
    kubectl("-n", kr.ns.name, "delete", "job", f"{run}-exp0", "--cascade=foreground", "--wait=true")
    assert not json.loads(kubectl("-n", kr.ns.name, "get", "pods", "-l", f"runner/run={run}", "-o", "json"))["items"]
    exp = kr.experiment(f"{run}-exp0")
    assert (exp["status"], exp["exit_code"]) == ("failed", 3)
    assert "] about to fail" in kr("logs", f"{run}-exp0").out


def test_stop_records_stopped_and_keeps_artifacts(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project({"sleeper.py": SLEEPER})
    r = kr("run", "--detach", str(root / "sleeper.py"), "300")
    assert r.code == 0, r.err
    run = run_name(r.err)
    kr.wait_for(f"{run}-exp0", lambda e: e["status"] == "running")
    active = kr.json("status")
    assert run in {s["run"] for s in active}
    time.sleep(1)  # let the script write its file
    s = kr("stop", run)
    assert s.code == 0 and f"{run}-exp0" in s.out, s.err
    exp = kr.wait_for(f"{run}-exp0", ended)
    assert exp["status"] == "stopped"
    got = kr("artifacts", f"{run}-exp0", "--download-dir", str(tmp_path / "dl"))
    assert got.code == 0, got.err
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "out" / "started.txt").read_text() == "started\n"
    logs = kr("logs", f"{run}-exp0")
    assert "sleeping" in logs.out


def test_retries_and_follow_across_pod_restarts(kr: KubeRunner, project: Project) -> None:
    # the first attempt fails; the second sees the first one's end record on the experiment's volume folder
    flaky = """\
    import os, sys
    if os.path.exists("/runner-data/end.json"):
        print("second attempt")
    else:
        print("first attempt")
        sys.exit(1)
    """
    root = project({"flaky.py": flaky})
    r = kr("run", "--retries", "1", str(root / "flaky.py"))
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["first attempt", "second attempt"]
    run = run_name(r.err)
    assert kr.experiment(f"{run}-exp0")["status"] == "completed"
    logs = kr("logs", run).out
    assert "first attempt" in logs and "second attempt" in logs


def test_timeout_fails_as_deadline_exceeded_and_keeps_artifacts(
    kr: KubeRunner, project: Project, tmp_path: Path
) -> None:
    root = project({"sleeper.py": SLEEPER})
    r = kr("run", "--timeout", "3", str(root / "sleeper.py"), "300")
    assert r.code != 0
    run = run_name(r.err)
    exp = kr.experiment(f"{run}-exp0")
    assert exp["status"] == "failed" and "deadline exceeded" in exp["message"]
    kr("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "out" / "started.txt").is_file()


def test_oom_killed(kr: KubeRunner, project: Project) -> None:
    root = project({"hog.py": "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))\n"})
    r = kr("run", "--memory", "64Mi", str(root / "hog.py"))
    assert r.code != 0
    run = run_name(r.err)
    exp = kr.experiment(f"{run}-exp0")
    assert exp["status"] == "failed" and exp["message"].startswith("OOMKilled"), exp


def test_datastore_is_stored_once_mounted_read_only_and_read(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "numbers.txt").write_text("1 2 3\n")
    # the data pod runs an image the cluster already pulls, a run's: in a namespace with no run yet,
    # datastore commands ask for RUNNER_HELPER_IMAGE (test_kube11_e2e.py), so run something first
    hello = project({"hello.py": "print('hi')\n"})
    assert kr("run", str(hello / "hello.py")).code == 0
    made = kr("datastore", "create", "--source", str(data), "--name", "numbers")
    assert made.code == 0 and "version 1" in made.out and "uploaded" in made.out, made.err
    again = kr("datastore", "create", "--source", str(data), "--name", "numbers")
    assert again.code == 0 and "version 1" in again.out and "not uploaded again" in again.out, again.out
    listed = kr.json("datastore", "list")
    assert [(v["name"], v["version"], v["files"]) for v in listed if v["name"] == "numbers"] == [("numbers", 1, 1)]

    reader = """\
    import os, sys
    print(open(os.path.join(sys.argv[1], "sub/numbers.txt")).read().strip())
    try:
        open(os.path.join(sys.argv[1], "new.txt"), "w")
        print("WRITABLE")
    except OSError:
        print("READ-ONLY")
    """
    root = project({"reader.py": reader})
    r = kr("run", "--datastore", "numbers", str(root / "reader.py"), "/datastores/numbers")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["1 2 3", "READ-ONLY"]
    r = kr("run", "--datastore", "numbers:1:/mnt/n", str(root / "reader.py"), "/mnt/n")
    assert r.code == 0 and r.out.splitlines()[0] == "1 2 3", r.err

    gone = kr("datastore", "delete", "numbers")
    assert gone.code == 0, gone.err
    assert not [v for v in kr.json("datastore", "list") if v["name"] == "numbers"]
    missing = kr("run", "--datastore", "numbers", str(root / "reader.py"), "/x")
    assert missing.code == 2 and "no datastore 'numbers'" in missing.err


def test_env_and_secret_reach_the_script(kr: KubeRunner, project: Project) -> None:
    kubectl("-n", kr.ns.name, "create", "secret", "generic", "e2e-token", "--from-literal=API_TOKEN=s3cr3t")
    root = project({"env.py": "import os\nprint(os.environ['SEED'], os.environ['API_TOKEN'])\n"})
    r = kr("run", "--env", "SEED=$(x)", "--secret", "e2e-token", str(root / "env.py"))
    assert r.code == 0, r.err
    assert r.out.strip() == "$(x) s3cr3t"
    bad = kr("run", "--secret", "nope", str(root / "env.py"))
    assert bad.code == 2 and "no Secret 'nope'" in bad.err and "build |" not in bad.err


def test_unschedulable_experiment_says_why(kr: KubeRunner, project: Project) -> None:
    root = project({"hello.py": "print('hello')\n"})
    r = kr("run", "--detach", "--cpus", "500", str(root / "hello.py"))
    assert r.code == 0, r.err
    run = run_name(r.err)
    exp = kr.wait_for(f"{run}-exp0", lambda e: bool(e["message"]))
    assert exp["status"] == "queued" and exp["message"].startswith("Unschedulable:") and "cpu" in exp["message"]
    assert kr("stop", run).code == 0
    assert kr.experiment(f"{run}-exp0")["status"] == "stopped"


def test_gpu_experiment_is_scheduled_on_a_node_advertising_gpus(kr: KubeRunner, project: Project) -> None:
    node = json.loads(kubectl("get", "nodes", "-o", "json"))["items"][0]["metadata"]["name"]
    patch = '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]'
    kubectl("patch", "node", node, "--subresource=status", "--type=json", "-p", patch)
    try:
        root = project({"hello.py": "print('hello gpu')\n"})
        r = kr("run", "--gpus", "1", str(root / "hello.py"))
        assert r.code == 0 and r.out == "hello gpu\n", r.err
        run = run_name(r.err)
        pod = json.loads(kubectl("-n", kr.ns.name, "get", "pods", "-l", f"runner/run={run}", "-o", "json"))["items"][0]
        assert pod["spec"]["nodeName"] == node
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    finally:
        kubectl(
            "patch",
            "node",
            node,
            "--subresource=status",
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/status/capacity/nvidia.com~1gpu"}]',
            check=False,
        )


def test_dry_run_prints_manifests_kubectl_accepts(kr: KubeRunner, project: Project) -> None:
    root = project({"hello.py": "print('hello')\n"})
    before = {h["run"] for h in kr.json("history")}
    r = kr("run", "--dry-run", "--cpus", "0.5", "--memory", "256Mi", str(root / "hello.py"), "a b")
    assert r.code == 0, r.err
    kinds = [line.split(": ")[1] for line in r.out.splitlines() if line.startswith("kind: ")]
    assert kinds == ["PersistentVolumeClaim", "ConfigMap", "ConfigMap", "Job"]
    out = kubectl(
        "-n", kr.ns.name, "apply", "--dry-run=server", "-f", "-", input=r.out, kubeconfig=str(kr.ns.kubeconfig)
    )
    assert "job.batch/" in out
    assert {h["run"] for h in kr.json("history")} == before  # nothing was recorded


def test_unreachable_api_server_is_one_clear_line_before_building(
    kr: KubeRunner, project: Project, tmp_path: Path
) -> None:
    config = json.loads(kr.ns.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(json.dumps(config))
    root = project({"hello2.py": "print('never')\n"})
    r = kr("run", str(root / "hello2.py"), env={"KUBECONFIG": str(dead)})
    assert r.code == 1
    errors = [ln for ln in r.err.splitlines() if ln.startswith("runner: error:")]
    assert len(errors) == 1 and "cannot reach the Kubernetes API server at https://127.0.0.1:1" in errors[0]
    assert "build |" not in r.err and not any(ln.startswith("run ") for ln in r.err.splitlines())
    h = kr("history", "--json", env={"KUBECONFIG": str(dead)})
    assert h.code == 0 and json.loads(h.out) == [] and "cannot read the cluster" in h.err


def test_stopped_registry_is_a_clear_error_and_history_says_failed(kr: KubeRunner, project: Project) -> None:
    root = project({"hello3.py": "print('never')\n"})
    r = kr("run", "--registry", "127.0.0.1:5999", str(root / "hello3.py"))
    assert r.code == 1
    assert "runner: error: cannot reach the image registry 127.0.0.1:5999" in r.err
    run = run_name(r.err)
    exp = kr.experiment(f"{run}-exp0")
    assert exp["status"] == "failed" and "cannot reach the image registry" in exp["message"]
    shared = {h["run"]: h for h in KubeRunner(kr.home.parent / "fresh", kr.ns).json("history")}
    assert shared[run]["status"] == "failed"


SWEEPER = """\
import json, sys, time
print("START", repr(time.time()), flush=True)
print("ARGV " + json.dumps(sys.argv[1:]), flush=True)
time.sleep(1)
print("END", repr(time.time()), flush=True)
"""


def test_sweep_with_max_parallel_queues_on_the_cluster(kr: KubeRunner, project: Project) -> None:
    root = project({"sweeper.py": SWEEPER})
    r = kr(
        "run",
        "--sweep",
        "--detach",
        "--max-parallel",
        "2",
        str(root / "sweeper.py"),
        "--lr",
        "[0.1, 0.2, 0.3]",
        "--bs",
        "range(2)",
    )
    assert r.code == 0, r.err
    run = run_name(r.err)
    names = [f"{run}-exp{i}" for i in range(6)]
    # Created at once, the last four suspended (no CLI needs to stay connected to release them)
    jobs = json.loads(kubectl("-n", kr.ns.name, "get", "jobs", "-l", f"runner/run={run}", "-o", "json"))["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == names
    releases = {
        j["metadata"]["name"]: next(
            (
                e["value"]
                for e in j["spec"]["template"]["spec"]["containers"][0]["env"]
                if e["name"] == "RUNNER_RELEASE"
            ),
            None,
        )
        for j in jobs
    }
    assert releases == {
        names[0]: names[2],
        names[1]: names[3],
        names[2]: names[4],
        names[3]: names[5],
        names[4]: None,
        names[5]: None,
    }
    doc = kr.json("status", run)  # one row per experiment, at most 2 running
    assert [e["name"] for e in doc["experiment_list"]] == names
    assert sum(e["status"] == "running" for e in doc["experiment_list"]) <= 2, doc
    # Wait watching the Jobs as admin, not with `runner status` (which would repair a broken release
    # chain): the launchers alone must get all six through.
    deadline = time.monotonic() + 240
    while True:
        jobs = json.loads(kubectl("-n", kr.ns.name, "get", "jobs", "-l", f"runner/run={run}", "-o", "json"))["items"]
        done = [
            j
            for j in jobs
            if any(
                c["type"] == "Complete" and c["status"] == "True" for c in j.get("status", {}).get("conditions") or []
            )
        ]
        if len(done) == 6:
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(1)
    exps = kr.json("status", run)["experiment_list"]
    assert [e["status"] for e in exps] == ["completed"] * 6, exps
    grid = [(lr, bs) for lr in ("0.1", "0.2", "0.3") for bs in ("0", "1")]
    assert [(str(e["params"]["--lr"]), str(e["params"]["--bs"])) for e in exps] == grid
    # each got exactly its arguments; the scripts' own clocks (one node) show at most two at a time
    spans = []
    for name, (lr, bs) in zip(names, grid):
        out = kr("logs", name).out
        lines = [ln.split("] ", 2)[-1] for ln in out.splitlines() if ln.startswith("[stdout]")]
        argv = next(ln for ln in lines if ln.startswith("ARGV "))
        assert json.loads(argv[5:]) == ["--lr", lr, "--bs", bs], out
        start = float(next(ln for ln in lines if ln.startswith("START ")).split()[1])
        end = float(next(ln for ln in lines if ln.startswith("END ")).split()[1])
        spans.append((start, end))
    for start, _ in spans:
        assert sum(s <= start < e for s, e in spans) <= 2, spans
    # and the chain: experiment i+2 started after experiment i ended
    for i in range(4):
        assert spans[i + 2][0] > spans[i][1], spans


def test_stopping_a_queued_sweep_leaves_no_job_behind(kr: KubeRunner, project: Project) -> None:
    root = project({"sleeper.py": SLEEPER})
    r = kr("run", "--sweep", "--detach", "--max-parallel", "1", str(root / "sleeper.py"), "[300, 301, 302]")
    assert r.code == 0, r.err
    run = run_name(r.err)
    kr.wait_for(f"{run}-exp0", lambda e: e["status"] == "running")
    states = {e["name"]: (e["status"], e["message"]) for e in kr.json("status", run)["experiment_list"]}
    assert states[f"{run}-exp1"] == states[f"{run}-exp2"] == ("queued", "waiting for a free slot (--max-parallel)")
    s = kr("stop", run)
    assert s.code == 0, s.err
    assert [e["status"] for e in kr.json("status", run)["experiment_list"]] == ["stopped"] * 3
    assert not json.loads(kubectl("-n", kr.ns.name, "get", "jobs", "-l", f"runner/run={run}", "-o", "json"))["items"]


def test_api_arguments_longer_than_exec_allows(kr: KubeRunner, project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import runner

    for key in ("RUNNER_HOME", "KUBECONFIG", "RUNNER_REGISTRY", "RUNNER_BASE_IMAGE"):
        monkeypatch.setenv(key, kr.env[key])
    root = project(
        {
            "lens.py": "import hashlib, json, sys\n"
            "print('LENS ' + json.dumps([[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in sys.argv]))\n"
        }
    )
    huge = "y" * 300_000 + "é"  # past the 128 KiB Linux allows one exec argument
    args = ["--blob", huge, "", "a b"]
    run = runner.submit(root / "lens.py", args=args, cpus=0.25)
    assert run.wait(timeout=240) == "completed", run.logs()
    line = next(ln for ln in run.logs() if "LENS " in ln)
    seen = json.loads(line.split("LENS ", 1)[1])
    assert seen == [[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in ["lens.py", *args]]
