"""Building a plan's image: BuildKit through the Docker CLI where there is one, else the classic builder.

BuildKit builds from a folder kept per project under the cache (``contexts/``), so the
CLI sends only the files that changed since the last build (see
:func:`runner.image.sync_context_dir`: the same names, modes and bytes as the tar the
classic builder gets).  The index settings and the CA bundle go in as secrets, from
files that exist only for the build and only this user can read.  Without BuildKit
the classic builder builds the two-stage Dockerfile (``classic=True``) from a tar, as
before, and the log says why.  Both install the same lock under the same tag: the tag
names what the image holds, not how it was built.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner.buildenv import BuildEnv, read_build_env, redact, secret_files
from runner.buildlock import BuildLock, lock_path
from runner.errors import BuildError, RunnerError, UsageError
from runner.events import BuildOutput, BuildWaiting, Built
from runner.image import ContextEntry, sync_context_dir, write_context
from runner.plan import Plan
from runner.progress import BuildTracker, Progress
from runner.render import render_dockerfile

if TYPE_CHECKING:
    from runner.adapters.docker_engine import DockerEngine

NO_BUILDKIT = (
    "runner: BuildKit is not available ({why}): building with the classic builder instead "
    "(pip, no installer cache, the whole environment in one layer). For fast builds use a Docker CLI "
    "that builds with BuildKit: Docker's own client up to 22.10, or 23 and later with the buildx plugin "
    "(RUNNER_DOCKER_CLI=PATH picks one)."
)
#: The install steps share the host's network: a network sandbox per ``RUN`` step costs ~0.3 s
#: here, and the only commands the Dockerfile runs are runner's own install steps.
#: ``RUNNER_BUILD_NETWORK=default`` gives each step a sandbox as ``docker build`` does.
NETWORKS = ("host", "default")
NO_HOST_NETWORK = (
    "runner: this builder does not allow the host's network for the install steps ({why}): "
    "building again with the default network (RUNNER_BUILD_NETWORK=default skips this try)"
)


def build_network(environ: Mapping[str, str]) -> str:
    """The ``RUN`` steps' network mode, from ``RUNNER_BUILD_NETWORK`` (``host`` unless set)."""
    value = environ.get("RUNNER_BUILD_NETWORK", "").strip().lower() or "host"
    if value not in NETWORKS:
        raise UsageError(f"RUNNER_BUILD_NETWORK={value} is not one of: {', '.join(NETWORKS)}")
    return value


def classic_entries(plan: Plan, ca_bundle: bytes) -> list[ContextEntry]:
    """The classic builder's context: its own Dockerfile, the lock and wheels, the CA bundle, the code."""
    dockerfile = render_dockerfile(dataclasses.replace(plan.spec, classic=True))
    kept = [e for e in plan.entries if e.arcname.startswith(("project/", ".runner/deps/", ".runner/runtime/"))]
    return [
        ContextEntry("Dockerfile", 0o644, data=dockerfile.encode()),
        *kept,
        ContextEntry(".runner/deps/ca.pem", 0o644, data=ca_bundle),
    ]


#: the build log's line (and the CLI's) when another run builds the same image
WAITING_NOTE = "runner: waiting for another build of this image (another run is building it on this engine)"


def build_once(
    engine: DockerEngine, plan: Plan, *, tag: str, log_path: Path, cache_dir: Path
) -> Iterator[BuildOutput | BuildWaiting | Progress | Built]:
    """Build ``plan``'s image as ``tag`` unless another run does, writing its log to ``log_path``.

    Yields each log line, the build's progress when it changes, then :class:`Built`.  One
    build of an image at a time on an engine (:mod:`runner.buildlock`): a run that finds
    another building the same image waits for it, then finds the image there.
    """
    env = read_build_env()
    lock = BuildLock(lock_path(engine.engine_id(), tag))
    try:
        with open(log_path, "w", encoding="utf-8") as log:

            def logged(line: str) -> BuildOutput:
                log.write(line + "\n")
                log.flush()
                return BuildOutput(line)

            try:
                free = lock.try_acquire()
            except OSError as e:
                yield logged(f"runner: building without the shared build lock ({e.strerror or e}: {lock.path})")
            else:
                if not free:
                    yield logged(WAITING_NOTE)
                    yield BuildWaiting(tag)
                    lock.acquire()
                # looked for before the lock: a build that ended since then made it
                if engine.image_id(tag) is not None:
                    yield logged(f"runner: another run built {tag} meanwhile: nothing to build")
                    yield Built(tag, by_another=True)
                    return
            tracker = BuildTracker()
            for line in build_image(engine, plan, tag=tag, env=env, cache_dir=cache_dir):
                line = redact(line, env)
                yield logged(line)
                progress = tracker.feed(line)
                if progress is not None:
                    yield progress
    except OSError as e:  # the build log could not be written (a full disk): a failure, not a stop
        raise RunnerError(f"cannot write the build log {log_path}: {e.strerror or e}") from e
    finally:
        lock.release()
    yield Built(tag)


def build_image(engine: DockerEngine, plan: Plan, *, tag: str, env: BuildEnv, cache_dir: Path) -> Iterator[str]:
    """Build ``plan``'s image as ``tag``, yielding the build log line by line; BuildError on failure."""
    bk = engine.buildkit()
    if isinstance(bk, str):
        yield NO_BUILDKIT.format(why=bk)
        ctx = io.BytesIO()
        write_context(ctx, classic_entries(plan, env.ca_bundle))
        ctx.seek(0)
        yield from engine.build(ctx, tag=tag, buildargs=env.buildargs)
        return
    for tool in plan.tools:
        engine.ensure_tool_image(tool.ref, tool.name, tool.source)
    contexts = cache_dir / "contexts"
    contexts.mkdir(parents=True, exist_ok=True)
    name = f"{plan.project}-{hashlib.sha256(str(plan.root).encode()).hexdigest()[:16]}"
    # one build of a project at a time: two would rewrite the same folder under each other
    with open(contexts / f"{name}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.seek(0)
        generation = int(held.read().strip() or 0)
        root = contexts / f"{name}-{generation}"
        if not sync_context_dir(root, plan.entries, plan.digests, blobs=contexts / "blobs"):
            # a changed file would look unchanged to BuildKit: a new folder, which it reads in full
            shutil.rmtree(root, ignore_errors=True)
            root.with_name(root.name + ".json").unlink(missing_ok=True)
            generation += 1
            held.seek(0)
            held.truncate()
            held.write(str(generation))
            held.flush()
            root = contexts / f"{name}-{generation}"
            if not sync_context_dir(root, plan.entries, plan.digests, blobs=contexts / "blobs"):
                raise AssertionError("a new context folder cannot collide")
        with tempfile.TemporaryDirectory(prefix="runner-secrets-") as tmp:
            paths = {}
            for secret, data in secret_files(env).items():
                path = Path(tmp, secret)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                paths[secret] = path
            network = build_network(os.environ)
            try:
                yield from engine.build_buildkit(bk, root, tag=tag, secrets=paths, network=network)
            except BuildError as e:
                # a builder of its own (buildx's docker-container driver) must be allowed network.host
                if network != "host" or "network.host" not in f"{e.message}\n{e.detail}":
                    raise
                yield NO_HOST_NETWORK.format(why=e.message)
                yield from engine.build_buildkit(bk, root, tag=tag, secrets=paths, network="default")
