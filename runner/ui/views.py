"""What each page shows, as plain data made from what :class:`runner.app.App` returns."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from runner.model import ExperimentRecord, ExpState, RunSummary
from runner.timefmt import fmt_duration

#: the runs page's filters: any state, active ones, or one state
STATUS_FILTERS = ("", "active", *(s.value for s in ExpState))
TARGETS = ("", "local", "kubernetes")
SORTS = ("started", "run", "project", "status", "target", "duration", "experiments")


def exp_duration(e: ExperimentRecord, now: float) -> float | None:
    return None if not e.started_at else (e.finished_at or now) - e.started_at


@dataclass(frozen=True)
class RunRow:
    name: str
    project: str
    status: str
    active: bool
    target: str
    started: float
    duration: float
    experiments: int
    counts: dict[str, int]


def run_rows(summaries: list[RunSummary], *, now: float | None = None) -> list[RunRow]:
    now = now or time.time()
    return [
        RunRow(
            name=s.run.name,
            project=s.run.project,
            status=s.state.value,
            active=s.active,
            target=s.run.target,
            started=s.run.created_at,
            duration=(s.finished_at or now) - s.run.created_at,
            experiments=len(s.experiments),
            counts={st.value: s.count(st) for st in ExpState},
        )
        for s in summaries
    ]


@dataclass(frozen=True)
class RunsQuery:
    q: str = ""
    status: str = ""
    target: str = ""
    sort: str = "started"
    order: str = "desc"

    @classmethod
    def parse(cls, params: dict[str, str]) -> RunsQuery:
        """Unknown values fall back to the defaults: a hand-edited URL still shows the runs."""
        status = params.get("status", "")
        target = params.get("target", "")
        sort = params.get("sort", "started")
        return cls(
            q=params.get("q", "").strip(),
            status=status if status in STATUS_FILTERS else "",
            target=target if target in TARGETS else "",
            sort=sort if sort in SORTS else "started",
            order="asc" if params.get("order") == "asc" else "desc",
        )

    def apply(self, rows: list[RunRow]) -> list[RunRow]:
        q = self.q.lower()
        out = [
            r
            for r in rows
            if (not q or q in r.name.lower() or q in r.project.lower())
            and (not self.target or r.target == self.target)
            and (not self.status or (r.active if self.status == "active" else r.status == self.status))
        ]
        key: dict[str, Any] = {
            "started": lambda r: r.started,
            "run": lambda r: r.name,
            "project": lambda r: r.project,
            "status": lambda r: r.status,
            "target": lambda r: r.target,
            "duration": lambda r: r.duration,
            "experiments": lambda r: r.experiments,
        }
        return sorted(out, key=key[self.sort], reverse=self.order == "desc")

    def link(self, sort: str) -> str:
        """The query string that sorts by ``sort`` (flipping the order when it is already the key)."""
        order = ("asc" if self.order == "desc" else "desc") if sort == self.sort else "desc"
        return "?" + urlencode(
            {"q": self.q, "status": self.status, "target": self.target, "sort": sort, "order": order}
        )


@dataclass(frozen=True)
class ExpRow:
    name: str
    params: list[str]  # one value per swept argument, or the whole command when nothing was swept
    state: str
    active: bool
    exit_code: str
    duration: str
    reason: str


def param_columns(s: RunSummary) -> list[str]:
    """One column per swept argument (in argument order), as `runner status RUN` shows; else "Command"."""
    return list(dict.fromkeys(k for e in s.experiments for k in e.params))


def exp_rows(s: RunSummary, params: list[str], *, now: float | None = None) -> list[ExpRow]:
    now = now or time.time()
    return [
        ExpRow(
            name=e.name,
            params=[str(e.params.get(p, "")) for p in params] if params else [command_line(e.command)],
            state=e.state.value,
            active=e.state.active,
            exit_code="-" if e.exit_code is None else str(e.exit_code),
            duration=fmt_duration(exp_duration(e, now)),
            reason=e.message or "",
        )
        for e in s.experiments
    ]


def command_line(command: tuple[str, ...] | list[str]) -> str:
    return " ".join(shlex.quote(c) for c in command)


def resources_text(options: dict[str, Any]) -> str:
    r = options.get("resources") or {}
    parts = [f"{k} {r[k]}" for k in ("cpus", "memory", "gpus") if r.get(k)]
    return ", ".join(parts) or "none given"
