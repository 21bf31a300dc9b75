"""Run history in an embedded SQLite database.

One database per user (``$RUNNER_HOME/runner.db``).  WAL mode and short
immediate transactions let several ``runner`` processes write at once; run names
are allocated by the primary key, so two parallel runs never share one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from runner.errors import NotFoundError, StoreError
from runner.names import experiment_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name        TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    root        TEXT NOT NULL,
    script      TEXT NOT NULL,
    args        TEXT NOT NULL,          -- JSON list
    target      TEXT NOT NULL,
    image       TEXT,
    cached      INTEGER,
    created_at  REAL NOT NULL,
    options     TEXT NOT NULL,          -- JSON object: resources, env names, ...
    build_log   TEXT
);
CREATE TABLE IF NOT EXISTS experiments (
    name            TEXT PRIMARY KEY,
    run             TEXT NOT NULL REFERENCES runs(name),
    idx             INTEGER NOT NULL,
    command         TEXT NOT NULL,      -- JSON list
    params          TEXT NOT NULL,      -- JSON object
    state           TEXT NOT NULL,
    handle          TEXT,               -- container id (local) or Job name (kubernetes)
    exit_code       INTEGER,
    message         TEXT,
    created_at      REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    owner_pid       INTEGER,            -- the process that follows it and collects logs and artifacts
    stop_requested  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS experiments_run ON experiments(run, idx);
CREATE INDEX IF NOT EXISTS experiments_state ON experiments(state);
"""


class ExpState(str, Enum):
    QUEUED = "queued"
    BUILDING = "building"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        return self in (ExpState.QUEUED, ExpState.BUILDING, ExpState.RUNNING)


@dataclass(frozen=True)
class RunRecord:
    name: str
    project: str
    root: str
    script: str
    args: tuple[str, ...]
    target: str
    image: str | None
    cached: bool | None
    created_at: float
    options: dict[str, Any] = field(default_factory=dict)
    build_log: str | None = None


@dataclass(frozen=True)
class ExperimentRecord:
    name: str
    run: str
    index: int
    command: tuple[str, ...]
    params: dict[str, Any]
    state: ExpState
    handle: str | None
    exit_code: int | None
    message: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner_pid: int | None
    stop_requested: bool


@dataclass(frozen=True)
class RunSummary:
    run: RunRecord
    experiments: tuple[ExperimentRecord, ...]

    def count(self, state: ExpState) -> int:
        return sum(1 for e in self.experiments if e.state is state)

    @property
    def active(self) -> bool:
        return any(e.state.active for e in self.experiments)

    @property
    def state(self) -> ExpState:
        """The run's state, from its experiments: the most pressing one wins."""
        states = {e.state for e in self.experiments}
        for s in (ExpState.BUILDING, ExpState.RUNNING, ExpState.QUEUED, ExpState.FAILED, ExpState.STOPPED):
            if s in states:
                return s
        return ExpState.COMPLETED


_RUN_FIELDS = {"image", "cached", "build_log", "options"}
_EXP_FIELDS = {
    "state", "handle", "exit_code", "message", "started_at", "finished_at", "owner_pid", "stop_requested",
}  # fmt: skip


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit; transactions are explicit (BEGIN IMMEDIATE) where several statements must agree
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            self._lock = threading.RLock()
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the history database {path}: {e}", hint="check the file's permissions") from e

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # one connection, shared by the threads that follow a sweep's experiments: one transaction at a time
        with self._lock:
            yield from self._tx_unlocked()

    def _tx_unlocked(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"history database error: {e}") from e

    # -- writing -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        make_name: Callable[[], str],
        project: str,
        root: str,
        script: str,
        args: Sequence[str],
        target: str,
        options: dict[str, Any],
        experiments: Sequence[tuple[Sequence[str], dict[str, Any]]],
        state: ExpState = ExpState.BUILDING,
        owner_pid: int | None = None,
    ) -> RunRecord:
        """Record a new run and its experiments under a fresh unique name.

        ``owner_pid`` is the process that builds and launches them: from the first
        moment they are recorded, somebody alive answers for them.
        """
        now = time.time()
        for _ in range(50):
            name = make_name()
            try:
                with self._tx() as db:
                    db.execute(
                        "INSERT INTO runs (name, project, root, script, args, target, created_at, options)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (name, project, root, script, json.dumps(list(args)), target, now, json.dumps(options)),
                    )
                    db.executemany(
                        "INSERT INTO experiments (name, run, idx, command, params, state, created_at, owner_pid)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (experiment_name(name, i), name, i, json.dumps(list(cmd)), json.dumps(params), state.value,
                             now, owner_pid)  # fmt: skip
                            for i, (cmd, params) in enumerate(experiments)
                        ],
                    )
            except StoreError as e:
                if isinstance(e.__cause__, sqlite3.IntegrityError):
                    continue  # name taken: draw another
                raise
            return self.get_run(name)
        raise StoreError("could not find a free run name after 50 tries")

    def update_run(self, name: str, **fields: Any) -> None:
        self._update("runs", _RUN_FIELDS, name, fields)

    def update_experiment(self, name: str, **fields: Any) -> None:
        self._update("experiments", _EXP_FIELDS, name, fields)

    def _update(self, table: str, allowed: set[str], name: str, fields: dict[str, Any]) -> None:
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown {table} fields: {sorted(unknown)}")
        values = [
            json.dumps(v) if isinstance(v, dict) else v.value if isinstance(v, Enum) else v for v in fields.values()
        ]
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE {table} SET {sets} WHERE name = ?", (*values, name))

    def finish_experiment(self, name: str, *, state: ExpState, exit_code: int | None, message: str | None) -> None:
        """Record an end state, unless the experiment already has one (first writer wins)."""
        with self._tx() as db:
            db.execute(
                "UPDATE experiments SET state = ?, exit_code = ?, message = ?, finished_at = ?"
                " WHERE name = ? AND state IN ('queued', 'building', 'running')",
                (state.value, exit_code, message, time.time(), name),
            )

    def claim(self, name: str, *, pid: int, previous: int | None) -> bool:
        """Become the experiment's owner if its owner is still ``previous`` (compare-and-set)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE experiments SET owner_pid = ? WHERE name = ? AND owner_pid IS ?", (pid, name, previous)
            )
            return cur.rowcount == 1

    # -- reading -------------------------------------------------------------------------

    def get_run(self, name: str) -> RunRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no run named {name!r}", hint="`runner history` lists the runs")
        return _run(row)

    def experiments(self, run: str) -> tuple[ExperimentRecord, ...]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM experiments WHERE run = ? ORDER BY idx", (run,)).fetchall()
        return tuple(_experiment(r) for r in rows)

    def get_experiment(self, name: str) -> ExperimentRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no experiment named {name!r}", hint="`runner status RUN` lists a run's experiments")
        return _experiment(row)

    def summaries(self, *, active_only: bool = False, limit: int | None = None) -> list[RunSummary]:
        where = (
            " WHERE name IN (SELECT run FROM experiments WHERE state IN ('queued', 'building', 'running'))"
            if active_only
            else ""
        )
        lim = f" LIMIT {int(limit)}" if limit else ""
        runs = [_run(r) for r in self._db.execute(f"SELECT * FROM runs{where} ORDER BY created_at DESC{lim}")]
        if not runs:
            return []
        marks = ",".join("?" * len(runs))
        exps: dict[str, list[ExperimentRecord]] = {r.name: [] for r in runs}
        for row in self._db.execute(
            f"SELECT * FROM experiments WHERE run IN ({marks}) ORDER BY run, idx", [r.name for r in runs]
        ):
            e = _experiment(row)
            exps[e.run].append(e)
        return [RunSummary(r, tuple(exps[r.name])) for r in runs]

    def active_experiments(self) -> list[ExperimentRecord]:
        rows = self._db.execute(
            "SELECT * FROM experiments WHERE state IN ('queued', 'building', 'running') ORDER BY created_at"
        ).fetchall()
        return [_experiment(r) for r in rows]


_RUN_COLS = ("name", "project", "root", "script", "args", "target", "image", "cached", "created_at", "options", "build_log")
_EXP_COLS = (
    "name", "run", "idx", "command", "params", "state", "handle", "exit_code", "message",
    "created_at", "started_at", "finished_at", "owner_pid", "stop_requested",
)  # fmt: skip


def _run(row: tuple[Any, ...]) -> RunRecord:
    d = dict(zip(_RUN_COLS, row, strict=True))
    return RunRecord(
        name=d["name"],
        project=d["project"],
        root=d["root"],
        script=d["script"],
        args=tuple(json.loads(d["args"])),
        target=d["target"],
        image=d["image"],
        cached=None if d["cached"] is None else bool(d["cached"]),
        created_at=d["created_at"],
        options=json.loads(d["options"]),
        build_log=d["build_log"],
    )


def _experiment(row: tuple[Any, ...]) -> ExperimentRecord:
    d = dict(zip(_EXP_COLS, row, strict=True))
    return ExperimentRecord(
        name=d["name"],
        run=d["run"],
        index=d["idx"],
        command=tuple(json.loads(d["command"])),
        params=json.loads(d["params"]),
        state=ExpState(d["state"]),
        handle=d["handle"],
        exit_code=d["exit_code"],
        message=d["message"],
        created_at=d["created_at"],
        started_at=d["started_at"],
        finished_at=d["finished_at"],
        owner_pid=d["owner_pid"],
        stop_requested=bool(d["stop_requested"]),
    )
