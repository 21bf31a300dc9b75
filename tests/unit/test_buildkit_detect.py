"""Finding a Docker CLI that builds with BuildKit (no engine needed for these cases)."""

import os
from pathlib import Path

from runner.adapters.docker_engine import _short_step, docker_clis, find_buildkit


def test_buildkit_can_be_turned_off() -> None:
    assert find_buildkit("unix:///nowhere.sock", {"RUNNER_BUILDKIT": "0"}) == "RUNNER_BUILDKIT=0"


def test_a_named_cli_that_does_not_run_is_the_reason(tmp_path: Path) -> None:
    why = find_buildkit("unix:///nowhere.sock", {"RUNNER_DOCKER_CLI": str(tmp_path / "docker")})
    assert isinstance(why, str) and "does not run" in why


def test_a_cli_that_is_not_docker_is_the_reason(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    why = find_buildkit("unix:///nowhere.sock", {"RUNNER_DOCKER_CLI": str(fake)})
    assert why == f"{fake} is not a Docker CLI that answers `version`"


def test_every_docker_on_path_once(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "docker").write_text("#!/bin/sh\n")
        (tmp_path / d / "docker").chmod(0o755)
    os.symlink(tmp_path / "a" / "docker", tmp_path / "c")
    path = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a")])
    found = docker_clis({"PATH": path})
    assert found[:2] == [str(tmp_path / "a" / "docker"), str(tmp_path / "b" / "docker")]


def test_step_titles_lose_their_mounts() -> None:
    title = (
        "[stage-0 4/6] RUN --mount=type=bind,source=.runner/uv,target=/run/runner/uv     --mount=type=secret,id=x  sh x"
    )
    assert _short_step(title) == "[stage-0 4/6] RUN sh x"
