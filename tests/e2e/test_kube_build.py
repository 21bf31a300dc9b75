"""Builds for the Kubernetes target: a one-package bump pushes a small layer, not the environment."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from e2e_cluster import REGISTRY, KubeRunner
from support import run_name

Project = Callable[[dict[str, str]], Path]


def manifest_layers(image: str) -> dict[str, int]:
    """The compressed layers (digest -> bytes) of an image in the test registry (by tag or by digest)."""
    image = image.removeprefix(f"{REGISTRY}/")
    repo, _, tag = image.partition("@") if "@" in image else image.rpartition(":")
    req = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return {layer["digest"]: int(layer["size"]) for layer in json.load(resp)["layers"]}


def test_a_one_package_bump_pushes_only_a_small_layer(kr: KubeRunner, project: Project) -> None:
    marker = uuid.uuid4().hex  # a fresh code layer, so the first run builds and pushes
    app = f"# {marker}\nimport numpy, six, tqdm\nprint('versions', numpy.__version__, six.__version__, tqdm.__version__)\n"
    root = project({"app.py": app, "req.txt": "numpy==1.26.4\nsix==1.16.0\ntqdm==4.66.4\n"})
    first = kr("run", "--cpus", "1", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert first.code == 0, first.err
    assert "versions 1.26.4 1.16.0 4.66.4" in first.out
    before = manifest_layers(kr.json("status", run_name(first.err))["image"])

    (root / "req.txt").write_text("numpy==1.26.4\nsix==1.16.0\ntqdm==4.66.5\n")
    second = kr("run", "--cpus", "1", "--requirements", str(root / "req.txt"), str(root / "app.py"))
    assert second.code == 0, second.err
    assert "versions 1.26.4 1.16.0 4.66.5" in second.out
    after = manifest_layers(kr.json("status", run_name(second.err))["image"])
    pushed = {d: n for d, n in after.items() if d not in before}
    # numpy's layer (tens of MB) is already in the registry: what travels is tqdm's layer and the code
    assert sum(after.values()) > 20_000_000
    assert 0 < sum(pushed.values()) < 2_000_000, pushed
