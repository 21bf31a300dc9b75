"""The first run of a home makes uv's tools image and finds the BuildKit CLI while the plan is made."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fakes import FakeEngine

from runner.uvbin import find_uv, recorded_sha256
from runner.warmup import warm_build_tools


def test_a_homes_first_run_warms_up_once_per_engine(tmp_path: Path) -> None:
    engine = FakeEngine()
    threads = warm_build_tools(engine, tmp_path / "cache")
    assert len(threads) == 2
    for thread in threads:
        thread.join(timeout=30)
    assert [ref for ref in engine.images if ref.startswith("runner-uv:")]
    assert warm_build_tools(engine, tmp_path / "cache") == []  # the marker: a later run costs a stat
    other = FakeEngine()
    other.host = "tcp://127.0.0.1:2375"
    again = warm_build_tools(other, tmp_path / "cache")  # another engine has not got it
    assert again
    for thread in again:
        thread.join(timeout=30)


def test_no_uv_no_warm_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")
    assert warm_build_tools(FakeEngine(), tmp_path / "cache") == []


def test_uvs_digest_comes_from_its_record_only_for_the_recorded_file(tmp_path: Path) -> None:
    uv_bin, _ = find_uv()
    assert uv_bin is not None
    assert recorded_sha256(uv_bin) == hashlib.sha256(uv_bin.read_bytes()).hexdigest()
    copy = tmp_path / "uv"
    shutil.copy(uv_bin, copy)
    assert recorded_sha256(copy) is None  # another file: hashed, not taken on trust
