"""Real projects run unchanged on the real engine (issue 9): the tutorial-shaped repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from support import Runner, run_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deps"


def test_tutorial_repo_with_module_names_in_requirements_builds_and_runs(runner: Runner, tmp_path: Path) -> None:
    # requirements.txt lists "sys os subprocess pkg_resources time": module names, not distributions.
    root = tmp_path / "argecho-tutorial"
    shutil.copytree(FIXTURES / "declared_modules" / "project", root)
    r = runner("run", "--local", str(root / "argecho.py"), "--arg1", "1", "--arg2", "2")
    assert r.code == 0, r.err
    assert "argecho: --arg1 1 --arg2 2" in r.out
    for line, module in ((1, "sys"), (2, "os"), (3, "subprocess"), (5, "time")):
        assert (
            f"requirements.txt:{line}: '{module}' names the standard-library module {module}, not a distribution: dropped"
            in r.err
        )
    assert "requirements.txt:4: 'pkg_resources' names the module pkg_resources of setuptools" in r.err
    run = run_name(r.err)
    lock = (runner.home / "runs" / run / "requirements.lock").read_text()
    assert [line.split("==")[0] for line in lock.splitlines()] == ["setuptools"]  # from `import pkg_resources`
    dest = tmp_path / "dl"
    a = runner("artifacts", run, "--download-dir", str(dest))
    assert a.code == 0, a.err
    logs = sorted(p.name for p in (dest / run / f"{run}-exp0" / "logs").glob("*.txt"))
    assert len(logs) == 1 and logs[0].startswith("argecho-")
    text = (dest / run / f"{run}-exp0" / "logs" / logs[0]).read_text()
    assert text.startswith("args=--arg1 1 --arg2 2 system=Linux setuptools=")
