"""Scalar metrics found in the files an experiment wrote, with no change to its script.

Read, among an experiment's artifacts (files of at most :data:`MAX_BYTES`):

- ``*.csv`` with a header row (e.g. Lightning's CSVLogger ``metrics.csv``): every column whose
  non-empty cells are all numbers is a metric; empty cells are skipped;
- ``*.jsonl`` / ``*.ndjson``: one JSON object per line; every top-level key with a number value
  is a metric (lines that are not JSON objects are skipped);
- TensorBoard event files (``*tfevents*``): every scalar tag, read with TensorBoard's own
  ``EventAccumulator`` (imported only when such a file exists).

The x axis is the first of ``step``, ``epoch``, ``iteration``, ``iter`` that the file has
(TensorBoard: the event's step), else the row's position; those four are never metrics themselves.
NaN and infinite values are skipped.  A metric is named by its column, key or tag; when two files
of one experiment give the same name, the later one (in path order) is named ``NAME [PATH]``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 1024 * 1024
X_KEYS = ("step", "epoch", "iteration", "iter")


@dataclass
class Series:
    name: str
    source: str  # the file, relative to the artifacts folder
    x_label: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)


def metric_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of the files read for metrics, in path order."""
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file() or _kind(p.name) is None:
            continue
        try:
            if p.stat().st_size > MAX_BYTES:
                continue
        except OSError:
            continue
        found.append((p.relative_to(folder).as_posix(), p))
    return found


def _kind(name: str) -> str | None:
    low = name.lower()
    if low.endswith(".csv"):
        return "csv"
    if low.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if "tfevents" in low:
        return "tfevents"
    return None


def read_metrics(folder: Path) -> list[Series]:
    """Every scalar series in an artifacts folder (see the module's docstring for what is read)."""
    out: list[Series] = []
    names: set[str] = set()
    for rel, path in metric_files(folder):
        kind = _kind(path.name)
        try:
            series = (
                _csv(path, rel) if kind == "csv" else _jsonl(path, rel) if kind == "jsonl" else _tfevents(path, rel)
            )
        except (OSError, ValueError, csv.Error):
            continue  # not what it looked like: no metrics from it
        for s in series:
            if s.name in names:
                s.name = f"{s.name} [{rel}]"
            names.add(s.name)
            out.append(s)
    return out


def _number(v: Any) -> float | None:
    """A finite number from a JSON value or a CSV cell; None for anything else."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _csv(path: Path, rel: str) -> list[Series]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or any(_number(h) is not None for h in header):
            return []  # no header row: columns have no names to plot by
        rows = list(reader)
    x_col = next((header.index(k) for k in X_KEYS if k in header), None)
    x_label = header[x_col] if x_col is not None else "row"
    out = []
    for c, name in enumerate(header):
        if c == x_col or not name or name in X_KEYS:
            continue
        s = Series(name, rel, x_label)
        numeric = True
        for i, row in enumerate(rows):
            cell = row[c].strip() if c < len(row) else ""
            if cell == "":
                continue
            y = _number(cell)
            if y is None:
                if cell.lower() in ("nan", "inf", "-inf"):
                    continue
                numeric = False
                break
            x = _number(row[x_col]) if x_col is not None and x_col < len(row) else float(i)
            if x is None:
                continue
            s.x.append(x)
            s.y.append(y)
        if numeric and s.y:
            out.append(s)
    return out


def _jsonl(path: Path, rel: str) -> list[Series]:
    series: dict[str, Series] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            x_key = next((k for k in X_KEYS if _number(doc.get(k)) is not None), None)
            x = _number(doc[x_key]) if x_key else float(i)
            for k, v in doc.items():
                y = _number(v)
                if k in X_KEYS or y is None or x is None:
                    continue
                s = series.setdefault(k, Series(k, rel, x_key or "line"))
                s.x.append(x)
                s.y.append(y)
    return list(series.values())


def _tfevents(path: Path, rel: str) -> list[Series]:
    # TensorBoard's reader: ~0.5 s to import, so only when an event file is there
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    out = []
    for tag in acc.Tags().get("scalars", []):
        s = Series(tag, rel, "step")
        for ev in acc.Scalars(tag):
            y = _number(ev.value)
            if y is not None:
                s.x.append(float(ev.step))
                s.y.append(y)
        if s.y:
            out.append(s)
    return out
