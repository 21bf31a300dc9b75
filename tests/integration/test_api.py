"""The Python API (`import runner`) on the real local Docker engine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from support import BASE_IMAGE, write_project

import runner

ECHO = """\
import hashlib, json, sys, time
time.sleep(float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0)
print(json.dumps([[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in sys.argv[1:]]))
with open("result.txt", "w") as f:
    f.write(" ".join(sys.argv[1:3]))
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_submit_a_sweep_wait_status_logs_artifacts(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"echo.py": ECHO})
    run = runner.submit(
        root / "echo.py",
        args=["--lr", "[0.1, 0.2, 0.3]"],
        sweep=True,
        max_parallel=2,
        local=True,
        base_image=BASE_IMAGE,
    )
    assert run.wait(timeout=120) == "completed"
    assert run.status() == "completed"
    assert run.experiments == [f"{run.name}-exp{i}" for i in range(3)]
    lines = run.logs()
    # several experiments: each line starts with its experiment's name
    for i in range(3):
        mine = [ln for ln in lines if ln.startswith(f"{run.name}-exp{i} [stdout] [")]
        assert len(mine) == 1 and "+00:00] [[" in mine[0]
    files = run.artifacts(tmp_path / "dl")
    assert files == {f"{run.name}-exp{i}": ["result.txt"] for i in range(3)}
    got = sorted((tmp_path / "dl" / run.name / f"{run.name}-exp{i}" / "result.txt").read_text() for i in range(3))
    assert got == ["--lr 0.1", "--lr 0.2", "--lr 0.3"]
    assert [r.name for r in runner.runs()] == [run.name]


def test_arguments_far_longer_than_a_command_line_arrive_intact(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"echo.py": ECHO})
    huge = "x" * 300_000 + "ü"  # more than the 128 KiB Linux allows one exec argument
    args = ["--blob", huge, "", "a b"]
    run = runner.submit(root / "echo.py", args=args, local=True, base_image=BASE_IMAGE)
    assert run.wait(timeout=120) == "completed"
    out = next(ln for ln in run.logs() if ln.startswith("[stdout]") and "[[" in ln)
    seen = json.loads(out.split("] ", 2)[2])
    assert seen == [[len(a), hashlib.sha256(a.encode()).hexdigest()] for a in args]


def test_stop_from_the_api(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", {"echo.py": ECHO})
    run = runner.submit(root / "echo.py", args=["--sleep", "300"], local=True, base_image=BASE_IMAGE)
    for _ in range(100):
        if run.status() == "running":
            break
        import time

        time.sleep(0.2)
    assert run.stop() == [f"{run.name}-exp0"]
    assert run.wait(timeout=60) == "stopped"


def test_typecast() -> None:
    assert runner.typecast(["4.2", "42", "[4,2]", "--lr", "abc"]) == [4.2, 42, [4, 2], "--lr", "abc"]


def test_argument_values_that_are_not_text_are_converted(tmp_path: Path) -> None:
    from support import Runner

    root = write_project(tmp_path / "proj", {"echo.py": ECHO})
    run = runner.submit(root / "echo.py", args=["--lr", 0.1, 3, True], local=True, base_image=BASE_IMAGE)
    assert run.wait(timeout=120) == "completed"
    out = next(ln for ln in run.logs() if ln.startswith("[stdout]") and "[[" in ln)
    assert json.loads(out.split("] ", 2)[2]) == [
        [len(a), hashlib.sha256(a.encode()).hexdigest()] for a in ["--lr", "0.1", "3", "True"]
    ]
    cli = Runner(tmp_path / "home")
    r = cli("status", run.name)
    assert r.code == 0 and "0.1" in r.out, r.err
    # --download-dir: missing parents are made; a file is refused in one line
    assert run.artifacts(tmp_path / "a" / "b" / "c") == {f"{run.name}-exp0": ["result.txt"]}
    (tmp_path / "file").write_text("")
    r = cli("artifacts", run.name, "--download-dir", str(tmp_path / "file" / "x"))
    assert r.code == 2 and "is a file, not a folder" in r.err and r.err.count("\n") == 1
    r = cli("artifacts", run.name, "--download-dir", "/proc/runner-test")
    assert r.code == 2 and "cannot make the folder" in r.err and r.err.count("\n") == 1
