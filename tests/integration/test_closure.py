"""Issue 9 on the real Docker engine: the working directory and argv[0] mirror the local
launch, and the build context holds what the script reaches outside its folder."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from support import SUBFOLDER_SCRIPT, Runner, run_name, write_project

Project = Callable[[dict[str, str]], Path]


#: imports `common` from ../shared (put on sys.path with os.path) and reads ../data/train.txt
OUTSIDE_SCRIPT = """\
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared"))
from common import greeting
with open("../data/train.txt") as f:
    rows = f.read().split()
print("RESULT " + json.dumps([greeting(), rows, sys.argv[0], os.path.basename(os.getcwd())]))
"""


def _line(out: str, tag: str) -> str:
    return next(ln for ln in out.splitlines() if ln.startswith(tag + " "))[len(tag) + 1 :]


def _local(script: str, cwd: Path) -> str:
    """The same launch with the user's `python` (not runner's venv)."""
    return subprocess.run(["python", script], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_subfolder_launch_runs_in_the_subfolder(runner: Runner, project: Project, tmp_path: Path) -> None:
    root = project(
        {"sub/s.py": SUBFOLDER_SCRIPT, "sub/config.yaml": "lr: 0.5\n", "other/x.py": "import nothing_here\n"}
    )
    (root / ".git").mkdir()  # a git work tree: the root stays its top, the script runs in sub/
    local = _local("s.py", root / "sub")
    r = runner("run", "--local", "s.py", cwd=root / "sub")
    assert r.code == 0, r.err
    assert _line(r.out, "CONFIG") == _line(local, "CONFIG") == "lr: 0.5"
    assert json.loads(_line(r.out, "ARGV")) == json.loads(_line(local, "ARGV")) == ["s.py"]
    assert _line(r.out, "CWD") == "/project/sub"
    run = run_name(r.err)
    dest = tmp_path / "dl"
    a = runner("artifacts", run, "--download-dir", str(dest))
    assert a.code == 0, a.err
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [f"{run}/{run}-exp0/sub/out/result.txt"]  # laid out from the project root


def test_script_outside_git_reaches_shared_and_data(runner: Runner, tmp_path: Path) -> None:
    ws = write_project(
        tmp_path / "ws",
        {
            "proj/s.py": OUTSIDE_SCRIPT,
            "shared/common.py": "def greeting():\n    return 'hello from shared'\n",
            "data/train.txt": "1 2 3\n",
        },
    )
    local = _local("s.py", ws / "proj")
    r = runner("run", "--local", "s.py", cwd=ws / "proj")
    assert r.code == 0, r.err
    assert json.loads(_line(r.out, "RESULT")) == json.loads(_line(local, "RESULT"))
    assert json.loads(_line(r.out, "RESULT")) == ["hello from shared", ["1", "2", "3"], "s.py", "proj"]
    notes = [ln for ln in r.err.splitlines() if ln.startswith("note: build context widened")]
    assert notes == [
        f"note: build context widened from {ws / 'proj'} to {ws} to include"
        " ../shared (added to sys.path at s.py:2), ../data/train.txt (named at s.py:4)"
    ], r.err
