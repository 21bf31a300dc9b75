"""Times and durations as people read them: the same in the CLI's tables and in the web view."""

from __future__ import annotations

import time
from datetime import datetime


def fmt_time(ts: float | None) -> str:
    """A moment in local time, to the second (``-`` when there is none)."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def fmt_duration(secs: float | None) -> str:
    """``4m05s``, ``1h02m03s``; ``-`` when there is none."""
    if secs is None:
        return "-"
    s = int(secs)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def fmt_span(start: float | None, end: float | None, *, now: float | None = None) -> str:
    """How long from ``start`` to ``end`` (to now while it has not ended); ``-`` before it started."""
    return fmt_duration((end or now or time.time()) - start) if start else "-"
