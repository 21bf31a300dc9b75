"""Log throughput of the local target (issue 14, point 5): `runner run --local` against `docker run`.

The same image runs the same script, which prints the same bytes: many short lines, then
one long line.  Both commands' standard output goes to a pipe this process drains (and
counts: a run that lost output does not count), alternating, median of N.  runner also
writes every line to the experiment's log file; `docker run` writes nothing but the
engine's own json-file log, which both pay.

    .venv/bin/python bench/bench_logs.py [--mb 200] [--repeat 3]

The figure is throughput (MB/s of the script's output) and the ratio runner/docker
(the target is >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from bench_local import DOCKER, compile_package, runner_cmd  # noqa: E402

#: prints N bytes as lines of WIDTH bytes (the last line may be shorter), in big writes so the
#: script itself is never the bottleneck
PRINTER = """\
import sys
n, width = int(sys.argv[1]), int(sys.argv[2])
line = b"x" * (width - 1) + b"\\n"
out = sys.stdout.buffer
if width >= 1 << 20:  # one long line: written in 1 MiB pieces
    piece = b"x" * (1 << 20)
    left = n - 1
    while left > 0:
        out.write(piece[: min(left, len(piece))])
        left -= min(left, len(piece))
    out.write(b"\\n")
else:
    block = line * max(1, (1 << 16) // width)
    written = 0
    while written + len(block) <= n:
        out.write(block)
        written += len(block)
    while written + width <= n:
        out.write(line)
        written += width
out.flush()
"""


def drained(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Seconds until ``cmd`` ended, and the bytes it wrote to stdout."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    n = 0
    while chunk := p.stdout.read1(1 << 20):
        n += len(chunk)
    err = p.stderr.read()
    code = p.wait()
    elapsed = time.perf_counter() - t
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return elapsed, n


def case(
    name: str, total: int, width: int, *, env: dict[str, str], proj: Path, image: str, repeat: int
) -> dict[str, float]:
    args = [str(total), str(width)]
    expected = total if width >= 1 << 20 else (total // width) * width
    runner = runner_cmd("run", "--local", "print_bytes.py", *args)
    docker = [DOCKER, "run", "--rm", image, "python3", "print_bytes.py", *args]
    r, d = [], []
    for _ in range(repeat):
        for cmd, times in ((runner, r), (docker, d)):
            secs, n = drained(cmd, env, proj)
            if n != expected:
                sys.exit(f"{name}: {' '.join(cmd[:3])} wrote {n} bytes, expected {expected}")
            times.append(secs)
    rm, dm = statistics.median(r), statistics.median(d)
    mb = total / 1e6
    return {
        "bytes": total,
        "line_bytes": width,
        "runner_s": rm,
        "docker_run_s": dm,
        "runner_MBps": mb / rm,
        "docker_run_MBps": mb / dm,
        "ratio": dm / rm,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="bytes printed per case, in MB (default 200)")
    ap.add_argument("--width", type=int, default=100, help="bytes per short line (default 100)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("lines", "long"), default=None)
    ns = ap.parse_args()
    env = {**os.environ, "RUNNER_BASE_IMAGE": os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")}
    compile_package()
    total = ns.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "logbench"
        proj.mkdir()
        (proj / "print_bytes.py").write_text(PRINTER)
        env["RUNNER_HOME"] = str(Path(tmp) / "home")  # outside the project: not part of the image
        subprocess.run(
            runner_cmd("run", "--local", "print_bytes.py", "10", "5"),
            env=env,
            cwd=proj,
            check=True,
            capture_output=True,
        )  # build once
        plan = json.loads(subprocess.check_output(runner_cmd("inspect", "--json", "print_bytes.py"), env=env, cwd=proj))
        out = {}
        if ns.only in (None, "lines"):
            out["many_lines"] = case(
                "many lines", total, ns.width, env=env, proj=proj, image=plan["image"], repeat=ns.repeat
            )
        if ns.only in (None, "long"):
            out["one_line"] = case("one line", total, total, env=env, proj=proj, image=plan["image"], repeat=ns.repeat)
        subprocess.run([DOCKER, "rmi", plan["image"]], capture_output=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
