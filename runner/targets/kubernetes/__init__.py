"""The Kubernetes target: push, launch, observe, stop, fetch — in terms of :mod:`runner.targets.kubernetes.objects` and the adapters.

The cluster is the source of truth for Kubernetes runs (see :mod:`runner.targets.kubernetes.objects`): the
run ConfigMap, the Jobs and their pods.  The local history database keeps a copy of
each run (so a run that failed before it reached the cluster, or a cluster that is
down, still shows something), refreshed whenever the cluster is read.

Logs and artifacts live on the namespace's ``runner-data`` volume, written by the
launcher in the pod.  The CLI reads them through a small pod that mounts the volume
(``runner-data``, made on demand, gone after 15 minutes) with exec + tar: no port,
no service, and only the permissions ``manifests/rbac.yaml`` grants.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.artifacts import extract_files
from runner.errors import (
    ClusterError,
    ClusterUnreachableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RunnerError,
    UsageError,
    clip,
)
from runner.logs import LogLine, epoch, now_iso, parse_line
from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary, TargetKind
from runner.names import random_run_name
from runner.progress import Progress, upload_progress
from runner.targets.base import WAITING, Ended, Prepared, Published, Submission
from runner.targets.kubernetes import objects, setup

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runner.adapters.cluster import KubeCluster
    from runner.adapters.docker_engine import DockerEngine
    from runner.options import RunOptions
    from runner.plan import Plan
    from runner.store import Store
    from runner.sweep import Experiment

T = TypeVar("T")
#: how long following waits for an API server that went away (a restart, an upgrade) before it gives up
API_WAIT = 300.0
#: the stream of runner's own notices among an experiment's output lines
NOTICE = "runner"
#: the kubelet rotates a container's log past 10 MiB (containerLogMaxSize): a follower of a faster
#: writer can miss lines; past this many bytes followed, the count is checked against the volume's log
ROTATION_SIZE = 8 << 20
#: how to say where the data pod's image comes from when nothing can be chosen
HELPER_HINT = (
    "set RUNNER_HELPER_IMAGE to an image with sh and tar that the cluster can pull, "
    "or run something in this namespace first (its image is used)"
)


@dataclass(frozen=True)
class DatastoreVersion:
    name: str
    version: int
    digest: str
    created_at: float
    files: int
    size: int


def tree_digest(root: Path) -> tuple[str, list[Path]]:
    """Content hash of a folder (relative paths, executable bits, bytes) and its files, sorted."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for p in files:
        rel = p.relative_to(root).as_posix()
        h.update(f"{rel}\0{'x' if os.access(p, os.X_OK) else '-'}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:32], files


def check_datastore_source(name: str, source: Path) -> None:
    """``datastore create``: the name and the folder, checked before the cluster is asked anything."""
    from runner.config import datastore_name_problem

    problem = datastore_name_problem(name)
    if problem:
        raise UsageError(f"--name: {problem}")
    if not source.is_dir():
        raise UsageError(f"--source {clip(str(source))} is not a folder")


def parse_datastore(text: str) -> tuple[str, int | None, str | None]:
    """``NAME[:VERSION][:MOUNTDIR]`` -> (name, version or None, mount dir or None)."""
    from runner.config import check_datastore

    check_datastore(text)  # a name that becomes object names and a mount folder: checked before any request
    parts = text.split(":", 2)
    name, version, mount = parts[0], None, None
    for extra in parts[1:]:
        if extra.isdigit() and version is None and mount is None:
            version = int(extra)
        elif extra.startswith("/") and mount is None:
            mount = extra
        else:
            raise UsageError(f"--datastore {text!r} is not NAME[:VERSION][:MOUNTDIR]", hint="e.g. mnist:2:/data")
    if not name:
        raise UsageError(f"--datastore {text!r} has no name")
    return name, version, mount


class KubeTarget:
    """The :class:`runner.targets.base.Target` of a Kubernetes namespace (a kubeconfig context and namespace).

    ``store`` keeps a local copy of what the cluster says (for when it is away);
    ``engine`` pushes the images the local engine built.
    """

    kind = TargetKind.KUBERNETES

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        store: Store | None = None,
        engine: Callable[[], DockerEngine] | None = None,
        helper_image: str | None = None,
        api_wait: float = API_WAIT,
        registry: Callable[[str], str | None] | None = None,
    ) -> None:
        """``registry``: the digest of an image reference in its registry (default: ask it over HTTP)."""
        self.cluster = cluster
        self.store = store
        self._engine = engine
        self._registry = registry
        self.notes: list[str] = []
        self.api_wait = api_wait
        # an override only: by default the data pod runs an image the cluster already pulls (see helper_image_for)
        self.helper_image = helper_image or os.environ.get("RUNNER_HELPER_IMAGE") or None

    def manifest_digest(self, ref: str) -> str | None:
        """The registry's digest of ``ref``; None when it does not have it (RegistryError when it cannot say)."""
        if self._registry is not None:
            return self._registry(ref)
        from runner.adapters.registry import manifest_digest

        return manifest_digest(ref)

    # -- setup -----------------------------------------------------------------------------

    def set_up(self) -> list[str]:
        """The namespace has what runner needs (:mod:`runner.targets.kubernetes.setup`): made here where
        the user may, one note each; a ForbiddenError naming what is missing and the admin's command where not."""
        from concurrent.futures import ThreadPoolExecutor

        ns = self.cluster.ns
        with ThreadPoolExecutor(max_workers=len(setup.NEEDS)) as pool:  # a few reads at once, not in turn
            present = dict(zip(setup.NEEDS, pool.map(lambda n: self.cluster.exists(n.kind, n.name), setup.NEEDS)))
            ask = setup.to_ask(present)
            allowed = dict(zip(ask, pool.map(lambda n: self.cluster.can_i("create", n.resource, group=n.group), ask)))
        plan = setup.decide(present, allowed)
        if not plan.ready:
            message, hint = setup.missing_message(plan, ns)
            raise ForbiddenError(message, hint=hint)
        notes = []
        for need in plan.create:
            try:
                self.cluster.create(self._setup_object(need))
            except ConflictError:
                continue  # another runner made it meanwhile
            except ForbiddenError as e:  # may create such objects, not this one (RBAC's escalation check, a policy)
                message, hint = setup.missing_message(setup.SetupPlan(missing=(need,)), ns, refused=e.message)
                raise ForbiddenError(message, hint=hint) from e
            notes.append(setup.created_note(need, ns))
        return notes

    def _setup_object(self, need: setup.Need) -> dict[str, Any]:
        if need == setup.DATA_VOLUME:
            return objects.make_data_pvc(storage_class=os.environ.get("RUNNER_STORAGE_CLASS"))
        return objects.rbac_object(need.kind, need.name, namespace=self.cluster.ns)

    def ensure_infra(self) -> None:
        """The launcher ConfigMap (current version); the rest of the namespace is made by :meth:`set_up`."""
        wanted = objects.make_launcher_configmap()
        have = self.cluster.get("ConfigMap", objects.LAUNCHER_CONFIGMAP)
        if have is None:
            try:
                self.cluster.create(wanted)
            except ConflictError:
                pass  # another runner made it meanwhile
        elif have.get("data") != wanted["data"]:
            wanted["metadata"]["resourceVersion"] = have["metadata"]["resourceVersion"]
            self.cluster.replace_configmap(wanted)

    def check_secrets(self, names: tuple[str, ...]) -> None:
        for name in names:
            if self.cluster.get("Secret", name) is None:
                raise UsageError(
                    f"--secret {name}: no Secret {name!r} in namespace {self.cluster.ns}",
                    hint=f"create it with `kubectl -n {self.cluster.ns} create secret generic {name} --from-literal=KEY=VALUE`",
                )

    # -- records -----------------------------------------------------------------------------

    def record_run(self, configmaps: list[dict[str, Any]]) -> None:
        """The run's record (:func:`runner.targets.kubernetes.objects.make_run_configmaps`): the parts first, then part 0
        (``run.json``), so whoever sees a run sees all of it."""
        self.cluster.create_many(configmaps[1:])
        self.cluster.create(configmaps[0])

    def put_files(self, files: dict[str, str], *, image: str | None = None) -> None:
        """Write text files on the data volume (paths relative to it), through the data pod."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:") as tar:
            for path, text in sorted(files.items()):
                data = text.encode("utf-8", "surrogateescape")
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        data = buf.getvalue()
        pod = self.data_pod(image=image)
        self.cluster.exec(pod, ["sh", "-c", f"head -c {len(data)} | tar x -C {objects.DATA_MOUNT}"], stdin=data)

    def _run_configmaps(self, run: str) -> list[dict[str, Any]]:
        return self.cluster.list_objects(
            "ConfigMap", f"{objects.KIND_LABEL} in (run,{objects.PART_KIND}),{objects.RUN_LABEL}={run}"
        )

    def has_run(self, run: str) -> bool:
        """Does the namespace hold a record of ``run`` (its part-0 ConfigMap)?"""
        return self.cluster.get("ConfigMap", objects.run_configmap_name(run)) is not None

    def launch(self, specs: list[objects.JobSpec]) -> None:
        """Create the run's Jobs, concurrently: the runnable ones first, then the suspended ones (``--max-parallel``).

        Runnable first because the job controller handles new Jobs in turn, at its API rate
        limit (each suspended Job costs it a status write): behind 1,000 suspended Jobs the
        first experiment would wait about a minute.  A launcher that ends before its
        successor's Job exists waits for it (:func:`runner.targets.kubernetes.launcher.release`).  If a
        create fails, the Jobs made are deleted again: the caller records the run as
        failed, and no queued Job is left behind.
        """
        ready = [objects.make_job(s) for s in specs if not s.suspend]
        queued = [objects.make_job(s) for s in specs if s.suspend]
        try:
            self.cluster.create_many(ready)
            self.cluster.create_many(queued)
        except ClusterError:
            try:
                self.cluster.delete_many("Job", [j["metadata"]["name"] for j in ready + queued])
            except ClusterError:
                pass
            raise

    def summaries(self, *, run: str | None = None) -> list[RunSummary]:
        """Runs as the cluster shows them (one run, or all in the namespace), newest first."""
        sel = "app.kubernetes.io/managed-by=runner"
        if run is not None:
            cms = self._run_configmaps(run)
            sel += f",{objects.RUN_LABEL}={run}"
        else:
            cms = self.cluster.list_objects("ConfigMap", f"{sel},{objects.KIND_LABEL} in (run,{objects.PART_KIND})")
        by_run: dict[str, list[dict[str, Any]]] = {}
        for cm in cms:
            by_run.setdefault((cm["metadata"].get("labels") or {}).get(objects.RUN_LABEL, ""), []).append(cm)
        records = [r for r in map(objects.read_run_record, by_run.values()) if r is not None]
        if not records:
            return []
        jobs: dict[str, dict[str, Any]] = {}
        pods: dict[str, list[dict[str, Any]]] = {}
        for j in self.cluster.list_objects("Job", sel):
            jobs[j["metadata"]["labels"].get(objects.EXP_LABEL, "")] = j
        for p in self.cluster.list_objects("Pod", sel):
            pods.setdefault(p["metadata"].get("labels", {}).get(objects.EXP_LABEL, ""), []).append(p)
        pending = [p for ps in pods.values() for p in ps if (p.get("status") or {}).get("phase") == "Pending"]
        # Jobs that should have a pod and have none: the job controller could not make it (FailedCreate)
        podless = [
            j for e, j in jobs.items() if e not in pods and not objects.job_suspended(j) and not objects.job_finished(j)
        ]
        if pending or podless:  # their status may not say why they wait: the events do (one more request, only then)
            try:
                warnings = self.cluster.list_objects("Event", "", fields="type=Warning")
                objects.attach_warnings(pending, warnings, kind="Pod")
                objects.attach_warnings(podless, warnings, kind="Job")
            except ClusterError:
                pass
        out = [self._summary(rec, jobs, pods) for rec in records]
        out.sort(key=lambda s: s.run.created_at, reverse=True)
        return out

    def _write_ends(self, run: str, ends: dict[str, dict[str, Any]], where: dict[str, str]) -> None:
        """Several experiments' ends, one patch per ConfigMap (part) that holds them."""
        by_cm: dict[str, dict[str, str | None]] = {}
        for e, end in ends.items():
            by_cm.setdefault(where.get(e) or objects.run_configmap_name(run), {})[f"{e}.json"] = objects.end_value(
                {**end, "final": True}
            )
        for cm, data in by_cm.items():
            self.cluster.patch_configmap(cm, data)
        # recorded: the Job is no longer needed (a TTL, not a delete: `kubectl get jobs` still shows it a while)
        if ends:
            try:
                self.cluster.set_ttl([objects.job_name(e) for e in ends], objects.FINISHED_JOB_TTL)
            except ClusterError:
                pass

    def volume_ends(self, run: str, experiments: list[str]) -> dict[str, dict[str, Any]]:
        """Ends the launchers left in ``end.json`` on the volume (what they could not record in the ConfigMap)."""
        if not experiments:
            return {}
        paths = " ".join(f"{objects.DATA_MOUNT}/{objects.experiment_dir(run, e)}/end.json" for e in experiments)
        # one line per file found: its path, a tab, its JSON (written without newlines)
        script = f"for f in {paths}; do if [ -f $f ]; then printf '%s\\t' $f; tr -d '\\n' < $f; echo; fi; done"
        out = self.cluster.exec(self.data_pod(wait=30, run=run), ["sh", "-c", script], timeout=60).decode(
            "utf-8", "replace"
        )
        found: dict[str, dict[str, Any]] = {}
        for line in out.splitlines():
            path, _, text = line.partition("\t")
            try:
                end = json.loads(text)
            except ValueError:
                continue
            if isinstance(end, dict) and end.get("state"):
                found[path.rsplit("/", 2)[-2]] = end
        return found

    def _repair_chain(self, doc: dict[str, Any], jobs: dict[str, dict[str, Any]], ended: set[str]) -> None:
        """``--max-parallel``: resume suspended Jobs whose releaser has ended (its launcher never got to it)."""
        names = [e["name"] for e in sorted(doc.get("experiments") or [], key=lambda e: int(e.get("index", 0)))]
        suspended = {n for n in names if objects.job_suspended(jobs.get(n))}
        if not suspended:
            return
        for name in objects.to_release(
            names, (doc.get("options") or {}).get("max_parallel"), suspended=suspended, ended=ended
        ):
            try:
                self.cluster.set_suspended(objects.job_name(name), False)
            except ClusterError:
                pass

    def _summary(
        self,
        record: tuple[dict[str, Any], dict[str, str], dict[str, str]],
        jobs: dict[str, dict[str, Any]],
        pods: dict[str, list[dict[str, Any]]],
    ) -> RunSummary:
        doc, data, where = record
        run = RunRecord(
            name=doc["name"],
            project=doc.get("project", ""),
            root=doc.get("root", ""),
            script=doc.get("script", ""),
            args=tuple(doc.get("args") or ()),
            target=TargetKind.KUBERNETES.value,
            image=doc.get("image"),
            cached=doc.get("cached"),
            created_at=float(doc.get("created_at") or 0),
            options=doc.get("options") or {},
            build_log=None,
        )
        exps = []
        derived: dict[str, dict[str, Any]] = {}
        ended: set[str] = set()
        recorded = {
            e["name"]: json.loads(data[f"{e['name']}.json"])
            for e in doc.get("experiments") or []
            if f"{e['name']}.json" in data
        }
        seen_of = {
            e["name"]: objects.observe(
                end=recorded.get(e["name"]),
                stop=bool(data.get(f"{e['name']}.stop")),
                job=jobs.get(e["name"]),
                pods=pods.get(e["name"], []),
                launched=bool(doc.get("launched")),
                now=time.time(),
            )
            for e in doc.get("experiments") or []
        }
        # Ended with nothing recorded: the launcher may have failed to reach the API server and left
        # its end on the volume (end.json).  Looked for once: what is found, or derived, is written down.
        lost = [
            n
            for n, seen in seen_of.items()
            # (not one runner gave up on: it never started, and the data pod's image may not start either)
            if seen.final
            and not seen.gave_up
            and seen.state is not ExpState.STOPPED
            and n not in recorded
            and doc.get("launched")
        ]
        if lost:
            try:
                for name, found in self.volume_ends(run.name, lost).items():
                    recorded[name] = found
                    seen_of[name] = objects.observe(end=found, stop=False, job=None, pods=[], launched=True)
            except (ClusterError, NotFoundError):
                pass  # the volume cannot be read now: the state derived from the Job stands
        for e in doc.get("experiments") or []:
            name = e["name"]
            end = recorded.get(name)
            seen = seen_of[name]
            exps.append(
                ExperimentRecord(
                    name=name,
                    run=run.name,
                    index=int(e.get("index", 0)),
                    command=tuple(e.get("command") or ()),
                    params=e.get("params") or {},
                    state=seen.state,
                    handle=objects.job_name(name),
                    exit_code=seen.exit_code,
                    message=seen.message,
                    created_at=run.created_at,
                    started_at=seen.started_at,
                    finished_at=seen.finished_at,
                    owner_pid=None,
                    stop_requested=bool(data.get(f"{name}.stop")),
                )
            )
            if (
                seen.final
                and not objects.job_suspended(jobs.get(name))
                and time.time() - (seen.finished_at or time.time()) >= objects.REPAIR_GRACE
            ):
                ended.add(name)  # ended and gave its slot up a while ago: see _repair_chain
            if seen.final and not (end or {}).get("final"):
                # make the end outlive the Job and its pods (clean-up, TTL): first observer writes it down
                derived[name] = {
                    **(end or {}),
                    "state": seen.state.value,
                    "exit_code": seen.exit_code,
                    "message": seen.message,
                    "started_at": seen.started_at,
                    "finished_at": seen.finished_at or time.time(),
                }
        try:  # one patch per part for all of them (a 1,000-experiment sweep must not cost 1,000 requests)
            self._write_ends(run.name, derived, where)
            # given up on (objects.GIVE_UP_AFTER): its end is recorded; the Job would only keep trying
            self.cluster.delete_many("Job", [objects.job_name(n) for n, seen in seen_of.items() if seen.gave_up])
        except ClusterError:
            pass
        self._repair_chain(doc, jobs, ended)
        return RunSummary(run, tuple(exps))

    def live_experiment(self, run: str, name: str) -> ExperimentRecord:
        for s in self.summaries(run=run):
            for e in s.experiments:
                if e.name == name:
                    return e
        raise NotFoundError(f"no experiment named {name!r} in namespace {self.cluster.ns}")

    # -- logs --------------------------------------------------------------------------------

    def _pods(self, experiment: str) -> list[dict[str, Any]]:
        pods = self.cluster.list_objects("Pod", f"{objects.EXP_LABEL}={experiment}")
        return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    def _patient(self, call: Callable[[], T]) -> Generator[LogLine, None, T]:
        """``call()`` (its value is the generator's return value), retried with backoff while the API server
        does not answer, up to :data:`API_WAIT` seconds; yields a notice when it starts and stops waiting."""
        deadline = time.monotonic() + self.api_wait
        pause = 1.0
        waiting = False
        while True:
            try:
                value = call()
            except ClusterUnreachableError as e:
                if time.monotonic() + pause > deadline:
                    raise ClusterError(
                        f"the Kubernetes API server did not come back within {self.api_wait:g} s ({e.message})",
                        hint=e.hint,
                    ) from e
                if not waiting:
                    waiting = True
                    yield LogLine(
                        NOTICE,
                        now_iso(),
                        f"runner: lost the Kubernetes API server ({e.message}); "
                        f"waiting up to {self.api_wait:g} s for it to come back",
                    )
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
                continue
            if waiting:
                yield LogLine(NOTICE, now_iso(), "runner: the Kubernetes API server answers again; following on")
            return value

    def follow(self, run: str, experiment: str, *, poll: float = 0.2) -> Iterator[LogLine]:
        """Live output, pod after pod (retries), until the experiment has ended.

        Why it is not running yet (Unschedulable, ImagePullBackOff) comes as a line of the
        ``waiting`` stream, once per reason.
        An API server that goes away meanwhile is waited for (with backoff, saying so); the output goes
        on from the line where it stopped.
        """
        done: set[str] = set()
        seen_in: dict[str, int] = {}
        told = None
        size = 0  # bytes read from pod logs: past the kubelet's rotation size, lines may have been lost
        while True:
            pods = yield from self._patient(lambda: self._pods(experiment))
            current = next((p for p in pods if p["metadata"]["name"] not in done and _pod_started(p)), None)
            if current is None:
                exp = yield from self._patient(lambda: self.live_experiment(run, experiment))
                if exp.state.active:
                    # once per reason (the text before the colon): an event's message may change at each retry
                    if exp.message and exp.message.split(":", 1)[0] != told:
                        yield LogLine(WAITING, now_iso(), exp.message)
                        told = exp.message.split(":", 1)[0]
                    time.sleep(poll)
                    continue
                # Ended: a pod may have run to its end between two looks (its status in the API
                # lags behind the kubelet, so ask for its log whatever the status says), or be gone.
                for p in (yield from self._patient(lambda: self._pods(experiment))):
                    name = p["metadata"]["name"]
                    if name in done:
                        continue
                    try:
                        lines = list(self.cluster.pod_log(name, follow=False))
                    except (ClusterError, NotFoundError):
                        continue
                    seen_in[name] = len(lines)
                    yield from (parse_line(raw) or LogLine("stderr", now_iso(), raw) for raw in lines)
                if not seen_in and (exp.started_at is None or (exp.message or "").startswith(objects.GAVE_UP)):
                    # never started (stopped while queued, given up on): nothing on the volume, and its pod might
                    # not start either (a quota of no pods, an image that cannot be pulled)
                    pass
                elif not seen_in:  # never saw a pod run: the volume has whatever it wrote
                    try:
                        lines = yield from self._patient(lambda: list(self.finished_log(run, experiment)))
                    except (ClusterError, NotFoundError) as e:  # e.g. a quota that lets the data pod start neither
                        lines = []
                        yield LogLine(NOTICE, now_iso(), f"runner: cannot read its log on the data volume: {e.message}")
                    for raw in lines:
                        yield parse_line(raw) or LogLine("stderr", now_iso(), raw)
                elif size > ROTATION_SIZE:
                    missing = self._log_lines(run, experiment) - sum(seen_in.values())
                    if missing > 0:
                        yield LogLine(
                            "stderr",
                            now_iso(),
                            f"runner: {missing} line(s) of output were lost from the pod's "
                            f"log while following (the kubelet rotates it); `runner logs {experiment}` has "
                            "every line, from the data volume",
                        )
                return
            name = current["metadata"]["name"]
            skip = seen_in.get(name, 0)
            n = 0
            try:
                for raw in self.cluster.pod_log(name, follow=True):
                    n += 1
                    if n <= skip:
                        continue
                    size += len(raw)
                    yield parse_line(raw) or LogLine("stderr", now_iso(), raw)
            except (ClusterError, NotFoundError):
                pass  # the pod went away mid-stream (the volume has the rest), or the API server did (asked next)
            seen_in[name] = max(skip, n)
            pod = yield from self._patient(functools.partial(self.cluster.get, "Pod", name))
            if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                done.add(name)

    def _log_lines(self, run: str, experiment: str) -> int:
        """Lines in the experiment's log on the volume (0 if it cannot be read now)."""
        path = f"{objects.DATA_MOUNT}/{objects.experiment_dir(run, experiment)}/log"
        try:
            out = self.cluster.exec(
                self.data_pod(wait=30, run=run), ["sh", "-c", f"wc -l < {path} 2>/dev/null || echo 0"], timeout=60
            )
            return int(out.strip() or 0)
        except (ClusterError, NotFoundError, ValueError):
            return 0

    def finished_log(self, run: str, experiment: str, *, tail: int | None = None) -> Iterator[str]:
        """The log from the data volume (all attempts; the last ``tail`` lines), as formatted lines,
        streamed as they are read: a log of a gigabyte starts printing at once."""
        path = f"{objects.DATA_MOUNT}/{objects.experiment_dir(run, experiment)}/log"
        read = f"tail -n {int(tail)} {path}" if tail is not None else f"cat {path}"
        pending: list[bytes] = []
        for chunk in self.cluster.exec_stream(self.data_pod(run=run), ["sh", "-c", f"{read} 2>/dev/null || true"]):
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending.append(chunk)
                continue
            pending.append(chunk[:cut])
            yield from b"".join(pending).decode("utf-8", "surrogateescape").split("\n")
            pending = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
        if pending:
            yield b"".join(pending).decode("utf-8", "surrogateescape")

    # -- stop --------------------------------------------------------------------------------

    def stop_jobs(self, run: str, experiments: list[str], *, wait: float = 90) -> None:
        """Mark the stop, delete the Jobs (their pods get SIGTERM; the launcher saves artifacts and records "stopped").

        ``--max-parallel``: queued (suspended) Jobs are deleted like the others — stopping a
        whole run leaves nothing behind — except those a still-waiting experiment's release
        chain passes through (:func:`runner.targets.kubernetes.objects.kept_when_stopped`): those stay suspended,
        recorded "stopped", and hand their turn on when it comes.  A running experiment's
        launcher releases its successor when its pod ends.
        """
        record = objects.read_run_record(self._run_configmaps(run))
        doc, _, where = record if record is not None else ({}, {}, {})
        marks: dict[str, dict[str, str | None]] = {}
        for e in experiments:
            marks.setdefault(where.get(e) or objects.run_configmap_name(run), {})[f"{e}.stop"] = "1"
        for cm, data in marks.items():
            self.cluster.patch_configmap(cm, data)
        kept = self._kept_links(run, doc, set(experiments))
        if kept:
            self._write_ends(
                run,
                {
                    e: {
                        "state": ExpState.STOPPED.value,
                        "exit_code": None,
                        "message": "stopped while queued",
                        "finished_at": time.time(),
                    }
                    for e in kept
                },
                where,
            )
        self.cluster.delete_many("Job", [objects.job_name(e) for e in experiments if e not in kept])
        deadline = time.monotonic() + wait
        pending = set(experiments) - kept
        sel = f"{objects.RUN_LABEL}={run}"
        while pending and time.monotonic() < deadline:
            alive = {
                p["metadata"].get("labels", {}).get(objects.EXP_LABEL) for p in self.cluster.list_objects("Pod", sel)
            }
            pending &= alive
            if pending:
                time.sleep(0.5)
        # Records "stopped" for those that never started: a deleted Job with a stop mark is a final
        # "stopped" to observe (see _summary).
        self.summaries(run=run)

    # -- delete --------------------------------------------------------------------------------

    def delete_run(self, run: str, experiments: list[str] | None = None) -> bool:
        """Remove a run's (or some experiments') Jobs, pods, folders on the data volume and record ConfigMaps.

        True when the whole run went (no experiment left in its record).  The volume is
        cleared first: the data pod's image is read from the run's record.
        """
        cms = self._run_configmaps(run)
        record = objects.read_run_record(cms)
        names = [str(e["name"]) for e in record[0]["experiments"]] if record else []
        whole = experiments is None or not set(names) - set(experiments)
        gone = set(names) if experiments is None else set(experiments)
        if record is not None:  # a run that never reached the cluster left nothing on the volume
            folders = [f"runs/{run}"] if whole else [objects.experiment_dir(run, e) for e in sorted(gone)]
            self.cluster.exec(
                self.data_pod(run=run), ["rm", "-rf", *(f"{objects.DATA_MOUNT}/{f}" for f in folders)], timeout=300
            )
        sel = f"{objects.RUN_LABEL}={run}"
        jobs = [
            j["metadata"]["name"]
            for j in self.cluster.list_objects("Job", sel)
            if whole or j["metadata"].get("labels", {}).get(objects.EXP_LABEL) in gone
        ]
        self.cluster.delete_many("Job", jobs)
        pods = [
            p["metadata"]["name"]
            for p in self.cluster.list_objects("Pod", sel)
            if whole or p["metadata"].get("labels", {}).get(objects.EXP_LABEL) in gone
        ]
        self.cluster.delete_many("Pod", pods)
        if whole:
            # part 0 last: whoever sees a run sees all of it (see record_run)
            cms.sort(key=lambda cm: "run.json" in (cm.get("data") or {}))
            for cm in cms:
                self.cluster.delete("ConfigMap", cm["metadata"]["name"])
            return True
        for cm in cms:
            patch = objects.without_experiments(cm, gone)
            if patch:
                self.cluster.patch_configmap(cm["metadata"]["name"], patch)
        return False

    def _kept_links(self, run: str, doc: dict[str, Any], stopping: set[str]) -> set[str]:
        max_parallel = (doc.get("options") or {}).get("max_parallel")
        if not max_parallel:
            return set()
        names = [e["name"] for e in sorted(doc.get("experiments") or [], key=lambda e: int(e.get("index", 0)))]
        jobs = self.cluster.list_objects("Job", f"{objects.RUN_LABEL}={run}")
        suspended = {j["metadata"]["labels"].get(objects.EXP_LABEL, "") for j in jobs if objects.job_suspended(j)}
        return objects.kept_when_stopped(names, max_parallel, suspended=suspended, stopping=stopping)

    # -- the data volume ---------------------------------------------------------------------

    def helper_image_for(self, run: str | None = None) -> str:
        """The data pod's image: one the cluster can already pull, never one from outside the user's registry.

        ``RUNNER_HELPER_IMAGE`` if set; else the run's own image (it has sh and tar: any
        runner image is Debian-based); else the newest run image in the namespace
        (datastore commands); else a UsageError saying what to set.
        """
        if self.helper_image:
            return self.helper_image
        if run is not None:
            record = objects.read_run_record(self._run_configmaps(run))
            if record is not None and record[0].get("image"):
                return str(record[0]["image"])
        image = objects.newest_run_image(self.cluster.list_objects("ConfigMap", f"{objects.KIND_LABEL}=run"))
        if image is None:
            raise UsageError(
                f"no image to read the data volume with: namespace {self.cluster.ns} has no runs yet", hint=HELPER_HINT
            )
        return image

    def data_pod(self, *, wait: float = 120, run: str | None = None, image: str | None = None) -> str:
        """A running pod that mounts the data volume (made if needed; it ends by itself after 15 minutes).

        A running one is used whatever runner image it has (each has sh and tar), unless
        ``RUNNER_HELPER_IMAGE`` asks for another; a new one gets ``image``, or
        :meth:`helper_image_for` ``run``.
        """
        name = str(objects.make_data_pod(image="-")["metadata"]["name"])
        pod = self.cluster.get("Pod", name)
        if pod is not None:
            phase = (pod.get("status") or {}).get("phase")
            started = (pod.get("status") or {}).get("startTime")
            young = started and time.time() - epoch(started) < 600
            same = self.helper_image is None or pod["spec"]["containers"][0]["image"] == self.helper_image
            if phase == "Running" and young and same:
                return name
            self.cluster.delete("Pod", name, grace=0)
            for _ in range(100):
                if self.cluster.get("Pod", name) is None:
                    break
                time.sleep(0.2)
        chosen = self.helper_image or image or self.helper_image_for(run)
        if self.cluster.get("PersistentVolumeClaim", objects.DATA_PVC) is None:
            self.cluster.create(objects.make_data_pvc(storage_class=os.environ.get("RUNNER_STORAGE_CLASS")))
        self.cluster.create(objects.make_data_pod(image=chosen))
        self.cluster.wait_pod(name, timeout=wait)
        return name

    def download(self, folder: str, dest: Path, *, run: str | None = None) -> list[str]:
        """Everything under ``folder`` (relative to the volume) into ``dest``; the files' relative paths."""
        path = f"{objects.DATA_MOUNT}/{folder}"
        data = self.cluster.exec(self.data_pod(run=run), ["sh", "-c", f"if [ -d {path} ]; then tar c -C {path} .; fi"])
        if not data:
            return []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            saved = extract_files(tar, dest, name_of=lambda m: m.name)
        return sorted(saved)

    def download_artifacts(self, run: str, experiment: str, dest: Path) -> list[str]:
        return self.download(f"{objects.experiment_dir(run, experiment)}/artifacts", dest, run=run)

    # -- datastores ----------------------------------------------------------------------------

    def datastores(self) -> list[DatastoreVersion]:
        out = []
        for cm in self.cluster.list_objects("ConfigMap", f"{objects.KIND_LABEL}=datastore"):
            out += _versions(cm)
        return sorted(out, key=lambda v: (v.name, v.version))

    def datastore_create(
        self, name: str, source: Path, *, progress: Callable[[Progress], None] = lambda _: None
    ) -> tuple[DatastoreVersion, bool]:
        """Upload ``source`` as the next version of ``name``; (version, uploaded?).  Same content is stored once.

        ``progress`` hears the upload's bytes as they go (and once more when the pod has unpacked them).
        """
        check_datastore_source(name, source)
        digest, files = tree_digest(source)
        cm = self.cluster.get("ConfigMap", objects.datastore_configmap_name(name))
        versions = _versions(cm) if cm else []
        if versions and versions[-1].digest == digest:
            return versions[-1], False
        known = {v.digest for v in self.datastores()}
        pod = self.data_pod()
        target = f"{objects.DATA_MOUNT}/datastores/{digest}"
        exists = self.cluster.exec(pod, ["sh", "-c", f"test -d {target} && echo yes || true"]).strip() == b"yes"
        uploaded = False
        if digest not in known or not exists:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:") as tar:
                for p in files:
                    tar.add(p, arcname=p.relative_to(source).as_posix(), recursive=False)
            data = buf.getvalue()
            what = f"datastore {name} ({len(files)} file{'' if len(files) == 1 else 's'})"
            progress(upload_progress(what, 0, len(data)))
            tmp = f"{objects.DATA_MOUNT}/datastores/.tmp-{digest}"
            script = f"rm -rf {tmp} && mkdir -p {tmp} && head -c {len(data)} | tar x -C {tmp} && rm -rf {target} && mv {tmp} {target}"
            self.cluster.exec(
                pod, ["sh", "-c", script], stdin=data, sent=lambda n: progress(upload_progress(what, n, len(data)))
            )
            progress(upload_progress(what, len(data), len(data), final=True))
            uploaded = True
        size = sum(p.stat().st_size for p in files)
        new = DatastoreVersion(
            name, (versions[-1].version + 1) if versions else 1, digest, time.time(), len(files), size
        )
        docs = [_version_doc(v) for v in [*versions, new]]
        if cm is None:
            self.cluster.create(objects.make_datastore_configmap(name, docs))
        else:
            self.cluster.patch_configmap(cm["metadata"]["name"], {"versions.json": json.dumps(docs, sort_keys=True)})
        return new, uploaded

    def datastore_delete(self, name: str, version: int | None) -> list[DatastoreVersion]:
        cm_name = objects.datastore_configmap_name(name)
        cm = self.cluster.get("ConfigMap", cm_name)
        versions = _versions(cm) if cm else []
        gone = [v for v in versions if version is None or v.version == version]
        if not gone:
            raise NotFoundError(
                f"no datastore {name!r}" + (f" version {version}" if version else ""),
                hint="`runner datastore list` shows them",
            )
        keep = [v for v in versions if v not in gone]
        if keep:
            self.cluster.patch_configmap(
                cm_name, {"versions.json": json.dumps([_version_doc(v) for v in keep], sort_keys=True)}
            )
        else:
            self.cluster.delete("ConfigMap", cm_name)
        still = {v.digest for v in self.datastores()}
        orphans = sorted({v.digest for v in gone} - still)
        if orphans:
            paths = " ".join(f"{objects.DATA_MOUNT}/datastores/{d}" for d in orphans)
            self.cluster.exec(self.data_pod(), ["rm", "-rf", *paths.split()])
        return gone

    def resolve_datastore(self, text: str) -> objects.DatastoreMount:
        name, version, mount = parse_datastore(text)
        cm = self.cluster.get("ConfigMap", objects.datastore_configmap_name(name))
        versions = _versions(cm) if cm else []
        chosen = [v for v in versions if version is None or v.version == version]
        if not chosen:
            raise UsageError(
                f"--datastore {text}: no datastore {name!r}" + (f" version {version}" if version else ""),
                hint="`runner datastore list` shows them",
            )
        v = chosen[-1]
        return objects.DatastoreMount(
            name=name, version=v.version, digest=v.digest, mount_dir=mount or f"/datastores/{name}"
        )

    def dry_run(
        self,
        plan: Plan,
        image: str,
        experiments: Sequence[Experiment],
        opts: RunOptions,
        *,
        options: dict[str, object],
    ) -> tuple[str, list[str]]:
        """The objects :meth:`start` would create for a plan, as multi-document YAML, and notes.

        Nothing is created; the cluster is asked about the datastores, the registry for the
        image's digest (the real run refers to it so).
        """
        import yaml

        from runner.names import experiment_name
        from runner.render import container_command

        notes = []
        registry = opts.kube.registry if opts.kube else None
        mounts = tuple(self.resolve_datastore(d) for d in (opts.kube.datastores if opts.kube else ()))
        ref = f"{registry.rstrip('/')}/{image}" if registry else image
        digest = None
        if registry:
            try:
                digest = self.manifest_digest(ref)
            except RunnerError as e:
                notes.append(f"registry not asked: {e.message}")
        if digest:
            ref = f"{ref.rpartition(':')[0]}@{digest}"
        else:
            notes.append(f"{ref} is not in the registry yet: the real run builds/pushes it and uses its digest")
        name = random_run_name()
        now = time.time()
        run = RunRecord(
            name=name,
            project=plan.project,
            root=str(plan.root),
            script=plan.script,
            args=plan.args,
            target=TargetKind.KUBERNETES.value,
            image=image,
            cached=None,
            created_at=now,
            options=options,
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
                created_at=now,
                started_at=None,
                finished_at=None,
                owner_pid=None,
                stop_requested=False,
            )
            for e in experiments
        )
        sub = Submission(run, plan, image, False, exps)
        configmaps = objects.make_run_configmaps(self.run_doc(sub, ref, launched=True))
        specs = job_specs(sub, ref, opts, mounts=mounts, records=objects.part_of(configmaps))
        if any(s.env.get("RUNNER_ARGV_FILE") for s in specs):
            notes.append("arguments too long for exec are written to argv.json on the data volume at submit time")
        docs = [objects.make_data_pvc(), objects.make_launcher_configmap(), *configmaps, *map(objects.make_job, specs)]
        return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True), notes

    # -- the Target interface (runner.targets.base) --------------------------------------

    def describe(self) -> str:
        info = self.cluster.info
        return f"kubernetes {info.context} namespace {info.namespace}"

    def prepare(self, opts: RunOptions, *, name: str | None) -> Prepared:
        """The cluster answers, the namespace is set up (or is made so), the name is free there, the secrets
        and datastores exist: before anything is built."""
        from runner.options import KubeOptions

        ko = opts.kube or KubeOptions()
        if not ko.registry:
            raise UsageError(
                "no image registry for the Kubernetes target",
                hint="give --registry HOST[:PORT] (or registry in runner.yaml, or RUNNER_REGISTRY)",
            )
        self.cluster.check()
        notes = self.set_up()
        if name is not None and self.has_run(name):
            raise UsageError(
                f"--name {name}: namespace {self.cluster.info.namespace} has a run with that name already",
                hint=f"choose another name, or remove it with `runner delete {name}`",
            )
        self.check_secrets(ko.secrets)
        for ds in ko.datastores:
            self.resolve_datastore(ds)  # fails now, not after the build
        info = self.cluster.info
        options: dict[str, object] = {
            "context": info.context,
            "namespace": info.namespace,
            "registry": ko.registry,
            "secrets": list(ko.secrets),
            "timeout": ko.timeout,
            "retries": ko.retries,
            "datastores": list(ko.datastores),
        }
        return Prepared(options, tuple(notes))

    def publish(self, sub: Submission) -> Generator[Progress, None, Published]:
        """The image in the run's registry, by digest, yielding the push's progress.  Asks the registry
        first: present -> no push."""
        from runner.errors import RegistryError

        registry = str(sub.run.options.get("registry") or "")
        remote = f"{registry.rstrip('/')}/{sub.image}"
        digest = self.manifest_digest(remote)
        pushed = False
        if digest is None:
            if self._engine is None:
                raise RegistryError(f"no Docker engine to push {sub.image} with")
            yield from self._engine().push(sub.image, remote)
            pushed = True
            digest = self.manifest_digest(remote)
            if digest is None:
                raise RegistryError(f"registry {registry} does not have {sub.image} right after the push")
        ref = f"{remote.rpartition(':')[0]}@{digest}"
        return Published(ref, pushed, f"pushed     {ref}" if pushed else f"registry   {ref} (already there)")

    @staticmethod
    def run_doc(sub: Submission, image: str, *, launched: bool) -> dict[str, object]:
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

    def fail(self, sub: Submission, message: str) -> None:
        """A run that failed before its Jobs existed: the cluster's record says so too (history has it already)."""
        end = {"state": ExpState.FAILED.value, "exit_code": None, "message": message, "finished_at": time.time()}
        try:
            self.record_run(
                objects.make_run_configmaps(
                    self.run_doc(sub, sub.image, launched=False), {e.name: end for e in sub.experiments}
                )
            )
        except ClusterError:
            pass  # the cluster is what failed: the local history has it

    def start(self, sub: Submission, image: str, opts: RunOptions) -> None:
        """The data volume and launcher, the run's record, long arguments on the volume, then the Jobs."""
        from runner.render import argv_through_file, exec_too_long

        self.ensure_infra()
        configmaps = objects.make_run_configmaps(self.run_doc(sub, image, launched=True))
        ko_datastores = opts.kube.datastores if opts.kube else ()
        mounts = tuple(self.resolve_datastore(d) for d in ko_datastores)
        specs = job_specs(sub, image, opts, mounts=mounts, records=objects.part_of(configmaps))
        # arguments too long for exec (and for any ConfigMap): on the volume, before the Jobs exist
        argv = {
            f"{objects.experiment_dir(sub.run.name, e.name)}/argv.json": argv_through_file(e.command)[1]
            for e in sub.experiments
            if exec_too_long(e.command)
        }
        if argv:
            self.put_files(argv, image=image)
        self.record_run(configmaps)
        self.launch(specs)
        if self.store is not None:
            for exp in sub.experiments:
                self.store.update_experiment(exp.name, handle=exp.name, state=ExpState.QUEUED, owner_pid=None)

    def stream(self, sub: Submission, opts: RunOptions) -> Iterator[tuple[str, LogLine]]:
        """Each experiment's output in turn; Ctrl-C stops the run and waits for its end states."""
        try:
            for exp in sub.experiments:
                for line in self.follow(sub.run.name, exp.name):
                    yield exp.name, line
        except KeyboardInterrupt:
            names = [e.name for e in sub.experiments]
            live = {e.name: e for s in self.summaries(run=sub.run.name) for e in s.experiments}
            self.stop_jobs(sub.run.name, [n for n in names if n in live and live[n].state.active])
            for name in names:
                for _ in self.follow(sub.run.name, name):
                    pass
            raise

    def experiment(self, run: RunRecord, name: str) -> ExperimentRecord:
        seen = self.live_experiment(run.name, name)
        self._cache(seen)
        return seen

    def observe(self, *, run: str | None = None) -> list[RunSummary]:
        """:meth:`summaries`, and the local copy of the runs history knows kept current (for when the cluster is away)."""
        found = self.summaries(run=run)
        for s in found:
            for exp in s.experiments:
                self._cache(exp)
        return found

    def _cache(self, exp: ExperimentRecord) -> None:
        if self.store is None:
            return
        try:
            if not exp.state.active:
                self.store.finish_experiment(exp.name, state=exp.state, exit_code=exp.exit_code, message=exp.message)
            else:
                self.store.update_experiment(exp.name, state=exp.state, message=exp.message)
        except RunnerError:
            pass  # not in this history (another user's run), or history cannot be written now

    def reconcile(self, experiments: list[ExperimentRecord]) -> None:
        """Experiments whose CLI died before their Job existed: the cluster never saw them."""
        if self.store is None:
            return
        for exp in experiments:
            if exp.handle is None:
                self.store.finish_experiment(
                    exp.name, state=ExpState.FAILED, exit_code=None, message="runner stopped before the Job was created"
                )

    def logs(
        self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, tail: int | None, follow: bool
    ) -> Iterator[str]:
        found = self.summaries(run=run.name)
        wanted = {e.name for e in experiments}
        for exp in found[0].experiments if found else experiments:
            if exp.name not in wanted:
                continue
            prefix = f"{exp.name} " if len(experiments) > 1 else ""
            if exp.state.active and follow:
                yield from (prefix + ln.format() for ln in self.follow(run.name, exp.name))
                continue
            if exp.state.active and exp.state is not ExpState.RUNNING:
                # not started: no output yet, so the volume is not read (its pod might not start either)
                why = exp.message or "no reason reported yet"
                yield f"{prefix}[{WAITING}] [{now_iso()}] {exp.name} is pending ({exp.state.value}): {why}"
                continue
            if tail != 0:
                yield from (prefix + ln for ln in self.finished_log(run.name, exp.name, tail=tail))

    def stop(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...]) -> list[str]:
        found = self.summaries(run=run.name)
        live = {e.name: e for e in found[0].experiments} if found else {}
        active = [e.name for e in experiments if e.name in live and live[e.name].state.active]
        if active:
            self.stop_jobs(run.name, active)
            self.observe(run=run.name)  # history gets the states the stop led to
        return active

    def artifacts(self, run: RunRecord, experiment: ExperimentRecord, dest: Path) -> list[str]:
        return self.download_artifacts(run.name, experiment.name, dest)

    def delete(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, whole: bool) -> Ended:
        gone = self.delete_run(run.name, None if whole else [e.name for e in experiments])
        return Ended(gone or whole)


def job_specs(
    sub: Submission,
    image: str,
    opts: RunOptions,
    *,
    mounts: tuple[objects.DatastoreMount, ...] = (),
    records: dict[str, str] | None = None,
) -> list[objects.JobSpec]:
    """The run's Jobs.  ``records``: experiment -> the run ConfigMap (part) that keeps its end
    (:func:`runner.targets.kubernetes.objects.part_of`); ``mounts``: the datastores, as the cluster resolved them."""
    from runner.options import KubeOptions
    from runner.render import ARGV_BOOTSTRAP, ARGV_FILE, argv_through_file, exec_too_long
    from runner.runtime import EXPERIMENT_VAR, env_for

    ko = opts.kube or KubeOptions()
    r = opts.resources
    ordered = sorted(sub.experiments, key=lambda e: e.index)
    # --max-parallel: the first P run, the rest are created suspended; each releases the one P after it
    chain = objects.release_chain([e.name for e in ordered], opts.max_parallel)

    def command_and_env(command: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
        if not exec_too_long(command):
            return command, dict(opts.env)
        argv_through_file(command)  # refuses shell scripts, as on the local target
        # longer than exec allows: the launcher takes the argv from argv.json in the experiment's
        # folder on the data volume (see start) and starts the script through the bootstrap
        return (), {**opts.env, "RUNNER_ARGV_FILE": ARGV_FILE, "RUNNER_ARGV_BOOTSTRAP": ARGV_BOOTSTRAP}

    specs = []
    for e in ordered:
        command, env = command_and_env(tuple(e.command))
        env = {**env_for(sub.run.name, e.name, e.params), **env}
        del env[EXPERIMENT_VAR]  # make_job sets it (the launcher reads it too)
        specs.append(
            objects.JobSpec(
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


def _versions(cm: dict[str, Any] | None) -> list[DatastoreVersion]:
    if not cm:
        return []
    data = cm.get("data") or {}
    name = data.get("name", "")
    return sorted(
        (
            DatastoreVersion(
                name, int(d["version"]), d["digest"], float(d["created_at"]), int(d["files"]), int(d["size"])
            )
            for d in json.loads(data.get("versions.json") or "[]")
        ),
        key=lambda v: v.version,
    )


def _version_doc(v: DatastoreVersion) -> dict[str, Any]:
    return {"version": v.version, "digest": v.digest, "created_at": v.created_at, "files": v.files, "size": v.size}


def _pod_started(pod: dict[str, Any]) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        st = cs.get("state") or {}
        if st.get("running") or st.get("terminated"):
            return True
    return False
