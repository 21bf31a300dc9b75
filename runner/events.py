"""What :meth:`runner.app.App.run` yields as a run goes, for a front end to show (or not).

In this order: :class:`Recorded`; while building, :class:`BuildOutput` lines (the
build log) with :class:`~runner.progress.Progress` as it changes, or
:class:`BuildWaiting` while another run builds the same image, then :class:`Built`;
while pushing, ``Progress``; :class:`~runner.targets.base.Published`; then
:class:`Detached`, or the experiments' :class:`Output` until every one has ended.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from runner.logs import LogLine
from runner.targets.base import Published, Submission

if TYPE_CHECKING:
    from runner.progress import Progress  # imported when something builds or pushes: not by a cached run


@dataclass(frozen=True)
class Recorded:
    """The run is in history; ``where`` says where it goes, for people; ``notes``, what the target did
    to get ready (a namespace set up: ``set up     serviceaccount/runner in NS``)."""

    sub: Submission
    where: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildOutput:
    line: str


@dataclass(frozen=True)
class BuildWaiting:
    """Another run (maybe another user's) is building this image on this engine: this one waits for it."""

    image: str


@dataclass(frozen=True)
class Built:
    image: str
    #: another run built it while this one waited
    by_another: bool = False


@dataclass(frozen=True)
class Detached:
    """Submitted and left running (``--detach``): follow it with ``runner logs NAME --follow``."""

    name: str


@dataclass(frozen=True)
class Output:
    experiment: str
    line: LogLine


RunEvent: TypeAlias = "Recorded | BuildOutput | BuildWaiting | Progress | Built | Published | Detached | Output"


def outputs(lines: Iterator[tuple[str, LogLine]]) -> Generator[Output, None, None]:
    """A target's ``(experiment, line)`` stream as events.  A Ctrl-C thrown in while the front end shows
    one goes on into the target's stream, which stops the run and still yields its end states' lines
    (a generator expression would raise it at once, and the run would go on)."""
    thrown: BaseException | None = None
    while True:
        try:
            exp, line = next(lines) if thrown is None else lines.throw(thrown)  # type: ignore[attr-defined]
        except StopIteration:
            return
        try:
            yield Output(exp, line)
            thrown = None
        except KeyboardInterrupt as e:
            if not hasattr(lines, "throw"):
                raise
            thrown = e
