"""Helpers for the integration tests: the real runner CLI against the real local Docker engine.

`make test` starts the engine (scripts/docker-up.sh) and builds the base image
(images/python/build.sh) first; RUNNER_BASE_IMAGE points runner at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")


@dataclass
class Result:
    code: int
    out: str
    err: str


class Runner:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "RUNNER_HOME": str(home), "RUNNER_BASE_IMAGE": BASE_IMAGE}

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> Result:
        p = subprocess.run(
            [sys.executable, "-m", "runner", *args], cwd=cwd, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "runner", *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def json(self, *args: str) -> object:
        r = self(*args, "--json")
        assert r.code == 0, r.err
        return json.loads(r.out)


def run_name(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("run "):
            return line.split()[1]
    raise AssertionError(f"no run name in:\n{stderr}")


