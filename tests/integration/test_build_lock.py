"""Two runs that need the same new image at the same time build it once (runner.buildlock), on the real engine.

The runs have homes of their own, as two users' would: the lock is per engine and image, not per RUNNER_HOME.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

from support import Runner

from runner.buildlock import BuildLock, lock_path

WAITING = "runner: waiting for another build of this image"
DOCKER = "/usr/bin/docker"


def new_project(root: Path) -> Path:
    """A project whose image no engine has built yet (its code is new)."""
    root.mkdir(parents=True)
    (root / "app.py").write_text(f"# {uuid.uuid4()}\nimport six\nprint('six', six.__version__)\n")
    (root / "req.txt").write_text("six==1.16.0\n")
    return root


def image_of(runner: Runner, root: Path) -> str:
    r = runner("inspect", "--json", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert r.code == 0, r.err
    return str(json.loads(r.out)["image"])


def build_logs(*homes: Path) -> list[str]:
    return [p.read_text() for home in homes for p in sorted((home / "runs").glob("*/build.log"))]


def build_steps(log: str) -> int:
    """How many Dockerfile steps a build log shows (0: nothing was built)."""
    return len(re.findall(r"^#\d+ \[\S+ \d+/\d+\] ", log, flags=re.M))


def tag_events(image: str, since: float) -> int:
    """How many times the engine tagged ``image`` since ``since``: once per build that made it."""
    out = subprocess.run(
        [DOCKER, "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter", "type=image",
         "--filter", "event=tag", "--format", "{{json .}}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return sum(
        1 for ln in out.splitlines() if json.loads(ln).get("Actor", {}).get("Attributes", {}).get("name") == image
    )


def test_two_runs_waiting_for_one_build_build_it_once(tmp_path: Path) -> None:
    root = new_project(tmp_path / "proj")
    a, b = Runner(tmp_path / "home-a"), Runner(tmp_path / "home-b")
    args = ("run", "--local", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    image = image_of(a, root)
    engine = subprocess.run([DOCKER, "info", "--format", "{{.ID}}"], capture_output=True, text=True, check=True)
    # another build of this image is under way (this test holds its lock): both runs must wait for it
    held = BuildLock(lock_path(engine.stdout.strip(), image))
    assert held.try_acquire()
    since = time.time()
    try:
        procs = [a.popen(*args), b.popen(*args)]
        deadline = time.monotonic() + 240
        while sum(WAITING in log for log in build_logs(a.home, b.home)) < 2:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the runs never waited for the build lock"
            time.sleep(0.2)
    finally:
        held.release()
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert out == "six 1.16.0\n"
        assert "waiting    for another build of this image" in err
    logs = build_logs(a.home, b.home)
    assert len(logs) == 2 and all(WAITING in log for log in logs)
    assert sorted(build_steps(log) for log in logs)[0] == 0 and sorted(build_steps(log) for log in logs)[1] > 0
    assert sum(f"another run built {image} meanwhile: nothing to build" in log for log in logs) == 1
    assert any(f"image      {image} (built by another run)" in err for _, err in results)
    assert tag_events(image, since) == 1


def test_two_runs_started_at_once_build_once(tmp_path: Path) -> None:
    root = new_project(tmp_path / "proj")
    a, b = Runner(tmp_path / "home-a"), Runner(tmp_path / "home-b")
    args = ("run", "--local", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    image = image_of(a, root)
    since = time.time()
    procs = [a.popen(*args), b.popen(*args)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert out == "six 1.16.0\n"
    # the second either found the image made (cached) or waited for the first: never a second build
    logs = build_logs(a.home, b.home)
    assert sum(build_steps(log) > 0 for log in logs) == 1
    assert tag_events(image, since) == 1
