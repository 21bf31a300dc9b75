"""The application layer: what each command does, in terms of the core, the store and a target.

The CLI, the Python API and the web view call these and decide how to show what they
return; nothing here prints or exits.  :meth:`App.run` is the one run sequence (plan,
record, build, publish, start, stream).  A target is chosen once per run, from the
options (a new run) or from history (an existing one); the target does the rest.
Docker and Kubernetes are imported only when a use case needs them.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.artifacts import writable_folder
from runner.errors import BuildError, NotFoundError, RunnerError, StoreError, UsageError, clip
from runner.events import Detached, Recorded, RunEvent, outputs
from runner.home import Home
from runner.inspection import Inspection, image_for, inspect, python_warnings
from runner.logs import read_lines
from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary, TargetKind
from runner.names import random_run_name, split_experiment
from runner.options import KubeOptions, RunOptions, expand_experiments, options_doc
from runner.plan import Plan, PlanRequest, check_request, make_plan
from runner.render import container_command
from runner.store import Store
from runner.sweep import Experiment
from runner.targets import Adapters, in_sight, make_target
from runner.targets.base import Submission, Target
from runner.warmup import warm_build_tools

if TYPE_CHECKING:
    from runner.adapters.docker_engine import DockerEngine
    from runner.targets.kubernetes import KubeTarget


class App:
    def __init__(self, home: Home, *, cluster: KubeOptions | None = None, adapters: Adapters | None = None) -> None:
        """``cluster``: the Kubernetes context and namespace to read (--context/--namespace; None: the current ones);
        ``adapters``: the engine, cluster and registry (the real ones by default)."""
        self.home = home
        self.cluster = cluster
        self.adapters = adapters or Adapters()
        self._store: Store | None = None
        self._engine: DockerEngine | None = None
        self._targets: dict[tuple[TargetKind, str | None, str | None], Target] = {}
        #: which target a run only a cluster knew was found in
        self._found_in: dict[str, Target] = {}
        #: things worth telling the user that are not errors (a cluster that could not be read for history)
        self.notes: list[str] = []

    # -- adapters and targets, made on first use -----------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.home.db, records=self.home.runs)
        return self._store

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = self.adapters.engine()
        return self._engine

    def target(self, kind: TargetKind, where: KubeOptions | None = None) -> Target:
        key = (kind, where.context if where else None, where.namespace if where else None)
        if key not in self._targets:
            self._targets[key] = make_target(
                kind, home=self.home, store=self.store, engine=lambda: self.engine, where=where, adapters=self.adapters
            )
        return self._targets[key]

    def target_of(self, run: RunRecord) -> Target:
        """The target a run went to; --context/--namespace given now override what the run recorded."""
        if run.name in self._found_in:
            return self._found_in[run.name]
        o = run.options
        c = self.cluster
        where = KubeOptions(
            context=(c.context if c else None) or o.get("context"),
            namespace=(c.namespace if c else None) or o.get("namespace"),
        )
        return self.target(TargetKind(run.target), where)

    def kubernetes(self, where: KubeOptions | None = None) -> KubeTarget:
        """The Kubernetes target (of ``cluster`` by default), for what only it has: datastores, dry runs."""
        from runner.targets.kubernetes import KubeTarget

        target = self.target(TargetKind.KUBERNETES, where or self.cluster)
        assert isinstance(target, KubeTarget)
        return target

    def _targets_in_sight(self, known: set[str] = frozenset()) -> list[Target]:  # type: ignore[assignment]
        """Targets with a live view of their runs (a cluster, when one is configured or ``known`` has its kind)."""
        return [self.target(k, self.cluster) for k in TargetKind if in_sight(k, self.cluster, known=k.value in known)]

    # -- inspect -------------------------------------------------------------------------

    def plan(self, req: PlanRequest) -> Plan:
        try:
            return make_plan(req, cache_dir=self.home.cache)
        except PermissionError as e:
            where = str(e.filename or "")
            if where.startswith(str(self.home.root)):
                raise RunnerError(
                    f"cannot write {clip(where)}: permission denied", hint="check the permissions of RUNNER_HOME"
                ) from e
            # a file of the project that cannot be read: an error naming it, not a project built without it
            raise UsageError(
                f"cannot read {clip(where or '?')} in the project: permission denied",
                hint="make it readable, or leave it out with .runnerignore",
            ) from e

    def inspect(self, req: PlanRequest) -> Inspection:
        """The plan, and the image tag if the engine can tell the base image's id.  No side effects."""
        return inspect(self.plan(req), self.engine, self.home.cache)

    # -- run -----------------------------------------------------------------------------

    def run(self, req: PlanRequest, opts: RunOptions, *, name: str | None = None) -> Generator[RunEvent, None, None]:
        """The run sequence, for the CLI and the Python API alike: check, plan, record, build, publish,
        start, then (unless ``opts.detach``) stream every experiment's output until it ends.

        Everything that can be checked is checked before anything is built.  A failure
        before the start is recorded as the run's end; Ctrl-C before it as "stopped".
        """
        target = self.target(TargetKind.KUBERNETES if opts.kube else TargetKind.LOCAL, opts.kube)
        experiments = expand_experiments(req.args, opts)
        if name is not None:
            self.store.check_new_name(name)
        prepared = target.prepare(opts, name=name)
        check_request(req)
        warm_build_tools(self.engine, self.home.cache)  # a home's first run only
        sub = self._record(
            self.plan(req), experiments, kind=target.kind, options={**options_doc(opts), **prepared.options}, name=name
        )
        try:
            yield Recorded(sub, target.describe(), prepared.notes)
            if not sub.cached:
                yield from self.build(sub)
            published = yield from target.publish(sub)
            yield published
            target.start(sub, published.ref, opts)
        except RunnerError as e:
            self._end_all(sub, ExpState.FAILED, e.message)
            target.fail(sub, e.message)
            raise
        except BaseException:
            self._end_all(sub, ExpState.STOPPED, "interrupted")
            raise
        if opts.detach:
            yield Detached(sub.experiments[0].name if len(sub.experiments) == 1 else sub.run.name)
            return
        yield from outputs(target.stream(sub, opts))

    def outcome(self, sub: Submission) -> tuple[list[ExperimentRecord], list[str]]:
        """How each experiment of a run this process followed ended, and the target's notes."""
        target = self.target_of(sub.run)
        return [target.experiment(sub.run, e.name) for e in sub.experiments], list(target.notes)

    def _end_all(self, sub: Submission, state: ExpState, message: str) -> None:
        try:  # those still active (the store's first writer wins)
            for exp in sub.experiments:
                self.store.finish_experiment(exp.name, state=state, exit_code=None, message=message)
        except StoreError:
            pass  # history cannot be written (a full disk): the error itself reaches the user

    def _record(
        self,
        plan: Plan,
        experiments: Sequence[Experiment],
        *,
        kind: TargetKind,
        options: dict[str, object],
        name: str | None = None,
    ) -> Submission:
        """The image for a plan (cached or to build) and a new run in history, owned by this process."""
        image = image_for(plan, self.engine, self.home.cache)
        run = self.store.create_run(
            make_name=(lambda: name) if name else random_run_name,
            project=plan.project,
            root=str(plan.root),
            script=plan.script,
            args=plan.args,
            target=kind.value,
            options=options,
            experiments=[(container_command(plan.argv0, e.args), e.params) for e in experiments],
            state=ExpState.QUEUED if image.cached else ExpState.BUILDING,
            owner_pid=os.getpid(),
        )
        self.store.update_run(run.name, image=image.ref, cached=int(image.cached))
        run_dir = self.home.run_dir(run.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "requirements.lock").write_text(plan.lock.text())
        (run_dir / "Dockerfile").write_text(plan.dockerfile)
        run, exps = self.store.get_run(run.name), self.store.experiments(run.name)
        return Submission(run, plan, image.ref, image.cached, exps, python_warnings=image.python_warnings)

    def build(self, sub: Submission) -> Iterator[RunEvent]:
        """Build the image, yielding the build log (kept for ``logs --build``), its progress, then :class:`Built`."""
        from runner.build import build_once

        log_path = self.home.build_log(sub.run.name)
        self.store.update_run(sub.run.name, build_log=str(log_path))
        try:
            yield from build_once(self.engine, sub.plan, tag=sub.image, log_path=log_path, cache_dir=self.home.cache)
        except BuildError as e:
            e.hint = f"full build log: runner logs {sub.run.name} --build"
            raise

    def dry_run(self, req: PlanRequest, opts: RunOptions) -> tuple[str, list[str]]:
        """The manifests a Kubernetes ``runner run`` would apply, as multi-document YAML, and notes.

        Nothing is created; the cluster is asked only about datastores, the registry about the image.
        """
        plan = self.plan(req)
        base_id = self.engine.image_id(plan.base_image)
        if base_id is None:
            raise UsageError(f"base image {plan.base_image} is not present, so the image tag is not known yet")
        notes = [*plan.notices, *python_warnings(plan, self.engine, base_id, self.home.cache)]  # as a run would
        text, more = self.kubernetes(opts.kube or KubeOptions()).dry_run(
            plan, plan.image_ref(base_id), expand_experiments(req.args, opts), opts, options=options_doc(opts)
        )
        return text, notes + more

    # -- history -------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Take over active experiments whose owner died (a killed CLI, a restarted engine).

        History that cannot be written (a full disk) leaves them for a later command: reading goes on.
        """
        try:
            stale: dict[str, list[ExperimentRecord]] = {}
            for exp in self.store.active_experiments():
                # no owner: the target is the truth (a launched Job); a dead one: someone must take over
                if exp.owner_pid is not None and not _owner_alive(exp):
                    stale.setdefault(exp.run, []).append(exp)
            for run, exps in stale.items():
                try:
                    self.target_of(self.store.get_run(run)).reconcile(exps)
                except StoreError:
                    raise
                except RunnerError as e:
                    self.notes.append(f"{run} not taken over: {e.message}")
        except StoreError as e:
            self.notes.append(f"runs whose follower ended are taken over once history can be written ({e.message})")

    def status(self) -> list[RunSummary]:
        self.reconcile()
        return [s for s in self._merged(self.store.summaries(active_only=True)) if s.active]

    def history(self, *, limit: int | None = None) -> list[RunSummary]:
        self.reconcile()
        merged = self._merged(self.store.summaries())
        return merged[:limit] if limit else merged

    def _merged(self, cached: list[RunSummary]) -> list[RunSummary]:
        """History's runs, with what the targets see now in place of their copies (the copies when a target is away)."""
        merged = {s.run.name: s for s in cached}
        try:
            targets = self._targets_in_sight(known={s.run.target for s in cached})
        except RunnerError as e:
            self.notes.append(f"runs as last seen ({e.message})")
            targets = []
        for t in targets:
            try:
                live = t.observe()
            except RunnerError as e:
                self.notes.append(f"{t.kind.value} runs as last seen (cannot read the cluster: {e.message})")
                continue
            merged.update({s.run.name: s for s in live or ()})
        return sorted(merged.values(), key=lambda s: s.run.created_at, reverse=True)

    def run_summary(self, name: str) -> RunSummary:
        self.reconcile()
        run, _ = self.select(name)
        try:
            found = self.target_of(run).observe(run=run.name)
        except RunnerError as err:
            self.notes.append(f"as last seen (cannot read the cluster: {err.message})")
            found = None
        return found[0] if found else RunSummary(run, self.store.experiments(run.name))

    def select(self, name: str) -> tuple[RunRecord, tuple[ExperimentRecord, ...]]:
        """A run name selects all its experiments; ``RUN-expN`` selects one.  Runs only a cluster knows are found there."""
        try:
            run = self.store.get_run(name)
            return run, self.store.experiments(run.name)
        except NotFoundError:
            pass
        try:
            exp = self.store.get_experiment(name)
            return self.store.get_run(exp.run), (exp,)
        except NotFoundError:
            pass
        run_name, _ = split_experiment(name)
        for target in self._targets_in_sight():
            for candidate, pick in ((name, None), (run_name, name)):
                for s in target.observe(run=candidate) or ():
                    exps = tuple(e for e in s.experiments if pick is None or e.name == pick)
                    if exps:
                        self._found_in[s.run.name] = target
                        return s.run, exps
        raise NotFoundError(f"no run or experiment named {clip(name)}", hint="`runner history` lists the runs")

    # -- logs, stop, artifacts, delete ---------------------------------------------------

    def logs(self, name: str, *, build: bool = False, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """Formatted log lines: the build log (if the run built), then each experiment's output."""
        self.reconcile()
        run, exps = self.select(name)
        # the build log comes first, unless only the newest lines are wanted
        build_log = self.home.build_log(run.name)
        if build_log.is_file() and (build or (tail is None and not follow)):
            yield from (f"[build] {ln}" for ln in read_lines(build_log))
        if not build:
            yield from self.target_of(run).logs(run, exps, tail=tail, follow=follow)

    def experiment(self, name: str) -> ExperimentRecord:
        """An experiment as its target sees it now."""
        run, exps = self.select(name)
        return self.target_of(run).experiment(run, exps[0].name)

    def stop(self, name: str) -> list[str]:
        self.reconcile()
        run, exps = self.select(name)
        return self.target_of(run).stop(run, exps)

    def artifacts(self, name: str, download_dir: Path) -> dict[str, list[str]]:
        """Copy the collected files to ``DIR/<run>/<experiment>/<path>``; returns the files per experiment."""
        self.reconcile()
        run, exps = self.select(name)
        writable_folder(download_dir, "--download-dir")
        target = self.target_of(run)
        return {exp.name: target.artifacts(run, exp, download_dir / run.name / exp.name) for exp in exps}

    def delete(self, name: str) -> dict[str, Any]:
        """Remove a run or one experiment: what it left on its target, and its history entry.

        Kubernetes: Jobs, pods, record ConfigMaps, logs and artifacts on the data volume.
        Local: containers, logs, artifacts, the run's folder.  Images stay (they are shared
        by content: the next run of the same code reuses them).  What is still running
        is refused: stop it first.
        """
        self.reconcile()
        run, exps = self.select(name)
        target = self.target_of(run)
        names = [e.name for e in exps]
        live = {e.name: e for e in exps}
        for s in target.observe(run=run.name) or ():
            live.update({e.name: e for e in s.experiments if e.name in live})
        busy = [e for e in live.values() if e.state.active]
        if busy:
            raise UsageError(
                f"{busy[0].name} is still {busy[0].state.value}: delete removes only what has ended",
                hint=f"stop it first with `runner stop {name}`",
            )
        try:
            known = {e.name for e in self.store.experiments(run.name)}
        except RunnerError:
            known = set()
        ended = target.delete(run, exps, whole=name == run.name)  # a run name selects it all; RUN-expN one
        whole = ended.run_deleted
        if known:
            whole = self.store.forget(run.name, None if whole else [n for n in names if n in known]) or whole
        self.home.remove(run.name, None if whole else names)
        return {"run": run.name, "target": run.target, "experiments": names, "run_deleted": whole, "notes": ended.notes}


def _owner_alive(exp: ExperimentRecord) -> bool:
    from runner.targets.local import pid_alive

    return exp.owner_pid == os.getpid() or pid_alive(exp.owner_pid)
