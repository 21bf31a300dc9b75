"""Following a local experiment through trouble, behind the engine adapter's seam.

The engine here is a stand-in that loses its connection on cue (a restart of the real
shared engine would stop every other user's containers); history is the real SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runner.targets.local as local
from runner.adapters.docker_engine import ContainerEnd
from runner.errors import EngineError
from runner.home import Home
from runner.logs import LogLine, epoch
from runner.model import ExpState
from runner.store import Store

LINES = [LogLine("stdout", f"2026-01-01T00:00:0{i}.000000+00:00", f"line {i}") for i in range(6)]


class Engine:
    """Streams LINES; the first stream breaks after ``break_after`` lines; ``down`` more state() calls fail."""

    def __init__(self, *, break_after: int | None, down: int, exit_code: int = 143) -> None:
        self.break_after, self.down, self.exit_code = break_after, down, exit_code
        self.removed: list[str] = []
        self.since: list[int | None] = []

    def follow_logs(self, cid: str, *, since: int | None = None) -> Iterator[LogLine]:
        self.since.append(since)
        for i, line in enumerate(LINES):
            if since is not None and int(epoch(line.time)) < since:
                continue
            if self.break_after is not None and i == self.break_after:
                self.break_after = None
                raise EngineError("logs of c0ffee: lost the connection to the Docker engine: reset")
            yield line

    def state(self, cid: str) -> dict[str, Any] | None:
        if self.down:
            self.down -= 1
            raise EngineError("the Docker engine is not running or not reachable")
        return {"Running": False}

    def wait(self, cid: str) -> ContainerEnd:
        if self.down:
            raise EngineError("the Docker engine is not running or not reachable")
        return ContainerEnd(exit_code=self.exit_code, oom_killed=False, error="", upper_dir="/nonexistent")

    def remove(self, cid: str) -> None:
        self.removed.append(cid)

    answering = True

    def answers(self) -> bool:
        return self.answering


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.time, "sleep", lambda s: None)


def _target(tmp_path: Path, engine: Engine, **kw: Any) -> tuple[local.LocalTarget, Store, str]:
    home = Home(tmp_path / "home")
    store = Store(home.db, records=home.runs)
    run = store.create_run(
        make_name=lambda: "a-b-100",
        project="p",
        root="/p",
        script="q.py",
        args=[],
        target="local",
        options={},
        experiments=[(["python3", "q.py"], {})],
    )
    name = f"{run.name}-exp0"
    store.update_experiment(name, handle="c0ffee", state=ExpState.RUNNING)
    return local.LocalTarget(home, store, engine, **kw), store, name  # type: ignore[arg-type]


def test_an_engine_outage_is_waited_out_and_nothing_is_lost(tmp_path: Path) -> None:
    engine = Engine(break_after=3, down=4)
    target, store, name = _target(tmp_path, engine)
    seen = list(target.follow(name))
    out = [ln.text for ln in seen if ln.stream == "stdout"]
    assert out == [f"line {i}" for i in range(6)]  # every line once, none repeated after the reconnect
    notices = [ln.text for ln in seen if ln.stream == local.NOTICE]
    assert "lost the Docker engine" in notices[0] and "waiting up to 300 s" in notices[0]
    assert "answers again" in notices[1]
    assert engine.since == [None, int(epoch(LINES[2].time))]  # from the second of the last line seen
    exp = store.get_experiment(name)
    assert (exp.state, exp.exit_code) == (ExpState.FAILED, 143)  # what the engine says, with the cause named
    assert exp.message is not None and "stopped by the Docker engine going away" in exp.message
    assert engine.removed == ["c0ffee"]
    log = target.home.experiment_log("a-b-100", name).read_text()
    assert log.count("line 3") == 1 and "[runner]" in log


def test_an_engine_that_does_not_come_back_is_a_failure_not_a_success(tmp_path: Path) -> None:
    engine = Engine(break_after=2, down=10**6, exit_code=0)
    target, store, name = _target(tmp_path, engine, engine_wait=0.0)
    seen = list(target.follow(name))
    assert "did not come back" in seen[-1].text
    exp = store.get_experiment(name)
    assert exp.state is ExpState.FAILED and exp.exit_code is None
    assert engine.removed == []  # kept: its end may still be learned


def test_a_full_disk_cuts_the_log_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "DISK_RESERVE", 2**62)  # "less than that is free": the disk is full
    engine = Engine(break_after=None, down=0, exit_code=3)
    target, store, name = _target(tmp_path, engine)
    seen = list(target.follow(name))
    assert [ln.text for ln in seen if ln.stream == "stdout"] == [f"line {i}" for i in range(6)]
    notices = [ln.text for ln in seen if ln.stream == local.NOTICE]
    assert len(notices) == 1 and "stops here" in notices[0] and "left on the disk" in notices[0]
    exp = store.get_experiment(name)
    assert (exp.state, exp.exit_code) == (ExpState.FAILED, 3)
    assert engine.removed == ["c0ffee"]


def test_history_that_cannot_be_written_keeps_the_end_and_the_container(tmp_path: Path) -> None:
    engine = Engine(break_after=None, down=0, exit_code=3)
    target, store, name = _target(tmp_path, engine)
    store._db.execute("PRAGMA query_only = 1")  # every write now fails, as on a full disk
    list(target.follow(name))
    assert target.ends[name].exit_code == 3 and target.ends[name].state is ExpState.FAILED
    assert engine.removed == [] and any("cannot record how" in n for n in target.notes)


@pytest.mark.parametrize("answering", [False, True], ids=["engine-stopping", "engine-fine"])
def test_an_end_the_stopping_engine_caused_names_the_engine(tmp_path: Path, answering: bool) -> None:
    # a stopping dockerd closes its socket, then stops the container: the stream itself ends cleanly
    engine = Engine(break_after=None, down=0, exit_code=143)
    engine.answering = answering
    target, store, name = _target(tmp_path, engine)
    list(target.follow(name))
    exp = store.get_experiment(name)
    assert exp.exit_code == 143 and exp.state is ExpState.FAILED
    assert ("stopped by the Docker engine going away" in (exp.message or "")) is not answering, exp.message
    assert engine.removed == ["c0ffee"]
