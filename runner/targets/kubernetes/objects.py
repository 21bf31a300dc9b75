"""The Kubernetes target's pure part: manifests from ``runner/targets/kubernetes/manifests/*.yaml`` (package data), names, state from objects.

Nothing here talks to a cluster (that is :mod:`runner.adapters.cluster`); everything is
plain dicts in, plain dicts out, so it is golden-tested in ``tests/unit``.

Design, in short (docs/architecture.md has the long form):

* **One Job per experiment** (not one Indexed Job per run): each experiment has its own
  resources, deadline, retries and stop, and ``kubectl get jobs -l runner/experiment=X``
  answers for one of them.  A run is the set of Jobs sharing the ``runner/run`` label.
* **The run's record lives in ConfigMaps** (``runner-run-<run>``, and ``runner-run-<run>-<k>``
  when it needs more: :func:`make_run_configmaps`): ``run.json`` says what was run;
  ``part.json`` lists the experiments of that part; ``<exp>.json`` how each ended
  (written by the launcher in the pod, or by the CLI when the pod never got that far);
  ``<exp>.stop`` marks a stop request.  A ConfigMap holds at most 1 MiB, so the
  experiments are split into parts with room kept for every end, and an argument list
  too long for one (the script's argv when exec could not take it) is on the data
  volume instead.  ConfigMaps outlive pods and Jobs, so everyone with access to the
  namespace sees the same history.
* **The launcher** (:mod:`runner.targets.kubernetes.launcher`, from a ConfigMap) is the container's
  entrypoint: it keeps logs and artifacts on the ``runner-data`` volume and records the
  end state without the CLI connected.
* **``--max-parallel P``: a release chain of suspended Jobs** (:func:`release_chain`).  Every
  Job of the run is created at submit time; the first P (by experiment index) run, the
  others are created with ``spec.suspend: true`` (queued: no pod, and the Job's
  ``activeDeadlineSeconds`` clock only starts when it is resumed).  Experiment i carries
  ``RUNNER_RELEASE=<Job of experiment i+P>``: when it ends, however it ends, its launcher
  records the end and then unsuspends that Job (a merge patch through the API with the
  pod's token).  So each later experiment has exactly one releaser, at most P run at
  once, and no process outside the cluster needs to be connected.  Observers (``status``,
  ``stop``) repair a broken chain: a suspended Job whose releaser has a final end is
  released by whoever sees it (:func:`to_release`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from runner.logs import epoch
from runner.model import ExpState
from runner.names import kube_name

MANIFESTS = Path(__file__).resolve().parent / "manifests"  # package data: found in a wheel too
LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
DATA_PVC = "runner-data"
DATA_MOUNT = "/runner-data"
LAUNCHER_CONFIGMAP = "runner-launcher"
MANAGED = {"app.kubernetes.io/managed-by": "runner"}
RUN_LABEL = "runner/run"
EXP_LABEL = "runner/experiment"
KIND_LABEL = "runner/kind"
DATASTORE_LABEL = "runner/datastore"
GPU_RESOURCE = "nvidia.com/gpu"
#: Seconds the Job may live beyond ``--timeout`` (image pull, scheduling) before Kubernetes ends it.
DEADLINE_SLACK = 300
#: A ConfigMap holds at most 1 MiB (data and metadata).  A run's record is split in parts of at
#: most PART_BUDGET bytes, counting END_RESERVE for each experiment's end and stop mark to come.
PART_BUDGET = 768 * 1024
END_RESERVE = 2048
#: an end's message is capped (the launcher caps its own: launcher.MAX_MESSAGE), so ends fit their reserve
MAX_MESSAGE = 1024
#: a command longer than this is not copied into the record (the Job has it, or the volume: argv.json)
ENTRY_LIMIT = 64 * 1024
#: the run's arguments, in run.json, up to this size (a sweep's values are in its experiments' params)
ARGS_LIMIT = 64 * 1024
PART_KIND = "run-part"


@dataclass(frozen=True)
class DatastoreMount:
    name: str
    version: int
    digest: str  # the content hash: its folder on the volume is datastores/<digest>
    mount_dir: str


@dataclass(frozen=True)
class JobSpec:
    run: str
    experiment: str
    image: str
    command: tuple[str, ...]
    workdir: str = "/project"
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    cpus: float | None = None
    memory: str | None = None
    gpus: int = 0
    timeout: int | None = None
    retries: int = 0
    datastores: tuple[DatastoreMount, ...] = ()
    suspend: bool = False  # created queued (spec.suspend): its predecessor in the release chain resumes it
    release: str | None = None  # the experiment whose Job this one resumes when it ends (--max-parallel)
    record: str | None = None  # the run ConfigMap (part) that holds its end; None: part 0


def release_chain(experiments: list[str], max_parallel: int | None) -> dict[str, tuple[bool, str | None]]:
    """``--max-parallel``: experiment -> (created suspended?, experiment it releases when it ends).

    ``experiments`` in index order.  The first ``max_parallel`` start at once; experiment
    i releases experiment i + max_parallel, so every suspended one has exactly one releaser.
    """
    p = max_parallel or len(experiments)
    return {
        name: (i >= p, experiments[i + p] if i + p < len(experiments) else None) for i, name in enumerate(experiments)
    }


def job_suspended(job: dict[str, Any] | None) -> bool:
    return bool(((job or {}).get("spec") or {}).get("suspend"))


def job_finished(job: dict[str, Any] | None) -> bool:
    conds = _conditions(job)
    return any(c in conds for c in ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"))


#: seconds after an experiment's end before an observer resumes its successor itself (its launcher
#: releases it within moments; an observer that did it at once could race another launcher's release)
REPAIR_GRACE = 30


def to_release(experiments: list[str], max_parallel: int | None, *, suspended: set[str], ended: set[str]) -> list[str]:
    """Suspended experiments whose releaser has ended (its launcher should have released them: repair the chain).

    ``ended``: experiments with a final end at least :data:`REPAIR_GRACE` ago whose Job is not
    suspended (a queued experiment stopped alone keeps its suspended Job and passes its turn
    on when its releaser ends: :func:`kept_when_stopped`).
    """
    chain = release_chain(experiments, max_parallel)
    return [succ for name, (_, succ) in chain.items() if succ is not None and succ in suspended and name in ended]


def kept_when_stopped(
    experiments: list[str], max_parallel: int | None, *, suspended: set[str], stopping: set[str]
) -> set[str]:
    """Stopped, still-queued experiments whose suspended Job must stay: the release chain passes through them.

    A queued experiment has no slot of its own: its releaser's end gives it one.  If a
    later link of its chain still waits (suspended, not stopped), deleting it would
    strand that one, and releasing that one now would exceed ``--max-parallel``.  So its
    Job stays suspended, with its end recorded as "stopped"; when it is released, the
    launcher sees the stop mark, skips the script and releases the next one.  When a whole
    run is stopped nothing is kept.
    """
    chain = release_chain(experiments, max_parallel)
    kept = set()
    for name in stopping & suspended:
        succ = chain.get(name, (False, None))[1]
        while succ is not None:
            if succ in suspended and succ not in stopping:
                kept.add(name)
                break
            succ = chain[succ][1]
    return kept


@cache
def _template(name: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((MANIFESTS / name).read_text())
    assert isinstance(data, dict)
    return data


def template(name: str) -> dict[str, Any]:
    return copy.deepcopy(_template(name))


#: the admin's manifest (package data): the runner-user Role for people, and what the experiment pods run as
RBAC = "rbac.yaml"
#: the ServiceAccount the experiment pods run as, and its Role and RoleBinding (the same name)
EXPERIMENT_ACCOUNT = "runner"
EXPERIMENT_ROLE = "runner-experiment"


@cache
def _rbac_documents() -> tuple[dict[str, Any], ...]:
    import yaml

    return tuple(d for d in yaml.safe_load_all((MANIFESTS / RBAC).read_text()) if isinstance(d, dict))


def rbac_object(kind: str, name: str, *, namespace: str) -> dict[str, Any]:
    """One object of ``rbac.yaml`` (the file an admin applies), its subjects' namespace filled in:
    what runner creates itself in a namespace where the user may."""
    doc = next(d for d in _rbac_documents() if d.get("kind") == kind and d["metadata"]["name"] == name)
    obj = copy.deepcopy(doc)
    for subject in obj.get("subjects") or []:
        if subject.get("kind") == "ServiceAccount":
            subject["namespace"] = namespace
    return obj


def run_configmap_name(run: str) -> str:
    return kube_name(f"runner-run-{run}")


def datastore_configmap_name(name: str) -> str:
    return kube_name(f"runner-datastore-{name}")


def job_name(experiment: str) -> str:
    return kube_name(experiment)


def experiment_dir(run: str, experiment: str) -> str:
    """The experiment's folder on the data volume (relative): log, end.json, artifacts/."""
    return f"runs/{run}/{experiment}"


def escape_arg(arg: str) -> str:
    """Kubernetes expands ``$(VAR)`` in command and args and turns ``$$`` into ``$``: doubling every ``$`` keeps them literal."""
    return arg.replace("$", "$$")


def cpu_quantity(cpus: float) -> str:
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def make_job(spec: JobSpec) -> dict[str, Any]:
    job = template("job.yaml")
    labels = {**MANAGED, RUN_LABEL: spec.run, EXP_LABEL: spec.experiment}
    job["metadata"] = {"name": job_name(spec.experiment), "labels": labels}
    job["spec"]["backoffLimit"] = spec.retries
    if spec.suspend:  # --max-parallel: queued until the experiment before it in the release chain ends
        job["spec"] = {"suspend": True, **job["spec"]}
    if spec.timeout:
        job["spec"]["activeDeadlineSeconds"] = spec.timeout + DEADLINE_SLACK
    pod = job["spec"]["template"]
    pod["metadata"]["labels"] = dict(labels)
    container = pod["spec"]["containers"][0]
    container["image"] = spec.image
    container["workingDir"] = spec.workdir
    container["args"] = ["--", *(escape_arg(a) for a in spec.command)]
    env = [{"name": k, "value": escape_arg(v)} for k, v in spec.env.items()]
    env += [
        {"name": "RUNNER_EXPERIMENT", "value": spec.experiment},
        {"name": "RUNNER_CONFIGMAP", "value": spec.record or run_configmap_name(spec.run)},
        {"name": "RUNNER_DATA", "value": DATA_MOUNT},
        # the script runs at most this often: a pod the Job controller makes beyond that (a stale cache
        # after an API server outage) finds no attempt left on the volume and runs nothing (launcher.claim_turn)
        {"name": "RUNNER_ATTEMPTS", "value": str(spec.retries + 1)},
    ]
    if spec.timeout:
        env.append({"name": "RUNNER_TIMEOUT", "value": str(spec.timeout)})
    if spec.suspend:  # the launcher checks for a stop request made while it was queued
        env.append({"name": "RUNNER_QUEUED", "value": "1"})
    if spec.release:
        env.append({"name": "RUNNER_RELEASE", "value": job_name(spec.release)})
    container["env"] = env
    if spec.secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in spec.secrets]
    requests: dict[str, str] = {"cpu": cpu_quantity(spec.cpus or 1)}
    limits: dict[str, str] = {}
    if spec.memory:
        requests["memory"] = limits["memory"] = spec.memory
    if spec.gpus:
        # extended resources: the request must equal the limit
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpus)
    container["resources"] = {"requests": requests, **({"limits": limits} if limits else {})}
    mounts = container["volumeMounts"]
    for m in mounts:
        if m["name"] == "data":
            m["subPath"] = experiment_dir(spec.run, spec.experiment)
    for ds in spec.datastores:
        mounts.append(
            {"name": "data", "mountPath": ds.mount_dir, "subPath": f"datastores/{ds.digest}", "readOnly": True}
        )
    return job


def part_configmap_name(run: str, part: int) -> str:
    return run_configmap_name(run) if part == 0 else kube_name(f"runner-run-{run}-{part}")


def _size(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogateescape"))


def end_value(end: dict[str, Any]) -> str:
    """An experiment's end as stored (``<exp>.json``): its message capped, so it fits its reserve."""
    message = end.get("message")
    if isinstance(message, str) and len(message) > MAX_MESSAGE:
        end = {**end, "message": message[: MAX_MESSAGE - 3] + "..."}
    text = json.dumps(end, sort_keys=True)
    while len(text) > END_RESERVE - 128 and isinstance(end.get("message"), str) and end["message"]:
        end = {**end, "message": end["message"][: len(end["message"]) // 2]}  # escapes made it longer
        text = json.dumps(end, sort_keys=True)
    return text


def make_run_configmaps(run_doc: dict[str, Any], ends: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The run's record, as ConfigMaps none of which can pass 1 MiB, whatever the sweep or the arguments.

    ``run_doc`` is the whole run (``experiments``: name, index, command, params).  Part 0
    (``runner-run-<run>``) holds ``run.json`` without the experiments (their count and the
    number of parts instead; the run's ``args`` only up to :data:`ARGS_LIMIT`), and like
    every part a ``part.json``: its experiments, each with the command unless that passes
    :data:`ENTRY_LIMIT`.  Experiments go to parts in index order, each part filled up to
    :data:`PART_BUDGET` counting :data:`END_RESERVE` per experiment, so the ends and stop
    marks written later always fit.  A small run is one ConfigMap, as before.
    """
    name = str(run_doc["name"])
    entries = []
    for e in sorted(run_doc.get("experiments") or [], key=lambda e: int(e.get("index", 0))):
        entry = {k: e[k] for k in ("name", "index", "command", "params") if k in e}
        if _size(entry.get("command")) > ENTRY_LIMIT:
            entry["command"] = None  # the Job has it, or argv.json on the volume
            entry["command_omitted"] = True
        entries.append(entry)
    header = {k: v for k, v in run_doc.items() if k != "experiments"}
    if _size(header.get("args")) > ARGS_LIMIT:
        header["args"], header["args_omitted"] = [], True
    header["experiments"] = len(entries)
    parts: list[list[dict[str, Any]]] = [[]]
    used = _size(header) + 64  # run.json, and room for the count of parts
    for entry in entries:
        cost = _size(entry) + 2 + END_RESERVE
        if parts[-1] and used + cost > PART_BUDGET:
            parts.append([])
            used = 0
        parts[-1].append(entry)
        used += cost
    header["parts"] = len(parts)
    out = []
    for i, part in enumerate(parts):
        cm = template("run-configmap.yaml")
        cm["metadata"]["name"] = part_configmap_name(name, i)
        cm["metadata"]["labels"][RUN_LABEL] = name
        data = {"part.json": json.dumps(part, sort_keys=True, ensure_ascii=False)}
        if i == 0:
            data["run.json"] = json.dumps(header, sort_keys=True, ensure_ascii=False)
        else:
            cm["metadata"]["labels"][KIND_LABEL] = PART_KIND
        for e in part:
            if ends and e["name"] in ends:
                data[f"{e['name']}.json"] = end_value({**ends[e["name"]], "final": True})
        cm["data"] = data
        out.append(cm)
    return out


def part_of(configmaps: list[dict[str, Any]]) -> dict[str, str]:
    """experiment -> the name of the ConfigMap that holds its end and stop mark."""
    return {
        e["name"]: cm["metadata"]["name"]
        for cm in configmaps
        for e in json.loads((cm.get("data") or {}).get("part.json") or "[]")
    }


def read_run_record(configmaps: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]] | None:
    """A run's ConfigMaps (any order) -> (run doc with its experiments, all data keys merged, experiment -> ConfigMap).

    None without part 0 (``run.json``).  Runs recorded before parts existed (one
    ConfigMap whose ``run.json`` lists the experiments) read the same.
    """
    head = next((cm for cm in configmaps if "run.json" in (cm.get("data") or {})), None)
    if head is None:
        return None
    doc = json.loads(head["data"]["run.json"])
    data: dict[str, str] = {}
    where: dict[str, str] = {}
    experiments: list[dict[str, Any]] = []
    for cm in configmaps:
        cm_data = cm.get("data") or {}
        data.update(cm_data)
        for e in json.loads(cm_data.get("part.json") or "[]"):
            experiments.append(e)
            where[e["name"]] = cm["metadata"]["name"]
    if isinstance(doc.get("experiments"), list):  # one ConfigMap, recorded before parts existed
        experiments = doc["experiments"]
        where = {e["name"]: head["metadata"]["name"] for e in experiments}
    doc = {**doc, "experiments": sorted(experiments, key=lambda e: int(e.get("index", 0)))}
    return doc, data, where


#: a finished Job is kept this long once its end is recorded in the run's ConfigMap (status, logs and
#: artifacts no longer need it: the record and the volume have them); then the cluster deletes it and its pods
FINISHED_JOB_TTL = 3600


def without_experiments(cm: dict[str, Any], gone: set[str]) -> dict[str, str | None]:
    """The data patch that takes experiments ``gone`` out of one ConfigMap of a run's record (``runner delete``)."""
    data = cm.get("data") or {}
    patch: dict[str, str | None] = {}
    for key in ("part.json", "run.json"):
        if key not in data:
            continue
        doc = json.loads(data[key])
        if key == "part.json":
            patch[key] = json.dumps([e for e in doc if e.get("name") not in gone], sort_keys=True)
        elif isinstance(doc.get("experiments"), list):  # one ConfigMap, recorded before parts existed
            patch[key] = json.dumps(
                {**doc, "experiments": [e for e in doc["experiments"] if e.get("name") not in gone]}, sort_keys=True
            )
    for e in sorted(gone):
        for key in (f"{e}.json", f"{e}.stop"):
            if key in data:
                patch[key] = None
    return patch


def newest_run_image(configmaps: list[dict[str, Any]]) -> str | None:
    """The image of the newest run that has one, from run ConfigMaps (part 0s): what the data pod can run.

    Only runs that reached the cluster count (``launched``): their image is in a registry the cluster pulls from.
    """
    best: tuple[float, str] | None = None
    for cm in configmaps:
        try:
            doc = json.loads((cm.get("data") or {}).get("run.json") or "{}")
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("image") and doc.get("launched"):
            key = (float(doc.get("created_at") or 0), str(doc["image"]))
            best = key if best is None or key > best else best
    return best[1] if best else None


def make_launcher_configmap(source: str | None = None) -> dict[str, Any]:
    cm = template("launcher-configmap.yaml")
    cm["data"] = {"launcher.py": source if source is not None else LAUNCHER.read_text()}
    return cm


def make_data_pvc(*, storage_class: str | None = None) -> dict[str, Any]:
    pvc = template("data-pvc.yaml")
    if storage_class:
        pvc["spec"]["storageClassName"] = storage_class
    return pvc


def make_data_pod(*, image: str) -> dict[str, Any]:
    pod = template("data-pod.yaml")
    pod["spec"]["containers"][0]["image"] = image
    return pod


def make_datastore_configmap(name: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": datastore_configmap_name(name),
            "labels": {**MANAGED, KIND_LABEL: "datastore", DATASTORE_LABEL: kube_name(name)},
        },
        "data": {"name": name, "versions.json": json.dumps(versions, sort_keys=True)},
    }


# -- state, from the objects ---------------------------------------------------------------

#: why a suspended Job (``--max-parallel``) has no pod yet
QUEUED_MESSAGE = "waiting for a free slot (--max-parallel)"
#: waiting reasons that keep a container from ever starting until someone acts
PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class Observed:
    """An experiment's state as the cluster shows it."""

    state: ExpState
    exit_code: int | None = None
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    final: bool = False  # an end state that no later observation can change
    gave_up: bool = False  # runner gave up waiting for it to start (GIVE_UP_AFTER): its Job is to be deleted


def _conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in conds if c.get("status") == "True" or c.get("type") == "PodScheduled"}


def _ts(value: Any) -> float | None:
    if not value:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return epoch(str(value))
    except ValueError:
        return None


def _pod_why(pod: dict[str, Any]) -> tuple[ExpState, int | None, str | None]:
    """(state, exit_code, message) of one pod."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if status.get("reason") == "Evicted":
        return ExpState.FAILED, None, f"evicted: {status.get('message', '')}".strip()
    for cs in status.get("containerStatuses") or []:
        st = cs.get("state") or {}
        waiting, term = st.get("waiting"), st.get("terminated")
        if waiting and waiting.get("reason") in PULL_REASONS + CONFIG_REASONS:
            return ExpState.QUEUED, None, f"{waiting['reason']}: {waiting.get('message', '')}".strip()
        if term:
            code = term.get("exitCode")
            if term.get("reason") == "OOMKilled":
                return ExpState.FAILED, code, "OOMKilled: the experiment ran out of its --memory limit"
            if code == 0:
                return ExpState.COMPLETED, 0, None
            return ExpState.FAILED, code, f"{term.get('reason') or 'Error'}: exit code {code}"
    if phase == "Pending":
        sched = _conditions(pod).get("PodScheduled")
        if sched and sched.get("status") == "False":
            return (
                ExpState.QUEUED,
                None,
                f"{sched.get('reason') or 'Unschedulable'}: {sched.get('message', '')}".strip(),
            )
        return ExpState.QUEUED, None, status.get(WARNING_KEY)
    if phase == "Running":
        return ExpState.RUNNING, None, None
    if phase == "Succeeded":
        return ExpState.COMPLETED, 0, None
    if phase == "Failed":
        return ExpState.FAILED, None, status.get("message") or status.get("reason") or "the pod failed"
    return ExpState.QUEUED, None, None


#: where :func:`attach_warnings` puts an object's latest warning event (in its status dict), and since when it holds
WARNING_KEY = "runner.warning"
WARNING_SINCE_KEY = "runner.warningSince"
#: warnings this kind of cluster gives every pod that say nothing about why it waits (no cluster DNS configured)
NOISE_REASONS = frozenset({"MissingClusterDNS", "DNSConfigForming"})


def _event_time(ev: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if ev.get(key):
            return str(ev[key])
    return str((ev.get("metadata") or {}).get("creationTimestamp") or "")


def attach_warnings(objs: list[dict[str, Any]], events: list[dict[str, Any]], *, kind: str = "Pod") -> None:
    """Why an object waits when its status does not say: its newest warning event, as ``Reason: message``,
    kept in its status for :func:`observe` (with the time that reason was first reported).

    For pods: a volume that cannot be mounted, a sandbox that cannot be made (e.g. a 1-byte
    --memory).  For Jobs (``kind="Job"``): pods it cannot create (``FailedCreate``: forbidden,
    a quota exceeded, an admission webhook's refusal, a missing service account).  ``objs``
    are list items (they carry no ``kind``); events of other kinds, of another object of the
    same name (another uid), and :data:`NOISE_REASONS` are left out.
    """
    uids = {(o.get("metadata") or {}).get("name", ""): (o.get("metadata") or {}).get("uid") for o in objs}
    newest: dict[str, tuple[str, str, str]] = {}  # name -> (last seen, text, first seen)
    for ev in events:
        obj = ev.get("involvedObject") or {}
        name = obj.get("name", "")
        if ev.get("type") != "Warning" or obj.get("kind") != kind or ev.get("reason") in NOISE_REASONS:
            continue
        if name not in uids or (obj.get("uid") and uids[name] and obj["uid"] != uids[name]):
            continue
        when = _event_time(ev, "lastTimestamp", "eventTime")
        text = f"{ev.get('reason') or 'Warning'}: {ev.get('message') or ''}".strip()
        if when >= newest.get(name, ("",))[0]:
            newest[name] = (when, text[:MAX_MESSAGE], _event_time(ev, "firstTimestamp", "eventTime"))
    for o in objs:
        found = newest.get((o.get("metadata") or {}).get("name", ""))
        if found:
            status = o.setdefault("status", {})
            status[WARNING_KEY], status[WARNING_SINCE_KEY] = found[1], found[2]


#: seconds an experiment may wait on a reason that only someone's action clears before runner gives up on it
GIVE_UP_AFTER = 600
#: waiting reasons that clear by themselves as capacity frees up (other pods end, a node joins): runner waits on
CAPACITY_REASONS = ("Unschedulable", "FailedScheduling")
#: how the message of an experiment runner gave up on starts
GAVE_UP = "gave up after"


def needs_action(message: str | None) -> bool:
    """Is this waiting reason one that will not clear by itself?  Capacity (a full cluster, a quota
    used up by other pods) does; an image that cannot be pulled, a missing service account or
    secret, a refusal by the API or an admission webhook do not."""
    if not message or message == QUEUED_MESSAGE:
        return False
    return message.split(":", 1)[0] not in CAPACITY_REASONS and "exceeded quota" not in message


def _waiting(message: str | None, since: float | None, now: float | None, started: float | None) -> Observed:
    """Queued for ``message`` since ``since``: after :data:`GIVE_UP_AFTER` seconds of a reason that
    needs someone to act, failed (runner gives up; the caller deletes the Job)."""
    if now is not None and since is not None and needs_action(message) and now - since >= GIVE_UP_AFTER:
        text = f"{GAVE_UP} {GIVE_UP_AFTER // 60} min waiting: {message}"
        return Observed(ExpState.FAILED, None, text[:MAX_MESSAGE], started, now, final=True, gave_up=True)
    return Observed(ExpState.QUEUED, None, message, started)


def _latest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def observe(
    *,
    end: dict[str, Any] | None,
    stop: bool,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    launched: bool,
    now: float | None = None,
) -> Observed:
    """Combine the recorded end (``<exp>.json``), the Job and its pods into one state.

    ``launched`` is whether the run record says the Job was created (False while it
    builds or pushes).  A recorded end is final once the Job is finished or gone, or
    has no retries; with ``--retries`` one pod's end is not the experiment's.  With
    ``now``, an experiment that has waited :data:`GIVE_UP_AFTER` seconds on a reason that
    needs someone to act (:func:`needs_action`) is failed (``gave_up``).
    """
    conds = _conditions(job)
    job_done = job_finished(job)
    if end and end.get("final"):
        return _from_end(end)
    no_retries = ((job or {}).get("spec") or {}).get("backoffLimit") == 0
    if end and (job is None or job_done or no_retries):
        return _from_end(end, final=True)
    ordered = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    started = _ts((ordered[0].get("status") or {}).get("startTime")) if ordered else None
    if job is not None and not job_done:
        job_status = job.get("status") or {}
        # a resumed Job's startTime is reset: a queued (--max-parallel) experiment waits from its turn
        job_since = _ts(job_status.get("startTime")) or _ts((job.get("metadata") or {}).get("creationTimestamp"))
        if not ordered:
            if job_suspended(job):
                return Observed(ExpState.QUEUED, message=QUEUED_MESSAGE)
            why = job_status.get(WARNING_KEY)  # the Job cannot make its pod (FailedCreate)
            return _waiting(why, _latest(job_since, _ts(job_status.get(WARNING_SINCE_KEY))), now, None)
        # a pod that runs outranks a newer one not yet running: a second pod of the same attempt (the Job
        # controller's, its cache stale) waits for the running one, so the experiment is running, not queued
        shown = next((p for p in reversed(ordered) if (p.get("status") or {}).get("phase") == "Running"), ordered[-1])
        state, code, message = _pod_why(shown)
        if state is ExpState.QUEUED:
            newest = ordered[-1]
            scheduled = _conditions(newest).get("PodScheduled") or {}
            since = _latest(
                job_since,
                _ts((newest.get("metadata") or {}).get("creationTimestamp")),
                _ts(scheduled.get("lastTransitionTime")) if scheduled.get("status") == "True" else None,
                _ts((newest.get("status") or {}).get(WARNING_SINCE_KEY)),
            )
            return _waiting(message, since, now, started)
        if state in (ExpState.COMPLETED, ExpState.FAILED):  # the pod ended; the Job has not caught up, or retries
            state = ExpState.RUNNING if state is ExpState.COMPLETED else state
            if state is ExpState.FAILED:
                state, message = ExpState.RUNNING, f"retrying after: {message}"
        return Observed(state, None, message, started)
    if job is not None:  # finished without a recorded end: the launcher never ran to the end
        failed = conds.get("Failed") or conds.get("FailureTarget")
        finished = _ts((job.get("status") or {}).get("completionTime")) or _ts((failed or {}).get("lastTransitionTime"))
        if not failed:
            return Observed(ExpState.COMPLETED, 0, None, started, finished, final=True)
        if failed.get("reason") == "DeadlineExceeded":
            return Observed(
                ExpState.FAILED,
                None,
                f"deadline exceeded: {failed.get('message', '')}".strip(),
                started,
                finished,
                True,
            )
        if ordered:
            state, code, message = _pod_why(ordered[-1])
            if state is ExpState.FAILED:
                return Observed(ExpState.FAILED, code, message, started, finished, True)
        return Observed(
            ExpState.FAILED, None, f"{failed.get('reason')}: {failed.get('message', '')}", started, finished, True
        )
    if stop:
        return Observed(ExpState.STOPPED, None, "stopped", final=True)
    if launched:
        return Observed(ExpState.FAILED, None, "the Job was deleted before the experiment recorded its end", final=True)
    return Observed(ExpState.BUILDING)


def _from_end(end: dict[str, Any], *, final: bool = True) -> Observed:
    return Observed(
        state=ExpState(str(end.get("state") or ExpState.FAILED.value)),
        exit_code=end.get("exit_code"),
        message=end.get("message"),
        started_at=end.get("started_at"),
        finished_at=end.get("finished_at"),
        final=final,
    )
