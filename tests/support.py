"""Helpers shared by the integration (Docker) and end-to-end (Kubernetes) tests: the real runner CLI.

`make test` starts the engine (scripts/docker-up.sh), builds the base image
(images/python/build.sh) and brings the cluster up first; RUNNER_BASE_IMAGE points
runner at the base image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_IMAGE = os.environ.get("RUNNER_BASE_IMAGE", "runner-python:3.11")

#: prints its argv and working folder, writes a file under logs/ (an artifact)
ARGECHO = """\
import json, os, sys
print("ARGV " + json.dumps(sys.argv))
print("CWD " + os.getcwd())
print("to stderr", file=sys.stderr)
os.makedirs("logs", exist_ok=True)
with open("logs/out.json", "w") as f:
    json.dump(sys.argv, f)
"""
#: reads a file next to it by a relative path, prints what `python s.py` sees
SUBFOLDER_SCRIPT = """\
import json, os, sys
with open("config.yaml") as f:
    print("CONFIG " + f.read().strip())
print("ARGV " + json.dumps(sys.argv))
print("CWD " + os.getcwd())
os.makedirs("out", exist_ok=True)
with open("out/result.txt", "w") as f:
    f.write("done\\n")
"""
#: arguments a shell, an option parser or a manifest could mangle
TRICKY = ["--flag=value", "-x", "--", "", "a b", "'single'", '"double"', "ünïcödé ☃", "--local", "$HOME", "a\\b"]


@dataclass
class Result:
    code: int
    out: str
    err: str


class Runner:
    """Runs `python -m runner` with its own RUNNER_HOME (and any extra environment)."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {**os.environ, "RUNNER_HOME": str(home), "RUNNER_BASE_IMAGE": BASE_IMAGE, **(env or {})}

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 300,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> Result:
        p = subprocess.run(
            [sys.executable, "-m", "runner", *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def json(self, *args: str) -> Any:
        r = self(*args, "--json")
        assert r.code == 0, r.err
        return json.loads(r.out)


def run_name(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("run "):
            return line.split()[1]
    raise AssertionError(f"no run name in:\n{stderr}")


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root
