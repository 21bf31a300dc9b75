"""Benchmarks of the local target (issue 3), each against the obvious alternative in the same run.

1. Cached re-run overhead: `runner run --local examples/hello.py` (image cached) against
   `docker run --rm <the same image> python3 hello.py`, alternating, median of N.
2. Code-only change: rebuild after editing the code of a project with a dependency,
   against a cold build of the same project (a fresh base image id, so no layer is cached).

    .venv/bin/python bench/bench_local.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKER = "/usr/bin/docker"  # Debian's engine client


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return elapsed


def runner_cmd(*args: str) -> list[str]:
    """The console script a user types, when this repository's own venv runs the bench; else ``python -m runner``."""
    script = Path(sys.executable).with_name("runner")
    own_venv = Path(sys.executable).parent.parent.parent == REPO
    return [str(script), *args] if script.exists() and own_venv else [sys.executable, "-m", "runner", *args]


def compile_package() -> None:
    """Byte-compile runner as `pip install` does: an editable install under PYTHONDONTWRITEBYTECODE=1
    would otherwise recompile every module from source on every call, which no installed runner does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "runner")], check=True)


def cached_overhead(env: dict[str, str], repeat: int) -> dict[str, float]:
    compile_package()
    hello = REPO / "examples/hello.py"
    timed(runner_cmd("run", "--local", str(hello)), env)  # build once (or reuse)
    plan = json.loads(subprocess.check_output(runner_cmd("inspect", "--json", str(hello)), env=env))
    docker_run = [DOCKER, "run", "--rm", plan["image"], *plan["command"]]
    timed(docker_run, env)  # warm the engine's caches too
    r, d = [], []
    for _ in range(repeat):
        r.append(timed(runner_cmd("run", "--local", str(hello)), env))
        d.append(timed(docker_run, env))
    rm, dm = statistics.median(r), statistics.median(d)
    return {"runner_median_s": rm, "docker_run_median_s": dm, "ratio": rm / dm}


def code_only_rebuild(env: dict[str, str]) -> dict[str, float]:
    base = env["RUNNER_BASE_IMAGE"]
    fresh = f"runner-bench-base:{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        # a layer of its own: BuildKit keys a base image by its layers, so a new label alone would not do
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\nRUN echo {fresh} > /etc/runner-bench\n")
        subprocess.run([DOCKER, "build", "-q", "-t", fresh, tmp], check=True, capture_output=True)
        proj = Path(tmp) / "proj"
        proj.mkdir()
        (proj / "app.py").write_text("import yaml\nprint(yaml.safe_dump({'v': 1}))\n")
        benv = {**env, "RUNNER_BASE_IMAGE": fresh}
        cold = timed(runner_cmd("run", "--local", str(proj / "app.py")), benv)
        (proj / "app.py").write_text("import yaml\nprint(yaml.safe_dump({'v': 2}))\n")
        warm = timed(runner_cmd("run", "--local", str(proj / "app.py")), benv)
    subprocess.run([DOCKER, "rmi", "-f", fresh], capture_output=True)
    return {"cold_build_run_s": cold, "code_change_run_s": warm, "ratio": warm / cold}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    opts = ap.parse_args()
    home = tempfile.mkdtemp(prefix="runner-bench-")
    env = {
        **os.environ,
        "RUNNER_HOME": home,
        "RUNNER_BASE_IMAGE": os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11"),
    }
    try:
        over = cached_overhead(env, opts.repeat)
        print(
            f"cached re-run:  runner {over['runner_median_s']:.3f}s  docker run {over['docker_run_median_s']:.3f}s"
            f"  ratio {over['ratio']:.2f}  (median of {opts.repeat}, target <= 1.5)"
        )
        code = code_only_rebuild(env)
        print(
            f"code-only change: rebuild+run {code['code_change_run_s']:.2f}s  cold build+run {code['cold_build_run_s']:.2f}s"
            f"  ratio {code['ratio']:.2f}"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
