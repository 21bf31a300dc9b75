"""Unit tests reach no engine, cluster or registry: every raw transport raises "must not be called".

The App and the targets are tested through the fakes in tests/unit/fakes.py, passed in at
runner's own seam (``App(home, adapters=...)``).  Anything that slips past them to a real
transport fails the test, even where runner's code would catch the error: each call is also
recorded and checked when the test ends.  A test of an adapter's own transport (against a
local stand-in server or program) says so with ``@pytest.mark.transport("registry")``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import MustNotBeCalled

#: the transports, by name: (module, attribute) pairs replaced for every unit test
TRANSPORTS = {
    "engine": [("runner.adapters.docker_engine._Api", "_connect")],  # the Engine API socket
    "docker-py": [("docker", "APIClient"), ("docker", "DockerClient"), ("docker", "from_env")],
    "kubernetes": [
        ("kubernetes.config", "list_kube_config_contexts"),
        ("kubernetes.config", "new_client_from_config"),
        ("kubernetes.config", "load_kube_config"),
        ("kubernetes.config", "load_incluster_config"),
        ("kubernetes.client.ApiClient", "call_api"),
        ("kubernetes.stream", "stream"),
    ],
    "registry": [("runner.adapters.registry", "_head")],  # the manifest HEAD (http.client)
}
#: programs that reach the engine or the cluster when run (a stand-in of the same name under tmp is fine)
PROGRAMS = ("docker", "kubectl")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "transport(name): this test exercises that real transport (see conftest)")


def _resolve(path: str) -> Any:
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


@pytest.fixture
def transport_calls() -> list[str]:
    """What reached a guarded transport during this test (the guard fails the test unless it is emptied)."""
    return []


@pytest.fixture(autouse=True)
def no_real_transports(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    transport_calls: list[str],
) -> Iterator[None]:
    allowed = {m.args[0] for m in request.node.iter_markers("transport")}
    for name, targets in TRANSPORTS.items():
        if name in allowed:
            continue
        for owner, attr in targets:
            try:
                obj = _resolve(owner)
            except (ImportError, AttributeError):
                continue  # that client is not installed: nothing to guard

            def refuse(*args: Any, _what: str = f"{name} ({owner}.{attr})", **kwargs: Any) -> Any:
                transport_calls.append(_what)
                raise MustNotBeCalled(f"{_what} must not be called in a unit test: use tests/unit/fakes.py")

            monkeypatch.setattr(obj, attr, refuse)
    if "programs" not in allowed:
        monkeypatch.setattr(subprocess, "Popen", _guarded_popen(transport_calls, tmp_path_factory.getbasetemp()))
    yield
    assert not transport_calls, f"a unit test reached a real transport: {transport_calls}"


def _guarded_popen(calls: list[str], basetemp: Path) -> type[subprocess.Popen[Any]]:
    """Popen that refuses the real Docker CLI and kubectl (a stand-in under the tests' temporary folder runs)."""
    real = subprocess.Popen
    tmp = basetemp.resolve()

    class GuardedPopen(real):  # type: ignore[valid-type,misc]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [os.fsdecode(a) for a in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
            program = Path(argv[0]) if argv else Path()
            stand_in = program.is_absolute() and tmp in program.resolve().parents
            what = None
            if program.name in PROGRAMS and not stand_in:
                what = f"the {program.name} CLI ({' '.join(argv[:3])})"
            elif "runner.targets.local.watch" in argv:
                what = "a detached watcher process (it would follow containers of the real engine)"
            if what:
                calls.append(what)
                raise MustNotBeCalled(f"{what} must not be called in a unit test: use tests/unit/fakes.py")
            super().__init__(args, *rest, **kwargs)

    return GuardedPopen


# -- the App over the fakes ----------------------------------------------------------------

TRAIN = "import json, sys\nprint('ARGV ' + json.dumps(sys.argv))\n"


@pytest.fixture(scope="session")
def plan_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dependency cache for every App test: the interpreter is probed once, not per test."""
    return tmp_path_factory.mktemp("plan-cache")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of one script that imports only the standard library."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    return root


@pytest.fixture
def home(tmp_path: Path, plan_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from runner.home import Home

    h = Home(tmp_path / "home")
    h.root.mkdir()
    (h.root / "cache").symlink_to(plan_cache)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("RUNNER_HELPER_IMAGE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: a cluster is asked only when a test has one
    return h
