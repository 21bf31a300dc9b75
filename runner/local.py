"""The local Docker target: launch an experiment's container, follow it, collect what it left.

Each running experiment has one *owner* process (its ``owner_pid`` in history): the
foreground ``runner run``, or a detached watcher (``python -m runner.watch``).  The
owner writes the log file and, when the container ends, collects artifacts, records
the end state and removes the container.  Any other runner command that finds an
experiment whose owner died takes it over (:meth:`LocalTarget.reconcile`), so logs,
artifacts and history survive a killed CLI or a restarted engine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.artifacts import copy_from_layer, extract_changed
from runner.errors import EngineError, NotFoundError, RunnerError
from runner.home import Home
from runner.logs import LogLine, LogWriter, now_iso
from runner.render import PROJECT_DIR
from runner.store import ExperimentRecord, ExpState, Store

if TYPE_CHECKING:
    from runner.adapters.docker_engine import ContainerSpec, DockerEngine


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalTarget:
    def __init__(self, home: Home, store: Store, engine: DockerEngine) -> None:
        self.home = home
        self.store = store
        self.engine = engine

    def launch(self, exp: ExperimentRecord, spec: ContainerSpec) -> bool:
        """Start the container, owned by this process; False when a stop came first."""
        if self.store.get_experiment(exp.name).stop_requested:
            self.store.finish_experiment(exp.name, state=ExpState.STOPPED, exit_code=None, message="stopped before start")
            return False
        try:
            cid = self.engine.create_and_start(spec, attach=True)  # its owner follows it next (drive)
        except RunnerError as e:
            self.store.finish_experiment(exp.name, state=ExpState.FAILED, exit_code=None, message=str(e))
            raise
        self.store.update_experiment(
            exp.name, handle=cid, state=ExpState.RUNNING, started_at=time.time(), owner_pid=os.getpid()
        )
        return True

    def spawn_watcher(self, name: str, *, previous: int | None) -> None:
        """A detached process that takes the experiment over from ``previous`` and follows it to the end."""
        self._spawn([name, "" if previous is None else str(previous)])

    def _spawn(self, args: list[str], *, stdin: bytes | None = None) -> None:
        """``python -m runner.watch ARGS`` in its own session, outliving this process; its errors go to watch.log."""
        with open(self.home.root / "watch.log", "ab") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "runner.watch", *args],
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, env={**os.environ, "RUNNER_HOME": str(self.home.root)},
            )  # fmt: skip
        if stdin is not None:
            assert child.stdin is not None
            child.stdin.write(stdin)
            child.stdin.close()

    def drive(self, names: Sequence[str], specs: Mapping[str, ContainerSpec], *,
              max_parallel: int | None) -> Iterator[tuple[str, LogLine]]:  # fmt: skip
        """As the owner of a run's experiments: start them in order, at most ``max_parallel`` at once,
        follow each on its own thread, and yield ``(experiment, line)`` as lines come.

        Each experiment is harvested (artifacts, end state) as it ends, which frees its
        place for the next.  Ctrl-C stops every experiment, waits for their harvest, and
        re-raises; ``runner stop`` from elsewhere works through the stop request in history.
        """
        out: queue.Queue[tuple[str, LogLine | None]] = queue.Queue()

        def follow_one(name: str) -> None:
            try:
                for line in self.follow(name):
                    out.put((name, line))
            except RunnerError as e:
                self.store.finish_experiment(name, state=ExpState.FAILED, exit_code=None, message=str(e))
            finally:
                out.put((name, None))

        pending = list(names)
        running: set[str] = set()
        interrupted = False
        while pending or running:
            try:
                while pending and not interrupted and (max_parallel is None or len(running) < max_parallel):
                    name = pending.pop(0)
                    try:
                        started = self.launch(self.store.get_experiment(name), specs[name])
                    except RunnerError:
                        continue  # recorded as failed by launch(); the others still run
                    if started:
                        running.add(name)
                        threading.Thread(target=follow_one, args=(name,), daemon=True).start()
                if not running:
                    continue
                name, line = out.get()
                if line is None:
                    running.discard(name)
                else:
                    yield name, line
            except KeyboardInterrupt:
                interrupted = True
                for name in pending:
                    self.store.finish_experiment(name, state=ExpState.STOPPED, exit_code=None, message="stopped")
                pending.clear()
                for name in running:
                    self.stop(self.store.get_experiment(name))
        if interrupted:
            raise KeyboardInterrupt

    def spawn_run_watcher(self, names: Sequence[str], specs: Mapping[str, ContainerSpec], *,
                          max_parallel: int | None) -> None:  # fmt: skip
        """Hand a run's experiments to a detached driver (``python -m runner.watch --run``).

        The container specs go through its standard input, so environment values given
        with ``--env`` are never written to disk.
        """
        doc = {"owner": os.getpid(), "max_parallel": max_parallel, "experiments": list(names),
               "specs": {n: dataclasses.asdict(specs[n]) for n in names}}  # fmt: skip
        self._spawn(["--run"], stdin=json.dumps(doc).encode())

    def follow(self, name: str) -> Iterator[LogLine]:
        """As the owner: stream the container's output into the log file (and to the caller), then harvest."""
        exp = self.store.get_experiment(name)
        if exp.handle is None:
            return
        writer = LogWriter(self.home.experiment_log(exp.run, name))
        try:
            for line in self.engine.follow_logs(exp.handle):
                writer.write(line)
                yield line
        except NotFoundError:
            writer.write(LogLine("stderr", now_iso(), "runner: the container disappeared before it ended"))
        except EngineError as e:
            writer.write(LogLine("stderr", now_iso(), f"runner: lost the engine while following: {e}"))
        finally:
            writer.close()
        self.harvest(name)

    def harvest(self, name: str) -> None:
        """After the container ends: artifacts, end state, container removed."""
        exp = self.store.get_experiment(name)
        if exp.handle is None:
            return
        cid = exp.handle
        try:
            end = self.engine.wait(cid)
        except NotFoundError:
            self.store.finish_experiment(
                name, state=ExpState.FAILED, exit_code=None, message="container lost (removed, or the engine was reset)"
            )
            return
        self.collect_artifacts(exp, end.upper_dir)
        exp = self.store.get_experiment(name)  # a stop may have been asked meanwhile
        if exp.stop_requested:
            state, message = ExpState.STOPPED, "stopped"
        elif end.exit_code == 0:
            state, message = ExpState.COMPLETED, None
        elif end.oom_killed:
            state, message = ExpState.FAILED, "OOMKilled: the container ran out of its memory limit"
        else:
            state, message = ExpState.FAILED, end.error or f"exit code {end.exit_code}"
        self.store.finish_experiment(name, state=state, exit_code=end.exit_code, message=message)
        self.engine.remove(cid)

    def collect_artifacts(self, exp: ExperimentRecord, upper: str | None) -> list[str]:
        assert exp.handle is not None
        dest = self.home.artifacts(exp.run, exp.name)
        if upper is not None:
            return copy_from_layer(Path(upper) / PROJECT_DIR.lstrip("/"), dest)
        with self.engine.export(exp.handle, PROJECT_DIR) as tar:
            return extract_changed(tar, dest=dest)

    def stop(self, exp: ExperimentRecord) -> None:
        self.store.update_experiment(exp.name, stop_requested=1)
        if exp.handle is None:
            if not pid_alive(exp.owner_pid):
                self.store.finish_experiment(exp.name, state=ExpState.STOPPED, exit_code=None, message="stopped")
            return  # its owner sees the request before it starts the container
        self.engine.stop(exp.handle)
        if not pid_alive(exp.owner_pid) and self.store.claim(exp.name, pid=os.getpid(), previous=exp.owner_pid):
            self.harvest(exp.name)

    def reconcile(self, exp: ExperimentRecord) -> None:
        """Take over an active experiment whose owner died."""
        if not exp.state.active or pid_alive(exp.owner_pid):
            return
        if exp.handle is None:  # died while building or before start
            self.store.finish_experiment(
                exp.name, state=ExpState.FAILED, exit_code=None, message="runner stopped before the container started"
            )
            return
        state = self.engine.state(exp.handle)
        if state is not None and state.get("Running"):
            self.spawn_watcher(exp.name, previous=exp.owner_pid)
            return
        if self.store.claim(exp.name, pid=os.getpid(), previous=exp.owner_pid):
            if state is not None:
                # the container ended while nobody followed it: fetch its whole log now
                for _ in self.follow(exp.name):
                    pass
            else:
                self.harvest(exp.name)
