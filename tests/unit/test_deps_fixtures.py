"""Fixture projects with the hard cases of the issue, each with its exact expected lock.

Every ``tests/fixtures/deps/<case>/`` holds ``project/`` (the person's project),
``expected.lock`` (the exact ``requirements.lock``) and ``expected.json`` (script,
origin, warnings, notes, and the kind of every import name), compared exactly.
The environment is a real venv with fake distributions (``fakeenv.py``), probed
end to end; the package index is a fake (no network).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from runner.deps import lock_project
from runner.project import list_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deps"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def _load_fakeenv():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("deps_fakeenv", FIXTURES / "fakeenv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fakeenv = _load_fakeenv()


class FakeIndex:
    """The package index, as a dict: project -> newest version."""

    where = "https://index.test/simple"

    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions
        self.asked: list[str] = []

    def newest(self, name: str, *, python_version: str, specifier: str = "") -> str | None:
        from packaging.specifiers import SpecifierSet

        self.asked.append(name)
        version = self.versions.get(name)
        return version if version is not None and SpecifierSet(specifier).contains(version) else None


INDEX_VERSIONS = {"wandb": "0.16.1", "requests": "2.31.0"}


@pytest.fixture(scope="session")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakeenv.build(tmp_path_factory.mktemp("fakeenv") / "venv")


def _prepare(case: str, tmp_path: Path) -> Path:
    return Path(fakeenv.copy_fixture(FIXTURES / case / "project", tmp_path / case))


@pytest.mark.parametrize("case", CASES)
def test_fixture_lock(case: str, fake_python: Path, tmp_path: Path) -> None:
    expected = json.loads((FIXTURES / case / "expected.json").read_text())
    project = _prepare(case, tmp_path)
    files = list_files(project).files
    lock = lock_project(
        project,
        files,
        expected["script"],
        python=str(fake_python),
        index=FakeIndex(INDEX_VERSIONS),
    )
    assert lock.text() == (FIXTURES / case / "expected.lock").read_text()
    assert lock.origin == expected["origin"]
    assert lock.install_project == expected["install_project"]
    assert list(lock.warnings) == expected["warnings"]
    assert list(lock.notes) == expected["notes"]
    assert {i.name: i.kind.value for i in lock.imports} == expected["imports"]
    assert [s.target for s in lock.ship] == expected["ship"]
    if "dropped" in expected:  # issue 9: every line left out, with its reason
        assert [[d.what, d.at, d.reason, d.kind] for d in lock.dropped] == expected["dropped"]
    if "provenance" in expected:  # issue 9: where every lock line came from
        assert {r.name: [o.text() for o in r.provenance] for r in lock.requirements} == expected["provenance"]
    assert lock.python_version.startswith("3.")
