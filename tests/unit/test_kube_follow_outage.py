"""Following on Kubernetes waits out an API server that goes away (the fault itself: tests/faults)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from runner.errors import ClusterError, ClusterUnreachableError
from runner.logs import LogLine
from runner.targets import kubernetes as kubetarget
from runner.targets.kubernetes import KubeTarget


def drain(gen: Generator[LogLine, None, Any]) -> tuple[list[str], Any]:
    said = []
    while True:
        try:
            said.append(next(gen).text)
        except StopIteration as stop:
            return said, stop.value


def flaky(failures: int, exc: Exception) -> Any:
    calls = {"n": 0}

    def call() -> int:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc
        return 42

    return call


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(kubetarget.time, "sleep", slept.append)
    return slept


def test_an_outage_is_waited_out_with_backoff_and_said_once(no_sleep: list[float]) -> None:
    target = KubeTarget(None, helper_image="x")  # type: ignore[arg-type]
    said, value = drain(target._patient(flaky(4, ClusterUnreachableError("cannot reach the Kubernetes API server"))))
    assert value == 42
    assert len(said) == 2 and "lost the Kubernetes API server" in said[0] and "waiting up to 300 s" in said[0]
    assert "answers again" in said[1]
    assert no_sleep == [1.0, 2.0, 4.0, 8.0]


def test_no_outage_says_nothing() -> None:
    target = KubeTarget(None, helper_image="x")  # type: ignore[arg-type]
    assert drain(target._patient(lambda: 7)) == ([], 7)


def test_a_refusal_is_not_waited_for() -> None:
    target = KubeTarget(None, helper_image="x")  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match="refused"):
        drain(target._patient(flaky(1, ClusterError("the Kubernetes API refused (403)"))))


def test_an_api_server_that_never_returns_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr(kubetarget.time, "monotonic", lambda: float(next(clock)))
    target = KubeTarget(None, helper_image="x", api_wait=30)  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match="did not come back within 30 s"):
        drain(target._patient(flaky(10_000, ClusterUnreachableError("cannot reach"))))
