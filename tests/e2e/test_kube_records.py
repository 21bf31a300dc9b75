"""A Kubernetes run's record never passes a ConfigMap's 1 MiB, and every end state is recorded (issue 14, point 4).

Before, one ConfigMap per run held every experiment's arguments and end: a sweep whose
arguments passed 1 MiB was refused (422), and one just under it lost its ends.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import KubeRunner, kubectl
from support import run_name

Project = Callable[[dict[str, str]], Path]
LENS = (
    "import hashlib, json, sys\n"
    "print('LENS ' + json.dumps([[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in sys.argv[1:]]))\n"
)


def lens(args: list[str]) -> list[list[Any]]:
    return [[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in args]


def run_configmaps(kr: KubeRunner, run: str) -> list[dict[str, Any]]:
    found = json.loads(kubectl("-n", kr.ns.name, "get", "configmaps", "-l", f"runner/run={run}", "-o", "json"))["items"]
    return [cm for cm in found if cm["metadata"]["labels"].get("runner/kind") in ("run", "run-part")]


def recorded_ends(kr: KubeRunner, run: str) -> dict[str, dict[str, Any]]:
    """What the launchers wrote in the run's ConfigMaps (read as admin: nothing derived by an observer)."""
    ends = {}
    for cm in run_configmaps(kr, run):
        for key, value in (cm.get("data") or {}).items():
            if key.endswith(".json") and key not in ("run.json", "part.json"):
                ends[key[: -len(".json")]] = json.loads(value)
    return ends


def test_sweep_whose_arguments_pass_one_mib_records_every_end(kr: KubeRunner, project: Project) -> None:
    root = project({"lens.py": LENS})
    blob = "b" * 32_000
    n = 36  # 36 x 32 kB of arguments: 1.15 MB, more than one ConfigMap can hold
    r = kr(
        "run",
        "--sweep",
        "--detach",
        "--cpus",
        "0.05",
        "--max-parallel",
        "12",
        str(root / "lens.py"),
        "--blob",
        blob,
        "--i",
        f"range({n})",
        timeout=600,
    )
    assert r.code == 0, r.err[-3000:]
    run = run_name(r.err)
    names = [f"{run}-exp{i}" for i in range(n)]
    cms = run_configmaps(kr, run)
    assert len(cms) >= 2
    assert all(len(json.dumps(cm).encode()) < 1 << 20 for cm in cms)
    deadline = time.monotonic() + 600
    while len(ends := recorded_ends(kr, run)) < n:  # the launchers alone record them (no observer runs)
        assert time.monotonic() < deadline, f"{len(ends)} of {n} ends recorded"
        time.sleep(3)
    assert sorted(ends) == sorted(names)
    assert {e["state"] for e in ends.values()} == {"completed"}, ends
    exps = kr.json("status", run)["experiment_list"]
    assert [e["name"] for e in exps] == names
    assert [e["status"] for e in exps] == ["completed"] * n
    assert [str(e["params"]["--i"]) for e in exps] == [str(i) for i in range(n)]
    for i in (0, n - 1):
        out = kr("logs", names[i]).out
        line = next(ln for ln in out.splitlines() if "LENS " in ln)
        assert json.loads(line.split("LENS ", 1)[1]) == lens(["--blob", blob, "--i", str(i)])


def test_arguments_of_two_megabytes_reach_the_script_and_its_end_is_recorded(
    kr: KubeRunner, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner

    for key in ("RUNNER_HOME", "KUBECONFIG", "RUNNER_REGISTRY", "RUNNER_BASE_IMAGE"):
        monkeypatch.setenv(key, kr.env[key])
    root = project({"lens.py": LENS})
    args = ["--big", "y" * 1_000_000 + "\u00e9", *("z" * 100_000 for _ in range(10)), "", "a b"]  # ~2.1 MB
    run = runner.submit(root / "lens.py", args=args, cpus=0.25)
    assert run.wait(timeout=300) == "completed", run.logs()
    line = next(ln for ln in run.logs() if "LENS " in ln)
    assert json.loads(line.split("LENS ", 1)[1]) == lens(args)
    cms = run_configmaps(kr, run.name)
    assert len(cms) == 1 and len(json.dumps(cms[0]).encode()) < 100_000  # the arguments are on the volume
    assert recorded_ends(kr, run.name)[f"{run.name}-exp0"]["state"] == "completed"


PRINTER = """\
import sys
n = int(sys.argv[1])
block = b"".join(b"line %07d %s\\n" % (i, b"x" * 80) for i in range(1000))
out = sys.stdout.buffer
for _ in range(n // 1000):
    out.write(block)
"""


def test_logs_of_a_finished_experiment_with_a_large_log_stream_at_once(kr: KubeRunner, project: Project) -> None:
    root = project({"printer.py": PRINTER})
    n = 1_000_000  # ~94 MB of output
    r = kr("run", "--detach", "--cpus", "0.5", str(root / "printer.py"), str(n))
    assert r.code == 0, r.err[-2000:]
    run = run_name(r.err)
    kr.wait_for(f"{run}-exp0", lambda e: e["status"] == "completed", timeout=300)
    started = time.monotonic()
    p = kr.popen("logs", f"{run}-exp0")
    assert p.stdout is not None
    # the run's build log comes first when this run built its image (a cold engine cache)
    first = p.stdout.readline()
    while first.startswith("[build] "):
        first = p.stdout.readline()
    first_after = time.monotonic() - started
    count = 1 + sum(1 for _ in p.stdout)
    assert p.wait(timeout=600) == 0
    assert first.startswith("[stdout] [") and first.rstrip().endswith("line 0000000 " + "x" * 80)
    assert count == n
    assert first_after < 30, f"the first line came after {first_after:.1f}s"
    tail = kr("logs", f"{run}-exp0", "--tail", "2")
    assert [ln.split("] ", 2)[-1] for ln in tail.out.splitlines()] == [f"line 000099{i} {'x' * 80}" for i in (8, 9)]


FAILER = """\
import os, sys
os.makedirs("out", exist_ok=True)
open("out/result.txt", "w").write("kept\\n")
print("done", flush=True)
sys.exit(3)
"""


def test_an_end_the_launcher_cannot_record_is_taken_from_the_volume(kr: KubeRunner, project: Project) -> None:
    # The fault: experiment pods may no longer patch ConfigMaps (the admin's Role edit), so the
    # launcher's record is refused (403) and its end stays in end.json on the volume.
    ns = kr.ns.name
    role = json.loads(kubectl("-n", ns, "get", "role", "runner-experiment", "-o", "json"))
    original = json.dumps(role)
    for rule in role["rules"]:
        if "configmaps" in rule.get("resources", []):
            rule["verbs"] = [v for v in rule["verbs"] if v != "patch"]
    role["metadata"] = {k: v for k, v in role["metadata"].items() if k in ("name", "namespace", "labels")}
    kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(role))
    try:
        root = project({"failer.py": FAILER})
        r = kr("run", "--detach", "--cpus", "0.1", str(root / "failer.py"))
        assert r.code == 0, r.err[-2000:]
        run = run_name(r.err)
        name = f"{run}-exp0"
        deadline = time.monotonic() + 180
        while True:  # watched as admin: no observer may reconcile before the launcher is done
            job = json.loads(kubectl("-n", ns, "get", "job", name, "-o", "json"))
            if any(
                c["type"] == "Failed" and c["status"] == "True" for c in job.get("status", {}).get("conditions") or []
            ):
                break
            assert time.monotonic() < deadline, job.get("status")
            time.sleep(1)
        assert name not in recorded_ends(kr, run)  # the launcher could not record it
    finally:
        restored = json.loads(original)
        restored["metadata"] = {k: v for k, v in restored["metadata"].items() if k in ("name", "namespace", "labels")}
        kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(restored))
    exp = kr.experiment(name)  # an observer: finds the end on the volume and writes it down
    assert (exp["status"], exp["exit_code"], exp["message"]) == ("failed", 3, "exit code 3"), exp
    end = recorded_ends(kr, run)[name]
    assert end["artifacts"] == 1 and end["exit_code"] == 3 and end["final"] is True, end
    logs = kr("logs", name).out
    assert "done" in logs and "cannot record the end state" in logs
