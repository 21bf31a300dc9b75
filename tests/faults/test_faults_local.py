"""Faults on the local target, each injected by the test mid-run on the real Docker engine.

The engine restart uses a private dockerd (faultlib.PrivateEngine): the shared engine is never
stopped. Its live-restore setting decides what a restart does to a running container:
off (dockerd's default) stops it (SIGTERM: exit 143) and runner names the engine as the cause;
on, the container lives through it and runner follows it on to the script's own end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlib import (
    DOCKER,
    HOG,
    SLOW_BUILD,
    TICK,
    Following,
    PrivateEngine,
    build_containers,
    check_consistent,
    fresh_base,
    no_traceback,
    texts,
    ticks,
    wait_for,
)
from support import Runner, run_name

pytestmark = pytest.mark.integration

Project = Callable[[dict[str, str]], Path]


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[PrivateEngine]:
    e = PrivateEngine(live_restore=request.param)
    try:
        e.start()
        e.load_base_image()
        yield e
    finally:
        e.close()


@pytest.mark.parametrize(
    ("engine", "detach"),
    [(False, False), (True, False), (False, True)],
    indirect=["engine"],
    ids=["live-restore-off", "live-restore-on", "live-restore-off-detached"],
)
def test_engine_restarted_mid_run(
    engine: PrivateEngine, detach: bool, runner: Runner, project: Project, tmp_path: Path
) -> None:
    root = project({"tick.py": TICK})
    r = Runner(runner.home, {"DOCKER_HOST": engine.host})
    f = Following(r, "run", "--local", *(["--detach"] if detach else []), str(root / "tick.py"), "12", "3")
    if detach:
        assert f.finish() == 0, f.stderr
        run = f.run
        wait_for(lambda: "tick 3" in r("logs", run).out, timeout=120, what="tick 3")
    else:
        f.wait_out("tick 3")
    engine.stop()  # SIGTERM, as a service manager's restart does
    time.sleep(2)
    engine.start()  # the same data root: its containers are known again
    if detach:  # the watcher follows it to the end; its notices are in the log
        wait_for(lambda: r.json("status", run)["status"] != "running", timeout=120, what="the end")  # type: ignore[index]
        log = r("logs", run).out
        f.out, f.err = texts(log), [*f.err, *texts(log, "runner")]
        code = r.json("status", run)["experiment_list"][0]["exit_code"]  # type: ignore[index]
        f.err.append(r("status", run).out)  # what the user reads there
    else:
        code = f.finish()
    run, err = f.run, "\n".join(f.err)
    no_traceback(err)
    dest = tmp_path / "dl"
    if engine.live_restore:  # the container lived through it: the script's own end, every line, once
        assert code == 3, err
        assert ticks(f.out) == list(range(12)) and f.out[-1] == "done", f.out
        assert "runner: lost the Docker engine" in err and "answers again" in err, err
        check_consistent(r, run, status="failed", exit_code=3, message="exit code 3", upto=11, complete=True, dest=dest)
    else:  # stopped by the engine: its exit code, and the engine named as the cause
        assert code == 143, err
        assert "stopped by the Docker engine going away" in err and "live-restore" in err, err
        got = ticks(f.out)
        assert got == list(range(len(got))) and len(got) >= 4, f.out
        check_consistent(
            r,
            run,
            status="failed",
            exit_code=143,
            message="Docker engine",
            upto=len(got) - 1,
            complete=False,
            dest=dest,
        )
    assert engine.containers(run) == []  # nothing left behind


def test_cli_killed_while_following(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    f = Following(runner, "run", "--local", str(root / "tick.py"), "8", "0")
    f.wait_out("tick 2")
    os.kill(f.proc.pid, signal.SIGKILL)  # our own CLI
    f.finish()
    run = f.run
    # the next command takes the orphan over and follows it to its end
    wait_for(lambda: runner.json("status", run)["status"] != "running", timeout=60, what="the end")  # type: ignore[index]
    check_consistent(runner, run, status="completed", exit_code=0, upto=7, complete=True, dest=tmp_path / "dl")
    assert texts(runner("logs", run).out)[-1] == "done"


def test_two_clis_submit_ten_runs_each(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    names: list[list[str]] = [[], []]
    errors: list[str] = []

    def cli(k: int) -> None:
        for _ in range(10):
            res = runner("run", "--local", "--detach", str(root / "tick.py"), "2", "0")
            if res.code != 0:
                errors.append(res.err)
            else:
                names[k].append(run_name(res.err))

    threads = [threading.Thread(target=cli, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = names[0] + names[1]
    assert len(set(runs)) == 20
    wait_for(lambda: not runner.json("status"), timeout=180, what="every run to end")
    hist: Any = runner.json("history")
    assert sorted(h["run"] for h in hist) == sorted(runs)
    assert {h["status"] for h in hist} == {"completed"}
    for run in runs[::5]:
        check_consistent(runner, run, status="completed", exit_code=0, upto=1, complete=True, dest=tmp_path / run)


def test_full_disk_under_runner_home(project: Project, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        runner = Runner(mnt / "home")
        root = project({"tick.py": TICK})
        f = Following(runner, "run", "--local", str(root / "tick.py"), "8", "3")
        f.wait_out("tick 2")
        with open(mnt / "filler", "wb", buffering=0) as fill:  # to the last byte
            try:
                while True:
                    fill.write(b"\0" * 65536)
            except OSError:
                pass
        code = f.finish()
        err = f.stderr
        no_traceback(err)
        assert code == 3, err  # the script's exit code, never 0
        assert "is full" in err or "stops here" in err, err  # the user heard about the disk
        assert ticks(f.out) == list(range(8)), f.out  # the terminal still got every line
        run = f.run
        s = runner("status", run)  # read-only commands work on the full disk
        assert s.code == 0 and run in s.out, s.err
        (mnt / "filler").unlink()  # room again: nothing stays "running"
        check_consistent(runner, run, status="failed", exit_code=3, upto=2, complete=True, dest=tmp_path / "dl")
    finally:
        (mnt / "filler").unlink(missing_ok=True)
        runner("history")  # takes over and removes a container a failed case left behind
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def truncate(db: Path) -> None:
    with open(db, "r+b") as fh:
        fh.truncate(4096)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def says_damaged(runner: Runner, *argv: str) -> None:
    r = runner(*argv)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert "is damaged" in r.err and "`runner repair`" in r.err and "permission" not in r.err, r.err


def test_truncated_runner_db(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"tick.py": TICK})
    earlier = run_name(
        runner("run", "--local", str(root / "tick.py"), "1", "0").err
    )  # history on disk, not only in the WAL
    f = Following(runner, "run", "--local", str(root / "tick.py"), "6", "3")
    f.wait_out("tick 2")
    db = runner.home / "runner.db"
    truncate(db)
    says_damaged(runner, "history")
    code = f.finish()
    run, err = f.run, f.stderr
    no_traceback(err)
    assert code == 3, err  # the script's code
    assert ticks(f.out) == list(range(6)), f.out
    # The follower's own connection may write its pages back at the end (SQLite's checkpoint from the WAL it
    # still holds open), or not: truncated again at rest, the damage is certain.
    truncate(db)
    for argv in (["history"], ["status", run], ["logs", run]):
        says_damaged(runner, *argv)
    r = runner("repair")
    assert r.code == 0, r.err
    check_consistent(runner, run, status="failed", exit_code=3, upto=5, complete=True, dest=tmp_path / "dl")
    check_consistent(runner, earlier, status="completed", exit_code=0, upto=0, complete=True, dest=tmp_path / "dl")


def test_oom_killed(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project({"hog.py": HOG})
    r = runner("run", "--local", "--memory", "64m", str(root / "hog.py"))
    no_traceback(r.err)
    assert r.code == 137, r.err
    assert "OOMKilled" in r.err, r.err
    run = run_name(r.err)
    check_consistent(
        runner, run, status="failed", exit_code=137, message="OOMKilled", upto=2, complete=False, dest=tmp_path / "dl"
    )


def test_sigint_during_the_build(runner: Runner, project: Project) -> None:
    # a base no build has seen, and pip (slower than uv): the install step runs long enough to be interrupted
    with fresh_base() as base:
        runner.env["RUNNER_INSTALLER"] = "pip"
        root = project(SLOW_BUILD)
        before = build_containers()
        f = Following(runner, "run", "--base-image", base, "--local", str(root / "tick.py"), "3", "0")
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
        doc: Any = runner.json("status", run)
        assert doc["status"] == "stopped" and doc["experiment_list"][0]["status"] == "stopped", doc
        # the engine's build stops too: its RUN container goes, and the image never appears
        wait_for(lambda: not (build_containers() & mine), timeout=30, what="the build step to go")
        image = next(ln.split()[1] for ln in f.err if ln.startswith("image "))
        time.sleep(5)
        assert subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode != 0
