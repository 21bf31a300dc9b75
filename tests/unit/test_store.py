import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from runner.errors import NotFoundError
from runner.model import ExpState
from runner.store import Store


def new_run(store: Store, name: str = "calm-otter-101", n: int = 1) -> str:
    run = store.create_run(
        make_name=lambda: name,
        project="p",
        root="/p",
        script="a.py",
        args=["--x", ""],
        target="local",
        options={"resources": {"cpus": 1}},
        experiments=[(["python3", "a.py", str(i)], {"i": i}) for i in range(n)],
    )
    return run.name


def test_create_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    name = new_run(store, n=2)
    run = store.get_run(name)
    assert run.args == ("--x", "") and run.options == {"resources": {"cpus": 1}}
    exps = store.experiments(name)
    assert [e.name for e in exps] == [f"{name}-exp0", f"{name}-exp1"]
    assert exps[1].command == ("python3", "a.py", "1") and exps[1].params == {"i": 1}
    assert all(e.state is ExpState.BUILDING for e in exps)
    with pytest.raises(NotFoundError):
        store.get_run("nope")


def test_name_collision_draws_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    names = iter(["a-b-100", "a-b-100", "a-b-101"])
    assert (
        store.create_run(
            make_name=lambda: next(names),
            project="p",
            root="/",
            script="s",
            args=[],
            target="local",
            options={},
            experiments=[([], {})],
        ).name
        == "a-b-100"
    )
    assert (
        store.create_run(
            make_name=lambda: next(names),
            project="p",
            root="/",
            script="s",
            args=[],
            target="local",
            options={},
            experiments=[([], {})],
        ).name
        == "a-b-101"
    )


def test_first_end_state_wins_and_claim_is_compare_and_set(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    exp = f"{new_run(store)}-exp0"
    store.update_experiment(exp, state=ExpState.RUNNING, owner_pid=10)
    store.finish_experiment(exp, state=ExpState.STOPPED, exit_code=None, message="stopped")
    store.finish_experiment(exp, state=ExpState.FAILED, exit_code=1, message="late")
    e = store.get_experiment(exp)
    assert (e.state, e.message) == (ExpState.STOPPED, "stopped")
    assert store.claim(exp, pid=20, previous=11) is False
    assert store.claim(exp, pid=20, previous=10) is True
    assert store.get_experiment(exp).owner_pid == 20


def _many(args: tuple[str, int]) -> list[str]:
    path, seed = args
    import random

    rng = random.Random(seed)
    store = Store(Path(path))
    # a tiny name space forces collisions between the processes
    return [
        store.create_run(
            make_name=lambda: f"a-b-{rng.randrange(100, 160)}",
            project="p",
            root="/",
            script="s",
            args=[],
            target="local",
            options={},
            experiments=[([], {})],
        ).name
        for _ in range(12)
    ]


def test_parallel_writers_never_share_a_name_nor_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "db"
    Store(db).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_many, [(str(db), s) for s in range(4)])
    names = [n for r in results for n in r]
    assert len(names) == len(set(names)) == 48
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("SELECT count(*) FROM experiments").fetchone() == (48,)


def test_summaries(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    a = new_run(store, "a-a-100", n=3)
    b = new_run(store, "b-b-100")
    store.finish_experiment(f"{a}-exp0", state=ExpState.COMPLETED, exit_code=0, message=None)
    store.finish_experiment(f"{a}-exp1", state=ExpState.FAILED, exit_code=2, message="exit code 2")
    store.update_experiment(f"{a}-exp2", state=ExpState.RUNNING)
    store.finish_experiment(f"{b}-exp0", state=ExpState.COMPLETED, exit_code=0, message=None)
    active = store.summaries(active_only=True)
    assert [s.run.name for s in active] == [a]
    s = active[0]
    assert (s.count(ExpState.COMPLETED), s.count(ExpState.FAILED), s.count(ExpState.RUNNING)) == (1, 1, 1)
    assert s.state is ExpState.RUNNING
    assert {x.run.name: x.state for x in store.summaries()}[b] is ExpState.COMPLETED


def test_old_rows_with_numbers_in_args_still_read(tmp_path: Path) -> None:
    # rows written before the API converted argument values (args=[0.1, 3]) must not break status
    store = Store(tmp_path / "db")
    name = new_run(store)
    store._db.execute("UPDATE runs SET args = ? WHERE name = ?", ('["--lr", 0.1, 3]', name))
    store._db.execute(
        "UPDATE experiments SET command = ?, params = ? WHERE run = ?", ('["python3", "q.py", 0.1]', "oops", name)
    )
    assert store.get_run(name).args == ("--lr", "0.1", "3")
    exp = store.experiments(name)[0]
    assert exp.command == ("python3", "q.py", "0.1") and exp.params == {}


def test_a_damaged_database_names_the_problem_and_the_repair(tmp_path: Path) -> None:
    from runner.errors import StoreError

    db = tmp_path / "runner.db"
    store = Store(db, records=tmp_path / "runs")
    for i in range(30):
        new_run(store, f"a-b-{100 + i}", n=2)
    store.close()
    with open(db, "r+b") as f:
        f.truncate(8192)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError) as e:
        Store(db).summaries()
    assert "is damaged" in e.value.message and "runner repair" in str(e.value) and "permission" not in str(e.value)


def test_repair_rebuilds_from_the_records(tmp_path: Path) -> None:
    from runner.store import repair

    db, runs = tmp_path / "runner.db", tmp_path / "runs"
    store = Store(db, records=runs)
    a = new_run(store, "a-b-100", n=2)
    store.update_experiment(f"{a}-exp0", state=ExpState.RUNNING, handle="c0ffee", owner_pid=1)
    store.finish_experiment(f"{a}-exp0", state=ExpState.FAILED, exit_code=3, message="exit code 3")
    store.finish_experiment(f"{a}-exp1", state=ExpState.COMPLETED, exit_code=0, message=None)
    store.close()
    (runs / "old-run-100").mkdir()  # a run from before records were kept: only its log is left
    (runs / "old-run-100" / "old-run-100-exp0.log").write_text("[stdout] [t] hi\n")
    db.write_bytes(b"this is not a database" * 100)
    report = repair(db, runs)
    assert report.damaged and report.moved_to is not None and report.moved_to.exists()
    assert (report.from_records, report.from_folders) == (1, 1)
    fresh = Store(db)
    exps = fresh.experiments(a)
    assert [(e.state, e.exit_code, e.handle) for e in exps] == [
        (ExpState.FAILED, 3, "c0ffee"),
        (ExpState.COMPLETED, 0, None),
    ]
    assert fresh.get_run(a).args == ("--x", "")
    assert fresh.experiments("old-run-100")[0].state is ExpState.FAILED
    # a sound database only gains what it lacks
    again = repair(db, runs)
    assert again.damaged is None and again.kept == 2 and again.from_records == 0
    # a lost one is rebuilt as well
    db.unlink()
    assert repair(db, runs).from_records == 1
