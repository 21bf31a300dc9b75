"""The local Docker target: launch an experiment's container, follow it, collect what it left.

Each running experiment has one *owner* process (its ``owner_pid`` in history): the
foreground ``runner run``, or a detached watcher (``python -m runner.targets.local.watch``).  The
owner writes the log file and, when the container ends, collects artifacts, records
the end state and removes the container.  Any other runner command that finds an
experiment whose owner died takes it over (:meth:`LocalTarget.reconcile`), so logs,
artifacts and history survive a killed CLI or a restarted engine.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.artifacts import copy_from_layer, extract_changed
from runner.errors import EngineError, NotFoundError, RunnerError, StoreError, StreamCutError, clip
from runner.home import Home
from runner.logs import LogLine, LogWriter, epoch, file_size, follow_file, now_iso, read_lines
from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary, TargetKind
from runner.render import PROJECT_DIR
from runner.store import Store
from runner.targets.base import Ended, Prepared, Published, Submission

if TYPE_CHECKING:
    from collections.abc import Callable

    from runner.adapters.docker_engine import ContainerEnd, ContainerSpec, DockerEngine
    from runner.options import RunOptions
    from runner.progress import Progress

#: how long a follower waits for a Docker engine that went away (a restart, an upgrade) before it gives up
ENGINE_WAIT = 300.0
#: the log file stops growing when less than this is free under RUNNER_HOME: history and end states still fit
DISK_RESERVE = 2 * 2**20
#: free space is looked at after every this many bytes of log
DISK_CHECK_EVERY = 64 * 2**10
#: the stream of runner's own notices among an experiment's output lines
NOTICE = "runner"


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


class GuardedLog:
    """An experiment's log file, written while there is room for it.

    When the disk under RUNNER_HOME is (nearly) full, or a write fails, the file stops
    there and :meth:`write` returns a notice once: output still reaches whoever
    follows, and the space left keeps history and the end state.
    """

    def __init__(self, path: Path, *, reserve: int | None = None) -> None:
        self.path = path
        self.reserve = DISK_RESERVE if reserve is None else reserve
        self._since_check = DISK_CHECK_EVERY  # look at the free space before the first line
        self._writer: LogWriter | None = None
        self._problem: str | None = None
        try:
            self._writer = LogWriter(path)
        except OSError as e:
            self._problem = e.strerror or str(e)

    def write(self, line: LogLine) -> str | None:
        if self._writer is None:
            if self._problem is None:
                return None
            problem, self._problem = self._problem, None
            return self._notice(problem)
        try:
            self._since_check += len(line.text) + 48
            if self._since_check >= DISK_CHECK_EVERY:
                self._since_check = 0
                st = os.statvfs(self.path.parent)
                if st.f_bavail * st.f_frsize < self.reserve:
                    raise OSError(errno.ENOSPC, f"less than {self.reserve // 2**20} MiB left on the disk")
            self._writer.write(line)
        except OSError as e:
            self.close()
            return self._notice(e.strerror or str(e))
        return None

    def _notice(self, problem: str) -> str:
        return (
            f"runner: the log file {self.path} stops here ({problem}); "
            "the output still shows here and the exit code is kept"
        )

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:
                pass
            self._writer = None


class LocalTarget:
    """The :class:`runner.targets.base.Target` of the local Docker engine."""

    kind = TargetKind.LOCAL

    def __init__(self, home: Home, store: Store, engine: DockerEngine, *, engine_wait: float = ENGINE_WAIT) -> None:
        self.home = home
        self.store = store
        self.engine = engine
        self.engine_wait = engine_wait
        #: how each experiment this process followed ended, also when history could not be written
        self.ends: dict[str, ExperimentRecord] = {}
        #: things the user should hear about that are not an experiment's output
        self.notes: list[str] = []

    def launch(self, exp: ExperimentRecord, spec: ContainerSpec) -> bool:
        """Start the container, owned by this process; False when a stop came first."""
        if self.store.get_experiment(exp.name).stop_requested:
            self.store.finish_experiment(
                exp.name, state=ExpState.STOPPED, exit_code=None, message="stopped before start"
            )
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
        """``python -m runner.targets.local.watch ARGS`` in its own session, outliving this process; its errors go to watch.log."""
        with open(self.home.root / "watch.log", "ab") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "runner.targets.local.watch", *args],
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                env={**os.environ, "RUNNER_HOME": str(self.home.root)},
            )
        if stdin is not None:
            assert child.stdin is not None
            child.stdin.write(stdin)
            child.stdin.close()

    def drive(
        self, names: Sequence[str], specs: Mapping[str, ContainerSpec], *, max_parallel: int | None
    ) -> Iterator[tuple[str, LogLine]]:
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
            except Exception as e:  # noqa: BLE001 - a follower says what stopped it, never a thread traceback
                message = e.message if isinstance(e, RunnerError) else f"{type(e).__name__}: {e}"
                out.put((name, LogLine(NOTICE, now_iso(), f"runner: stopped following {name}: {message}")))
                self._end(name, ExpState.FAILED, None, f"runner stopped following it: {message}")
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
                    self.stop_experiment(self.store.get_experiment(name))
        if interrupted:
            raise KeyboardInterrupt

    def spawn_run_watcher(
        self, names: Sequence[str], specs: Mapping[str, ContainerSpec], *, max_parallel: int | None
    ) -> None:
        """Hand a run's experiments to a detached driver (``python -m runner.targets.local.watch --run``).

        The container specs go through its standard input, so environment values given
        with ``--env`` are never written to disk.
        """
        doc = {
            "owner": os.getpid(),
            "max_parallel": max_parallel,
            "experiments": list(names),
            "specs": {n: dataclasses.asdict(specs[n]) for n in names},
        }
        self._spawn(["--run"], stdin=json.dumps(doc).encode())

    def follow(self, name: str) -> Iterator[LogLine]:
        """As the owner: stream the container's output into the log file (and to the caller), then harvest.

        A Docker engine that goes away meanwhile is waited for (with backoff, up to
        :attr:`engine_wait` seconds, saying so): the output goes on from where it
        stopped once it answers again, and the end is the script's.
        """
        exp = self.store.get_experiment(name)
        if exp.handle is None:
            return
        cid = exp.handle
        log = GuardedLog(self.home.experiment_log(exp.run, name))
        last, seen_at_last = "", 0  # the newest line's time, and how many lines had it: a resumed stream skips them
        outage: str | None = None
        try:
            while True:
                try:
                    replay = seen_at_last
                    # the engine's ``since`` is a whole second: lines of that second come again, skipped here
                    for line in self.engine.follow_logs(cid, since=int(epoch(last)) if last else None):
                        if line.time < last or (line.time == last and replay > 0):
                            replay -= line.time == last
                            continue
                        seen_at_last = seen_at_last + 1 if line.time == last else 1
                        last = line.time
                        notice = log.write(line)
                        if notice:
                            yield LogLine(NOTICE, now_iso(), notice)
                        yield line
                    break
                except NotFoundError:
                    log.write(LogLine("stderr", now_iso(), "runner: the container disappeared before it ended"))
                    break
                except StreamCutError:
                    continue  # the engine's log has the rest: follow on from the newest line seen
                except EngineError as e:
                    outage = outage or e.message
                    waiting = LogLine(
                        NOTICE,
                        now_iso(),
                        f"runner: lost the Docker engine ({e.message}); waiting up to "
                        f"{self.engine_wait:g} s for it to come back",
                    )
                    log.write(waiting)
                    yield waiting
                    state = self._wait_for_engine(cid)  # EngineError when it does not come back
                    if state is not None and state.get("Running"):
                        outage = None  # the container lived through it (live-restore, or only the connection broke)
                    back = LogLine(NOTICE, now_iso(), "runner: the Docker engine answers again; following on")
                    log.write(back)
                    yield back
        except EngineError as e:
            log.close()
            message = (
                f"the Docker engine stopped while it ran and did not come back within {self.engine_wait:g} s "
                f"({e.message}): its exit code is unknown; the container is kept"
            )
            self._end(name, ExpState.FAILED, None, message)
            yield LogLine(NOTICE, now_iso(), f"runner: {message}")
            return
        finally:
            log.close()
        self.harvest(name, outage=outage)

    def _wait_for_engine(self, cid: str) -> dict[str, object] | None:
        """Ask the engine about the container, with backoff, until it answers or :attr:`engine_wait` passes."""
        return self._retrying(lambda: self.engine.state(cid))  # type: ignore[return-value]

    def _retrying(self, call: Callable[[], object], *, lost: list[str] | None = None) -> object:
        """``call()``, retried with backoff while the engine does not answer; what it said goes to ``lost``."""
        deadline = time.monotonic() + self.engine_wait
        pause = 0.5
        while True:
            try:
                return call()
            except NotFoundError:
                raise
            except EngineError as e:
                if lost is not None:
                    lost.append(e.message)
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 10.0)

    def _end(self, name: str, state: ExpState, exit_code: int | None, message: str | None) -> bool:
        """Record an end state (first writer wins); False when history could not be written (it is kept in memory)."""
        try:
            exp = self.store.get_experiment(name)
            self.ends[name] = dataclasses.replace(
                exp, state=state, exit_code=exit_code, message=message, finished_at=time.time()
            )
            self.store.finish_experiment(name, state=state, exit_code=exit_code, message=message)
        except StoreError as e:
            self.notes.append(f"cannot record how {name} ended in history ({e.message})")
            return False
        return True

    def harvest(self, name: str, *, outage: str | None = None) -> None:
        """After the container ends: artifacts, end state, container removed.

        Each step that fails says so and the next still runs; the container is removed
        only once its end is recorded, so a later command can still learn it.
        """
        exp = self.store.get_experiment(name)
        if exp.handle is None:
            return
        cid = exp.handle
        lost: list[str] = []
        try:
            # A stopping engine closes its API first, then stops the containers (live-restore off): the log
            # stream then ends as if the script had, and only this wait meets the engine gone.
            end: ContainerEnd = self._retrying(lambda: self.engine.wait(cid), lost=lost)  # type: ignore[assignment]
        except NotFoundError:
            self._end(name, ExpState.FAILED, None, "container lost (removed, or the engine was reset)")
            return
        outage = outage or (lost[0] if lost else None)
        if (
            outage is None
            and end.exit_code in (137, 143)
            and not end.oom_killed
            and not self._asked_to_stop(name)
            and not self.engine.answers()
        ):
            # A stopping dockerd closes its socket, then stops the containers; our kept-alive connection
            # still heard this end, a new one is refused: the engine stopped it.
            outage = "the engine stopped answering as the container ended"
        problems = []
        try:
            self.collect_artifacts(exp, end.upper_dir)
        except (OSError, RunnerError) as e:
            problems.append(f"artifacts not all saved: {getattr(e, 'strerror', None) or e}")
        try:
            exp = self.store.get_experiment(name)  # a stop may have been asked meanwhile
        except StoreError:
            pass
        if exp.stop_requested:
            state, message = ExpState.STOPPED, "stopped"
        elif end.exit_code == 0:
            state, message = ExpState.COMPLETED, None
        elif end.oom_killed:
            state, message = ExpState.FAILED, "OOMKilled: the container ran out of its memory limit"
        else:
            state, message = ExpState.FAILED, end.error or f"exit code {end.exit_code}"
            if outage and end.exit_code in (137, 143):
                message += (
                    " (stopped by the Docker engine going away: with live-restore off, a restart stops containers)"
                )
        if problems:
            message = "; ".join([*([message] if message else []), *problems])
        if self._end(name, state, end.exit_code, message):
            try:
                self._retrying(lambda: self.engine.remove(cid))  # an engine that is restarting: once it is back
            except EngineError as e:
                self.notes.append(f"the container of {name} was not removed ({e.message})")
        else:
            self.notes.append(
                f"the container of {name} is kept: `runner status` records its end once history can be written"
            )

    def _asked_to_stop(self, name: str) -> bool:
        try:
            return bool(self.store.get_experiment(name).stop_requested)
        except StoreError:
            return False

    def collect_artifacts(self, exp: ExperimentRecord, upper: str | None) -> list[str]:
        assert exp.handle is not None
        dest = self.home.artifacts(exp.run, exp.name)
        if upper is not None:
            return copy_from_layer(Path(upper) / PROJECT_DIR.lstrip("/"), dest)
        with self.engine.export(exp.handle, PROJECT_DIR) as tar:
            return extract_changed(tar, dest=dest)

    def stop_experiment(self, exp: ExperimentRecord) -> None:
        self.store.update_experiment(exp.name, stop_requested=1)
        if exp.handle is None:
            if not pid_alive(exp.owner_pid):
                self.store.finish_experiment(exp.name, state=ExpState.STOPPED, exit_code=None, message="stopped")
            return  # its owner sees the request before it starts the container
        self.engine.stop(exp.handle)
        if not pid_alive(exp.owner_pid) and self.store.claim(exp.name, pid=os.getpid(), previous=exp.owner_pid):
            self.harvest(exp.name)

    def take_over(self, exp: ExperimentRecord) -> None:
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

    # -- the Target interface (runner.targets.base) --------------------------------------

    def describe(self) -> str:
        return "local docker"

    def prepare(self, opts: RunOptions, *, name: str | None) -> Prepared:
        return Prepared()

    def publish(self, sub: Submission) -> Generator[Progress, None, Published]:
        yield from ()  # nothing to move: the engine that built it runs it
        return Published(sub.image)

    def container_specs(self, sub: Submission, image: str, opts: RunOptions) -> dict[str, ContainerSpec]:
        from runner.adapters.docker_engine import ContainerSpec
        from runner.render import ARGV_FILE, argv_through_file, exec_too_long
        from runner.runtime import env_for

        specs = {}
        for exp in sub.experiments:
            command, files = list(exp.command), {}
            if exec_too_long(command):  # longer than exec allows: sys.argv comes from a file instead
                command, argv = argv_through_file(command)
                files = {ARGV_FILE: argv}
            specs[exp.name] = ContainerSpec(
                image=image,
                command=command,
                files=files,
                name=f"runner-{exp.name}",
                labels={
                    "app.kubernetes.io/managed-by": "runner",
                    "runner/run": sub.run.name,
                    "runner/experiment": exp.name,
                },
                env={**env_for(sub.run.name, exp.name, exp.params), **opts.env},
                workdir=sub.plan.container_workdir,
                cpus=opts.resources.cpus,
                memory_bytes=opts.resources.memory_bytes,
                gpus=opts.resources.gpus,
            )
        return specs

    def start(self, sub: Submission, image: str, opts: RunOptions) -> None:
        """Detached: a watcher process starts the experiments (at most max_parallel at once) and follows them.
        Otherwise :meth:`stream` starts them in this process, as places free up."""
        if opts.detach:
            names = [e.name for e in sub.experiments]
            self.spawn_run_watcher(names, self.container_specs(sub, image, opts), max_parallel=opts.max_parallel)

    def fail(self, sub: Submission, message: str) -> None:
        pass  # history is the only record of a local run, and the App has written the failure there

    def stream(self, sub: Submission, opts: RunOptions) -> Iterator[tuple[str, LogLine]]:
        names = [e.name for e in sub.experiments]
        return self.drive(names, self.container_specs(sub, sub.image, opts), max_parallel=opts.max_parallel)

    def experiment(self, run: RunRecord, name: str) -> ExperimentRecord:
        ended = self.ends.get(name)
        try:
            exp = self.store.get_experiment(name)
        except StoreError:
            if ended is None:
                raise
            return ended
        return ended if ended is not None and exp.state.active else exp

    def observe(self, *, run: str | None = None) -> list[RunSummary] | None:
        return None  # history is kept by the owner of each experiment

    def reconcile(self, experiments: list[ExperimentRecord]) -> None:
        for exp in experiments:
            self.take_over(exp)

    def logs(
        self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, tail: int | None, follow: bool
    ) -> Iterator[str]:
        for exp in experiments:
            path = self.home.experiment_log(run.name, exp.name)
            prefix = f"{exp.name} " if len(experiments) > 1 else ""
            yield from (prefix + ln for ln in read_lines(path, tail=tail))
            if follow:
                ended = self._ended(exp.name)
                yield from (prefix + ln for ln in follow_file(path, start=file_size(path), done=ended))

    def _ended(self, experiment: str) -> Callable[[], bool]:
        return lambda: not self.store.get_experiment(experiment).state.active

    def stop(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...]) -> list[str]:
        stopped = []
        for exp in experiments:
            if exp.state.active:
                self.stop_experiment(exp)
                stopped.append(exp.name)
        return stopped

    def artifacts(self, run: RunRecord, experiment: ExperimentRecord, dest: Path) -> list[str]:
        from runner.artifacts import copy_artifacts

        try:
            return copy_artifacts(self.home.artifacts(run.name, experiment.name), dest)
        except OSError as e:
            raise RunnerError(
                f"cannot copy the artifacts of {experiment.name} to {clip(str(dest))}: {e.strerror or e}"
            ) from e

    def delete(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, whole: bool) -> Ended:
        """The containers go; logs, artifacts and the run's folder are the App's (they live in RUNNER_HOME)."""
        notes = []
        for exp in experiments:
            if exp.handle:
                try:
                    self.engine.remove(exp.handle)
                except RunnerError as e:
                    notes.append(f"the container of {exp.name} was not removed ({e.message})")
        return Ended(whole, notes)
