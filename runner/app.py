"""The application layer: what each command does, in terms of the core and the adapters.

The CLI calls these and decides how to show what they return; nothing here prints
or exits.  Docker is imported only when a use case needs the engine.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.artifacts import copy_artifacts, list_artifacts
from runner.errors import BuildError, RunnerError
from runner.home import Home
from runner.image import ContextEntry, write_context
from runner.logs import LogLine, file_size, follow_file, read_lines
from runner.names import random_run_name, split_experiment
from runner.plan import Plan, PlanRequest, make_plan
from runner.resources import Resources
from runner.store import ExperimentRecord, ExpState, RunRecord, RunSummary, Store

if TYPE_CHECKING:
    from runner.adapters.docker_engine import DockerEngine
    from runner.local import LocalTarget

LOCAL = "local"


@dataclass(frozen=True)
class RunOptions:
    resources: Resources = field(default_factory=Resources)
    env: dict[str, str] = field(default_factory=dict)
    detach: bool = False


@dataclass(frozen=True)
class Inspection:
    plan: Plan
    image: str | None  # None when the base image's id is not known here
    note: str | None = None


@dataclass(frozen=True)
class Submission:
    run: RunRecord
    plan: Plan
    image: str
    cached: bool
    experiments: tuple[ExperimentRecord, ...]


class App:
    def __init__(self, home: Home) -> None:
        self.home = home
        self._store: Store | None = None
        self._engine: DockerEngine | None = None

    # -- adapters, made on first use --------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.home.db)
        return self._store

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            from runner.adapters.docker_engine import DockerEngine

            self._engine = DockerEngine()
        return self._engine

    @property
    def local(self) -> LocalTarget:
        from runner.local import LocalTarget

        return LocalTarget(self.home, self.store, self.engine)

    # -- inspect, run -----------------------------------------------------------------

    def plan(self, req: PlanRequest) -> Plan:
        return make_plan(req, cache_dir=self.home.cache)

    def inspect(self, req: PlanRequest) -> Inspection:
        """The plan, and the image tag if the engine can tell the base image's id.  No side effects."""
        plan = self.plan(req)
        try:
            base_id = self.engine.image_id(plan.base_image)
        except RunnerError as e:
            return Inspection(plan, None, f"image tag unknown: {e.message}")
        if base_id is None:
            return Inspection(plan, None, f"image tag unknown until the base image {plan.base_image} is pulled or built")
        return Inspection(plan, plan.image_ref(base_id))

    def submit(self, req: PlanRequest, opts: RunOptions) -> Submission:
        """Plan, resolve the image, and record the run.  Building and launching come next."""
        plan = self.plan(req)
        base_id = self.engine.image_id(plan.base_image) or self.engine.pull(plan.base_image)
        image = plan.image_ref(base_id)
        cached = self.engine.image_id(image) is not None
        run = self.store.create_run(
            make_name=random_run_name,
            project=plan.project,
            root=str(plan.root),
            script=plan.script,
            args=plan.args,
            target=LOCAL,
            options={"resources": _resources_doc(opts.resources), "env": sorted(opts.env)},
            experiments=[(plan.command, {})],
            state=ExpState.QUEUED if cached else ExpState.BUILDING,
            owner_pid=os.getpid(),
        )
        self.store.update_run(run.name, image=image, cached=int(cached))
        run_dir = self.home.run_dir(run.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "requirements.lock").write_text(plan.lock.text())
        (run_dir / "Dockerfile").write_text(plan.dockerfile)
        return Submission(self.store.get_run(run.name), plan, image, cached, self.store.experiments(run.name))

    def build(self, sub: Submission) -> Iterator[str]:
        """Build the image (a no-op when cached), yielding the build log; the log is kept for ``logs --build``."""
        if sub.cached:
            return
        from runner.buildenv import read_build_env, redact

        env = read_build_env()
        ctx = io.BytesIO()
        write_context(ctx, [*sub.plan.entries, ContextEntry(".runner/deps/ca.pem", 0o644, data=env.ca_bundle)])
        ctx.seek(0)
        log_path = self.home.build_log(sub.run.name)
        self.store.update_run(sub.run.name, build_log=str(log_path))
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                for line in self.engine.build(ctx, tag=sub.image, buildargs=env.buildargs):
                    line = redact(line, env)
                    log.write(line + "\n")
                    log.flush()
                    yield line
            except RunnerError as e:
                for exp in sub.experiments:
                    self.store.finish_experiment(exp.name, state=ExpState.FAILED, exit_code=None, message=e.message)
                if isinstance(e, BuildError):
                    e.hint = f"full build log: runner logs {sub.run.name} --build"
                raise
            except BaseException:
                for exp in sub.experiments:
                    self.store.finish_experiment(exp.name, state=ExpState.STOPPED, exit_code=None, message="interrupted")
                raise

    def launch(self, sub: Submission, opts: RunOptions) -> None:
        from runner.adapters.docker_engine import ContainerSpec
        from runner.render import PROJECT_DIR

        for exp in sub.experiments:
            spec = ContainerSpec(
                image=sub.image,
                command=list(exp.command),
                name=f"runner-{exp.name}",
                labels={"app.kubernetes.io/managed-by": "runner", "runner/run": sub.run.name, "runner/experiment": exp.name},
                env=opts.env,
                workdir=PROJECT_DIR,
                cpus=opts.resources.cpus,
                memory_bytes=opts.resources.memory_bytes,
                gpus=opts.resources.gpus,
            )
            self.local.launch(exp, spec, detach=opts.detach)

    def follow(self, experiment: str) -> Iterator[LogLine]:
        """Follow an experiment this process owns (``runner run`` without ``--detach``)."""
        return self.local.follow(experiment)

    def experiment(self, name: str) -> ExperimentRecord:
        return self.store.get_experiment(name)

    # -- history ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Take over active local experiments whose owner died (a killed CLI, a restarted engine)."""
        stale = [e for e in self.store.active_experiments() if not _owner_alive(e)]
        if stale:
            local = self.local
            for exp in stale:
                local.reconcile(exp)

    def status(self) -> list[RunSummary]:
        self.reconcile()
        return self.store.summaries(active_only=True)

    def history(self, *, limit: int | None = None) -> list[RunSummary]:
        self.reconcile()
        return self.store.summaries(limit=limit)

    def run_summary(self, name: str) -> RunSummary:
        self.reconcile()
        run_name, _ = split_experiment(name)
        try:
            run = self.store.get_run(name)
        except RunnerError:
            run = self.store.get_run(run_name)
        return RunSummary(run, self.store.experiments(run.name))

    def select(self, name: str) -> tuple[RunRecord, tuple[ExperimentRecord, ...]]:
        """A run name selects all its experiments; ``RUN-expN`` selects one."""
        try:
            run = self.store.get_run(name)
            return run, self.store.experiments(run.name)
        except RunnerError:
            exp = self.store.get_experiment(name)
            return self.store.get_run(exp.run), (exp,)

    # -- logs, stop, artifacts --------------------------------------------------------

    def logs(self, name: str, *, build: bool = False, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """Formatted log lines: the build log (if the run built), then each experiment's output."""
        self.reconcile()
        run, exps = self.select(name)
        # the build log comes first, unless only the newest lines are wanted
        if run.build_log and (build or (tail is None and not follow)):
            yield from (f"[build] {ln}" for ln in read_lines(Path(run.build_log)))
        if build:
            return
        for exp in exps:
            path = self.home.experiment_log(run.name, exp.name)
            prefix = f"{exp.name} " if len(exps) > 1 else ""
            lines = read_lines(path, tail=tail)
            yield from (prefix + ln for ln in lines)
            if follow:
                ended = self._ended(exp.name)
                yield from (prefix + ln for ln in follow_file(path, start=file_size(path), done=ended))

    def _ended(self, experiment: str) -> Callable[[], bool]:
        return lambda: not self.store.get_experiment(experiment).state.active

    def stop(self, name: str) -> list[str]:
        self.reconcile()
        _, exps = self.select(name)
        stopped = []
        for exp in exps:
            if exp.state.active:
                self.local.stop(exp)
                stopped.append(exp.name)
        return stopped

    def artifacts(self, name: str, download_dir: Path) -> dict[str, list[str]]:
        """Copy the collected files to ``DIR/<run>/<experiment>/<path>``; returns the files per experiment."""
        self.reconcile()
        run, exps = self.select(name)
        out = {}
        for exp in exps:
            src = self.home.artifacts(run.name, exp.name)
            out[exp.name] = copy_artifacts(src, download_dir / run.name / exp.name)
        return out

    def artifact_list(self, name: str) -> dict[str, list[str]]:
        run, exps = self.select(name)
        return {e.name: list_artifacts(self.home.artifacts(run.name, e.name)) for e in exps}


def _owner_alive(exp: ExperimentRecord) -> bool:
    from runner.local import pid_alive

    return exp.owner_pid == os.getpid() or pid_alive(exp.owner_pid)


def _resources_doc(r: Resources) -> dict[str, object]:
    return {"cpus": r.cpus, "memory": r.memory, "gpus": r.gpus}
