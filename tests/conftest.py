"""Markers by suite, and a clear skip where a suite's engine or cluster does not answer.

`make test` sets RUNNER_TEST_REQUIRE=1: there a missing engine or cluster fails the
tests instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

#: the fixtures of the suites that drive the CLI (runner, project): tests/cli_fixtures.py
pytest_plugins = ["cli_fixtures", "pytester"]  # pytester: tests/unit/test_fakes.py runs the guard

#: suite folder -> the markers its tests get
SUITES = {
    "integration": ("integration",),
    "ui": ("integration",),
    "e2e": ("integration", "e2e"),
    "faults": ("integration", "e2e"),
    "cluster": ("e2e",),
}
ADMIN_KUBECONFIG = os.environ.get("RUNNER_E2E_ADMIN_KUBECONFIG", "/var/lib/runner-cluster/kubeconfig")


@functools.cache
def _engine_problem() -> str | None:
    try:
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no Docker engine answers ({e}): `make setup` starts one"
    return None if done.returncode == 0 else "no Docker engine answers: `make setup` starts one"


@functools.cache
def _cluster_problem() -> str | None:
    status = Path(__file__).parent / "cluster" / "status.sh"
    if not Path(ADMIN_KUBECONFIG).is_file():
        return f"no local cluster ({ADMIN_KUBECONFIG} is missing): `make cluster-up` starts one"
    done = subprocess.run(["bash", str(status)], capture_output=True, timeout=60)
    return None if done.returncode == 0 else "the local cluster does not answer: `make cluster-up` starts it"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = os.environ.get("RUNNER_TEST_REQUIRE") == "1"
    root = Path(__file__).parent
    for item in items:
        try:
            suite = Path(item.path).relative_to(root).parts[0]
        except ValueError:
            continue
        marks = SUITES.get(suite, ())
        for mark in marks:
            item.add_marker(getattr(pytest.mark, mark))
        if required:
            continue
        problem = (_engine_problem() if "integration" in marks else None) or (
            _cluster_problem() if "e2e" in marks else None
        )
        if problem:
            item.add_marker(pytest.mark.skip(reason=problem))
