"""Issue 9 on the real cluster: `cd sub && runner run s.py` runs in /project/sub with argv[0] s.py."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from e2e_cluster import KubeRunner
from support import SUBFOLDER_SCRIPT, run_name

Project = Callable[[dict[str, str]], Path]


def _line(out: str, tag: str) -> str:
    return next(ln for ln in out.splitlines() if ln.startswith(tag + " "))[len(tag) + 1 :]


def test_subfolder_launch_runs_in_the_subfolder(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project({"sub/s.py": SUBFOLDER_SCRIPT, "sub/config.yaml": "lr: 0.5\n"})
    (root / ".git").mkdir()
    local = subprocess.run(["python", "s.py"], cwd=root / "sub", capture_output=True, text=True, check=True).stdout
    r = kr("run", "s.py", cwd=root / "sub")
    assert r.code == 0, r.err
    assert _line(r.out, "CONFIG") == _line(local, "CONFIG") == "lr: 0.5"
    assert json.loads(_line(r.out, "ARGV")) == json.loads(_line(local, "ARGV")) == ["s.py"]
    assert _line(r.out, "CWD") == "/project/sub"
    run = run_name(r.err)
    got = kr("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert got.code == 0, got.err
    assert (tmp_path / "dl" / run / f"{run}-exp0" / "sub" / "out" / "result.txt").read_text() == "done\n"
