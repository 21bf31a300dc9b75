"""In-memory stand-ins for the outside world, behind runner's own adapter seams.

* :class:`FakeEngine`: the :class:`runner.adapters.docker_engine.DockerEngine` interface as
  the App (image ids, pull, builds, push) and the local target (containers) use it;
* :class:`FakeCluster`: the :class:`runner.adapters.cluster.KubeCluster` interface as the
  Kubernetes target uses it, with a "kubelet" that runs each Job's pod the moment it may
  run and a launcher that records its end, log and artifacts as the real one does;
* :class:`FakeRegistry`: the registry's manifest HEAD (``manifest_digest``).

What an experiment does is a :class:`Program` (``behave(command, env) -> Program``): its
output, exit code and the files it writes.  They keep the adapters' method signatures
(tests/unit/test_fakes.py checks), so a change of an adapter's interface fails here.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shlex
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from runner.adapters.cluster import ClusterInfo
from runner.adapters.docker_engine import BuildKit, ContainerEnd, ContainerSpec
from runner.errors import BuildError, ClusterError, ConflictError, ImageMissingError, NotFoundError, RegistryError
from runner.logs import LogLine, now_iso
from runner.progress import Progress
from runner.targets import Adapters
from runner.targets.kubernetes import objects


class MustNotBeCalled(AssertionError):
    """A unit test reached a real engine, cluster or registry (the guard in conftest.py raises it)."""


BASE_IMAGE = "runner-python:3.11"
BASE_ID = "sha256:" + "b" * 64


@dataclass
class Program:
    """What an experiment's script does: lines on stdout and stderr, files under /project, how it ends."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exit_code: int = 0
    files: dict[str, str] = field(default_factory=dict)
    oom_killed: bool = False
    #: runs until it is stopped (the end is then 143, SIGTERM)
    until_stopped: bool = False


def echo(command: list[str], env: dict[str, str]) -> Program:
    """The default script: prints its sys.argv (``python3 SCRIPT ARGS``), one line on stderr, writes out.txt, exits 0."""
    return Program(stdout=["ARGV " + json.dumps(command[1:])], stderr=["to stderr"], files={"out.txt": "done\n"})


Behave = Callable[[list[str], dict[str, str]], Program]


class FakeRegistry:
    """Image references -> digests; what :meth:`FakeEngine.push` pushes lands here."""

    def __init__(self) -> None:
        self.images: dict[str, str] = {}
        self.asked: list[str] = []
        #: a RegistryError for every question (a registry that is down, or refuses)
        self.error: str | None = None

    def manifest_digest(self, ref: str) -> str | None:
        self.asked.append(ref)
        if self.error:
            raise RegistryError(self.error)
        return self.images.get(ref)


@dataclass
class _Container:
    spec: ContainerSpec
    program: Program
    stopped: threading.Event = field(default_factory=threading.Event)


class FakeEngine:
    """A Docker engine in memory: images by reference, containers that run a :class:`Program` at once."""

    def __init__(
        self, *, behave: Behave = echo, registry: FakeRegistry | None = None, python: str | None = "3.11.2"
    ) -> None:
        self.behave = behave
        self.host = "unix:///fake/docker.sock"
        self.registry = registry
        self.python = python
        self.images: dict[str, str] = {BASE_IMAGE: BASE_ID}
        self.containers: dict[str, _Container] = {}
        self.removed: list[str] = []
        self.calls: list[str] = []  # what was asked, by method name, in order
        self.builds: list[str] = []  # tags built
        self.pushed: list[tuple[str, str]] = []
        #: the next build fails with this message (a BuildError)
        self.build_error: str | None = None
        #: a BuildKit builder to build with (None: only the classic builder), and the networks its builds had
        self.bk: BuildKit | None = None
        self.networks: list[str] = []
        #: the BuildKit builder refuses the host's network (buildx's docker-container driver does, unless allowed)
        self.refuse_host_network = False
        self._lock = threading.Lock()

    # -- images --------------------------------------------------------------------------

    def engine_id(self) -> str:
        return "fake-engine"

    def image_id(self, ref: str) -> str | None:
        self.calls.append("image_id")
        return self.images.get(ref)

    def ensure_tool_image(self, ref: str, name: str, source: Any) -> None:
        self.images.setdefault(ref, "sha256:" + hashlib.sha256(ref.encode()).hexdigest())

    def image_python(self, ref: str) -> str | None:
        self.calls.append("image_python")
        return self.python

    def pull(self, ref: str) -> str:
        self.calls.append("pull")
        raise ImageMissingError(f"base image {ref} is not present and cannot be pulled")

    def buildkit(self) -> BuildKit | str:
        return self.bk if self.bk is not None else "the fake engine has only its classic builder"

    def build(self, context: IO[bytes], *, tag: str, buildargs: dict[str, str]) -> Iterator[str]:
        self.calls.append("build")
        with tarfile.open(fileobj=context, mode="r:") as tar:
            names = tar.getnames()
        assert "Dockerfile" in names, names
        yield f"Step 1/2 : FROM {BASE_IMAGE}"
        if self.build_error:
            raise BuildError(f"image build failed at Step 2/2: {self.build_error}", detail=self.build_error)
        yield "Successfully built"
        self.builds.append(tag)
        self.images[tag] = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()

    def build_buildkit(
        self, bk: BuildKit, context_dir: Any, *, tag: str, secrets: Any, network: str = "default"
    ) -> Iterator[str]:
        assert self.bk is not None, "the fake engine has no BuildKit: buildkit() said so"
        self.calls.append("build")
        self.networks.append(network)
        assert (Path(context_dir) / "Dockerfile").is_file() and set(secrets) == {"runner-ca", "runner-index"}
        yield "#1 [internal] load build definition from Dockerfile"
        if network == "host" and self.refuse_host_network:
            raise BuildError(
                "image build failed at the first step: granting entitlement network.host is not allowed by "
                "build daemon configuration"
            )
        yield "#2 DONE 0.0s"
        self.builds.append(tag)
        self.images[tag] = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()

    def push(self, local: str, remote: str) -> Iterator[Progress]:
        self.calls.append("push")
        if local not in self.images:
            raise RegistryError(f"push of {remote} failed: no image {local}")
        self.pushed.append((local, remote))
        if self.registry is not None:
            self.registry.images[remote] = "sha256:" + hashlib.sha256(self.images[local].encode()).hexdigest()
        yield Progress("push", remote, done=1, total=1, in_bytes=True, final=True)

    # -- containers ----------------------------------------------------------------------

    def create_and_start(self, spec: ContainerSpec, *, attach: bool = False) -> str:
        self.calls.append("create_and_start")
        if spec.image not in self.images:
            raise NotFoundError(f"start container {spec.name}: No such image: {spec.image}")
        with self._lock:
            cid = f"c{len(self.containers):05d}" + "0" * 58
            self.containers[cid] = _Container(spec, self.behave(list(spec.command), dict(spec.env)))
        return cid

    def _get(self, cid: str) -> _Container:
        if cid not in self.containers or cid in self.removed:
            raise NotFoundError(f"no such container: {cid[:12]}")
        return self.containers[cid]

    def follow_logs(self, cid: str, *, since: int | None = None) -> Iterator[LogLine]:
        c = self._get(cid)
        for stream, lines in (("stdout", c.program.stdout), ("stderr", c.program.stderr)):
            for text in lines:
                yield LogLine(stream, now_iso(), text)
        if c.program.until_stopped:
            c.stopped.wait(timeout=60)  # a stop (or Ctrl-C) from the test; a test that never stops it fails slowly

    def wait(self, cid: str) -> ContainerEnd:
        c = self._get(cid)
        if c.program.until_stopped:
            c.stopped.wait(timeout=60)
        code = 143 if c.stopped.is_set() else (137 if c.program.oom_killed else c.program.exit_code)
        return ContainerEnd(exit_code=code, oom_killed=c.program.oom_killed, error="", upper_dir=None)

    def state(self, cid: str) -> dict[str, Any] | None:
        try:
            c = self._get(cid)
        except NotFoundError:
            return None
        running = c.program.until_stopped and not c.stopped.is_set()
        return {"Running": running, "Status": "running" if running else "exited"}

    def stop(self, cid: str, *, timeout: int = 10) -> None:
        self.calls.append("stop")
        if cid in self.containers:
            self.containers[cid].stopped.set()

    def answers(self) -> bool:
        return True

    def remove(self, cid: str) -> None:
        self.calls.append("remove")
        if cid in self.containers and cid not in self.removed:
            self.containers[cid].stopped.set()
            self.removed.append(cid)

    def export(self, cid: str, path: str) -> tarfile.TarFile:
        """``/project`` as a tar: the image's files with mtime 0, what the script wrote with its own time."""
        c = self._get(cid)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for rel, text, mtime in [("train.py", "unchanged", 0), *((r, t, 1) for r, t in c.program.files.items())]:
                data = text.encode()
                info = tarfile.TarInfo(f"project/{rel}")
                info.size, info.mtime, info.mode = len(data), mtime, 0o644
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        return tarfile.open(fileobj=buf, mode="r|")


# -- the cluster ----------------------------------------------------------------------------


def _matches(labels: dict[str, str], selector: str) -> bool:
    """A label selector of ``k=v``, ``k!=v`` and ``k in (a,b)`` terms, comma-separated."""
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        term = term.strip()
        if not term:
            continue
        found = re.fullmatch(r"(\S+)\s+in\s+\(([^)]*)\)", term)
        if found:
            if labels.get(found.group(1)) not in [v.strip() for v in found.group(2).split(",")]:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


class FakeCluster:
    """A namespace in memory: objects by kind and name, a data volume (path -> bytes), and a kubelet.

    A Job that may run (not suspended) runs at once: its pod is made, runs the Job's
    command through ``behave`` and ends, and the launcher's work is done as in the pod
    (the log and ``end.json`` on the volume, the artifacts, ``<exp>.json`` in the run's
    record).  A :class:`Program` with ``until_stopped`` keeps its pod running until its
    Job is deleted.
    """

    def __init__(
        self, *, namespace: str = "fakes", context: str = "fake-context", behave: Behave = echo, reachable: bool = True
    ) -> None:
        self.info = ClusterInfo(context=context, namespace=namespace, server="https://fake.invalid:6443")
        self.ns = namespace
        self.behave = behave
        self.reachable = reachable
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        #: resources the user may not create (SelfSubjectAccessReview says no)
        self.refused: set[str] = set()
        self.volume: dict[str, bytes] = {}
        self.logs: dict[str, list[str]] = {}  # pod -> its log lines
        self.requests: list[str] = []  # "verb Kind name", in order
        self.created: list[dict[str, Any]] = []  # every object as it was created
        self._version = 0
        #: Jobs a launcher released before they existed (the real one waits for its successor's Job)
        self._released: set[str] = set()

    # -- the adapter's interface -------------------------------------------------------------

    def check(self) -> None:
        self._ask("check", "Namespace", self.ns)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        self._ask("create", kind, name)
        if (kind, name) in self.objects:
            raise ConflictError(f"create {kind} {name}: {kind.lower()}s {name!r} already exists")
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("creationTimestamp", now_iso())
        self._stamp(obj)
        self.objects[(kind, name)] = obj
        self.created.append(copy.deepcopy(obj))
        if kind == "Job":
            if name in self._released:
                obj["spec"]["suspend"] = False
            self._schedule(obj)
        return copy.deepcopy(obj)

    def create_many(self, objects: list[dict[str, Any]], *, workers: int = 16) -> None:
        errors = []
        for obj in objects:
            try:
                self.create(obj)
            except ClusterError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def delete_many(self, kind: str, names: list[str], *, workers: int = 16) -> None:
        for name in names:
            self.delete(kind, name)

    def set_suspended(self, name: str, suspend: bool) -> None:
        self._ask("patch", "Job", name)
        job = self.objects.get(("Job", name))
        if job is not None:
            job["spec"]["suspend"] = suspend
            if not suspend:
                self._schedule(job)

    def set_ttl(self, names: list[str], seconds: int) -> None:
        for name in names:
            job = self.objects.get(("Job", name))
            if job is not None:
                job["spec"]["ttlSecondsAfterFinished"] = seconds

    def list_objects(self, kind: str, selector: str, *, fields: str | None = None) -> list[dict[str, Any]]:
        self._ask("list", kind, selector)
        out = []
        for (k, _), obj in sorted(self.objects.items()):
            if k != kind or not _matches(obj["metadata"].get("labels") or {}, selector):
                continue
            if fields and not all(
                str(_field(obj, f.split("=", 1)[0])) == f.split("=", 1)[1] for f in fields.split(",")
            ):
                continue
            out.append(copy.deepcopy(obj))
        return out

    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool:
        return resource not in self.refused

    def exists(self, kind: str, name: str) -> bool | None:
        return (kind, name) in self.objects

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._ask("get", kind, name)
        obj = self.objects.get((kind, name))
        return copy.deepcopy(obj) if obj is not None else None

    def delete(self, kind: str, name: str, *, grace: int | None = None) -> None:
        self._ask("delete", kind, name)
        obj = self.objects.pop((kind, name), None)
        if obj is None or kind != "Job":
            return
        # the Job's pods get SIGTERM: the launcher records "stopped" (a stop was asked) and saves what it has
        exp = obj["metadata"]["labels"].get(objects.EXP_LABEL)
        for (k, pod_name), pod in list(self.objects.items()):
            if k == "Pod" and (pod["metadata"].get("labels") or {}).get(objects.EXP_LABEL) == exp:
                if (pod.get("status") or {}).get("phase") == "Running":
                    self._launcher_end(obj, pod_name, 143, stopped=True)
                del self.objects[(k, pod_name)]

    def patch_configmap(self, name: str, data: dict[str, str | None]) -> dict[str, Any]:
        self._ask("patch", "ConfigMap", name)
        cm = self.objects.get(("ConfigMap", name))
        if cm is None:
            raise NotFoundError(f"update ConfigMap {name}: not found")
        have = cm.setdefault("data", {})
        for key, value in data.items():
            if value is None:
                have.pop(key, None)
            else:
                have[key] = value
        self._stamp(cm)
        return copy.deepcopy(cm)

    def replace_configmap(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        self._ask("replace", "ConfigMap", name)
        obj = copy.deepcopy(obj)
        self._stamp(obj)
        self.objects[("ConfigMap", name)] = obj
        return copy.deepcopy(obj)

    def pod_log(self, pod: str, *, follow: bool) -> Iterator[str]:
        self._ask("log", "Pod", pod)
        if pod not in self.logs:
            raise NotFoundError(f"logs of {pod}: not found")
        yield from list(self.logs[pod])
        if follow and (self.objects.get(("Pod", pod)) or {}).get("status", {}).get("phase") == "Running":
            # a real follow would wait here for more; a test that gets here stops the run first (Ctrl-C, stop)
            raise AssertionError(f"FakeCluster: following the running pod {pod} would wait for ever")

    def exec(
        self,
        pod: str,
        command: list[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 600,
        sent: Callable[[int], None] | None = None,
    ) -> bytes:
        if sent is not None and stdin:
            sent(len(stdin))
        return b"".join(self._exec(pod, command, stdin))

    def exec_stream(self, pod: str, command: list[str], *, idle: float = 120) -> Iterator[bytes]:
        yield from self._exec(pod, command, None)

    def wait_pod(self, name: str, *, timeout: float = 120) -> dict[str, Any]:
        pod = self.objects.get(("Pod", name))
        if pod is None:
            raise ClusterError(f"pod {name} disappeared")
        pod["status"] = {"phase": "Running", "startTime": now_iso()}
        return copy.deepcopy(pod)

    # -- what the fake does ------------------------------------------------------------------

    def _ask(self, verb: str, kind: str, name: str) -> None:
        if not self.reachable:
            from runner.errors import ClusterUnreachableError

            raise ClusterUnreachableError(f"cannot reach the Kubernetes API server at {self.info.server}")
        self.requests.append(f"{verb} {kind} {name}")

    def _stamp(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def kinds(self, kind: str) -> list[str]:
        """The names of the objects of ``kind``, sorted."""
        return sorted(n for k, n in self.objects if k == kind)

    def _schedule(self, job: dict[str, Any]) -> None:
        """The job controller and the kubelet: a Job that may run gets its pod, which runs to its end now."""
        if job["spec"].get("suspend"):
            return
        labels = job["metadata"]["labels"]
        pod_name = f"{job['metadata']['name']}-pod{sum(1 for k, _ in self.objects if k == 'Pod')}"
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        command = [a.replace("$$", "$") for a in container["args"][1:]]
        program = self.behave(command, env)
        stamp = now_iso()
        lines = [f"[stdout] [{stamp}] {t}" for t in program.stdout] + [
            f"[stderr] [{stamp}] {t}" for t in program.stderr
        ]
        self.logs[pod_name] = lines
        pod = {
            "kind": "Pod",
            "metadata": {"name": pod_name, "labels": dict(labels), "creationTimestamp": stamp},
            "spec": {"containers": [{"image": container["image"]}]},
            "status": {
                "phase": "Running",
                "startTime": stamp,
                "containerStatuses": [{"state": {"running": {"startedAt": stamp}}}],
            },
        }
        self.objects[("Pod", pod_name)] = pod
        folder = objects.experiment_dir(labels[objects.RUN_LABEL], labels[objects.EXP_LABEL])
        self.volume[f"{folder}/log"] = ("\n".join(lines) + "\n").encode() if lines else b""
        for rel, text in program.files.items():
            self.volume[f"{folder}/artifacts/{rel}"] = text.encode()
        if not program.until_stopped:
            self._launcher_end(job, pod_name, 137 if program.oom_killed else program.exit_code)

    def _launcher_end(self, job: dict[str, Any], pod_name: str, code: int, *, stopped: bool = False) -> None:
        """What the launcher does when the script ends: end.json, ``<exp>.json`` in its part; the pod ends."""
        labels = job["metadata"]["labels"]
        exp = labels[objects.EXP_LABEL]
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        record = self.objects.get(("ConfigMap", env["RUNNER_CONFIGMAP"]))
        stop_asked = stopped or bool(record and (record.get("data") or {}).get(f"{exp}.stop"))
        if stop_asked:
            state, message = "stopped", "stopped"
        elif code == 0:
            state, message = "completed", None
        else:
            state, message = "failed", f"exit code {code}"
        end = {"state": state, "exit_code": code, "message": message, "finished_at": time.time()}
        folder = objects.experiment_dir(labels[objects.RUN_LABEL], exp)
        self.volume[f"{folder}/end.json"] = json.dumps(end).encode()
        if record is not None:
            record.setdefault("data", {})[f"{exp}.json"] = json.dumps(end)
        pod = self.objects[("Pod", pod_name)]
        pod["status"] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "startTime": pod["status"]["startTime"],
            "containerStatuses": [{"state": {"terminated": {"exitCode": code, "reason": "Completed"}}}],
        }
        job["status"] = {
            "conditions": [{"type": "Complete" if code == 0 else "Failed", "status": "True"}],
            "completionTime": now_iso(),
        }
        if env.get("RUNNER_RELEASE"):
            self._released.add(env["RUNNER_RELEASE"])
            self.set_suspended(env["RUNNER_RELEASE"], False)

    # -- exec in the data pod: the few shell commands the target sends -----------------------------

    def _exec(self, pod: str, command: list[str], stdin: bytes | None) -> Iterator[bytes]:
        self._ask("exec", "Pod", f"{pod} {command[0]}")
        if ("Pod", pod) not in self.objects:
            raise NotFoundError(f"exec in {pod}: not found")
        mount = objects.DATA_MOUNT + "/"

        def rel(path: str) -> str:
            assert path.startswith(mount), path
            return path[len(mount) :].rstrip("/")

        if command[0] == "rm":
            for path in command[2:]:
                self._remove(rel(path))
            return
        assert command[:2] == ["sh", "-c"], command
        script = command[2]
        m = re.fullmatch(r"head -c (\d+) \| tar x -C (\S+)", script)
        if m:
            self._untar(rel(m.group(2) + "/"), stdin or b"")
            return
        m = re.fullmatch(r"(cat|tail -n (\d+)) (\S+) 2>/dev/null \|\| true", script)
        if m:
            lines = self.volume.get(rel(m.group(3)), b"").splitlines(keepends=True)
            yield b"".join(lines[-int(m.group(2)) :] if m.group(2) else lines)
            return
        m = re.fullmatch(r"wc -l < (\S+) 2>/dev/null \|\| echo 0", script)
        if m:
            yield str(self.volume.get(rel(m.group(1)), b"").count(b"\n")).encode() + b"\n"
            return
        m = re.fullmatch(r"if \[ -d (\S+) \]; then tar c -C \S+ \.; fi", script)
        if m:
            yield self._tar(rel(m.group(1)))
            return
        m = re.fullmatch(r"for f in (.*); do .*; done", script)
        if m:  # the ends the launchers left on the volume
            for path in shlex.split(m.group(1)):
                data = self.volume.get(rel(path))
                if data is not None:
                    yield path.encode() + b"\t" + data.replace(b"\n", b"") + b"\n"
            return
        m = re.fullmatch(r"test -d (\S+) && echo yes \|\| true", script)
        if m:
            yield b"yes\n" if any(p.startswith(rel(m.group(1)) + "/") for p in self.volume) else b""
            return
        m = re.fullmatch(
            r"rm -rf (\S+) && mkdir -p \S+ && head -c \d+ \| tar x -C \S+ && rm -rf (\S+) && mv \S+ \S+", script
        )
        if m:  # a datastore upload: straight to its folder
            self._remove(rel(m.group(2)))
            self._untar(rel(m.group(2) + "/"), stdin or b"")
            return
        raise AssertionError(f"FakeCluster: no fake for the command {script!r}")

    def _remove(self, folder: str) -> None:
        for path in [p for p in self.volume if p == folder or p.startswith(folder + "/")]:
            del self.volume[path]

    def _untar(self, folder: str, data: bytes) -> None:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    name = member.name.removeprefix("./")
                    self.volume[f"{folder}/{name}" if folder else name] = f.read()

    def _tar(self, folder: str) -> bytes:
        files = {p[len(folder) + 1 :]: d for p, d in self.volume.items() if p.startswith(folder + "/")}
        if not files:
            return b""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(f"./{name}")
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def adapters(engine: FakeEngine, cluster: FakeCluster | None = None, registry: FakeRegistry | None = None) -> Adapters:
    """The App's seam (``App(home, adapters=...)``) with these fakes in place of the real adapters."""

    def no_cluster(where: Any) -> Any:
        raise AssertionError("this test has no cluster")

    return Adapters(
        engine=lambda: engine,  # type: ignore[arg-type,return-value]
        cluster=(lambda where: cluster) if cluster is not None else no_cluster,  # type: ignore[arg-type,return-value]
        manifest_digest=(registry or FakeRegistry()).manifest_digest,
    )
