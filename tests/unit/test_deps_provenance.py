"""`runner inspect --json` says where every lock line came from and why lines were dropped (issue 9)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_deps_fixtures import FIXTURES, fakeenv  # noqa: E402  (same folder)


@pytest.fixture(scope="module")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fakeenv.build(tmp_path_factory.mktemp("provenance") / "venv"))


def _inspect(project: Path, script: str, python: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNNER_HOME": str(home), "RUNNER_BASE_IMAGE": "python:3.11-slim"}
    return subprocess.run(
        [sys.executable, "-m", "runner", "inspect", *extra, "--python", str(python), str(project / script)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_inspect_json_has_provenance_and_dropped_lines(fake_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(FIXTURES / "declared_modules" / "project", project)
    (project / "more.py").write_text("import lazylib\nimport boostlib\nimport wandb\n")
    (project / "argecho.py").write_text((project / "argecho.py").read_text() + "import more  # noqa\n")
    r = _inspect(project, "argecho.py", fake_python, tmp_path / "home", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    by_line = {p["line"]: p["from"] for p in doc["provenance"]}
    assert by_line == {
        "boostlib==2.0.3": ["import boostlib at more.py:2"],
        "joblib==1.3.2": ["transitive via scikit-learn"],
        "lazylib==0.4.0": ["import lazylib at more.py:1"],
        "numpy==1.26.4": ["transitive via boostlib", "transitive via scikit-learn", "transitive via scipy"],
        "pyyaml==6.0.1": ["optional of lazylib (imported at lazylib/io.py:5)"],
        "scikit-learn==1.3.2": ["optional of boostlib (extra scikit-learn)"],
        "scipy==1.11.4": ["transitive via scikit-learn"],
        "setuptools==68.2.2": ["import pkg_resources at argecho.py:7", "declared at requirements.txt:4"],
        "threadpoolctl==3.2.0": ["transitive via scikit-learn"],
    }
    assert "".join(f"{line}\n" for line in by_line) == doc["lock"]  # every lock line has its provenance
    # the structured form: kind / at / via / detail
    sk = next(r for r in doc["requirements"] if r["name"] == "scikit-learn")
    assert sk["source"] == "optional"
    assert sk["provenance"] == [{"kind": "optional", "at": "", "via": "boostlib", "detail": "extra scikit-learn"}]
    assert [(d["what"], d["at"], d["kind"], d["reason"]) for d in doc["dropped"]] == [
        ("sys", "requirements.txt:1", "declared", "names the standard-library module sys"),
        ("os", "requirements.txt:2", "declared", "names the standard-library module os"),
        ("subprocess", "requirements.txt:3", "declared", "names the standard-library module subprocess"),
        (
            "pkg_resources",
            "requirements.txt:4",
            "declared",
            "names the module pkg_resources of setuptools, pinned instead",
        ),
        ("time", "requirements.txt:5", "declared", "names the standard-library module time"),
        ("wandb", "more.py:3", "import", "not installed locally"),
    ]
    # the human form, briefly
    r = _inspect(project, "argecho.py", fake_python, tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert "  scikit-learn==1.3.2                      optional of boostlib (extra scikit-learn)\n" in r.stdout
    assert "  setuptools==68.2.2                       import pkg_resources at argecho.py:7 (+1)\n" in r.stdout
    assert "  dropped os (requirements.txt:2): names the standard-library module os\n" in r.stdout
    assert "  dropped wandb (more.py:3): not installed locally\n" in r.stdout
