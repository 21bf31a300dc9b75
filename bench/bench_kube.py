"""Benchmark of the Kubernetes target (issue 5): submit-to-first-output for a cached image.

`runner run SCRIPT` (image built and in the registry already) against
`kubectl run --rm -i --restart=Never --image=<the same image, by digest> ... -- python3 SCRIPT`
on the same cluster and namespace, alternating, median of N; the ratio is runner / kubectl.
The clock runs from starting the command to its first line of the script's output.

    .venv/bin/python bench/bench_kube.py [--repeat N] [--namespace NS] [--registry HOST:PORT]

Defaults fit the local development cluster (tests/cluster): admin kubeconfig, its kubectl,
registry 127.0.0.1:5000; the namespace is made (with manifests/rbac.yaml) if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kubesetup import KUBECTL, prepare

SCRIPT = "print('first output', flush=True)\n"


def first_output(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from start to the first stdout line; then waits for the command to finish."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    elapsed = time.perf_counter() - t
    rest, err = p.communicate(timeout=300)
    if "first output" not in line:
        sys.exit(f"failed: {' '.join(cmd)}\n{line}{rest}{err[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--namespace", default="runner-bench")
    ap.add_argument("--registry", default=os.environ.get("RUNNER_REGISTRY", "127.0.0.1:5000"))
    opts = ap.parse_args()
    ns = opts.namespace
    home, script_path, env = prepare(ns, opts.registry, script_name="first.py", script=SCRIPT)
    proj = script_path.parent
    runner = [str(Path(sys.executable).with_name("runner")), "run", str(proj / "first.py")]
    try:
        warm = subprocess.run(runner, env=env, capture_output=True, text=True)  # builds and pushes once
        if warm.returncode:
            sys.exit(warm.stderr[-2000:])
        ref = next(ln.split()[1] for ln in warm.stderr.splitlines() if ln.startswith(("pushed ", "registry ")))

        def kubectl_run() -> list[str]:
            return [
                KUBECTL,
                "-n",
                ns,
                "run",
                f"bench-{uuid.uuid4().hex[:8]}",
                "--rm",
                "-i",
                "--restart=Never",
                "--quiet",
                f"--image={ref}",
                "--command",
                "--",
                "python3",
                "first.py",
            ]

        first_output(kubectl_run(), env)
        r, k = [], []
        for _ in range(opts.repeat):
            r.append(first_output(runner, env))
            k.append(first_output(kubectl_run(), env))
        rm, km = statistics.median(r), statistics.median(k)
        print(
            json.dumps(
                {
                    "runner_median_s": round(rm, 3),
                    "kubectl_run_median_s": round(km, 3),
                    "ratio": round(rm / km, 2),
                    "repeat": opts.repeat,
                    "runner_all": [round(x, 3) for x in r],
                    "kubectl_all": [round(x, 3) for x in k],
                }
            )
        )
        print(
            f"submit-to-first-output, cached image: runner {rm:.3f}s  kubectl run {km:.3f}s  ratio {rm / km:.2f}"
            f"  (median of {opts.repeat}, target <= 1.5)"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
