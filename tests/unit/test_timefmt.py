"""One way to show times and durations, for the CLI's tables and the web view alike."""

from __future__ import annotations

import dataclasses

from runner.model import ExperimentRecord, ExpState, RunRecord, RunSummary
from runner.timefmt import fmt_duration, fmt_span, fmt_time


def test_durations() -> None:
    assert fmt_duration(None) == "-"
    assert fmt_duration(65.9) == "1m05s"
    assert fmt_duration(3723) == "1h02m03s"


def test_spans_run_to_now_until_they_end() -> None:
    assert fmt_span(None, 10.0) == "-"
    assert fmt_span(100.0, 165.0) == "1m05s"
    assert fmt_span(100.0, None, now=3823.0) == "1h02m03s"


def test_times() -> None:
    assert fmt_time(None) == "-" and fmt_time(0) == "-"
    assert len(fmt_time(1_700_000_000)) == len("2023-11-14 22:13:20")


def test_a_run_ends_when_its_last_experiment_does() -> None:
    run = RunRecord("r", "p", "/p", "s.py", (), "local", None, None, 1.0)
    exp = ExperimentRecord("r-exp0", "r", 0, (), {}, ExpState.COMPLETED, None, 0, None, 1.0, 2.0, 5.0, None, False)
    two = (exp, dataclasses.replace(exp, name="r-exp1", finished_at=9.0))
    assert RunSummary(run, two).finished_at == 9.0
    assert (
        RunSummary(run, (exp, dataclasses.replace(exp, state=ExpState.RUNNING, finished_at=None))).finished_at is None
    )
    assert RunSummary(run, ()).finished_at is None
