"""Where runner keeps its state: ``$RUNNER_HOME`` (default ``~/.runner``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError, clip


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        given = os.environ.get("RUNNER_HOME")
        root = Path(given) if given else Path.home() / ".runner"
        # the nearest part of the path that exists must be a folder, or nothing can be kept there
        existing = next((p for p in (root, *root.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            what = "RUNNER_HOME" if given else "~/.runner"
            raise UsageError(
                f"{what} {clip(str(root))}: {clip(str(existing))} is not a folder",
                hint="point RUNNER_HOME at a folder runner may write to",
            )
        return cls(root)

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def db(self) -> Path:
        return self.root / "runner.db"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def run_dir(self, run: str) -> Path:
        return self.runs / run

    def build_log(self, run: str) -> Path:
        return self.run_dir(run) / "build.log"

    def experiment_log(self, run: str, experiment: str) -> Path:
        return self.run_dir(run) / f"{experiment}.log"

    def artifacts(self, run: str, experiment: str) -> Path:
        return self.run_dir(run) / "artifacts" / experiment

    def remove(self, run: str, experiments: Sequence[str] | None = None) -> None:
        """A run's folder (None), or these experiments' logs and artifacts in it."""
        if experiments is None:
            shutil.rmtree(self.run_dir(run), ignore_errors=True)
            return
        for name in experiments:
            self.experiment_log(run, name).unlink(missing_ok=True)
            shutil.rmtree(self.artifacts(run, name), ignore_errors=True)
