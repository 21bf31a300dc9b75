"""lock_project end to end: non-index installs, the cache (hot path), options and failures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_deps_fixtures import FakeIndex, fakeenv  # noqa: E402  (same folder)

import runner.deps.scanstore as scanstore
from runner.deps import SHIP_DIR, lock_project
from runner.deps.index import IndexUnavailable
from runner.errors import DependencyError, UsageError

FakeDist = fakeenv.FakeDist


def _project(root: Path, files: dict[str, str]) -> tuple[str, ...]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return tuple(sorted(files))


@pytest.fixture()
def env_python(tmp_path: Path) -> Path:
    """A private fake environment (tests here change it)."""
    return fakeenv.build(tmp_path / "venv", fakeenv.DISTS[:16])


def test_local_wheel_editable_project_and_unreproducible_installs(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    wheel = tmp_path / "wheels" / "mywheel-0.2.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK")
    elsewhere = tmp_path / "elsewhere"
    dists = (
        FakeDist("six", "1.16.0", ("six.py",), top_level=True),
        FakeDist("mywheel", "0.2.0", ("mywheel/",), direct_url={"url": wheel.as_uri(), "archive_info": {}}),
        FakeDist(
            "gone",
            "1.0",
            ("gone/",),
            direct_url={"url": (tmp_path / "gone-1.0-py3-none-any.whl").as_uri(), "archive_info": {}},
        ),
        FakeDist(
            "proj",
            "0.1.0",
            ("__editable___proj_finder.py",),
            ("six",),
            direct_url={"url": project.as_uri(), "dir_info": {"editable": True}},
        ),
        FakeDist(
            "devlib", "0.5.0", ("devlib/",), direct_url={"url": elsewhere.as_uri(), "dir_info": {"editable": True}}
        ),
        FakeDist(
            "checkout",
            "2.0",
            ("checkout/",),
            direct_url={"url": elsewhere.as_uri(), "vcs_info": {"vcs": "git", "commit_id": "abc"}},
        ),
    )
    python = fakeenv.build(tmp_path / "venv", dists)
    # src layout: the project's package is importable only through its editable install
    site = fakeenv.site_packages(tmp_path / "venv")
    (site / "proj_pkg").mkdir()
    files = _project(
        project, {"run.py": "import mywheel, gone, devlib, checkout, proj_pkg\n", "src/proj_pkg/__init__.py": ""}
    )
    record = next(site.glob("proj-0.1.0.dist-info")) / "top_level.txt"
    record.write_text("proj_pkg\n")
    lock = lock_project(project, files, "run.py", python=str(python), offline=True)
    assert lock.text() == (f"gone==1.0\nmywheel @ file://{SHIP_DIR}/mywheel-0.2.0-py3-none-any.whl\nsix==1.16.0\n")
    assert [(s.source, s.target) for s in lock.ship] == [(str(wheel), "mywheel-0.2.0-py3-none-any.whl")]
    assert lock.install_project is True
    assert list(lock.warnings) == [
        f"checkout 2.0 is installed from the local checkout {elsewhere} and cannot be reproduced in the image: left out",
        f"devlib 0.5.0 is installed from the folder {elsewhere} (on this machine) and cannot be reproduced in the image: "
        "left out (publish it, or list it with --requirements)",
        f"gone 1.0 was installed from {tmp_path / 'gone-1.0-py3-none-any.whl'}, which no longer exists: "
        "pinned to the index version instead",
    ]
    assert list(lock.notes) == [
        f"mywheel 0.2.0 was installed from the file {wheel}: shipped into the build",
        "proj is this project (editable install): installed from the build context",
    ]


def test_cached_run_spawns_nothing_and_parses_nothing(
    env_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\nimport helpers\n", "helpers.py": "import six\n"})
    cache = tmp_path / "cache"
    first = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert first.text() == "pyyaml==6.0.1\nsix==1.16.0\n"

    def no_subprocess(*args: object, **kwargs: object) -> object:
        raise AssertionError("subprocess on the hot path")

    def no_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("parse on the hot path")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(scanstore, "scan_file_bytes", no_parse)
    again = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert again == first


def test_changed_file_is_rescanned_alone(env_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\n", "other.py": "import six\n"})
    cache = tmp_path / "cache"
    lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    parsed: list[str] = []
    real = scanstore.scan_file_bytes

    def counting(path: str, data: bytes) -> object:
        parsed.append(path)
        return real(path, data)

    monkeypatch.setattr(scanstore, "scan_file_bytes", counting)
    (project / "train.py").write_text("import yaml\nimport numpy\n")
    lock = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert parsed == [str(project / "train.py")]
    assert lock.text() == "numpy==1.26.4\npyyaml==6.0.1\nsix==1.16.0\n"


def test_install_in_the_environment_invalidates_the_probe(env_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\nimport newpkg\n"})
    cache = tmp_path / "cache"
    before = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert before.text() == "pyyaml==6.0.1\n"
    fakeenv.install(fakeenv.site_packages(env_python.parent.parent), FakeDist("newpkg", "3.1.4", ("newpkg/",)))
    after = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert after.text() == "newpkg==3.1.4\npyyaml==6.0.1\n"


def test_corrupt_cache_files_are_ignored(env_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\n"})
    cache = tmp_path / "cache"
    first = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    for f in (cache / "deps").iterdir():
        f.write_text('{"key": ' if f.name.startswith("lock-") else "garbage")
    again = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, offline=True)
    assert again == first
    names = sorted(f.name.split("-")[0] for f in (cache / "deps").iterdir())
    assert names == ["dist", "lock", "probe", "scan"]  # rewritten, no temporary files left


def test_imports_that_are_not_installed_never_reach_the_index(env_python: Path, tmp_path: Path) -> None:
    """Issue 9: an import that is not installed is not pinned (an index project of that name may be unrelated)."""
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\nimport wandb\n", "lib/b.py": "import common\n"})
    index = FakeIndex({"wandb": "0.16.1", "common": "0.1.2"})
    lock = lock_project(project, files, "train.py", python=str(env_python), index=index)
    assert lock.text() == "pyyaml==6.0.1\n"
    assert index.asked == []
    assert list(lock.warnings) == [
        "common (imported at lib/b.py:1) is not installed locally: not in the lock (the local run cannot import it "
        "either); pip install it locally, or declare it in requirements.txt",
        "wandb (imported at train.py:2) is not installed locally: not in the lock (the local run cannot import it "
        "either); pip install it locally, or declare it in requirements.txt",
    ]
    assert [(d.what, d.at, d.kind) for d in lock.dropped] == [
        ("common", "lib/b.py:1", "import"),
        ("wandb", "train.py:2", "import"),
    ]


def test_declared_but_not_installed_offline_and_unreachable_index(env_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import wandb\n", "requirements.txt": "wandb>=0.15\n"})
    offline = lock_project(project, files, "train.py", python=str(env_python), offline=True)
    assert offline.text() == "wandb>=0.15\n"  # kept as written: pip resolves it in the image
    assert list(offline.warnings) == [
        "requirements.txt:1: wandb is not installed locally and the index was not asked (offline): kept as written"
    ]

    class Down(FakeIndex):
        def newest(self, name: str, *, python_version: str, specifier: str = "") -> str | None:
            raise IndexUnavailable("https://index.test/simple: connection refused")

    down = lock_project(project, files, "train.py", python=str(env_python), index=Down({}))
    assert down.text() == "wandb>=0.15\n"
    assert list(down.warnings) == [
        "requirements.txt:1: wandb is not installed locally and the index could not be asked "
        "(https://index.test/simple: connection refused): kept as written"
    ]


def test_index_answers_for_declared_lines_are_cached(env_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(
        project,
        {
            "train.py": "import skimage.io\n",
            "b.py": "import wandb\n",
            "requirements.txt": "scikit-image>=0.20\nwandb\n",
        },
    )
    cache = tmp_path / "cache"
    index = FakeIndex({"scikit-image": "0.22.0", "wandb": "0.16.1"})
    lock = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, index=index)
    # asked only whether they exist: kept as declared, so the installer fits them to the exact pins
    assert lock.text() == "scikit-image>=0.20\nwandb\n"
    assert index.asked == ["scikit-image", "wandb"]
    assert [r.source.value for r in lock.requirements] == ["declared", "declared"]
    (project / "b.py").write_text("import wandb  # changed\n")
    second = FakeIndex({})
    lock2 = lock_project(project, files, "train.py", python=str(env_python), cache_dir=cache, index=second)
    assert second.asked == []
    assert lock2.text() == lock.text()


def test_requirements_option_is_evidence_whose_bounds_win(env_python: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\nimport six\n", "requirements.txt": "numpy==1.26.4\n"})
    custom = tmp_path / "pinned.txt"
    custom.write_text("PyYAML==6.0.1\n")
    lock = lock_project(project, files, "train.py", python=str(env_python), requirements=custom, offline=True)
    # the project's requirements.txt is not read; the imports still count
    assert lock.text() == "pyyaml==6.0.1\nsix==1.16.0\n"
    assert lock.origin == str(custom)
    assert list(lock.warnings) == []
    custom.write_text("PyYAML<6\n")
    lock = lock_project(project, files, "train.py", python=str(env_python), requirements=custom, offline=True)
    assert lock.text() == "pyyaml<6\nsix==1.16.0\n"
    assert [o.text() for o in lock.requirements[0].provenance] == [
        f"declared at {custom}:1",
        "import yaml at train.py:1",
    ]
    assert list(lock.warnings) == [
        f"{custom}:1 asks for pyyaml<6, but PyYAML 6.0.1 is installed locally: "
        "the --requirements bound wins, pip picks the version in the image"
    ]


def test_markers_are_evaluated_for_the_image(tmp_path: Path) -> None:
    dists = (
        FakeDist(
            "app", "1.0", ("app/",), ('winonly; sys_platform == "win32"', 'old; python_version < "3"', "core[fast]")
        ),
        FakeDist("core", "2.0", ("core/",), ('speedup; extra == "fast"', 'never; extra == "slow"')),
        FakeDist("speedup", "0.9", ("speedup/",)),
        FakeDist("winonly", "1.0", ("winonly/",)),
        FakeDist("never", "1.0", ("never/",)),
    )
    python = fakeenv.build(tmp_path / "venv", dists)
    project = tmp_path / "proj"
    files = _project(project, {"run.py": "import app\n"})
    lock = lock_project(project, files, "run.py", python=str(python), offline=True)
    assert lock.text() == "app==1.0\ncore==2.0\nspeedup==0.9\n"
    assert lock.warnings == ()


def test_bad_python_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import os\n"})
    with pytest.raises(UsageError, match="no such file"):
        lock_project(project, files, "train.py", python=str(tmp_path / "nope" / "python"), offline=True)
    fake = tmp_path / "notpython"
    fake.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    os.chmod(fake, 0o755)
    with pytest.raises(DependencyError, match="could not list its installed packages: broken"):
        lock_project(project, files, "train.py", python=str(fake), offline=True)


def test_lock_json_round_trip(env_python: Path, tmp_path: Path) -> None:
    from runner.deps.cache import lock_from_json, lock_to_json

    project = tmp_path / "proj"
    files = _project(project, {"train.py": "import yaml\ntry:\n    import nothere\nexcept ImportError:\n    pass\n"})
    lock = lock_project(project, files, "train.py", python=str(env_python), offline=True)
    assert lock_from_json(json.loads(json.dumps(lock_to_json(lock)))) == lock
    assert list(lock.notes) == [
        "nothere: imported only guarded or lazily (train.py:3) and not installed locally: left out"
    ]
