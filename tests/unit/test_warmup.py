"""The first run of a home makes uv's tools image and finds the BuildKit CLI while the plan is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeEngine

from runner.warmup import warm_build_tools


def test_a_homes_first_run_warms_up_once_per_engine(tmp_path: Path) -> None:
    engine = FakeEngine()
    thread = warm_build_tools(engine, tmp_path / "cache")
    assert thread is not None
    thread.join(timeout=30)
    assert [ref for ref in engine.images if ref.startswith("runner-uv:")]
    assert warm_build_tools(engine, tmp_path / "cache") is None  # the marker: a later run costs a stat
    other = FakeEngine()
    other.host = "tcp://127.0.0.1:2375"
    again = warm_build_tools(other, tmp_path / "cache")  # another engine has not got it
    assert again is not None
    again.join(timeout=30)


def test_no_uv_no_warm_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_INSTALLER", "pip")
    assert warm_build_tools(FakeEngine(), tmp_path / "cache") is None
