"""App.run and the commands after it on the local target, over the fake engine (no Docker)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeEngine, Program, adapters

from runner.adapters.docker_engine import BuildKit
from runner.app import App
from runner.errors import BuildError, ImageMissingError, UsageError
from runner.events import BuildOutput, Built, Output, Recorded, RunEvent
from runner.home import Home
from runner.model import ExpState
from runner.options import RunOptions, SweepSettings
from runner.plan import PlanRequest
from runner.sweep import Strategy
from runner.targets.base import Published


def request(project: Path, *args: str) -> PlanRequest:
    return PlanRequest(script=project / "train.py", args=args, base_image="runner-python:3.11", cwd=project)


def run_all(app: App, project: Path, *args: str, opts: RunOptions | None = None, **kw: Any) -> list[RunEvent]:
    return list(app.run(request(project, *args), opts or RunOptions(), **kw))


def recorded(events: list[RunEvent]) -> Recorded:
    return next(e for e in events if isinstance(e, Recorded))


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def app(home: Home, engine: FakeEngine) -> App:
    return App(home, adapters=adapters(engine))


def test_a_first_run_builds_then_runs_and_ends_completed(app: App, engine: FakeEngine, project: Path) -> None:
    events = run_all(app, project, "--lr", "0.1")
    kinds = [type(e) for e in events]
    assert kinds[0] is Recorded and Built in kinds and Published in kinds
    assert kinds.index(Built) < kinds.index(Published) < kinds.index(Output)
    sub = recorded(events).sub
    assert not sub.cached and engine.builds == [sub.image]
    assert any(isinstance(e, BuildOutput) and "Successfully built" in e.line for e in events)
    out = [(e.experiment, e.line.stream, e.line.text) for e in events if isinstance(e, Output)]
    assert out == [
        (sub.experiments[0].name, "stdout", 'ARGV ["train.py", "--lr", "0.1"]'),
        (sub.experiments[0].name, "stderr", "to stderr"),
    ]
    exps, notes = app.outcome(sub)
    assert [(e.state, e.exit_code) for e in exps] == [(ExpState.COMPLETED, 0)] and notes == []
    # harvested: the log, the artifacts, the container removed
    log = app.home.experiment_log(sub.run.name, exps[0].name).read_text()
    assert "[stdout] [" in log and "ARGV" in log and "[stderr]" in log
    assert (app.home.artifacts(sub.run.name, exps[0].name) / "out.txt").read_text() == "done\n"
    assert not (app.home.artifacts(sub.run.name, exps[0].name) / "train.py").exists()  # unchanged: not an artifact
    assert len(engine.removed) == 1
    assert (app.home.run_dir(sub.run.name) / "Dockerfile").is_file()


def test_buildkit_builds_share_the_hosts_network_unless_told_or_refused(
    app: App, engine: FakeEngine, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.bk = BuildKit(cli="/usr/bin/docker", version="20.10.24", build=("build",))
    run_all(app, project, "1")
    assert engine.networks == ["host"]  # a network sandbox per install step costs ~0.3 s

    def edit() -> None:  # a new image each time
        (project / "train.py").write_text((project / "train.py").read_text() + "# changed\n")

    monkeypatch.setenv("RUNNER_BUILD_NETWORK", "default")
    edit()
    run_all(app, project, "2")
    assert engine.networks[-1] == "default"

    monkeypatch.delenv("RUNNER_BUILD_NETWORK")
    engine.refuse_host_network = True
    edit()
    events = run_all(app, project, "3")
    assert engine.networks[-2:] == ["host", "default"] and Built in [type(e) for e in events]
    notes = [e.line for e in events if isinstance(e, BuildOutput) and e.line.startswith("runner:")]
    assert notes == [
        "runner: this builder does not allow the host's network for the install steps (image build failed at "
        "the first step: granting entitlement network.host is not allowed by build daemon configuration): "
        "building again with the default network (RUNNER_BUILD_NETWORK=default skips this try)"
    ]

    monkeypatch.setenv("RUNNER_BUILD_NETWORK", "bridge")
    edit()
    with pytest.raises(UsageError, match="RUNNER_BUILD_NETWORK=bridge is not one of: host, default"):
        run_all(app, project, "4")


def test_a_second_run_of_the_same_code_uses_the_cached_image(app: App, engine: FakeEngine, project: Path) -> None:
    run_all(app, project)
    engine.calls.clear()
    events = run_all(app, project)
    assert recorded(events).sub.cached and "build" not in engine.calls
    assert not any(isinstance(e, (BuildOutput, Built)) for e in events)


def test_the_exit_code_and_an_oom_kill_are_the_outcome(home: Home, project: Path) -> None:
    def behave(command: list[str], env: dict[str, str]) -> Program:
        return Program(stdout=["x"], exit_code=3) if "3" in command else Program(oom_killed=True)

    app = App(home, adapters=adapters(FakeEngine(behave=behave)))
    exps, _ = app.outcome(recorded(run_all(app, project, "3")).sub)
    assert (exps[0].state, exps[0].exit_code, exps[0].message) == (ExpState.FAILED, 3, "exit code 3")
    exps, _ = app.outcome(recorded(run_all(app, project, "oom")).sub)
    assert exps[0].state is ExpState.FAILED and "OOMKilled" in (exps[0].message or "")


def test_a_failed_build_is_recorded_as_the_runs_end(app: App, engine: FakeEngine, project: Path) -> None:
    engine.build_error = "pip install failed"
    events = app.run(request(project), RunOptions())
    sub = next(events).sub  # type: ignore[union-attr]
    with pytest.raises(BuildError) as err:
        list(events)
    assert err.value.hint == f"full build log: runner logs {sub.run.name} --build"
    exp = app.store.get_experiment(sub.experiments[0].name)
    assert exp.state is ExpState.FAILED and "pip install failed" in (exp.message or "")
    assert "[build] Step 1/2 : FROM runner-python:3.11" in list(app.logs(sub.run.name, build=True))


def test_a_base_image_that_cannot_be_had_leaves_nothing_in_history(app: App, engine: FakeEngine, project: Path) -> None:
    engine.images.clear()
    with pytest.raises(ImageMissingError, match="cannot be pulled"):
        run_all(app, project)
    assert app.history() == []


def test_a_name_in_use_is_refused_before_anything_is_built(app: App, engine: FakeEngine, project: Path) -> None:
    run_all(app, project, name="my-run")
    engine.calls.clear()
    with pytest.raises(UsageError, match="a run with that name exists already"):
        run_all(app, project, "other", name="my-run")
    with pytest.raises(UsageError):
        run_all(app, project, name="Bad_Name")
    assert "build" not in engine.calls and [s.run.name for s in app.history()] == ["my-run"]


def test_a_sweep_runs_every_experiment_with_its_params(app: App, engine: FakeEngine, project: Path) -> None:
    opts = RunOptions(sweep=SweepSettings(Strategy("grid_search"), None, None), max_parallel=1)
    events = run_all(app, project, "--lr", "[0.1, 0.2, 0.3]", opts=opts)
    sub = recorded(events).sub
    assert len(sub.experiments) == 3
    seen = {e.experiment for e in events if isinstance(e, Output)}
    assert seen == {e.name for e in sub.experiments}
    exps, _ = app.outcome(sub)
    assert {e.state for e in exps} == {ExpState.COMPLETED}
    specs = [c.spec for c in engine.containers.values()]
    assert [s.env["RUNNER_EXPERIMENT"] for s in specs] == [e.name for e in sub.experiments]
    assert specs[1].command == ["python3", "train.py", "--lr", "0.2"]
    assert specs[0].labels["runner/run"] == sub.run.name and specs[0].workdir == "/project"


def _until_first_output(events: Generator[RunEvent, None, None]) -> tuple[Recorded, Output]:
    first: Recorded | None = None
    for event in events:
        if isinstance(event, Recorded):
            first = event
        if isinstance(event, Output):
            assert first is not None
            return first, event
    raise AssertionError("no output")


def test_ctrl_c_while_streaming_stops_the_run_and_keeps_its_end(home: Home, project: Path) -> None:
    engine = FakeEngine(behave=lambda c, e: Program(stdout=["started"], until_stopped=True))
    app = App(home, adapters=adapters(engine))
    events = app.run(request(project), RunOptions())
    rec, _ = _until_first_output(events)
    with pytest.raises(KeyboardInterrupt):
        events.throw(KeyboardInterrupt)
    exps, _ = app.outcome(rec.sub)
    assert (exps[0].state, exps[0].exit_code) == (ExpState.STOPPED, 143) and "stop" in engine.calls


def test_stop_from_another_command_ends_a_running_experiment(home: Home, project: Path) -> None:
    engine = FakeEngine(behave=lambda c, e: Program(stdout=["started"], until_stopped=True))
    app = App(home, adapters=adapters(engine))
    events = app.run(request(project), RunOptions())
    rec, _ = _until_first_output(events)
    other = App(home, adapters=adapters(engine))
    assert other.status()[0].run.name == rec.sub.run.name
    assert other.stop(rec.sub.run.name) == [rec.sub.experiments[0].name]
    list(events)  # the owner sees the end
    exps, _ = app.outcome(rec.sub)
    assert exps[0].state is ExpState.STOPPED and exps[0].message == "stopped"
    assert other.stop(rec.sub.run.name) == [] and other.status() == []


def test_ctrl_c_before_the_start_records_the_run_as_stopped(app: App, project: Path) -> None:
    events = app.run(request(project), RunOptions())
    sub = next(events).sub  # type: ignore[union-attr]
    with pytest.raises(KeyboardInterrupt):
        events.throw(KeyboardInterrupt)
    exp = app.store.get_experiment(sub.experiments[0].name)
    assert (exp.state, exp.message) == (ExpState.STOPPED, "interrupted")


def test_logs_come_after_the_build_log_and_tail_takes_the_newest(app: App, project: Path) -> None:
    sub = recorded(run_all(app, project)).sub
    lines = list(app.logs(sub.run.name))
    assert lines[0].startswith("[build] ") and lines[-1].endswith("to stderr")
    assert [ln.split("] ", 2)[-1] for ln in lines if not ln.startswith("[build]")] == [
        'ARGV ["train.py"]',
        "to stderr",
    ]
    assert len(list(app.logs(sub.experiments[0].name, tail=1))) == 1
    assert all(ln.startswith("[build]") for ln in app.logs(sub.run.name, build=True))


def test_artifacts_are_copied_per_experiment(app: App, project: Path, tmp_path: Path) -> None:
    sub = recorded(run_all(app, project)).sub
    exp = sub.experiments[0].name
    files = app.artifacts(sub.run.name, tmp_path / "dl")
    assert files == {exp: ["out.txt"]}
    assert (tmp_path / "dl" / sub.run.name / exp / "out.txt").read_text() == "done\n"


def test_history_and_status_show_the_run(app: App, project: Path) -> None:
    sub = recorded(run_all(app, project)).sub
    [summary] = app.history()
    assert (summary.run.name, summary.state, summary.run.target) == (sub.run.name, ExpState.COMPLETED, "local")
    assert app.status() == [] and app.run_summary(sub.run.name).state is ExpState.COMPLETED
    assert app.experiment(sub.experiments[0].name).exit_code == 0


def test_delete_refuses_what_runs_and_removes_what_ended(home: Home, project: Path) -> None:
    engine = FakeEngine(behave=lambda c, e: Program(stdout=["started"], until_stopped=True))
    app = App(home, adapters=adapters(engine))
    events = app.run(request(project), RunOptions())
    rec, _ = _until_first_output(events)
    name = rec.sub.run.name
    with pytest.raises(UsageError, match="is still running"):
        App(home, adapters=adapters(engine)).delete(name)
    with pytest.raises(KeyboardInterrupt):
        events.throw(KeyboardInterrupt)
    done = App(home, adapters=adapters(engine)).delete(name)
    assert done == {
        "run": name,
        "target": "local",
        "experiments": [rec.sub.experiments[0].name],
        "run_deleted": True,
        "notes": [],
    }
    assert not home.run_dir(name).exists() and app.history() == []


def test_an_experiment_whose_owner_died_before_its_start_is_taken_over(app: App, project: Path) -> None:
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    run = app.store.create_run(
        make_name=lambda: "died-early-1",
        project="proj",
        root=str(project),
        script="train.py",
        args=[],
        target="local",
        options={},
        experiments=[(["python3", "train.py"], {})],
        state=ExpState.BUILDING,
        owner_pid=dead.pid,
    )
    [summary] = app.history()
    assert summary.run.name == run.name and summary.state is ExpState.FAILED
    assert summary.experiments[0].message == "runner stopped before the container started"


def test_inspect_names_the_image_and_checks_the_base_images_python(app: App, project: Path) -> None:
    found = app.inspect(request(project))
    assert found.image is not None and found.image.startswith("runner/proj:")
    assert found.python is not None and found.python.errors == ()
    assert found.image == recorded(run_all(app, project)).sub.image


def test_a_detached_local_run_is_handed_to_a_watcher_process(
    app: App, project: Path, transport_calls: list[str]
) -> None:
    # the watcher is a process of its own that talks to the real engine: the guard refuses to start it
    from fakes import MustNotBeCalled

    with pytest.raises(MustNotBeCalled):
        run_all(app, project, opts=RunOptions(detach=True))
    assert transport_calls == ["a detached watcher process (it would follow containers of the real engine)"]
    transport_calls.clear()
    [summary] = app.history()
    assert summary.state is ExpState.STOPPED  # the start did not happen: recorded as interrupted


def test_deleting_one_experiment_keeps_the_rest_of_the_run(app: App, project: Path) -> None:
    opts = RunOptions(sweep=SweepSettings(Strategy("grid_search"), None, None))
    sub = recorded(run_all(app, project, "--lr", "[1, 2]", opts=opts)).sub
    first, second = (e.name for e in sub.experiments)
    done = app.delete(second)
    assert (done["run_deleted"], done["experiments"]) == (False, [second])
    assert [e.name for e in app.run_summary(sub.run.name).experiments] == [first]
    assert not app.home.experiment_log(sub.run.name, second).exists()
    assert not app.home.artifacts(sub.run.name, second).exists()
    assert app.home.experiment_log(sub.run.name, first).is_file()
