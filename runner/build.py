"""Building a plan's image: BuildKit through the Docker CLI where there is one, else the classic builder.

Both build from the same deterministic tar (:func:`runner.image.write_context`: sorted,
mtime 0, root-owned), which the CLI reads from standard input.  (A folder kept per
project would let the CLI send only changed files, but it compares size and mtime,
and every file here has mtime 0: a same-size edit would go unseen.)  With BuildKit
the index settings and the CA bundle go in as secrets, from files that exist only
for the build and are readable only by this user.  Without
BuildKit the classic builder builds the two-stage Dockerfile (``classic=True``) from
a tar, as before, and the log says why.  Both build the same packages under the same
tag: the tag names what is installed, not how fast.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from runner.buildenv import BuildEnv, secret_files
from runner.image import ContextEntry, write_context
from runner.plan import Plan
from runner.render import render_dockerfile

if TYPE_CHECKING:
    from runner.adapters.docker_engine import DockerEngine

NO_BUILDKIT = (
    "runner: BuildKit is not available ({why}): building with the classic builder instead "
    "(pip, no installer cache, the whole environment in one layer). For fast builds use a Docker CLI "
    "that builds with BuildKit: Docker's own client up to 22.10, or 23 and later with the buildx plugin "
    "(RUNNER_DOCKER_CLI=PATH picks one)."
)


def classic_entries(plan: Plan, ca_bundle: bytes) -> list[ContextEntry]:
    """The classic builder's context: its own Dockerfile, the lock and wheels, the CA bundle, the code."""
    dockerfile = render_dockerfile(dataclasses.replace(plan.spec, classic=True))
    kept = [e for e in plan.entries if e.arcname.startswith(("project/", ".runner/deps/"))]
    return [ContextEntry("Dockerfile", 0o644, data=dockerfile.encode()), *kept,
            ContextEntry(".runner/deps/ca.pem", 0o644, data=ca_bundle)]  # fmt: skip


def build_image(engine: DockerEngine, plan: Plan, *, tag: str, env: BuildEnv) -> Iterator[str]:
    """Build ``plan``'s image as ``tag``, yielding the build log line by line; BuildError on failure."""
    bk = engine.buildkit()
    ctx = io.BytesIO()
    if isinstance(bk, str):
        yield NO_BUILDKIT.format(why=bk)
        write_context(ctx, classic_entries(plan, env.ca_bundle))
        ctx.seek(0)
        yield from engine.build(ctx, tag=tag, buildargs=env.buildargs)
        return
    write_context(ctx, plan.entries)
    ctx.seek(0)
    with tempfile.TemporaryDirectory(prefix="runner-secrets-") as tmp:
        paths = {}
        for name, data in secret_files(env).items():
            path = Path(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            paths[name] = path
        yield from engine.build_buildkit(bk, ctx, tag=tag, secrets=paths)
