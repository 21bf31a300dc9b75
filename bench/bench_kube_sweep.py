"""Benchmark of a large sweep on the Kubernetes target (issue 6): 1,000 experiments, ``--max-parallel 4``.

    .venv/bin/python bench/bench_kube_sweep.py [--experiments N] [--max-parallel P] [--status-repeat K]
                                               [--cpus C] [--namespace NS] [--registry HOST:PORT] [--keep]

With a cached image (a warm-up run builds and pushes it first) it measures:

* **submit**: ``runner run --sweep --detach x.py --x "range(N)" --max-parallel P`` from start to
  exit, i.e. until the run ConfigMap and all N Jobs exist (target: under 10 s), with the time
  of each line the CLI prints (where the time goes), and then until the first experiment's
  pod is Running (the clock keeps running from the submit's start);
* **status**: ``runner status RUN`` printing all N rows, median of K (target: under 1 s); one
  ``--json`` call checks the rows and their states;
* when the first queued experiment runs (more than P of the sweep's pods have run);
* the run ConfigMap's size (the 1 MiB limit) after submit, and after the first experiments
  recorded their ends, projected to N ends.

Then it deletes the run's Jobs by label (background propagation) and its ConfigMap, unless
``--keep`` (the warm-up run's at once).  Defaults fit the local development cluster (tests/cluster): admin kubeconfig,
its kubectl, registry 127.0.0.1:5000; the namespace is made (with manifests/rbac.yaml) if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from kubesetup import REPO, kubectl, prepare

SCRIPT = "import sys\nprint('x =', sys.argv[2], flush=True)\n"


def timed_lines(cmd: list[str], env: dict[str, str]) -> tuple[float, list[tuple[float, str]], int]:
    """Run ``cmd``; (seconds to exit, [(seconds, stderr line)], exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    lines = [(time.perf_counter() - t, line.rstrip("\n")) for line in p.stderr]
    code = p.wait()
    return time.perf_counter() - t, lines, code


def watch_first_running(ns: str, t0: float, out: list[float]) -> None:
    """Seconds from t0 until a pod of a sweep (a runner/run label, not the warm-up's) is Running or done."""
    sel = "app.kubernetes.io/managed-by=runner,runner/run"
    known = {
        p["metadata"]["labels"]["runner/run"]
        for p in json.loads(kubectl("-n", ns, "get", "pods", "-l", sel, "-o", "json"))["items"]
    }
    while time.perf_counter() - t0 < 120:
        pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", sel, "-o", "json"))["items"]
        if any(
            p["metadata"]["labels"]["runner/run"] not in known and p["status"].get("phase") in ("Running", "Succeeded")
            for p in pods
        ):
            out.append(time.perf_counter() - t0)
            return
        time.sleep(0.05)


def configmap_bytes(ns: str, run: str) -> tuple[int, int, int]:
    """(bytes of the run ConfigMap's data, of its run.json, ends recorded in it)."""
    cm = json.loads(kubectl("-n", ns, "get", "configmap", f"runner-run-{run}", "-o", "json"))
    data = cm.get("data") or {}
    ends = sum(1 for k in data if k.endswith(".json") and k != "run.json")
    return sum(len(k) + len(v.encode()) for k, v in data.items()), len(data.get("run.json", "").encode()), ends


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", type=int, default=1000)
    ap.add_argument("--max-parallel", type=int, default=4)
    ap.add_argument("--status-repeat", type=int, default=5)
    ap.add_argument(
        "--cpus", default="0.25", help="--cpus per experiment (the default 1 CPU lets one or two fit on a small node)"
    )
    ap.add_argument("--namespace", default="runner-bench")
    ap.add_argument("--registry", default=os.environ.get("RUNNER_REGISTRY", "127.0.0.1:5000"))
    ap.add_argument("--keep", action="store_true", help="leave the run's Jobs and ConfigMap in the cluster")
    opts = ap.parse_args()
    ns, n = opts.namespace, opts.experiments
    home, script_path, env = prepare(ns, opts.registry, script_name="x.py", script=SCRIPT)
    proj = script_path.parent
    runner = str(Path(sys.executable).with_name("runner"))
    # Byte-compile runner as `pip install` does (as bench_local.py): under PYTHONDONTWRITEBYTECODE=1 an
    # editable install would recompile every module on every call, which no installed runner does.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "runner")], check=True)
    run = None
    try:
        warm = subprocess.run(
            [runner, "run", str(proj / "x.py"), "--x", "warm"], env=env, capture_output=True, text=True
        )
        if warm.returncode:  # builds and pushes once: the sweep below has a cached image
            sys.exit(warm.stderr[-2000:])
        warm_run = next(ln.split()[1] for ln in warm.stderr.splitlines() if ln.startswith("run "))
        kubectl(
            "-n",
            ns,
            "delete",
            "jobs",
            "-l",
            f"runner/run={warm_run}",
            "--cascade=background",
            "--wait=false",
            check=False,
        )
        kubectl("-n", ns, "delete", "configmap", f"runner-run-{warm_run}", "--wait=false", check=False)

        cmd = [
            runner,
            "run",
            "--sweep",
            "--detach",
            "--max-parallel",
            str(opts.max_parallel),
            "--cpus",
            opts.cpus,
            str(proj / "x.py"),
            "--x",
            f"range({n})",
        ]
        # From the submit's start, watch (as admin, every ~0.1 s) for the sweep's first pod to run
        first: list[float] = []
        t0 = time.perf_counter()
        watcher = threading.Thread(target=watch_first_running, args=(ns, t0, first), daemon=True)
        watcher.start()
        submit_s, lines, code = timed_lines(cmd, env)
        if code:
            sys.exit("\n".join(text for _, text in lines)[-3000:])
        run = next(text.split()[1] for _, text in lines if text.startswith("run "))
        watcher.join(timeout=120)
        first_running_s = first[0] if first else None
        cm_submit, run_json, _ = configmap_bytes(ns, run)
        jobs = json.loads(kubectl("-n", ns, "get", "jobs", "-l", f"runner/run={run}", "-o", "json"))["items"]
        suspended = sum(bool(j["spec"].get("suspend")) for j in jobs)
        time.sleep(5)  # a few experiments end: their records' size below

        status_times, rows = [], 0
        for _ in range(opts.status_repeat):
            t = time.perf_counter()
            st = subprocess.run([runner, "status", run], env=env, capture_output=True, text=True)
            status_times.append(time.perf_counter() - t)
            if st.returncode:
                sys.exit(st.stderr[-2000:])
            rows = sum(1 for ln in st.stdout.splitlines() if f"{run}-exp" in ln)
        doc = json.loads(
            subprocess.run([runner, "status", run, "--json"], env=env, capture_output=True, text=True).stdout
        )
        states: dict[str, int] = {}
        for e in doc["experiment_list"]:
            states[e["status"]] = states.get(e["status"], 0) + 1
        # The first release: until more than P of the sweep's pods have run (the job controller
        # must first get through the suspended Jobs' status writes, at its API rate limit)
        second_wave_s = None
        while second_wave_s is None and time.perf_counter() - t0 < 180:
            pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", f"runner/run={run}", "-o", "json"))["items"]
            if sum(p["status"].get("phase") in ("Running", "Succeeded") for p in pods) > opts.max_parallel:
                second_wave_s = time.perf_counter() - t0
            else:
                time.sleep(0.5)
        cm_now, _, ended = configmap_bytes(ns, run)
        per_end = (cm_now - cm_submit) / ended if ended else None

        # where the submit's time goes: each CLI line, seconds from the start
        marks = [(round(s, 3), text) for s, text in lines if not text.startswith("submitted")]
        submitted = [s for s, text in lines if text.startswith("submitted")]
        result = {
            "run": run,
            "experiments": n,
            "max_parallel": opts.max_parallel,
            "jobs_created": len(jobs),
            "jobs_suspended": suspended,
            "submit_s": round(submit_s, 3),
            "first_running_s": None if first_running_s is None else round(first_running_s, 3),
            "first_released_running_s": None if second_wave_s is None else round(second_wave_s, 3),
            "status_rows": rows,
            "status_median_s": round(statistics.median(status_times), 3),
            "status_all_s": [round(x, 3) for x in status_times],
            "states_at_end": states,
            "configmap_bytes_after_submit": cm_submit,
            "run_json_bytes": run_json,
            "configmap_bytes_now": cm_now,
            "ends_recorded_now": ended,
            "bytes_per_end": None if per_end is None else round(per_end),
            "configmap_bytes_projected_all_ended": None if per_end is None else round(cm_submit + n * per_end),
            "cli_lines": marks,
            "cli_submitted_lines_from_s": round(submitted[0], 3) if submitted else None,
        }
        print(json.dumps(result, indent=1))
        print(
            f"{n} experiments, --max-parallel {opts.max_parallel}: submitted (ConfigMap + {len(jobs)} Jobs) in "
            f"{submit_s:.2f}s, first running at {first_running_s or float('nan'):.2f}s (target < 10 s); "
            f"`runner status` {rows} rows in {statistics.median(status_times):.3f}s (median of {opts.status_repeat}, "
            f"target < 1 s)"
        )
    finally:
        if run and not opts.keep:
            kubectl(
                "-n",
                ns,
                "delete",
                "jobs",
                "-l",
                f"runner/run={run}",
                "--cascade=background",
                "--wait=false",
                check=False,
            )
            kubectl("-n", ns, "delete", "configmap", f"runner-run-{run}", "--wait=false", check=False)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
