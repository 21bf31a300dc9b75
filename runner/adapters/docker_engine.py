"""The Docker engine: the only module that talks to it, and the only one that imports ``docker``.

Two clients, each where it pays:

* the hot path of ``runner run`` (inspect, create, start, logs, wait, remove, archive)
  speaks the Engine API directly over its socket with ``http.client``: docker-py's
  import alone (requests, urllib3) costs about 50 ms, a sixth of a whole ``docker run``;
* registry-facing work (pull, push, and the classic build) uses docker-py, imported
  only then, for its handling of registry auth and credential helpers;
* image builds go through the Docker CLI's BuildKit build (``DOCKER_BUILDKIT=1 docker
  build``, or ``docker buildx build`` on a CLI of 23 or later): the Engine API's
  BuildKit needs a gRPC session for contexts, secrets and cache mounts, which the CLI
  brings.  Without such a CLI the classic builder (docker-py) builds.

Every engine error is translated here, at one choke point each, into runner's errors.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlparse

from runner.errors import BuildError, EngineError, ImageMissingError, NotFoundError, StreamCutError
from runner.logs import LogLine, engine_time, now_iso

if TYPE_CHECKING:
    from runner.progress import Progress

#: Fixed API version: skips a round trip to ask the engine; 1.41 is Docker 20.10, which newer engines still speak.
API_VERSION = "1.41"
START_HINT = "start it (`sudo dockerd &`, or `scripts/docker-up.sh` in runner's repository) and try again"
DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: list[str]
    name: str
    labels: dict[str, str]
    env: dict[str, str]
    workdir: str
    cpus: float | None = None
    memory_bytes: int | None = None
    gpus: int = 0
    #: files written into the container before it starts (absolute path -> text)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerEnd:
    exit_code: int
    oom_killed: bool
    error: str
    #: the host folder of the container's writable layer, when this process can read it
    upper_dir: str | None = None


@dataclass(frozen=True)
class BuildKit:
    """A Docker CLI that builds with BuildKit against this engine, and the subcommand that does it."""

    cli: str
    version: str  # the CLI's own version
    build: tuple[str, ...]  # ("build",) with DOCKER_BUILDKIT=1, or ("buildx", "build", "--load")


class _ConnectionLost(EngineError):
    """A request's connection broke (a kept-alive one the engine closed, or the engine went away)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, (int, float)):
            sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Api:
    """Just enough HTTP/1.1 for the Engine API: JSON in, JSON or a byte stream out."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._url = urlparse(host)
        if not (
            self._url.scheme == "unix"
            or (self._url.scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"))
        ):
            raise EngineError(
                f"DOCKER_HOST {host} is not supported", hint="use a unix socket or a plain tcp:// engine address"
            )
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        if self._url.scheme == "unix":
            return _UnixConnection(self._url.path)
        return http.client.HTTPConnection(self._url.hostname or "localhost", self._url.port or 2375)

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        conn: http.client.HTTPConnection,
        what: str,
    ) -> http.client.HTTPResponse:
        url = f"/v{API_VERSION}{path}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as e:
            raise EngineError(
                f"the Docker engine is not running or not reachable at {self.host}", hint=START_HINT
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise _ConnectionLost(f"{what}: lost the connection to the Docker engine: {e}") from e
        if resp.status >= 400:
            raw = resp.read()
            try:
                message = str(json.loads(raw).get("message", "")) or raw.decode(errors="replace")
            except ValueError:
                message = raw.decode(errors="replace")
            if resp.status == 404:
                raise NotFoundError(f"{what}: {message.strip()}")
            raise EngineError(f"{what}: the Docker engine refused: {message.strip()}")
        return resp

    def call(self, method: str, path: str, *, what: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One request on the kept-alive connection; the decoded JSON answer (or None).

        The connection is shared by the threads following a sweep's experiments: one request at a time.
        """
        with self._lock:
            return self._call(method, path, what=what, query=query, body=body)

    def _call(self, method: str, path: str, *, what: str, query: dict[str, Any] | None, body: Any) -> Any:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
            try:
                resp = self._send(method, path, query, body, self._conn, what)
                raw = resp.read()
                break
            except EngineError as e:
                self.close()
                # a kept-alive connection the engine closed meanwhile: one fresh try
                if attempt or not isinstance(e, _ConnectionLost):
                    raise
        return json.loads(raw) if raw else None

    def put(
        self, path: str, data: bytes, *, what: str, query: dict[str, Any] | None = None, method: str = "PUT"
    ) -> None:
        """A raw upload (a tar archive) on its own connection."""
        conn = self._connect()
        url = f"/v{API_VERSION}{path}" + (f"?{urlencode(query)}" if query else "")
        try:
            conn.request(method, url, body=data, headers={"Content-Type": "application/x-tar"})
            resp = conn.getresponse()
            body = resp.read()
        except OSError as e:
            raise EngineError(f"{what}: lost the connection to the Docker engine: {e}") from e
        finally:
            conn.close()
        # /images/create answers 200 and streams its progress, an error included
        if resp.status >= 300 or b'"error"' in body:
            raise EngineError(f"{what}: the Docker engine refused the upload: {body.decode(errors='replace').strip()}")

    def stream(
        self, method: str, path: str, *, what: str, query: dict[str, Any] | None = None
    ) -> http.client.HTTPResponse:
        """A request on its own connection, for answers read as they come (logs, archives)."""
        return self._send(method, path, query, None, self._connect(), what)

    def ping(self, *, timeout: float = 2.0) -> bool:
        """A ping on a new connection of its own."""
        conn = self._connect()
        conn.timeout = timeout
        try:
            self._send("GET", "/_ping", None, None, conn, "ping").read()
        except (EngineError, NotFoundError, OSError):
            return False
        finally:
            conn.close()
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@contextmanager
def _docker_py(what: str) -> Iterator[Any]:
    """docker-py, for registry-facing work; its errors become runner's here."""
    import docker
    import docker.errors
    import requests.exceptions

    try:
        yield docker
    except docker.errors.NotFound as e:
        raise NotFoundError(f"{what}: {e.explanation}") from e
    except docker.errors.APIError as e:
        raise EngineError(f"{what}: the Docker engine refused: {e.explanation or e}") from e
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as e:
        raise EngineError(f"the Docker engine is not running or not reachable ({what})", hint=START_HINT) from e


class DockerEngine:
    def __init__(self, *, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._api = _Api(self.host)
        self._py: Any = None
        #: container id -> its output stream, attached before start and not yet followed
        self._attached: dict[str, http.client.HTTPResponse] = {}
        self._buildkit: BuildKit | str | None = None
        #: tools images known to be on the engine; the locks make a second caller wait for the first's work
        self._tools: set[str] = set()
        self._tools_lock = threading.Lock()
        self._buildkit_lock = threading.Lock()

    def _client(self, docker: Any) -> Any:
        if self._py is None:
            self._py = docker.APIClient(base_url=self.host, version=API_VERSION)
        return self._py

    # -- images --------------------------------------------------------------------------

    def engine_id(self) -> str:
        """What names this engine for every client of it, whatever address each uses: its own ID (``docker info``)."""
        info = self._api.call("GET", "/info", what="ask the engine who it is")
        return str(info.get("ID") or self.host)

    def image_id(self, ref: str) -> str | None:
        try:
            info = self._api.call("GET", f"/images/{quote(ref, safe='')}/json", what=f"inspect image {ref}")
        except NotFoundError:
            return None
        return str(info["Id"])

    def ensure_tool_image(self, ref: str, name: str, source: Path) -> None:
        """Make ``ref``, an image holding only ``/NAME`` (``source``'s bytes, executable), unless the engine has it.

        Thread-safe: :func:`runner.warmup.warm_build_tools` may be making it while the build asks.
        """
        with self._tools_lock:
            if ref not in self._tools:
                self._make_tool_image(ref, name, source)
                self._tools.add(ref)

    def _make_tool_image(self, ref: str, name: str, source: Path) -> None:
        if self.image_id(ref) is not None:
            return
        data = source.read_bytes()
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o755
        # the archive by hand: one header, the bytes, padding and the end blocks (tarfile would copy 40 MB in small pieces)
        archive = b"".join((info.tobuf(tarfile.USTAR_FORMAT), data, b"\0" * (-len(data) % 512), b"\0" * 1024))
        repo, _, tag = ref.rpartition(":")
        self._api.put(
            "/images/create",
            archive,
            what=f"make the tools image {ref}",
            query={"fromSrc": "-", "repo": repo, "tag": tag},
            method="POST",
        )

    def image_python(self, ref: str) -> str | None:
        """The Python version of an image: its ``PYTHON_VERSION`` (the official images set it),
        else what its ``python3`` says in a throwaway container; None if neither tells."""
        info = self._api.call("GET", f"/images/{quote(ref, safe='')}/json", what=f"inspect image {ref}")
        for item in (info.get("Config") or {}).get("Env") or ():
            key, _, value = str(item).partition("=")
            if key == "PYTHON_VERSION" and value.strip():
                return value.strip()
        what = f"ask {ref} for its Python"
        body = {
            "Image": ref,
            "Cmd": ["python3", "-c", "import platform; print('PYTHON ' + platform.python_version())"],
            "Labels": {"runner/probe": "python"},
            "WorkingDir": "/",
            "HostConfig": {"Init": True},
        }
        name = f"runner-python-probe-{os.getpid()}-{os.urandom(4).hex()}"
        cid = str(self._api.call("POST", "/containers/create", query={"name": name}, body=body, what=what)["Id"])
        try:
            try:
                self._api.call("POST", f"/containers/{cid}/start", what=what)
            except EngineError:
                return None  # no python3 in it: the image cannot tell (the answer is cached as such)
            end = self.wait(cid)
            lines = [line.text for line in self.follow_logs(cid) if line.stream == "stdout"]
        finally:
            self.remove(cid)
        if end.exit_code != 0:
            return None
        found = [ln.split(" ", 1)[1].strip() for ln in lines if ln.startswith("PYTHON ")]
        return found[-1] if found else None

    def pull(self, ref: str) -> str:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        try:
            with _docker_py(f"pull {ref}") as docker:
                for _ in self._client(docker).pull(repo, tag=tag, stream=True, decode=True):
                    pass
        except (EngineError, NotFoundError) as e:
            raise ImageMissingError(
                f"base image {ref} is not present and cannot be pulled",
                hint="build one locally with images/python/build.sh and pass it with --base-image "
                "(or RUNNER_BASE_IMAGE, or base_image in runner.yaml)",
            ) from e
        found = self.image_id(ref)
        if found is None:
            raise ImageMissingError(f"base image {ref} was pulled but is not there")
        return found

    def build(self, context: IO[bytes], *, tag: str, buildargs: dict[str, str]) -> Iterator[str]:
        """Build from a tar context, yielding the build log line by line; BuildError on failure."""
        tail: list[str] = []
        step = ""
        with _docker_py(f"build {tag}") as docker:
            stream = self._client(docker).build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                buildargs=buildargs,
                pull=False,
            )
            for chunk in stream:
                if "error" in chunk:
                    message = str(chunk["error"]).strip()
                    raise BuildError(
                        f"image build failed at {step.strip() or 'the first step'}: {message.splitlines()[-1]}",
                        detail="\n".join(tail[-20:]),
                    )
                for line in str(chunk.get("stream", "")).splitlines():
                    if not line.strip():  # the classic builder pads steps with blank lines
                        continue
                    if line.startswith("Step "):
                        step = line
                    tail.append(line)
                    del tail[:-40]
                    yield line

    def buildkit(self) -> BuildKit | str:
        """How to build with BuildKit here, or why there is no way (once per engine object; thread-safe)."""
        with self._buildkit_lock:
            if self._buildkit is None:
                self._buildkit = find_buildkit(self.host, os.environ)
            return self._buildkit

    def build_buildkit(
        self, bk: BuildKit, context_dir: Path, *, tag: str, secrets: Mapping[str, Path], network: str = "default"
    ) -> Iterator[str]:
        """Build a context folder with BuildKit through the CLI, yielding its plain progress lines; BuildError on failure.

        Secrets are files the CLI hands to ``RUN --mount=type=secret`` steps: never in a layer.
        ``network`` is the ``RUN`` steps' network mode (``host`` spares each a network sandbox).
        """
        import subprocess

        argv = [bk.cli, *bk.build, "--progress=plain", f"--network={network}", "--tag", tag]
        argv += [f"--secret=id={name},src={path}" for name, path in sorted(secrets.items())]
        argv.append(str(context_dir))
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_cli_env(self.host, os.environ),
            )
        except OSError as e:
            raise EngineError(f"cannot run the Docker CLI {bk.cli}: {e.strerror or e}") from e
        assert proc.stdout is not None
        titles: dict[str, str] = {}
        tail: list[str] = []
        failed, error = "", ""
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if not line.strip() or _VERTEX_DIGEST.match(line):
                    continue
                step = _STEP.match(line)
                if step and step.group(2).startswith("["):
                    # mounts only name mounted files and caches (runs/<run>/Dockerfile has them): a readable log
                    line = f"{step.group(1)} {_short_step(step.group(2))}"
                    titles.setdefault(step.group(1), line.partition(" ")[2])
                elif step and step.group(2).startswith("ERROR: "):
                    failed, error = titles.get(step.group(1), ""), step.group(2)[len("ERROR: ") :]
                elif line.startswith(("error:", "ERROR:")) and not error:
                    error = line.partition(":")[2].strip()
                tail.append(line)
                del tail[:-40]
                yield line
            code = proc.wait()
        finally:
            if proc.poll() is None:  # the reader stopped early (an interrupt): stop the build too
                proc.terminate()
                proc.wait()
        if code != 0:
            raise BuildError(
                f"image build failed at {failed or 'the first step'}: {error or f'the Docker CLI exited with {code}'}",
                detail="\n".join(tail[-20:]),
            )

    def push(self, local: str, remote: str) -> Iterator[Progress]:
        """Tag ``local`` as ``remote`` and push it, yielding its progress (bytes of its layers); RegistryError on failure.

        docker-py reads the user's Docker credential config (``auths``, credential
        helpers) for the registry, so nothing secret passes through runner.
        """
        from runner.errors import RegistryError
        from runner.progress import PushTracker

        repo, _, tag = remote.rpartition(":")
        tracker = PushTracker(remote)
        with _docker_py(f"push {remote}") as docker:
            client = self._client(docker)
            client.tag(local, repo, tag=tag)
            for chunk in client.push(repo, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    message = str(chunk.get("error") or "").strip().splitlines()
                    raise RegistryError(
                        f"push of {remote} failed: {message[-1] if message else 'unknown error'}",
                        hint="is the registry running and are you logged in (`docker login`)?",
                    )
                progress = tracker.feed(chunk)
                if progress is not None:
                    yield progress
        yield tracker.progress(final=True)

    # -- containers ----------------------------------------------------------------------

    def create_and_start(self, spec: ContainerSpec, *, attach: bool = False) -> str:
        """Create and start the container.  ``attach``: as ``docker run`` does, attach to its output
        before it starts, so :meth:`follow_logs` streams it live instead of reading the engine's log
        file back (which costs the engine a JSON decode per line: several times slower)."""
        what = f"start container {spec.name}"
        # An init process as PID 1 forwards signals: a script as PID 1 ignores SIGTERM, so a stop would
        # wait out the engine's kill timeout; it also reaps the script's orphaned children.
        host: dict[str, Any] = {"Init": True}
        if spec.cpus:
            host["NanoCpus"] = int(spec.cpus * 1e9)
        if spec.memory_bytes:
            host["Memory"] = spec.memory_bytes
        if spec.gpus:
            host["DeviceRequests"] = [{"Driver": "", "Count": spec.gpus, "Capabilities": [["gpu"]]}]
        body = {
            "Image": spec.image,
            "Cmd": spec.command,
            "Labels": spec.labels,
            "WorkingDir": spec.workdir,
            "Env": [f"{k}={v}" for k, v in spec.env.items()],
            "HostConfig": host,
            "AttachStdout": False,
            "AttachStderr": False,
            "Tty": False,
        }
        created = self._api.call("POST", "/containers/create", query={"name": spec.name}, body=body, what=what)
        cid = str(created["Id"])
        try:
            if spec.files:
                self._put_files(cid, spec.files, what=what)
            if attach:
                try:
                    self._attached[cid] = self._api.stream(
                        "POST", f"/containers/{cid}/attach", what=what, query={"stream": 1, "stdout": 1, "stderr": 1}
                    )
                except EngineError:
                    pass  # follow_logs reads the engine's log instead
            self._api.call("POST", f"/containers/{cid}/start", what=what)
        except EngineError as e:
            attached = self._attached.pop(cid, None)
            if attached is not None:
                attached.close()
            # a container that never started is no use to anyone: not left behind in "Created"
            try:
                self.remove(cid)
            except EngineError:
                pass
            if spec.gpus and "device driver" in e.message:
                raise EngineError(
                    f"--gpus {spec.gpus}: this Docker engine has no GPU runtime",
                    hint="install the NVIDIA Container Toolkit and restart the engine, or leave out --gpus",
                ) from e
            raise
        return cid

    def _put_files(self, cid: str, files: dict[str, str], *, what: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, text in sorted(files.items()):
                data = text.encode("utf-8", "surrogateescape")
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        self._api.put(f"/containers/{cid}/archive", buf.getvalue(), query={"path": "/"}, what=what)

    def follow_logs(self, cid: str, *, since: int | None = None) -> Iterator[LogLine]:
        """Every line the container wrote, from its start (or from the second ``since``), until it exits.

        Attached at start (:meth:`create_and_start`): each yielded LogLine carries every
        complete line of one frame of output (joined by newlines; they share a stream and the
        time they were read), so the cost per line is that of C string operations.  Otherwise
        (following a container someone else started) from the engine's log, a line at a time
        with the engine's time stamp.
        """
        attached = self._attached.pop(cid, None)
        if attached is not None and since is None:
            yield from _frames_to_lines(cid, attached, stamped=False)
            # An attach stream also ends when only the connection broke (an engine restart or
            # proxy); the engine's log has the rest.  Asking fails while the engine is away.
            state = self.state(cid)
            if state is not None and state.get("Running"):
                raise StreamCutError(f"the output stream of {cid[:12]} ended while it runs")
            return
        if attached is not None:
            attached.close()
        query = {"follow": 1, "stdout": 1, "stderr": 1, "timestamps": 1, **({"since": since} if since else {})}
        resp = self._api.stream("GET", f"/containers/{cid}/logs", what=f"logs of {cid[:12]}", query=query)
        yield from _frames_to_lines(cid, resp, stamped=True)

    def wait(self, cid: str) -> ContainerEnd:
        """Wait for the container to end; one inspect gives its exit code, OOM flag and writable layer."""
        what = f"wait for {cid[:12]}"
        info = self._api.call("GET", f"/containers/{cid}/json", what=what)
        if info["State"].get("Running") or info["State"].get("Status") in ("created", "restarting"):
            self._api.call("POST", f"/containers/{cid}/wait", what=what)
            info = self._api.call("GET", f"/containers/{cid}/json", what=what)
        state = info["State"]
        return ContainerEnd(
            exit_code=int(state.get("ExitCode") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
            upper_dir=_readable_upper_dir(info),
        )

    def state(self, cid: str) -> dict[str, Any] | None:
        try:
            return dict(self._api.call("GET", f"/containers/{cid}/json", what=f"inspect {cid[:12]}")["State"])
        except NotFoundError:
            return None

    def stop(self, cid: str, *, timeout: int = 10) -> None:
        try:
            self._api.call("POST", f"/containers/{cid}/stop", query={"t": timeout}, what=f"stop {cid[:12]}")
        except NotFoundError:
            pass

    def answers(self) -> bool:
        """Whether the engine takes a new connection now (a stopping dockerd closes its socket first)."""
        return self._api.ping()

    def remove(self, cid: str) -> None:
        try:
            self._api.call("DELETE", f"/containers/{cid}", query={"force": 1}, what=f"remove {cid[:12]}")
        except NotFoundError:
            pass

    def export(self, cid: str, path: str) -> tarfile.TarFile:
        """A tar stream of ``path`` in the container (its base name is the top folder of the archive)."""
        resp = self._api.stream("GET", f"/containers/{cid}/archive", query={"path": path}, what=f"copy {path} out")
        return tarfile.open(fileobj=resp, mode="r|")


def _frames_to_lines(cid: str, resp: http.client.HTTPResponse, *, stamped: bool) -> Iterator[LogLine]:
    """Lines from a multiplexed stream: frames, each an 8-byte header (stream, length) and a payload.

    ``stamped`` (the log endpoint): each frame is one log entry, ``TIMESTAMP text``; the
    engine splits a long line into entries of 16 KiB, each with its own stamp (the line
    gets the first).  Otherwise (attach) a frame is whatever the container wrote, any
    number of lines.  Partial lines are kept as lists of pieces: joined once, when their
    newline comes, so a line of any length costs linear time.
    """
    pending: dict[int, list[bytes]] = {1: [], 2: []}
    stamps: dict[int, str] = {}
    names = {1: "stdout", 2: "stderr"}
    try:
        while True:
            header = _read_exactly(resp, 8)
            if len(header) < 8:
                break
            kind, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = _read_exactly(resp, size)
            kind = kind if kind in names else 1
            if stamped:
                stamp, _, payload = payload.partition(b" ")
                if not pending[kind]:
                    stamps[kind] = engine_time(stamp.decode("ascii", "replace"))
            cut = payload.rfind(b"\n")
            if cut < 0:
                pending[kind].append(payload)
                continue
            pieces = pending[kind]
            pieces.append(payload[:cut])
            pending[kind] = [payload[cut + 1 :]] if cut + 1 < len(payload) else []
            text = (b"".join(pieces) if len(pieces) > 1 else pieces[0]).decode("utf-8", "surrogateescape")
            yield LogLine(names[kind], stamps.get(kind, "") if stamped else now_iso(), text)
            if stamped and pending[kind]:  # an entry never holds more than one line; stay safe if it did
                stamps[kind] = now_iso()
    except (OSError, http.client.HTTPException) as e:
        raise EngineError(f"logs of {cid[:12]}: lost the connection to the Docker engine: {e}") from e
    finally:
        resp.close()
    for kind, rest in pending.items():
        if rest:
            time = stamps.get(kind, "") if stamped else now_iso()
            yield LogLine(names[kind], time, b"".join(rest).decode("utf-8", "surrogateescape"))


#: a BuildKit plain-progress line: "#5 [2/4] RUN ...", "#5 0.412 output", "#5 ERROR: ..."
_STEP = re.compile(r"^(#\d+) (.*)$")
#: the CLI 20.10 prints each step's digest on a line of its own: noise in a log
_VERTEX_DIGEST = re.compile(r"^#\d+ sha256:[0-9a-f]{64}$")
#: engines from 18.09 (API 1.39) have BuildKit
_BUILDKIT_API = (1, 39)
#: Docker CLIs from 23.0 build with BuildKit only through the buildx plugin
_BUILDX_FROM = 23


def _short_step(title: str) -> str:
    """A step's title without its mount options (they name only mounted files and caches)."""
    return " ".join(re.sub(r"--mount=\S+", "", title).split())


def _cli_env(host: str, environ: Mapping[str, str]) -> dict[str, str]:
    return {**environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "1", "DOCKER_CLI_HINTS": "false"}


def docker_clis(environ: Mapping[str, str]) -> list[str]:
    """Every ``docker`` on PATH, then Debian's own client, each once."""
    seen: dict[str, str] = {}
    for folder in [*environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        path = os.path.join(folder or ".", "docker")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            seen.setdefault(os.path.realpath(path), path)
    return list(seen.values())


def find_buildkit(host: str, environ: Mapping[str, str]) -> BuildKit | str:
    """The first Docker CLI that can build with BuildKit against ``host``, or why none can.

    ``RUNNER_DOCKER_CLI`` names the CLI to use (and only that one); ``RUNNER_BUILDKIT=0``
    turns BuildKit off.
    """
    if environ.get("RUNNER_BUILDKIT", "").lower() in ("0", "false", "no", "off"):
        return "RUNNER_BUILDKIT=0"
    named = environ.get("RUNNER_DOCKER_CLI")
    clis = [named] if named else docker_clis(environ)
    if not clis:
        return "no docker CLI on PATH"
    reasons = []
    for cli in clis:
        found = _probe_cli(cli, host, environ)
        if isinstance(found, BuildKit):
            return found
        reasons.append(found)
    return "; ".join(reasons)


def _probe_cli(cli: str, host: str, environ: Mapping[str, str]) -> BuildKit | str:
    import subprocess  # only when building: not on the cached path

    env = _cli_env(host, environ)
    try:
        p = subprocess.run([cli, "version", "--format", "{{json .}}"], capture_output=True, env=env, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{cli} does not run ({e})"
    try:
        info = json.loads(p.stdout.decode(errors="replace").strip().splitlines()[-1])
        version = str(info["Client"]["Version"])
        major = int(version.split(".")[0])
    except (ValueError, IndexError, KeyError, TypeError):
        return f"{cli} is not a Docker CLI that answers `version`"
    server = info.get("Server") or {}
    api = str(server.get("ApiVersion") or "")
    if not api:
        return f"{cli} (Docker CLI {version}) cannot reach the engine at {host}"
    if tuple(int(x) for x in api.split(".")[:2]) < _BUILDKIT_API:
        return f"the engine at {host} speaks API {api}, which has no BuildKit (Docker 18.09 or later has)"
    if major < _BUILDX_FROM:
        return BuildKit(cli=cli, version=version, build=("build",))
    try:
        buildx = subprocess.run([cli, "buildx", "version"], capture_output=True, env=env, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        buildx = False
    if buildx:
        return BuildKit(cli=cli, version=version, build=("buildx", "build", "--load"))
    return f"{cli} (Docker CLI {version}) builds with BuildKit only through the buildx plugin, which is not installed"


def _read_exactly(resp: http.client.HTTPResponse, n: int) -> bytes:
    buf = resp.read(n)  # a buffered read: all n bytes, unless the stream ends
    if len(buf) == n or not buf:
        return buf
    parts = [buf]
    got = len(buf)
    while got < n:
        chunk = resp.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _readable_upper_dir(info: dict[str, Any]) -> str | None:
    """With a local overlay2 engine, the host folder that holds exactly what the container changed.

    Reading it avoids the engine's diff, which walks the whole image; ``None`` when it
    is not overlay2 or not readable from here (a remote engine, a VM, no permission).
    """
    driver = info.get("GraphDriver") or {}
    upper = (driver.get("Data") or {}).get("UpperDir") if driver.get("Name") == "overlay2" else None
    return str(upper) if upper and os.access(upper, os.R_OK | os.X_OK) else None
