"""Log lines: one format for every target, written by one process, read by many.

A line on disk (and on ``runner logs``) is ``[stdout] [2026-11-21T17:24:11.162831+00:00] text``.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_LINE = re.compile(r"^\[(?P<stream>[a-z]+)\] \[(?P<time>[^\]]+)\] (?P<text>.*)$", re.S)


@dataclass(frozen=True)
class LogLine:
    """One line of output -- or several read together (``text`` joined by newlines), which share
    the stream and the time: following a local container yields them so, and per-line work
    stays in C (``str.replace``, one write) rather than in a Python loop per line."""

    stream: str  # "stdout", "stderr" or "build"
    time: str  # ISO 8601, microseconds, "+00:00"
    text: str  # without the trailing newline

    def format(self) -> str:
        prefix = f"[{self.stream}] [{self.time}] "
        return prefix + (self.text.replace("\n", "\n" + prefix) if "\n" in self.text else self.text)


def parse_line(formatted: str) -> LogLine | None:
    m = _LINE.match(formatted.rstrip("\n"))
    return LogLine(m.group("stream"), m.group("time"), m.group("text")) if m else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def epoch(stamp: str) -> float:
    """Seconds since the epoch of an ISO 8601 time: a log line's, or the Kubernetes API's (``Z``).

    Raises ValueError for anything else.
    """
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def engine_time(stamp: str) -> str:
    """``2026-11-21T17:24:11.162831123Z`` (RFC 3339, nanoseconds) -> ``2026-11-21T17:24:11.162831+00:00``."""
    if len(stamp) == 30 and stamp[19] == "." and stamp[29] == "Z":  # the usual form: no regex (once per line)
        return f"{stamp[:26]}+00:00"
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", stamp)
    if not m:
        return stamp
    frac = (m.group(2) or "").ljust(6, "0")[:6]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return f"{m.group(1)}.{frac}{zone}"


class LogWriter:
    """Appends formatted lines to a log file, flushing each so readers see them at once."""

    def __init__(self, path: Path, *, truncate: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "w" if truncate else "a", encoding="utf-8", errors="surrogateescape")

    def write(self, line: LogLine) -> None:
        self._f.write(line.format() + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_lines(path: Path, *, tail: int | None = None) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            if tail is None:
                return [ln.rstrip("\n") for ln in f]
            return [ln.rstrip("\n") for ln in deque(f, maxlen=tail)]
    except FileNotFoundError:
        return []


def follow_file(path: Path, *, done: Callable[[], bool], poll: float = 0.2, start: int = 0) -> Iterator[str]:
    """Yield lines appended to ``path`` from byte ``start`` until ``done()`` and nothing is left to read."""
    pos = start
    pending = ""
    while True:
        finished = done()  # asked before reading, so a line written just before the end is not missed
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                f.seek(pos)
                chunk = f.read()
                pos = f.tell()
        except FileNotFoundError:
            chunk = ""
        if chunk:
            pending += chunk
            *lines, pending = pending.split("\n")
            yield from lines
        elif finished:
            if pending:
                yield pending
            return
        else:
            time.sleep(poll)


def file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
