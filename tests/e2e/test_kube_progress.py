"""Progress people can read on the Kubernetes target: the push and a datastore upload say bytes and percent.

Run as a test runs them, stderr is a pipe: a few plain lines, not the build log.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

from e2e_cluster import REGISTRY, KubeRunner

Project = Callable[[dict[str, str]], Path]
BYTES = r"[\d.]+ [KMGT]?B"


def test_push_and_datastore_upload_show_bytes_and_percent(kr: KubeRunner, project: Project, tmp_path: Path) -> None:
    root = project(
        {"app.py": f"# {uuid.uuid4()}\nimport six\nprint('six', six.__version__)\n", "req.txt": "six==1.16.0\n"}
    )
    r = kr("run", "--cpus", "1", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert not any(ln.startswith("  build | ") for ln in lines)  # the log is in `runner logs RUN --build`
    steps = [ln for ln in lines if ln.startswith("build      ")]
    assert any("install the lock" in ln for ln in steps) and len(steps) <= 12
    pushes = [ln for ln in lines if ln.startswith("push       ")]
    assert 0 < len(pushes) <= 15, pushes
    assert re.fullmatch(
        rf"push       {REGISTRY}/runner/proj:\w+  {BYTES} of {BYTES} \(.*layers pushed.*\)  100%", pushes[-1]
    )
    assert lines.index(pushes[-1]) < next(i for i, ln in enumerate(lines) if ln.startswith("pushed "))

    data = tmp_path / "data"
    data.mkdir()
    (data / "blob.bin").write_bytes(os.urandom(3 << 20))  # three of the exec's 1 MiB pieces
    made = kr("datastore", "create", "--source", str(data), "--name", f"prog-{uuid.uuid4().hex[:6]}")
    assert made.code == 0, made.err
    uploads = [ln for ln in made.err.splitlines() if ln.startswith("upload     ")]
    assert len(uploads) >= 2, made.err  # the start, each tenth passed, the end
    assert re.fullmatch(rf"upload     datastore prog-\w+ \(1 file\)  {BYTES} of {BYTES}  100%", uploads[-1]), uploads
