"""runner inside the container (the starter/worker pattern) and the base image's Python, on the real engine."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support import BASE_IMAGE, Runner, run_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _fakeenv() -> Any:
    spec = importlib.util.spec_from_file_location("runtime_fakeenv", FIXTURES / "deps" / "fakeenv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / "proj"))


def _lines(out: str, key: str) -> list[Any]:
    return [json.loads(ln.split(f"{key} ", 1)[1]) for ln in out.splitlines() if f"{key} " in ln]


def test_worker_gets_typecast_and_its_experiment_without_runner_in_the_lock(runner: Runner, tmp_path: Path) -> None:
    root = _copy("runtime/worker", tmp_path)
    # the person's interpreter has runner installed (with its ~80 dependencies): none of it is pinned
    r = runner("run", "--local", "--python", sys.executable, str(root / "worker.py"), "0.5", "[64, 32]", "adam", "3")
    assert r.code == 0, r.err
    [values] = _lines(r.out, "VALUES")
    assert values == [["0.5", "float"], ["[64, 32]", "list"], ["'adam'", "str"], ["3", "int"]]
    run = run_name(r.err)
    [exp] = _lines(r.out, "EXPERIMENT")
    assert exp == {"run": run, "experiment": f"{run}-exp0", "params": {}}
    assert (runner.home / "runs" / run / "requirements.lock").read_text() == ""
    dockerfile = (runner.home / "runs" / run / "Dockerfile").read_text()
    assert "COPY .runner/runtime/ /opt/runner/runtime/" in dockerfile and "pip install" not in dockerfile
    doc = json.loads(runner("inspect", "--json", "--python", sys.executable, str(root / "worker.py")).out)
    assert doc["lock"] == "" and "worker.py:5" in doc["runtime"]["imported_at"]
    assert {i["name"]: i["kind"] for i in doc["imports"]}["runner"] == "runner"
    text = runner("inspect", "--python", sys.executable, str(root / "worker.py")).out
    assert "runtime        runner's in-container runtime as `runner`" in text


def test_a_sweep_gives_each_experiment_its_params(runner: Runner, tmp_path: Path) -> None:
    root = _copy("runtime/worker", tmp_path)
    r = runner("run", "--local", "--sweep", str(root / "worker.py"), "--lr", "[0.1, 0.01]", "[[64], [64, 32]]")
    assert r.code == 0, r.err
    run = run_name(r.err)
    seen = {}
    for line in r.out.splitlines():
        name, _, text = line.partition(" | ")
        if text.startswith("EXPERIMENT "):
            seen[name] = json.loads(text[len("EXPERIMENT ") :])
        elif text.startswith("ARGV "):
            seen.setdefault(f"{name} argv", json.loads(text[len("ARGV ") :]))
    expected = [(0.1, [64]), (0.1, [64, 32]), (0.01, [64]), (0.01, [64, 32])]
    for i, (lr, layers) in enumerate(expected):
        exp = f"{run}-exp{i}"
        assert seen[exp] == {"run": run, "experiment": exp, "params": {"--lr": lr, "arg3": layers}}, seen
        assert seen[f"{exp} argv"] == ["--lr", repr(lr), repr(layers)]


def test_the_starter_submits_and_the_workers_get_the_runtime(runner: Runner, tmp_path: Path) -> None:
    """The whole pattern: the starter runs here (runner installed), each worker in its container."""
    root = _copy("runtime/worker", tmp_path)
    p = subprocess.run(
        [sys.executable, "starter.py"], cwd=root, env=runner.env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    run, state = p.stdout.split()
    assert state == "completed"
    logs = runner("logs", run).out
    params = sorted(tuple(sorted(d["params"].items())) for d in _lines(logs, "EXPERIMENT"))
    assert params == sorted(
        tuple(sorted({"--lr": lr, "arg3": ls}.items())) for lr in (0.1, 0.01) for ls in ([64], [64, 32])
    )


def test_a_project_with_its_own_runner_module_keeps_it(runner: Runner, tmp_path: Path) -> None:
    root = _copy("deps/runner_local/project", tmp_path)
    r = runner("run", "--local", str(root / "main.py"), "a", "b")
    assert r.code == 0, r.err
    assert r.out == "['A', 'B']\n"
    assert "runtime" not in (runner.home / "runs" / run_name(r.err) / "Dockerfile").read_text()


def _needs5_python(tmp_path: Path) -> Path:
    fakeenv = _fakeenv()
    return Path(
        fakeenv.build(
            tmp_path / "venv", (fakeenv.FakeDist("needs5", "1.2.0", ("needs5/",), requires_python=">=3.11.5"),)
        )
    )


def _v(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".")[:3])


def _image_python(image: str) -> str:
    p = subprocess.run(
        ["/usr/bin/docker", "run", "--rm", image, "python3", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return p.stdout.strip()


def test_an_image_python_the_lock_does_not_fit_stops_the_run_before_the_build(runner: Runner, tmp_path: Path) -> None:
    python = _needs5_python(tmp_path)
    local = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    image = _image_python(BASE_IMAGE)
    # this machine: pyenv's 3.11.7 here, Debian's 3.11.2 in the base image (a real mismatch, not one set up)
    assert _v(image) < (3, 11, 5) <= _v(local), (image, local)
    root = _copy("runtime/needs_newer_python", tmp_path)
    r = runner("run", "--local", "--python", str(python), str(root / "train.py"))
    assert r.code == 1, r.err
    [error] = [ln for ln in r.err.splitlines() if ln.startswith("runner: error:")]
    assert f"the base image {BASE_IMAGE} has Python {image}" in error
    assert "needs5==1.2.0 (Requires-Python >=3.11.5)" in error and f"local Python {local}" in error
    assert "--base-image" in error
    assert "build |" not in r.err and "run        " not in r.err  # nothing built, no run recorded
    assert runner.json("history") == []
    text = runner("inspect", "--python", str(python), str(root / "train.py"))
    assert text.code == 0, text.err
    assert f"python         image {image} ({BASE_IMAGE}), local {local}: does not fit the lock" in text.out
    assert any(ln.startswith("error: ") and "needs5==1.2.0" in ln for ln in text.out.splitlines())
    doc = json.loads(runner("inspect", "--json", "--python", str(python), str(root / "train.py")).out)
    assert doc["python"]["image_python"] == image and doc["python"]["requires_python"] == {"needs5": ">=3.11.5"}


def test_the_base_image_is_asked_for_its_python_once(runner: Runner, tmp_path: Path, docker_api: Any) -> None:
    # a base that does not say its version (runner's own base image sets PYTHON_VERSION, as the official ones do)
    base = "runner-test-base-noversion:1"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nENV PYTHON_VERSION=\n")
    docker_api.images.build(path=str(tmp_path / "base"), tag=base, rm=True)
    runner.env["RUNNER_BASE_IMAGE"] = base
    since = int(time.time()) + 1  # events from this second on: none of an earlier test's
    time.sleep(since - time.time())
    first = tmp_path / "a"
    first.mkdir()
    (first / "one.py").write_text(f"print('one {time.time()}')\n")  # a new image: the check runs
    r = runner("run", "--local", str(first / "one.py"))
    assert r.code == 0, r.err
    second = tmp_path / "b"
    second.mkdir()
    (second / "two.py").write_text(f"print('two {time.time()}')\n")  # another new image, same base
    r = runner("run", "--local", str(second / "two.py"))
    assert r.code == 0, r.err
    again = runner("run", "--local", str(second / "two.py"))  # cached: not checked at all
    assert again.code == 0 and "(cached)" in again.err
    events = docker_api.events(
        since=since,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "start", "label": "runner/probe=python"},
    )
    assert len(list(events)) == 1  # the base image has no PYTHON_VERSION: one throwaway python3, then the cache
    cached = json.loads((runner.home / "cache" / "base-python.json").read_text())
    assert list(cached["images"].values()) == [_image_python(base)]


def test_an_image_without_python_cannot_tell_and_leaves_no_container(docker_api: Any, tmp_path: Path) -> None:
    from runner.adapters.docker_engine import DockerEngine

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "hello.txt").write_text("no python here\n")
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    image, _ = docker_api.images.build(path=str(tmp_path / "ctx"), tag="runner-test-nopython:1", rm=True)
    try:
        engine = DockerEngine()
        assert engine.image_python(image.id) is None
        assert engine.image_python("runner-python:3.11") == _image_python(BASE_IMAGE)
        assert docker_api.containers.list(all=True, filters={"label": "runner/probe=python"}) == []
    finally:
        docker_api.images.remove(image.id, force=True)
