"""What :meth:`runner.app.App.run` yields as a run goes, for a front end to show (or not).

In this order: :class:`Recorded`; while building, :class:`BuildOutput` lines then
:class:`Built`; :class:`~runner.targets.base.Published`; then :class:`Detached`, or
the experiments' :class:`Output` until every one has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.logs import LogLine
from runner.targets.base import Published, Submission


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
class Built:
    image: str


@dataclass(frozen=True)
class Detached:
    """Submitted and left running (``--detach``): follow it with ``runner logs NAME --follow``."""

    name: str


@dataclass(frozen=True)
class Output:
    experiment: str
    line: LogLine


RunEvent = Recorded | BuildOutput | Built | Published | Detached | Output
