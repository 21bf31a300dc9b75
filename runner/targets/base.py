"""What every run target does, and the data that passes between the App and a target.

A target takes a recorded run whose image is built (:class:`Submission`), puts the
image where it runs, starts the experiments, streams their output, and answers for
them afterwards: their state, logs, artifacts, stop and delete.  The App holds the
one run sequence (:meth:`runner.app.App.run`) and picks a target once; nothing
outside a target asks which one it is.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runner.logs import LogLine
from runner.model import ExperimentRecord, RunRecord, RunSummary, TargetKind

if TYPE_CHECKING:
    from runner.options import RunOptions
    from runner.plan import Plan
    from runner.progress import Progress

#: the stream name of the lines that say why an experiment is not running yet (the CLI shows them as "waiting")
WAITING = "waiting"
#: the stream name of runner's own notices among an experiment's output lines
NOTICE = "runner"


@dataclass(frozen=True)
class Submission:
    """A run recorded in history, with its plan and image (built or cached)."""

    run: RunRecord
    plan: Plan
    image: str
    cached: bool
    experiments: tuple[ExperimentRecord, ...]
    #: the base image's Python against the lock: warnings (errors stop the run before it is recorded)
    python_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """What :meth:`Target.prepare` found and did: the options to record with the run, and what the
    user should hear of what it did to get ready (one line each: a namespace set up)."""

    options: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Published:
    """The image where the target runs it: ``ref`` (a registry digest on Kubernetes), and whether it was pushed now."""

    ref: str
    pushed: bool = False
    #: what to tell the user (None: nothing; the local target runs the image it built)
    note: str | None = None


@dataclass(frozen=True)
class Ended:
    """How a deletion went: did the whole run go, and what was left behind."""

    run_deleted: bool
    notes: list[str] = field(default_factory=list)


class Target(Protocol):
    kind: TargetKind
    #: things worth telling the user that are not errors (a container not removed, a cluster not read)
    notes: list[str]

    def describe(self) -> str:
        """Where runs go, for people: ``local docker``, ``kubernetes CONTEXT namespace NS``."""
        ...

    def prepare(self, opts: RunOptions, *, name: str | None) -> Prepared:
        """Everything checked (and set up) before anything is built (cluster, namespace, secrets, datastores)."""
        ...

    def publish(self, sub: Submission) -> Generator[Progress, None, Published]:
        """The built image where this target runs it, yielding the progress of what that takes (a push)."""
        ...

    def start(self, sub: Submission, image: str, opts: RunOptions) -> None:
        """Start the experiments (detached runs: for good; otherwise :meth:`stream` may start them as it goes)."""
        ...

    def fail(self, sub: Submission, message: str) -> None:
        """A run that failed before it started: say so where the target keeps its records."""
        ...

    def stream(self, sub: Submission, opts: RunOptions) -> Iterator[tuple[str, LogLine]]:
        """As the run's owner: ``(experiment, line)`` until every experiment has ended.

        Ctrl-C (KeyboardInterrupt) stops the run, waits for its end states, and is re-raised.
        """
        ...

    def experiment(self, run: RunRecord, name: str) -> ExperimentRecord:
        """An experiment as it is now (for one this process followed: how it ended, even if history could not say)."""
        ...

    def observe(self, *, run: str | None = None) -> list[RunSummary] | None:
        """Runs as the target sees them now, kept in history too (None: history's copy is the truth)."""
        ...

    def reconcile(self, experiments: list[ExperimentRecord]) -> None:
        """Take over active experiments whose owner process died."""
        ...

    def logs(
        self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, tail: int | None, follow: bool
    ) -> Iterator[str]:
        """Formatted output lines of these experiments (prefixed with the name when there are several)."""
        ...

    def stop(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...]) -> list[str]:
        """Stop those still active; the names stopped."""
        ...

    def artifacts(self, run: RunRecord, experiment: ExperimentRecord, dest: Path) -> list[str]:
        """Copy the files an experiment made into ``dest``; their relative paths."""
        ...

    def delete(self, run: RunRecord, experiments: tuple[ExperimentRecord, ...], *, whole: bool) -> Ended:
        """Remove what these experiments left on the target (history is the App's)."""
        ...
