"""The local Docker engine: the only module that imports ``docker``.

A narrow adapter: the app asks for images, builds, containers, logs and files;
every docker/requests error is translated here into runner's errors.
"""

from __future__ import annotations

import os
import queue
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions

from runner.errors import BuildError, EngineError, ImageMissingError, NotFoundError
from runner.logs import LogLine, engine_time

#: Fixed API version: skips a round trip to ask the engine; 1.41 is Docker 20.10, which newer engines still speak.
API_VERSION = "1.41"
START_HINT = "start it (`sudo dockerd &`, or `scripts/docker-up.sh` in runner's repository) and try again"


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


@dataclass(frozen=True)
class ContainerEnd:
    exit_code: int
    oom_killed: bool
    error: str


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """The one choke point where engine errors become runner errors."""
    try:
        yield
    except docker.errors.ImageNotFound as e:
        raise NotFoundError(f"{what}: image not found: {e.explanation}") from e
    except docker.errors.NotFound as e:
        raise NotFoundError(f"{what}: {e.explanation}") from e
    except docker.errors.APIError as e:
        raise EngineError(f"{what}: the Docker engine refused: {e.explanation or e}") from e
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as e:
        raise EngineError(f"the Docker engine is not running or not reachable ({what})", hint=START_HINT) from e


class DockerEngine:
    def __init__(self, *, base_url: str | None = None) -> None:
        with _translated("connect"):
            if base_url:
                self._api = docker.APIClient(base_url=base_url, version=API_VERSION)
            else:
                self._api = docker.from_env(version=API_VERSION).api

    # -- images --------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        try:
            with _translated(f"inspect image {ref}"):
                return str(self._api.inspect_image(ref)["Id"])
        except NotFoundError:
            return None

    def pull(self, ref: str) -> str:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        try:
            with _translated(f"pull {ref}"):
                for _ in self._api.pull(repo, tag=tag, stream=True, decode=True):
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
        with _translated(f"build {tag}"):
            stream = self._api.build(
                fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                decode=True, buildargs=buildargs, pull=False,
            )  # fmt: skip
            for chunk in stream:
                if "error" in chunk:
                    message = str(chunk["error"]).strip()
                    raise BuildError(
                        f"image build failed at {step.strip() or 'the first step'}: {message.splitlines()[-1]}",
                        detail="\n".join(tail[-20:]),
                    )
                text = str(chunk.get("stream", ""))
                for line in text.splitlines():
                    if not line.strip():  # the classic builder pads steps with blank lines
                        continue
                    if line.startswith("Step "):
                        step = line
                    tail.append(line)
                    del tail[:-40]
                    yield line

    # -- containers ----------------------------------------------------------------------

    def create_and_start(self, spec: ContainerSpec) -> str:
        with _translated(f"start container {spec.name}"):
            host = self._api.create_host_config(
                nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
                mem_limit=spec.memory_bytes,
                device_requests=[docker.types.DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
                if spec.gpus
                else None,
            )
            created = self._api.create_container(
                spec.image, command=spec.command, name=spec.name, labels=spec.labels,
                environment=spec.env, working_dir=spec.workdir, host_config=host,
            )  # fmt: skip
            cid = str(created["Id"])
            self._api.start(cid)
            return cid

    def follow_logs(self, cid: str) -> Iterator[LogLine]:
        """Every line the container wrote, from its start, until it exits.

        The engine multiplexes stdout and stderr into one stream that docker-py cannot
        split when it also adds timestamps, so each stream is followed on its own thread.
        """
        q: queue.Queue[tuple[str, bytes | None | BaseException]] = queue.Queue()

        def pump(name: str) -> None:
            try:
                with _translated(f"logs of {cid[:12]}"):
                    for chunk in self._api.logs(
                        cid, stdout=name == "stdout", stderr=name == "stderr", stream=True, follow=True, timestamps=True
                    ):
                        q.put((name, chunk))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                q.put((name, e))
            q.put((name, None))

        threads = [threading.Thread(target=pump, args=(n,), daemon=True) for n in ("stdout", "stderr")]
        for t in threads:
            t.start()
        pending = {"stdout": b"", "stderr": b""}
        open_streams = 2
        while open_streams:
            name, item = q.get()
            if item is None:
                open_streams -= 1
                if pending[name]:
                    yield _engine_line(name, pending[name])
                continue
            if isinstance(item, BaseException):
                raise item
            data = pending[name] + item
            *lines, pending[name] = data.split(b"\n")
            for raw in lines:
                yield _engine_line(name, raw)

    def wait(self, cid: str) -> ContainerEnd:
        with _translated(f"wait for {cid[:12]}"):
            code = int(self._api.wait(cid)["StatusCode"])
            state = self._api.inspect_container(cid)["State"]
        return ContainerEnd(exit_code=code, oom_killed=bool(state.get("OOMKilled")), error=str(state.get("Error") or ""))

    def state(self, cid: str) -> dict[str, Any] | None:
        try:
            with _translated(f"inspect {cid[:12]}"):
                return dict(self._api.inspect_container(cid)["State"])
        except NotFoundError:
            return None

    def stop(self, cid: str, *, timeout: int = 10) -> None:
        try:
            with _translated(f"stop {cid[:12]}"):
                self._api.stop(cid, timeout=timeout)
        except NotFoundError:
            pass

    def remove(self, cid: str) -> None:
        try:
            with _translated(f"remove {cid[:12]}"):
                self._api.remove_container(cid, force=True)
        except NotFoundError:
            pass

    def upper_dir(self, cid: str) -> str | None:
        """The host folder holding the container's writable layer, when this process can read it.

        With a local overlay2 engine that folder holds exactly what the container
        changed; reading it avoids the engine's diff, which walks the whole image.
        """
        with _translated(f"inspect {cid[:12]}"):
            driver = self._api.inspect_container(cid).get("GraphDriver") or {}
        upper = (driver.get("Data") or {}).get("UpperDir") if driver.get("Name") == "overlay2" else None
        return str(upper) if upper and os.access(upper, os.R_OK | os.X_OK) else None

    def export(self, cid: str, path: str) -> tarfile.TarFile:
        """A tar stream of ``path`` in the container (its base name is the top folder of the archive)."""
        with _translated(f"copy {path} out of {cid[:12]}"):
            chunks, _ = self._api.get_archive(cid, path)
        return tarfile.open(fileobj=_ChunkReader(chunks), mode="r|")  # type: ignore[call-overload, no-any-return]


def _engine_line(stream: str, raw: bytes) -> LogLine:
    text = raw.decode("utf-8", errors="surrogateescape")
    stamp, _, rest = text.partition(" ")
    return LogLine(stream, engine_time(stamp), rest)


class _ChunkReader:
    """A file-like reader over an iterator of byte chunks, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out
