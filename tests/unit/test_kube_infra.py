"""The namespace's infrastructure is made once, also when two runners make it at the same time."""

from __future__ import annotations

from typing import Any

import pytest

from runner.errors import ClusterError, ConflictError
from runner.targets.kubernetes import KubeTarget
from runner.targets.kubernetes import objects as kube


class RacingCluster:
    """A namespace with the data volume and no launcher ConfigMap yet; creating it fails with ``error``."""

    ns = "ns"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.created: list[str] = []

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name}} if kind == "PersistentVolumeClaim" else None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.created.append(obj["metadata"]["name"])
        raise self.error


def test_a_launcher_configmap_made_meanwhile_by_another_runner_is_fine() -> None:
    cluster = RacingCluster(ConflictError("create ConfigMap runner-launcher: conflict"))
    KubeTarget(cluster, helper_image="x").ensure_infra()  # type: ignore[arg-type]
    assert cluster.created == [kube.LAUNCHER_CONFIGMAP]


def test_any_other_refusal_to_make_it_is_an_error() -> None:
    cluster = RacingCluster(ClusterError("create ConfigMap runner-launcher: the Kubernetes API refused (403)"))
    with pytest.raises(ClusterError, match="refused"):
        KubeTarget(cluster, helper_image="x").ensure_infra()  # type: ignore[arg-type]
