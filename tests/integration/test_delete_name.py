"""`runner delete` and `runner run --name` on the real Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support import Runner

Project = Callable[[dict[str, str]], Path]

WRITER = """\
import os, sys
os.makedirs("out", exist_ok=True)
open(f"out/{sys.argv[1]}.txt", "w").write("made")
print("wrote", sys.argv[1])
"""


def test_name_names_the_run_and_is_unique_and_validated(runner: Runner, project: Project) -> None:
    root = project({"w.py": WRITER})
    r = runner("run", "--local", "--name", "first-try", str(root / "w.py"), "a")
    assert r.code == 0, r.err
    assert "run        first-try" in r.err
    assert [h["run"] for h in runner.json("history")] == ["first-try"]
    assert runner("logs", "first-try-exp0").out.strip().endswith("wrote a")
    again = runner("run", "--local", "--name", "first-try", str(root / "w.py"), "b")
    assert again.code == 2 and "exists already" in again.err and len(again.err.strip().splitlines()) == 1, again.err
    for bad in ("Bad_Name", "x" * 41, "ends-exp3", "-dash"):
        r = runner("run", "--local", "--name", bad, str(root / "w.py"), "b")
        assert r.code == 2 and "--name" in r.err and "Traceback" not in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1, r.err
    assert len(runner.json("history")) == 1  # nothing recorded for the refused ones


def test_delete_removes_logs_artifacts_history_and_containers(
    runner: Runner, project: Project, docker_api: object
) -> None:
    root = project({"w.py": WRITER})
    assert runner("run", "--local", "--name", "sweepy", "--sweep", str(root / "w.py"), "['a', 'b']").code == 0
    assert runner("run", "--local", "--name", "keeper", str(root / "w.py"), "k").code == 0
    run_dir = runner.home / "runs" / "sweepy"
    assert (run_dir / "sweepy-exp1.log").is_file() and (run_dir / "artifacts" / "sweepy-exp1").is_dir()

    # not on a terminal and no --yes: refused, nothing removed
    r = runner("delete", "sweepy")
    assert r.code == 2 and "--yes" in r.err and run_dir.is_dir()

    one = runner.json("delete", "sweepy-exp1", "--yes")
    assert one == {
        "run": "sweepy",
        "target": "local",
        "experiments": ["sweepy-exp1"],
        "run_deleted": False,
        "notes": [],
    }
    assert not (run_dir / "sweepy-exp1.log").exists() and not (run_dir / "artifacts" / "sweepy-exp1").exists()
    assert (run_dir / "sweepy-exp0.log").is_file()
    status = runner.json("status", "sweepy")
    assert [e["name"] for e in status["experiment_list"]] == ["sweepy-exp0"]

    r = runner("delete", "sweepy", "--yes")
    assert r.code == 0 and r.out.strip() == "deleted sweepy (local)", r.err
    assert not run_dir.exists()
    assert [h["run"] for h in runner.json("history")] == ["keeper"]
    missing = runner("delete", "sweepy", "--yes")
    assert missing.code == 2 and "named 'sweepy'" in missing.err, missing.err
    # no container of the deleted run is left in the engine
    names = [c.name for c in docker_api.containers.list(all=True)]  # type: ignore[attr-defined]
    assert not [n for n in names if "sweepy" in n]
    # the name is free again
    assert runner("run", "--local", "--name", "sweepy", str(root / "w.py"), "c").code == 0


def test_delete_asks_on_a_terminal(runner: Runner, project: Project) -> None:
    root = project({"w.py": WRITER})
    assert runner("run", "--local", "--name", "asked", str(root / "w.py"), "a").code == 0
    for answer, code in (("n\n", 1), ("y\n", 0)):
        master, slave = os.openpty()
        p = subprocess.Popen(
            [sys.executable, "-m", "runner", "delete", "asked"],
            env=runner.env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        os.write(master, answer.encode())
        out, err = p.communicate(timeout=60)
        os.close(master)
        assert p.returncode == code, err
        assert "delete asked" in err
    assert runner.json("history") == []
