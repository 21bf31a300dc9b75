"""Where runner keeps its state: ``$RUNNER_HOME`` (default ``~/.runner``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get("RUNNER_HOME") or Path.home() / ".runner"))

    @property
    def db(self) -> Path:
        return self.root / "runner.db"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def run_dir(self, run: str) -> Path:
        return self.root / "runs" / run

    def build_log(self, run: str) -> Path:
        return self.run_dir(run) / "build.log"

    def experiment_log(self, run: str, experiment: str) -> Path:
        return self.run_dir(run) / f"{experiment}.log"

    def artifacts(self, run: str, experiment: str) -> Path:
        return self.run_dir(run) / "artifacts" / experiment
