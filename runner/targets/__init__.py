"""Where experiments run: the local Docker engine, or a Kubernetes namespace.

Each target implements :class:`runner.targets.base.Target`; :func:`make_target` is
the one place that knows which class serves which :class:`runner.model.TargetKind`.
Both are imported only when a command needs them (Docker and Kubernetes clients are
slow to import).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.model import TargetKind

if TYPE_CHECKING:
    from runner.adapters.cluster import KubeCluster
    from runner.adapters.docker_engine import DockerEngine
    from runner.home import Home
    from runner.options import KubeOptions
    from runner.store import Store
    from runner.targets.base import Target


def _engine() -> DockerEngine:
    from runner.adapters.docker_engine import DockerEngine

    return DockerEngine()


def _cluster(where: KubeOptions | None) -> KubeCluster:
    from runner.adapters.cluster import KubeCluster

    return KubeCluster(context=where.context if where else None, namespace=where.namespace if where else None)


def _manifest_digest(ref: str) -> str | None:
    from runner.adapters.registry import manifest_digest

    return manifest_digest(ref)


@dataclass(frozen=True)
class Adapters:
    """How the App and the targets reach the outside world, each made (and its client imported) on first use.

    The defaults are the real adapters; the unit tests pass in-memory fakes (tests/unit/fakes.py).
    """

    #: the Docker engine (builds, local containers, pushes)
    engine: Callable[[], DockerEngine] = _engine
    #: the Kubernetes API of a context and namespace (None: the kubeconfig's current ones)
    cluster: Callable[[KubeOptions | None], KubeCluster] = _cluster
    #: the registry's digest of an image reference (None: it does not have it)
    manifest_digest: Callable[[str], str | None] = _manifest_digest


def make_target(
    kind: TargetKind,
    *,
    home: Home,
    store: Store,
    engine: Callable[[], DockerEngine],
    where: KubeOptions | None,
    adapters: Adapters = Adapters(),
) -> Target:
    """The target of ``kind``; ``where``: a Kubernetes context and namespace (None: the kubeconfig's current ones);
    ``engine``: the engine the App holds (one per process)."""
    if kind is TargetKind.KUBERNETES:
        from runner.targets.kubernetes import KubeTarget

        return KubeTarget(adapters.cluster(where), store=store, engine=engine, registry=adapters.manifest_digest)
    from runner.targets.local import LocalTarget

    return LocalTarget(home, store, engine())


def in_sight(kind: TargetKind, where: KubeOptions | None, *, known: bool = False) -> bool:
    """Has this target a live view of runs worth asking for?  The local one never (history is its truth);
    a cluster when it was named, history ``known`` runs of it, or a kubeconfig exists (without one,
    the Kubernetes client is never imported)."""
    if kind is TargetKind.LOCAL:
        return False
    return (
        known or where is not None or bool(os.environ.get("KUBECONFIG")) or (Path.home() / ".kube" / "config").is_file()
    )
