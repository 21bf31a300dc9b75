"""The base image's Python against the lock (pure), its cache, and Requires-Python from the probe."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_deps_fixtures import fakeenv  # noqa: E402  (same folder)

from runner.basepython import check, image_python
from runner.deps import lock_project
from runner.deps.model import Lock, PinSource, Requirement
from runner.deps.pycheck import check_python


def _lock(pins: dict[str, tuple[str, str | None]], local: str = "3.11.7") -> Lock:
    """name -> (version, Requires-Python)"""
    return Lock(
        requirements=tuple(
            Requirement(name=n, version=v, line=f"{n}=={v}", source=PinSource.IMPORT)
            for n, (v, _) in sorted(pins.items())
        ),
        python_version=local,
        requires_python=tuple(sorted((n, rp) for n, (_, rp) in pins.items() if rp)),
    )


def test_a_requires_python_the_image_does_not_meet_is_an_error_naming_both_versions() -> None:
    lock = _lock({"needs5": ("1.2.0", ">=3.11.5"), "six": ("1.16.0", ">=2.7, !=3.0.*")})
    c = check_python(lock, "3.11.2", image="runner-python:3.11")
    assert c.warnings == ()
    [error] = c.errors
    assert "needs5==1.2.0 (Requires-Python >=3.11.5)" in error
    assert "six" not in error
    assert "runner-python:3.11 has Python 3.11.2" in error and "local Python 3.11.7" in error
    assert "--base-image" in error and "python:3.11-slim" in error and "--python" in error
    assert "does not fit" in c.summary


def test_same_minor_version_and_every_requirement_met_is_ok() -> None:
    lock = _lock({"needs5": ("1.2.0", ">=3.11.5"), "numpy": ("1.26.4", ">=3.9"), "plain": ("1.0", None)})
    c = check_python(lock, "3.11.9", image="python:3.11-slim")
    assert (c.errors, c.warnings) == ((), ())
    assert c.summary == "image 3.11.9 (python:3.11-slim), local 3.11.7: ok"


def test_another_minor_version_is_a_warning() -> None:
    c = check_python(_lock({"numpy": ("1.26.4", ">=3.9")}), "3.12.1", image="python:3.12-slim")
    assert c.errors == ()
    [warning] = c.warnings
    assert "Python 3.12.1" in warning and "local Python 3.11.7" in warning and "python:3.11-slim" in warning


def test_an_older_image_fails_many_requirements_in_one_line() -> None:
    pins = {f"pkg{i}": ("1.0", ">=3.9") for i in range(8)}
    c = check_python(_lock(pins), "3.8.10", image="old:1")
    [error] = c.errors
    assert "pkg0==1.0" in error and "pkg4==1.0" in error and "pkg5" not in error and "and 3 more" in error
    assert len(c.warnings) == 1  # 3.8 is not 3.11 either


def test_prereleases_and_upper_bounds_and_bad_metadata() -> None:
    lock = _lock({"capped": ("0.1", "<3.11"), "broken": ("1.0", "not a specifier")})
    c = check_python(lock, "3.11.0rc1", image="img")
    [error] = c.errors
    assert "capped==0.1 (Requires-Python <3.11)" in error and "broken" not in error  # pip ignores bad metadata too
    odd = check_python(lock, "three", image="img")
    assert odd.errors == () and "not a version number" in odd.warnings[0]


class CountingEngine:
    def __init__(self, version: str | None) -> None:
        self.version = version
        self.asked: list[str] = []

    def image_python(self, ref: str) -> str | None:
        self.asked.append(ref)
        return self.version


def test_the_image_is_asked_once_per_image_id_and_the_check_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = CountingEngine("3.11.2")
    assert image_python(tmp_path, engine, "sha256:aa") == "3.11.2"
    assert image_python(tmp_path, engine, "sha256:aa") == "3.11.2"
    assert engine.asked == ["sha256:aa"]
    silent = CountingEngine(None)  # no PYTHON_VERSION, no python3: remembered as unknown too
    assert image_python(tmp_path, silent, "sha256:bb") is None
    assert image_python(tmp_path, silent, "sha256:bb") is None
    assert silent.asked == ["sha256:bb"]

    lock = _lock({"needs5": ("1.2.0", ">=3.11.5")})
    first = check(tmp_path, lock, "3.11.2", image="runner-python:3.11")
    import runner.deps.pycheck as pycheck

    def fail(*a: object, **k: object) -> object:
        raise AssertionError("checked again")

    monkeypatch.setattr(pycheck, "check_python", fail)
    assert check(tmp_path, lock, "3.11.2", image="runner-python:3.11") == first
    with pytest.raises(AssertionError):  # other inputs: a new check
        check(tmp_path, lock, "3.11.9", image="runner-python:3.11")


def test_the_lock_carries_requires_python_of_the_installed_versions(tmp_path: Path) -> None:
    python = fakeenv.build(
        tmp_path / "venv",
        (
            fakeenv.FakeDist("needs5", "1.2.0", ("needs5/",), ("helper",), requires_python=">=3.11.5"),
            fakeenv.FakeDist("helper", "0.3", ("helper/",), requires_python=">=3.8"),
            fakeenv.FakeDist("plain", "1.0", ("plain/",)),
        ),
    )
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text("import needs5\nimport plain\n")
    lock = lock_project(root, ["train.py"], "train.py", python=str(python), offline=True)
    assert lock.text() == "helper==0.3\nneeds5==1.2.0\nplain==1.0\n"
    assert lock.requires_python == (("helper", ">=3.8"), ("needs5", ">=3.11.5"))
    assert [e for e in check_python(lock, "3.11.2", image="img").errors if "needs5==1.2.0" in e]
