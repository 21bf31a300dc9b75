"""Run history in an embedded SQLite database, with a copy beside each run's files.

One database per user (``$RUNNER_HOME/runner.db``).  WAL mode and short
immediate transactions let several ``runner`` processes write at once; run names
are allocated by the primary key, so two parallel runs never share one.

Every write is also kept as small JSON records in the run's folder
(``runs/<run>/run.json`` when the run is made, ``runs/<run>/<experiment>.json``
whenever an experiment changes), written atomically.  The database is the index;
the records are what :func:`repair` rebuilds it from when it is damaged or lost.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from runner.errors import NotFoundError, RunnerError, StoreError, UsageError, clip
from runner.jsonfile import read_json, write_json
from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary
from runner.names import check_run_name, experiment_name

#: the one command that rebuilds a damaged or lost history database
REPAIR = "runner repair"

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


_RUN_FIELDS = {"image", "cached", "build_log", "options"}
_EXP_FIELDS = {
    "state",
    "handle",
    "exit_code",
    "message",
    "started_at",
    "finished_at",
    "owner_pid",
    "stop_requested",
}


class Store:
    def __init__(self, path: Path, *, records: Path | None = None) -> None:
        """``records``: the folder of the runs' folders (``$RUNNER_HOME/runs``) where each write is also kept."""
        self.path = path
        self.records = records
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot make the folder of the history database {path.parent}: {e.strerror or e}") from e
        #: opened read-only because the disk is full: reads work, writes say why they cannot
        self.read_only = False
        try:
            # autocommit; transactions are explicit (BEGIN IMMEDIATE) where several statements must agree
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # a write: only when not yet WAL
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'experiments_state'").fetchone():
                self._db.executescript(SCHEMA)  # only a new database: a full disk must not stop read-only commands
        except sqlite3.Error as e:
            if not (path.exists() and disk_full(path.parent)):
                raise store_error(e, path, "cannot open the history database") from e
            # WAL needs room for its -wal and -shm files; with none left, read the file as it is
            self._db = _open_read_only(path, e)
            self.read_only = True

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # one connection, shared by the threads that follow a sweep's experiments: one transaction at a time
        with self._lock:
            yield from self._tx_unlocked()

    def _tx_unlocked(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(
                f"cannot write history: the disk under {self.path.parent} is full",
                hint="free some space; status, history and logs still read",
            )
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise store_error(e, self.path, "history database error") from e

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise store_error(e, self.path, "cannot read the history database") from e

    # -- the records beside each run's files -------------------------------------------------

    def _keep_run(self, name: str) -> None:
        if self.records is None:
            return
        try:
            run, exps = self.get_run(name), self.experiments(name)
        except StoreError:
            return
        write_json(
            self.records / name / RUN_RECORD, {"format": 1, "run": _doc(run), "experiments": [_doc(e) for e in exps]}
        )

    def _keep_experiment(self, name: str) -> None:
        if self.records is None:
            return
        try:
            exp = self.get_experiment(name)
        except (StoreError, NotFoundError):
            return
        write_json(self.records / exp.run / f"{exp.name}.json", _doc(exp))

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
                            (
                                experiment_name(name, i),
                                name,
                                i,
                                json.dumps(list(cmd)),
                                json.dumps(params),
                                state.value,
                                now,
                                owner_pid,
                            )
                            for i, (cmd, params) in enumerate(experiments)
                        ],
                    )
            except StoreError as e:
                if isinstance(e.__cause__, sqlite3.IntegrityError):
                    continue  # name taken: draw another
                raise
            self._keep_run(name)
            return self.get_run(name)
        raise StoreError("could not find a free run name after 50 tries")

    def update_run(self, name: str, **fields: Any) -> None:
        if self._update("runs", _RUN_FIELDS, name, fields):
            self._keep_run(name)

    def update_experiment(self, name: str, **fields: Any) -> None:
        if self._update("experiments", _EXP_FIELDS, name, fields):
            self._keep_experiment(name)

    def _update(self, table: str, allowed: set[str], name: str, fields: dict[str, Any]) -> bool:
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown {table} fields: {sorted(unknown)}")
        values = [
            json.dumps(v) if isinstance(v, dict) else v.value if isinstance(v, Enum) else v for v in fields.values()
        ]
        sets = ", ".join(f"{k} = ?" for k in fields)
        same = " AND ".join(f"{k} IS ?" for k in fields)
        with self._tx() as db:
            # a row that already holds these values is not written again (nor is its record)
            cur = db.execute(f"UPDATE {table} SET {sets} WHERE name = ? AND NOT ({same})", (*values, name, *values))
            return cur.rowcount == 1

    def finish_experiment(self, name: str, *, state: ExpState, exit_code: int | None, message: str | None) -> None:
        """Record an end state, unless the experiment already has one (first writer wins)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE experiments SET state = ?, exit_code = ?, message = ?, finished_at = ?"
                " WHERE name = ? AND state IN ('queued', 'building', 'running')",
                (state.value, exit_code, message, time.time(), name),
            )
        if cur.rowcount == 1:
            self._keep_experiment(name)

    def forget(self, run: str, experiments: Sequence[str] | None = None) -> bool:
        """Remove a run (``experiments`` None) or some of its experiments from history; True if the run is gone.

        A run left with no experiment goes too.  Its records (the JSON beside its files)
        follow: the caller removes the run's folder when the run is gone.
        """
        with self._tx() as db:
            if experiments is None:
                db.execute("DELETE FROM experiments WHERE run = ?", (run,))
            else:
                db.executemany("DELETE FROM experiments WHERE name = ? AND run = ?", [(e, run) for e in experiments])
            left = db.execute("SELECT COUNT(*) FROM experiments WHERE run = ?", (run,)).fetchone()[0]
            if not left:
                db.execute("DELETE FROM runs WHERE name = ?", (run,))
        if left and self.records is not None:
            for e in experiments or ():
                (self.records / run / f"{e}.json").unlink(missing_ok=True)
            self._keep_run(run)
        return not left

    def claim(self, name: str, *, pid: int, previous: int | None) -> bool:
        """Become the experiment's owner if its owner is still ``previous`` (compare-and-set)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE experiments SET owner_pid = ? WHERE name = ? AND owner_pid IS ?", (pid, name, previous)
            )
            claimed = cur.rowcount == 1
        if claimed:
            self._keep_experiment(name)
        return claimed

    # -- reading -------------------------------------------------------------------------

    def check_new_name(self, name: str) -> None:
        """``--name``: valid, and no run in history has it (checked before anything is built)."""
        problem = check_run_name(name)
        if problem:
            raise UsageError(problem)
        try:
            self.get_run(name)
        except NotFoundError:
            return
        raise UsageError(
            f"--name {name}: a run with that name exists already",
            hint=f"choose another name, or remove the old run with `runner delete {name}`",
        )

    def get_run(self, name: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no run named {clip(name)}", hint="`runner history` lists the runs")
        return _run(rows[0])

    def experiments(self, run: str) -> tuple[ExperimentRecord, ...]:
        rows = self._read("SELECT * FROM experiments WHERE run = ? ORDER BY idx", (run,))
        return tuple(_experiment(r) for r in rows)

    def get_experiment(self, name: str) -> ExperimentRecord:
        rows = self._read("SELECT * FROM experiments WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(
                f"no experiment named {clip(name)}", hint="`runner status RUN` lists a run's experiments"
            )
        return _experiment(rows[0])

    def summaries(self, *, active_only: bool = False, limit: int | None = None) -> list[RunSummary]:
        where = (
            " WHERE name IN (SELECT run FROM experiments WHERE state IN ('queued', 'building', 'running'))"
            if active_only
            else ""
        )
        lim = f" LIMIT {int(limit)}" if limit else ""
        runs = [_run(r) for r in self._read(f"SELECT * FROM runs{where} ORDER BY created_at DESC{lim}")]
        if not runs:
            return []
        marks = ",".join("?" * len(runs))
        exps: dict[str, list[ExperimentRecord]] = {r.name: [] for r in runs}
        for row in self._read(
            f"SELECT * FROM experiments WHERE run IN ({marks}) ORDER BY run, idx", [r.name for r in runs]
        ):
            e = _experiment(row)
            exps[e.run].append(e)
        return [RunSummary(r, tuple(exps[r.name])) for r in runs]

    def active_experiments(self) -> list[ExperimentRecord]:
        rows = self._read(
            "SELECT * FROM experiments WHERE state IN ('queued', 'building', 'running') ORDER BY created_at"
        )
        return [_experiment(r) for r in rows]


_RUN_COLS = (
    "name",
    "project",
    "root",
    "script",
    "args",
    "target",
    "image",
    "cached",
    "created_at",
    "options",
    "build_log",
)
_EXP_COLS = (
    "name",
    "run",
    "idx",
    "command",
    "params",
    "state",
    "handle",
    "exit_code",
    "message",
    "created_at",
    "started_at",
    "finished_at",
    "owner_pid",
    "stop_requested",
)


def _texts(raw: Any) -> tuple[str, ...]:
    """A JSON list of arguments as text.  Rows written before values were converted may hold numbers."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _mapping(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _state(raw: Any) -> ExpState:
    try:
        return ExpState(raw)
    except ValueError:
        return ExpState.FAILED


def _run(row: Sequence[Any]) -> RunRecord:
    d = dict(zip(_RUN_COLS, row, strict=True))
    return RunRecord(
        name=str(d["name"]),
        project=str(d["project"]),
        root=str(d["root"]),
        script=str(d["script"]),
        args=_texts(d["args"]),
        target=str(d["target"]),
        image=d["image"],
        cached=None if d["cached"] is None else bool(d["cached"]),
        created_at=float(d["created_at"] or 0),
        options=_mapping(d["options"]),
        build_log=d["build_log"],
    )


def _experiment(row: Sequence[Any]) -> ExperimentRecord:
    d = dict(zip(_EXP_COLS, row, strict=True))
    return ExperimentRecord(
        name=str(d["name"]),
        run=str(d["run"]),
        index=int(d["idx"] or 0),
        command=_texts(d["command"]),
        params=_mapping(d["params"]),
        state=_state(d["state"]),
        handle=d["handle"],
        exit_code=d["exit_code"],
        message=d["message"],
        created_at=float(d["created_at"] or 0),
        started_at=d["started_at"],
        finished_at=d["finished_at"],
        owner_pid=d["owner_pid"],
        stop_requested=bool(d["stop_requested"]),
    )


# -- errors ------------------------------------------------------------------------------------


def disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _open_read_only(path: Path, cause: sqlite3.Error) -> sqlite3.Connection:
    wal = Path(f"{path}-wal")
    # without a -wal file the database file is complete: "immutable" reads it without any lock file
    uri = f"file:{path}?immutable=1" if not wal.exists() or wal.stat().st_size == 0 else f"file:{path}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM runs").fetchone()
    except sqlite3.Error as e:
        raise StoreError(
            f"cannot read the history database {path}: the disk under {path.parent} is full ({cause})",
            hint="free some space",
        ) from e
    return db


def store_error(e: sqlite3.Error, path: Path, what: str) -> StoreError:
    """One message per kind of trouble, naming it, and what to do about it."""
    text = str(e)
    low = text.lower()
    if "disk i/o error" in low and disk_full(path.parent):
        low = "disk is full"
    if isinstance(e, sqlite3.DatabaseError) and any(
        w in low for w in ("malformed", "not a database", "corrupt", "disk i/o error", "database schema")
    ):
        return StoreError(
            f"the history database {path} is damaged ({text})",
            hint=f"`{REPAIR}` rebuilds it from the records in {path.parent / 'runs'}/",
        )
    if "disk is full" in low or "no space" in low:
        return StoreError(
            f"{what}: the disk under {path.parent} is full ({text})",
            hint="free some space; status, history and logs still read",
        )
    if "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
        return StoreError(f"{what} {path}: {text}", hint="check the permissions of the file and its folder")
    if "locked" in low or "busy" in low:
        return StoreError(f"{what}: {text}", hint="another runner holds it for too long; try again")
    return StoreError(f"{what} {path}: {text}")


# -- records and repair ------------------------------------------------------------------------

RUN_RECORD = "run.json"


def _doc(record: RunRecord | ExperimentRecord) -> dict[str, Any]:
    doc = dataclasses.asdict(record)
    if isinstance(record, ExperimentRecord):
        doc["state"] = record.state.value
    return doc


def _run_from(doc: Any) -> RunRecord | None:
    try:
        fields = {f.name for f in dataclasses.fields(RunRecord)}
        d = {k: v for k, v in doc.items() if k in fields}
        return RunRecord(
            **{**d, "args": tuple(str(a) for a in d.get("args") or ()), "options": dict(d.get("options") or {})}
        )
    except (TypeError, AttributeError, ValueError):
        return None


def _experiment_from(doc: Any) -> ExperimentRecord | None:
    try:
        fields = {f.name for f in dataclasses.fields(ExperimentRecord)}
        d = {k: v for k, v in doc.items() if k in fields}
        return ExperimentRecord(
            **{
                **d,
                "command": tuple(str(c) for c in d.get("command") or ()),
                "params": dict(d.get("params") or {}),
                "state": _state(d.get("state")),
            }
        )
    except (TypeError, AttributeError, ValueError):
        return None


@dataclass(frozen=True)
class RepairReport:
    damaged: str | None  # what was wrong with the old database (None: it was fine, or missing)
    moved_to: Path | None  # where the damaged file was put
    from_records: int  # runs rebuilt from runs/<run>/run.json
    from_database: int  # runs read back from the damaged database
    from_folders: int  # runs of which only the folder (logs, artifacts) was left
    kept: int  # runs the database already had


def _check(path: Path) -> str | None:
    """None when the database at ``path`` is missing or sound, else what is wrong with it."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()
            db.execute("SELECT count(*) FROM runs").fetchone()
            db.execute("SELECT count(*) FROM experiments").fetchone()
        finally:
            db.close()
    except sqlite3.Error as e:
        return str(e)
    return None if result == ("ok",) else str(result[0] if result else "integrity check failed")


def _salvage(path: Path) -> tuple[list[RunRecord], list[ExperimentRecord]]:
    """Whatever rows of a damaged database can still be read, one table and one row at a time."""
    runs: list[RunRecord] = []
    exps: list[ExperimentRecord] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return runs, exps
    for table, decode, out in (("runs", _run, runs), ("experiments", _experiment, exps)):
        try:
            for row in db.execute(f"SELECT * FROM {table}"):
                try:
                    out.append(decode(row))  # type: ignore[arg-type]
                except (TypeError, ValueError, KeyError):
                    continue
        except sqlite3.Error:
            continue  # the rows read before the damage are kept
    db.close()
    return runs, exps


def repair(path: Path, records: Path) -> RepairReport:
    """Rebuild the history database at ``path`` from the runs' records (and what the old one still holds).

    A damaged database is moved aside (``runner.db.damaged-<time>``), never deleted;
    a sound one only gains the runs it lacks.
    """
    try:
        return _repair(path, records)
    except OSError as e:
        raise RunnerError(f"cannot repair the history database {path}: {e.strerror or e}") from e


def _repair(path: Path, records: Path) -> RepairReport:
    problem = _check(path)
    moved = None
    salvaged: tuple[list[RunRecord], list[ExperimentRecord]] = ([], [])
    if problem is not None:
        salvaged = _salvage(path)
        moved = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                os.replace(src, f"{moved}{suffix}")
    store = Store(path, records=None)  # the records are the source here, not a copy to write
    known = {s.run.name for s in store.summaries()}
    kept = len(known)
    found: dict[str, tuple[RunRecord, list[ExperimentRecord], str]] = {}
    for folder in sorted(records.iterdir()) if records.is_dir() else []:
        if not folder.is_dir() or folder.name in known:
            continue
        doc = read_json(folder / RUN_RECORD)
        run = _run_from(doc.get("run")) if isinstance(doc, dict) else None
        if run is None:
            continue
        exps = {e.name: e for e in (_experiment_from(x) for x in doc.get("experiments") or []) if e is not None}
        for name in list(exps):
            newer = _experiment_from(read_json(folder / f"{name}.json") or {})
            if newer is not None:
                exps[name] = newer
        found[run.name] = (run, sorted(exps.values(), key=lambda e: e.index), "records")
    by_run: dict[str, list[ExperimentRecord]] = {}
    for e in salvaged[1]:
        by_run.setdefault(e.run, []).append(e)
    for run in salvaged[0]:
        if run.name not in known and run.name not in found:
            found[run.name] = (run, sorted(by_run.get(run.name, []), key=lambda e: e.index), "database")
    for folder in sorted(records.iterdir()) if records.is_dir() else []:
        if folder.is_dir() and folder.name not in known and folder.name not in found:
            found[folder.name] = _from_folder(folder)
    with store._tx() as db:
        for run, rexps, _ in found.values():
            db.execute(
                "INSERT OR IGNORE INTO runs (name, project, root, script, args, target, image, cached, created_at, options,"
                " build_log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.name,
                    run.project,
                    run.root,
                    run.script,
                    json.dumps(list(run.args)),
                    run.target,
                    run.image,
                    None if run.cached is None else int(run.cached),
                    run.created_at,
                    json.dumps(run.options),
                    run.build_log,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO experiments (name, run, idx, command, params, state, handle, exit_code, message,"
                " created_at, started_at, finished_at, owner_pid, stop_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?)",
                [
                    (
                        e.name,
                        run.name,
                        e.index,
                        json.dumps(list(e.command)),
                        json.dumps(e.params),
                        e.state.value,
                        e.handle,
                        e.exit_code,
                        e.message,
                        e.created_at,
                        e.started_at,
                        e.finished_at,
                        e.owner_pid,
                        int(e.stop_requested),
                    )
                    for e in rexps
                ],
            )
    store.close()
    count = {k: sum(1 for *_, how in found.values() if how == k) for k in ("records", "database", "folder")}
    return RepairReport(problem, moved, count["records"], count["database"], count["folder"], kept)


def _from_folder(folder: Path) -> tuple[RunRecord, list[ExperimentRecord], str]:
    """A run of which only the folder is left (made before runs kept records): its logs and artifacts stay reachable."""
    created = folder.stat().st_mtime
    logs = sorted(folder.glob(f"{folder.name}-exp*.log"), key=lambda p: (len(p.name), p.name))
    names = [p.name[: -len(".log")] for p in logs] or [experiment_name(folder.name, 0)]
    build = folder / "build.log"
    run = RunRecord(
        name=folder.name,
        project="?",
        root="?",
        script="?",
        args=(),
        target="local",
        image=None,
        cached=None,
        created_at=created,
        options={},
        build_log=str(build) if build.is_file() else None,
    )
    note = "recovered from its folder by `runner repair`: how it ended was not kept"
    exps = [
        ExperimentRecord(
            name=n,
            run=folder.name,
            index=i,
            command=(),
            params={},
            state=ExpState.FAILED,
            handle=None,
            exit_code=None,
            message=note,
            created_at=created,
            started_at=None,
            finished_at=created,
            owner_pid=None,
            stop_requested=False,
        )
        for i, n in enumerate(names)
    ]
    return run, exps, "folder"
