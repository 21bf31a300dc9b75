"""Real projects run unchanged on the real cluster (issue 9): the tutorial-shaped repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2e_cluster import KubeRunner
from support import run_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deps"


def test_tutorial_repo_with_module_names_in_requirements_runs_on_the_cluster(kr: KubeRunner, tmp_path: Path) -> None:
    root = tmp_path / "argecho-tutorial"
    shutil.copytree(FIXTURES / "declared_modules" / "project", root)
    r = kr("run", "--cpus", "0.5", str(root / "argecho.py"), "--arg1", "1", "--arg2", "2")
    assert r.code == 0, r.err
    assert "argecho: --arg1 1 --arg2 2" in r.out
    assert "requirements.txt:2: 'os' names the standard-library module os, not a distribution: dropped" in r.err
    run = run_name(r.err)
    got = kr("artifacts", run, "--download-dir", str(tmp_path / "dl"))
    assert got.code == 0, got.err
    logs = sorted((tmp_path / "dl" / run / f"{run}-exp0" / "logs").glob("argecho-*.txt"))
    assert len(logs) == 1
    assert logs[0].read_text().startswith("args=--arg1 1 --arg2 2 system=Linux setuptools=")
