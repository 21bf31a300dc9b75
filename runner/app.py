"""The application layer: what each command does, in terms of the core and the adapters.

The CLI calls these and decides how to show what they return; nothing here prints
or exits.  Docker is imported only when a use case needs the engine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.artifacts import copy_artifacts
from runner.errors import BuildError, NotFoundError, RunnerError, StoreError, UsageError, clip
from runner.home import Home
from runner.logs import LogLine, file_size, follow_file, read_lines
from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary
from runner.names import random_run_name, split_experiment
from runner.options import KubeOptions, RunOptions, describe_sweep
from runner.plan import Plan, PlanRequest, make_plan
from runner.render import container_command
from runner.resources import Resources
from runner.runtime import EXPERIMENT_VAR
from runner.store import RepairReport, Store
from runner.sweep import Experiment, expand

if TYPE_CHECKING:
    from runner.adapters.docker_engine import ContainerSpec, DockerEngine
    from runner.deps.pycheck import PythonCheck
    from runner.kube import JobSpec
    from runner.kubetarget import DatastoreVersion, KubeTarget
    from runner.local import LocalTarget

LOCAL = "local"
KUBE = "kubernetes"


@dataclass(frozen=True)
class Inspection:
    plan: Plan
    image: str | None  # None when the base image's id is not known here
    note: str | None = None
    #: the base image's Python against the lock (None: not checked, ``python_note`` says why)
    python: PythonCheck | None = None
    python_note: str | None = None


@dataclass(frozen=True)
class Submission:
    run: RunRecord
    plan: Plan
    image: str
    cached: bool
    experiments: tuple[ExperimentRecord, ...]
    #: the base image's Python against the lock: warnings (errors stop the run before it is recorded)
    python_warnings: tuple[str, ...] = ()


class App:
    def __init__(self, home: Home) -> None:
        self.home = home
        self._store: Store | None = None
        self._engine: DockerEngine | None = None
        self._local: LocalTarget | None = None
        self._kube: dict[tuple[str | None, str | None], KubeTarget] = {}
        #: things worth telling the user that are not errors (a cluster that could not be read for history)
        self.notes: list[str] = []

    # -- adapters, made on first use --------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.home.db, records=self.home.runs)
        return self._store

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            from runner.adapters.docker_engine import DockerEngine

            self._engine = DockerEngine()
        return self._engine

    @property
    def local(self) -> LocalTarget:
        if self._local is None:
            from runner.local import LocalTarget

            self._local = LocalTarget(self.home, self.store, self.engine)
        return self._local

    def kube(self, ko: KubeOptions | None = None) -> KubeTarget:
        """The Kubernetes target for a kubeconfig context and namespace (None: the current ones)."""
        context, namespace = (ko.context, ko.namespace) if ko else (None, None)
        key = (context, namespace)
        if key not in self._kube:
            from runner.adapters.kube import KubeCluster
            from runner.kubetarget import KubeTarget

            self._kube[key] = KubeTarget(KubeCluster(context=context, namespace=namespace))
        return self._kube[key]

    # -- inspect, run -----------------------------------------------------------------

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
        plan = self.plan(req)
        try:
            base_id = self.engine.image_id(plan.base_image)
        except RunnerError as e:
            return Inspection(plan, None, f"image tag unknown: {e.message}")
        if base_id is None:
            return Inspection(
                plan,
                None,
                f"image tag unknown until the base image {plan.base_image} is pulled or built",
                python_note=f"base image {plan.base_image} not present: its Python is checked when it is",
            )
        try:
            check, why = self.check_python(plan, base_id), None
        except RunnerError as e:
            check, why = None, f"could not ask the base image for its Python: {e.message}"
        if check is None and why is None:
            why = f"the base image {plan.base_image} does not tell its Python version: not checked"
        return Inspection(plan, plan.image_ref(base_id), python=check, python_note=why)

    def check_python(self, plan: Plan, base_id: str) -> PythonCheck | None:
        """The base image's Python against the lock (None when the image cannot tell its version).

        Asked of the engine once per image id, then cached: a cached run starts no container for it.
        """
        from runner.basepython import check, image_python

        version = image_python(self.home.cache, self.engine, base_id)
        return None if version is None else check(self.home.cache, plan.lock, version, image=plan.base_image)

    def submit(self, req: PlanRequest, opts: RunOptions, *, name: str | None = None) -> Submission:
        """Plan, resolve the image, and record the run.  Building and launching come next."""
        experiments = expand_experiments(req.args, opts)
        self._check_name_free(name)
        return self._record(self.plan(req), experiments, target=LOCAL, options=_options_doc(opts), name=name)

    def _check_name_free(self, name: str | None) -> None:
        """``--name``: valid, and no run in history has it (checked before anything is built)."""
        if name is None:
            return
        from runner.names import check_run_name

        problem = check_run_name(name)
        if problem:
            raise UsageError(problem)
        try:
            self.store.get_run(name)
        except NotFoundError:
            return
        raise UsageError(
            f"--name {name}: a run with that name exists already",
            hint=f"choose another name, or remove the old run with `runner delete {name}`",
        )

    def _record(
        self,
        plan: Plan,
        experiments: Sequence[Experiment],
        *,
        target: str,
        options: dict[str, object],
        name: str | None = None,
    ) -> Submission:
        """The image for a plan (cached or to build) and a new run in history, owned by this process."""
        base_id = self.engine.image_id(plan.base_image) or self.engine.pull(plan.base_image)
        image = plan.image_ref(base_id)
        cached = self.engine.image_id(image) is not None
        python_warnings: tuple[str, ...] = ()
        if not cached:  # an image that exists was built: nothing left to check
            try:
                check = self.check_python(plan, base_id)
            except RunnerError as e:
                check, python_warnings = (
                    None,
                    (
                        f"could not ask the base image for its Python ({e.message}): "
                        f"the lock's Requires-Python was not checked",
                    ),
                )
            if check is not None and check.errors:
                from runner.errors import DependencyError

                raise DependencyError(check.errors[0])  # before the run is recorded or anything is built
            if check is not None:
                python_warnings = check.warnings
            elif not python_warnings:
                python_warnings = (
                    f"the base image {plan.base_image} does not tell its Python version: "
                    f"the lock's Requires-Python was not checked",
                )
        run = self.store.create_run(
            make_name=(lambda: name) if name else random_run_name,
            project=plan.project,
            root=str(plan.root),
            script=plan.script,
            args=plan.args,
            target=target,
            options=options,
            experiments=[(container_command(plan.argv0, e.args), e.params) for e in experiments],
            state=ExpState.QUEUED if cached else ExpState.BUILDING,
            owner_pid=os.getpid(),
        )
        self.store.update_run(run.name, image=image, cached=int(cached))
        run_dir = self.home.run_dir(run.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "requirements.lock").write_text(plan.lock.text())
        (run_dir / "Dockerfile").write_text(plan.dockerfile)
        return Submission(
            self.store.get_run(run.name),
            plan,
            image,
            cached,
            self.store.experiments(run.name),
            python_warnings=python_warnings,
        )

    def submit_kube(
        self, req: PlanRequest, opts: RunOptions, *, name: str | None = None
    ) -> tuple[Submission, KubeTarget]:
        """Like :meth:`submit`, for Kubernetes: the cluster is checked first, before anything is built or pushed."""
        ko = opts.kube or KubeOptions()
        if not ko.registry:
            raise UsageError(
                "no image registry for the Kubernetes target",
                hint="give --registry HOST[:PORT] (or registry in runner.yaml, or RUNNER_REGISTRY)",
            )
        experiments = expand_experiments(req.args, opts)
        self._check_name_free(name)
        target = self.kube(ko)
        target.cluster.check()
        if name is not None and target.has_run(name):
            raise UsageError(
                f"--name {name}: namespace {target.cluster.info.namespace} has a run with that name already",
                hint=f"choose another name, or remove it with `runner delete {name}`",
            )
        target.check_secrets(ko.secrets)
        for ds in ko.datastores:
            target.resolve_datastore(ds)  # fails now, not after the build
        info = target.cluster.info
        options = {
            **_options_doc(opts),
            "context": info.context,
            "namespace": info.namespace,
            "registry": ko.registry,
            "secrets": list(ko.secrets),
            "timeout": ko.timeout,
            "retries": ko.retries,
            "datastores": list(ko.datastores),
        }
        return self._record(self.plan(req), experiments, target=KUBE, options=options, name=name), target

    def push(self, sub: Submission, target: KubeTarget, registry: str) -> tuple[str, bool]:
        """The image in the registry, by digest: (reference, pushed?).  Asks the registry first: present -> no push."""
        from runner.adapters.registry import manifest_digest

        remote = f"{registry.rstrip('/')}/{sub.image}"
        try:
            digest = manifest_digest(remote)
            pushed = False
            if digest is None:
                for _ in self.engine.push(sub.image, remote):
                    pass
                pushed = True
                digest = manifest_digest(remote)
                if digest is None:
                    from runner.errors import RegistryError

                    raise RegistryError(f"registry {registry} does not have {sub.image} right after the push")
        except RunnerError as e:
            self._fail_kube(sub, target, e.message)
            raise
        return f"{remote.rpartition(':')[0]}@{digest}", pushed

    @staticmethod
    def _run_doc(sub: Submission, image: str, *, launched: bool) -> dict[str, object]:
        """What the run's ConfigMap records: the run, and each experiment's command and params."""
        run = sub.run
        return {
            "name": run.name,
            "project": run.project,
            "root": run.root,
            "script": run.script,
            "args": list(run.args),
            "image": image,
            "cached": run.cached,
            "created_at": run.created_at,
            "options": run.options,
            "launched": launched,
            "user": os.environ.get("USER") or "",
            "experiments": [
                {"name": e.name, "index": e.index, "command": list(e.command), "params": e.params}
                for e in sub.experiments
            ],
        }

    def _fail_kube(self, sub: Submission, target: KubeTarget, message: str) -> None:
        """A run that failed before its Jobs existed: history says so, locally and in the cluster."""
        import time

        for exp in sub.experiments:
            self.store.finish_experiment(exp.name, state=ExpState.FAILED, exit_code=None, message=message)
        from runner.kube import make_run_configmaps

        end = {"state": "failed", "exit_code": None, "message": message, "finished_at": time.time()}
        try:
            target.record_run(
                make_run_configmaps(
                    self._run_doc(sub, sub.image, launched=False), {e.name: end for e in sub.experiments}
                )
            )
        except RunnerError:
            pass  # the cluster is what failed: the local history has it

    def job_specs(
        self,
        sub: Submission,
        image: str,
        opts: RunOptions,
        target: KubeTarget | None,
        *,
        records: dict[str, str] | None = None,
    ) -> list[JobSpec]:
        """``records``: experiment -> the run ConfigMap (part) that keeps its end (:func:`runner.kube.part_of`)."""
        from runner.kube import JobSpec, release_chain
        from runner.render import ARGV_BOOTSTRAP, ARGV_FILE, argv_through_file, exec_too_long

        ko = opts.kube or KubeOptions()
        mounts = tuple(target.resolve_datastore(d) for d in ko.datastores) if target else ()
        r = opts.resources
        ordered = sorted(sub.experiments, key=lambda e: e.index)
        # --max-parallel: the first P run, the rest are created suspended; each releases the one P after it
        chain = release_chain([e.name for e in ordered], opts.max_parallel)

        def command_and_env(command: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
            if not exec_too_long(command):
                return command, dict(opts.env)
            argv_through_file(command)  # refuses shell scripts, as on the local target
            # longer than exec allows: the launcher takes the argv from argv.json in the experiment's
            # folder on the data volume (see launch_kube) and starts the script through the bootstrap
            return (), {**opts.env, "RUNNER_ARGV_FILE": ARGV_FILE, "RUNNER_ARGV_BOOTSTRAP": ARGV_BOOTSTRAP}

        specs = []
        for e in ordered:
            command, env = command_and_env(tuple(e.command))
            env = {**_runtime_env(sub, e), **env}
            del env[EXPERIMENT_VAR]  # make_job sets it (the launcher reads it too)
            specs.append(
                JobSpec(
                    run=sub.run.name,
                    experiment=e.name,
                    image=image,
                    command=command,
                    workdir=sub.plan.container_workdir,
                    env=env,
                    secrets=ko.secrets,
                    cpus=r.cpus,
                    memory=r.memory,
                    gpus=r.gpus,
                    timeout=ko.timeout,
                    retries=ko.retries,
                    datastores=mounts,
                    suspend=chain[e.name][0],
                    release=chain[e.name][1],
                    record=(records or {}).get(e.name),
                )
            )
        return specs

    def launch_kube(self, sub: Submission, target: KubeTarget, opts: RunOptions, image: str) -> None:
        from runner import kube
        from runner.render import argv_through_file, exec_too_long

        try:
            target.ensure_infra()
            configmaps = kube.make_run_configmaps(self._run_doc(sub, image, launched=True))
            specs = self.job_specs(sub, image, opts, target, records=kube.part_of(configmaps))
            # arguments too long for exec (and for any ConfigMap): on the volume, before the Jobs exist
            argv = {
                f"{kube.experiment_dir(sub.run.name, e.name)}/argv.json": argv_through_file(e.command)[1]
                for e in sub.experiments
                if exec_too_long(e.command)
            }
            if argv:
                target.put_files(argv, image=image)
            target.record_run(configmaps)
            target.launch(specs)
        except RunnerError as e:
            self._fail_kube(sub, target, e.message)
            raise
        for exp in sub.experiments:
            self.store.update_experiment(exp.name, handle=exp.name, state=ExpState.QUEUED, owner_pid=None)

    def dry_run(self, req: PlanRequest, opts: RunOptions) -> tuple[str, list[str]]:
        """The manifests ``runner run`` would apply, as multi-document YAML, and notes; nothing is created."""
        import time

        import yaml

        from runner import kube
        from runner.adapters.registry import manifest_digest
        from runner.names import experiment_name

        ko = opts.kube or KubeOptions()
        notes: list[str] = []
        plan = self.plan(req)
        notes.extend(plan.notices)
        base_id = self.engine.image_id(plan.base_image)
        if base_id is None:
            raise UsageError(f"base image {plan.base_image} is not present, so the image tag is not known yet")
        image = plan.image_ref(base_id)
        check = self.check_python(plan, base_id)  # as a real run would, before anything is built
        if check is not None and check.errors:
            from runner.errors import DependencyError

            raise DependencyError(check.errors[0])
        notes += list(check.warnings) if check is not None else []
        ref = f"{ko.registry.rstrip('/')}/{image}" if ko.registry else image
        digest = None
        if ko.registry:
            try:
                digest = manifest_digest(ref)
            except RunnerError as e:
                notes.append(f"registry not asked: {e.message}")
        if digest:
            ref = f"{ref.rpartition(':')[0]}@{digest}"
        else:
            notes.append(f"{ref} is not in the registry yet: the real run builds/pushes it and uses its digest")
        name = random_run_name()
        run = RunRecord(
            name=name,
            project=plan.project,
            root=str(plan.root),
            script=plan.script,
            args=plan.args,
            target=KUBE,
            image=image,
            cached=None,
            created_at=time.time(),
            options=_options_doc(opts),
        )
        exps = tuple(
            ExperimentRecord(
                name=experiment_name(name, e.index),
                run=name,
                index=e.index,
                command=tuple(container_command(plan.argv0, e.args)),
                params=e.params,
                state=ExpState.QUEUED,
                handle=None,
                exit_code=None,
                message=None,
                created_at=run.created_at,
                started_at=None,
                finished_at=None,
                owner_pid=None,
                stop_requested=False,
            )
            for e in expand_experiments(req.args, opts)
        )
        sub = Submission(run, plan, image, False, exps)
        target = self.kube(ko) if ko.datastores else None
        configmaps = kube.make_run_configmaps(self._run_doc(sub, ref, launched=True))
        specs = self.job_specs(sub, ref, opts, target, records=kube.part_of(configmaps))
        if any(s.env.get("RUNNER_ARGV_FILE") for s in specs):
            notes.append("arguments too long for exec are written to argv.json on the data volume at submit time")
        objects = [
            kube.make_data_pvc(),
            kube.make_launcher_configmap(),
            *configmaps,
            *(kube.make_job(s) for s in specs),
        ]
        return yaml.safe_dump_all(objects, sort_keys=False, allow_unicode=True), notes

    def build(self, sub: Submission) -> Iterator[str]:
        """Build the image (a no-op when cached), yielding the build log; the log is kept for ``logs --build``."""
        if sub.cached:
            return
        from runner.build import build_image
        from runner.buildenv import read_build_env, redact

        env = read_build_env()
        log_path = self.home.build_log(sub.run.name)
        self.store.update_run(sub.run.name, build_log=str(log_path))
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                for line in build_image(self.engine, sub.plan, tag=sub.image, env=env, cache_dir=self.home.cache):
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
            except OSError as e:  # the build log could not be written (a full disk): a failure, not a stop
                message = f"cannot write the build log {log_path}: {e.strerror or e}"
                for exp in sub.experiments:
                    self.store.finish_experiment(exp.name, state=ExpState.FAILED, exit_code=None, message=message)
                raise RunnerError(message) from e
            except BaseException:
                for exp in sub.experiments:
                    self.store.finish_experiment(
                        exp.name, state=ExpState.STOPPED, exit_code=None, message="interrupted"
                    )
                raise

    def container_specs(self, sub: Submission, opts: RunOptions) -> dict[str, ContainerSpec]:
        from runner.adapters.docker_engine import ContainerSpec
        from runner.render import ARGV_FILE, argv_through_file, exec_too_long

        specs = {}
        for exp in sub.experiments:
            command, files = list(exp.command), {}
            if exec_too_long(command):  # longer than exec allows: sys.argv comes from a file instead
                command, argv = argv_through_file(command)
                files = {ARGV_FILE: argv}
            specs[exp.name] = ContainerSpec(
                image=sub.image,
                command=command,
                files=files,
                name=f"runner-{exp.name}",
                labels={
                    "app.kubernetes.io/managed-by": "runner",
                    "runner/run": sub.run.name,
                    "runner/experiment": exp.name,
                },
                env={**_runtime_env(sub, exp), **opts.env},
                workdir=sub.plan.container_workdir,
                cpus=opts.resources.cpus,
                memory_bytes=opts.resources.memory_bytes,
                gpus=opts.resources.gpus,
            )
        return specs

    def launch(self, sub: Submission, opts: RunOptions) -> None:
        """Local, detached: a watcher process starts the experiments (at most max_parallel at once) and follows them."""
        names = [e.name for e in sub.experiments]
        self.local.spawn_run_watcher(names, self.container_specs(sub, opts), max_parallel=opts.max_parallel)

    def drive(self, sub: Submission, opts: RunOptions) -> Iterator[tuple[str, LogLine]]:
        """Local, in this process: start the experiments (at most max_parallel at once) and follow them all."""
        names = [e.name for e in sub.experiments]
        return self.local.drive(names, self.container_specs(sub, opts), max_parallel=opts.max_parallel)

    def follow(self, experiment: str, *, on_wait: Callable[[str], None] | None = None) -> Iterator[LogLine]:
        """Follow an experiment this process owns (``runner run`` without ``--detach``).

        ``on_wait`` hears why a Kubernetes experiment is not running yet.
        """
        run = self.store.get_run(self.store.get_experiment(experiment).run)
        if run.target == KUBE:
            return self._kube_of(run).follow(run.name, experiment, on_wait=on_wait)
        return self.local.follow(experiment)

    def experiment(self, name: str) -> ExperimentRecord:
        """An experiment as it is now; for one this process followed, how it ended even if history could not say."""
        ended = self._local.ends.get(name) if self._local is not None else None
        try:
            exp = self.store.get_experiment(name)
        except StoreError:
            if ended is None:
                raise
            return ended
        if ended is not None and exp.state.active:
            return ended
        run = self.store.get_run(exp.run)
        if run.target == KUBE:
            seen = self._kube_of(run).experiment(run.name, name)
            self._cache(seen)
            return seen
        return exp

    def _kube_of(self, run: RunRecord, ko: KubeOptions | None = None) -> KubeTarget:
        """The cluster a run went to; --context/--namespace given now override what the run recorded."""
        o = run.options
        return self.kube(
            KubeOptions(
                context=(ko.context if ko else None) or o.get("context"),
                namespace=(ko.namespace if ko else None) or o.get("namespace"),
            )
        )

    def _cache(self, exp: ExperimentRecord) -> None:
        """Keep the local copy of a Kubernetes experiment's state current (for when the cluster is away)."""
        try:
            if not exp.state.active:
                self.store.finish_experiment(exp.name, state=exp.state, exit_code=exp.exit_code, message=exp.message)
            else:
                self.store.update_experiment(exp.name, state=exp.state, message=exp.message)
        except RunnerError:
            pass

    # -- history ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Take over active local experiments whose owner died (a killed CLI, a restarted engine).

        History that cannot be written (a full disk) leaves them for a later command: reading goes on.
        """
        try:
            self._reconcile()
        except StoreError as e:
            self.notes.append(f"runs whose follower ended are taken over once history can be written ({e.message})")

    def _reconcile(self) -> None:
        stale = [e for e in self.store.active_experiments() if not _owner_alive(e)]
        local_stale = []
        for exp in stale:
            if self.store.get_run(exp.run).target != KUBE:
                local_stale.append(exp)
            elif exp.handle is None:  # the CLI died before the Job existed: the cluster never saw it
                self.store.finish_experiment(
                    exp.name, state=ExpState.FAILED, exit_code=None, message="runner stopped before the Job was created"
                )
        if local_stale:
            local = self.local
            for exp in local_stale:
                local.reconcile(exp)

    def status(self, *, kube: KubeOptions | None = None) -> list[RunSummary]:
        self.reconcile()
        return [s for s in self._merged(self.store.summaries(active_only=True), kube) if s.active]

    def history(self, *, limit: int | None = None, kube: KubeOptions | None = None) -> list[RunSummary]:
        self.reconcile()
        merged = self._merged(self.store.summaries(), kube)
        return merged[:limit] if limit else merged

    def _merged(self, cached: list[RunSummary], ko: KubeOptions | None) -> list[RunSummary]:
        """Local runs from the history database; Kubernetes runs from the cluster (the cache when it is away)."""
        if ko is None and not kube_configured() and not any(s.run.target == KUBE for s in cached):
            return cached  # no cluster in sight: do not even import the client
        try:
            live = self.kube(ko).summaries()
        except RunnerError as e:
            self.notes.append(f"Kubernetes runs as last seen (cannot read the cluster: {e.message})")
            return cached
        cached_names = {c.run.name for c in cached}
        for s in live:
            if s.run.name in cached_names:
                for exp in s.experiments:
                    self._cache(exp)
        names = {s.run.name for s in live}
        merged = live + [c for c in cached if c.run.name not in names]
        return sorted(merged, key=lambda s: s.run.created_at, reverse=True)

    def run_summary(self, name: str, *, kube: KubeOptions | None = None) -> RunSummary:
        self.reconcile()
        run, _ = self.select(name, kube=kube)
        if run.target == KUBE:
            try:
                found = self._kube_of(run, kube).summaries(run=run.name)
            except RunnerError as err:
                self.notes.append(f"as last seen (cannot read the cluster: {err.message})")
                found = []
            if found:
                for e in found[0].experiments:
                    self._cache(e)
                return found[0]
        return RunSummary(run, self.store.experiments(run.name))

    def select(self, name: str, *, kube: KubeOptions | None = None) -> tuple[RunRecord, tuple[ExperimentRecord, ...]]:
        """A run name selects all its experiments; ``RUN-expN`` selects one.  Runs only the cluster knows are found there."""
        try:
            run = self.store.get_run(name)
            return run, self.store.experiments(run.name)
        except NotFoundError:
            pass
        try:
            exp = self.store.get_experiment(name)
            return self.store.get_run(exp.run), (exp,)
        except NotFoundError:
            if kube is None and not kube_configured():
                raise
        run_name, _ = split_experiment(name)
        target = self.kube(kube)
        for candidate, pick in ((name, None), (run_name, name)):
            found = target.summaries(run=candidate)
            if found:
                s = found[0]
                info = target.cluster.info
                rec = dataclasses.replace(
                    s.run, options={**s.run.options, "context": info.context, "namespace": info.namespace}
                )
                exps = tuple(e for e in s.experiments if pick is None or e.name == pick)
                if exps:
                    return rec, exps
        raise NotFoundError(f"no run or experiment named {clip(name)}", hint="`runner history` lists the runs")

    # -- logs, stop, artifacts --------------------------------------------------------

    def logs(
        self,
        name: str,
        *,
        build: bool = False,
        tail: int | None = None,
        follow: bool = False,
        kube: KubeOptions | None = None,
    ) -> Iterator[str]:
        """Formatted log lines: the build log (if the run built), then each experiment's output."""
        self.reconcile()
        run, exps = self.select(name, kube=kube)
        if run.target == KUBE:
            yield from self._kube_logs(run, exps, build=build, tail=tail, follow=follow, ko=kube)
            return
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

    def _kube_logs(
        self,
        run: RunRecord,
        exps: tuple[ExperimentRecord, ...],
        *,
        build: bool,
        tail: int | None,
        follow: bool,
        ko: KubeOptions | None,
    ) -> Iterator[str]:
        build_log = self.home.build_log(run.name)
        if build_log.is_file() and (build or (tail is None and not follow)):
            yield from (f"[build] {ln}" for ln in read_lines(build_log))
        if build:
            return
        target = self._kube_of(run, ko)
        found = target.summaries(run=run.name)
        for exp in found[0].experiments if found else exps:
            if exp.name not in {e.name for e in exps}:
                continue
            prefix = f"{exp.name} " if len(exps) > 1 else ""
            if exp.state.active and follow:
                yield from (prefix + ln.format() for ln in target.follow(run.name, exp.name))
                continue
            if tail != 0:
                yield from (prefix + ln for ln in target.finished_log(run.name, exp.name, tail=tail))

    def _ended(self, experiment: str) -> Callable[[], bool]:
        return lambda: not self.store.get_experiment(experiment).state.active

    def stop(self, name: str, *, kube: KubeOptions | None = None) -> list[str]:
        self.reconcile()
        run, exps = self.select(name, kube=kube)
        if run.target == KUBE:
            target = self._kube_of(run, kube)
            found = target.summaries(run=run.name)
            live = {e.name: e for e in found[0].experiments} if found else {}
            active = [e.name for e in exps if e.name in live and live[e.name].state.active]
            if active:
                target.stop(run.name, active)
                for s in target.summaries(run=run.name):
                    for e in s.experiments:
                        self._cache(e)
            return active
        stopped = []
        for exp in exps:
            if exp.state.active:
                self.local.stop(exp)
                stopped.append(exp.name)
        return stopped

    def artifacts(self, name: str, download_dir: Path, *, kube: KubeOptions | None = None) -> dict[str, list[str]]:
        """Copy the collected files to ``DIR/<run>/<experiment>/<path>``; returns the files per experiment."""
        self.reconcile()
        run, exps = self.select(name, kube=kube)
        _writable_folder(download_dir, "--download-dir")
        out = {}
        if run.target == KUBE:
            target = self._kube_of(run, kube)
            for exp in exps:
                out[exp.name] = target.artifacts(run.name, exp.name, download_dir / run.name / exp.name)
            return out
        for exp in exps:
            src = self.home.artifacts(run.name, exp.name)
            try:
                out[exp.name] = copy_artifacts(src, download_dir / run.name / exp.name)
            except OSError as e:
                raise RunnerError(
                    f"cannot copy the artifacts of {exp.name} to {clip(str(download_dir))}: {e.strerror or e}"
                ) from e
        return out

    # -- delete ---------------------------------------------------------------------------

    def delete(self, name: str, *, kube: KubeOptions | None = None) -> dict[str, Any]:
        """Remove a run or one experiment: what it left on its target, and its history entry.

        Kubernetes: Jobs, pods, record ConfigMaps, logs and artifacts on the data volume.
        Local: containers, logs, artifacts, the run's folder.  Images stay (they are shared
        by content: the next run of the same code reuses them).  What is still running
        is refused: stop it first.
        """
        self.reconcile()
        run, exps = self.select(name, kube=kube)
        names = [e.name for e in exps]
        live = {e.name: e for e in exps}
        if run.target == KUBE:
            target = self._kube_of(run, kube)
            found = target.summaries(run=run.name)
            if found:
                live.update({e.name: e for e in found[0].experiments if e.name in live})
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
        whole = name == run.name  # a run name selects it all; RUN-expN one experiment
        notes: list[str] = []
        if run.target == KUBE:
            whole = self._kube_of(run, kube).delete(run.name, None if whole else names) or whole
        else:
            for exp in exps:
                if exp.handle:
                    try:
                        self.engine.remove(exp.handle)
                    except RunnerError as e:
                        notes.append(f"the container of {exp.name} was not removed ({e.message})")
        if known:
            whole = self.store.forget(run.name, None if whole else [n for n in names if n in known]) or whole
        run_dir = self.home.run_dir(run.name)
        if whole:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for n in names:
                self.home.experiment_log(run.name, n).unlink(missing_ok=True)
                shutil.rmtree(self.home.artifacts(run.name, n), ignore_errors=True)
        return {"run": run.name, "target": run.target, "experiments": names, "run_deleted": whole, "notes": notes}

    # -- repair ---------------------------------------------------------------------------

    def repair(self) -> RepairReport:
        """Rebuild a damaged or lost history database from the records kept in ``runs/``."""
        from runner.store import repair

        try:
            return repair(self.home.db, self.home.runs)
        except OSError as e:
            raise RunnerError(f"cannot repair the history database {self.home.db}: {e.strerror or e}") from e

    # -- datastores ----------------------------------------------------------------------

    def datastore_create(
        self, source: Path, name: str, *, kube: KubeOptions | None = None
    ) -> tuple[DatastoreVersion, bool]:
        from runner.config import datastore_name_problem

        problem = datastore_name_problem(name)  # checked before the cluster is asked anything
        if problem:
            raise UsageError(f"--name: {problem}")
        if not source.is_dir():
            raise UsageError(f"--source {clip(str(source))} is not a folder")
        return self.kube(kube).datastore_create(name, source)

    def datastore_list(self, *, kube: KubeOptions | None = None) -> list[DatastoreVersion]:
        return self.kube(kube).datastores()

    def datastore_delete(
        self, name: str, version: int | None, *, kube: KubeOptions | None = None
    ) -> list[DatastoreVersion]:
        return self.kube(kube).datastore_delete(name, version)


def _runtime_env(sub: Submission, exp: ExperimentRecord) -> dict[str, str]:
    """What a container's script can read about its run (runner.run_name/experiment_name/params), on both targets."""
    from runner.runtime import env_for

    return env_for(sub.run.name, exp.name, exp.params)


def _writable_folder(folder: Path, option: str) -> None:
    """Make ``folder`` (and its parents) or say in one line why it cannot be written."""
    shown = clip(str(folder))
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{option} {shown}: {clip(str(existing))} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {shown}: cannot make the folder ({e.strerror or e})") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {shown}: the folder is not writable", hint="choose another --download-dir")


def kube_configured() -> bool:
    """Is there a kubeconfig to read?  Without one, history stays local and the client is never imported."""
    return bool(os.environ.get("KUBECONFIG")) or (Path.home() / ".kube" / "config").is_file()


def _owner_alive(exp: ExperimentRecord) -> bool:
    from runner.local import pid_alive

    return exp.owner_pid == os.getpid() or pid_alive(exp.owner_pid)


def _resources_doc(r: Resources) -> dict[str, object]:
    return {"cpus": r.cpus, "memory": r.memory, "gpus": r.gpus}


def _options_doc(opts: RunOptions) -> dict[str, object]:
    """What history keeps of a run's options: resources, the names (not values) of its environment, the sweep."""
    return {
        "resources": _resources_doc(opts.resources),
        "env": sorted(opts.env),
        "max_parallel": opts.max_parallel,
        "sweep": describe_sweep(opts),
    }


def expand_experiments(args: Sequence[str], opts: RunOptions) -> list[Experiment]:
    """The run's experiments: one with the arguments as given, or one per point of the sweep."""
    s = opts.sweep
    return expand(args, strategy=s.strategy, trials=s.trials, seed=s.seed)
