"""What runner records about runs, shared by every layer: the states and the records.

Pure data (no I/O): the store keeps these in its database, each target reports
them from what it sees (containers, Jobs), the CLI, the API and the web view show
them.  The Kubernetes code inside the pod (the launcher) writes the same state
names as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TargetKind(str, Enum):
    """Where a run runs; recorded with each run (the ``target`` column of history)."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


class ExpState(str, Enum):
    QUEUED = "queued"
    BUILDING = "building"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        return self in (ExpState.QUEUED, ExpState.BUILDING, ExpState.RUNNING)


@dataclass(frozen=True)
class RunRecord:
    name: str
    project: str
    root: str
    script: str
    args: tuple[str, ...]
    target: str
    image: str | None
    cached: bool | None
    created_at: float
    options: dict[str, Any] = field(default_factory=dict)
    build_log: str | None = None


@dataclass(frozen=True)
class ExperimentRecord:
    name: str
    run: str
    index: int
    command: tuple[str, ...]
    params: dict[str, Any]
    state: ExpState
    handle: str | None
    exit_code: int | None
    message: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner_pid: int | None
    stop_requested: bool


@dataclass(frozen=True)
class RunSummary:
    run: RunRecord
    experiments: tuple[ExperimentRecord, ...]

    def count(self, state: ExpState) -> int:
        return sum(1 for e in self.experiments if e.state is state)

    @property
    def active(self) -> bool:
        return any(e.state.active for e in self.experiments)

    @property
    def finished_at(self) -> float | None:
        """When the last experiment ended (None while any is active, or an end is not known)."""
        ends = [e.finished_at for e in self.experiments]
        return None if self.active or not ends or None in ends else max(e for e in ends if e)

    @property
    def state(self) -> ExpState:
        """The run's state, from its experiments: the most pressing one wins."""
        states = {e.state for e in self.experiments}
        for s in (ExpState.BUILDING, ExpState.RUNNING, ExpState.QUEUED, ExpState.FAILED, ExpState.STOPPED):
            if s in states:
                return s
        return ExpState.COMPLETED
