"""The guard (tests/unit/conftest.py) fires, and the fakes keep the adapters' interfaces."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path

import pytest
from fakes import FakeCluster, FakeEngine, FakeRegistry, MustNotBeCalled

from runner.adapters.cluster import KubeCluster
from runner.adapters.docker_engine import ContainerSpec, DockerEngine
from runner.errors import RunnerError
from runner.targets import Adapters


def _refused(transport_calls: list[str], call: object) -> str:
    with pytest.raises(MustNotBeCalled, match="must not be called in a unit test"):
        call()  # type: ignore[operator]
    said = transport_calls.pop()
    assert not transport_calls
    return said


def test_the_engine_api_is_guarded(transport_calls: list[str]) -> None:
    engine = Adapters().engine()  # the real adapter: its socket is the transport
    assert "engine" in _refused(transport_calls, lambda: engine.image_id("runner-python:3.11"))


def test_docker_py_is_guarded(transport_calls: list[str]) -> None:
    import docker

    assert "docker-py" in _refused(transport_calls, lambda: docker.from_env())
    assert "docker-py" in _refused(transport_calls, lambda: docker.APIClient(base_url="unix:///var/run/docker.sock"))


def test_the_kubernetes_client_is_guarded(transport_calls: list[str]) -> None:
    assert "kubernetes" in _refused(transport_calls, lambda: Adapters().cluster(None))
    from kubernetes import client

    assert "kubernetes" in _refused(transport_calls, lambda: client.ApiClient().call_api("/api", "GET"))


def test_the_registry_is_guarded(transport_calls: list[str]) -> None:
    said = _refused(transport_calls, lambda: Adapters().manifest_digest("127.0.0.1:5000/runner/p:x"))
    assert "registry" in said


def test_the_docker_cli_and_kubectl_are_guarded(transport_calls: list[str]) -> None:
    assert "docker CLI" in _refused(transport_calls, lambda: subprocess.run(["docker", "version"]))
    assert "kubectl CLI" in _refused(transport_calls, lambda: subprocess.run(["/usr/bin/kubectl", "get", "pods"]))


def test_a_stand_in_program_under_tmp_and_other_programs_still_run(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho stand-in\n")
    fake.chmod(0o755)
    assert subprocess.run([str(fake)], capture_output=True, text=True).stdout == "stand-in\n"
    assert subprocess.run(["true"]).returncode == 0


def test_a_detached_watcher_is_guarded(transport_calls: list[str]) -> None:
    import sys

    said = _refused(
        transport_calls, lambda: subprocess.Popen([sys.executable, "-m", "runner.targets.local.watch", "--run"])
    )
    assert "watcher" in said


def test_the_guard_fails_a_test_that_swallowed_the_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(
        """
        from runner.adapters.docker_engine import DockerEngine

        def test_swallowed():
            try:
                DockerEngine().image_id("x")
            except Exception:
                pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a unit test reached a real transport*"])


#: the methods of each adapter the App and the targets use, which the fakes must offer alike
USED = {
    DockerEngine: [
        "engine_id",
        "ensure_tool_image",
        "image_id",
        "image_python",
        "pull",
        "buildkit",
        "build",
        "build_buildkit",
        "push",
        "create_and_start",
        "follow_logs",
        "wait",
        "state",
        "stop",
        "answers",
        "remove",
        "export",
    ],
    KubeCluster: [
        "can_i",
        "exists",
        "check",
        "create",
        "create_many",
        "delete_many",
        "set_suspended",
        "set_ttl",
        "list_objects",
        "get",
        "delete",
        "patch_configmap",
        "replace_configmap",
        "pod_log",
        "exec",
        "exec_stream",
        "wait_pod",
    ],
}


@pytest.mark.parametrize(("real", "fake"), [(DockerEngine, FakeEngine), (KubeCluster, FakeCluster)])
def test_the_fakes_take_what_the_adapters_take(real: type, fake: type) -> None:
    for name in USED[real]:
        want = [(p.name, p.kind) for p in inspect.signature(getattr(real, name)).parameters.values()]
        have = [(p.name, p.kind) for p in inspect.signature(getattr(fake, name)).parameters.values()]
        assert have == want, name
    # and nothing the targets call is missing from the list above
    source = "".join(
        inspect.getsource(m)
        for m in (
            __import__("runner.app", fromlist=["x"]),
            __import__("runner.build", fromlist=["x"]),
            __import__("runner.targets.local", fromlist=["x"]),
            __import__("runner.targets.kubernetes", fromlist=["x"]),
        )
    )
    import re

    var = {DockerEngine: r"(?:self\.engine|engine|self\._engine\(\))", KubeCluster: r"self\.cluster"}[real]
    called = set(re.findall(var + r"\.([a-z_]+)\(", source))
    assert called <= set(USED[real]), called - set(USED[real])


def test_the_fake_registry_answers_like_the_adapter() -> None:
    registry = FakeRegistry()
    engine = FakeEngine(registry=registry)
    assert registry.manifest_digest("r/runner/p:t") is None
    spec = ContainerSpec(image="nope", command=["python3"], name="n", labels={}, env={}, workdir="/project")
    with pytest.raises(RunnerError):
        engine.create_and_start(spec)
    registry.error = "registry r refused access to runner/p (403)"
    with pytest.raises(RunnerError, match="403"):
        registry.manifest_digest("r/runner/p:t")
